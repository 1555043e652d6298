package runner

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// A merged run where one member's verify fails must fail that member only.
func TestSplitJudgesMembersSeparately(t *testing.T) {
	mk := func(name string) *scenario.Scenario {
		return &scenario.Scenario{Name: name, Tags: []string{"default"},
			Files:    []plan.File{{Name: "f", Size: 4096, Seed: 1}},
			Sessions: []scenario.Session{{Name: "s0", Files: []string{"f"}, TokenBase: 1}}}
	}
	a, b := mk("alpha"), mk("beta")
	hops := []scenario.Kexec{{Kernel: "/kernels/k", Cmdline: "x"}}
	g, err := scenario.Merge([]*scenario.Scenario{a, b}, hops)
	if err != nil {
		t.Fatal(err)
	}
	// Session names are made unique per member.
	sessions := map[string]bool{}
	for _, st := range g.Plan.Stages {
		for _, s := range st.Steps {
			if s.Op == plan.OpCreateSession {
				sessions[s.Session] = true
			}
		}
	}
	if !sessions["alpha.s0"] || !sessions["beta.s0"] {
		t.Fatalf("merged sessions %v, want alpha.s0 and beta.s0", sessions)
	}
	res := &vm.Result{}
	for si, st := range g.Plan.Stages {
		for i, s := range st.Steps {
			pass := true
			if ms, ok := g.Origin[scenario.StepRef{Stage: si, Step: i}]; ok && ms.Member == "beta" && s.Op == plan.OpVerify {
				pass = false
			}
			res.Events = append(res.Events, vm.TimedEvent{Event: plan.Event{Kind: plan.EventStep, Stage: si, Step: i, Op: s.Op, Pass: pass, Detail: "d"}})
		}
	}
	res.Events = append(res.Events, vm.TimedEvent{Event: plan.Event{Kind: plan.EventDone, Pass: false, Detail: "1 step(s) missed"}})
	res.Done = &res.Events[len(res.Events)-1]
	for _, tc := range []struct {
		s    *scenario.Scenario
		want Verdict
	}{{a, Pass}, {b, Fail}} {
		p, _ := tc.s.Plan(hops)
		j := Judge(p, split(res, g, tc.s.Name, p))
		v, reason := j.Verdict, j.Reason
		if v != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.s.Name, v, reason, tc.want)
		}
	}
}

// A member sees its own step starts, renumbered to its own plan, and a
// hang in its step is named with its own numbers.
func TestSplitRenumbersStarts(t *testing.T) {
	mk := func(name string) *scenario.Scenario {
		return &scenario.Scenario{Name: name, Tags: []string{"default"},
			Files:    []plan.File{{Name: "f", Size: 4096, Seed: 1}},
			Sessions: []scenario.Session{{Name: "s0", Files: []string{"f"}, TokenBase: 1}}}
	}
	a, b := mk("alpha"), mk("beta")
	hops := []scenario.Kexec{{Kernel: "/kernels/k", Cmdline: "x"}}
	g, err := scenario.Merge([]*scenario.Scenario{a, b}, hops)
	if err != nil {
		t.Fatal(err)
	}
	// Everything of stage 0 ran; stage 1 hangs in beta's first verify.
	res := &vm.Result{TimedOut: true, LastLines: []string{"x"}}
	add := func(kind plan.EventKind, si, i int, op plan.Op) {
		res.Events = append(res.Events, vm.TimedEvent{Event: plan.Event{Kind: kind, Stage: si, Step: i, Op: op, Pass: true}, Host: time.Second})
	}
	hung := -1
	for si, st := range g.Plan.Stages {
		add(plan.EventStage, si, 0, "")
		for i, s := range st.Steps {
			add(plan.EventStart, si, i, s.Op)
			if ms, ok := g.Origin[scenario.StepRef{Stage: si, Step: i}]; si == 1 && ok && ms.Member == "beta" && s.Op == plan.OpVerify {
				hung = ms.Step
				break
			}
			add(plan.EventStep, si, i, s.Op)
		}
		if hung >= 0 {
			break
		}
	}
	if hung < 0 {
		t.Fatal("the merged plan has no verify of beta in stage 1")
	}
	for _, tc := range []struct {
		s    *scenario.Scenario
		want string
	}{
		{a, ""},
		{b, fmt.Sprintf("stage 1 step %d (verify) started 1s into the run and never finished", hung)},
	} {
		p, _ := tc.s.Plan(hops)
		r := split(res, g, tc.s.Name, p)
		starts, steps := 0, 0
		for _, ev := range r.Events {
			switch ev.Kind {
			case plan.EventStart:
				starts++
				if ev.Op != plan.OpKexec && (ev.Stage >= len(p.Stages) || ev.Step >= len(p.Stages[ev.Stage].Steps) || p.Stages[ev.Stage].Steps[ev.Step].Op != ev.Op) {
					t.Errorf("%s: start of stage %d step %d %s is not this member's step", tc.s.Name, ev.Stage, ev.Step, ev.Op)
				}
			case plan.EventStep:
				steps++
			}
		}
		if starts < steps || starts > steps+1 {
			t.Errorf("%s: %d starts for %d steps", tc.s.Name, starts, steps)
		}
		reason := Judge(p, r).Reason
		if tc.want != "" && !strings.Contains(reason, tc.want) {
			t.Errorf("%s: reason %q lacks %q", tc.s.Name, reason, tc.want)
		}
		if tc.want == "" && strings.Contains(reason, "never finished") {
			t.Errorf("%s: reason %q names another member's step", tc.s.Name, reason)
		}
	}
}

func TestPartitionKeepsIncompatibleApart(t *testing.T) {
	var scs []*scenario.Scenario
	for _, s := range scenario.Default() {
		scs = append(scs, s)
	}
	for _, grp := range scenario.Partition(scs) {
		for _, m := range grp[1:] {
			if m.GroupKey() != grp[0].GroupKey() {
				t.Errorf("%s and %s grouped with different keys", grp[0].Name, m.Name)
			}
		}
	}
}
