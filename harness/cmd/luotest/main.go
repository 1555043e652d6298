// Command luotest builds a kernel, boots it in QEMU and checks that memfds
// survive kexec through the Live Update Orchestrator.
//
//	luotest run   [flags]   build (cached), boot, kexec, verify
//	luotest build [flags]   only build the kernel
//	luotest list            list the scenario catalogue
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/selftests"
	"github.com/memfd-luo/memfd-luo/harness/series"
	"github.com/memfd-luo/memfd-luo/harness/seriescheck"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: luotest <command> [flags]

commands:
  run     build the kernel (cached), boot it in QEMU, preserve memfds,
          kexec, verify every byte; one line per scenario
  build   only build the kernel and print the bzImage path
  list    list the scenarios
  measure run the measurement scenarios (1 GiB dense, 1 GiB THP, 4 GiB
          sparse) on stock and patched and print MemTotal drop, st_blocks
          and phase timings side by side
  matrix  run the catalogue across kernel pairs (stock->patched,
          patched->stock, ...) and print the matrix
  qualify -from A -to B: can A live-update into B? the catalogue both
          ways and a soak alternating A and B (-hops N) that accounts for
          every byte and page; a verdict, a per-hop table, plots, JSON/JUnit
  compat  predict from two kernel images whether a live update from A into
          B keeps every session, and name what would be lost and why
  bench   measure the kernel's cost (stock vs patched) and the harness's; -compare OLD.json for deltas
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
	case "measure":
		code = cmdMeasure(ctx, os.Args[2:])
	case "matrix":
		code = cmdMatrix(ctx, os.Args[2:])
	case "qualify":
		code = cmdQualify(ctx, os.Args[2:])
	case "compat":
		code = cmdCompat(ctx, os.Args[2:])
	case "bench":
		code = cmdBench(ctx, os.Args[2:])
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

// parseArgs parses a command's flags and refuses positional arguments: a
// scenario name or a flag put after one would otherwise be dropped, and the
// run would pass green without doing what was asked. It returns ok=false
// with the exit status: 0 after -h, 2 on a usage error.
func parseArgs(fs *flag.FlagSet, args []string) (code int, ok bool) {
	fs.Init(fs.Name(), flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		hint := ""
		if fs.Lookup("run") != nil {
			hint = " (scenarios are chosen with -run)"
		}
		fmt.Fprintf(fs.Output(), "luotest %s: unexpected argument %q: flags go before arguments, and luotest %s takes none%s\n", fs.Name(), fs.Arg(0), fs.Name(), hint)
		return 2, false
	}
	return 0, true
}

// flagsGiven returns the names of the flags set on the command line.
func flagsGiven(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	return given
}

// refuseFlags fails when one of names was set on the command line: flags a
// command registers with others but does not use must not be ignored.
func refuseFlags(fs *flag.FlagSet, why string, names ...string) bool {
	bad := ""
	fs.Visit(func(f *flag.Flag) {
		for _, n := range names {
			if f.Name == n && bad == "" {
				bad = n
			}
		}
	})
	if bad != "" {
		fmt.Fprintf(fs.Output(), "luotest %s: -%s is not used here: %s\n", fs.Name(), bad, why)
		return true
	}
	return false
}

// kernelFlags are the flags choosing which kernel to build or boot.
type kernelFlags struct {
	tree   string
	kernel string
	base   string
	repo   string
	jobs   int
	// flavour is normal unless the command registers -flavour.
	flavour flavour.Flavour
}

func (k *kernelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.tree, "tree", "", "build this kernel tree (out of tree; never written) instead of the Debian base + series")
	fs.StringVar(&k.kernel, "kernel", "", "boot this prebuilt bzImage (no build)")
	fs.StringVar(&k.base, "base", "patched", "with neither -tree nor -kernel: 'patched' (base + kernel/series) or 'stock' (base alone)")
	fs.StringVar(&k.repo, "repo", "", "memfd-luo checkout holding kernel/ and configs/ (default: found from the working directory)")
	fs.IntVar(&k.jobs, "j", 0, "kernel build jobs (default: number of CPUs)")
}

// registerFlavour adds -flavour, for the commands that build or boot
// kernels of either flavour.
func (k *kernelFlags) registerFlavour(fs *flag.FlagSet) {
	k.flavour = flavour.Normal
	fs.Var(&k.flavour, "flavour", "kernel flavour: "+strings.Join(flavour.Names(), " or ")+
		" (debug: KASAN, lockdep, DEBUG_VM, DEBUG_LIST, hang detectors, fault injection, KUnit; boots with panic_on_warn=1)")
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
	return kernels.Spec(k.base)
}

// args returns the flags that reproduce this kernel choice.
func (k *kernelFlags) args() []string {
	var a []string
	switch {
	case k.kernel != "":
		a = append(a, "-kernel", k.kernel)
	case k.tree != "":
		a = append(a, "-tree", k.tree)
	case k.base != "patched":
		a = append(a, "-base", k.base)
	}
	return append(a, k.flavourArgs()...)
}

// flavourArgs returns the flags that reproduce the flavour.
func (k *kernelFlags) flavourArgs() []string {
	if k.flavour.IsNormal() {
		return nil
	}
	return []string{"-flavour", k.flavour.String()}
}

// suiteName names a run's test suite in the reports: the matrix cell (or
// "" for a plain run), after the flavour when it is not the normal one.
func suiteName(f flavour.Flavour, cell string) string {
	if f.IsNormal() {
		return cell
	}
	if cell == "" {
		return f.String()
	}
	return f.String() + "." + cell
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

func prepare(ctx context.Context, k *kernelFlags) (bootable.Kernel, string, error) {
	return prepareSpec(ctx, k, k.spec())
}

func prepareSpec(ctx context.Context, k *kernelFlags, spec kernels.Spec) (bootable.Kernel, string, error) {
	root, err := repoRoot(k.repo)
	if err != nil {
		return bootable.Kernel{}, "", err
	}
	rk, built, err := kernels.Prepare(ctx, spec, kernels.Options{RepoRoot: root, Progress: os.Stderr, Jobs: k.jobs, Flavour: k.flavour})
	if err != nil {
		return bootable.Kernel{}, root, err
	}
	if built != nil {
		how := fmt.Sprintf("built in %s", built.Elapsed.Round(time.Second))
		if built.Cached {
			how = "cached"
		}
		fmt.Fprintf(os.Stderr, "kernel %s (%s flavour): %s (%s, %s)\n", rk.Name, k.flavour, built.Release, how, built.BzImage)
		if len(built.Skipped) > 0 {
			fmt.Fprintf(os.Stderr, "kernel %s: optional options this tree does not define, skipped: %s\n", rk.Name, strings.Join(built.Skipped, " "))
		}
	}
	return rk, root, nil
}

func cmdBuild(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	k.registerFlavour(fs)
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
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
func catalogue(ctx context.Context, rk bootable.Kernel, root, cacheDir string) (scenario.Catalogue, map[string]string, string) {
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
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 4096
	}
	return int(uint64(si.Totalram) * uint64(si.Unit) / 2 / (1 << 20))
}

func cmdSeriesCheck(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("series check", flag.ExitOnError)
	noBuild := fs.Bool("no-build", false, "only apply and checkpatch; skip the per-patch builds")
	tree := fs.String("tree", "", "check against this kernel tree instead of the newest Debian base")
	repo := fs.String("repo", "", "memfd-luo checkout (default: found from the working directory)")
	jobs := fs.Int("j", 0, "kernel build jobs (default: number of CPUs)")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
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
