package bench

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func TestPairedScenario(t *testing.T) {
	for _, tc := range []struct {
		w        Workload
		hops     int
		wantHops int
	}{
		{Workload{Dense4K, GiB}, 8, 8},
		{Workload{THP, 64 * MiB}, 3, 3},
		{Workload{Dense4K, 64 * MiB}, 1, 2}, // a pair needs two kexecs
	} {
		s := tc.w.PairedScenario(tc.hops)
		if s.NumHops() != tc.wantHops {
			t.Fatalf("%s: %d hops, want %d", s.Name, s.NumHops(), tc.wantHops)
		}
		if !s.HasTag(scenario.TagSolo) || s.Cmdline != tc.w.Cmdline() || s.Memory() != tc.w.MemoryMB() {
			t.Errorf("%s: tags %v cmdline %q memory %d", s.Name, s.Tags, s.Cmdline, s.Memory())
		}
		targets := make([]scenario.Kexec, tc.wantHops)
		for i := range targets {
			targets[i] = scenario.Kexec{Kernel: "/kernels/k" + string(rune('a'+i%2))}
		}
		p, err := s.Plan(targets)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		for i, st := range p.Stages {
			ops := map[plan.Op]int{}
			for _, step := range st.Steps {
				ops[step.Op]++
			}
			wantPreserve, wantRetrieve := 1, 1
			if i == 0 {
				wantRetrieve = 0
			}
			if i == len(p.Stages)-1 {
				wantPreserve = 0
			}
			if ops[plan.OpPreserve] != wantPreserve || ops[plan.OpRetrieve] != wantRetrieve || ops[plan.OpRetrieveSession] != wantRetrieve {
				t.Errorf("%s stage %d: ops %v", s.Name, i, ops)
			}
			// Every measured phase sits between two calibrations.
			for k, step := range st.Steps {
				switch step.Op {
				case plan.OpPreserve:
					if st.Steps[k-1].Op != plan.OpCalibrate || st.Steps[k+1].Op != plan.OpCalibrate {
						t.Errorf("%s stage %d: preserve not between calibrations", s.Name, i)
					}
				case plan.OpRetrieveSession:
					if k == 0 || st.Steps[k-1].Op != plan.OpCalibrate || st.Steps[k+2].Op != plan.OpCalibrate {
						t.Errorf("%s stage %d: retrieve not between calibrations", s.Name, i)
					}
				}
			}
			if (ops[plan.OpVerify] == 1) != (i == len(p.Stages)-1) {
				t.Errorf("%s stage %d: verify %d times; want once, in the last stage", s.Name, i, ops[plan.OpVerify])
			}
			if i > 0 && ops[plan.OpFinish] != 1 {
				t.Errorf("%s stage %d: %d finishes", s.Name, i, ops[plan.OpFinish])
			}
		}
	}
}

func TestPairedJobs(t *testing.T) {
	base, other := Variant{Name: "stock", Baseline: true}, Variant{Name: "patched"}
	jobs := PairedJobs(base, other, []Backing{Dense4K, THP}, []int64{GiB}, 3, 4)
	if len(jobs) != 6 {
		t.Fatalf("%d jobs, want 6", len(jobs))
	}
	starts := map[string]int{}
	for _, j := range jobs {
		if len(j.Chain) != 5 {
			t.Fatalf("chain of %d boots, want 5", len(j.Chain))
		}
		for i := 1; i < len(j.Chain); i++ {
			if j.Chain[i].Name == j.Chain[i-1].Name {
				t.Errorf("rep %d: boots %d and %d both run %s", j.Rep, i-1, i, j.Chain[i].Name)
			}
		}
		starts[j.Chain[0].Name]++
		if want := []string{"stock", "patched"}[j.Rep%2]; j.Chain[0].Name != want {
			t.Errorf("rep %d starts on %s, want %s", j.Rep, j.Chain[0].Name, want)
		}
	}
	if starts["stock"] != 4 || starts["patched"] != 2 {
		t.Errorf("starts %v", starts)
	}
	if d := jobs[1].Dir(); d != "paired/stock-patched/bench-thp-1g/rep0" {
		t.Errorf("dir %q", d)
	}
}

func TestPairedVariants(t *testing.T) {
	stock, patched := Variant{Name: "stock", Baseline: true}, Variant{Name: "patched"}
	if b, o, err := PairedVariants([]Variant{patched, stock}); err != nil || b.Name != "stock" || o.Name != "patched" {
		t.Errorf("got %s, %s, %v: want the baseline first", b.Name, o.Name, err)
	}
	if _, _, err := PairedVariants([]Variant{stock}); err == nil {
		t.Error("one kernel: want an error")
	}
	if _, _, err := PairedVariants(Variants()); err == nil || !strings.Contains(err.Error(), "4 are selected") {
		t.Errorf("four kernels: %v", err)
	}
}

func TestPairedSkipReason(t *testing.T) {
	hugetlb := map[string]bool{kernels.CapHugetlb: true}
	for _, tc := range []struct {
		w    Workload
		caps []map[string]bool
		want string
	}{
		{Workload{Dense4K, GiB}, []map[string]bool{nil, nil}, ""},
		{Workload{THP, GiB}, []map[string]bool{nil, hugetlb}, ""},
		{Workload{Sparse, GiB}, []map[string]bool{hugetlb, hugetlb}, "fills a sparse file's holes"},
		{Workload{Hugetlb2M, 64 * MiB}, []map[string]bool{nil, hugetlb}, "cannot preserve hugetlb"},
		{Workload{Hugetlb2M, 64 * MiB}, []map[string]bool{hugetlb, hugetlb}, ""},
	} {
		got := PairedSkipReason(tc.w, tc.caps...)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.w.Name(), got, tc.want)
		}
	}
}

// pairedResult fakes the steps of a paired VM: stage s preserves in
// pres[s] and retrieves in retr[s] seconds (0: no such step), with
// calibrations of cal seconds around each.
func pairedResult(pres, retr []float64, cal float64) report.ScenarioResult {
	var r report.ScenarioResult
	d := func(s float64) time.Duration { return time.Duration(s * 1e9) }
	for stage := range pres {
		n := 0
		add := func(op plan.Op, secs float64, values map[string]int64) {
			r.Steps = append(r.Steps, report.StepResult{Stage: stage, Step: n, Op: string(op), Reported: true, Pass: true,
				Duration: d(secs), Values: values})
			n++
		}
		calib := func() { add(plan.OpCalibrate, cal, map[string]int64{"calib_ns": int64(cal * 1e9)}) }
		if retr[stage] > 0 {
			calib()
			add(plan.OpRetrieveSession, 0.001, map[string]int64{"cpu_ns": 1e6})
			add(plan.OpRetrieve, retr[stage]-0.001, map[string]int64{"cpu_ns": int64((retr[stage] - 0.001) * 1e9)})
			calib()
			add(plan.OpFinish, 0.001, nil)
		}
		if pres[stage] > 0 {
			add(plan.OpCreateSession, 0.001, nil)
			calib()
			add(plan.OpPreserve, pres[stage], map[string]int64{"cpu_ns": int64(pres[stage] * 1e9)})
			calib()
			add(plan.OpKexec, 0, nil)
		}
	}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestMeasurePaired(t *testing.T) {
	chain := []string{"stock", "patched", "stock", "patched", "stock"}
	r := pairedResult([]float64{9, 0.2, 0.4, 0.3, 0}, []float64{0, 1.0, 1.2, 0.9, 1.1}, 0.01)
	got := MeasurePaired(r, chain, 1)
	type key struct {
		stage int
		phase string
	}
	want := map[key]float64{
		{1, PhaseRetrieve}: 1.0, {1, PhasePreserve}: 0.2,
		{2, PhaseRetrieve}: 1.2, {2, PhasePreserve}: 0.4,
		{3, PhaseRetrieve}: 0.9, {3, PhasePreserve}: 0.3,
		{4, PhaseRetrieve}: 1.1,
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d (stage 0's preserve left out): %+v", len(got), len(want), got)
	}
	for _, s := range got {
		w, ok := want[key{s.Stage, s.Phase}]
		if !ok || !near(s.Seconds, w) {
			t.Errorf("stage %d %s: %v s, want %v", s.Stage, s.Phase, s.Seconds, w)
		}
		if s.Kernel != chain[s.Stage] || s.Rep != 1 {
			t.Errorf("stage %d: kernel %s rep %d", s.Stage, s.Kernel, s.Rep)
		}
		if !near(s.Calibrated, w/0.01) || !near(s.CPUSeconds, w) {
			t.Errorf("stage %d %s: calibrated %v cpu %v", s.Stage, s.Phase, s.Calibrated, s.CPUSeconds)
		}
	}

	// A phase whose step failed or was never reported is left out.
	r.Steps[len(r.Steps)-3].Pass = false // the last stage's retrieve
	if got := MeasurePaired(r, chain, 0); len(got) != len(want)-1 {
		t.Errorf("failed step: %d samples, want %d", len(got), len(want)-1)
	}
}

func TestPairedAggregate(t *testing.T) {
	pt := PairedPoint{Base: "stock", Other: "patched"}
	// Two VMs; the second runs everything twice as slow, the series
	// preserves at 0.9 and retrieves at 1.1 of stock in both.
	for rep, speed := range []float64{1, 2} {
		for i := 0; i < 3; i++ {
			pt.Samples = append(pt.Samples,
				PairedSample{Rep: rep, Kernel: "stock", Phase: PhasePreserve, Seconds: speed * 0.2, Calibrated: 20},
				PairedSample{Rep: rep, Kernel: "patched", Phase: PhasePreserve, Seconds: speed * 0.18, Calibrated: 18},
				PairedSample{Rep: rep, Kernel: "stock", Phase: PhaseRetrieve, Seconds: speed * 1.0, Calibrated: 100},
				PairedSample{Rep: rep, Kernel: "patched", Phase: PhaseRetrieve, Seconds: speed * 1.1, Calibrated: 110})
		}
	}
	pt.Aggregate()
	for _, tc := range []struct {
		phase string
		ratio float64
	}{{PhasePreserve, 0.9}, {PhaseRetrieve, 1.1}} {
		ph := pt.Phase(tc.phase)
		if ph == nil {
			t.Fatalf("no %s phase", tc.phase)
		}
		if !near(ph.RatioCal, tc.ratio) || len(ph.VMRatios) != 2 || !near(ph.VMRatioStat.Min, tc.ratio) || !near(ph.VMRatioStat.Max, tc.ratio) {
			t.Errorf("%s: %+v", tc.phase, ph)
		}
		if ph.Base.N != 6 || ph.Other.N != 6 {
			t.Errorf("%s: n %d/%d, want 6/6", tc.phase, ph.Base.N, ph.Other.N)
		}
	}
	if pt.Phase("verify") != nil {
		t.Error("a phase that was not measured")
	}

	// The table and the document show both phases and their ratios.
	d := &Doc{Paired: []PairedPoint{pt}, Config: Config{CPUs: 1, ICount: "shift=0", PairedHops: 8, PairedReps: 2}}
	d.Paired[0].Backing, d.Paired[0].Size, d.Paired[0].Hops, d.Paired[0].VMs = Dense4K, GiB, 8, 2
	var tb bytes.Buffer
	WritePairedTable(&tb, d)
	for _, want := range []string{"paired", "preserve", "retrieve", "0.900", "1.100", "0.900–0.900"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, d, MarkdownOptions{Command: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### Paired", "kexecs 8 times", "| 4k | 1G | retrieve |", "**1.100**", "| vCPUs per VM | 1 |", "QEMU `-icount shift=0`", "| paired | 2 VM(s)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("document lacks %q", want)
		}
	}
}

func TestRunnerPaired(t *testing.T) {
	fails := 0
	vms := &fakeVMs{verdict: func(string) runner.Verdict {
		fails++
		if fails == 2 { // the second VM
			return runner.Fail
		}
		return runner.Pass
	}}
	var log bytes.Buffer
	r := &Runner{Fleet: &fleet.Fleet{RunGroup: vms.run, Limits: pool.Limits{Slots: 1}}, Log: &log, Now: minutes()}
	stock, patched := bootable.Kernel{Name: "stock", SrcDir: "/nonexistent/stock"}, bootable.Kernel{Name: "patched", SrcDir: "/nonexistent/patched"}
	p := Plan{Variants: variants(t, "patched,stock"), Kernels: map[string]bootable.Kernel{"stock": stock, "patched": patched},
		Backings: []Backing{Dense4K, Sparse}, Sizes: []int64{64 << 20}, PairedReps: 2, PairedHops: 4, CPUs: 1, Dir: "/runs/b"}
	pts, notes := r.Paired(context.Background(), p)
	if len(pts) != 1 || pts[0].Backing != Dense4K || pts[0].Base != "stock" || pts[0].Other != "patched" || pts[0].Hops != 4 {
		t.Fatalf("points %+v", pts)
	}
	if pts[0].VMs != 2 || pts[0].Failed != 1 || len(pts[0].Failures) != 1 || !strings.Contains(pts[0].Failures[0], "/runs/b/kernel/paired/patched-stock/") {
		t.Errorf("VMs %d failed %d %v", pts[0].VMs, pts[0].Failed, pts[0].Failures)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "paired sparse 64M not measured") {
		t.Errorf("notes %v", notes)
	}
	opts := vms.opts["paired-bench-4k-64m"]
	if len(opts) != 2 {
		t.Fatalf("%d paired VMs run, want 2", len(opts))
	}
	for i, o := range opts {
		var names []string
		for _, k := range o.Kernels {
			names = append(names, k.Name)
		}
		want := [][]string{{"stock", "patched", "stock", "patched", "stock"}, {"patched", "stock", "patched", "stock", "patched"}}[i]
		if !slices.Equal(names, want) {
			t.Errorf("VM %d boots %v, want %v", i, names, want)
		}
		if o.CPUs != 1 {
			t.Errorf("VM %d: %d vCPUs, want the plan's 1", i, o.CPUs)
		}
		if o.Timeout <= VMTimeout(0, 64<<20) {
			t.Errorf("VM %d: timeout %s leaves no time for the hops", i, o.Timeout)
		}
	}
	if !strings.Contains(log.String(), "2 paired VMs") || !strings.Contains(log.String(), "FAIL") {
		t.Errorf("log:\n%s", log.String())
	}

	// Not two kernels: a note, no VM.
	vms.opts = nil
	p.Variants = variants(t, "stock")
	if pts, notes := r.Paired(context.Background(), p); pts != nil || len(notes) != 1 || len(vms.opts) != 0 {
		t.Errorf("one kernel: %v %v %d VMs", pts, notes, len(vms.opts))
	}
}
