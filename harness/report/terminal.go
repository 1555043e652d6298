// Package report renders outcomes: a line per scenario on the terminal,
// and machine-readable files for CI.
package report

import (
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/runner"
)

// Line writes one scenario's result line, plus where to look and how to
// rerun it when it did not pass.
func Line(w io.Writer, o *runner.Outcome) {
	fmt.Fprintf(w, "%-8s %-36s %7.1fs", o.Verdict, o.Scenario, o.Elapsed.Seconds())
	switch {
	case o.VM != nil && !o.Flavour.IsNormal():
		fmt.Fprintf(w, "  [%s %s]", o.VM.Accel, o.Flavour)
	case o.VM != nil:
		fmt.Fprintf(w, "  [%s]", o.VM.Accel)
	case !o.Flavour.IsNormal():
		fmt.Fprintf(w, "  [%s]", o.Flavour)
	}
	if o.Reason != "" {
		fmt.Fprintf(w, "  %s", o.Reason)
		if o.Blame != "" {
			fmt.Fprintf(w, " (blame: %s)", o.Blame)
		}
	}
	fmt.Fprintln(w)
	if o.Verdict != runner.Pass && o.Verdict != runner.Skip {
		if o.VM != nil && o.VM.ConsoleLog != "" {
			fmt.Fprintf(w, "         console: %s\n", o.VM.ConsoleLog)
		} else {
			fmt.Fprintf(w, "         logs:    %s\n", o.Dir)
		}
		fmt.Fprintf(w, "         rerun:   %s\n", o.Rerun)
	}
}

// Counts tallies outcomes by verdict (results.json's "counts" too).
type Counts struct {
	Pass    int `json:"pass"`
	Fail    int `json:"fail"`
	Timeout int `json:"timeout"`
	Error   int `json:"error"`
	Skip    int `json:"skip"`
}

// Add adds o's counts to c.
func (c *Counts) Add(o Counts) {
	c.Pass += o.Pass
	c.Fail += o.Fail
	c.Timeout += o.Timeout
	c.Error += o.Error
	c.Skip += o.Skip
}

// Tally counts outcomes.
func Tally(outs []*runner.Outcome) Counts {
	var c Counts
	for _, o := range outs {
		switch o.Verdict {
		case runner.Pass:
			c.Pass++
		case runner.Skip:
			c.Skip++
		case runner.Timeout:
			c.Timeout++
		case runner.Error:
			c.Error++
		default:
			c.Fail++
		}
	}
	return c
}

// Summary writes the closing line ("N passed, N failed, N skipped") and
// where the run's artefacts are.
func Summary(w io.Writer, outs []*runner.Outcome, dir string, elapsed time.Duration) {
	c := Tally(outs)
	fmt.Fprintf(w, "artefacts: %s\n", filepath.Clean(dir))
	fmt.Fprintf(w, "luotest: %d passed, %d failed, %d skipped\n", c.Pass, c.Fail+c.Timeout+c.Error, c.Skip)
	fmt.Fprintf(w, "wall time %.1fs\n", elapsed.Seconds())
}

// ExitCode maps outcomes to the process exit code: 0 all passed, 1 a
// failure, 4 everything skipped, 124 a timeout (and nothing worse).
func ExitCode(outs []*runner.Outcome) int {
	c := Tally(outs)
	switch {
	case c.Fail+c.Error > 0:
		return 1
	case c.Timeout > 0:
		return 124
	case c.Pass == 0 && c.Skip > 0:
		return 4
	case c.Pass == 0:
		return 1
	}
	return 0
}
