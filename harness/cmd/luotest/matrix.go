package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/shell"
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
	Why      string `json:"why"`
}

var matrixCells = []cell{
	{Name: "stock->stock", From: "stock", To: "stock", Why: "the baseline"},
	{Name: "stock->patched", From: "stock", To: "patched", Why: "upgrade: the series reads stock memfd-v2 data"},
	{Name: "patched->patched", From: "patched", To: "patched", Why: "the series with itself (default policy)"},
	{Name: "patched(abi=v2)->patched", From: "patched", To: "patched", FromArgs: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob,
		Why: "the series with itself, sending sparse memfd-v2"},
	{Name: "patched->stock", From: "patched", To: "stock",
		Why: "rollback with the default policy (memfd-v2): stock 7.3 must read the series' sparse memfd-v2"},
	{Name: "patched(abi=v2)->stock", From: "patched", To: "stock", FromArgs: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob,
		Why: "downgrade with memfd_luo.abi=v2 forced"},
	{Name: "patched(abi=v3)->stock", From: "patched", To: "stock", FromArgs: "memfd_luo.abi=v3", Requires: kernels.CapMemfdV3,
		Why: "documented failure: stock 7.3 has no memfd-v3 handler, so every session is unreachable (/dev/liveupdate open fails with EIO)"},
}

// checkCells refuses a -cells list naming a cell that does not exist: a
// typo would otherwise run nothing and pass.
func checkCells(list string) error {
	if list == "" {
		return nil
	}
	var names []string
	for _, c := range matrixCells {
		names = append(names, c.Name)
	}
	for _, n := range strings.Split(list, ",") {
		if !slices.Contains(names, n) {
			return fmt.Errorf("-cells: no cell %q; the cells are %s", n, strings.Join(names, ", "))
		}
	}
	return nil
}

// cellOutcome names what a cell's run showed, in the words of
// compat.Prediction.Summary: a prediction of loss ran eioScenario, a
// prediction of no loss the catalogue.
func cellOutcome(pred compat.Prediction, passed bool) string {
	switch {
	case pred.KeepsSessions && passed:
		return "keeps every session"
	case pred.KeepsSessions:
		return "loses data (scenarios failed)"
	case passed:
		return "loses every session (EIO)"
	}
	return "the sessions did not fail as predicted"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
	// Predicted is what luotest compat says of the pair (Summary), and
	// Outcome what the run showed; the cell fails when they differ.
	Predicted  string             `json:"predicted,omitempty"`
	Prediction *compat.Prediction `json:"prediction,omitempty"`
	Outcome    string             `json:"outcome,omitempty"`
	Verdict    string             `json:"verdict"`
	Reason     string             `json:"reason,omitempty"`
	Counts     report.Counts      `json:"counts"`
	Elapsed    float64            `json:"elapsed_s"`
	Dir        string             `json:"dir,omitempty"`
	Kernels    []bootable.Kernel  `json:"kernels,omitempty"`
	outs       []*runner.Outcome
}

func cmdMatrix(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("matrix", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	k.registerFlavour(fs)
	var f runFlags
	f.register(fs)
	only := fs.String("cells", "", "run only these cells (comma-separated names; default: all)")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if refuseFlags(fs, "the matrix's cells name their kernels (stock, patched); use run -from A -to B for others", "tree", "kernel", "base") {
		return 2
	}
	f.scaleTimeouts(fs, k.flavour)
	if err := f.check(); err != nil {
		fmt.Fprintf(os.Stderr, "luotest matrix: %v\n", err)
		return 2
	}
	if err := checkCells(*only); err != nil {
		fmt.Fprintf(os.Stderr, "luotest matrix: %v\n", err)
		return 2
	}
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
	prepared := map[kernels.Spec]bootable.Kernel{}
	get := func(s kernels.Spec) (bootable.Kernel, error) {
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
		a.Cmdline = c.FromArgs
		cr.Kernels = []bootable.Kernel{a, b}
		pred, err := predictPair(ctx, a, b)
		if err != nil {
			cr.Verdict, cr.Reason = string(runner.Error), fmt.Sprintf("predicting the outcome: %v", err)
			fmt.Printf("== %s: ERROR (%s)\n", c.Name, cr.Reason)
			continue
		}
		cr.Prediction, cr.Predicted = &pred, pred.Summary()
		fmt.Printf("== %s: %s\n%s", c.Name, cr.Why, pred.String())
		var todo []*scenario.Scenario
		files := map[string]string(nil)
		if !pred.KeepsSessions {
			// The catalogue would only show the loss N times; one
			// scenario checks it happens the way predicted.
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
		rerun := strings.Join(append([]string{rerunBinary(root), "run"}, append(k.flavourArgs(), "-from", string(c.From), "-to", string(c.To))...), " ")
		if c.FromArgs != "" {
			rerun += " -from-args " + shell.Quote(c.FromArgs)
		}
		rerun += " -run %s"
		cr.outs = e.Run(ctx, fleet.Batch{Kernels: cr.Kernels, Scenarios: todo, Files: files, Dir: cr.Dir, Rerun: rerun}, os.Stdout)
		e.writeReports(cr.Dir, c.Name, cstart, cr.Kernels, cr.outs)
		cr.Counts = report.Tally(cr.outs)
		cr.Outcome = cellOutcome(pred, report.ExitCode(cr.outs) == 0)
		cr.Verdict = "PASS"
		if cr.Outcome != cr.Predicted {
			cr.Verdict = "FAIL"
			cr.Reason = fmt.Sprintf("predicted %q, the run showed %q", cr.Predicted, cr.Outcome)
		}
		cr.Elapsed = time.Since(cstart).Seconds()
	}
	fmt.Println()
	fmt.Printf("%-26s %-7s %-28s %-28s %5s %5s %5s %8s  %s\n", "cell", "verdict", "predicted (luotest compat)", "outcome", "pass", "fail", "skip", "time", "")
	code := 0
	for _, cr := range results {
		fail := cr.Counts.Fail + cr.Counts.Error + cr.Counts.Timeout
		note := cr.Why
		if cr.Reason != "" {
			note = cr.Reason
		}
		fmt.Printf("%-26s %-7s %-28s %-28s %5d %5d %5d %7.1fs  %s\n", cr.Name, cr.Verdict, dash(cr.Predicted), dash(cr.Outcome), cr.Counts.Pass, fail, cr.Counts.Skip, cr.Elapsed, note)
		if cr.Verdict == "FAIL" || cr.Verdict == string(runner.Error) {
			code = 1
		}
	}
	b, _ := json.MarshalIndent(map[string]any{"started": start, "accel": e.Accel, "flavour": k.flavour, "cells": results}, "", "  ")
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
