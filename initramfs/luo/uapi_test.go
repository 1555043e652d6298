package luo

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

// KernelTreeEnv names a kernel tree whose include/uapi/linux/liveupdate.h
// the binding is checked against, instead of the trees in the harness
// cache.
const KernelTreeEnv = "MEMFD_LUO_KERNEL_TREE"

// uapiHeader is where a kernel tree keeps the LUO uAPI.
var uapiHeader = filepath.Join("include", "uapi", "linux", "liveupdate.h")

// The binding's wire structs, by the C struct each one lays out.
var structBindings = []struct {
	c   string
	typ reflect.Type
}{
	{"liveupdate_ioctl_create_session", reflect.TypeFor[sessionArg]()},
	{"liveupdate_ioctl_retrieve_session", reflect.TypeFor[sessionArg]()},
	{"liveupdate_session_preserve_fd", reflect.TypeFor[fdArg]()},
	{"liveupdate_session_retrieve_fd", reflect.TypeFor[fdArg]()},
	{"liveupdate_session_finish", reflect.TypeFor[finishArg]()},
	{"liveupdate_session_get_name", reflect.TypeFor[getNameArg]()},
}

// The binding's ioctls, by the macro of each.
var ioctlBindings = []struct {
	macro string
	nr    uint8
}{
	{"LIVEUPDATE_IOCTL_CREATE_SESSION", cmdCreateSession},
	{"LIVEUPDATE_IOCTL_RETRIEVE_SESSION", cmdRetrieveSession},
	{"LIVEUPDATE_SESSION_PRESERVE_FD", cmdPreserveFD},
	{"LIVEUPDATE_SESSION_RETRIEVE_FD", cmdRetrieveFD},
	{"LIVEUPDATE_SESSION_FINISH", cmdFinish},
	{"LIVEUPDATE_SESSION_GET_NAME", cmdGetName},
}

// uapiHeaders returns the liveupdate.h files to check: the one of
// $MEMFD_LUO_KERNEL_TREE when it is set, else those of the Debian trees
// the harness extracted into its cache and of the trees it patched with
// the series.
func uapiHeaders(t *testing.T) []string {
	t.Helper()
	if tree := os.Getenv(KernelTreeEnv); tree != "" {
		h := filepath.Join(tree, uapiHeader)
		if _, err := os.Stat(h); err != nil {
			// Asked for explicitly: a wrong path must not pass.
			t.Fatalf("%s=%s: %v", KernelTreeEnv, tree, err)
		}
		return []string{h}
	}
	dir, err := cache.Dir()
	if err != nil {
		t.Skipf("no harness cache to find a kernel tree in (%v); set %s to a kernel tree", err, KernelTreeEnv)
	}
	var hs []string
	for _, pat := range []string{
		filepath.Join(dir, "src", "*", "linux-source-*", uapiHeader),
		filepath.Join(dir, "trees", "*-series", uapiHeader),
	} {
		m, _ := filepath.Glob(pat)
		hs = append(hs, m...)
	}
	if len(hs) == 0 {
		t.Skipf("no kernel tree with %s under %s/src/*/linux-source-* or %s/trees/*-series "+
			"(run the harness once to fetch and patch one, or set %s to a kernel tree)", uapiHeader, dir, dir, KernelTreeEnv)
	}
	slices.Sort(hs)
	return hs
}

// TestBindingMatchesKernelHeader compares the binding with the uAPI
// header of the kernel trees under test: every ioctl number, every struct
// size and field offset, the ioctl type and the session name length. A
// struct or ioctl the header has and the binding lacks fails too.
func TestBindingMatchesKernelHeader(t *testing.T) {
	for _, path := range uapiHeaders(t) {
		t.Run(path, func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h, err := parseHeader(string(src))
			if err != nil {
				t.Fatalf("parsing %s: %v", path, err)
			}
			for _, p := range compareBinding(h) {
				t.Error(p)
			}
		})
	}
}

// compareBinding lists every difference between the binding and h.
func compareBinding(h *cHeader) []string {
	var problems []string
	for _, c := range []struct {
		macro string
		got   int64
	}{
		{"LIVEUPDATE_IOCTL_TYPE", ioctlType},
		{"LIVEUPDATE_SESSION_NAME_LENGTH", SessionNameLen},
	} {
		want, err := h.eval(c.macro)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", c.macro, err))
		} else if want != c.got {
			problems = append(problems, fmt.Sprintf("%s is %#x in the header, %#x in the binding", c.macro, want, c.got))
		}
	}
	known := map[string]bool{}
	for _, b := range structBindings {
		known[b.c] = true
		s, ok := h.Structs[b.c]
		if !ok {
			problems = append(problems, fmt.Sprintf("struct %s: not in the header", b.c))
			continue
		}
		problems = append(problems, compareStruct(s, b.typ)...)
	}
	for name := range h.Structs {
		if !known[name] {
			problems = append(problems, fmt.Sprintf("struct %s: in the header, not in the binding", name))
		}
	}
	known = map[string]bool{}
	for _, b := range ioctlBindings {
		known[b.macro] = true
		want, ok := h.Ioctls[b.macro]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: not in the header", b.macro))
		case uint64(Request(b.nr)) != want:
			problems = append(problems, fmt.Sprintf("%s is %#x in the header, %#x in the binding", b.macro, want, Request(b.nr)))
		}
	}
	for name := range h.Ioctls {
		if !known[name] {
			problems = append(problems, fmt.Sprintf("%s: in the header, not in the binding", name))
		}
	}
	slices.Sort(problems)
	return problems
}

// compareStruct lists the differences between C struct c and Go struct
// g: size, and per field in order its name, offset, size and type.
func compareStruct(c *cStruct, g reflect.Type) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("struct %s (%s): ", c.Name, g.Name())+fmt.Sprintf(format, args...))
	}
	if int64(g.Size()) != c.Size {
		bad("size %d in the header, %d in the binding", c.Size, g.Size())
	}
	if g.NumField() != len(c.Fields) {
		bad("%d fields in the header, %d in the binding", len(c.Fields), g.NumField())
	}
	for i := range min(g.NumField(), len(c.Fields)) {
		cf, gf := c.Fields[i], g.Field(i)
		if !strings.EqualFold(cf.Name, gf.Name) {
			bad("field %d is %s in the header, %s in the binding", i, cf.Name, gf.Name)
		}
		if int64(gf.Offset) != cf.Off {
			bad("%s at offset %d in the header, %d in the binding", cf.Name, cf.Off, gf.Offset)
		}
		if int64(gf.Type.Size()) != cf.Size {
			bad("%s is %d bytes in the header, %d in the binding", cf.Name, cf.Size, gf.Type.Size())
		}
		if want := goTypeOf(cf); gf.Type.String() != want {
			bad("%s is %s in the header, so %s, but %s in the binding", cf.Name, cTypeString(cf), want, gf.Type)
		}
	}
	return problems
}

// goTypeOf names the Go type that lays out a C field.
func goTypeOf(f cField) string {
	sc := cScalars[f.Type]
	t := fmt.Sprintf("uint%d", sc.size*8)
	if sc.signed {
		t = fmt.Sprintf("int%d", sc.size*8)
	}
	if sc.size == 1 && !sc.signed {
		t = "uint8"
	}
	if f.Elems > 0 {
		t = fmt.Sprintf("[%d]%s", f.Elems, t)
	}
	return t
}

func cTypeString(f cField) string {
	if f.Elems > 0 {
		return fmt.Sprintf("%s[%d]", f.Type, f.Elems)
	}
	return f.Type
}
