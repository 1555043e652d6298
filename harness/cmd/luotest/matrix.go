package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// cell is one (kernel A → kernel B) combination of the matrix.
type cell struct {
	Name     string       `json:"name"`
	From     kernels.Spec `json:"from"`
	To       kernels.Spec `json:"to"`
	FromArgs string       `json:"from_args,omitempty"`
	// Requires names what the patched source must have for the cell to
	// mean anything (kernels.SourceCaps); missing means SKIP.
	Requires string `json:"requires,omitempty"`
	// ExpectEIO: the target cannot read what A sent; every
	// /dev/liveupdate open in B fails with EIO. The cell then runs one
	// scenario that expects exactly that.
	ExpectEIO bool `json:"expect_eio,omitempty"`
	// EIOIf: ExpectEIO when the patched source has this capability
	// (the default policy decides what a plain downgrade sends).
	EIOIf string `json:"eio_if,omitempty"`
	// WhyEIO replaces Why when EIOIf holds.
	WhyEIO string `json:"why_eio,omitempty"`
	Why    string `json:"why"`
}

var matrixCells = []cell{
	{Name: "stock->stock", From: "stock", To: "stock", Why: "the baseline"},
	{Name: "stock->patched", From: "stock", To: "patched", Why: "upgrade: the series reads stock memfd-v2 data"},
	{Name: "patched->patched", From: "patched", To: "patched", Why: "the series with itself (default policy)"},
	{Name: "patched(abi=v2)->patched", From: "patched", To: "patched", FromArgs: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob,
		Why: "the series with itself, sending sparse memfd-v2"},
	{Name: "patched->stock", From: "patched", To: "stock", EIOIf: kernels.CapABIDefaultV3,
		Why:    "downgrade with the default policy (auto): sparse memfd-v2 must be readable by stock 7.3",
		WhyEIO: "downgrade with the default policy (memfd-v3): documented failure, stock 7.3 cannot read memfd-v3; boot with memfd_luo.abi=v2 to downgrade"},
	{Name: "patched(abi=v2)->stock", From: "patched", To: "stock", FromArgs: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob,
		Why: "downgrade with memfd_luo.abi=v2 forced"},
	{Name: "patched(abi=v3)->stock", From: "patched", To: "stock", FromArgs: "memfd_luo.abi=v3", Requires: kernels.CapMemfdV3, ExpectEIO: true,
		Why: "documented failure: stock 7.3 has no memfd-v3 handler, so every session is unreachable (/dev/liveupdate open fails with EIO)"},
}

// eioScenario expects the target kernel to refuse the incoming data.
func eioScenario() *scenario.Scenario {
	f := plan.File{Name: "m0", Flags: plan.MFDAllowSeal, Size: 1 << 20, Seed: 1}
	return &scenario.Scenario{
		Name:        "downgrade-unreadable",
		Description: "the target has no handler for what was sent: opening /dev/liveupdate fails with EIO",
		Files:       []plan.File{f},
		Tags:        []string{"matrix"},
		Stages: []plan.Stage{
			{Steps: []plan.Step{
				{Op: plan.OpCreateMemfd, File: "m0"},
				{Op: plan.OpCreateSession, Session: "s0"},
				{Op: plan.OpPreserve, Session: "s0", File: "m0", Token: 1},
				{Op: plan.OpKexec},
			}},
			{Steps: []plan.Step{
				{Op: plan.OpRetrieveSession, Session: "s0", Expect: "EIO",
					Cite: "kernel/liveupdate/luo_core.c luo_open(): -EIO when deserialization failed; luo_file.c: no handler for the compatible string"},
			}},
		},
	}
}

type cellResult struct {
	cell
	Verdict string          `json:"verdict"`
	Reason  string          `json:"reason,omitempty"`
	Counts  report.Counts   `json:"counts"`
	Elapsed float64         `json:"elapsed_s"`
	Dir     string          `json:"dir,omitempty"`
	Kernels []runner.Kernel `json:"kernels,omitempty"`
	outs    []*runner.Outcome
}

func cmdMatrix(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("matrix", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	k.registerFlavour(fs)
	var f runFlags
	f.register(fs)
	only := fs.String("cells", "", "run only these cells (comma-separated names; default: all)")
	fs.Parse(args)
	f.scaleTimeouts(fs, k.flavour)
	start := time.Now()
	root, err := repoRoot(k.repo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest matrix: %v\n", err)
		return 2
	}
	dir := runDir(root, f.out)
	e, err := newEnv(ctx, &f, root, dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "luotest matrix: %v\n", err)
		return 2
	}
	e.flavour = k.flavour
	prepared := map[kernels.Spec]runner.Kernel{}
	get := func(s kernels.Spec) (runner.Kernel, error) {
		if rk, ok := prepared[s]; ok {
			return rk, nil
		}
		rk, _, err := prepareSpec(ctx, &k, s)
		if err == nil {
			prepared[s] = rk
		}
		return rk, err
	}
	var results []*cellResult
	for _, c := range matrixCells {
		if *only != "" && !strings.Contains(","+*only+",", ","+c.Name+",") {
			continue
		}
		cr := &cellResult{cell: c, Dir: filepath.Join(dir, strings.NewReplacer(">", "", "(", "-", ")", "", "=", "-").Replace(c.Name))}
		results = append(results, cr)
		cstart := time.Now()
		a, errA := get(c.From)
		b, errB := get(c.To)
		if errA != nil || errB != nil {
			cr.Verdict, cr.Reason = string(runner.Error), fmt.Sprintf("preparing kernels: %v %v", errA, errB)
			continue
		}
		caps := kernels.SourceCaps(prepared["patched"].SrcDir)
		if c.Requires != "" && !caps[c.Requires] {
			cr.Verdict, cr.Reason = string(runner.Skip), fmt.Sprintf("the series has no %s yet", c.Requires)
			fmt.Printf("== %s: SKIP (%s)\n", c.Name, cr.Reason)
			continue
		}
		if c.EIOIf != "" && caps[c.EIOIf] {
			cr.ExpectEIO, cr.Why = true, c.WhyEIO
		}
		a.Cmdline = c.FromArgs
		cr.Kernels = []runner.Kernel{a, b}
		fmt.Printf("== %s: %s\n", c.Name, cr.Why)
		var todo []*scenario.Scenario
		files := map[string]string(nil)
		if cr.ExpectEIO {
			todo = []*scenario.Scenario{eioScenario()}
		} else {
			cat, fl, note := catalogue(ctx, a, root, e.cacheDir)
			if note != "" {
				fmt.Fprintln(os.Stderr, note)
			}
			files = fl
			if todo, err = f.selectScenarios(cat); err != nil {
				fmt.Fprintf(os.Stderr, "luotest matrix: %v\n", err)
				return 2
			}
		}
		e.files = files
		rerun := strings.Join(append([]string{rerunBinary(root), "run"}, append(k.flavourArgs(), "-from", string(c.From), "-to", string(c.To))...), " ")
		if c.FromArgs != "" {
			rerun += " -from-args " + shellQuote(c.FromArgs)
		}
		rerun += " -run %s"
		cr.outs = e.execute(ctx, cr.Kernels, todo, cr.Dir, rerun, os.Stdout)
		e.writeReports(cr.Dir, c.Name, cstart, cr.Kernels, cr.outs)
		cr.Counts = report.Tally(cr.outs)
		cr.Verdict = "PASS"
		if code := report.ExitCode(cr.outs); code != 0 {
			cr.Verdict = "FAIL"
		}
		cr.Elapsed = time.Since(cstart).Seconds()
	}
	fmt.Println()
	fmt.Printf("%-26s %-7s %6s %6s %6s %8s  %s\n", "cell", "verdict", "pass", "fail", "skip", "time", "")
	code := 0
	for _, cr := range results {
		fail := cr.Counts.Fail + cr.Counts.Error + cr.Counts.Timeout
		note := cr.Why
		if cr.Reason != "" {
			note = cr.Reason
		}
		fmt.Printf("%-26s %-7s %6d %6d %6d %7.1fs  %s\n", cr.Name, cr.Verdict, cr.Counts.Pass, fail, cr.Counts.Skip, cr.Elapsed, note)
		if cr.Verdict == "FAIL" || cr.Verdict == string(runner.Error) {
			code = 1
		}
	}
	b, _ := json.MarshalIndent(map[string]any{"started": start, "accel": e.accel, "flavour": k.flavour, "cells": results}, "", "  ")
	os.WriteFile(filepath.Join(dir, "matrix.json"), b, 0o644)
	pass, failN := 0, 0
	for _, cr := range results {
		switch cr.Verdict {
		case "PASS":
			pass++
		case "FAIL", string(runner.Error):
			failN++
		}
	}
	fmt.Printf("artefacts: %s\nluotest matrix: %d passed, %d failed, %d skipped\nwall time %.1fs\n", dir, pass, failN, len(results)-pass-failN, time.Since(start).Seconds())
	return code
}
