package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

func TestScaleTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		args                 []string
		wantTimeout, wantSil time.Duration
	}{
		{"normal defaults", nil, 5 * time.Minute, 2 * time.Minute},
		{"debug defaults scaled", []string{"-flavour", "debug"},
			5 * time.Minute * flavour.DebugSlowdown, 2 * time.Minute * flavour.DebugSlowdown},
		{"debug, timeout set by the user", []string{"-flavour", "debug", "-timeout", "7m"},
			7 * time.Minute, 2 * time.Minute * flavour.DebugSlowdown},
		{"debug, both set by the user", []string{"-flavour", "debug", "-timeout", "7m", "-silence", "30s"}, 7 * time.Minute, 30 * time.Second},
		{"user value equal to the default still counts as set", []string{"-flavour", "debug", "-timeout", "5m"},
			5 * time.Minute, 2 * time.Minute * flavour.DebugSlowdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var k kernelFlags
			k.register(fs)
			k.registerFlavour(fs)
			var f runFlags
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			f.scaleTimeouts(fs, k.flavour)
			if f.timeout != tc.wantTimeout || f.silence != tc.wantSil {
				t.Errorf("timeout %s silence %s, want %s %s", f.timeout, f.silence, tc.wantTimeout, tc.wantSil)
			}
		})
	}
}

func TestRerunArgsAndSuite(t *testing.T) {
	for _, tc := range []struct {
		k         kernelFlags
		cell      string
		wantArgs  []string
		wantSuite string
	}{
		{kernelFlags{base: "patched", flavour: flavour.Normal}, "", nil, ""},
		{kernelFlags{base: "patched", flavour: flavour.Debug}, "", []string{"-flavour", "debug"}, "debug"},
		{kernelFlags{base: "stock", flavour: flavour.Debug}, "stock->patched", []string{"-base", "stock", "-flavour", "debug"}, "debug.stock->patched"},
		{kernelFlags{tree: "/src/linux", flavour: flavour.Debug}, "", []string{"-tree", "/src/linux", "-flavour", "debug"}, "debug"},
		{kernelFlags{base: "stock"}, "stock->stock", []string{"-base", "stock"}, "stock->stock"},
	} {
		if got := tc.k.args(); !slices.Equal(got, tc.wantArgs) {
			t.Errorf("%+v: args %q, want %q", tc.k, got, tc.wantArgs)
		}
		if got := suiteName(tc.k.flavour, tc.cell); got != tc.wantSuite {
			t.Errorf("%+v: suite %q, want %q", tc.k, got, tc.wantSuite)
		}
	}
}

// Usage mistakes exit 2 naming the bad argument, before any kernel is
// prepared or VM started: a typo must never run nothing and pass.
func TestUsageErrorsExit2(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cmd  func(context.Context, []string) int
		args []string
		want string
	}{
		{"run with a scenario as argument", cmdRun, []string{"basic-64m", "-v"}, `unexpected argument "basic-64m"`},
		{"run with a flag after an argument", cmdRun, []string{"-run", "basic-64m", "extra"}, `unexpected argument "extra"`},
		{"run with a bad accelerator", cmdRun, []string{"-accel", "kbm"}, `-accel "kbm"`},
		{"matrix with an unknown cell", cmdMatrix, []string{"-cells", "stock->patchd"}, `no cell "stock->patchd"`},
		{"matrix with a bad accelerator", cmdMatrix, []string{"-accel", "x"}, `-accel "x"`},
		{"build with an argument", cmdBuild, []string{"patched"}, `unexpected argument "patched"`},
		{"measure with an argument", cmdMeasure, []string{"x"}, `unexpected argument "x"`},
		{"compat with one kernel", cmdCompat, []string{"stock"}, "want two kernels"},
		{"compat with a non-kernel", cmdCompat, []string{"nosuch", "stock"}, "neither a kernel image nor a kernel spec"},
		{"unknown flag", cmdRun, []string{"-nosuchflag"}, "flag provided but not defined: -nosuchflag"},
		{"matrix with -tree it would ignore", cmdMatrix, []string{"-tree", "/src/linux"}, "-tree is not used here"},
		{"measure with -base it would ignore", cmdMeasure, []string{"-base", "stock"}, "-base is not used here"},
		{"qualify without -to", cmdQualify, []string{"-from", "stock"}, "-from A and -to B are both needed"},
		{"qualify with a bad spec", cmdQualify, []string{"-from", "debian:7", "-to", "stock"}, `kernel "debian:7"`},
		{"qualify with a typo'd kernel", cmdQualify, []string{"-from", "stokc", "-to", "stock"}, `unknown kernel "stokc"`},
		{"qualify with one hop", cmdQualify, []string{"-from", "stock", "-to", "patched", "-hops", "1"}, "at least 2 kexecs"},
		{"qualify with -tree it would ignore", cmdQualify, []string{"-tree", "/src/linux", "-from", "stock", "-to", "patched"}, "-tree is not used here"},
		{"qualify with an argument", cmdQualify, []string{"-from", "stock", "-to", "patched", "soak"}, `unexpected argument "soak"`},
		{"qualify with a bad accelerator", cmdQualify, []string{"-from", "stock", "-to", "patched", "-accel", "x"}, `-accel "x"`},
		{"compat with a bad Debian spec", cmdCompat, []string{"debian:seven", "stock"}, "a Debian kernel is debian:X.Y"},
		{"bench paired over one kexec", cmdBench, []string{"-paired", "1"}, "-paired must be 0 (off) or at least 2 kexecs"},
		{"bench paired over every variant", cmdBench, []string{"-paired", "4"}, "-paired: a paired run compares two kernels, 4 are selected"},
		{"bench with no vCPU", cmdBench, []string{"-cpus", "0"}, "-cpus must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := captureStderr(t, func() {
				if code := tc.cmd(ctx, tc.args); code != 2 {
					t.Errorf("exit %d, want 2", code)
				}
			})
			if !strings.Contains(out, tc.want) {
				t.Errorf("stderr %q does not name %q", out, tc.want)
			}
		})
	}
}

// captureStderr runs f with os.Stderr redirected to a pipe.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stderr = old }()
	f()
	w.Close()
	os.Stderr = old
	return <-done
}

// The usage text names every command main dispatches.
func TestUsageNamesEveryCommand(t *testing.T) {
	out := captureStderr(t, usage)
	for _, c := range []string{"run", "build", "list", "measure", "matrix", "qualify", "compat", "bench", "series check"} {
		if !strings.Contains(out, "\n  "+c+" ") && !strings.Contains(out, "\n  "+c+"\n") {
			t.Errorf("usage does not list %q:\n%s", c, out)
		}
	}
}

// The catalogue of a kernel without source is the built-in one, with a
// note saying why the selftests are missing; a tree without selftests
// adds none and says nothing.
func TestCatalogueWithoutSelftests(t *testing.T) {
	ctx := context.Background()
	cat, files, note := catalogue(ctx, bootable.Kernel{Name: "bzimage", BzImage: "/x/bzImage"}, t.TempDir(), t.TempDir())
	if len(cat) != len(scenario.Default()) || files != nil || !strings.Contains(note, "prebuilt kernel has no source tree") {
		t.Errorf("prebuilt: %d scenarios, files %v, note %q", len(cat), files, note)
	}
	cat, files, note = catalogue(ctx, bootable.Kernel{Name: "tree", SrcDir: t.TempDir()}, t.TempDir(), t.TempDir())
	if len(cat) != len(scenario.Default()) || len(files) != 0 || note != "" {
		t.Errorf("tree without selftests: %d scenarios, files %v, note %q", len(cat), files, note)
	}
}

// compat takes a kernel image by path as it is, with the command line
// given, and refuses a directory that is no spec.
func TestCompatKernelImagePath(t *testing.T) {
	img := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(img, []byte("MZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	var k kernelFlags
	got, err := compatKernel(context.Background(), &k, img, "memfd_luo.abi=v3")
	if err != nil || got.BzImage != img || got.Name != img || got.Cmdline != "memfd_luo.abi=v3" || got.SrcDir != "" {
		t.Errorf("image path: %+v, %v", got, err)
	}
	dir := t.TempDir()
	if _, err := compatKernel(context.Background(), &k, dir, ""); err == nil || !strings.Contains(err.Error(), "neither a kernel image nor a kernel spec") {
		t.Errorf("a directory: %v", err)
	}
}
