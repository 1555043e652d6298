package selftests

import (
	"reflect"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// harnessOutput is shaped like kselftest_harness.h output (liveupdate.c).
const harnessOutput = `TAP version 13
1..4
# Starting 4 tests from 1 test cases.
#  RUN           liveupdate_device.basic_open_close ...
#            OK  liveupdate_device.basic_open_close
ok 1 liveupdate_device.basic_open_close
ok 2 liveupdate_device.exclusive_open # SKIP /dev/liveupdate does not exist.
not ok 3 liveupdate_device.create_duplicate_session
ok 4 liveupdate_device.preserve_memfd # XFAIL known
# FAILED: 1 / 4 tests passed.
# Totals: pass:1 fail:1 xfail:1 xpass:0 skip:1 error:0
`

// bailOutput is what luo_test prints when stage 2 finds no state session.
const bailOutput = `Bail out! Stage mismatch Requested stage 2, but system is in stage 1.
(State session kexec_simple_state: MISSING)
# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:0
`

func TestParseKTAP(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want KTAP
	}{
		{
			name: "kselftest harness",
			out:  harnessOutput,
			want: KTAP{
				Version: "TAP version 13", Plan: 4,
				Cases: []Case{
					{1, "liveupdate_device.basic_open_close", Pass, ""},
					{2, "liveupdate_device.exclusive_open", Skip, "/dev/liveupdate does not exist."},
					{3, "liveupdate_device.create_duplicate_session", Fail, ""},
					{4, "liveupdate_device.preserve_memfd", XFail, "known"},
				},
				Totals: "Totals: pass:1 fail:1 xfail:1 xpass:0 skip:1 error:0",
			},
		},
		{
			name: "bail out",
			out:  bailOutput,
			want: KTAP{Plan: -1, BailOut: "Stage mismatch Requested stage 2, but system is in stage 1.", Totals: "Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:0"},
		},
		{
			name: "diagnostics only (stage 1 of a kexec test)",
			out:  "# [STAGE 1] Starting pre-kexec setup...\n# [STAGE 1] You may now perform kexec reboot.\n",
			want: KTAP{Plan: -1},
		},
		{
			name: "ktap v1, skipped plan, unnamed case, subtests ignored, CRLF",
			out:  "KTAP version 1\r\n1..0 # SKIP no device\r\n    ok 1 nested\r\nok 1 # SKIP whole\r\nnot ok 2 - dashed name\r\n",
			want: KTAP{
				Version: "KTAP version 1", Plan: 0,
				Cases: []Case{{1, "", Skip, "whole"}, {2, "dashed name", Fail, ""}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseKTAP(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseKTAP =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// outcome runs a selftest scenario's plan "on paper": events are the
// exec steps' (stage, step) -> event.
func outcome(t *testing.T, test Test, reason string, events map[[2]int]plan.Event) *runner.Outcome {
	t.Helper()
	s := Scenarios([]Test{test})[0]
	p, err := s.Plan([]scenario.Kexec{{Kernel: "/kernels/k"}}[:s.NumHops()])
	if err != nil {
		t.Fatal(err)
	}
	res := &vm.Result{}
	for si, st := range p.Stages {
		for i, step := range st.Steps {
			if ev, ok := events[[2]int{si, i}]; ok {
				ev.Kind, ev.Stage, ev.Step, ev.Op = plan.EventStep, si, i, step.Op
				res.Events = append(res.Events, vm.TimedEvent{Event: ev})
			}
		}
	}
	return &runner.Outcome{Scenario: s.Name, Plan: p, VM: res, Reason: reason}
}

func TestResults(t *testing.T) {
	kexec := Test{Name: "luo_kexec_simple", Kexec: true}
	plain := Test{Name: "liveupdate"}
	tests := []struct {
		name   string
		test   Test
		reason string
		events map[[2]int]plan.Event
		want   []Result
	}{
		{
			name: "kexec test passes both stages",
			test: kexec,
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "ok", Pass: true, Output: "# [STAGE 1] ok\n"},
				{0, 1}: {Outcome: "ok", Pass: true},
				{1, 0}: {Outcome: "ok", Pass: true, Output: "# [STAGE 2] ok\n"},
			},
			want: []Result{
				{Test: "luo_kexec_simple", Stage: 0, Invocation: "-s 1", Status: Pass, Output: "# [STAGE 1] ok\n"},
				{Test: "luo_kexec_simple", Stage: 1, Invocation: "-s 2", Status: Pass, Output: "# [STAGE 2] ok\n"},
			},
		},
		{
			name:   "stage 2 bails out",
			test:   kexec,
			reason: "stage 1 step 0 exec: expected ok, got exit:1",
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "ok", Pass: true},
				{0, 1}: {Outcome: "ok", Pass: true},
				{1, 0}: {Outcome: "exit:1", Detail: "exited with status 1", Output: bailOutput},
			},
			want: []Result{
				{Test: "luo_kexec_simple", Stage: 0, Invocation: "-s 1", Status: Pass},
				{Test: "luo_kexec_simple", Stage: 1, Invocation: "-s 2", Status: Fail,
					Detail: "Bail out! Stage mismatch Requested stage 2, but system is in stage 1.", Output: bailOutput},
			},
		},
		{
			name:   "kexec never came back: stage 2 did not run",
			test:   kexec,
			reason: "no verdict within the timeout",
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "ok", Pass: true},
			},
			want: []Result{
				{Test: "luo_kexec_simple", Stage: 0, Invocation: "-s 1", Status: Pass},
				{Test: "luo_kexec_simple", Stage: 1, Invocation: "-s 2", Status: NotRun, Detail: "never ran: no verdict within the timeout"},
			},
		},
		{
			name: "stage 1 skips (no /dev/liveupdate)",
			test: kexec,
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "exit:4", Output: "1..0 # SKIP Failed to open /dev/liveupdate\n"},
			},
			want: []Result{
				{Test: "luo_kexec_simple", Stage: 0, Invocation: "-s 1", Status: Skip, Output: "1..0 # SKIP Failed to open /dev/liveupdate\n"},
				{Test: "luo_kexec_simple", Stage: 1, Invocation: "-s 2", Status: NotRun, Detail: "never ran"},
			},
		},
		{
			name: "harness test: one result per case, failing exit adds the invocation",
			test: plain,
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "exit:1", Detail: "exited with status 1", Output: harnessOutput},
			},
			want: []Result{
				{Test: "liveupdate", Case: "liveupdate_device.basic_open_close", Status: Pass},
				{Test: "liveupdate", Case: "liveupdate_device.exclusive_open", Status: Skip, Detail: "/dev/liveupdate does not exist."},
				{Test: "liveupdate", Case: "liveupdate_device.create_duplicate_session", Status: Fail},
				{Test: "liveupdate", Case: "liveupdate_device.preserve_memfd", Status: XFail, Detail: "known"},
				{Test: "liveupdate", Status: Fail, Detail: "exited with status 1", Output: harnessOutput},
			},
		},
		{
			name: "harness test passing: the cases only",
			test: plain,
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "ok", Pass: true, Output: "TAP version 13\n1..1\nok 1 a.b\n"},
			},
			want: []Result{{Test: "liveupdate", Case: "a.b", Status: Pass}},
		},
		{
			name: "exit 0 with cases missing from the plan",
			test: plain,
			events: map[[2]int]plan.Event{
				{0, 0}: {Outcome: "ok", Pass: true, Output: "1..2\nok 1 a.b\n"},
			},
			want: []Result{
				{Test: "liveupdate", Case: "a.b", Status: Pass},
				{Test: "liveupdate", Status: Fail, Detail: "KTAP plan 1..2 but 1 cases reported", Output: "1..2\nok 1 a.b\n"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Results(outcome(t, tt.test, tt.reason, tt.events))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Results =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	if r := Results(nil); r != nil {
		t.Errorf("Results(nil) = %v", r)
	}
}
