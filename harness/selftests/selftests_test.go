package selftests

import (
	"context"
	"io"
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
	tests := []struct {
		name  string
		files map[string]string
		want  []spec
	}{
		{
			name:  "7.3 layout; a listed test without source is absent",
			files: baseTree(),
			want: []spec{
				{Name: "liveupdate", Kexec: false},
				{Name: "luo_kexec_simple", Kexec: true},
				{Name: "luo_multi_session", Kexec: true},
			},
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
		})
	}
}

func TestMakeCommand(t *testing.T) {
	got := makeCommand("/scratch/tree/"+TestDir, "/scratch/out", "/out/hdr/usr/include", "luo_kexec_simple")
	want := []string{
		"-C", "/scratch/tree/" + TestDir,
		"OUTPUT=/scratch/out",
		"KHDR_INCLUDES=-isystem /out/hdr/usr/include",
		"USERLDFLAGS=-static",
		"/scratch/out/luo_kexec_simple",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("makeCommand =\n%q\nwant\n%q", got, want)
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

func TestTreeKey(t *testing.T) {
	key := func(t *testing.T, edit func(root string), hdr, cc string) string {
		t.Helper()
		root := fakeTree(t, baseTree())
		if edit != nil {
			edit(root)
		}
		tr, err := discover(root)
		if err != nil {
			t.Fatal(err)
		}
		k, err := treeKey(tr, hdr, cc)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(rel, content string) func(string) {
		return func(root string) {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := key(t, nil, "h1", "gcc 12")
	if again := key(t, nil, "h1", "gcc 12"); again != base {
		t.Fatalf("key not stable across identical trees in different places: %s vs %s", base, again)
	}
	tests := []struct {
		name    string
		edit    func(string)
		hdr, cc string
		changes bool
	}{
		{"a test's source", write(TestDir+"/luo_kexec_simple.c", stagedMain+"//\n"), "h1", "gcc 12", true},
		{"library source", write(TestDir+"/lib/lu_utils.c", "//\n"), "h1", "gcc 12", true},
		{"library header", write(TestDir+"/lib/include/libliveupdate.h", "//\n"), "h1", "gcc 12", true},
		{"the Makefile", write(TestDir+"/Makefile", "TEST_GEN_PROGS_EXTENDED += luo_kexec_simple\n"), "h1", "gcc 12", true},
		{"a helper kept beside the tests", write(TestDir+"/luo_test_utils.c", "//\n"), "h1", "gcc 12", true},
		{"kselftest.h", write("tools/testing/selftests/kselftest.h", "//\n"), "h1", "gcc 12", true},
		{"lib.mk", write("tools/testing/selftests/lib.mk", "#\n"), "h1", "gcc 12", true},
		{"uAPI headers", nil, "h2", "gcc 12", true},
		{"compiler", nil, "h1", "gcc 13", true},
		{"another selftest directory", write("tools/testing/selftests/mm/x.c", "//\n"), "h1", "gcc 12", false},
		{"kernel source", write("mm/memfd_luo.c", "//\n"), "h1", "gcc 12", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := key(t, tt.edit, tt.hdr, tt.cc)
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

// TestMakeTests builds with a tree's own Makefile: a test that builds is
// installed in the cache, one that does not comes back with the reason
// and its log, one linked dynamically is refused, and nothing is written
// into the source tree.
func TestMakeTests(t *testing.T) {
	for _, tool := range []string{CC, "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	files := baseTree()
	files[TestDir+"/Makefile"] = "TEST_GEN_PROGS_EXTENDED += luo_good luo_bad luo_dynamic\n" +
		"$(OUTPUT)/luo_good: luo_good.c helper.c\n" +
		"\t$(CC) $(USERLDFLAGS) $(KHDR_INCLUDES) -c helper.c -o helper.o\n" +
		"\t$(CC) $(USERLDFLAGS) $(KHDR_INCLUDES) -o $@ luo_good.c helper.o\n" +
		"$(OUTPUT)/luo_bad: luo_bad.c\n" +
		"\t$(CC) $(USERLDFLAGS) -o $@ $<\n" +
		"$(OUTPUT)/luo_dynamic: luo_good.c helper.c\n" +
		"\t$(CC) $(KHDR_INCLUDES) -o $@ luo_good.c helper.c\n"
	files[TestDir+"/luo_good.c"] = "#include <probe.h>\nint helper(void);\nint main(void) { return helper() - PROBE; }\n"
	files[TestDir+"/helper.c"] = "int helper(void) { return 7; }\n"
	files[TestDir+"/luo_bad.c"] = "int helper(void);\nint main(void) { return helper(); }\n"
	files[TestDir+"/luo_dynamic.c"] = "\n"
	root := fakeTree(t, files)
	include := t.TempDir()
	if err := os.WriteFile(filepath.Join(include, "probe.h"), []byte("#define PROBE 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := discover(root)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	tb := &toolchain{outDir: out, include: include}
	got := makeTests(context.Background(), tr, tr.Specs, tb, "k1", io.Discard)
	if len(got) != 3 {
		t.Fatalf("%d tests, want 3: %+v", len(got), got)
	}
	byName := map[string]Test{}
	for _, tt := range got {
		byName[tt.Name] = tt
	}
	good := byName["luo_good"]
	if good.BuildError != "" || good.Binary != filepath.Join(out, "bin", "luo_good-k1", "luo_good") || !cache.IsDone(filepath.Dir(good.Binary)) {
		b, _ := os.ReadFile(good.BuildLog)
		t.Errorf("luo_good: %+v\nlog:\n%s", good, b)
	}
	if err := exec.Command(good.Binary).Run(); err != nil {
		t.Errorf("the built luo_good does not run: %v", err)
	}
	bad := byName["luo_bad"]
	if bad.Binary != "" || !strings.Contains(bad.BuildError, "undefined reference") || bad.BuildLog == "" {
		t.Errorf("luo_bad: %+v", bad)
	}
	if b, err := os.ReadFile(bad.BuildLog); err != nil || !strings.Contains(string(b), "$ make -C") {
		t.Errorf("luo_bad's log %s: %v\n%s", bad.BuildLog, err, b)
	}
	dyn := byName["luo_dynamic"]
	if dyn.Binary != "" || !strings.Contains(dyn.BuildError, "linked dynamically") {
		t.Errorf("luo_dynamic: %+v", dyn)
	}
	if _, err := os.Stat(filepath.Join(root, TestDir, "helper.o")); !os.IsNotExist(err) {
		t.Errorf("the build wrote helper.o into the source tree (%v)", err)
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".build-*")); len(m) > 0 {
		t.Errorf("scratch left behind: %v", m)
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
