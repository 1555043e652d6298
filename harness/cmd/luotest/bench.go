package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bench"
	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/selftests"
)

// benchScenarios are our scenarios timed against the in-tree vmtest.sh
// flow: the selftest it runs, through our harness, and our own
// equivalent of it.
func benchScenarios() []string {
	return []string{selftests.ScenarioPrefix + "luo_kexec_simple", "basic-64m"}
}

type benchFlags struct {
	reps, harnessReps, parallel, mem, jobs    int
	minSize, maxSize, backings, kernels       string
	harnessKernel, out, jsonOut, compare      string
	runs, repo, accel, render                 string
	timeout, silence, inTreeTimeout           time.Duration
	noKernel, noHarness, noCatalogue, verbose bool
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&b.reps, "reps", 3, "runs per point (min/median/max are reported)")
	fs.IntVar(&b.harnessReps, "harness-reps", 0, "runs of the in-tree flow and of each comparable scenario (default: -reps)")
	fs.StringVar(&b.minSize, "min-size", "64M", "smallest memfd size")
	fs.StringVar(&b.maxSize, "max-size", "2G", "largest memfd size (sizes double from -min-size)")
	fs.StringVar(&b.backings, "backings", "4k,thp,sparse", "backings to measure: 4k (pwrite), thp (mmap, shmem THP), sparse (1/64 written)")
	fs.StringVar(&b.kernels, "kernels", "", "kernel variants (comma-separated; default every variant the series supports): "+variantNames())
	fs.StringVar(&b.harnessKernel, "harness-kernel", "patched", "kernel variant the harness-cost figures run on")
	fs.BoolVar(&b.noKernel, "no-kernel", false, "skip the kernel-cost points")
	fs.BoolVar(&b.noHarness, "no-harness", false, "skip the harness-cost figures (catalogue, in-tree flow)")
	fs.BoolVar(&b.noCatalogue, "no-catalogue", false, "skip the default catalogue's wall time")
	fs.StringVar(&b.out, "out", "", "write benchmarks.md, benchmarks.json and the plots (benchmarks/*.png, *.svg) into this directory (make bench: docs)")
	fs.StringVar(&b.jsonOut, "json", "", "also write the JSON results to this file")
	fs.StringVar(&b.compare, "compare", "", "print the deltas against this earlier JSON; with a second JSON as argument, compare the two without running anything")
	fs.StringVar(&b.render, "render", "", "run nothing: render this bench JSON (table; with -out, the document and plots)")
	fs.StringVar(&b.runs, "runs", "", "artefact directory (default: <repo>/out/bench/<time>)")
	fs.StringVar(&b.repo, "repo", "", "memfd-luo checkout (default: found from the working directory)")
	fs.StringVar(&b.accel, "accel", "auto", "accelerator: auto, kvm or tcg")
	fs.DurationVar(&b.timeout, "timeout", 0, "timeout of one VM (default: 5m plus 4m per GiB of memfd)")
	fs.DurationVar(&b.silence, "silence", 3*time.Minute, "stop a VM that prints nothing for this long")
	fs.DurationVar(&b.inTreeTimeout, "in-tree-timeout", 2*time.Minute, "timeout of one in-tree QEMU run (vmtest.sh uses 30s)")
	fs.IntVar(&b.parallel, "parallel", 1, "bench VMs at once (1 keeps them from competing for the CPUs)")
	fs.IntVar(&b.mem, "mem", defaultMemBudget(), "guest memory budget in MiB for VMs running at once")
	fs.IntVar(&b.jobs, "j", 0, "kernel build jobs (default: number of CPUs)")
	fs.BoolVar(&b.verbose, "v", false, "echo the guest consoles")
}

func variantNames() string {
	var n []string
	for _, v := range bench.Variants() {
		n = append(n, v.Name)
	}
	return strings.Join(n, ", ")
}

func cmdBench(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	var bf benchFlags
	bf.register(fs)
	fs.Parse(args)
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "luotest bench: "+format+"\n", a...)
		return 2
	}
	if bf.compare != "" && fs.NArg() == 1 {
		return benchCompareFiles(bf.compare, fs.Arg(0))
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %v (a second JSON goes with -compare)", fs.Args())
	}
	if bf.render != "" {
		return benchRender(bf.render, bf.out)
	}
	if bf.reps < 1 {
		return fail("-reps must be at least 1")
	}
	if bf.harnessReps <= 0 {
		bf.harnessReps = bf.reps
	}
	minSize, err := bench.ParseSize(bf.minSize)
	if err != nil {
		return fail("-min-size: %v", err)
	}
	maxSize, err := bench.ParseSize(bf.maxSize)
	if err != nil {
		return fail("-max-size: %v", err)
	}
	sizes := bench.Sizes(minSize, maxSize)
	if len(sizes) == 0 {
		return fail("no size between -min-size %s and -max-size %s", bf.minSize, bf.maxSize)
	}
	backings, err := bench.ParseBackings(bf.backings)
	if err != nil {
		return fail("-backings: %v", err)
	}
	variants, err := bench.SelectVariants(bench.Variants(), bf.kernels)
	if err != nil {
		return fail("-kernels: %v", err)
	}
	var old *bench.Doc
	if bf.compare != "" {
		if old, err = bench.Load(bf.compare); err != nil {
			return fail("%v", err)
		}
	}
	root, err := repoRoot(bf.repo)
	if err != nil {
		return fail("%v", err)
	}
	start := time.Now()
	doc := &bench.Doc{
		Schema: bench.Schema, Started: start, Command: strings.Join(os.Args, " "),
		Machine: bench.ReadMachine(), Metrics: bench.Metrics(),
		Config: bench.Config{Reps: bf.reps, Sizes: sizes, Backings: backings, HeadroomMB: bench.HeadroomMB, Parallel: bf.parallel},
	}

	// Kernels: prepare each spec once; a variant whose requirement the
	// patched source lacks is skipped with the reason.
	kf := &kernelFlags{repo: bf.repo, jobs: bf.jobs}
	prepared := map[kernels.Spec]bootable.Kernel{}
	get := func(s kernels.Spec) (bootable.Kernel, error) {
		if rk, ok := prepared[s]; ok {
			return rk, nil
		}
		rk, _, err := prepareSpec(ctx, kf, s)
		if err != nil {
			return rk, fmt.Errorf("preparing kernel %s: %w", s, err)
		}
		prepared[s] = rk
		return rk, nil
	}
	byName := map[string]bootable.Kernel{}
	var run []bench.Variant
	need := variants
	if !bf.noHarness {
		hv, err := bench.SelectVariants(bench.Variants(), bf.harnessKernel)
		if err != nil {
			return fail("-harness-kernel: %v", err)
		}
		need = append(append([]bench.Variant(nil), variants...), hv...)
	}
	seenVariant := map[string]bool{}
	for _, v := range need {
		if seenVariant[v.Name] {
			continue
		}
		seenVariant[v.Name] = true
		id := bench.KernelID{Variant: v}
		inKernelCost := false
		for _, kv := range variants {
			inKernelCost = inKernelCost || kv.Name == v.Name
		}
		// Without -kernels, plain "patched" would measure one of the
		// abi lines a second time once the series has the knob.
		if bf.kernels == "" && v.Name == "patched" && inKernelCost {
			p, err := get("patched")
			if err != nil {
				return fail("%v", err)
			}
			if caps := kernels.SourceCaps(p.SrcDir); caps[kernels.CapABIKnob] {
				id.Skipped = "the same kernel as the patched-abi-* line of its default policy"
				for c := range caps {
					if strings.HasPrefix(c, "abi-default:") {
						id.Skipped = "the same kernel as patched-abi-" + strings.TrimPrefix(c, "abi-default:") + " (its default policy)"
					}
				}
				fmt.Fprintf(os.Stderr, "bench: kernel %s skipped: %s\n", v.Name, id.Skipped)
				inKernelCost = false // still prepared for the harness figures
			}
		}
		if v.Requires != "" {
			p, err := get("patched")
			if err != nil {
				return fail("%v", err)
			}
			if !kernels.SourceCaps(p.SrcDir)[v.Requires] {
				id.Skipped = fmt.Sprintf("the series has no %s yet", v.Requires)
				if bf.kernels != "" || inKernelCost {
					doc.Kernels = append(doc.Kernels, id)
					fmt.Fprintf(os.Stderr, "bench: kernel %s skipped: %s\n", v.Name, id.Skipped)
				}
				continue
			}
		}
		rk, err := get(v.Spec)
		if err != nil {
			return fail("%v", err)
		}
		rk.Cmdline = v.Cmdline
		byName[v.Name] = rk
		id.Release, id.BzImage = rk.Release, rk.BzImage
		if id.SHA256, err = bench.FileSHA256(rk.BzImage); err != nil {
			return fail("%v", err)
		}
		if inKernelCost {
			run = append(run, v)
			doc.Kernels = append(doc.Kernels, id)
			doc.Config.Kernels = append(doc.Config.Kernels, v.Name)
		} else {
			doc.Kernels = append(doc.Kernels, id)
		}
	}

	dir := bf.runs
	if dir == "" {
		dir = filepath.Join(root, "out", "bench", start.Format("20060102-150405"))
	}
	rf := &runFlags{tag: "default", accel: bf.accel, timeout: 5 * time.Minute, silence: bf.silence,
		verbose: bf.verbose, parallel: bf.parallel, mem: bf.mem}
	e, err := newEnv(ctx, rf, root, dir)
	if err != nil {
		return fail("%v", err)
	}
	doc.Accel, doc.AccelWhy = string(e.Accel), e.AccelWhy
	fmt.Fprintf(os.Stderr, "bench: artefacts in %s\n", dir)

	if !bf.noKernel && len(run) > 0 {
		doc.Points = benchKernelCost(ctx, e, &bf, run, byName, backings, sizes, dir)
		// The guest's own view of each kernel, from the first run.
		for i := range doc.Kernels {
			for _, p := range doc.Points {
				if p.Kernel != doc.Kernels[i].Variant.Name {
					continue
				}
				for _, s := range p.Samples {
					if s.Uname != "" && doc.Kernels[i].Uname == "" {
						doc.Kernels[i].Uname = s.Uname
					}
				}
			}
		}
	}
	if !bf.noHarness && ctx.Err() == nil {
		if rk, ok := byName[bf.harnessKernel]; ok {
			doc.Harness = benchHarness(ctx, e, &bf, bf.harnessKernel, rk, dir)
		} else {
			doc.Notes = append(doc.Notes, fmt.Sprintf("harness cost not measured: kernel %s is not available", bf.harnessKernel))
		}
	}
	if ctx.Err() != nil {
		doc.Notes = append(doc.Notes, "interrupted: the figures are partial")
	}
	doc.ElapsedS = time.Since(start).Seconds()

	bench.WriteTable(os.Stdout, doc)
	code := 0
	writeJSON := func(path string) {
		f, err := os.Create(path)
		if err == nil {
			err = bench.WriteJSON(f, doc)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "luotest bench: writing %s: %v\n", path, err)
			code = 2
		}
	}
	writeJSON(filepath.Join(dir, "bench.json"))
	if bf.jsonOut != "" {
		writeJSON(bf.jsonOut)
	}
	if bf.out != "" {
		if err := writeBenchDocs(doc, bf.out); err != nil {
			fmt.Fprintf(os.Stderr, "luotest bench: %v\n", err)
			code = 2
		} else {
			writeJSON(filepath.Join(bf.out, "benchmarks.json"))
			fmt.Fprintf(os.Stderr, "bench: wrote %s\n", filepath.Join(bf.out, "benchmarks.md"))
		}
	}
	if old != nil {
		fmt.Println()
		bench.WriteCompare(os.Stdout, old, doc, bench.Compare(old, doc))
	}
	fmt.Fprintf(os.Stderr, "bench: %s in %s; results %s\n", describeDone(doc), time.Since(start).Round(time.Second), filepath.Join(dir, "bench.json"))
	if ctx.Err() != nil && code == 0 {
		code = 124
	}
	return code
}

func describeDone(d *bench.Doc) string {
	runs, failed := 0, 0
	for _, p := range d.Points {
		runs += p.Runs
		failed += p.Failed
	}
	return fmt.Sprintf("%d kernel-cost runs (%d failed)", runs, failed)
}

// benchVMTimeout bounds one bench VM: writing and verifying take
// minutes per GiB under TCG.
func benchVMTimeout(flagVal time.Duration, size int64) time.Duration {
	if flagVal > 0 {
		return flagVal
	}
	return 5*time.Minute + time.Duration(float64(4*time.Minute)*float64(size)/float64(bench.GiB))
}

// benchKernelCost runs every (kernel, backing, size, repetition) in a VM
// of its own and aggregates the points.
func benchKernelCost(ctx context.Context, e *env, bf *benchFlags, variants []bench.Variant, byName map[string]bootable.Kernel,
	backings []bench.Backing, sizes []int64, dir string) []bench.Point {
	jobs := bench.Jobs(variants, backings, sizes, bf.reps)
	type key struct {
		kernel  string
		backing bench.Backing
		size    int64
	}
	points := map[key]*bench.Point{}
	var order []key
	for _, j := range jobs {
		k := key{j.Variant.Name, j.Workload.Backing, j.Workload.Size}
		if points[k] == nil {
			points[k] = &bench.Point{Kernel: k.kernel, Backing: k.backing, Size: k.size,
				Written: j.Workload.Written(), MemoryMB: j.Workload.MemoryMB()}
			order = append(order, k)
		}
	}
	var (
		mu   sync.Mutex
		done int
		pj   []pool.Job
	)
	fmt.Fprintf(os.Stderr, "bench: %d kernel-cost VMs (%d kernel(s) × %d backing(s) × %d size(s) × %d rep(s))\n",
		len(jobs), len(variants), len(backings), len(sizes), bf.reps)
	for _, j := range jobs {
		sc := j.Workload.Scenario()
		rk := byName[j.Variant.Name]
		name := j.Variant.Name + "/" + sc.Name
		pj = append(pj, pool.Job{MemoryMB: sc.Memory(), Run: func(ctx context.Context) {
			o := runner.Run(ctx, sc, runner.Options{
				Agent: e.Agent, Kernels: []bootable.Kernel{rk}, Dir: filepath.Join(dir, "kernel", j.Dir()),
				Accel: e.Accel, AccelCache: e.AccelCache, Timeout: benchVMTimeout(bf.timeout, j.Workload.Size),
				Silence: bf.silence, OnLine: benchOnLine(bf.verbose, name, &mu),
			})
			s := bench.Measure(o)
			mu.Lock()
			defer mu.Unlock()
			done++
			p := points[key{j.Variant.Name, j.Workload.Backing, j.Workload.Size}]
			p.Samples = append(p.Samples, s)
			fmt.Fprintf(os.Stderr, "[%d/%d] %-8s %-7s %-5s rep %d: %s", done, len(jobs), j.Variant.Name, j.Workload.Backing,
				bench.FormatSize(j.Workload.Size), j.Rep, o.Verdict)
			if s.OK() {
				fmt.Fprintf(os.Stderr, "  blackout %s  preserved %s  metadata %s",
					bench.FormatValue(bench.Seconds, s.Values[bench.MBlackout]),
					bench.FormatValue(bench.Bytes, s.Values[bench.MPreserved]),
					bench.FormatValue(bench.Bytes, s.Values[bench.MMetadata]))
			} else {
				fmt.Fprintf(os.Stderr, "  %s (%s)", o.Reason, o.Dir)
			}
			fmt.Fprintf(os.Stderr, "  [%s]\n", o.Elapsed.Round(100*time.Millisecond))
		}})
	}
	pool.Run(ctx, pool.Limits{Slots: bf.parallel, MemoryMB: bf.mem}, pj)
	var out []bench.Point
	for _, k := range order {
		p := points[k]
		p.Aggregate()
		out = append(out, *p)
	}
	return out
}

func benchOnLine(verbose bool, name string, mu *sync.Mutex) func(time.Duration, string) {
	if !verbose {
		return nil
	}
	return func(t time.Duration, l string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stderr, "%s [%7.3f] %s\n", name, t.Seconds(), l)
	}
}

// benchHarness measures the harness: the kernel tree's vmtest.sh flow and
// our comparable scenarios, interleaved per repetition, then the default
// catalogue as `luotest run` runs it.
func benchHarness(ctx context.Context, e *env, bf *benchFlags, variant string, rk bootable.Kernel, dir string) *bench.HarnessDoc {
	h := &bench.HarnessDoc{Kernel: variant}
	cat, files, note := catalogue(ctx, rk, e.root, e.cacheDir)
	if note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	var ours []*scenario.Scenario
	for _, n := range benchScenarios() {
		s, err := cat.Find(n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s is not in the catalogue: not timed\n", n)
			continue
		}
		ours = append(ours, s)
		h.Ours = append(h.Ours, bench.ScenarioCost{Scenario: n})
	}
	var it *bench.InTree
	if rk.SrcDir != "" {
		it = &bench.InTree{SrcDir: rk.SrcDir, BzImage: rk.BzImage, Work: bench.WorkDir(e.cacheDir, rk.SrcDir), Log: os.Stderr}
		once, err := it.Prepare(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			it = nil
		} else {
			h.InTree = &bench.InTreeCost{Test: it.Test, OnceS: once.Seconds()}
		}
	}
	var prep, qemu, total []float64
	wall, vmw := make([][]float64, len(ours)), make([][]float64, len(ours))
	for r := 0; r < bf.harnessReps && ctx.Err() == nil; r++ {
		if it != nil {
			res, err := it.Run(ctx, filepath.Join(it.Work, fmt.Sprintf("ws-rep%d", r)), bf.inTreeTimeout)
			h.InTree.Runs++
			switch {
			case err != nil:
				h.InTree.Failed++
				h.InTree.Failures = append(h.InTree.Failures, err.Error())
				fmt.Fprintf(os.Stderr, "bench: in-tree %s rep %d: %v\n", it.Test, r, err)
			case !res.Passed:
				h.InTree.Command = res.Command
				h.InTree.Failed++
				h.InTree.Failures = append(h.InTree.Failures, res.Reason+" ("+res.Serial+")")
				fmt.Fprintf(os.Stderr, "bench: in-tree %s rep %d: FAIL %s (%s)\n", it.Test, r, res.Reason, res.Serial)
			default:
				h.InTree.Command = res.Command
				prep, qemu = append(prep, res.Prep.Seconds()), append(qemu, res.QEMU.Seconds())
				total = append(total, (res.Prep + res.QEMU).Seconds())
				fmt.Fprintf(os.Stderr, "bench: in-tree %s rep %d: PASS mkinitrd %s, QEMU %s\n", it.Test, r,
					res.Prep.Round(10*time.Millisecond), res.QEMU.Round(10*time.Millisecond))
			}
		}
		for i, s := range ours {
			o := runner.Run(ctx, s, runner.Options{
				Agent: e.Agent, Kernels: []bootable.Kernel{rk}, Dir: filepath.Join(dir, "harness", s.Name, fmt.Sprintf("rep%d", r)),
				Files: files, Accel: e.Accel, AccelCache: e.AccelCache, Timeout: 5 * time.Minute, Silence: bf.silence,
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
			fmt.Fprintf(os.Stderr, "bench: ours %s rep %d: %s %s\n", s.Name, r, o.Verdict, o.Elapsed.Round(10*time.Millisecond))
		}
	}
	if h.InTree != nil {
		h.InTree.Prep, h.InTree.QEMU, h.InTree.Total = bench.Summarize(prep), bench.Summarize(qemu), bench.Summarize(total)
	}
	for i := range h.Ours {
		h.Ours[i].Wall, h.Ours[i].VM = bench.Summarize(wall[i]), bench.Summarize(vmw[i])
	}
	h.SetRatios()

	if !bf.noCatalogue && ctx.Err() == nil {
		cf := *e.Fleet
		cf.Limits = pool.Limits{Slots: runtime.NumCPU(), MemoryMB: defaultMemBudget()}
		cf.Solo, cf.Echo, cf.Timeout = false, nil, 5*time.Minute
		sel := runFlags{tag: "default"}
		todo, err := sel.selectScenarios(cat)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: catalogue: %v\n", err)
			return h
		}
		// What the kernel cannot run (kunit without CONFIG_KUNIT)
		// would only be skipped: it is no part of the cost.
		todo = slices.DeleteFunc(todo, func(s *scenario.Scenario) bool { return runner.Unmet(s, []bootable.Kernel{rk}) != "" })
		fmt.Fprintf(os.Stderr, "bench: the default catalogue, as luotest run runs it\n")
		cstart := time.Now()
		outs := cf.Run(ctx, fleet.Batch{Kernels: []bootable.Kernel{rk}, Scenarios: todo, Files: files, Dir: filepath.Join(dir, "catalogue"),
			Rerun: "luotest run -run %s"}, io.Discard)
		c := &bench.CatalogueCost{Scenarios: len(todo), VMs: len(scenario.Partition(todo)), Parallel: cf.Limits.Slots,
			WallS: time.Since(cstart).Seconds()}
		for _, o := range outs {
			if o.Verdict == runner.Pass {
				c.Pass++
			} else {
				c.NotPass++
				c.Failures = append(c.Failures, o.Scenario+" "+string(o.Verdict))
			}
		}
		h.Catalogue = c
		fmt.Fprintf(os.Stderr, "bench: catalogue %.1fs (%d passed, %d did not)\n", c.WallS, c.Pass, c.NotPass)
	}
	return h
}

// writeBenchDocs writes benchmarks.md and its plots into out.
func writeBenchDocs(d *bench.Doc, out string) error {
	const plotDir = "benchmarks"
	if err := os.MkdirAll(filepath.Join(out, plotDir), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if _, err := bench.WritePlots(d, filepath.Join(out, plotDir)); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "benchmarks.md"))
	if err != nil {
		return fmt.Errorf("writing benchmarks.md: %w", err)
	}
	err = bench.WriteMarkdown(f, d, bench.MarkdownOptions{PlotDir: plotDir, Command: "make bench"})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// benchRender prints an earlier run and, with out, writes its document
// and plots again (e.g. after the document's layout changed).
func benchRender(path, out string) int {
	d, err := bench.Load(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest bench: %v\n", err)
		return 2
	}
	bench.WriteTable(os.Stdout, d)
	if out == "" {
		return 0
	}
	if err := writeBenchDocs(d, out); err != nil {
		fmt.Fprintf(os.Stderr, "luotest bench: %v\n", err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", filepath.Join(out, "benchmarks.md"))
	return 0
}

// benchCompareFiles compares two bench JSON documents.
func benchCompareFiles(oldPath, newPath string) int {
	old, err := bench.Load(oldPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest bench: %v\n", err)
		return 2
	}
	cur, err := bench.Load(newPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest bench: %v\n", err)
		return 2
	}
	bench.WriteCompare(os.Stdout, old, cur, bench.Compare(old, cur))
	return 0
}
