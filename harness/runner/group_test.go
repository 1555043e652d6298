package runner

import (
	"testing"

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
		v, _, reason := Judge(p, split(res, g, tc.s.Name, p))
		if v != tc.want {
			t.Errorf("%s: %s (%s), want %s", tc.s.Name, v, reason, tc.want)
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
