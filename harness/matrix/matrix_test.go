package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		list    string
		want    []string
		wantErr string
	}{
		{"", names(Cells()), ""},
		// The Makefile's list, in the matrix's order whatever the
		// list's.
		{"stock->patched,patched->stock,patched(abi=v3)->stock", []string{"stock->patched", "patched->stock", "patched(abi=v3)->stock"}, ""},
		{"patched->stock,stock->stock", []string{"stock->stock", "patched->stock"}, ""},
		{"stock->stock,stock->stock", []string{"stock->stock"}, ""},
		{"stock->patchd", nil, `no cell "stock->patchd"`},
		{"stock->stock,", nil, `no cell ""`},
		// Any pair of kernel specs, after the built-in cells.
		{"debian:7.2->stock,stock->patched,stock->debian:7.2.12", []string{"stock->patched", "debian:7.2->stock", "stock->debian:7.2.12"}, ""},
		{"debian:7->stock", nil, `no cell "debian:7->stock"`},
		{"stock->", nil, `no cell "stock->"`},
	} {
		got, err := Select(tc.list)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Select(%q): error %v, want one naming %s", tc.list, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Select(%q): %v", tc.list, err)
		}
		if !slices.Equal(names(got), tc.want) {
			t.Errorf("Select(%q) = %q, want %q", tc.list, names(got), tc.want)
		}
	}
	for _, c := range Cells() {
		if _, err := Select(c.Name); err != nil {
			t.Errorf("Select(%q): %v", c.Name, err)
		}
	}
}

func names(cs []Cell) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestCellDirAndRerun(t *testing.T) {
	for _, tc := range []struct {
		cell      string
		wantDir   string
		wantRerun string
	}{
		{"stock->patched", "stock-patched", "./bin/luotest run -flavour debug -from stock -to patched -run %s"},
		{"patched(abi=v3)->stock", "patched-abi-v3-stock", "./bin/luotest run -flavour debug -from patched -to stock -from-args memfd_luo.abi=v3 -run %s"},
	} {
		cs, err := Select(tc.cell)
		if err != nil {
			t.Fatal(err)
		}
		c := cs[0]
		if got := c.dir(); got != tc.wantDir {
			t.Errorf("%s: dir %q, want %q", tc.cell, got, tc.wantDir)
		}
		prefix := []string{"./bin/luotest", "run", "-flavour", "debug"}
		if got := c.rerun(prefix); got != tc.wantRerun {
			t.Errorf("%s: rerun %q, want %q", tc.cell, got, tc.wantRerun)
		}
		if len(prefix) != 4 {
			t.Errorf("rerun changed its prefix: %q", prefix)
		}
	}
	c := Cell{From: "patched", To: "stock", FromArgs: "a=1 b=2"}
	if got, want := c.rerun([]string{"luotest", "run"}), "luotest run -from patched -to stock -from-args 'a=1 b=2' -run %s"; got != want {
		t.Errorf("rerun %q, want %q", got, want)
	}
}

func TestOutcome(t *testing.T) {
	keeps := compat.Prediction{KeepsSessions: true}
	loses := compat.Prediction{Losses: []compat.Loss{{What: "every session", Errno: "EIO"}}}
	for _, tc := range []struct {
		pred   compat.Prediction
		passed bool
		want   string
		agrees bool
	}{
		{keeps, true, "keeps every session", true},
		{keeps, false, "loses data (scenarios failed)", false},
		{loses, true, "loses every session (EIO)", true},
		{loses, false, "the sessions did not fail as predicted", false},
	} {
		got := Outcome(tc.pred, tc.passed)
		if got != tc.want {
			t.Errorf("Outcome(%s, %v) = %q, want %q", tc.pred.Summary(), tc.passed, got, tc.want)
		}
		if (got == tc.pred.Summary()) != tc.agrees {
			t.Errorf("Outcome(%s, %v) = %q: agreeing with the prediction is %v, want %v", tc.pred.Summary(), tc.passed, got, !tc.agrees, tc.agrees)
		}
	}
}

// world fakes kernels, predictions and VMs for the cell loop.
type world struct {
	prepareErr map[kernels.Spec]error
	caps       map[string]bool
	// keeps says whether compat predicts that a cell keeps its
	// sessions; predictErr fails the prediction.
	keeps      func(a, b bootable.Kernel) bool
	predictErr error
	// verdict is each scenario's verdict in a cell whose first kernel
	// boots with cmdline.
	verdict     func(cmdline, scenario string) runner.Verdict
	scenarioErr error

	prepared []kernels.Spec
	batches  []fleet.Batch
	reports  []string
}

func (w *world) deps() Deps {
	return Deps{
		Prepare: bootable.Once(func(_ context.Context, s kernels.Spec) (bootable.Kernel, error) {
			w.prepared = append(w.prepared, s)
			if err := w.prepareErr[s]; err != nil {
				return bootable.Kernel{}, err
			}
			return bootable.Kernel{Name: s.Name(), BzImage: "/cache/" + string(s), SrcDir: "/src/" + string(s)}, nil
		}),
		Caps: func(src string) map[string]bool {
			if src != "/src/patched" {
				return nil
			}
			return w.caps
		},
		Predict: func(_ context.Context, a, b bootable.Kernel) (compat.Prediction, error) {
			if w.predictErr != nil {
				return compat.Prediction{}, w.predictErr
			}
			p := compat.Prediction{From: &compat.Profile{Image: a.BzImage}, To: &compat.Profile{Image: b.BzImage}, KeepsSessions: true}
			if !w.keeps(a, b) {
				p.KeepsSessions = false
				p.Losses = []compat.Loss{{What: "every session", Why: "no handler", Errno: "EIO"}}
			}
			return p, nil
		},
		Scenarios: func(_ context.Context, from bootable.Kernel) ([]*scenario.Scenario, map[string]string, error) {
			if w.scenarioErr != nil {
				return nil, nil, w.scenarioErr
			}
			return []*scenario.Scenario{{Name: "basic"}, {Name: "sparse"}}, map[string]string{"selftest": "/bin/x"}, nil
		},
		Run: func(_ context.Context, b fleet.Batch, out io.Writer) []*runner.Outcome {
			w.batches = append(w.batches, b)
			var outs []*runner.Outcome
			for _, s := range b.Scenarios {
				o := &runner.Outcome{Scenario: s.Name, Verdict: w.verdict(b.Kernels[0].Cmdline, s.Name)}
				fmt.Fprintf(out, "%s %s\n", o.Verdict, o.Scenario)
				outs = append(outs, o)
			}
			return outs
		},
		Report: func(dir, suite string, _ time.Time, _ []bootable.Kernel, _ []*runner.Outcome) {
			w.reports = append(w.reports, suite+" "+dir)
		},
	}
}

// v3Breaks is the real world: stock cannot read memfd-v3, everything else
// keeps its sessions.
func v3Breaks(a, b bootable.Kernel) bool {
	return !(a.Cmdline == "memfd_luo.abi=v3" && b.Name == "stock")
}

func allPass(string, string) runner.Verdict { return runner.Pass }

// clock advances a minute at every reading.
func clock() func() time.Time {
	t := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Minute)
		return t
	}
}

func TestRun(t *testing.T) {
	v2Fails := func(cmdline, s string) runner.Verdict {
		if cmdline == "memfd_luo.abi=v2" && s == "sparse" {
			return runner.Fail
		}
		return runner.Pass
	}
	for _, tc := range []struct {
		name  string
		cells string
		w     world
		// want is "cell verdict" per cell.
		want     []string
		wantCode int
		// wantOut must appear in the output.
		wantOut []string
	}{
		{"the Makefile's cells pass as predicted", "stock->patched,patched->stock,patched(abi=v3)->stock",
			world{caps: map[string]bool{kernels.CapMemfdV3: true}, keeps: v3Breaks, verdict: allPass},
			[]string{"stock->patched PASS", "patched->stock PASS", "patched(abi=v3)->stock PASS"}, 0,
			[]string{"== patched(abi=v3)->stock: documented failure", "PASS downgrade-unreadable", "prediction: loses every session (EIO)"}},
		{"a series without the knobs skips their cells", "",
			world{keeps: v3Breaks, verdict: allPass},
			[]string{"stock->stock PASS", "stock->patched PASS", "patched->patched PASS", "patched(abi=v2)->patched SKIP",
				"patched->stock PASS", "patched(abi=v2)->stock SKIP", "patched(abi=v3)->stock SKIP"}, 0,
			[]string{"== patched(abi=v2)->patched: SKIP (the series has no abi-knob yet)"}},
		{"a failing scenario where sessions should survive fails the cell", "patched->patched,patched(abi=v2)->stock",
			world{caps: map[string]bool{kernels.CapABIKnob: true}, keeps: v3Breaks, verdict: v2Fails},
			[]string{"patched->patched PASS", "patched(abi=v2)->stock FAIL"}, 1,
			[]string{`predicted "keeps every session", the run showed "loses data (scenarios failed)"`}},
		{"sessions surviving a predicted loss fail the cell", "patched(abi=v3)->stock",
			world{caps: map[string]bool{kernels.CapMemfdV3: true}, keeps: v3Breaks,
				verdict: func(string, string) runner.Verdict { return runner.Fail }},
			[]string{"patched(abi=v3)->stock FAIL"}, 1,
			[]string{`the run showed "the sessions did not fail as predicted"`}},
		{"a kernel that does not build is an ERROR", "stock->patched,patched->patched",
			world{prepareErr: map[kernels.Spec]error{"stock": errors.New("no space left")}, keeps: v3Breaks, verdict: allPass},
			[]string{"stock->patched ERROR", "patched->patched PASS"}, 1,
			[]string{"preparing kernels: no space left <nil>"}},
		{"no prediction is an ERROR", "stock->stock",
			world{predictErr: errors.New("no vmlinux"), keeps: v3Breaks, verdict: allPass},
			[]string{"stock->stock ERROR"}, 1,
			[]string{"== stock->stock: ERROR (predicting the outcome: no vmlinux)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells, err := Select(tc.cells)
			if err != nil {
				t.Fatal(err)
			}
			var out, progress bytes.Buffer
			w := tc.w
			results, err := Run(context.Background(), Options{Cells: cells, Dir: "/runs/m", Rerun: []string{"luotest", "run"},
				Out: &out, Progress: &progress, Now: clock()}, w.deps())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range results {
				got = append(got, r.Name+" "+r.Verdict)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("cells %q, want %q", got, tc.want)
			}
			if code := ExitCode(results); code != tc.wantCode {
				t.Errorf("exit %d, want %d", code, tc.wantCode)
			}
			var table bytes.Buffer
			WriteTable(&table, results)
			all := out.String() + table.String()
			for _, s := range tc.wantOut {
				if !strings.Contains(all, s) {
					t.Errorf("output lacks %q:\n%s", s, all)
				}
			}
			// One progress line per cell, done/total and the
			// elapsed time.
			lines := strings.Split(strings.TrimSuffix(progress.String(), "\n"), "\n")
			if len(lines) != len(cells) {
				t.Errorf("progress %q: want %d lines", progress.String(), len(cells))
			}
			re := regexp.MustCompile(`^matrix: (\d+)/(\d+) cells, \d+m0s$`)
			for i, l := range lines {
				m := re.FindStringSubmatch(l)
				if m == nil || m[1] != fmt.Sprint(i+1) || m[2] != fmt.Sprint(len(cells)) {
					t.Errorf("progress line %d %q, want matrix: %d/%d cells, <elapsed>", i, l, i+1, len(cells))
				}
			}
			// Every kernel is prepared once.
			seen := map[kernels.Spec]int{}
			for _, s := range w.prepared {
				seen[s]++
			}
			for s, n := range seen {
				if n > 1 && w.prepareErr[s] == nil {
					t.Errorf("kernel %s prepared %d times", s, n)
				}
			}
			for i, b := range w.batches {
				if len(b.Kernels) != 2 || !strings.HasPrefix(b.Dir, "/runs/m/") || !strings.HasSuffix(b.Rerun, " -run %s") {
					t.Errorf("batch %d: %+v", i, b)
				}
				if b.Scenarios[0].Name == "downgrade-unreadable" && b.Files != nil {
					t.Errorf("batch %d: the EIO scenario gets the catalogue's files %v", i, b.Files)
				}
			}
			if len(w.reports) != len(w.batches) {
				t.Errorf("%d reports for %d batches", len(w.reports), len(w.batches))
			}
		})
	}
}

// A selection the catalogue refuses stops the matrix: a usage error.
func TestRunStopsOnSelectionError(t *testing.T) {
	w := world{keeps: v3Breaks, verdict: allPass, scenarioErr: errors.New("no scenario matches")}
	cells, _ := Select("stock->stock,stock->patched")
	var out, progress bytes.Buffer
	results, err := Run(context.Background(), Options{Cells: cells, Out: &out, Progress: &progress}, w.deps())
	if err == nil || err.Error() != "no scenario matches" {
		t.Errorf("err %v, want the selection's", err)
	}
	if len(w.batches) != 0 || len(results) != 1 {
		t.Errorf("ran %d batches, %d cells after the error", len(w.batches), len(results))
	}
}

func TestTableSummaryJSON(t *testing.T) {
	cells := Cells()
	results := []*Result{
		{Cell: cells[0], Verdict: Pass, Predicted: "keeps every session", Outcome: "keeps every session", Elapsed: 61.25},
		{Cell: cells[3], Verdict: string(runner.Skip), Reason: "the series has no abi-knob yet"},
		{Cell: cells[6], Verdict: Fail, Predicted: "loses every session (EIO)", Outcome: "the sessions did not fail as predicted", Reason: "predicted x"},
		{Cell: cells[1], Verdict: string(runner.Error), Reason: "preparing kernels: boom <nil>"},
	}
	results[0].Counts.Pass, results[0].Counts.Fail, results[0].Counts.Timeout, results[0].Counts.Skip = 30, 1, 2, 3
	var table bytes.Buffer
	WriteTable(&table, results)
	want := `cell                       verdict predicted (luotest compat)   outcome                       pass  fail  skip     time  
stock->stock               PASS    keeps every session          keeps every session             30     3     3    61.2s  the baseline
patched(abi=v2)->patched   SKIP    -                            -                                0     0     0     0.0s  the series has no abi-knob yet
patched(abi=v3)->stock     FAIL    loses every session (EIO)    the sessions did not fail as predicted     0     0     0     0.0s  predicted x
stock->patched             ERROR   -                            -                                0     0     0     0.0s  preparing kernels: boom <nil>
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}
	var sum bytes.Buffer
	WriteSummary(&sum, "/runs/m", results, 90*time.Second)
	if want := "artefacts: /runs/m\nluotest matrix: 1 passed, 2 failed, 1 skipped\nwall time 90.0s\n"; sum.String() != want {
		t.Errorf("summary %q, want %q", sum.String(), want)
	}
	if ExitCode(results) != 1 || ExitCode(results[:2]) != 0 {
		t.Errorf("exit codes %d %d, want 1 0", ExitCode(results), ExitCode(results[:2]))
	}

	// matrix.json: the keys and their order as the map it replaced
	// wrote them.
	var js bytes.Buffer
	started := time.Date(2026, 11, 22, 5, 1, 2, 0, time.UTC)
	if err := WriteJSON(&js, Doc{Accel: "tcg", Flavour: "debug", Started: started, Cells: results[:1]}); err != nil {
		t.Fatal(err)
	}
	old, _ := json.MarshalIndent(map[string]any{"started": started, "accel": "tcg", "flavour": "debug", "cells": results[:1]}, "", "  ")
	if js.String() != string(old) {
		t.Errorf("matrix.json:\n%s\nwant:\n%s", js.String(), old)
	}
	for _, key := range []string{`"name": "stock-\u003estock"`, `"verdict": "PASS"`, `"pass": 30`, `"elapsed_s": 61.25`} {
		if !strings.Contains(js.String(), key) {
			t.Errorf("matrix.json lacks %s:\n%s", key, js.String())
		}
	}
}

func TestEIOScenarioCompiles(t *testing.T) {
	s := EIOScenario()
	p, err := s.Plan([]scenario.Kexec{{Kernel: "/kernels/stock"}})
	if err != nil {
		t.Fatal(err)
	}
	last := p.Stages[len(p.Stages)-1].Steps
	if len(p.Stages) != 2 || last[len(last)-1].Expect != "EIO" {
		t.Errorf("plan %+v: want two stages, the second expecting EIO", p.Stages)
	}
}
