package qualify

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func TestChain(t *testing.T) {
	a, b := bootable.Kernel{Name: "a"}, bootable.Kernel{Name: "b"}
	var names []string
	for _, k := range Chain(a, b, 4) {
		names = append(names, k.Name)
	}
	if got := strings.Join(names, ","); got != "a,b,a,b,a" {
		t.Errorf("Chain = %s", got)
	}
}

// soakRun fakes a soak of hops kexecs on a, b, a, ...: every step
// reported and passing, MemTotal from mem(stage, label), verify steps
// failing where fail(stage, file) says so, stages from stop on never
// reported.
func soakRun(t *testing.T, hops, stop int, mem func(stage int, label string) int64, fail func(stage int, file string) bool) *runner.Outcome {
	t.Helper()
	s := Soak(hops)
	if s.Name != SoakName || s.NumHops() != hops {
		t.Fatalf("Soak(%d): %s, %d hops", hops, s.Name, s.NumHops())
	}
	targets := make([]scenario.Kexec, hops)
	p, err := s.Plan(targets)
	if err != nil {
		t.Fatal(err)
	}
	var evs []vm.TimedEvent
	for si, st := range p.Stages {
		if si >= stop {
			break
		}
		evs = append(evs, vm.TimedEvent{Event: plan.Event{Kind: plan.EventStage, Stage: si}})
		for i, step := range st.Steps {
			ev := plan.Event{Kind: plan.EventStep, Stage: si, Step: i, Op: step.Op, Expect: "ok", Outcome: "ok", Pass: true}
			if step.Op == plan.OpMeminfo {
				ev.Values = map[string]int64{"MemTotal": mem(si, step.Label)}
			}
			if step.Op == plan.OpVerify && fail != nil && fail(si, step.File) {
				ev.Outcome, ev.Pass = "mismatch", false
			}
			evs = append(evs, vm.TimedEvent{Event: ev})
		}
	}
	a, b := bootable.Kernel{Name: "stock"}, bootable.Kernel{Name: "debian-7.2", Cmdline: "x=1"}
	return &runner.Outcome{Scenario: s.Name, Verdict: runner.Pass, Plan: p, VM: &vm.Result{Events: evs}, Kernels: Chain(a, b, hops)}
}

// steady is a soak where each kernel gives back everything: kernel a
// (even stages) ends at 1,000,000 kB, kernel b at 990,000 kB, and the
// handover holds 75,000 kB at boot.
func steady(stage int, label string) int64 {
	base := int64(1000000)
	if stage%2 == 1 {
		base = 990000
	}
	switch label {
	case "before-open":
		return base - 75000
	case "preserved", "populated":
		return base
	}
	return base
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name  string
		stop  int
		mem   func(int, string) int64
		fail  func(int, string) bool
		wants []string // substrings of the error; none: no error
	}{
		{name: "clean", mem: steady},
		{
			name: "one page kept at hop 4",
			mem: func(s int, l string) int64 {
				if s == 4 && l == "finished" {
					return steady(s, l) - 4
				}
				return steady(s, l)
			},
			wants: []string{"hop 4 (stock)", "finish gave back 74996 kB, 4 kB less than at stock's first soak boot (a leak)"},
		},
		{
			// The previous kernel's KHO metadata took a page
			// more at boot and stays: not a leak.
			name: "a page more of incoming KHO metadata at hop 3",
			mem: func(s int, l string) int64 {
				if s == 3 && (l == "before-open" || l == "finished") {
					return steady(s, l) - 4
				}
				return steady(s, l)
			},
		},
		{
			name: "MemTotal creeps down beyond the jitter",
			mem: func(s int, l string) int64 {
				if s == 4 && (l == "before-open" || l == "finished") {
					return steady(s, l) - 20
				}
				return steady(s, l)
			},
			wants: []string{"hop 4 (stock)", "-20 kB from stock's baseline 1000000 kB (more than the 16 kB"},
		},
		{
			name: "the handover grows at hop 3",
			mem: func(s int, l string) int64 {
				if s == 3 && l == "before-open" {
					return steady(s, l) - 8
				}
				return steady(s, l)
			},
			wants: []string{"hop 3 (debian-7.2@x=1)", "the handover held 75008 kB at boot, 8 kB more than"},
		},
		{
			name:  "a file fails to verify at hop 2",
			mem:   steady,
			fail:  func(s int, f string) bool { return s == 2 && f == "sparse" },
			wants: []string{"hop 2 (stock): 2 of 3 files verified", "hops 3-4 not accounted"},
		},
		{
			name:  "the soak stops after hop 2",
			stop:  3,
			mem:   steady,
			wants: []string{"hop 3", "MemTotal not reported", "hops 4-4 not accounted"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop := tc.stop
			if stop == 0 {
				stop = 5
			}
			hops, err := Account(soakRun(t, 4, stop, tc.mem, tc.fail))
			if len(hops) != 5 {
				t.Fatalf("%d hops, want 5", len(hops))
			}
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("Account: %v", err)
				}
				for _, h := range hops[1:] {
					if h.Held != 75000 || h.Leak != 0 || h.Verified != 3 || h.Files != 3 || h.Problem != "" {
						t.Errorf("hop %+v", h)
					}
				}
				if hops[3].Baseline != 990000 || hops[4].Baseline != 1000000 || hops[1].Kernel != "debian-7.2@x=1" {
					t.Errorf("baselines: %+v", hops)
				}
				if want := int64(0); strings.Contains(tc.name, "KHO metadata") {
					if hops[3].Drift != 4 {
						t.Errorf("hop 3 drift %d, want 4", hops[3].Drift)
					}
				} else if hops[3].Drift != want {
					t.Errorf("hop 3 drift %d", hops[3].Drift)
				}
				return
			}
			if err == nil {
				t.Fatalf("Account passed; want an error with %q", tc.wants)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestWritePlots(t *testing.T) {
	hops, err := Account(soakRun(t, 4, 5, steady, nil))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := WritePlots(hops, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 6 {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSoakTimeout(t *testing.T) {
	for _, tc := range []struct {
		hops, factor int
		want         time.Duration
	}{
		{6, 1, 8 * time.Minute},
		{100, 1, 55 * time.Minute},
		{6, 6, 48 * time.Minute},
		{6, 0, 8 * time.Minute},
	} {
		if got := SoakTimeout(tc.hops, tc.factor); got != tc.want {
			t.Errorf("SoakTimeout(%d, %d) = %s, want %s", tc.hops, tc.factor, got, tc.want)
		}
	}
}
