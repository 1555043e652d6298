package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bench"
	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

type benchFlags struct {
	reps, harnessReps, parallel, mem, jobs    int
	paired, pairedReps, cpus                  int
	minSize, maxSize, backings, kernels       string
	harnessKernel, out, jsonOut, compare      string
	runs, repo, accel, render, icount         string
	timeout, silence, inTreeTimeout           time.Duration
	noKernel, noHarness, noCatalogue, verbose bool
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&b.reps, "reps", 3, "runs per point (min/median/max are reported)")
	fs.IntVar(&b.harnessReps, "harness-reps", 0, "runs of the in-tree flow and of each comparable scenario (default: -reps)")
	fs.IntVar(&b.paired, "paired", 0, "also measure the two -kernels paired: VMs of this many kexecs alternating them on the same file (0: not paired; 8 is a good value)")
	fs.IntVar(&b.pairedReps, "paired-reps", 0, "paired VMs per backing and size, half starting on each kernel (default: -reps)")
	fs.IntVar(&b.cpus, "cpus", 2, "vCPUs of the kernel-cost and paired VMs (1 keeps a second TCG vCPU thread from competing with the measured one)")
	fs.StringVar(&b.icount, "icount", "", "QEMU -icount setting of the kernel-cost and paired VMs (TCG only), e.g. shift=0: guest times then count executed instructions (1 ns each), free of the host's speed")
	fs.StringVar(&b.minSize, "min-size", "64M", "smallest memfd size")
	fs.StringVar(&b.maxSize, "max-size", "2G", "largest memfd size (sizes double from -min-size)")
	fs.StringVar(&b.backings, "backings", "4k,thp,sparse", "backings to measure: 4k (pwrite), thp (mmap, shmem THP), sparse (1/64 written), hugetlb-2m, hugetlb-1g (MFD_HUGETLB, the series only)")
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
	if bf.cpus < 1 {
		return fail("-cpus must be at least 1")
	}
	if bf.paired < 0 || bf.paired == 1 {
		return fail("-paired must be 0 (off) or at least 2 kexecs")
	}
	if bf.pairedReps <= 0 {
		bf.pairedReps = bf.reps
	}
	if bf.paired == 0 {
		bf.pairedReps = 0
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
	if bf.paired > 0 {
		if _, _, err := bench.PairedVariants(variants); err != nil {
			return fail("-paired: %v (name them with -kernels, e.g. -kernels stock,patched)", err)
		}
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
		Config: bench.Config{Reps: bf.reps, Sizes: sizes, Backings: backings, HeadroomMB: bench.HeadroomMB, Parallel: bf.parallel,
			PairedHops: bf.paired, PairedReps: bf.pairedReps, CPUs: bf.cpus, ICount: bf.icount},
	}

	// Kernels: prepare each spec once; a variant whose requirement the
	// patched source lacks is skipped with the reason.
	kf := &kernelFlags{repo: bf.repo, jobs: bf.jobs}
	sel := bench.Selection{Variants: variants, Default: bf.kernels == ""}
	if !bf.noHarness {
		if sel.Harness, err = bench.SelectVariants(bench.Variants(), bf.harnessKernel); err != nil {
			return fail("-harness-kernel: %v", err)
		}
	}
	byName, run, err := bench.PrepareKernels(ctx, doc, sel, bootable.Once(func(ctx context.Context, s kernels.Spec) (bootable.Kernel, error) {
		rk, _, err := prepareSpec(ctx, kf, s)
		return rk, err
	}), kernels.SourceCaps, os.Stderr)
	if err != nil {
		return fail("%v", err)
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

	r := &bench.Runner{
		Fleet:           e.Fleet,
		CatalogueLimits: pool.Limits{Slots: runtime.NumCPU(), MemoryMB: defaultMemBudget()},
		Catalogue: func(ctx context.Context, rk bootable.Kernel) (scenario.Catalogue, map[string]string) {
			cat, files, note := catalogue(ctx, rk, e.root, e.cacheDir)
			if note != "" {
				fmt.Fprintln(os.Stderr, note)
			}
			return cat, files
		},
		InTree: func(rk bootable.Kernel) bench.InTreeFlow {
			if rk.SrcDir == "" {
				return nil
			}
			return &bench.InTree{SrcDir: rk.SrcDir, BzImage: rk.BzImage, Work: bench.WorkDir(e.cacheDir, rk.SrcDir), Log: os.Stderr}
		},
		Log: os.Stderr,
	}
	r.Run(ctx, doc, bench.Plan{
		Variants: run, Kernels: byName, Backings: backings, Sizes: sizes, Reps: bf.reps, HarnessReps: bf.harnessReps,
		PairedHops: bf.paired, PairedReps: bf.pairedReps, CPUs: bf.cpus, ICount: bf.icount,
		Timeout: bf.timeout, Silence: bf.silence, InTreeTimeout: bf.inTreeTimeout, HarnessKernel: bf.harnessKernel,
		NoKernel: bf.noKernel, NoHarness: bf.noHarness, NoCatalogue: bf.noCatalogue, Dir: dir,
	})

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
		if err := bench.WriteDocs(doc, bf.out); err != nil {
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
	fmt.Fprintf(os.Stderr, "bench: %s in %s; results %s\n", bench.Done(doc), time.Since(start).Round(time.Second), filepath.Join(dir, "bench.json"))
	if ctx.Err() != nil && code == 0 {
		code = 124
	}
	return code
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
	if err := bench.WriteDocs(d, out); err != nil {
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
