package main

import (
	"flag"
	"io"
	"slices"
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
