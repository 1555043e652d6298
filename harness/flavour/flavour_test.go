package flavour

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Flavour
		wantErr bool
	}{
		{"normal", Normal, false},
		{"", Normal, false},
		{"debug", Debug, false},
		{"Debug", "", true},
		{"kasan", "", true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.in+`"`) {
			t.Errorf("Parse(%q) error %q does not name the bad value", tc.in, err)
		}
	}
}

func TestFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    Flavour
		wantErr string
	}{
		{nil, Normal, ""},
		{[]string{"-flavour", "debug"}, Debug, ""},
		{[]string{"-flavour", "fast"}, "", `unknown flavour "fast"`},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := Normal
		fs.Var(&f, "flavour", "")
		err := fs.Parse(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: err = %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || f != tc.want {
			t.Errorf("%v: %q, %v; want %q", tc.args, f, err, tc.want)
		}
	}
}

func TestProperties(t *testing.T) {
	for _, tc := range []struct {
		f                     Flavour
		cmdline, frag, series string
		factor                int
	}{
		{Normal, "", "", "", 1},
		{"", "", "", "", 1},
		{Debug, "panic_on_warn=1 acpi=noirq no5lvl kunit.autorun=0", "flavours/debug.config", "flavours/debug-series.config", DebugSlowdown},
	} {
		if got := tc.f.Cmdline(); got != tc.cmdline {
			t.Errorf("%q.Cmdline() = %q, want %q", tc.f, got, tc.cmdline)
		}
		if got := tc.f.Fragment(); got != tc.frag {
			t.Errorf("%q.Fragment() = %q, want %q", tc.f, got, tc.frag)
		}
		if got := tc.f.SeriesFragment(); got != tc.series {
			t.Errorf("%q.SeriesFragment() = %q, want %q", tc.f, got, tc.series)
		}
		if got := tc.f.TimeoutFactor(); got != tc.factor {
			t.Errorf("%q.TimeoutFactor() = %d, want %d", tc.f, got, tc.factor)
		}
	}
}
