package qualify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/matrix"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

// DefaultHops is the soak's length when none is asked for: small enough
// for CI, long enough that each kernel is booted three times by kexec
// (its first boot is its baseline, two more are checked against it).
const DefaultHops = 6

// Options configure a qualification.
type Options struct {
	// From and To are the pair: A live-updates into B.
	From, To         kernels.Spec
	FromArgs, ToArgs string
	// Hops is the soak's number of kexecs (DefaultHops if 0).
	Hops int
	// SoakOnly skips the catalogue in both directions (a long soak of
	// a pair already qualified); the verdict is then the soak's.
	SoakOnly bool
	// Dir is the artefact directory: upgrade/, rollback/, soak/.
	Dir string
	// Rerun starts `luotest run` with the run's flavour (the catalogue
	// cells add their kernels); SoakRerun is the command that reruns the
	// soak alone.
	Rerun     []string
	SoakRerun string
	// Out gets predictions and a line per scenario; Progress a line
	// per finished part.
	Out, Progress io.Writer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Part is one of the qualification's three parts.
type Part struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	// Cause names why a red part is red.
	Cause string `json:"cause,omitempty"`
}

// Result is a qualification's result, as qualify.json records it.
type Result struct {
	From     string           `json:"from"`
	To       string           `json:"to"`
	FromArgs string           `json:"from_args,omitempty"`
	ToArgs   string           `json:"to_args,omitempty"`
	Verdict  string           `json:"verdict"`
	Parts    []Part           `json:"parts"`
	Cells    []*matrix.Result `json:"cells"`
	Hops     []Hop            `json:"soak_hops"`
	SoakDir  string           `json:"soak_dir,omitempty"`
	Elapsed  float64          `json:"elapsed_s"`
	// Soak is the soak's outcome.
	Soak *runner.Outcome `json:"-"`
}

// Verdicts of a qualification and its parts.
const (
	Green = "GREEN"
	Red   = "RED"
)

// Run qualifies the pair: the catalogue A → B and B → A (matrix cells,
// each with its compat prediction beside its outcome), then the soak.
// The pair is green when both directions keep every session and the soak
// accounts for every byte and page. d are the matrix's dependencies; the
// soak runs through d.Run and d.Report too.
func Run(ctx context.Context, o Options, d matrix.Deps) (*Result, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	if o.Hops <= 0 {
		o.Hops = DefaultHops
	}
	res := &Result{From: string(o.From), To: string(o.To), FromArgs: o.FromArgs, ToArgs: o.ToArgs}
	cells := []matrix.Cell{
		{Name: "upgrade", From: o.From, To: o.To, FromArgs: o.FromArgs, ToArgs: o.ToArgs,
			Why: fmt.Sprintf("the catalogue, %s live-updating into %s", o.From, o.To)},
		{Name: "rollback", From: o.To, To: o.From, FromArgs: o.ToArgs, ToArgs: o.FromArgs,
			Why: fmt.Sprintf("the catalogue, %s rolling back into %s", o.To, o.From)},
	}
	if !o.SoakOnly {
		var err error
		res.Cells, err = matrix.Run(ctx, matrix.Options{Cells: cells, Dir: o.Dir, Rerun: o.Rerun, Out: o.Out, Progress: o.Progress, Now: now}, d)
		if err != nil {
			return res, err
		}
		for _, c := range res.Cells {
			res.Parts = append(res.Parts, cellPart(c))
		}
		fmt.Fprintf(o.Progress, "qualify: catalogue both ways done, %s; soak of %d hops next\n", now().Sub(start).Round(time.Second), o.Hops)
	}
	res.Parts = append(res.Parts, runSoak(ctx, res, o, d))
	res.Verdict = Green
	for _, p := range res.Parts {
		if p.Verdict != Green {
			res.Verdict = Red
		}
	}
	res.Elapsed = now().Sub(start).Seconds()
	return res, nil
}

// cellPart judges one direction: green only when every session was kept
// and the outcome is the predicted one.
func cellPart(c *matrix.Result) Part {
	p := Part{Name: fmt.Sprintf("%s (%s -> %s)", c.Name, label(c.From, c.FromArgs), label(c.To, c.ToArgs)), Verdict: Red}
	switch {
	case c.Verdict == string(runner.Error):
		p.Cause = c.Reason
	case c.Prediction != nil && !c.Prediction.KeepsSessions:
		p.Cause = "sessions are lost: " + c.Predicted
		if c.Outcome != "" && c.Outcome != c.Predicted {
			p.Cause += "; the run showed: " + c.Outcome
		}
		for _, l := range c.Prediction.Losses {
			p.Cause += "; " + l.What + ": " + l.Why
		}
	case c.Verdict != matrix.Pass:
		p.Cause = c.Reason
	case c.Counts.Fail+c.Counts.Error+c.Counts.Timeout > 0:
		p.Cause = fmt.Sprintf("%d scenario(s) failed", c.Counts.Fail+c.Counts.Error+c.Counts.Timeout)
	case c.Counts.Pass == 0:
		p.Cause = "no scenario ran"
	default:
		p.Verdict, p.Cause = Green, ""
	}
	if p.Verdict == Red && p.Cause == "" {
		p.Cause = "see " + c.Dir
	}
	return p
}

func label(s kernels.Spec, args string) string { return withArgs(string(s), args) }

// withArgs names a kernel with the command line it boots with,
// "patched@memfd_luo.abi=v3".
func withArgs(name, args string) string {
	if args == "" {
		return name
	}
	return name + "@" + args
}

func runSoak(ctx context.Context, res *Result, o Options, d matrix.Deps) Part {
	p := Part{Name: fmt.Sprintf("soak (%d hops, %s <-> %s)", o.Hops, label(o.From, o.FromArgs), label(o.To, o.ToArgs)), Verdict: Red}
	a, err := d.Prepare(ctx, o.From)
	if err != nil {
		p.Cause = fmt.Sprintf("preparing %s: %v", o.From, err)
		return p
	}
	b, err := d.Prepare(ctx, o.To)
	if err != nil {
		p.Cause = fmt.Sprintf("preparing %s: %v", o.To, err)
		return p
	}
	a.Cmdline, b.Cmdline = o.FromArgs, o.ToArgs
	s := Soak(o.Hops)
	dir := filepath.Join(o.Dir, "soak")
	res.SoakDir = dir
	rerun := o.SoakRerun
	chain := Chain(a, b, o.Hops)
	start := time.Now()
	outs := d.Run(ctx, fleet.Batch{Kernels: chain, Scenarios: []*scenario.Scenario{s}, Dir: dir, Rerun: rerun}, o.Out)
	d.Report(dir, "soak", start, chain, outs)
	if len(outs) != 1 {
		p.Cause = fmt.Sprintf("the soak gave %d outcomes", len(outs))
		return p
	}
	res.Soak = outs[0]
	hops, aerr := Account(outs[0])
	res.Hops = hops
	switch {
	case outs[0].Verdict != runner.Pass:
		p.Cause = fmt.Sprintf("%s: %s", outs[0].Verdict, outs[0].Reason)
		if outs[0].Blame != "" {
			p.Cause += " (blame: " + outs[0].Blame + ")"
		}
	case aerr != nil:
		p.Cause = aerr.Error()
	default:
		p.Verdict = Green
	}
	return p
}

// WriteTable writes the verdict, the parts and the soak's hops.
func WriteTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "qualify %s -> %s: %s\n", withArgs(r.From, r.FromArgs), withArgs(r.To, r.ToArgs), r.Verdict)
	for _, p := range r.Parts {
		fmt.Fprintf(w, "  %-5s %s", p.Verdict, p.Name)
		if p.Cause != "" {
			fmt.Fprintf(w, ": %s", p.Cause)
		}
		fmt.Fprintln(w)
	}
	if len(r.Hops) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%4s  %-24s %12s %12s %10s %9s %9s %8s  %s\n", "hop", "kernel", "before-open", "finished", "held", "leak", "drift", "verified", "")
	for _, h := range r.Hops {
		fmt.Fprintf(w, "%4d  %-24s %12s %12s %10s %9s %9s %8s  %s\n", h.Hop, h.Kernel, kb(h.BeforeOpen), kb(h.Finished), kb(h.Held),
			rel(h, h.Leak), rel(h, h.Drift), fmt.Sprintf("%d/%d", h.Verified, h.Files), h.Problem)
	}
	fmt.Fprintf(w, "held: MemTotal after finish - at boot (what the handover held); leak: how much less finish gave back than at the kernel's first soak boot; drift: kB below the kernel's baseline (its first soak boot) after finish, the incoming KHO metadata's jitter (limit %d kB)\n", DriftLimitKB)
}

func kb(v int64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%d kB", v)
}

func rel(h Hop, v int64) string {
	if h.Hop == 0 || h.Baseline < 0 || h.Finished < 0 {
		return "-"
	}
	return fmt.Sprintf("%d kB", v)
}

// ExitCode is 0 for a green pair, 1 for a red one.
func ExitCode(r *Result) int {
	if r.Verdict == Green {
		return 0
	}
	return 1
}

// Counts sums the outcomes of every part, for the closing line.
func Counts(r *Result) report.Counts {
	var c report.Counts
	for _, cr := range r.Cells {
		c.Add(cr.Counts)
	}
	if r.Soak != nil {
		c.Add(report.Tally([]*runner.Outcome{r.Soak}))
	}
	return c
}

// WriteArtefacts writes the qualification's files into dir: qualify.txt
// (the table), qualify.json, qualify.xml (JUnit) and the soak's plots.
// It returns the files written.
func WriteArtefacts(dir string, r *Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("qualify: %w", err)
	}
	var files []string
	write := func(name string, f func(io.Writer) error) error {
		var b bytes.Buffer
		if err := f(&b); err != nil {
			return fmt.Errorf("qualify: %s: %w", name, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("qualify: %w", err)
		}
		files = append(files, p)
		return nil
	}
	if err := write("qualify.txt", func(w io.Writer) error { WriteTable(w, r); return nil }); err != nil {
		return files, err
	}
	if err := write("qualify.json", func(w io.Writer) error {
		b, err := json.MarshalIndent(r, "", "  ")
		if err == nil {
			_, err = w.Write(append(b, '\n'))
		}
		return err
	}); err != nil {
		return files, err
	}
	if err := write("qualify.xml", func(w io.Writer) error { return WriteJUnit(w, r) }); err != nil {
		return files, err
	}
	plots, err := WritePlots(r.Hops, dir)
	return append(files, plots...), err
}
