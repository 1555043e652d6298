package main

import (
	"context"
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/flavour"
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
		{kernelFlags{which: "patched", flavour: flavour.Normal}, "", nil, ""},
		{kernelFlags{which: "patched", flavour: flavour.Debug}, "", []string{"-flavour", "debug"}, "debug"},
		{kernelFlags{which: "stock", flavour: flavour.Debug}, "stock->patched", []string{"-base", "stock", "-flavour", "debug"}, "debug.stock->patched"},
		{kernelFlags{tree: "/src/linux", flavour: flavour.Debug}, "", []string{"-tree", "/src/linux", "-flavour", "debug"}, "debug"},
		{kernelFlags{which: "stock"}, "stock->stock", []string{"-base", "stock"}, "stock->stock"},
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
