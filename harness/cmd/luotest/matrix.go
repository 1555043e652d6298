package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/matrix"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

// catalogueDeps wires the matrix's cell loop (and qualify's, which runs
// on it) to the real kernels, predictions and VMs: kernels built through
// the cache once per spec, the catalogue as -run and -tag select it.
func catalogueDeps(k *kernelFlags, f *runFlags, root string, e *env) matrix.Deps {
	return matrix.Deps{
		Prepare: bootable.Once(func(ctx context.Context, s kernels.Spec) (bootable.Kernel, error) {
			rk, _, err := prepareSpec(ctx, k, s)
			return rk, err
		}),
		Caps:    kernels.SourceCaps,
		Predict: predictPair,
		Scenarios: func(ctx context.Context, from bootable.Kernel) ([]*scenario.Scenario, map[string]string, error) {
			cat, files, note := catalogue(ctx, from, root, e.cacheDir)
			if note != "" {
				fmt.Fprintln(os.Stderr, note)
			}
			todo, err := f.selectScenarios(cat)
			return todo, files, err
		},
		Run:    e.Run,
		Report: e.writeReports,
	}
}

func cmdMatrix(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("matrix", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	k.registerFlavour(fs)
	var f runFlags
	f.register(fs)
	only := fs.String("cells", "", "run only these cells (comma-separated names, or A->B of two kernel specs such as debian:7.2->patched; default: all)")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if refuseFlags(fs, "the matrix's cells name their kernels: -cells A->B (e.g. debian:7.2->stock) for others", "tree", "kernel", "base") {
		return 2
	}
	f.scaleTimeouts(fs, k.flavour)
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "luotest matrix: %v\n", err)
		return 2
	}
	if err := f.check(); err != nil {
		return fail(err)
	}
	cells, err := matrix.Select(*only)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	root, err := repoRoot(k.repo)
	if err != nil {
		return fail(err)
	}
	dir := runDir(root, f.out)
	e, err := newEnv(ctx, &f, root, dir)
	if err != nil {
		return fail(err)
	}
	e.flavour = k.flavour
	results, err := matrix.Run(ctx, matrix.Options{
		Cells: cells, Dir: dir, Out: os.Stdout, Progress: os.Stderr,
		Rerun: append([]string{rerunBinary(root), "run"}, k.flavourArgs()...),
	}, catalogueDeps(&k, &f, root, e))
	if err != nil {
		return fail(err)
	}
	fmt.Println()
	matrix.WriteTable(os.Stdout, results)
	var js bytes.Buffer
	matrix.WriteJSON(&js, matrix.Doc{Started: start, Accel: e.Accel, Flavour: k.flavour, Cells: results})
	os.WriteFile(filepath.Join(dir, "matrix.json"), js.Bytes(), 0o644)
	matrix.WriteSummary(os.Stdout, dir, results, time.Since(start))
	return matrix.ExitCode(results)
}
