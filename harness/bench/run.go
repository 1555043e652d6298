package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/selftests"
)

// HarnessScenarios are our scenarios timed against the in-tree vmtest.sh
// flow: the selftest it runs, through our harness, and our own equivalent
// of it.
func HarnessScenarios() []string {
	return []string{selftests.ScenarioPrefix + "luo_kexec_simple", "basic-64m"}
}

// Selection is which kernel variants a run prepares.
type Selection struct {
	// Variants are the kernel-cost variants asked for.
	Variants []Variant
	// Default is set when the user named no variant (-kernels ""):
	// plain patched is then left out once the series has the abi knob
	// (it would measure one of the patched-abi-* lines twice), and a
	// variant the series cannot run is only listed when it is a
	// kernel-cost one.
	Default bool
	// Harness are the variants the harness figures run on (none
	// without them).
	Harness []Variant
}

// PrepareKernels prepares every variant sel needs, records each in
// doc.Kernels (with why when it is skipped) and the kernel-cost ones in
// doc.Config.Kernels. It returns the prepared kernels by variant name and
// the variants whose kernel cost is measured.
func PrepareKernels(ctx context.Context, doc *Doc, sel Selection, prepare bootable.Prepare[kernels.Spec],
	caps func(srcDir string) map[string]bool, log io.Writer) (map[string]bootable.Kernel, []Variant, error) {
	get := func(s kernels.Spec) (bootable.Kernel, error) {
		rk, err := prepare(ctx, s)
		if err != nil {
			return rk, fmt.Errorf("preparing kernel %s: %w", s, err)
		}
		return rk, nil
	}
	byName := map[string]bootable.Kernel{}
	var run []Variant
	seen := map[string]bool{}
	for _, v := range append(slices.Clone(sel.Variants), sel.Harness...) {
		if seen[v.Name] {
			continue
		}
		seen[v.Name] = true
		id := KernelID{Variant: v}
		inKernelCost := slices.ContainsFunc(sel.Variants, func(kv Variant) bool { return kv.Name == v.Name })
		if sel.Default && v.Name == "patched" && inKernelCost {
			p, err := get("patched")
			if err != nil {
				return nil, nil, err
			}
			if c := caps(p.SrcDir); c[kernels.CapABIKnob] {
				id.Skipped = "the same kernel as the patched-abi-* line of its default policy"
				for k := range c {
					if d, ok := strings.CutPrefix(k, "abi-default:"); ok {
						id.Skipped = "the same kernel as patched-abi-" + d + " (its default policy)"
					}
				}
				fmt.Fprintf(log, "bench: kernel %s skipped: %s\n", v.Name, id.Skipped)
				inKernelCost = false // still prepared for the harness figures
			}
		}
		if v.Requires != "" {
			p, err := get("patched")
			if err != nil {
				return nil, nil, err
			}
			if !caps(p.SrcDir)[v.Requires] {
				id.Skipped = fmt.Sprintf("the series has no %s yet", v.Requires)
				if !sel.Default || inKernelCost {
					doc.Kernels = append(doc.Kernels, id)
					fmt.Fprintf(log, "bench: kernel %s skipped: %s\n", v.Name, id.Skipped)
				}
				continue
			}
		}
		rk, err := get(v.Spec)
		if err != nil {
			return nil, nil, err
		}
		rk.Cmdline = v.Cmdline
		byName[v.Name] = rk
		id.Release, id.BzImage = rk.Release, rk.BzImage
		if id.SHA256, err = FileSHA256(rk.BzImage); err != nil {
			return nil, nil, err
		}
		doc.Kernels = append(doc.Kernels, id)
		if inKernelCost {
			run = append(run, v)
			doc.Config.Kernels = append(doc.Config.Kernels, v.Name)
		}
	}
	return byName, run, nil
}

// InTreeFlow is the kernel tree's own vmtest.sh flow (InTree); tests
// fake it.
type InTreeFlow interface {
	Prepare(ctx context.Context) (time.Duration, error)
	Run(ctx context.Context, ws string, timeout time.Duration) (*InTreeRun, error)
	// Name names the test program it runs.
	Name() string
	// WorkDir is its scratch directory.
	WorkDir() string
}

// Name is the test program the flow runs.
func (t *InTree) Name() string { t.defaults(); return t.Test }

// WorkDir is the flow's scratch directory.
func (t *InTree) WorkDir() string { return t.Work }

// Runner runs a bench's VMs.
type Runner struct {
	// Fleet starts every VM: its agent, accelerator and RunGroup serve
	// every VM, its limits and console echo the kernel-cost VMs.
	Fleet *fleet.Fleet
	// CatalogueLimits bound the default catalogue's VMs (as luotest run
	// runs them).
	CatalogueLimits pool.Limits
	// Catalogue returns the catalogue on kernel k and its extra
	// initramfs files.
	Catalogue func(ctx context.Context, k bootable.Kernel) (scenario.Catalogue, map[string]string)
	// InTree returns the in-tree flow on k, nil when k has no source.
	InTree func(k bootable.Kernel) InTreeFlow
	// Log gets the progress.
	Log io.Writer
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Plan is what a run measures.
type Plan struct {
	// Variants are the kernel-cost variants, Kernels every prepared
	// kernel by variant name.
	Variants []Variant
	Kernels  map[string]bootable.Kernel
	Backings []Backing
	Sizes    []int64
	// Reps are the runs per point, HarnessReps those of each harness
	// figure.
	Reps, HarnessReps int
	// PairedHops is the kexecs of one paired VM, PairedReps the paired
	// VMs per workload; 0 runs no paired VM. Paired VMs compare the
	// first two Variants (the baseline first).
	PairedHops, PairedReps int
	// CPUs is the vCPU count of the kernel-cost and paired VMs (0: the
	// harness default, 2); ICount their vm.Options.ICount.
	CPUs   int
	ICount string
	// Timeout bounds one kernel-cost VM (0: VMTimeout's default);
	// Silence every VM; InTreeTimeout one in-tree QEMU run.
	Timeout, Silence, InTreeTimeout time.Duration
	// HarnessKernel is the variant the harness figures run on.
	HarnessKernel                    string
	NoKernel, NoHarness, NoCatalogue bool
	// Dir is the run's artefact directory.
	Dir string
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run measures p into doc: the kernel-cost points, each kernel's uname,
// the harness figures, a note when ctx ended the run early, and the
// elapsed time since doc.Started.
func (r *Runner) Run(ctx context.Context, doc *Doc, p Plan) {
	if !p.NoKernel && len(p.Variants) > 0 {
		doc.Points = r.KernelCost(ctx, p)
		// The guest's own view of each kernel, from the first run.
		for i := range doc.Kernels {
			for _, pt := range doc.Points {
				if pt.Kernel != doc.Kernels[i].Variant.Name {
					continue
				}
				for _, s := range pt.Samples {
					if s.Uname != "" && doc.Kernels[i].Uname == "" {
						doc.Kernels[i].Uname = s.Uname
					}
				}
			}
		}
	}
	if p.PairedReps > 0 && ctx.Err() == nil {
		var notes []string
		doc.Paired, notes = r.Paired(ctx, p)
		doc.Notes = append(doc.Notes, notes...)
	}
	if !p.NoHarness && ctx.Err() == nil {
		if rk, ok := p.Kernels[p.HarnessKernel]; ok {
			doc.Harness = r.Harness(ctx, p, rk)
		} else {
			doc.Notes = append(doc.Notes, fmt.Sprintf("harness cost not measured: kernel %s is not available", p.HarnessKernel))
		}
	}
	if ctx.Err() != nil {
		doc.Notes = append(doc.Notes, "interrupted: the figures are partial")
	}
	doc.ElapsedS = r.now().Sub(doc.Started).Seconds()
}

// VMTimeout bounds one bench VM: writing and verifying take minutes per
// GiB under TCG.
func VMTimeout(flagVal time.Duration, size int64) time.Duration {
	if flagVal > 0 {
		return flagVal
	}
	return 5*time.Minute + time.Duration(float64(4*time.Minute)*float64(size)/float64(GiB))
}

// costOptions are the settings of a kernel-cost or paired VM booting
// kernels (the first boots, the others are kexec'd in turn) with its
// artefacts in dir (relative to the run's) and the plan's vCPUs, clock,
// timeout for a memfd of size plus extra, and silence limit.
func (r *Runner) costOptions(p Plan, kernels []bootable.Kernel, dir string, size int64, extra time.Duration,
	online func(time.Duration, string)) runner.Options {
	return runner.Options{
		Agent: r.Fleet.Agent, Kernels: kernels, Dir: filepath.Join(p.Dir, "kernel", dir),
		Accel: r.Fleet.Accel, AccelCache: r.Fleet.AccelCache, Timeout: VMTimeout(p.Timeout, size) + extra,
		Silence: p.Silence, OnLine: online, CPUs: p.CPUs, ICount: p.ICount,
	}
}

func (r *Runner) runVM(ctx context.Context, s *scenario.Scenario, o runner.Options) *runner.Outcome {
	run := r.Fleet.RunGroup
	if run == nil {
		run = runner.RunGroup
	}
	return run(ctx, []*scenario.Scenario{s}, o)[0]
}

// KernelCost runs every (kernel, backing, size, repetition) in a VM of
// its own and aggregates the points, with a progress line per VM.
func (r *Runner) KernelCost(ctx context.Context, p Plan) []Point {
	var jobs []Job
	skipped := map[string]bool{}
	caps := map[string]map[string]bool{} // by variant, read once
	for _, v := range p.Variants {
		caps[v.Name] = kernels.SourceCaps(p.Kernels[v.Name].SrcDir)
	}
	for _, j := range Jobs(p.Variants, p.Backings, p.Sizes, p.Reps) {
		why := SkipReason(j.Workload, caps[j.Variant.Name])
		if why == "" {
			jobs = append(jobs, j)
			continue
		}
		id := fmt.Sprintf("%s %s %s", j.Variant.Name, j.Workload.Backing, FormatSize(j.Workload.Size))
		if !skipped[id] {
			skipped[id] = true
			fmt.Fprintf(r.Log, "bench: %s skipped: %s\n", id, why)
		}
	}
	type key struct {
		kernel  string
		backing Backing
		size    int64
	}
	points := map[key]*Point{}
	var order []key
	for _, j := range jobs {
		k := key{j.Variant.Name, j.Workload.Backing, j.Workload.Size}
		if points[k] == nil {
			points[k] = &Point{Kernel: k.kernel, Backing: k.backing, Size: k.size,
				Written: j.Workload.Written(), MemoryMB: j.Workload.MemoryMB()}
			order = append(order, k)
		}
	}
	var (
		mu   sync.Mutex
		done int
		pj   []pool.Job
	)
	start := r.now()
	fmt.Fprintf(r.Log, "bench: %d kernel-cost VMs (%d kernel(s) × %d backing(s) × %d size(s) × %d rep(s))\n",
		len(jobs), len(p.Variants), len(p.Backings), len(p.Sizes), p.Reps)
	for _, j := range jobs {
		sc := j.Workload.Scenario()
		rk := p.Kernels[j.Variant.Name]
		name := j.Variant.Name + "/" + sc.Name
		pj = append(pj, pool.Job{MemoryMB: sc.Memory(), Run: func(ctx context.Context) {
			o := r.runVM(ctx, sc, r.costOptions(p, []bootable.Kernel{rk}, j.Dir(), j.Workload.Size, 0, fleet.Echo(r.Fleet.Echo, &mu, name)))
			s := Measure(o)
			mu.Lock()
			defer mu.Unlock()
			done++
			pt := points[key{j.Variant.Name, j.Workload.Backing, j.Workload.Size}]
			pt.Samples = append(pt.Samples, s)
			fmt.Fprintf(r.Log, "[%d/%d, %s] %-8s %-7s %-5s rep %d: %s", done, len(jobs), r.now().Sub(start).Round(time.Second),
				j.Variant.Name, j.Workload.Backing, FormatSize(j.Workload.Size), j.Rep, o.Verdict)
			if s.OK() {
				fmt.Fprintf(r.Log, "  blackout %s (workload %s)  preserved %s  metadata %s",
					FormatValue(Seconds, s.Values[MBlackout]), FormatValue(Seconds, s.Values[MWorkloadGap]),
					FormatValue(Bytes, s.Values[MPreserved]),
					FormatValue(Bytes, s.Values[MMetadata]))
			} else {
				fmt.Fprintf(r.Log, "  %s (%s)", o.Reason, o.Dir)
			}
			fmt.Fprintf(r.Log, "  [%s]\n", o.Elapsed.Round(100*time.Millisecond))
		}})
	}
	pool.Run(ctx, r.Fleet.Limits, pj)
	var out []Point
	for _, k := range order {
		pt := points[k]
		pt.Aggregate()
		out = append(out, *pt)
	}
	return out
}

// Harness measures the harness on kernel rk: the kernel tree's vmtest.sh
// flow and our comparable scenarios, interleaved per repetition, then the
// default catalogue as `luotest run` runs it.
func (r *Runner) Harness(ctx context.Context, p Plan, rk bootable.Kernel) *HarnessDoc {
	h := &HarnessDoc{Kernel: p.HarnessKernel}
	cat, files := r.Catalogue(ctx, rk)
	var ours []*scenario.Scenario
	for _, n := range HarnessScenarios() {
		s, err := cat.Find(n)
		if err != nil {
			fmt.Fprintf(r.Log, "bench: %s is not in the catalogue: not timed\n", n)
			continue
		}
		ours = append(ours, s)
		h.Ours = append(h.Ours, ScenarioCost{Scenario: n})
	}
	var it InTreeFlow
	if r.InTree != nil {
		it = r.InTree(rk)
	}
	if it != nil {
		once, err := it.Prepare(ctx)
		if err != nil {
			fmt.Fprintf(r.Log, "bench: %v\n", err)
			it = nil
		} else {
			h.InTree = &InTreeCost{Test: it.Name(), OnceS: once.Seconds()}
		}
	}
	var prep, qemu, total []float64
	wall, vmw := make([][]float64, len(ours)), make([][]float64, len(ours))
	start := r.now()
	for rep := 0; rep < p.HarnessReps && ctx.Err() == nil; rep++ {
		if it != nil {
			res, err := it.Run(ctx, filepath.Join(it.WorkDir(), fmt.Sprintf("ws-rep%d", rep)), p.InTreeTimeout)
			h.InTree.Runs++
			switch {
			case err != nil:
				h.InTree.Failed++
				h.InTree.Failures = append(h.InTree.Failures, err.Error())
				fmt.Fprintf(r.Log, "bench: in-tree %s rep %d: %v\n", it.Name(), rep, err)
			case !res.Passed:
				h.InTree.Command = res.Command
				h.InTree.Failed++
				h.InTree.Failures = append(h.InTree.Failures, res.Reason+" ("+res.Serial+")")
				fmt.Fprintf(r.Log, "bench: in-tree %s rep %d: FAIL %s (%s)\n", it.Name(), rep, res.Reason, res.Serial)
			default:
				h.InTree.Command = res.Command
				prep, qemu = append(prep, res.Prep.Seconds()), append(qemu, res.QEMU.Seconds())
				total = append(total, (res.Prep + res.QEMU).Seconds())
				fmt.Fprintf(r.Log, "bench: in-tree %s rep %d: PASS mkinitrd %s, QEMU %s\n", it.Name(), rep,
					res.Prep.Round(10*time.Millisecond), res.QEMU.Round(10*time.Millisecond))
			}
		}
		for i, s := range ours {
			o := r.runVM(ctx, s, runner.Options{
				Agent: r.Fleet.Agent, Kernels: []bootable.Kernel{rk}, Dir: filepath.Join(p.Dir, "harness", s.Name, fmt.Sprintf("rep%d", rep)),
				Files: files, Accel: r.Fleet.Accel, AccelCache: r.Fleet.AccelCache, Timeout: 5 * time.Minute, Silence: p.Silence,
			})
			c := &h.Ours[i]
			c.Runs++
			if o.Verdict != runner.Pass {
				c.Failed++
				c.Failures = append(c.Failures, fmt.Sprintf("%s: %s", o.Verdict, o.Reason))
			} else {
				wall[i] = append(wall[i], o.Elapsed.Seconds())
				if o.VM != nil {
					vmw[i] = append(vmw[i], o.VM.Elapsed.Seconds())
				}
			}
			fmt.Fprintf(r.Log, "bench: ours %s rep %d: %s %s\n", s.Name, rep, o.Verdict, o.Elapsed.Round(10*time.Millisecond))
		}
		fmt.Fprintf(r.Log, "bench: harness %d/%d reps, %s\n", rep+1, p.HarnessReps, r.now().Sub(start).Round(time.Second))
	}
	if h.InTree != nil {
		h.InTree.Prep, h.InTree.QEMU, h.InTree.Total = Summarize(prep), Summarize(qemu), Summarize(total)
	}
	for i := range h.Ours {
		h.Ours[i].Wall, h.Ours[i].VM = Summarize(wall[i]), Summarize(vmw[i])
	}
	h.SetRatios()

	if !p.NoCatalogue && ctx.Err() == nil {
		h.Catalogue = r.catalogueCost(ctx, p, rk, cat, files)
	}
	return h
}

// catalogueCost runs the default catalogue as luotest run runs it, less
// what rk cannot run (kunit without CONFIG_KUNIT would only be skipped:
// it is no part of the cost); nil when the catalogue has nothing to run.
func (r *Runner) catalogueCost(ctx context.Context, p Plan, rk bootable.Kernel, cat scenario.Catalogue, files map[string]string) *CatalogueCost {
	var todo []*scenario.Scenario
	for _, s := range cat {
		if s.HasTag("default") {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		fmt.Fprintf(r.Log, "bench: catalogue: no scenario matches\n")
		return nil
	}
	todo = slices.DeleteFunc(todo, func(s *scenario.Scenario) bool { return runner.Unmet(s, []bootable.Kernel{rk}) != "" })
	cf := *r.Fleet
	cf.Limits = r.CatalogueLimits
	cf.Solo, cf.Echo, cf.Timeout = false, nil, 5*time.Minute
	fmt.Fprintf(r.Log, "bench: the default catalogue, as luotest run runs it\n")
	cstart := r.now()
	outs := cf.Run(ctx, fleet.Batch{Kernels: []bootable.Kernel{rk}, Scenarios: todo, Files: files, Dir: filepath.Join(p.Dir, "catalogue"),
		Rerun: "luotest run -run %s"}, io.Discard)
	c := &CatalogueCost{Scenarios: len(todo), VMs: len(scenario.Partition(todo)), Parallel: cf.Limits.Slots,
		WallS: r.now().Sub(cstart).Seconds()}
	n := report.Tally(outs)
	c.Pass, c.NotPass = n.Pass, len(outs)-n.Pass
	for _, o := range outs {
		if o.Verdict != runner.Pass {
			c.Failures = append(c.Failures, o.Scenario+" "+string(o.Verdict))
		}
	}
	fmt.Fprintf(r.Log, "bench: catalogue %.1fs (%d passed, %d did not)\n", c.WallS, c.Pass, c.NotPass)
	return c
}

// Done says how many kernel-cost runs d has and how many failed.
func Done(d *Doc) string {
	runs, failed := 0, 0
	for _, p := range d.Points {
		runs += p.Runs
		failed += p.Failed
	}
	return fmt.Sprintf("%d kernel-cost runs (%d failed)", runs, failed)
}

// WriteDocs writes benchmarks.md and its plots (benchmarks/*) into out.
func WriteDocs(d *Doc, out string) error {
	const plotDir = "benchmarks"
	if err := os.MkdirAll(filepath.Join(out, plotDir), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if _, err := WritePlots(d, filepath.Join(out, plotDir)); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "benchmarks.md"))
	if err != nil {
		return fmt.Errorf("writing benchmarks.md: %w", err)
	}
	err = WriteMarkdown(f, d, MarkdownOptions{PlotDir: plotDir, Command: "make bench"})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SkipReason says why workload w cannot run on a kernel whose source
// declares caps (kernels.SourceCaps), "" if it can: a hugetlb file must
// be a whole number of huge pages, and the kernel must be able to preserve
// hugetlb memfds (a prebuilt kernel without source declares nothing and
// is not tried).
func SkipReason(w Workload, caps map[string]bool) string {
	hp := w.Backing.HugePageSize()
	if hp == 0 {
		return ""
	}
	if w.Size%hp != 0 {
		return fmt.Sprintf("%s is not a whole number of %s pages", FormatSize(w.Size), FormatSize(hp))
	}
	if !caps[kernels.CapHugetlb] {
		return "the kernel cannot preserve hugetlb memfds (stock 7.3 answers ENOENT)"
	}
	return ""
}
