// Command luotest builds a kernel, boots it in QEMU and checks that memfds
// survive kexec through the Live Update Orchestrator.
//
//	luotest run   [flags]   build (cached), boot, kexec, verify
//	luotest build [flags]   only build the kernel
//	luotest list            list the scenario catalogue
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/image"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/selftests"
	"github.com/memfd-luo/memfd-luo/harness/series"
	"github.com/memfd-luo/memfd-luo/harness/seriescheck"
	"github.com/memfd-luo/memfd-luo/harness/vm"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: luotest <command> [flags]

commands:
  run     build the kernel (cached), boot it in QEMU, preserve memfds,
          kexec, verify every byte; one line per scenario
  build   only build the kernel and print the bzImage path
  list    list the scenarios
  series check
          apply kernel/series to the base, checkpatch --strict every
          patch, build after every patch

run 'luotest <command> -h' for the flags of a command.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	switch os.Args[1] {
	case "run":
		code = cmdRun(ctx, os.Args[2:])
	case "build":
		code = cmdBuild(ctx, os.Args[2:])
	case "list":
		code = cmdList()
	case "series":
		if len(os.Args) < 3 || os.Args[2] != "check" {
			fmt.Fprintln(os.Stderr, "usage: luotest series check [-no-build] [-tree DIR]")
			code = 2
			break
		}
		code = cmdSeriesCheck(ctx, os.Args[3:])
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "luotest: unknown command %q\n", os.Args[1])
		usage()
		code = 2
	}
	os.Exit(code)
}

// kernelFlags are the flags choosing which kernel to build or boot.
type kernelFlags struct {
	tree   string
	kernel string
	which  string
	repo   string
	jobs   int
}

func (k *kernelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.tree, "tree", "", "build this kernel tree (out of tree; never written) instead of the Debian base + series")
	fs.StringVar(&k.kernel, "kernel", "", "boot this prebuilt bzImage (no build)")
	fs.StringVar(&k.which, "base", "patched", "with neither -tree nor -kernel: 'patched' (base + kernel/series) or 'stock' (base alone)")
	fs.StringVar(&k.repo, "repo", "", "memfd-luo checkout holding kernel/ and configs/ (default: found from the working directory)")
	fs.IntVar(&k.jobs, "j", 0, "kernel build jobs (default: number of CPUs)")
}

func (k *kernelFlags) spec() kernels.Spec {
	switch {
	case k.kernel != "":
		abs, _ := filepath.Abs(k.kernel)
		return kernels.Spec("bzimage:" + abs)
	case k.tree != "":
		abs, _ := filepath.Abs(k.tree)
		return kernels.Spec("tree:" + abs)
	}
	return kernels.Spec(k.which)
}

// args returns the flags that reproduce this kernel choice.
func (k *kernelFlags) args() []string {
	var a []string
	switch {
	case k.kernel != "":
		a = append(a, "-kernel", k.kernel)
	case k.tree != "":
		a = append(a, "-tree", k.tree)
	case k.which != "patched":
		a = append(a, "-base", k.which)
	}
	return a
}

// repoRoot finds the checkout: the directory holding go.mod and kernel/.
func repoRoot(flagVal string) (string, error) {
	if flagVal != "" {
		return filepath.Abs(flagVal)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "kernel", "BASE")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no memfd-luo checkout (kernel/BASE + go.mod) at or above %s; use -repo", dir)
		}
	}
}

func prepare(ctx context.Context, k *kernelFlags) (runner.Kernel, string, error) {
	return prepareSpec(ctx, k, k.spec())
}

func prepareSpec(ctx context.Context, k *kernelFlags, spec kernels.Spec) (runner.Kernel, string, error) {
	root, err := repoRoot(k.repo)
	if err != nil {
		return runner.Kernel{}, "", err
	}
	rk, built, err := kernels.Prepare(ctx, spec, kernels.Options{RepoRoot: root, Progress: os.Stderr, Jobs: k.jobs})
	if err != nil {
		return runner.Kernel{}, root, err
	}
	if built != nil {
		how := fmt.Sprintf("built in %s", built.Elapsed.Round(time.Second))
		if built.Cached {
			how = "cached"
		}
		fmt.Fprintf(os.Stderr, "kernel %s: %s (%s, %s)\n", rk.Name, built.Release, how, built.BzImage)
	}
	return rk, root, nil
}

func cmdBuild(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	fs.Parse(args)
	rk, _, err := prepare(ctx, &k)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest build: %v\n", err)
		return 2
	}
	fmt.Println(rk.BzImage)
	return 0
}

func cmdList() int {
	for _, s := range scenario.Default() {
		fmt.Printf("%-36s %-24s %s\n", s.Name, strings.Join(s.Tags, ","), s.Description)
	}
	fmt.Printf("%-36s %-24s %s\n", selftests.ScenarioPrefix+"*", selftests.Tag, "the kernel tree's own tools/testing/selftests/liveupdate tests, built from the tree under test")
	return 0
}

// catalogue is the built-in catalogue plus the selftests of the kernel
// under test, and the extra initramfs files they need.
func catalogue(ctx context.Context, rk runner.Kernel, root, cacheDir string) (scenario.Catalogue, map[string]string, string) {
	cat := scenario.Default()
	if rk.SrcDir == "" {
		return cat, nil, "the kernel's own liveupdate selftests and selftests/*.c are not run: a prebuilt kernel has no source tree to build them against"
	}
	out := filepath.Join(cacheDir, "selftests")
	tests, err := selftests.Build(ctx, rk.SrcDir, out, os.Stderr)
	if err != nil {
		return cat, nil, fmt.Sprintf("the kernel's own liveupdate selftests are not run: %v", err)
	}
	own, err := selftests.BuildProject(ctx, rk.SrcDir, filepath.Join(root, "selftests"), out, os.Stderr)
	if err != nil {
		return cat, nil, fmt.Sprintf("selftests/*.c are not run: %v", err)
	}
	tests = append(tests, own...)
	return append(cat, selftests.Scenarios(tests)...), selftests.Files(tests), ""
}

func cmdRun(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	var (
		only      = fs.String("run", "", "run only these scenarios (comma-separated names)")
		tag       = fs.String("tag", "default", "run the scenarios carrying this tag ('all' for every one)")
		out       = fs.String("out", "", "artefact directory (default: <repo>/out/runs/<time>)")
		accel     = fs.String("accel", "auto", "accelerator: auto (KVM if it really works, else TCG), kvm or tcg")
		timeout   = fs.Duration("timeout", 5*time.Minute, "timeout of one scenario's VM")
		silence   = fs.Duration("silence", 2*time.Minute, "stop a VM that prints nothing for this long")
		verbose   = fs.Bool("v", false, "echo the guest console")
		parallel  = fs.Int("parallel", runtime.NumCPU(), "VMs at once (also bounded by -mem)")
		memBudget = fs.Int("mem", defaultMemBudget(), "guest memory budget in MiB for VMs running at once")
		solo      = fs.Bool("solo", false, "one VM per scenario (default: scenarios that can share a boot chain share one VM)")
		from      = fs.String("from", "", "two-kernel run: boot this kernel first (patched, stock, tree:DIR, bzimage:PATH) ...")
		to        = fs.String("to", "", "... and kexec into this one")
		fromArgs  = fs.String("from-args", "", "extra command line for the -from kernel (e.g. memfd_luo.abi=v2)")
		toArgs    = fs.String("to-args", "", "extra command line for the -to kernel")
		shard     = fs.String("shard", "", "run shard i of n of the selected scenarios (i/n, e.g. 2/4), for CI matrices")
	)
	fs.Parse(args)
	start := time.Now()

	var kerns []runner.Kernel
	var root string
	if *from != "" || *to != "" {
		if *from == "" || *to == "" {
			fmt.Fprintf(os.Stderr, "luotest run: -from and -to go together\n")
			return 2
		}
		for _, x := range []struct{ spec, args string }{{*from, *fromArgs}, {*to, *toArgs}} {
			rk, r, err := prepareSpec(ctx, &k, kernels.Spec(x.spec))
			if err != nil {
				fmt.Fprintf(os.Stderr, "luotest run: preparing kernel %s: %v\n", x.spec, err)
				return 2
			}
			rk.Cmdline = x.args
			root = r
			kerns = append(kerns, rk)
		}
	} else {
		rk, r, err := prepare(ctx, &k)
		if err != nil {
			fmt.Fprintf(os.Stderr, "luotest run: preparing the kernel: %v\n", err)
			return 2
		}
		root = r
		kerns = append(kerns, rk)
	}
	rk := kerns[0]
	cacheDir, _ := cache.Dir()
	cat, extraFiles, note := catalogue(ctx, rk, root, cacheDir)
	if note != "" {
		fmt.Fprintln(os.Stderr, note)
	}
	var todo []*scenario.Scenario
	if *only != "" {
		for _, n := range strings.Split(*only, ",") {
			s, err := cat.Find(strings.TrimSpace(n))
			if err != nil {
				fmt.Fprintf(os.Stderr, "luotest run: %v\n", err)
				return 2
			}
			todo = append(todo, s)
		}
	} else {
		for _, s := range cat {
			if *tag == "all" || s.HasTag(*tag) {
				todo = append(todo, s)
			}
		}
	}
	if *shard != "" {
		var i, n int
		if _, err := fmt.Sscanf(*shard, "%d/%d", &i, &n); err != nil || n < 1 || i < 1 || i > n {
			fmt.Fprintf(os.Stderr, "luotest run: -shard %q: want i/n with 1 <= i <= n\n", *shard)
			return 2
		}
		sort.Slice(todo, func(a, b int) bool { return todo[a].Name < todo[b].Name })
		todo = pool.Shard(todo, i, n)
	}
	if len(todo) == 0 {
		fmt.Fprintf(os.Stderr, "luotest run: no scenario matches\n")
		return 2
	}

	dir := *out
	if dir == "" {
		dir = filepath.Join(root, "out", "runs", time.Now().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "luotest run: %v\n", err)
		return 2
	}
	agent := filepath.Join(dir, "luoagent")
	if err := image.BuildAgent(ctx, root, agent); err != nil {
		fmt.Fprintf(os.Stderr, "luotest run: %v\n", err)
		return 2
	}
	accelCache := filepath.Join(cacheDir, "accel")
	acc, why := vm.ResolveAccel(ctx, vm.Accel(strings.TrimPrefix(*accel, "auto")), "qemu-system-x86_64", accelCache)
	fmt.Fprintf(os.Stderr, "accelerator: %s (%s)\n", acc, why)

	self := rerunBinary(root)
	rerunArgs := append([]string{self, "run"}, k.args()...)
	if *from != "" {
		rerunArgs = append(rerunArgs, "-from", *from, "-to", *to)
		if *fromArgs != "" {
			rerunArgs = append(rerunArgs, "-from-args", shellQuote(*fromArgs))
		}
		if *toArgs != "" {
			rerunArgs = append(rerunArgs, "-to-args", shellQuote(*toArgs))
		}
	}
	rerun := strings.Join(append(rerunArgs, "-run", "%s"), " ")
	groups := scenario.Partition(todo)
	if *solo {
		groups = nil
		for _, s := range todo {
			groups = append(groups, []*scenario.Scenario{s})
		}
	}
	fmt.Fprintf(os.Stderr, "%d scenario(s) in %d VM(s)\n", len(todo), len(groups))
	var outcomes []*runner.Outcome
	var printMu sync.Mutex
	var jobs []pool.Job
	for _, grp := range groups {
		name := grp[0].Name
		if len(grp) > 1 {
			name = "batch-" + name
		}
		var onLine func(time.Duration, string)
		if *verbose {
			onLine = func(t time.Duration, l string) {
				printMu.Lock()
				defer printMu.Unlock()
				fmt.Fprintf(os.Stderr, "%s [%7.3f] %s\n", name, t.Seconds(), l)
			}
		}
		mem := 0
		for _, s := range grp {
			mem = max(mem, s.Memory())
		}
		jobs = append(jobs, pool.Job{MemoryMB: mem, Run: func(ctx context.Context) {
			outs := runner.RunGroup(ctx, grp, runner.Options{
				Agent: agent, Kernels: kerns, Dir: filepath.Join(dir, name),
				Files: extraFiles, Accel: acc, AccelCache: accelCache, Timeout: *timeout, Silence: *silence, Rerun: rerun, OnLine: onLine,
			})
			printMu.Lock()
			for _, o := range outs {
				report.Line(os.Stdout, o)
			}
			outcomes = append(outcomes, outs...)
			printMu.Unlock()
		}})
	}
	pool.Run(ctx, pool.Limits{Slots: *parallel, MemoryMB: *memBudget}, jobs)
	order := map[string]int{}
	for i, s := range todo {
		order[s.Name] = i
	}
	sort.SliceStable(outcomes, func(a, b int) bool { return order[outcomes[a].Scenario] < order[outcomes[b].Scenario] })
	ran := map[string]bool{}
	for _, o := range outcomes {
		ran[o.Scenario] = true
	}
	for _, s := range todo {
		if !ran[s.Name] {
			outcomes = append(outcomes, &runner.Outcome{Scenario: s.Name, Verdict: runner.Skip, Reason: "interrupted before it started"})
		}
	}
	host, _ := os.Hostname()
	info := report.RunInfo{Started: start, Host: host, Accel: string(acc) + " (" + why + ")", Kernels: kerns,
		Command: strings.Join(os.Args, " ")}
	if err := report.WriteAll(dir, info, outcomes); err != nil {
		fmt.Fprintf(os.Stderr, "luotest run: writing reports: %v\n", err)
	}
	report.Summary(os.Stdout, outcomes, dir, time.Since(start))
	return report.ExitCode(outcomes)
}

// rerunBinary names the command that reruns luotest: the installed binary
// when there is one, else `go run`.
func rerunBinary(root string) string {
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		if rel, err := filepath.Rel(root, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return "./" + rel
		}
		return exe
	}
	return "go run ./harness/cmd/luotest"
}

// defaultMemBudget is half of the host's memory, in MiB: VMs under TCG
// need their guest RAM plus QEMU's own, and the rest is the host's.
func defaultMemBudget() int {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 4096
	}
	return int(uint64(si.Totalram) * uint64(si.Unit) / 2 / (1 << 20))
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\"$\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func cmdSeriesCheck(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("series check", flag.ExitOnError)
	noBuild := fs.Bool("no-build", false, "only apply and checkpatch; skip the per-patch builds")
	tree := fs.String("tree", "", "check against this kernel tree instead of the newest Debian base")
	repo := fs.String("repo", "", "memfd-luo checkout (default: found from the working directory)")
	jobs := fs.Int("j", 0, "kernel build jobs (default: number of CPUs)")
	fs.Parse(args)
	root, err := repoRoot(*repo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest series check: %v\n", err)
		return 2
	}
	cacheDir, err := cache.Dir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest series check: %v\n", err)
		return 2
	}
	var base *kernelsrc.Source
	if *tree != "" {
		base, err = kernelsrc.Tree(*tree)
	} else {
		var major string
		if major, err = kernelsrc.ReadBase(root); err == nil {
			base, err = kernelsrc.Debian(ctx, kernelsrc.DebianOptions{Major: major, CacheDir: cacheDir, Log: os.Stderr})
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest series check: base tree: %v\n", err)
		return 2
	}
	ps, err := series.Load(root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest series check: %v\n", err)
		return 2
	}
	frags, err := kernels.Fragments(root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest series check: %v\n", err)
		return 2
	}
	res, err := seriescheck.Run(ctx, seriescheck.Options{Base: base, Patches: ps, Fragments: frags, CacheDir: cacheDir,
		NoBuild: *noBuild, Jobs: *jobs, Progress: os.Stderr})
	seriescheck.Table(os.Stdout, base.Origin, res, *noBuild)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest series check: %v\n", err)
		return 1
	}
	pass, fail := 0, 0
	for _, r := range res {
		if r.OK() || (*noBuild && r.CheckpatchOK) {
			pass++
		} else {
			fail++
		}
	}
	fmt.Printf("series check: %d passed, %d failed\n", pass, fail)
	if fail > 0 {
		return 1
	}
	return 0
}
