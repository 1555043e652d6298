package runner

import (
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/console"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func TestJudge(t *testing.T) {
	p := &plan.Plan{Scenario: "t", Stages: []plan.Stage{
		{Steps: []plan.Step{{Op: plan.OpMeminfo}, {Op: plan.OpKexec}}},
		{Steps: []plan.Step{{Op: plan.OpVerify}}},
	}}
	step := func(stage, i int, pass bool, detail string) vm.TimedEvent {
		return vm.TimedEvent{Event: plan.Event{Kind: plan.EventStep, Stage: stage, Step: i, Pass: pass, Detail: detail, Op: plan.OpVerify}}
	}
	done := func(pass bool) *vm.TimedEvent {
		return &vm.TimedEvent{Event: plan.Event{Kind: plan.EventDone, Pass: pass, Detail: "d"}}
	}
	all := []vm.TimedEvent{step(0, 0, true, ""), step(0, 1, true, ""), step(1, 0, true, "")}
	tests := []struct {
		name       string
		res        vm.Result
		want       Verdict
		wantReason string
	}{
		{"pass", vm.Result{Events: all, Done: done(true)}, Pass, ""},
		{"step failed", vm.Result{Events: []vm.TimedEvent{step(0, 0, true, ""), step(0, 1, true, ""), step(1, 0, false, "page 0x1000 differs")}, Done: done(false)}, Fail, "page 0x1000 differs"},
		{"missing step", vm.Result{Events: all[:2], Done: done(true)}, Fail, "never reported"},
		{"panic on console", vm.Result{Events: all[:2], Findings: []console.Finding{{Kind: console.Panic, Line: "Kernel panic - not syncing: x", LineNo: 7}}}, Fail, "kernel panic"},
		{"qmp panic", vm.Result{Panicked: true, LastLines: []string{"last words"}}, Fail, "GUEST_PANICKED"},
		{"timeout names last line", vm.Result{TimedOut: true, LastLines: []string{"a", "stuck here"}}, Timeout, "stuck here"},
		{"silence", vm.Result{Silent: true, LastLines: []string{"quiet"}}, Timeout, "no console output"},
		{"exit without verdict", vm.Result{LastLines: []string{"bye"}}, Fail, "without a verdict"},
		{"warning fails a passing run", vm.Result{Events: all, Done: done(true), Findings: []console.Finding{{Kind: console.Warning, Line: "WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2", LineNo: 3}}}, Fail, "warning"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _, reason := Judge(p, &tc.res)
			if v != tc.want {
				t.Errorf("verdict %s, want %s (reason %q)", v, tc.want, reason)
			}
			if !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason %q does not contain %q", reason, tc.wantReason)
			}
		})
	}
}
