package kbuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kconfig"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
)

// fakeMake stands for the kernel's make. allnoconfig writes a .config whose
// CONFIG_CC_VERSION_TEXT comes from $FAKE_CC; bzImage prints kbuild step
// lines (sleeping $FAKE_SLEEP between them; $FAKE_MORE names more objects)
// and writes a vmlinux and a bzImage naming the .config, or fails like a
// compiler when $FAKE_FAIL is set.
const fakeMake = `#!/bin/sh
trap 'kill $! 2>/dev/null; exit 143' TERM
obj=
for a in "$@"; do
	case "$a" in
	O=*) obj=${a#O=} ;;
	allnoconfig) printf 'CONFIG_CC_VERSION_TEXT="%s"\nCONFIG_64BIT=y\n' "${FAKE_CC:-gcc 1}" > "$obj/.config" ;;
	olddefconfig) ;;
	kernelrelease) echo 7.3.4 ;;
	bzImage)
		echo bzImage >> "$FAKE_CALLS"
		echo "make[1]: Entering directory '$obj'"
		for f in init/main kernel/fork mm/memfd $FAKE_MORE; do
			echo "  CC      $f.o"
			if [ -n "$FAKE_SLEEP" ]; then sleep "$FAKE_SLEEP" & wait $!; fi
		done
		if [ -n "$FAKE_FAIL" ]; then
			echo "In file included from mm/memfd.c:12:"
			echo "mm/memfd.c: In function 'memfd_luo_preserve':"
			echo "mm/memfd.c:99:5: error: 'x' undeclared (first use in this function)" >&2
			echo "make[3]: *** [scripts/Makefile.build:287: mm/memfd.o] Error 1" >&2
			echo "make[2]: *** [scripts/Makefile.build:555: mm] Error 2" >&2
			exit 2
		fi
		mkdir -p "$obj/arch/x86/boot"
		cat "$obj/.config" > "$obj/arch/x86/boot/bzImage"
		: > "$obj/vmlinux"
		echo "  LD      vmlinux"
		echo "Kernel: arch/x86/boot/bzImage is ready  (#1)" ;;
	esac
done
exit 0
`

const fakeMerge = `#!/bin/sh
shift; shift; obj=$1; shift; base=$1; shift
cat "$base" "$@" > "$obj/.config.new" && mv "$obj/.config.new" "$obj/.config"
`

type env struct {
	src      *kernelsrc.Source
	frag     string
	frag2    string
	optional string
	calls    string
	cache    string
}

func setup(t *testing.T) env {
	t.Helper()
	bin := t.TempDir()
	write := func(path, content string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(bin, "make"), fakeMake, 0o755)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	calls := filepath.Join(t.TempDir(), "calls")
	t.Setenv("FAKE_CALLS", calls)
	for _, v := range []string{"FAKE_CC", "FAKE_SLEEP", "FAKE_FAIL", "FAKE_MORE"} {
		t.Setenv(v, "")
	}
	srcDir := t.TempDir()
	write(filepath.Join(srcDir, "scripts/kconfig/merge_config.sh"), fakeMerge, 0o755)
	write(filepath.Join(srcDir, "Kconfig"), "config TMPFS\n\tbool \"tmpfs\"\nconfig LIVEUPDATE\n\tbool \"LUO\"\n\tdepends on KEXEC_HANDOVER\n", 0o644)
	frags := t.TempDir()
	write(filepath.Join(frags, "a.config"), "CONFIG_TMPFS=y\n", 0o644)
	write(filepath.Join(frags, "b.config"), "CONFIG_TMPFS=y\nCONFIG_PRINTK_TIME=y\n", 0o644)
	write(filepath.Join(frags, "series.config"), "CONFIG_SERIES_ONLY=y\n", 0o644)
	return env{
		src:      &kernelsrc.Source{Dir: srcDir, Version: "7.3.4", Origin: "Debian linux-source-7.3 7.3.4-1", ID: "debian:linux-source-7.3=7.3.4-1"},
		frag:     filepath.Join(frags, "a.config"),
		frag2:    filepath.Join(frags, "b.config"),
		optional: filepath.Join(frags, "series.config"),
		calls:    calls,
		cache:    t.TempDir(),
	}
}

func (e env) builds(t *testing.T) int {
	b, _ := os.ReadFile(e.calls)
	return strings.Count(string(b), "bzImage")
}

func TestBuildAndCache(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	base := Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache, Name: "stock", Jobs: 3}
	mutable := *e.src
	mutable.Mutable = true
	mutable.ID = "tree:" + e.src.Dir

	steps := []buildStep{
		{name: "cold", opts: func(o Options) Options { return o }, wantBuilds: 1},
		{name: "warm", opts: func(o Options) Options { return o }, wantCached: true, wantBuilds: 1, sameKeyAs: "cold"},
		{name: "other fragments", opts: func(o Options) Options { o.Fragments = []string{e.frag2}; return o }, wantBuilds: 2},
		{name: "first config again", opts: func(o Options) Options { return o }, wantCached: true, wantBuilds: 2, sameKeyAs: "cold"},
		{name: "extra", opts: func(o Options) Options { o.Extra = []byte("series"); return o }, wantBuilds: 3},
		{name: "compiler changed", opts: func(o Options) Options { return o }, env: map[string]string{"FAKE_CC": "gcc 2"}, wantBuilds: 4},
		{name: "mutable", opts: func(o Options) Options { o.Source = &mutable; return o }, wantBuilds: 5},
		{name: "mutable again", opts: func(o Options) Options { o.Source = &mutable; return o }, wantBuilds: 6, sameKeyAs: "mutable"},
		// Same tree and .config, other flavour: its own object
		// directory and key.
		{name: "debug flavour", opts: func(o Options) Options { o.Flavour = flavour.Debug; return o }, wantBuilds: 7, wantObj: "-debug"},
		{name: "debug again", opts: func(o Options) Options { o.Flavour = flavour.Debug; return o }, wantCached: true, wantBuilds: 7, sameKeyAs: "debug flavour", wantObj: "-debug"},
		{name: "normal after debug", opts: func(o Options) Options { o.Flavour = flavour.Normal; return o }, wantCached: true, wantBuilds: 7, sameKeyAs: "cold"},
		// An optional option the tree does not define changes nothing.
		{name: "optional undefined", opts: func(o Options) Options { o.Optional = []string{e.optional}; return o },
			wantCached: true, wantBuilds: 7, sameKeyAs: "cold", wantSkipped: []string{"CONFIG_SERIES_ONLY=y"}},
	}
	keys := map[string]string{}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			for k, v := range s.env {
				t.Setenv(k, v)
			}
			var prog bytes.Buffer
			o := s.opts(base)
			o.Progress = &prog
			k, err := Build(ctx, o)
			if err != nil {
				t.Fatalf("Build: %v\nprogress:\n%s", err, prog.String())
			}
			keys[s.name] = k.Key
			if k.Cached != s.wantCached {
				t.Errorf("Cached = %v, want %v", k.Cached, s.wantCached)
			}
			if n := e.builds(t); n != s.wantBuilds {
				t.Errorf("make bzImage ran %d times in all, want %d", n, s.wantBuilds)
			}
			if s.sameKeyAs != "" && keys[s.sameKeyAs] != k.Key {
				t.Errorf("key %s differs from %q's %s", k.Key, s.sameKeyAs, keys[s.sameKeyAs])
			}
			for name, other := range keys {
				if name != s.name && other == k.Key && s.sameKeyAs != name && !sameKeyExpected(steps, name, s.name) {
					t.Errorf("key %s is the same as %q's", k.Key, name)
				}
			}
			art := filepath.Join(e.cache, "kernels", k.Key)
			want := Kernel{
				BzImage: filepath.Join(art, "bzImage"), Config: filepath.Join(art, "config"),
				Release: "7.3.4", Origin: o.Source.Origin, Flavour: o.Flavour.String(), Skipped: s.wantSkipped,
				Key: k.Key, Cached: k.Cached, Elapsed: k.Elapsed, LogPath: filepath.Join(art, "build.log"),
			}
			if !reflect.DeepEqual(*k, want) {
				t.Errorf("Kernel = %+v\nwant %+v", *k, want)
			}
			img, err := os.ReadFile(k.BzImage)
			cfg, err2 := os.ReadFile(k.Config)
			if err != nil || err2 != nil || !bytes.Equal(img, cfg) {
				t.Errorf("bzImage %q does not come from config %q (%v, %v)", img, cfg, err, err2)
			}
			if !cache.IsDone(art) {
				t.Error("artefact directory not marked complete")
			}
			if log, err := os.ReadFile(k.LogPath); err != nil || !strings.Contains(string(log), "bzImage") {
				t.Errorf("build log %s: %v", k.LogPath, err)
			}
			objs, _ := filepath.Glob(filepath.Join(e.cache, "obj", "*.log"))
			if len(objs) > 3 {
				t.Errorf("more object directories than trees and flavours: %v", objs)
			}
			obj := filepath.Join(e.cache, "obj", cache.Key([]byte(o.Source.ID))+s.wantObj)
			if log, err := os.ReadFile(obj + ".log"); err != nil || !strings.Contains(string(log), "flavour "+o.Flavour.String()) {
				t.Errorf("object directory %s has no log of this build: %v", obj, err)
			}
			for _, sk := range s.wantSkipped {
				if !strings.Contains(prog.String(), sk+" from") {
					t.Errorf("progress does not say %s was skipped:\n%s", sk, prog.String())
				}
			}
			if !strings.Contains(prog.String(), "kbuild stock: configuring") {
				t.Errorf("no phase line in progress:\n%s", prog.String())
			}
		})
	}
}

// buildStep is one Build call of TestBuildAndCache, run in order.
type buildStep struct {
	name       string
	opts       func(Options) Options
	env        map[string]string
	wantCached bool
	wantBuilds int    // total make bzImage runs so far
	sameKeyAs  string // name of an earlier step with the same key
	wantObj    string // suffix of the object directory
	// wantSkipped are the optional options the tree does not define.
	wantSkipped []string
}

// sameKeyExpected reports whether steps a and b are meant to share a key.
func sameKeyExpected(steps []buildStep, a, b string) bool {
	root := func(n string) string {
		for _, s := range steps {
			if s.name == n && s.sameKeyAs != "" {
				return s.sameKeyAs
			}
		}
		return n
	}
	return root(a) == root(b)
}

func TestBuildRelativePaths(t *testing.T) {
	e := setup(t)
	t.Chdir(e.cache)
	rel := *e.src
	rel.Dir = mustRel(t, e.cache, e.src.Dir)
	k, err := Build(context.Background(), Options{Source: &rel, Fragments: []string{e.frag}, CacheDir: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(e.cache, "c", "kernels", k.Key, "bzImage"); k.BzImage != want {
		t.Errorf("BzImage = %s, want %s", k.BzImage, want)
	}
}

func mustRel(t *testing.T, base, target string) string {
	t.Helper()
	r, err := filepath.Rel(base, target)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildIncompleteArtefactsAreRebuilt(t *testing.T) {
	e := setup(t)
	o := Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache}
	k, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Unmark(filepath.Join(e.cache, "kernels", k.Key)); err != nil {
		t.Fatal(err)
	}
	k, err = Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if k.Cached || e.builds(t) != 2 {
		t.Errorf("unmarked artefacts trusted: Cached=%v builds=%d", k.Cached, e.builds(t))
	}
}

func TestBuildCompileError(t *testing.T) {
	e := setup(t)
	t.Setenv("FAKE_FAIL", "1")
	_, err := Build(context.Background(), Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache, Name: "patched"})
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BuildError", err)
	}
	if be.Phase != "compile" || be.Name != "patched" {
		t.Errorf("Phase %q Name %q", be.Phase, be.Name)
	}
	if len(be.Tail) == 0 || !strings.Contains(strings.Join(be.Tail, "\n"), "error: 'x' undeclared") {
		t.Errorf("Tail lacks the compiler error: %q", be.Tail)
	}
	for _, l := range be.Tail {
		if stepRE.MatchString(l) || strings.Contains(l, "Entering directory") {
			t.Errorf("Tail has noise line %q", l)
		}
	}
	msg := err.Error()
	for _, w := range []string{"kbuild patched: compile failed", "error: 'x' undeclared", "full log: " + be.LogPath, "bzImage"} {
		if !strings.Contains(msg, w) {
			t.Errorf("Error() lacks %q:\n%s", w, msg)
		}
	}
	if _, err := os.Stat(be.LogPath); err != nil {
		t.Errorf("log: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(e.cache, "kernels", "*")); len(m) != 0 {
		t.Errorf("failed build left artefacts: %v", m)
	}
}

func TestBuildDroppedOption(t *testing.T) {
	e := setup(t)
	frag := filepath.Join(t.TempDir(), "luo.config")
	if err := os.WriteFile(frag, []byte("CONFIG_LIVEUPDATE=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The fake merge keeps it, so drop it the way olddefconfig would.
	bin := t.TempDir()
	script := strings.Replace(fakeMake, "olddefconfig) ;;", "olddefconfig) sed -i '/LIVEUPDATE/d' \"$obj/.config\" ;;", 1)
	if err := os.WriteFile(filepath.Join(bin, "make"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	_, err := Build(context.Background(), Options{Source: e.src, Fragments: []string{frag}, CacheDir: e.cache, Name: "stock"})
	var be *BuildError
	var de *kconfig.DroppedError
	if !errors.As(err, &be) || be.Phase != "configure" || !errors.As(err, &de) {
		t.Fatalf("err = %v, want a configure *BuildError wrapping *kconfig.DroppedError", err)
	}
	if !strings.Contains(err.Error(), "depends on KEXEC_HANDOVER") {
		t.Errorf("error does not explain the dependency:\n%v", err)
	}
	if e.builds(t) != 0 {
		t.Error("make bzImage ran after a failed configure")
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBuildProgress(t *testing.T) {
	e := setup(t)
	t.Setenv("FAKE_SLEEP", "0.3")
	var prog syncBuffer
	_, err := Build(context.Background(), Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache, Name: "stock", Progress: &prog, Every: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	out := prog.String()
	if strings.Contains(out, "\r") {
		t.Error("progress uses carriage returns")
	}
	var ticks []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(l, "kbuild stock: ") {
			t.Errorf("progress line without prefix: %q", l)
		}
		if strings.Contains(l, "steps done") {
			ticks = append(ticks, l)
		}
	}
	if len(ticks) < 2 || len(ticks) > 8 {
		t.Fatalf("%d progress ticks for a ~0.9 s build at 0.2 s, want a handful:\n%s", len(ticks), out)
	}
	if !strings.Contains(ticks[len(ticks)-1], "last: CC ") {
		t.Errorf("last tick does not name the last target: %q", ticks[len(ticks)-1])
	}
	if !strings.Contains(out, "built 7.3.4") {
		t.Errorf("no final line:\n%s", out)
	}
}

func TestBuildCancel(t *testing.T) {
	e := setup(t)
	t.Setenv("FAKE_SLEEP", "5")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Build(ctx, Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %s", d)
	}
}

func TestCounter(t *testing.T) {
	var c counter
	for _, chunk := range []string{"  CC      init/ma", "in.o\nmake[1]: Entering directory '/x'\n", "  LD [M]  fs/x.ko\n  HOSTCC  scripts/basic/fixdep\nwarning: x\n  AR      lib/lib.a"} {
		c.Write([]byte(chunk))
	}
	n, last := c.snapshot()
	if n != 3 || last != "HOSTCC scripts/basic/fixdep" {
		t.Errorf("counter = %d, %q; want 3, HOSTCC scripts/basic/fixdep (the unterminated line not yet counted)", n, last)
	}
}

func TestCompilerTail(t *testing.T) {
	many := func(prefix string, n int) []string {
		var l []string
		for i := 0; i < n; i++ {
			l = append(l, prefix+string(rune('a'+i%26)))
		}
		return l
	}
	cat := func(parts ...[]string) []string {
		var all []string
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	for _, tc := range []struct {
		name string
		in   []string
		n    int
		want []string
	}{
		{
			"compiler error with context",
			cat([]string{"  CC      a.o", "make[2]: Entering directory '/o'"}, many("warning ", 5), []string{"In file included from x.c:1:", "x.c: In function 'f':", "x.c:2:3: error: boom", "make[2]: *** [x.o] Error 1"}),
			25,
			[]string{"warning e", "In file included from x.c:1:", "x.c: In function 'f':", "x.c:2:3: error: boom", "make[2]: *** [x.o] Error 1"},
		},
		{
			"capped at n from the first error",
			cat([]string{"x.c:1: error: first"}, many("more ", 40)),
			3,
			[]string{"x.c:1: error: first", "more a", "more b"},
		},
		{
			"linker",
			[]string{"  LD      vmlinux", "ld: kernel/x.o: in function `f':", "x.c:(.text+0x1): undefined reference to `g'", "make[1]: *** [vmlinux] Error 1"},
			25,
			[]string{"ld: kernel/x.o: in function `f':", "x.c:(.text+0x1): undefined reference to `g'", "make[1]: *** [vmlinux] Error 1"},
		},
		{
			"only make errors",
			cat(many("out ", 10), []string{"make[1]: *** [Makefile:1] Error 2", "make: *** [all] Error 2"}),
			4,
			[]string{"out i", "out j", "make[1]: *** [Makefile:1] Error 2", "make: *** [all] Error 2"},
		},
		{
			"no error at all: last lines",
			cat([]string{"  CC      a.o"}, many("line ", 6), []string{"", "$ make bzImage"}),
			2,
			[]string{"line e", "line f"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := compilerTail(tc.in, tc.n); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("compilerTail =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
