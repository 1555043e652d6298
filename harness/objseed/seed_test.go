package objseed

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	srcTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC) // the base tree's files
	objTime = time.Date(2002, 3, 4, 5, 6, 7, 0, time.UTC) // the seed's objects: newer
	newTime = time.Date(2003, 4, 5, 6, 7, 8, 0, time.UTC) // what the patches touched
)

func writeFile(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

func TestReplacePaths(t *testing.T) {
	ps := pairs([][2]string{
		{"/c/src/linux", "/c/trees/k-series"},
		{"/c/obj/a", "/c/obj/b"},
		{"/c/src/linux/tools", "/elsewhere"}, // longer: wins where both match
		{"/c/same", "/c/same"},               // identity: dropped
	})
	if len(ps) != 3 || string(ps[0].old) != "/c/src/linux/tools" {
		t.Fatalf("pairs = %q, want 3, longest first", ps)
	}
	for _, tc := range []struct {
		in, want string
		n        int
	}{
		{"no paths here", "no paths here", 0},
		{"/c/src/linux", "/c/trees/k-series", 1},
		{"-I/c/src/linux/include -I./include", "-I/c/trees/k-series/include -I./include", 1},
		{"/c/src/linux/mm/memfd.c \\\n  /c/src/linux/include/x.h \\\n", "/c/trees/k-series/mm/memfd.c \\\n  /c/trees/k-series/include/x.h \\\n", 2},
		{"make -C /c/src/linux O=/c/obj/a", "make -C /c/trees/k-series O=/c/obj/b", 2},
		{"'/c/src/linux'", "'/c/trees/k-series'", 1},
		{"-fmacro-prefix-map=/c/src/linux/=", "-fmacro-prefix-map=/c/trees/k-series/=", 1},
		{"/c/src/linux2/x /c/obj/ab /c/src/linux.orig", "/c/src/linux2/x /c/obj/ab /c/src/linux.orig", 0},
		{"/c/src/linux2 /c/src/linux", "/c/src/linux2 /c/trees/k-series", 1},
		{"/c/src/linux/tools/objtool", "/elsewhere/objtool", 1},
		{"/c/src/linux/toolsx", "/c/trees/k-series/toolsx", 1},
	} {
		got, n := replacePaths([]byte(tc.in), ps)
		if string(got) != tc.want || n != tc.n {
			t.Errorf("replacePaths(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.n)
		}
	}
}

func TestRewrite(t *testing.T) {
	const seedSrc, seedObj = "/cache/src/7.3.4-1/linux-source-7.3", "/cache/obj/0123456789abcdef"
	const src, obj = "/cache/trees/fedcba9876543210-series", "/cache/obj/aaaaaaaaaaaaaaaa"
	dir := t.TempDir()
	big := strings.Repeat("x", binaryProbe+10) + "\x00" + seedSrc
	files := []struct {
		name, content, want string
	}{
		{"Makefile", "include " + seedSrc + "/Makefile\n", "include " + src + "/Makefile\n"},
		{"mm/.memfd.o.cmd", "savedcmd_mm/memfd.o := gcc -I" + seedSrc + "/include -c -o mm/memfd.o " + seedSrc + "/mm/memfd.c\n",
			"savedcmd_mm/memfd.o := gcc -I" + src + "/include -c -o mm/memfd.o " + src + "/mm/memfd.c\n"},
		{"tools/objtool/.objtool.cmd", "cmd_" + seedObj + "/tools/objtool/objtool := gcc -o " + seedObj + "/tools/objtool/objtool\n",
			"cmd_" + obj + "/tools/objtool/objtool := gcc -o " + obj + "/tools/objtool/objtool\n"},
		{"kernel/.fork.o.cmd", "savedcmd_kernel/fork.o := gcc -I./include -c kernel/fork.c\n", "savedcmd_kernel/fork.o := gcc -I./include -c kernel/fork.c\n"},
		{"mm/memfd.o", "\x7fELF\x02\x01\x01\x00 DW_AT_name " + seedSrc + "/mm/memfd.c", "\x7fELF\x02\x01\x01\x00 DW_AT_name " + seedSrc + "/mm/memfd.c"},
		{"big.txt", big, big},
		{"other.txt", "/cache/src/7.3.4-1/linux-source-7.30/x\n", "/cache/src/7.3.4-1/linux-source-7.30/x\n"},
	}
	for _, f := range files {
		writeFile(t, filepath.Join(dir, f.name), f.content, objTime)
	}
	writeFile(t, filepath.Join(dir, "vmlinux.a"), "!<thin>\n//                                              30        `\n"+seedObj+"/init/main.o/\n", objTime)
	writeFile(t, filepath.Join(dir, "lib/lib.a"), "!<thin>\n//                                              12        `\nlib/sort.o/\n", objTime)
	if err := os.Symlink(seedSrc, filepath.Join(dir, "source")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../Makefile", filepath.Join(dir, "mm/Makefile")); err != nil {
		t.Fatal(err)
	}

	n, removed, err := rewrite(context.Background(), dir, pairs([][2]string{{seedSrc, src}, {seedObj, obj}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if got := readFile(t, p); got != f.want {
			t.Errorf("%s = %q, want %q", f.name, got, f.want)
		}
		if m := mtime(t, p); !m.Equal(objTime) {
			t.Errorf("%s: mtime %v, want it kept at %v", f.name, m, objTime)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "source")); err != nil || l != src {
		t.Errorf("source -> %q (%v), want %s", l, err, src)
	}
	if l, err := os.Readlink(filepath.Join(dir, "mm/Makefile")); err != nil || l != "../Makefile" {
		t.Errorf("mm/Makefile -> %q (%v), want it left alone", l, err)
	}
	if exists(filepath.Join(dir, "vmlinux.a")) || !reflect.DeepEqual(removed, []string{"vmlinux.a"}) {
		t.Errorf("removed %q, want the thin archive naming the old object directory, vmlinux.a", removed)
	}
	if !exists(filepath.Join(dir, "lib/lib.a")) {
		t.Error("a thin archive with relative paths was removed")
	}
	if n != 4 { // Makefile, two .cmd files, source
		t.Errorf("rewrote %d files, want 4", n)
	}
}

// cmdFile is a kbuild .cmd file as fixdep writes it, for target (relative
// to the object directory) built from source with deps, src standing for
// the source tree's absolute path.
func cmdFile(src, target, source string, deps ...string) string {
	var b strings.Builder
	b.WriteString("savedcmd_" + target + " := gcc -Wp,-MMD,x.d -nostdinc -I" + src + "/arch/x86/include -I./arch/x86/include/generated -I" + src +
		"/include -include " + src + "/include/linux/kconfig.h -fmacro-prefix-map=" + src + "/= -c -o " + target + " " + src + "/" + source + "\n\n")
	b.WriteString("source_" + target + " := " + src + "/" + source + "\n\n")
	b.WriteString("deps_" + target + " := \\\n")
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, "$("), strings.HasPrefix(d, "include/generated"):
			b.WriteString("    " + d + " \\\n")
		default:
			b.WriteString("  " + src + "/" + d + " \\\n")
		}
	}
	b.WriteString("\n" + target + ": $(deps_" + target + ")\n\n$(deps_" + target + "):\n")
	return b.String()
}

func TestInvalidate(t *testing.T) {
	const src = "/cache/trees/k-series"
	changed := map[string]bool{"include/linux/memfd.h": true, "mm/shmem.c": true, "scripts/link-vmlinux.sh": true, "include/dt-bindings/clock/qcom,gcc.h": true}
	for _, tc := range []struct {
		name    string
		cmdPath string // of the .cmd file, relative to the object directory
		cmd     string
		gone    bool
	}{
		{"a dependency changed", "mm/.memfd.o.cmd", cmdFile(src, "mm/memfd.o", "mm/memfd.c", "include/linux/kconfig.h", "$(wildcard include/config/MEMFD_CREATE)", "include/linux/memfd.h", "include/generated/autoconf.h"), true},
		{"nothing it names changed", "kernel/.fork.o.cmd", cmdFile(src, "kernel/fork.o", "kernel/fork.c", "include/linux/kconfig.h", "$(wildcard include/config/MEMFD_CREATE)", "include/linux/sched.h"), false},
		{"its source changed", "mm/.shmem.o.cmd", cmdFile(src, "mm/shmem.o", "mm/shmem.c", "include/linux/kconfig.h"), true},
		{"a file with a longer name", "mm/.x.o.cmd", cmdFile(src, "mm/x.o", "mm/x.c", "include/linux/memfd.h.orig", "include/linux/memfd.hx"), false},
		{"only the config symbol of that name", "mm/.y.o.cmd", cmdFile(src, "mm/y.o", "mm/y.c", "$(wildcard include/config/include/linux/memfd.h)"), false},
		{"the command line names it", ".vmlinux.cmd", "savedcmd_vmlinux := " + src + "/scripts/link-vmlinux.sh \"ld\" \"-m elf_x86_64\";\n", true},
		{"quoted, in a command", "arch/x86/entry/.syscalls.cmd", "savedcmd_x := sh '" + src + "/scripts/link-vmlinux.sh' x\n", true},
		{"through ..", "tools/objtool/.check.o.cmd", "deps_x := \\\n  " + src + "/tools/objtool/../../include/linux/memfd.h \\\n", true},
		{"a comma in the name", "arch/x86/boot/dts/.a.dtb.cmd", "deps_x := \\\n  " + src + "/include/dt-bindings/clock/qcom,gcc.h \\\n", true},
		{"followed by a comma", "mm/.z.o.cmd", "savedcmd_z := gcc -Wa,-I" + src + "/mm/shmem.c,-x z.c\n", true},
		{"the generated header of that name", "mm/.w.o.cmd", cmdFile(src, "mm/w.o", "mm/w.c", "include/generated/linux/memfd.h"), false},
		{"another tree's file", "mm/.v.o.cmd", "deps_v := \\\n  /cache/src/other/include/linux/memfd.h \\\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := filepath.Join(dir, tc.cmdPath)
			name := filepath.Base(tc.cmdPath)
			target := filepath.Join(filepath.Dir(cmd), strings.TrimSuffix(strings.TrimPrefix(name, "."), ".cmd"))
			writeFile(t, cmd, tc.cmd, objTime)
			writeFile(t, target, "\x7fELF\x00", objTime)
			writeFile(t, filepath.Join(dir, "include/config/auto.conf.cmd"), "deps_config := \\\n\t"+src+"/include/linux/memfd.h \\\n", objTime)
			got, err := invalidate(context.Background(), dir, []string{src + "/"}, changed)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(dir, target)
			var want []string
			if tc.gone {
				want = []string{filepath.ToSlash(rel)}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("invalidated %q, want %q", got, want)
			}
			if exists(target) == tc.gone || exists(cmd) == tc.gone {
				t.Errorf("target exists %v, .cmd exists %v; want both %v", exists(target), exists(cmd), !tc.gone)
			}
			if !exists(filepath.Join(dir, "include/config/auto.conf.cmd")) {
				t.Error("auto.conf.cmd (not a .<target>.cmd file) was taken for one")
			}
		})
	}
}

// fixture is a base tree, its patched cp -a copy and a stamped object
// directory built from the base.
type fixture struct {
	root                     string
	seedSrc, seedObj         string
	src, obj                 string
	unchangedCmd, changedCmd string // .cmd files in the seed, relative
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{
		root:    root,
		seedSrc: filepath.Join(root, "src", "7.3.4-1", "linux-source-7.3"),
		seedObj: filepath.Join(root, "obj", "0123456789abcdef"),
		src:     filepath.Join(root, "trees", "fedcba9876543210-series"),
		obj:     filepath.Join(root, "obj", "aaaaaaaaaaaaaaaa"),
	}
	for name, content := range map[string]string{
		"Makefile":                "VERSION = 7\n",
		"mm/memfd.c":              "#include <linux/memfd.h>\n",
		"kernel/fork.c":           "int fork;\n",
		"include/linux/memfd.h":   "#define MEMFD 1\n",
		"include/linux/kconfig.h": "\n",
		"include/linux/sched.h":   "\n",
	} {
		writeFile(t, filepath.Join(f.seedSrc, name), content, srcTime)
	}
	writeFile(t, filepath.Join(f.seedSrc, "..", ".memfd-luo-done"), "", srcTime)
	if err := os.MkdirAll(filepath.Dir(f.src), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", f.seedSrc, f.src).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	// The series: one header changed (same size), one file added; git
	// and the cache marker come along.
	writeFile(t, filepath.Join(f.src, "include/linux/memfd.h"), "#define MEMFD 2\n", newTime)
	writeFile(t, filepath.Join(f.src, "mm/memfd_luo.c"), "int luo;\n", newTime)
	writeFile(t, filepath.Join(f.src, ".git/HEAD"), "ref: refs/heads/base\n", newTime)
	writeFile(t, filepath.Join(f.src, ".memfd-luo-done"), "x", newTime)

	f.changedCmd, f.unchangedCmd = "mm/.memfd.o.cmd", "kernel/.fork.o.cmd"
	o := f.seedObj
	writeFile(t, filepath.Join(o, "Makefile"), "include "+f.seedSrc+"/Makefile\n", objTime)
	writeFile(t, filepath.Join(o, ".config"), "CONFIG_MEMFD_CREATE=y\n", objTime)
	writeFile(t, filepath.Join(o, f.changedCmd), cmdFile(f.seedSrc, "mm/memfd.o", "mm/memfd.c", "include/linux/kconfig.h", "include/linux/memfd.h"), objTime)
	writeFile(t, filepath.Join(o, "mm/memfd.o"), "\x7fELF\x00"+f.seedSrc, objTime)
	writeFile(t, filepath.Join(o, f.unchangedCmd), cmdFile(f.seedSrc, "kernel/fork.o", "kernel/fork.c", "include/linux/kconfig.h", "include/linux/sched.h"), objTime)
	writeFile(t, filepath.Join(o, "kernel/fork.o"), "\x7fELF\x00"+f.seedSrc, objTime)
	writeFile(t, filepath.Join(o, "vmlinux"), "\x7fELF\x00", objTime)
	if err := os.Symlink(f.seedSrc, filepath.Join(o, "source")); err != nil {
		t.Fatal(err)
	}
	f.stamp(t, "normal")
	return f
}

func (f *fixture) stamp(t *testing.T, flavour string) {
	t.Helper()
	fp, err := Fingerprint(context.Background(), f.seedSrc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStamp(f.seedSrc, f.seedObj, flavour, fp)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteStamp(f.seedObj, st); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) options() Options {
	return Options{SeedObj: f.seedObj, SeedSrc: f.seedSrc, Obj: f.obj, Src: f.src, Flavour: "normal"}
}

// noLeftovers fails if a temporary copy is left next to the object
// directories.
func (f *fixture) noLeftovers(t *testing.T) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(f.root, "obj", ".seed-*")); len(m) > 0 {
		t.Errorf("temporary copies left: %q", m)
	}
}

func TestSeed(t *testing.T) {
	f := newFixture(t)
	var log bytes.Buffer
	o := f.options()
	o.Log = &log
	res, err := Seed(context.Background(), o)
	if err != nil {
		t.Fatalf("Seed: %v\nlog:\n%s", err, log.String())
	}
	if want := []string{"include/linux/memfd.h", "mm/memfd_luo.c"}; !reflect.DeepEqual(res.Differ, want) {
		t.Errorf("Differ = %q, want %q", res.Differ, want)
	}
	if want := []string{"mm/memfd.o"}; !reflect.DeepEqual(res.Invalidated, want) {
		t.Errorf("Invalidated = %q, want %q", res.Invalidated, want)
	}
	if res.Rewritten != 4 { // Makefile, the two .cmd files (one deleted after), source; not the objects
		t.Errorf("Rewritten = %d, want 4", res.Rewritten)
	}
	for _, gone := range []string{"mm/memfd.o", f.changedCmd, StampName} {
		if exists(filepath.Join(f.obj, gone)) {
			t.Errorf("%s is still in the seeded directory", gone)
		}
	}
	if got, want := readFile(t, filepath.Join(f.obj, f.unchangedCmd)), cmdFile(f.src, "kernel/fork.o", "kernel/fork.c", "include/linux/kconfig.h", "include/linux/sched.h"); got != want {
		t.Errorf("%s =\n%s\nwant\n%s", f.unchangedCmd, got, want)
	}
	for _, kept := range []string{f.unchangedCmd, "kernel/fork.o", "vmlinux", "Makefile", ".config"} {
		if m := mtime(t, filepath.Join(f.obj, kept)); !m.Equal(objTime) {
			t.Errorf("%s: mtime %v, want %v kept", kept, m, objTime)
		}
	}
	if got := readFile(t, filepath.Join(f.obj, "kernel/fork.o")); got != "\x7fELF\x00"+f.seedSrc {
		t.Errorf("binary kernel/fork.o was modified: %q", got)
	}
	if l, _ := os.Readlink(filepath.Join(f.obj, "source")); l != f.src {
		t.Errorf("source -> %s, want %s", l, f.src)
	}
	// The seed itself is untouched and still a seed.
	if got := readFile(t, filepath.Join(f.seedObj, f.changedCmd)); !strings.Contains(got, f.seedSrc+"/mm/memfd.c") {
		t.Errorf("the seed's %s was modified:\n%s", f.changedCmd, got)
	}
	if _, err := ReadStamp(f.seedObj); err != nil {
		t.Errorf("the seed lost its stamp: %v", err)
	}
	f.noLeftovers(t)
	for _, w := range []string{"include/linux/memfd.h", "mm/memfd_luo.c", "mm/memfd.o", "rewrote"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log does not mention %q:\n%s", w, log.String())
		}
	}
	if strings.Contains(log.String(), ".git") || strings.Contains(log.String(), ".memfd-luo-done\n") {
		t.Errorf("log lists .git or the cache marker as differing:\n%s", log.String())
	}
}

func TestSeedReplacesAnUnfinishedBuild(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.obj, "init/main.o"), "\x7fELF\x00", newTime)
	if _, err := Seed(context.Background(), f.options()); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(f.obj, "init/main.o")) || !exists(filepath.Join(f.obj, "kernel/fork.o")) {
		t.Error("the unfinished build was not replaced by the seed")
	}
}

func TestSeedRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, f *fixture, o *Options)
		reason string
	}{
		{"no stamp", func(t *testing.T, f *fixture, o *Options) {
			if err := RemoveStamp(f.seedObj); err != nil {
				t.Fatal(err)
			}
		}, "only a completed build is stamped"},
		{"other flavour", func(t *testing.T, f *fixture, o *Options) { o.Flavour = "debug" }, "flavour"},
		{"stamped elsewhere", func(t *testing.T, f *fixture, o *Options) {
			st, _ := ReadStamp(f.seedObj)
			st.SrcDir = "/somewhere/else"
			if err := WriteStamp(f.seedObj, st); err != nil {
				t.Fatal(err)
			}
		}, "/somewhere/else"},
		{"seed tree changed since", func(t *testing.T, f *fixture, o *Options) {
			writeFile(t, filepath.Join(f.seedSrc, "mm/memfd.c"), "#include <linux/memfd.h>\n", newTime)
		}, "changed since it was built"},
		{"target already built", func(t *testing.T, f *fixture, o *Options) {
			writeFile(t, filepath.Join(f.obj, "vmlinux"), "\x7fELF\x00", newTime)
		}, "already holds a build"},
		{"target stamped", func(t *testing.T, f *fixture, o *Options) {
			writeFile(t, filepath.Join(f.obj, StampName), "{}", newTime)
		}, "already holds a build"},
		{"seed is the target", func(t *testing.T, f *fixture, o *Options) { o.Obj = f.seedObj }, "object directory itself"},
		{"object directory inside its tree", func(t *testing.T, f *fixture, o *Options) { o.Obj = filepath.Join(f.src, "build") }, "inside its source tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.options()
			tc.setup(t, f, &o)
			before := listing(t, o.Obj)
			res, err := Seed(context.Background(), o)
			if !errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Seed = %+v, %v; want ErrUnusable saying %q", res, err, tc.reason)
			}
			if after := listing(t, o.Obj); !reflect.DeepEqual(after, before) {
				t.Errorf("the target changed: %q, was %q", after, before)
			}
			f.noLeftovers(t)
		})
	}
}

// A failure after the checks (here cp) is no refusal; the target stays as
// it was and no copy is left.
func TestSeedFailure(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.obj, "init/main.o"), "\x7fELF\x00", newTime)
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "cp"), "#!/bin/sh\necho 'cp: No space left on device' >&2\nexit 1\n", newTime)
	if err := os.Chmod(filepath.Join(bin, "cp"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	_, err := Seed(context.Background(), f.options())
	if err == nil || errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), "No space left") {
		t.Fatalf("err = %v, want the copy's failure", err)
	}
	if want := []string{"init", "init/main.o"}; !reflect.DeepEqual(listing(t, f.obj), want) {
		t.Errorf("target = %q, want it as it was, %q", listing(t, f.obj), want)
	}
	f.noLeftovers(t)
}

// listing returns the paths under dir, or nil if it does not exist.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func TestFresh(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		fresh bool
	}{
		{"missing", nil, true},
		{"empty", []string{}, true},
		{"an unfinished cold build", []string{".config", "init/main.o"}, true},
		{"linked once", []string{".config", "vmlinux"}, false},
		{"stamped", []string{StampName}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "obj")
			if tc.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				writeFile(t, filepath.Join(dir, f), "", objTime)
			}
			if got := Fresh(dir); got != tc.fresh {
				t.Errorf("Fresh = %v, want %v", got, tc.fresh)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadStamp(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadStamp of an unstamped directory: %v, want not-exist", err)
	}
	want := Stamp{SrcDir: "/s", ObjDir: "/o", Flavour: "debug", Tree: "abc"}
	if err := WriteStamp(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadStamp(dir); err != nil || got != want {
		t.Errorf("ReadStamp = %+v, %v; want %+v", got, err, want)
	}
	if err := RemoveStamp(dir); err != nil {
		t.Fatal(err)
	}
	if err := RemoveStamp(dir); err != nil {
		t.Errorf("removing a missing stamp: %v", err)
	}
	if exists(filepath.Join(dir, StampName)) {
		t.Error("stamp still there")
	}
}

func TestRealPath(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		filepath.Join(root, "link"):              filepath.Join(realRoot, "real"),
		filepath.Join(root, "link", "obj", "k"):  filepath.Join(realRoot, "real", "obj", "k"),
		filepath.Join(root, "real", "..", "new"): filepath.Join(realRoot, "new"),
	} {
		if got, err := RealPath(in); err != nil || got != want {
			t.Errorf("RealPath(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}
