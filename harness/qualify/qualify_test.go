package qualify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/matrix"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// world fakes kernels, predictions and VMs for a qualification.
type world struct {
	prepareErr error
	// keeps says whether a live update from a into b keeps sessions.
	keeps func(a, b bootable.Kernel) bool
	// failing names a catalogue scenario that fails when a boots first.
	failing func(a bootable.Kernel) string
	// mem gives the soak's MemTotal per stage and label.
	mem     func(stage int, label string) int64
	batches []fleet.Batch
	reports []string
}

func (w *world) deps() matrix.Deps {
	return matrix.Deps{
		Prepare: bootable.Once(func(_ context.Context, s kernels.Spec) (bootable.Kernel, error) {
			if w.prepareErr != nil {
				return bootable.Kernel{}, w.prepareErr
			}
			return bootable.Kernel{Name: s.Name(), BzImage: "/cache/" + string(s), SrcDir: "/src/" + string(s)}, nil
		}),
		Caps: func(string) map[string]bool { return nil },
		Predict: func(_ context.Context, a, b bootable.Kernel) (compat.Prediction, error) {
			p := compat.Prediction{From: &compat.Profile{Image: a.BzImage}, To: &compat.Profile{Image: b.BzImage}, KeepsSessions: true}
			if w.keeps != nil && !w.keeps(a, b) {
				p.KeepsSessions = false
				p.Losses = []compat.Loss{{What: "every session", Why: a.Name + " writes memfd-v9, which " + b.Name + " has no handler for", Errno: "EIO"}}
			}
			return p, nil
		},
		Scenarios: func(context.Context, bootable.Kernel) ([]*scenario.Scenario, map[string]string, error) {
			return []*scenario.Scenario{{Name: "basic"}, {Name: "sparse"}}, nil, nil
		},
		Run: func(_ context.Context, b fleet.Batch, out io.Writer) []*runner.Outcome {
			w.batches = append(w.batches, b)
			var outs []*runner.Outcome
			for _, s := range b.Scenarios {
				o := &runner.Outcome{Scenario: s.Name, Verdict: runner.Pass, Kernels: b.Kernels}
				switch {
				case s.Name == SoakName:
					w.soak(s, o)
				case w.failing != nil && w.failing(b.Kernels[0]) == s.Name:
					o.Verdict, o.Reason = runner.Fail, "stage 1 step 3 verify: mismatch"
				}
				fmt.Fprintf(out, "%s %s\n", o.Verdict, o.Scenario)
				outs = append(outs, o)
			}
			return outs
		},
		Report: func(dir, suite string, _ time.Time, _ []bootable.Kernel, _ []*runner.Outcome) {
			w.reports = append(w.reports, suite)
		},
	}
}

// soak fills o as the agent would report the soak s.
func (w *world) soak(s *scenario.Scenario, o *runner.Outcome) {
	p, err := s.Plan(make([]scenario.Kexec, s.NumHops()))
	if err != nil {
		panic(err)
	}
	o.Plan = p
	var evs []vm.TimedEvent
	for si, st := range p.Stages {
		for i, step := range st.Steps {
			ev := plan.Event{Kind: plan.EventStep, Stage: si, Step: i, Op: step.Op, Expect: "ok", Outcome: "ok", Pass: true}
			if step.Op == plan.OpMeminfo {
				ev.Values = map[string]int64{"MemTotal": w.mem(si, step.Label)}
			}
			evs = append(evs, vm.TimedEvent{Event: ev})
		}
	}
	o.VM = &vm.Result{Events: evs}
}

func TestRun(t *testing.T) {
	leakAt5 := func(s int, l string) int64 {
		if s == 5 && l == "finished" {
			return steady(s, l) - 4
		}
		return steady(s, l)
	}
	tests := []struct {
		name    string
		w       *world
		verdict string
		parts   []string // verdicts of upgrade, rollback, soak
		causes  []string // substrings of the causes, in order
	}{
		{name: "a pair that works", w: &world{mem: steady}, verdict: Green, parts: []string{Green, Green, Green}},
		{
			name:    "rollback loses every session",
			w:       &world{mem: steady, keeps: func(a, b bootable.Kernel) bool { return a.Name != "patched" }},
			verdict: Red, parts: []string{Green, Red, Green},
			causes: []string{"sessions are lost: loses every session (EIO); every session: patched writes memfd-v9, which debian-7.2 has no handler for"},
		},
		{
			name:    "a catalogue scenario fails on the upgrade",
			w:       &world{mem: steady, failing: func(a bootable.Kernel) string { return map[string]string{"debian-7.2": "sparse"}[a.Name] }},
			verdict: Red, parts: []string{Red, Green, Green},
			causes: []string{"predicted \"keeps every session\", the run showed \"loses data (scenarios failed)\""},
		},
		{
			name:    "the soak leaks a page",
			w:       &world{mem: leakAt5},
			verdict: Red, parts: []string{Green, Green, Red},
			causes: []string{"hop 5 (patched): finish gave back"},
		},
		{
			name:    "a kernel does not build",
			w:       &world{mem: steady, prepareErr: errors.New("make: *** [bzImage] Error 2")},
			verdict: Red, parts: []string{Red, Red, Red},
			causes: []string{"preparing kernels", "preparing kernels", "preparing debian:7.2: make"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, progress bytes.Buffer
			r, err := Run(context.Background(), Options{From: "debian:7.2", To: "patched", Dir: "/out/q", Out: &out, Progress: &progress,
				Rerun: []string{"luotest", "run"}, SoakRerun: "luotest qualify -from debian:7.2 -to patched -soak-only"}, tc.w.deps())
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tc.verdict || len(r.Parts) != 3 {
				t.Fatalf("verdict %s, parts %+v; want %s", r.Verdict, r.Parts, tc.verdict)
			}
			ci := 0
			for i, p := range r.Parts {
				if p.Verdict != tc.parts[i] {
					t.Errorf("part %s: %s (%s), want %s", p.Name, p.Verdict, p.Cause, tc.parts[i])
				}
				if p.Verdict == Red {
					if ci >= len(tc.causes) || !strings.Contains(p.Cause, tc.causes[ci]) {
						t.Errorf("part %s: cause %q, want %q", p.Name, p.Cause, tc.causes[min(ci, len(tc.causes)-1)])
					}
					ci++
				} else if p.Cause != "" {
					t.Errorf("green part %s has a cause %q", p.Name, p.Cause)
				}
			}
			if ExitCode(r) != map[string]int{Green: 0, Red: 1}[tc.verdict] {
				t.Errorf("exit code %d for %s", ExitCode(r), r.Verdict)
			}
			if tc.w.prepareErr != nil {
				return
			}
			// Upgrade, rollback, soak, in that order; the soak
			// alternates the kernels, A first, for DefaultHops.
			if len(tc.w.batches) != 3 {
				t.Fatalf("%d batches", len(tc.w.batches))
			}
			up, back, soak := tc.w.batches[0], tc.w.batches[1], tc.w.batches[2]
			if up.Kernels[0].Name != "debian-7.2" || up.Kernels[1].Name != "patched" || back.Kernels[0].Name != "patched" || back.Kernels[1].Name != "debian-7.2" {
				t.Errorf("cells boot %v then %v", up.Kernels, back.Kernels)
			}
			if len(soak.Kernels) != DefaultHops+1 || soak.Kernels[0].Name != "debian-7.2" || soak.Kernels[1].Name != "patched" || soak.Kernels[2].Name != "debian-7.2" {
				t.Errorf("soak chain %v", soak.Kernels)
			}
			if soak.Dir != "/out/q/soak" || soak.Rerun != "luotest qualify -from debian:7.2 -to patched -soak-only" {
				t.Errorf("soak batch %+v", soak)
			}
			if len(r.Hops) != DefaultHops+1 {
				t.Errorf("%d hops in the table", len(r.Hops))
			}
			if got := strings.Join(tc.w.reports, ","); got != "upgrade,rollback,soak" {
				t.Errorf("reports %s", got)
			}
			var tab, junit bytes.Buffer
			WriteTable(&tab, r)
			WriteJUnit(&junit, r)
			if !strings.Contains(tab.String(), "qualify debian:7.2 -> patched: "+tc.verdict) || strings.Count(tab.String(), "\n") < 4+DefaultHops {
				t.Errorf("table:\n%s", tab.String())
			}
			if want := fmt.Sprintf(`tests="%d" failures="%d"`, 3+DefaultHops, strings.Count(strings.Join(tc.parts, ","), Red)+strings.Count(tc.name, "leaks")); !strings.Contains(junit.String(), want) {
				t.Errorf("JUnit lacks %s:\n%s", want, junit.String())
			}
		})
	}
}

func TestWriteArtefacts(t *testing.T) {
	w := &world{mem: steady}
	r, err := Run(context.Background(), Options{From: "stock", To: "patched", Out: io.Discard, Progress: io.Discard}, w.deps())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := WriteArtefacts(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3+6 {
		t.Errorf("files %v", files)
	}
	b, err := os.ReadFile(filepath.Join(dir, "qualify.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Verdict != Green || len(back.Hops) != DefaultHops+1 || len(back.Cells) != 2 || back.Hops[3].Baseline != 990000 {
		t.Errorf("qualify.json: %v %+v", err, back)
	}
	if x, _ := os.ReadFile(filepath.Join(dir, "qualify.xml")); !strings.Contains(string(x), `<testsuite name="qualify stock -&gt; patched"`) {
		t.Errorf("qualify.xml:\n%s", x)
	}
}

// -soak-only runs the soak alone; its verdict is the pair's.
func TestRunSoakOnly(t *testing.T) {
	// One kernel at every hop: one baseline.
	flat := func(s int, l string) int64 {
		if l == "before-open" {
			return 925000
		}
		return 1000000
	}
	leak := func(s int, l string) int64 {
		if s == 3 && l == "finished" {
			return flat(s, l) - 4
		}
		return flat(s, l)
	}
	for i, mem := range []func(int, string) int64{flat, leak} {
		w := &world{mem: mem}
		r, err := Run(context.Background(), Options{From: "patched", To: "patched", Hops: 4, SoakOnly: true, Out: io.Discard, Progress: io.Discard}, w.deps())
		if err != nil {
			t.Fatal(err)
		}
		if len(w.batches) != 1 || len(r.Cells) != 0 || len(r.Parts) != 1 || len(r.Hops) != 5 {
			t.Fatalf("batches %d, cells %d, parts %+v, hops %d", len(w.batches), len(r.Cells), r.Parts, len(r.Hops))
		}
		if want := []string{Green, Red}[i]; r.Verdict != want || r.Parts[0].Verdict != want {
			t.Errorf("case %d: verdict %s, soak %s (%s), want %s", i, r.Verdict, r.Parts[0].Verdict, r.Parts[0].Cause, want)
		}
	}
}
