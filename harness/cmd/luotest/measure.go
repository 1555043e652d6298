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

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// measurement is one scenario's figures on one kernel.
type measurement struct {
	Scenario     string  `json:"scenario"`
	Kernel       string  `json:"kernel"`
	Verdict      string  `json:"verdict"`
	PreservedKB  int64   `json:"memtotal_drop_kb"`
	BlocksBefore int64   `json:"blocks_before_preserve"`
	BlocksAfter  int64   `json:"blocks_after_preserve"`
	BlocksNext   int64   `json:"blocks_after_retrieve"`
	PreserveMS   float64 `json:"preserve_ms"`
	RebootMS     float64 `json:"reboot_to_banner_ms"`
	ToRetrieveMS float64 `json:"reboot_to_retrieved_ms"`
	RetrieveMS   float64 `json:"retrieve_ms"`
}

// cmdMeasure runs the measurement scenarios on several kernels in one
// invocation and prints their figures side by side.
func cmdMeasure(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	var k kernelFlags
	k.register(fs)
	var f runFlags
	f.register(fs)
	which := fs.String("kernels", "stock,patched", "kernels to compare (specs: stock, patched, tree:DIR, bzimage:PATH; SPEC@ARGS adds a command line, e.g. patched@memfd_luo.abi=v2)")
	if code, ok := parseArgs(fs, args); !ok {
		return code
	}
	if refuseFlags(fs, "name the kernels with -kernels (stock, patched, tree:DIR, bzimage:PATH)", "tree", "kernel", "base") {
		return 2
	}
	if f.tag == "default" && f.only == "" {
		f.tag = "measure"
	}
	f.solo = true
	if f.timeout == 5*time.Minute {
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
	var all []measurement
	code := 0
	for _, item := range strings.Split(*which, ",") {
		spec, args, _ := strings.Cut(item, "@")
		rk, _, err := prepareSpec(ctx, &k, kernels.Spec(spec))
		if err != nil {
			fmt.Fprintf(os.Stderr, "luotest measure: preparing %s: %v\n", spec, err)
			return 2
		}
		if args != "" {
			rk.Cmdline = args
			rk.Name += "-" + strings.NewReplacer("memfd_luo.", "", "=", "-", " ", "_", "/", "_").Replace(args)
		}
		cat, _, _ := catalogue(ctx, bootable.Kernel{}, root, e.cacheDir)
		todo, err := f.selectScenarios(cat)
		if err != nil {
			fmt.Fprintf(os.Stderr, "luotest measure: %v\n", err)
			return 2
		}
		kdir := filepath.Join(dir, rk.Name)
		outs := e.Run(ctx, fleet.Batch{Kernels: []bootable.Kernel{rk}, Scenarios: todo, Dir: kdir}, os.Stdout)
		e.writeReports(kdir, "measure-"+rk.Name, start, []bootable.Kernel{rk}, outs)
		if report.ExitCode(outs) != 0 {
			code = 1
		}
		for _, o := range outs {
			all = append(all, measureOutcome(o, rk.Name))
		}
	}
	fmt.Printf("\n%-20s %-15s %-5s %12s %14s %14s %11s %9s %11s %10s\n", "scenario", "kernel", "", "MemTotal-drop", "blocks@create", "blocks@preserve", "blocks@next", "preserve", "reboot->ret", "retrieve")
	for _, m := range all {
		fmt.Printf("%-20s %-15s %-5s %10d kB %14d %14d %11d %7.0fms %9.0fms %8.0fms\n", m.Scenario, m.Kernel, m.Verdict, m.PreservedKB,
			m.BlocksBefore, m.BlocksAfter, m.BlocksNext, m.PreserveMS, m.ToRetrieveMS, m.RetrieveMS)
	}
	b, _ := json.MarshalIndent(all, "", "  ")
	os.WriteFile(filepath.Join(dir, "measure.json"), b, 0o644)
	fmt.Printf("artefacts: %s\nwall time %.1fs\n", dir, time.Since(start).Seconds())
	return code
}

func measureOutcome(o *runner.Outcome, kernel string) measurement {
	m := measurement{Scenario: o.Scenario, Kernel: kernel, Verdict: string(o.Verdict)}
	if kb := report.PreservedKB(o); len(kb) > 0 {
		m.PreservedKB = kb[0]
	}
	if t := report.Phases(o); len(t.Hops) > 0 {
		h := t.Hops[0]
		m.PreserveMS = ms(h.Preserve)
		m.RebootMS = ms(h.Reboot)
		m.ToRetrieveMS = ms(h.Blackout)
		m.RetrieveMS = ms(h.Retrieve)
	}
	if o.VM != nil {
		for _, ev := range o.VM.Events {
			if ev.Kind != plan.EventStep {
				continue
			}
			switch {
			case ev.Op == plan.OpPreserve && ev.Stage == 0:
				m.BlocksBefore, m.BlocksAfter = ev.Values["blocks_before"], ev.Values["blocks_after"]
			case ev.Op == plan.OpVerify && ev.Stage == 1:
				m.BlocksNext = ev.Values["blocks"]
			}
		}
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
