package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
)

// PairedVariants picks the two variants a paired run compares: the
// baseline (or the first) and the first other one.
func PairedVariants(vs []Variant) (base, other Variant, err error) {
	if len(vs) != 2 {
		return base, other, fmt.Errorf("a paired run compares two kernels, %d are selected", len(vs))
	}
	base, other = vs[0], vs[1]
	if other.Baseline && !base.Baseline {
		base, other = other, base
	}
	return base, other, nil
}

// Paired runs the paired VMs of p (PairedJobs) and aggregates one
// PairedPoint per workload, with a progress line per VM. The notes say
// what was not measured and why.
func (r *Runner) Paired(ctx context.Context, p Plan) ([]PairedPoint, []string) {
	base, other, err := PairedVariants(p.Variants)
	if err != nil {
		return nil, []string{"paired points not measured: " + err.Error()}
	}
	var notes []string
	caps := []map[string]bool{kernels.SourceCaps(p.Kernels[base.Name].SrcDir), kernels.SourceCaps(p.Kernels[other.Name].SrcDir)}
	type key struct {
		backing Backing
		size    int64
	}
	points := map[key]*PairedPoint{}
	var order []key
	var jobs []PairedJob
	for _, j := range PairedJobs(base, other, p.Backings, p.Sizes, p.PairedReps, p.PairedHops) {
		k := key{j.Workload.Backing, j.Workload.Size}
		if why := PairedSkipReason(j.Workload, caps...); why != "" {
			if points[k] == nil {
				points[k] = &PairedPoint{} // noted once
				notes = append(notes, fmt.Sprintf("paired %s %s not measured: %s", j.Workload.Backing, FormatSize(j.Workload.Size), why))
				fmt.Fprintf(r.Log, "bench: paired %s %s skipped: %s\n", j.Workload.Backing, FormatSize(j.Workload.Size), why)
			}
			continue
		}
		if points[k] == nil {
			points[k] = &PairedPoint{Backing: k.backing, Size: k.size, Hops: len(j.Chain) - 1, Base: base.Name, Other: other.Name}
			order = append(order, k)
		}
		jobs = append(jobs, j)
	}
	var (
		mu   sync.Mutex
		done int
		pj   []pool.Job
	)
	start := r.now()
	if len(jobs) > 0 {
		fmt.Fprintf(r.Log, "bench: %d paired VMs (%s and %s alternating, %d kexecs each)\n", len(jobs), base.Name, other.Name, max(p.PairedHops, 2))
	}
	for _, j := range jobs {
		sc := j.Workload.PairedScenario(p.PairedHops)
		chain := make([]bootable.Kernel, len(j.Chain))
		names := make([]string, len(j.Chain))
		for i, v := range j.Chain {
			chain[i], names[i] = p.Kernels[v.Name], v.Name
		}
		label := fmt.Sprintf("paired %s>%s", j.Chain[0].Name, j.Chain[1].Name)
		pj = append(pj, pool.Job{MemoryMB: sc.Memory(), Run: func(ctx context.Context) {
			// Each boot adds a retrieve, a preserve and a kexec.
			o := r.runVM(ctx, sc, r.costOptions(p, chain, j.Dir(), j.Workload.Size,
				time.Duration(len(chain))*30*time.Second, fleet.Echo(r.Fleet.Echo, &mu, label)))
			var samples []PairedSample
			if doc := report.NewResults(report.RunInfo{}, []*runner.Outcome{o}); len(doc.Scenarios) > 0 {
				samples = MeasurePaired(doc.Scenarios[0], names, j.Rep)
			}
			mu.Lock()
			defer mu.Unlock()
			done++
			pt := points[key{j.Workload.Backing, j.Workload.Size}]
			pt.VMs++
			if o.Verdict != runner.Pass {
				// A VM that failed part-way measured the same file on
				// both kernels up to there, but its figures are left
				// out like a failed VM's in the unpaired design.
				pt.Failed++
				pt.Failures = append(pt.Failures, fmt.Sprintf("%s: %s (%s)", o.Verdict, o.Reason, o.Dir))
				fmt.Fprintf(r.Log, "[%d/%d, %s] %s %-7s %-5s rep %d: %s  %s (%s)\n", done, len(jobs), r.now().Sub(start).Round(time.Second),
					label, j.Workload.Backing, FormatSize(j.Workload.Size), j.Rep, o.Verdict, o.Reason, o.Dir)
				return
			}
			pt.Samples = append(pt.Samples, samples...)
			fmt.Fprintf(r.Log, "[%d/%d, %s] %s %-7s %-5s rep %d: %s  %s  [%s]\n", done, len(jobs), r.now().Sub(start).Round(time.Second),
				label, j.Workload.Backing, FormatSize(j.Workload.Size), j.Rep, o.Verdict, PairedLine(samples, base.Name, other.Name),
				o.Elapsed.Round(100*time.Millisecond))
		}})
	}
	pool.Run(ctx, r.Fleet.Limits, pj)
	var out []PairedPoint
	for _, k := range order {
		pt := points[k]
		pt.Aggregate()
		out = append(out, *pt)
	}
	return out, notes
}

// PairedLine summarises one paired VM: per phase, the two kernels'
// median times and their ratio.
func PairedLine(samples []PairedSample, base, other string) string {
	pt := PairedPoint{Base: base, Other: other, Samples: samples}
	pt.Aggregate()
	line := ""
	for _, ph := range pt.Phases {
		line += fmt.Sprintf("  %s %s %s / %s %s = %.3f", ph.Phase, base, FormatValue(Seconds, ph.Base.Median),
			other, FormatValue(Seconds, ph.Other.Median), ph.Ratio)
	}
	if line == "" {
		return "no phase measured"
	}
	return line[2:]
}
