package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/kunit"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

const kunitConsole = `[    0.000000] Linux version 7.3.4
[    8.5] KTAP version 1
[    8.5] 1..1
[    8.5]     KTAP version 1
[    8.5]     # Subtest: memfd_luo_records
[    8.5]     1..3
[    8.6]     ok 1 roundtrip
[    8.7]     # reject_overlap: EXPECTATION FAILED at mm/memfd_luo_test.c:142
[    8.7]     not ok 2 reject_overlap
[    8.8]     ok 3 hugetlb # SKIP no hugetlb
[    8.8] # Totals: pass:1 fail:1 skip:1 total:3
[    8.8] not ok 1 memfd_luo_records
[    9.2] Run /init as init process
`

// debugOutcomes are a debug-flavour run: a kunit scenario with a failed
// case, and a scenario that hung and got SysRq.
func debugOutcomes(t *testing.T) []*runner.Outcome {
	t.Helper()
	c, err := kunit.FromConsole(strings.NewReader(kunitConsole))
	if err != nil {
		t.Fatal(err)
	}
	k := bootable.Kernel{Name: "patched", Release: "7.3.4", Flavour: flavour.Debug}
	ku := &runner.Outcome{Scenario: "kunit", Verdict: runner.Fail, Blame: "kernel", Reason: kunit.Failure(c.Report),
		Flavour: flavour.Debug, KUnit: c.Report, Kernels: []bootable.Kernel{k}, Elapsed: 30 * time.Second,
		Rerun: "./bin/luotest run -flavour debug -run kunit",
		Plan:  &plan.Plan{Scenario: "kunit", Stages: []plan.Stage{{Steps: []plan.Step{{Op: plan.OpMeminfo, Label: "booted"}}}}},
		VM: &vm.Result{Accel: vm.AccelTCG, ConsoleLog: "/runs/x/kunit/console.log", Events: []vm.TimedEvent{
			{Event: plan.Event{Kind: plan.EventStep, Op: plan.OpMeminfo, Pass: true, Outcome: "ok"}}}}}
	hang := &runner.Outcome{Scenario: "basic-64m", Verdict: runner.Timeout, Blame: "kernel",
		Reason:  "no console output for too long (hang?); SysRq w,l sent, the stacks are in console.log; last console line: x",
		Flavour: flavour.Debug, Kernels: []bootable.Kernel{k, k}, Elapsed: 6 * time.Minute,
		Rerun: "./bin/luotest run -flavour debug -run basic-64m",
		VM: &vm.Result{Accel: vm.AccelTCG, Silent: true, ConsoleLog: "/runs/x/basic-64m/console.log",
			SysRq: &vm.SysRq{Why: "silence", Keys: []string{"w", "l"}, At: 6 * time.Minute, Waited: 3 * time.Second, Lines: 120, LastLineBefore: "x"}}}
	return []*runner.Outcome{ku, hang}
}

func TestDebugFlavourReports(t *testing.T) {
	outs := debugOutcomes(t)

	var line bytes.Buffer
	for _, o := range outs {
		Line(&line, o)
	}
	for _, want := range []string{"[tcg debug]", "KUnit case memfd_luo_records/reject_overlap failed", "rerun:   ./bin/luotest run -flavour debug -run kunit"} {
		if !strings.Contains(line.String(), want) {
			t.Errorf("result lines lack %q:\n%s", want, line.String())
		}
	}

	var x bytes.Buffer
	if err := WriteJUnit(&x, "debug", outs); err != nil {
		t.Fatal(err)
	}
	doc := decodeJUnit(t, x.Bytes())
	ts := doc.Suites[0]
	if ts.Name != "luotest.debug" {
		t.Errorf("suite %q, want luotest.debug", ts.Name)
	}
	got := map[string]string{}
	for _, c := range ts.Cases {
		state := "pass"
		switch {
		case c.Failure != nil:
			state = "failure:" + c.Failure.Message
		case c.Error != nil:
			state = "error"
		case c.Skipped != nil:
			state = "skipped"
		}
		got[c.Name] = state
	}
	for name, want := range map[string]string{
		"kunit":                                  "failure:KUnit case memfd_luo_records/reject_overlap failed: EXPECTATION FAILED at mm/memfd_luo_test.c:142",
		"kunit/memfd_luo_records/roundtrip":      "pass",
		"kunit/memfd_luo_records/reject_overlap": "failure:not ok",
		"kunit/memfd_luo_records/hugetlb":        "skipped",
		"basic-64m":                              "failure:no console output for too long (hang?); SysRq w,l sent, the stacks are in console.log; last console line: x",
	} {
		if got[name] != want {
			t.Errorf("case %s: %q, want %q", name, got[name], want)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d cases, want 5: %v", len(got), got)
	}
	for _, c := range ts.Cases {
		if c.Name == "basic-64m" && (c.SystemOut == nil || !strings.Contains(c.SystemOut.Text, "sysrq: on silence at 6m0s, keys w,l, waited 3s for 120 console line(s)") ||
			!strings.Contains(c.SystemOut.Text, "flavour: debug")) {
			t.Errorf("basic-64m system-out lacks the SysRq and flavour lines: %v", c.SystemOut)
		}
	}

	var j bytes.Buffer
	run := RunInfo{Started: time.Now(), Flavour: flavour.Debug, Kernels: []bootable.Kernel{{Name: "patched", Flavour: flavour.Debug}}, Suite: "debug"}
	if err := WriteJSON(&j, run, outs); err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(j.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Flavour != "debug" || res.Kernels[0].Flavour != "debug" || res.Scenarios[0].Flavour != "debug" {
		t.Errorf("flavour not named: run %q kernel %q scenario %q", res.Flavour, res.Kernels[0].Flavour, res.Scenarios[0].Flavour)
	}
	if k := res.Scenarios[0].KUnit; k == nil || len(ktap.Flatten(k.Results, "/")) != 3 {
		t.Errorf("kunit report in JSON: %+v", k)
	}
	if s := res.Scenarios[1].SysRq; s == nil || !s.Sent() || s.Lines != 120 {
		t.Errorf("sysrq in JSON: %+v", s)
	}

	var k bytes.Buffer
	if err := WriteKTAP(&k, "debug", outs); err != nil {
		t.Fatal(err)
	}
	rep, err := ktap.Parse(&k)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range ktap.Flatten(rep.Results, "/") {
		names = append(names, r.Name+"="+string(r.Status))
	}
	if want := "kunit/kunit/memfd_luo_records/reject_overlap=fail"; !strings.Contains(strings.Join(names, " "), want) {
		t.Errorf("results.ktap lacks %s: %v", want, names)
	}
}

// A run on the normal flavour keeps its old line and suite names.
func TestNormalFlavourLine(t *testing.T) {
	o := &runner.Outcome{Scenario: "basic-64m", Verdict: runner.Pass, VM: &vm.Result{Accel: vm.AccelTCG}, Elapsed: time.Second}
	var b bytes.Buffer
	Line(&b, o)
	if !strings.Contains(b.String(), "[tcg]\n") {
		t.Errorf("line %q, want [tcg]", b.String())
	}
}
