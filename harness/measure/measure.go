// Package measure runs the measurement scenarios (1 GiB dense, 1 GiB THP,
// 4 GiB sparse) on several kernels in one invocation and lays their
// figures side by side: MemTotal drop, st_blocks and phase timings.
package measure

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

// Figures are one scenario's figures on one kernel.
type Figures struct {
	Scenario     string  `json:"scenario"`
	Kernel       string  `json:"kernel"`
	Verdict      string  `json:"verdict"`
	PreservedKB  int64   `json:"memtotal_drop_kb"`
	BlocksBefore int64   `json:"blocks_before_preserve"`
	BlocksAfter  int64   `json:"blocks_after_preserve"`
	BlocksNext   int64   `json:"blocks_after_retrieve"`
	PreserveMS   float64 `json:"preserve_ms"`
	RebootMS     float64 `json:"reboot_to_banner_ms"`
	ToRetrieveMS float64 `json:"reboot_to_retrieved_ms"`
	RetrieveMS   float64 `json:"retrieve_ms"`
}

// FromOutcome reads o's figures of its first live update (0 where there
// is none; the MemTotal drop is -1 when a snapshot is missing).
func FromOutcome(o *runner.Outcome, kernel string) Figures {
	f := Figures{Scenario: o.Scenario, Kernel: kernel, Verdict: string(o.Verdict)}
	r := report.NewResults(report.RunInfo{}, []*runner.Outcome{o}).Scenarios[0]
	if len(r.PreservedKB) > 0 {
		f.PreservedKB = r.PreservedKB[0]
	}
	if len(r.Phases.Hops) > 0 {
		h := r.Phases.Hops[0]
		f.PreserveMS, f.RebootMS, f.ToRetrieveMS, f.RetrieveMS = ms(h.Preserve), ms(h.Reboot), ms(h.Blackout), ms(h.Retrieve)
	}
	hop := report.FirstHop(r.Steps)
	f.BlocksBefore, f.BlocksAfter, f.BlocksNext = max(hop.BlocksBefore, 0), max(hop.BlocksAfter, 0), max(hop.BlocksRetrieved, 0)
	return f
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Kernel is one item of -kernels: a spec and, after an @, the command
// line it boots with.
type Kernel struct {
	Spec    kernels.Spec
	Cmdline string
}

// ParseKernels splits a -kernels list ("stock,patched@memfd_luo.abi=v2").
func ParseKernels(list string) []Kernel {
	var ks []Kernel
	for _, item := range strings.Split(list, ",") {
		spec, args, _ := strings.Cut(item, "@")
		ks = append(ks, Kernel{Spec: kernels.Spec(spec), Cmdline: args})
	}
	return ks
}

// label names a prepared kernel booting with cmdline in the table and
// its artefact directory: "patched-abi-v2" for patched@memfd_luo.abi=v2.
func label(name, cmdline string) string {
	if cmdline == "" {
		return name
	}
	return name + "-" + strings.NewReplacer("memfd_luo.", "", "=", "-", " ", "_", "/", "_").Replace(cmdline)
}

// Deps are what a measurement needs from outside; tests fake them.
type Deps struct {
	// Prepare makes a kernel spec bootable (kernels.Prepare).
	Prepare bootable.Prepare[kernels.Spec]
	// Scenarios are the scenarios to measure (-run, -tag).
	Scenarios func() ([]*scenario.Scenario, error)
	// Run runs a batch and writes a line per scenario to w.
	Run func(ctx context.Context, b fleet.Batch, w io.Writer) []*runner.Outcome
	// Report writes a kernel's reports into dir.
	Report func(dir, suite string, start time.Time, kerns []bootable.Kernel, outs []*runner.Outcome)
}

// Options configure a measurement.
type Options struct {
	Kernels []Kernel
	// Dir is the run's artefact directory, with one per kernel in it.
	Dir string
	// Out gets a line per scenario, Progress a line per kernel.
	Out, Progress io.Writer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Run measures every kernel of o in turn. passed is false when a scenario
// did not pass; err stops the measurement (a kernel that cannot be
// prepared, a selection that matches nothing): a setup or usage error.
func Run(ctx context.Context, o Options, d Deps) (all []Figures, passed bool, err error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	passed = true
	for i, k := range o.Kernels {
		rk, err := d.Prepare(ctx, k.Spec)
		if err != nil {
			return all, passed, fmt.Errorf("preparing %s: %w", k.Spec, err)
		}
		if k.Cmdline != "" {
			rk.Cmdline = k.Cmdline
			rk.Name = label(rk.Name, k.Cmdline)
		}
		todo, err := d.Scenarios()
		if err != nil {
			return all, passed, err
		}
		kdir := filepath.Join(o.Dir, rk.Name)
		outs := d.Run(ctx, fleet.Batch{Kernels: []bootable.Kernel{rk}, Scenarios: todo, Dir: kdir}, o.Out)
		d.Report(kdir, "measure-"+rk.Name, start, []bootable.Kernel{rk}, outs)
		if report.ExitCode(outs) != 0 {
			passed = false
		}
		for _, out := range outs {
			all = append(all, FromOutcome(out, rk.Name))
		}
		fmt.Fprintf(o.Progress, "measure: %d/%d kernels, %s\n", i+1, len(o.Kernels), now().Sub(start).Round(time.Second))
	}
	return all, passed, nil
}

// WriteTable writes the figures side by side, after a blank line.
func WriteTable(w io.Writer, all []Figures) {
	fmt.Fprintf(w, "\n%-20s %-15s %-5s %12s %14s %14s %11s %9s %11s %10s\n", "scenario", "kernel", "", "MemTotal-drop", "blocks@create", "blocks@preserve", "blocks@next", "preserve", "reboot->ret", "retrieve")
	for _, m := range all {
		fmt.Fprintf(w, "%-20s %-15s %-5s %10d kB %14d %14d %11d %7.0fms %9.0fms %8.0fms\n", m.Scenario, m.Kernel, m.Verdict, m.PreservedKB,
			m.BlocksBefore, m.BlocksAfter, m.BlocksNext, m.PreserveMS, m.ToRetrieveMS, m.RetrieveMS)
	}
}

// JSON is measure.json: the figures, indented.
func JSON(all []Figures) []byte {
	b, _ := json.MarshalIndent(all, "", "  ")
	return b
}
