// Package matrix runs the scenario catalogue across pairs of kernels (a
// live update from kernel A into kernel B), checks each pair's outcome
// against what luotest compat predicts from the two images, and tabulates
// the cells.
package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/shell"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Cell is one (kernel A → kernel B) combination of the matrix.
type Cell struct {
	Name     string       `json:"name"`
	From     kernels.Spec `json:"from"`
	To       kernels.Spec `json:"to"`
	FromArgs string       `json:"from_args,omitempty"`
	ToArgs   string       `json:"to_args,omitempty"`
	// Requires names what the patched source must have for the cell to
	// mean anything (kernels.SourceCaps); missing means SKIP.
	Requires string `json:"requires,omitempty"`
	Why      string `json:"why"`
}

// Cells returns the matrix's cells, in the order they run.
func Cells() []Cell {
	return []Cell{
		{Name: "stock->stock", From: "stock", To: "stock", Why: "the baseline"},
		{Name: "stock->patched", From: "stock", To: "patched", Why: "upgrade: the series reads stock memfd-v2 data"},
		{Name: "patched->patched", From: "patched", To: "patched", Why: "the series with itself (default policy)"},
		{Name: "patched(abi=v2)->patched", From: "patched", To: "patched", FromArgs: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob,
			Why: "the series with itself, sending sparse memfd-v2"},
		{Name: "patched->stock", From: "patched", To: "stock",
			Why: "rollback with the default policy (memfd-v2): stock 7.3 must read the series' sparse memfd-v2"},
		{Name: "patched(abi=v2)->stock", From: "patched", To: "stock", FromArgs: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob,
			Why: "downgrade with memfd_luo.abi=v2 forced"},
		{Name: "patched(abi=v3)->stock", From: "patched", To: "stock", FromArgs: "memfd_luo.abi=v3", Requires: kernels.CapMemfdV3,
			Why: "documented failure: stock 7.3 has no memfd-v3 handler, so every session is unreachable (/dev/liveupdate open fails with EIO)"},
	}
}

// Select returns the cells a -cells list names (all of them for ""), in
// the matrix's order, then any "A->B" of two kernel specs that is no
// built-in cell (debian:7.2->stock, tree:DIR->patched), in the list's
// order. It refuses a name that is neither: a typo would otherwise run
// nothing and pass.
func Select(list string) ([]Cell, error) {
	all := Cells()
	if list == "" {
		return all, nil
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	want := strings.Split(list, ",")
	var extra []Cell
	for _, n := range want {
		if slices.Contains(names, n) {
			continue
		}
		from, to, ok := strings.Cut(n, "->")
		if ok && kernels.Spec(from).Valid() == nil && kernels.Spec(to).Valid() == nil {
			extra = append(extra, Cell{Name: n, From: kernels.Spec(from), To: kernels.Spec(to), Why: "asked for with -cells"})
			continue
		}
		return nil, fmt.Errorf("-cells: no cell %q; the cells are %s, or A->B of two kernel specs (patched, stock, tree:DIR, bzimage:PATH, debian:X.Y[.Z])", n, strings.Join(names, ", "))
	}
	return append(slices.DeleteFunc(all, func(c Cell) bool { return !slices.Contains(want, c.Name) }), extra...), nil
}

// dir is the cell's artefact directory name.
func (c Cell) dir() string {
	return strings.NewReplacer(">", "", "(", "-", ")", "", "=", "-", " ", "_", ":", "-", "/", "_").Replace(c.Name)
}

// rerun is the command that reruns one scenario of the cell: prefix (the
// command that starts `luotest run` with the run's flavour) and the cell's
// kernels, with %s for the scenario.
func (c Cell) rerun(prefix []string) string {
	r := strings.Join(append(slices.Clone(prefix), "-from", string(c.From), "-to", string(c.To)), " ")
	if c.FromArgs != "" {
		r += " -from-args " + shell.Quote(c.FromArgs)
	}
	if c.ToArgs != "" {
		r += " -to-args " + shell.Quote(c.ToArgs)
	}
	return r + " -run %s"
}

// Outcome names what a cell's run showed, in the words of
// compat.Prediction.Summary: a prediction of loss ran EIOScenario, a
// prediction of no loss the catalogue.
func Outcome(pred compat.Prediction, passed bool) string {
	switch {
	case pred.KeepsSessions && passed:
		return "keeps every session"
	case pred.KeepsSessions:
		return "loses data (scenarios failed)"
	case passed:
		return "loses every session (EIO)"
	}
	return "the sessions did not fail as predicted"
}

// EIOScenario expects the target kernel to refuse the incoming data.
func EIOScenario() *scenario.Scenario {
	f := plan.File{Name: "m0", Flags: plan.MFDAllowSeal, Size: 1 << 20, Seed: 1}
	return &scenario.Scenario{
		Name:        "downgrade-unreadable",
		Description: "the target has no handler for what was sent: opening /dev/liveupdate fails with EIO",
		Files:       []plan.File{f},
		Tags:        []string{"matrix"},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpCreateMemfd, File: "m0"},
				{Op: plan.OpCreateSession, Session: "s0"},
				{Op: plan.OpPreserve, Session: "s0", File: "m0", Token: 1},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s0", Expect: "EIO",
					Cite: "kernel/liveupdate/luo_core.c luo_open(): -EIO when deserialization failed; luo_file.c: no handler for the compatible string"},
			}},
		},
	}
}

// Cell verdicts besides runner.Error and runner.Skip.
const (
	Pass = "PASS"
	Fail = "FAIL"
)

// Result is a cell's result, as matrix.json records it.
type Result struct {
	Cell
	// Predicted is what luotest compat says of the pair (Summary), and
	// Outcome what the run showed; the cell fails when they differ.
	Predicted  string             `json:"predicted,omitempty"`
	Prediction *compat.Prediction `json:"prediction,omitempty"`
	Outcome    string             `json:"outcome,omitempty"`
	Verdict    string             `json:"verdict"`
	Reason     string             `json:"reason,omitempty"`
	Counts     report.Counts      `json:"counts"`
	Elapsed    float64            `json:"elapsed_s"`
	Dir        string             `json:"dir,omitempty"`
	Kernels    []bootable.Kernel  `json:"kernels,omitempty"`
	// Outcomes are the cell's scenarios' outcomes.
	Outcomes []*runner.Outcome `json:"-"`
}

// failed tells a cell that fails the matrix.
func (r *Result) failed() bool { return r.Verdict == Fail || r.Verdict == string(runner.Error) }

// Deps are what the cell loop needs from outside: the CLI wires the real
// ones (kernel builds, QEMU), tests fakes.
type Deps struct {
	// Prepare makes a kernel spec bootable (kernels.Prepare).
	Prepare bootable.Prepare[kernels.Spec]
	// Caps reads what the patched source declares (kernels.SourceCaps).
	Caps func(srcDir string) map[string]bool
	// Predict predicts a live update from a into b (luotest compat).
	Predict func(ctx context.Context, a, b bootable.Kernel) (compat.Prediction, error)
	// Scenarios returns what a cell whose sessions are predicted to
	// survive runs when from boots first, and the extra initramfs files
	// they need: the catalogue as -run and -tag select it. An error
	// stops the matrix (a usage error).
	Scenarios func(ctx context.Context, from bootable.Kernel) ([]*scenario.Scenario, map[string]string, error)
	// Run runs a batch and writes a line per scenario to w
	// (fleet.Fleet.Run).
	Run func(ctx context.Context, b fleet.Batch, w io.Writer) []*runner.Outcome
	// Report writes a cell's reports (results.{xml,json,ktap}) into dir;
	// suite is the cell's name.
	Report func(dir, suite string, start time.Time, kerns []bootable.Kernel, outs []*runner.Outcome)
}

// Options configure a matrix run.
type Options struct {
	// Cells are the cells to run (Select).
	Cells []Cell
	// Dir is the run's artefact directory; each cell has its own in it.
	Dir string
	// Rerun starts `luotest run` with the run's flavour; each cell adds
	// its kernels.
	Rerun []string
	// Out gets the cells' predictions and a line per scenario; Progress
	// a line per finished cell.
	Out, Progress io.Writer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Run runs the cells in order. Its error is one that stops the matrix
// before the table (Deps.Scenarios refused the selection); a cell that
// fails records it in its Result.
func Run(ctx context.Context, o Options, d Deps) ([]*Result, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	var results []*Result
	for i, c := range o.Cells {
		cr := &Result{Cell: c, Dir: filepath.Join(o.Dir, c.dir())}
		results = append(results, cr)
		if err := runCell(ctx, cr, o, d, now); err != nil {
			return results, err
		}
		fmt.Fprintf(o.Progress, "matrix: %d/%d cells, %s\n", i+1, len(o.Cells), now().Sub(start).Round(time.Second))
	}
	return results, nil
}

func runCell(ctx context.Context, cr *Result, o Options, d Deps, now func() time.Time) error {
	c := cr.Cell
	cstart := now()
	a, errA := d.Prepare(ctx, c.From)
	b, errB := d.Prepare(ctx, c.To)
	if errA != nil || errB != nil {
		cr.Verdict, cr.Reason = string(runner.Error), fmt.Sprintf("preparing kernels: %v %v", errA, errB)
		return nil
	}
	if c.Requires != "" {
		// Every cell with a requirement boots the patched kernel
		// first: its source says what the series has.
		p, err := d.Prepare(ctx, "patched")
		if err != nil || !d.Caps(p.SrcDir)[c.Requires] {
			cr.Verdict, cr.Reason = string(runner.Skip), fmt.Sprintf("the series has no %s yet", c.Requires)
			fmt.Fprintf(o.Out, "== %s: SKIP (%s)\n", c.Name, cr.Reason)
			return nil
		}
	}
	a.Cmdline, b.Cmdline = c.FromArgs, c.ToArgs
	cr.Kernels = []bootable.Kernel{a, b}
	pred, err := d.Predict(ctx, a, b)
	if err != nil {
		cr.Verdict, cr.Reason = string(runner.Error), fmt.Sprintf("predicting the outcome: %v", err)
		fmt.Fprintf(o.Out, "== %s: ERROR (%s)\n", c.Name, cr.Reason)
		return nil
	}
	cr.Prediction, cr.Predicted = &pred, pred.Summary()
	fmt.Fprintf(o.Out, "== %s: %s\n%s", c.Name, cr.Why, pred.String())
	var todo []*scenario.Scenario
	var files map[string]string
	if !pred.KeepsSessions {
		// The catalogue would only show the loss N times; one
		// scenario checks it happens the way predicted.
		todo = []*scenario.Scenario{EIOScenario()}
	} else if todo, files, err = d.Scenarios(ctx, a); err != nil {
		return err
	}
	cr.Outcomes = d.Run(ctx, fleet.Batch{Kernels: cr.Kernels, Scenarios: todo, Files: files, Dir: cr.Dir, Rerun: c.rerun(o.Rerun)}, o.Out)
	d.Report(cr.Dir, c.Name, cstart, cr.Kernels, cr.Outcomes)
	cr.Counts = report.Tally(cr.Outcomes)
	cr.Outcome = Outcome(pred, report.ExitCode(cr.Outcomes) == 0)
	cr.Verdict = Pass
	if cr.Outcome != cr.Predicted {
		cr.Verdict = Fail
		cr.Reason = fmt.Sprintf("predicted %q, the run showed %q", cr.Predicted, cr.Outcome)
	}
	cr.Elapsed = now().Sub(cstart).Seconds()
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteTable writes a line per cell: verdict, prediction, outcome, the
// scenarios' counts and time, and why the cell exists or why it failed.
func WriteTable(w io.Writer, results []*Result) {
	fmt.Fprintf(w, "%-26s %-7s %-28s %-28s %5s %5s %5s %8s  %s\n", "cell", "verdict", "predicted (luotest compat)", "outcome", "pass", "fail", "skip", "time", "")
	for _, cr := range results {
		fail := cr.Counts.Fail + cr.Counts.Error + cr.Counts.Timeout
		note := cr.Why
		if cr.Reason != "" {
			note = cr.Reason
		}
		fmt.Fprintf(w, "%-26s %-7s %-28s %-28s %5d %5d %5d %7.1fs  %s\n", cr.Name, cr.Verdict, dash(cr.Predicted), dash(cr.Outcome), cr.Counts.Pass, fail, cr.Counts.Skip, cr.Elapsed, note)
	}
}

// ExitCode is the matrix's exit status: 1 when a cell failed or could not
// run (ERROR), else 0.
func ExitCode(results []*Result) int {
	for _, cr := range results {
		if cr.failed() {
			return 1
		}
	}
	return 0
}

// WriteSummary writes where the artefacts are, the cells' closing count
// and the wall time.
func WriteSummary(w io.Writer, dir string, results []*Result, wall time.Duration) {
	pass, failN := 0, 0
	for _, cr := range results {
		switch {
		case cr.Verdict == Pass:
			pass++
		case cr.failed():
			failN++
		}
	}
	fmt.Fprintf(w, "artefacts: %s\nluotest matrix: %d passed, %d failed, %d skipped\nwall time %.1fs\n", dir, pass, failN, len(results)-pass-failN, wall.Seconds())
}

// Doc is matrix.json. Its fields are in the order encoding/json wrote
// the map it replaces (sorted keys).
type Doc struct {
	Accel   vm.Accel        `json:"accel"`
	Cells   []*Result       `json:"cells"`
	Flavour flavour.Flavour `json:"flavour"`
	Started time.Time       `json:"started"`
}

// WriteJSON writes d, indented.
func WriteJSON(w io.Writer, d Doc) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
