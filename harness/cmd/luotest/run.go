package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/image"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/shell"
	"github.com/memfd-luo/memfd-luo/harness/vm"
)

// runFlags are the flags shared by run and matrix: what to run and how.
type runFlags struct {
	only, tag, out, accel, shard string
	timeout, silence             time.Duration
	verbose, solo                bool
	parallel, mem                int
}

func (r *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.only, "run", "", "run only these scenarios (comma-separated names)")
	fs.StringVar(&r.tag, "tag", "default", "run the scenarios carrying this tag ('all' for every one)")
	fs.StringVar(&r.out, "out", "", "artefact directory (default: <repo>/out/runs/<time>)")
	fs.StringVar(&r.accel, "accel", "auto", "accelerator: auto (KVM if it really works, else TCG), kvm or tcg")
	fs.DurationVar(&r.timeout, "timeout", 5*time.Minute, "timeout of one VM")
	fs.DurationVar(&r.silence, "silence", 2*time.Minute, "stop a VM that prints nothing for this long")
	fs.BoolVar(&r.verbose, "v", false, "echo the guest console")
	fs.IntVar(&r.parallel, "parallel", runtime.NumCPU(), "VMs at once (also bounded by -mem)")
	fs.IntVar(&r.mem, "mem", defaultMemBudget(), "guest memory budget in MiB for VMs running at once")
	fs.BoolVar(&r.solo, "solo", false, "one VM per scenario (default: scenarios that can share a boot chain share one VM)")
	fs.StringVar(&r.shard, "shard", "", "run shard i of n of the selected scenarios (i/n, e.g. 2/4), for CI matrices")
}

// scaleTimeouts multiplies the VM timeout and silence limit by the
// flavour's factor, unless they were given on the command line.
func (r *runFlags) scaleTimeouts(fs *flag.FlagSet, f flavour.Flavour) {
	set := flagsGiven(fs)
	n := time.Duration(f.TimeoutFactor())
	if !set["timeout"] {
		r.timeout *= n
	}
	if !set["silence"] {
		r.silence *= n
	}
}

// selectScenarios picks what -run, -tag and -shard ask for.
func (r *runFlags) selectScenarios(cat scenario.Catalogue) ([]*scenario.Scenario, error) {
	var todo []*scenario.Scenario
	if r.only != "" {
		for _, n := range strings.Split(r.only, ",") {
			s, err := cat.Find(strings.TrimSpace(n))
			if err != nil {
				return nil, err
			}
			todo = append(todo, s)
		}
	} else {
		for _, s := range cat {
			if r.tag == "all" || s.HasTag(r.tag) {
				todo = append(todo, s)
			}
		}
	}
	if r.shard != "" {
		var i, n int
		if _, err := fmt.Sscanf(r.shard, "%d/%d", &i, &n); err != nil || n < 1 || i < 1 || i > n {
			return nil, fmt.Errorf("-shard %q: want i/n with 1 <= i <= n", r.shard)
		}
		sort.Slice(todo, func(a, b int) bool { return todo[a].Name < todo[b].Name })
		todo = pool.Shard(todo, i, n)
	}
	if len(todo) == 0 {
		return nil, fmt.Errorf("no scenario matches")
	}
	return todo, nil
}

// env is what every VM of an invocation shares: the fleet that runs
// them and where the run keeps its things.
type env struct {
	*fleet.Fleet
	root     string
	cacheDir string
	// flavour is the flavour of the run's kernels.
	flavour flavour.Flavour
}

// check refuses flag values that would otherwise fail late or be ignored.
func (f *runFlags) check() error {
	switch f.accel {
	case "auto", "kvm", "tcg":
	default:
		return fmt.Errorf("-accel %q: want auto, kvm or tcg", f.accel)
	}
	return nil
}

// newEnv builds the agent into dir and settles the accelerator.
func newEnv(ctx context.Context, f *runFlags, root, dir string) (*env, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	cacheDir, err := cache.Dir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fl := f.fleet()
	fl.Agent, fl.AccelCache = filepath.Join(dir, "luoagent"), filepath.Join(cacheDir, "accel")
	if err := image.BuildAgent(ctx, root, fl.Agent); err != nil {
		return nil, err
	}
	fl.Accel, fl.AccelWhy = vm.ResolveAccel(ctx, vm.Accel(strings.TrimPrefix(f.accel, "auto")), "qemu-system-x86_64", fl.AccelCache)
	fmt.Fprintf(os.Stderr, "accelerator: %s (%s)\n", fl.Accel, fl.AccelWhy)
	return &env{Fleet: fl, root: root, cacheDir: cacheDir}, nil
}

// fleet returns a fleet with the flags' limits; the agent and the
// accelerator are newEnv's.
func (f *runFlags) fleet() *fleet.Fleet {
	fl := &fleet.Fleet{Timeout: f.timeout, Silence: f.silence, Solo: f.solo,
		Limits: pool.Limits{Slots: f.parallel, MemoryMB: f.mem}, Log: os.Stderr}
	if f.verbose {
		fl.Echo = os.Stderr
	}
	return fl
}

// writeReports writes results.{xml,json,ktap} into dir.
func (e *env) writeReports(dir, suite string, start time.Time, kerns []bootable.Kernel, outs []*runner.Outcome) {
	host, _ := os.Hostname()
	info := report.RunInfo{Started: start, Host: host, Accel: string(e.Accel) + " (" + e.AccelWhy + ")", Kernels: kerns,
		Command: strings.Join(os.Args, " "), Suite: suiteName(e.flavour, suite), Flavour: e.flavour}
	if err := report.WriteAll(dir, info, outs); err != nil {
		fmt.Fprintf(os.Stderr, "luotest: writing reports: %v\n", err)
	}
}

func runDir(root, out string) string {
	if out != "" {
		return out
	}
	return filepath.Join(root, "out", "runs", time.Now().Format("20060102-150405"))
}

func cmdRun(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	k.registerFlavour(fs)
	var f runFlags
	f.register(fs)
	from := fs.String("from", "", "two-kernel run: boot this kernel first (patched, stock, tree:DIR, bzimage:PATH, debian:X.Y[.Z]) ...")
	to := fs.String("to", "", "... and kexec into this one")
	fromArgs := fs.String("from-args", "", "extra command line for the -from kernel (e.g. memfd_luo.abi=v2)")
	toArgs := fs.String("to-args", "", "extra command line for the -to kernel")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	f.scaleTimeouts(fs, k.flavour)
	start := time.Now()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "luotest run: "+format+"\n", a...)
		return 2
	}
	if err := f.check(); err != nil {
		return fail("%v", err)
	}
	if !k.flavour.IsNormal() {
		fmt.Fprintf(os.Stderr, "flavour %s: every kernel boots with %q; VM timeout %s, silence limit %s\n",
			k.flavour, k.flavour.Cmdline(), f.timeout, f.silence)
	}

	var kerns []bootable.Kernel
	var root string
	if *from != "" || *to != "" {
		if *from == "" || *to == "" {
			return fail("-from and -to go together")
		}
		for _, x := range []struct{ spec, args string }{{*from, *fromArgs}, {*to, *toArgs}} {
			rk, r, err := prepareSpec(ctx, &k, kernels.Spec(x.spec))
			if err != nil {
				return fail("preparing kernel %s: %v", x.spec, err)
			}
			rk.Cmdline, root = x.args, r
			kerns = append(kerns, rk)
		}
	} else {
		rk, r, err := prepare(ctx, &k)
		if err != nil {
			return fail("preparing the kernel: %v", err)
		}
		root, kerns = r, []bootable.Kernel{rk}
	}
	dir := runDir(root, f.out)
	e, err := newEnv(ctx, &f, root, dir)
	if err != nil {
		return fail("%v", err)
	}
	e.flavour = k.flavour
	cat, files, note := catalogue(ctx, kerns[0], root, e.cacheDir)
	if note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	todo, err := f.selectScenarios(cat)
	if err != nil {
		return fail("%v", err)
	}
	rerunArgs := append([]string{rerunBinary(root), "run"}, k.args()...)
	if *from != "" {
		rerunArgs = append(rerunArgs, "-from", *from, "-to", *to)
		if *fromArgs != "" {
			rerunArgs = append(rerunArgs, "-from-args", shell.Quote(*fromArgs))
		}
		if *toArgs != "" {
			rerunArgs = append(rerunArgs, "-to-args", shell.Quote(*toArgs))
		}
	}
	rerun := strings.Join(append(rerunArgs, "-run", "%s"), " ")
	var pred *compat.Prediction
	if len(kerns) == 2 {
		if p, err := predictPair(ctx, kerns[0], kerns[1]); err != nil {
			fmt.Fprintf(os.Stderr, "luotest run: no compatibility prediction: %v\n", err)
		} else {
			pred = &p
			fmt.Print(p.String())
		}
	}
	outcomes := e.Run(ctx, fleet.Batch{Kernels: kerns, Scenarios: todo, Files: files, Dir: dir, Rerun: rerun}, os.Stdout)
	e.writeReports(dir, "", start, kerns, outcomes)
	report.Summary(os.Stdout, outcomes, dir, time.Since(start))
	code := report.ExitCode(outcomes)
	if pred != nil {
		code = checkPrediction(os.Stdout, *pred, code, dir)
	}
	return code
}

// checkPrediction writes a two-kernel run's prediction beside its outcome
// (code, report.ExitCode) and returns the run's exit status: a run whose
// sessions survived although compat predicted their loss fails.
func checkPrediction(w io.Writer, pred compat.Prediction, code int, dir string) int {
	fmt.Fprintf(w, "prediction (luotest compat): %s; outcome: %s\n", pred.Summary(), map[bool]string{true: "every scenario passed", false: "not every scenario passed"}[code == 0])
	if pred.KeepsSessions != (code == 0) && code != 4 {
		fmt.Fprintf(w, "the prediction and the outcome disagree: see %s\n", dir)
		if code == 0 {
			// Sessions predicted lost came through: the
			// prediction (or the kernel) is wrong.
			code = 1
		}
	}
	return code
}
