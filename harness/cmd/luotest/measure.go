package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/measure"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

// cmdMeasure runs the measurement scenarios on several kernels in one
// invocation and prints their figures side by side.
func cmdMeasure(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	var f runFlags
	f.register(fs)
	which := fs.String("kernels", "stock,patched", "kernels to compare (specs: stock, patched, tree:DIR, bzimage:PATH, debian:X.Y[.Z]; SPEC@ARGS adds a command line, e.g. patched@memfd_luo.abi=v2)")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if refuseFlags(fs, "name the kernels with -kernels (stock, patched, tree:DIR, bzimage:PATH, debian:X.Y[.Z])", "tree", "kernel", "base") {
		return 2
	}
	given := flagsGiven(fs)
	if !given["tag"] && f.only == "" {
		f.tag = "measure"
	}
	f.solo = true
	if !given["timeout"] {
		f.timeout = 20 * time.Minute // a stock kernel fills and then verifies whole GiBs
	}
	start := time.Now()
	root, err := repoRoot(k.repo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest measure: %v\n", err)
		return 2
	}
	dir := runDir(root, f.out)
	e, err := newEnv(ctx, &f, root, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest measure: %v\n", err)
		return 2
	}
	all, passed, err := measure.Run(ctx, measure.Options{Kernels: measure.ParseKernels(*which), Dir: dir, Out: os.Stdout, Progress: os.Stderr},
		measure.Deps{
			Prepare: func(ctx context.Context, s kernels.Spec) (bootable.Kernel, error) {
				rk, _, err := prepareSpec(ctx, &k, s)
				return rk, err
			},
			Scenarios: func() ([]*scenario.Scenario, error) {
				cat, _, _ := catalogue(ctx, bootable.Kernel{}, root, e.cacheDir)
				return f.selectScenarios(cat)
			},
			Run:    e.Run,
			Report: e.writeReports,
		})
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest measure: %v\n", err)
		return 2
	}
	measure.WriteTable(os.Stdout, all)
	os.WriteFile(filepath.Join(dir, "measure.json"), measure.JSON(all), 0o644)
	fmt.Printf("artefacts: %s\nwall time %.1fs\n", dir, time.Since(start).Seconds())
	if !passed {
		return 1
	}
	return 0
}
