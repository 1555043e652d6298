package selftests

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

func TestMakeVars(t *testing.T) {
	tests := []struct {
		name string
		mk   string
		want map[string][]string
	}{
		{"append", "A += x\nA += y z\n", map[string][]string{"A": {"x", "y", "z"}}},
		{"assign resets", "A += x\nA := y\n", map[string][]string{"A": {"y"}}},
		{"conditional", "A ?= x\nA ?= y\nB = b\n", map[string][]string{"A": {"x"}, "B": {"b"}}},
		{"continuation", "A := x \\\n\ty\n", map[string][]string{"A": {"x", "y"}}},
		{"comments and recipes", "# A += no\nA += x # trailing\n\tA += recipe\nt: dep\n", map[string][]string{"A": {"x"}}},
		{"target-specific skipped", "$(OUT)/%: X = y\n", map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := makeVars([]byte(tt.mk)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("makeVars = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeTree writes files (relative path -> content) under a temp dir.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const stagedMain = "int main(int c, char **v) { return luo_test(c, v, \"s\", a, b); }\n"

func baseTree() map[string]string {
	return map[string]string{
		TestDir + "/Makefile": "TEST_GEN_PROGS += liveupdate\n\n" +
			"TEST_GEN_PROGS_EXTENDED += luo_kexec_simple\n" +
			"TEST_GEN_PROGS_EXTENDED += luo_gone\n" +
			"TEST_GEN_PROGS_EXTENDED += luo_multi_session\n" +
			"include ../lib.mk\n",
		TestDir + "/liveupdate.c":                     "TEST_HARNESS_MAIN\n",
		TestDir + "/luo_kexec_simple.c":               stagedMain,
		TestDir + "/luo_multi_session.c":              stagedMain,
		TestDir + "/lib/libliveupdate.mk":             "LIBLIVEUPDATE_C := lu_utils.c\n",
		TestDir + "/lib/lu_utils.c":                   "int luo_test(void);\n",
		TestDir + "/lib/include/libliveupdate.h":      "/* lib */\n",
		"tools/testing/selftests/kselftest.h":         "/* ksft */\n",
		"tools/testing/selftests/kselftest_harness.h": "/* harness */\n",
	}
}

func TestDiscover(t *testing.T) {
	noMk := baseTree()
	delete(noMk, TestDir+"/lib/libliveupdate.mk")
	noMk[TestDir+"/lib/extra.c"] = "\n"
	tests := []struct {
		name    string
		files   map[string]string
		want    []spec
		wantLib []string
	}{
		{
			name:  "7.3 layout; a listed test without source is absent",
			files: baseTree(),
			want: []spec{
				{Name: "liveupdate", Kexec: false},
				{Name: "luo_kexec_simple", Kexec: true},
				{Name: "luo_multi_session", Kexec: true},
			},
			wantLib: []string{"lu_utils.c"},
		},
		{
			name:    "no libliveupdate.mk: every lib/*.c",
			files:   noMk,
			want:    []spec{{Name: "liveupdate"}, {Name: "luo_kexec_simple", Kexec: true}, {Name: "luo_multi_session", Kexec: true}},
			wantLib: []string{"extra.c", "lu_utils.c"},
		},
		{
			name:  "tree without the selftests",
			files: map[string]string{"Makefile": "VERSION = 6\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeTree(t, tt.files)
			tr, err := discover(root)
			if err != nil {
				t.Fatal(err)
			}
			var got []spec
			for _, s := range tr.Specs {
				if s.Main != filepath.Join(root, TestDir, s.Name+".c") {
					t.Errorf("%s: Main = %s", s.Name, s.Main)
				}
				got = append(got, spec{Name: s.Name, Kexec: s.Kexec})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("specs = %+v, want %+v", got, tt.want)
			}
			var lib []string
			for _, l := range tr.Lib {
				lib = append(lib, filepath.Base(l))
			}
			if !reflect.DeepEqual(lib, tt.wantLib) {
				t.Errorf("lib = %v, want %v", lib, tt.wantLib)
			}
		})
	}
}

func TestCompileCommand(t *testing.T) {
	tr := &tree{
		Src:       "/src",
		Dir:       "/src/" + TestDir,
		Selftests: "/src/tools/testing/selftests",
		Lib:       []string{"/src/" + TestDir + "/lib/lu_utils.c"},
	}
	s := spec{Name: "luo_kexec_simple", Main: "/src/" + TestDir + "/luo_kexec_simple.c"}
	got := compileCommand(tr, s, "/out/hdr/usr/include", "/out/bin/luo_kexec_simple")
	want := []string{
		"-static", "-Wall", "-O2", "-Wno-unused-function", "-D_GNU_SOURCE=",
		"-isystem", "/out/hdr/usr/include",
		"-I/src/tools/testing/selftests",
		"-I/src/" + TestDir + "/lib/include",
		"-o", "/out/bin/luo_kexec_simple",
		"/src/" + TestDir + "/luo_kexec_simple.c",
		"/src/" + TestDir + "/lib/lu_utils.c",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("compileCommand =\n%q\nwant\n%q", got, want)
	}
	for _, a := range got {
		if strings.HasPrefix(a, "-o") && a != "-o" {
			t.Errorf("output inside an argument: %q", a)
		}
	}
}

func TestHeadersCommand(t *testing.T) {
	tests := []struct {
		jobs int
		want []string
	}{
		{4, []string{"-s", "-C", "/src", "O=/out/obj", "-j4", "headers"}},
		{0, []string{"-s", "-C", "/src", "O=/out/obj", "-j1", "headers"}},
	}
	for _, tt := range tests {
		if got := headersCommand("/src", "/out/obj", tt.jobs); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("headersCommand(jobs=%d) = %q, want %q", tt.jobs, got, tt.want)
		}
	}
}

func TestBinaryKey(t *testing.T) {
	key := func(t *testing.T, edit func(root string), hdr, cc string, name string) string {
		t.Helper()
		root := fakeTree(t, baseTree())
		if edit != nil {
			edit(root)
		}
		tr, err := discover(root)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(tr.Specs, func(s spec) bool { return s.Name == name })
		k, err := binaryKey(tr, tr.Specs[i], hdr, cc)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(rel, content string) func(string) {
		return func(root string) {
			if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := key(t, nil, "h1", "gcc 12", "luo_kexec_simple")
	if again := key(t, nil, "h1", "gcc 12", "luo_kexec_simple"); again != base {
		t.Fatalf("key not stable across identical trees in different places: %s vs %s", base, again)
	}
	tests := []struct {
		name    string
		edit    func(string)
		hdr, cc string
		test    string
		changes bool
	}{
		{"own source", write(TestDir+"/luo_kexec_simple.c", stagedMain+"//\n"), "h1", "gcc 12", "luo_kexec_simple", true},
		{"library source", write(TestDir+"/lib/lu_utils.c", "//\n"), "h1", "gcc 12", "luo_kexec_simple", true},
		{"library header", write(TestDir+"/lib/include/libliveupdate.h", "//\n"), "h1", "gcc 12", "luo_kexec_simple", true},
		{"kselftest.h", write("tools/testing/selftests/kselftest.h", "//\n"), "h1", "gcc 12", "luo_kexec_simple", true},
		{"uAPI headers", nil, "h2", "gcc 12", "luo_kexec_simple", true},
		{"compiler", nil, "h1", "gcc 13", "luo_kexec_simple", true},
		{"another test's source", write(TestDir+"/luo_multi_session.c", "//\n"), "h1", "gcc 12", "luo_kexec_simple", false},
		{"the Makefile", write(TestDir+"/Makefile", "TEST_GEN_PROGS_EXTENDED += luo_kexec_simple luo_multi_session\n"), "h1", "gcc 12", "luo_kexec_simple", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := key(t, tt.edit, tt.hdr, tt.cc, tt.test)
			if (got != base) != tt.changes {
				t.Errorf("key changed = %v, want %v", got != base, tt.changes)
			}
		})
	}
}

func TestHeadersKey(t *testing.T) {
	files := map[string]string{
		"Makefile":                          "VERSION = 7\n",
		"include/uapi/linux/liveupdate.h":   "/* v1 */\n",
		"arch/x86/include/uapi/asm/types.h": "/* x86 */\n",
		"kernel/liveupdate/luo_core.c":      "/* not uapi */\n",
	}
	key := func(edit map[string]string) string {
		t.Helper()
		f := map[string]string{}
		for k, v := range files {
			f[k] = v
		}
		for k, v := range edit {
			f[k] = v
		}
		k, err := headersKey(fakeTree(t, f))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(nil)
	tests := []struct {
		name    string
		edit    map[string]string
		changes bool
	}{
		{"same", nil, false},
		{"uapi header", map[string]string{"include/uapi/linux/liveupdate.h": "/* v2 */\n"}, true},
		{"new uapi header", map[string]string{"include/uapi/linux/new.h": "\n"}, true},
		{"arch uapi", map[string]string{"arch/x86/include/uapi/asm/types.h": "\n"}, true},
		{"version", map[string]string{"Makefile": "VERSION = 8\n"}, true},
		{"kernel source", map[string]string{"kernel/liveupdate/luo_core.c": "\n"}, false},
	}
	for _, tt := range tests {
		if got := key(tt.edit); (got != base) != tt.changes {
			t.Errorf("%s: key changed = %v, want %v", tt.name, got != base, tt.changes)
		}
	}
}

// TestCompileError checks that a test that does not compile is an error
// naming it and carrying the compiler's output.
func TestCompileError(t *testing.T) {
	if _, err := exec.LookPath(CC); err != nil {
		t.Skipf("no host C compiler %q: %v", CC, err)
	}
	files := baseTree()
	files[TestDir+"/luo_kexec_simple.c"] = "int main(void) { return undeclared_thing; }\n"
	root := fakeTree(t, files)
	tr, err := discover(root)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	i := slices.IndexFunc(tr.Specs, func(s spec) bool { return s.Name == "luo_kexec_simple" })
	dir := filepath.Join(out, "bin", "luo_kexec_simple-x")
	err = compile(context.Background(), tr, tr.Specs[i], filepath.Join(out, "include"), dir, nil)
	if err == nil {
		t.Fatal("compile succeeded")
	}
	for _, want := range []string{"luo_kexec_simple", "undeclared_thing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a failed compile left %s behind (%v)", dir, err)
	}
	if cache.IsDone(dir) {
		t.Errorf("a failed compile was marked done")
	}
}

// sourceTree finds a real kernel tree with the Live Update selftests:
// $MEMFD_LUO_SELFTESTS_SRC, else the newest linux-source-* the harness
// unpacked into the cache.
func sourceTree(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MEMFD_LUO_SELFTESTS_SRC"); d != "" {
		if _, err := os.Stat(filepath.Join(d, TestDir, "Makefile")); err != nil {
			t.Skipf("MEMFD_LUO_SELFTESTS_SRC=%s has no %s: %v", d, TestDir, err)
		}
		return d
	}
	dir, err := cache.Dir()
	if err != nil {
		t.Skipf("no cache directory to look for a kernel tree in: %v", err)
	}
	m, _ := filepath.Glob(filepath.Join(dir, "src", "*", "linux-source-*"))
	slices.Sort(m)
	for i := len(m) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(m[i], TestDir, "Makefile")); err == nil {
			return m[i]
		}
	}
	t.Skipf("no kernel source tree with %s (set MEMFD_LUO_SELFTESTS_SRC or unpack one under %s/src)", TestDir, dir)
	return ""
}

// TestBuildRealTree builds the selftests of a real tree (about 10 s,
// mostly the uAPI headers; skipped with -short), checks a second Build is
// served from the cache, and that the source tree was not written to.
func TestBuildRealTree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds uAPI headers and static binaries; skipped with -short")
	}
	src := sourceTree(t)
	for _, tool := range []string{CC, "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	before := time.Now().Add(-time.Second)
	out := t.TempDir()
	ctx := context.Background()
	tests, err := Build(ctx, src, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) == 0 {
		t.Fatalf("no tests built from %s", src)
	}
	for _, tt := range tests {
		st, err := os.Stat(tt.Binary)
		if err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: binary %s not executable (%v)", tt.Name, tt.Binary, err)
		}
		if !strings.HasPrefix(tt.Binary, out) {
			t.Errorf("%s: binary %s outside the output directory", tt.Name, tt.Binary)
		}
	}
	start := time.Now()
	again, err := Build(ctx, src, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, tests) {
		t.Errorf("second Build = %+v, want %+v", again, tests)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Build took %s; it should come from the cache", d)
	}
	var written []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil && info.ModTime().After(before) {
			written = append(written, p)
		}
		return nil
	})
	if len(written) > 0 {
		t.Errorf("Build wrote into the source tree: %v", written[:min(len(written), 10)])
	}
}
