package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// The real runs in testdata are copies of a passing smoke run's
// artefacts (events.jsonl, plan.json, console.log).

var bannerRE = regexp.MustCompile(`^\[host\s+(\d+\.\d+)\] .*Linux version `)

// readBoots finds the "Linux version" banners in a console log, as
// vm.Run does while it runs.
func readBoots(t *testing.T, path string) []time.Duration {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var boots []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := bannerRE.FindStringSubmatch(sc.Text()); m != nil {
			d, err := time.ParseDuration(m[1] + "s")
			if err != nil {
				t.Fatal(err)
			}
			boots = append(boots, d)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return boots
}

func stockKernel() bootable.Kernel {
	return bootable.Kernel{Name: "stock", BzImage: "/cache/stock/bzImage", Release: "7.3.4"}
}

// judge fills in the verdict of o from its plan and VM result, the way
// runner.Run does.
func judge(o *runner.Outcome) *runner.Outcome {
	res := o.VM
	res.Done = nil
	for i := range res.Events {
		if res.Events[i].Kind == plan.EventDone {
			res.Done = &res.Events[i]
		}
	}
	if n := len(res.Events); n > 0 {
		res.Elapsed = res.Events[n-1].Host + 50*time.Millisecond
	}
	o.Elapsed = res.Elapsed + 3*time.Second
	j := runner.Judge(o.Plan, res)
	o.Verdict, o.Blame, o.Reason = j.Verdict, j.Blame, j.Reason
	return o
}

// loadRun rebuilds the Outcome of a real run from its artefacts.
func loadRun(t *testing.T, name string) *runner.Outcome {
	t.Helper()
	dir := filepath.Join("testdata", name)
	evs, err := vm.ReadEvents(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	res := &vm.Result{
		Accel: vm.AccelKVM, Events: evs,
		Boots:      readBoots(t, filepath.Join(dir, "console.log")),
		ConsoleLog: filepath.Join(dir, "console.log"), EventsLog: filepath.Join(dir, "events.jsonl"),
		LastLines: []string{"[    3.0] reboot: Power down"},
	}
	return judge(&runner.Outcome{
		Scenario: name, Dir: dir, Rerun: "go run ./harness/cmd/luotest run -run " + name,
		Plan: p, VM: res, Kernels: []bootable.Kernel{stockKernel(), stockKernel()},
	})
}

// failedVerify is basic-64m with the verification finding different
// content.
func failedVerify(t *testing.T) *runner.Outcome {
	o := loadRun(t, "basic-64m")
	o.Scenario = "basic-64m-broken"
	for i := range o.VM.Events {
		ev := &o.VM.Events[i]
		switch {
		case ev.Kind == plan.EventStep && ev.Op == plan.OpVerify:
			ev.Pass, ev.Outcome = false, "mismatch"
			ev.Detail = "m0: [1 page(s) differ; page 0x200000: 1 bytes differ, first at 0x200000 (want 0x2d got 0xd2)]"
		case ev.Kind == plan.EventDone:
			ev.Pass, ev.Detail = false, "1 step missed its expectation"
		}
	}
	return judge(o)
}

// hungAfterKexec is basic-64m where the new kernel came up, the agent
// reported its stage and then nothing more: the VM timed out.
func hungAfterKexec(t *testing.T) *runner.Outcome {
	o := loadRun(t, "basic-64m")
	o.Scenario = "basic-64m-hang"
	var evs []vm.TimedEvent
	for _, ev := range o.VM.Events {
		evs = append(evs, ev)
		if ev.Kind == plan.EventStage && ev.Stage == 1 {
			break
		}
	}
	o.VM.Events, o.VM.TimedOut = evs, true
	o.VM.LastLines = []string{"\x1b[?7l[   80.1] rcu: INFO: rcu_preempt detected stalls"}
	return judge(o)
}

const selftestOutput = `TAP version 13
1..4
# Starting 4 tests from 1 test cases.
#  RUN           liveupdate.open_device ...
#            OK  liveupdate.open_device
ok 1 liveupdate.open_device
#  RUN           liveupdate.preserve_memfd ...
# liveupdate_test.c:142:preserve_memfd:Expected 0 (0) == ret (-22)
#          FAIL  liveupdate.preserve_memfd
not ok 2 liveupdate.preserve_memfd
ok 3 liveupdate.hugetlb # SKIP no hugepages
#  RUN           liveupdate.kexec_twice ...
` + "# odd bytes: ]]> \x00 \xff\n"

// selftest is a scenario running a kernel selftest that failed one test
// and crashed during another.
func selftest() *runner.Outcome {
	p := &plan.Plan{Scenario: "lu-selftest", Stages: []plan.Stage{{Steps: []plan.Step{
		{Op: plan.OpExec, Path: "/usr/lib/kselftests/liveupdate/liveupdate_test", Expect: "ok"},
	}}}}
	evs := []vm.TimedEvent{
		{Event: plan.Event{Kind: plan.EventStage, Kernel: "7.3.4 #1"}, Host: 2 * time.Second},
		{Event: plan.Event{Kind: plan.EventStep, Op: plan.OpExec, Expect: "ok", Outcome: "exit:139",
			Detail: "killed by SIGSEGV", DurationNS: int64(300 * time.Millisecond), Output: selftestOutput}, Host: 2500 * time.Millisecond},
		{Event: plan.Event{Kind: plan.EventDone, Detail: "1 step missed its expectation"}, Host: 2600 * time.Millisecond},
	}
	return judge(&runner.Outcome{
		Scenario: "lu-selftest", Dir: "/runs/x/lu-selftest", Rerun: "luotest run -run lu-selftest",
		Plan: p, Kernels: []bootable.Kernel{stockKernel()},
		VM: &vm.Result{Accel: vm.AccelTCG, Events: evs, Boots: []time.Duration{500 * time.Millisecond},
			ConsoleLog: "/runs/x/lu-selftest/console.log"},
	})
}

func skipped() *runner.Outcome {
	return &runner.Outcome{Scenario: "hugetlb-2m", Verdict: runner.Skip, Reason: "needs hugetlb pages", Elapsed: time.Millisecond}
}

func harnessError() *runner.Outcome {
	return &runner.Outcome{Scenario: "no-qemu", Verdict: runner.Error, Blame: "harness",
		Reason: "finding QEMU: qemu-system-x86_64 not found in PATH", Elapsed: 2 * time.Millisecond,
		Dir: "/runs/x/no-qemu", Rerun: "luotest run -run no-qemu"}
}

func allOutcomes(t *testing.T) []*runner.Outcome {
	return []*runner.Outcome{
		loadRun(t, "basic-64m"), loadRun(t, "selfcheck-corrupt"), failedVerify(t),
		hungAfterKexec(t), skipped(), harnessError(), selftest(),
	}
}

func TestFixtureVerdicts(t *testing.T) {
	want := []runner.Verdict{runner.Pass, runner.Pass, runner.Fail, runner.Timeout, runner.Skip, runner.Error, runner.Fail}
	for i, o := range allOutcomes(t) {
		if o.Verdict != want[i] {
			t.Errorf("%s: verdict %s (%s), want %s", o.Scenario, o.Verdict, o.Reason, want[i])
		}
	}
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestPhasesRealRuns(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Timings
	}{
		{"basic-64m", Timings{Boot: 2182438394, Hops: []HopTimings{{
			Hop:           0,
			Preserve:      9602700,
			Reboot:        3322*time.Millisecond - 2719247385,
			KernelToAgent: 4808562923 - 3322*time.Millisecond,
			Retrieve:      1283377 + 36540472,
			Verify:        1627996186,
			Blackout:      4858812967 - 2719247385,
		}}}},
		{"selfcheck-corrupt", Timings{Boot: 1849828823, Hops: []HopTimings{{
			Hop:           0,
			Preserve:      7726924,
			Reboot:        2605*time.Millisecond - 2003432144,
			KernelToAgent: 3963831781 - 2605*time.Millisecond,
			Retrieve:      5237659 + 5111671,
			Verify:        34025124,
			Blackout:      4070623370 - 2003432144,
		}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := loadRun(t, tc.name)
			got := Phases(o)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Phases =\n%+v\nwant\n%+v", got, tc.want)
			}
			// Plausibility, whatever the exact numbers: every phase
			// measured, each within the run, and the blackout
			// covering the reboot and the new kernel's boot.
			h := got.Hops[0]
			for name, d := range map[string]time.Duration{"boot": got.Boot, "preserve": h.Preserve,
				"reboot": h.Reboot, "kernel to agent": h.KernelToAgent, "retrieve": h.Retrieve,
				"verify": h.Verify, "blackout": h.Blackout} {
				if d <= 0 || d > o.VM.Elapsed {
					t.Errorf("%s = %v, want within (0, %v]", name, d, o.VM.Elapsed)
				}
			}
			if h.Blackout < h.Reboot+h.KernelToAgent+h.Retrieve-ms(50) {
				t.Errorf("blackout %v shorter than reboot %v + kernel to agent %v + retrieve %v",
					h.Blackout, h.Reboot, h.KernelToAgent, h.Retrieve)
			}
		})
	}
}

func TestPhasesPartial(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    *runner.Outcome
		want Timings
	}{
		{"no VM", harnessError(), Timings{}},
		{"no kexec", selftest(), Timings{Boot: 2 * time.Second}},
		{"hung after kexec", hungAfterKexec(t), Timings{Boot: 2182438394, Hops: []HopTimings{{
			Hop: 0, Preserve: 9602700, Reboot: 3322*time.Millisecond - 2719247385,
			KernelToAgent: 4808562923 - 3322*time.Millisecond,
		}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Phases(tc.o); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Phases = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// multiHop is a synthetic two-hop run: stage 0 preserves, stages 1 and
// 2 retrieve and verify; stage 1 preserves again.
func multiHop() *runner.Outcome {
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	mem := func(kb int64) map[string]int64 { return map[string]int64{"MemTotal": kb, "MemFree": kb / 2} }
	step := func(stage, i int, op plan.Op, dur time.Duration, host float64, v map[string]int64) vm.TimedEvent {
		return vm.TimedEvent{Event: plan.Event{Kind: plan.EventStep, Stage: stage, Step: i, Op: op,
			Outcome: "ok", Expect: "ok", Pass: true, DurationNS: int64(dur), Values: v}, Host: at(host)}
	}
	stage := func(n int, host float64) vm.TimedEvent {
		return vm.TimedEvent{Event: plan.Event{Kind: plan.EventStage, Stage: n, Kernel: "7.3.4"}, Host: at(host)}
	}
	evs := []vm.TimedEvent{
		stage(0, 1.0),
		step(0, 0, plan.OpMeminfo, ms(1), 1.01, mem(1000000)),
		step(0, 1, plan.OpPreserve, ms(5), 1.1, nil),
		step(0, 2, plan.OpMeminfo, ms(1), 1.2, mem(1000000)),
		step(0, 3, plan.OpKexec, 0, 1.3, nil),
		stage(1, 2.5),
		step(1, 0, plan.OpMeminfo, ms(1), 2.51, mem(900000)),
		step(1, 1, plan.OpRetrieveSession, ms(1), 2.55, nil),
		step(1, 2, plan.OpRetrieve, ms(2), 2.6, nil),
		step(1, 3, plan.OpVerify, ms(10), 2.7, nil),
		step(1, 4, plan.OpPreserve, ms(6), 2.8, nil),
		step(1, 5, plan.OpMeminfo, ms(1), 2.9, mem(1000000)),
		step(1, 6, plan.OpKexec, 0, 3.0, nil),
		stage(2, 4.5),
		step(2, 0, plan.OpMeminfo, ms(1), 4.51, mem(899000)),
		step(2, 1, plan.OpRetrieve, ms(3), 4.7, nil),
		step(2, 2, plan.OpVerify, ms(20), 4.9, nil),
		{Event: plan.Event{Kind: plan.EventDone, Stage: 2, Pass: true}, Host: at(5)},
	}
	p := &plan.Plan{Scenario: "two-hops", Stages: []plan.Stage{
		{Steps: []plan.Step{{Op: plan.OpMeminfo, Label: "start"}, {Op: plan.OpPreserve}, {Op: plan.OpMeminfo, Label: "preserved"}, {Op: plan.OpKexec}}},
		{Steps: []plan.Step{{Op: plan.OpMeminfo, Label: "before-open"}, {Op: plan.OpRetrieveSession}, {Op: plan.OpRetrieve},
			{Op: plan.OpVerify}, {Op: plan.OpPreserve}, {Op: plan.OpMeminfo, Label: "preserved"}, {Op: plan.OpKexec}}},
		{Steps: []plan.Step{{Op: plan.OpMeminfo, Label: "before-open"}, {Op: plan.OpRetrieve}, {Op: plan.OpVerify}}},
	}}
	return judge(&runner.Outcome{Scenario: "two-hops", Plan: p, Kernels: []bootable.Kernel{stockKernel(), stockKernel(), stockKernel()},
		VM: &vm.Result{Events: evs, Boots: []time.Duration{at(0.5), at(1.8), at(3.8)}}})
}

func TestPhasesMultiHop(t *testing.T) {
	o := multiHop()
	if o.Verdict != runner.Pass {
		t.Fatalf("fixture verdict %s: %s", o.Verdict, o.Reason)
	}
	want := Timings{Boot: time.Second, Hops: []HopTimings{
		{Hop: 0, Preserve: ms(5), Reboot: ms(500), KernelToAgent: ms(700), Retrieve: ms(3), Verify: ms(10), Blackout: ms(1300)},
		{Hop: 1, Preserve: ms(6), Reboot: ms(800), KernelToAgent: ms(700), Retrieve: ms(3), Verify: ms(20), Blackout: ms(1700)},
	}}
	got := Phases(o)
	// Floating-point seconds in the fixture: compare to the
	// microsecond.
	round := func(ts Timings) Timings {
		r := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
		ts.Boot = r(ts.Boot)
		for i := range ts.Hops {
			h := &ts.Hops[i]
			h.Preserve, h.Reboot, h.KernelToAgent = r(h.Preserve), r(h.Reboot), r(h.KernelToAgent)
			h.Retrieve, h.Verify, h.Blackout = r(h.Retrieve), r(h.Verify), r(h.Blackout)
		}
		return ts
	}
	if got := round(got); !reflect.DeepEqual(got, want) {
		t.Errorf("Phases =\n%+v\nwant\n%+v", got, want)
	}
}

func TestPreservedKB(t *testing.T) {
	noPlan := loadRun(t, "basic-64m")
	noPlan.Plan = nil
	noBeforeOpen := multiHop()
	noBeforeOpen.VM.Events = slices.DeleteFunc(slices.Clone(noBeforeOpen.VM.Events), func(ev vm.TimedEvent) bool {
		return ev.Stage == 2 && ev.Op == plan.OpMeminfo
	})
	for _, tc := range []struct {
		name string
		o    *runner.Outcome
		want []int64
	}{
		// 64 MiB memfd: 65536 kB of data plus the preservation
		// metadata.
		{"basic-64m", loadRun(t, "basic-64m"), []int64{1013972 - 948148}},
		{"selfcheck-corrupt 4 MiB", loadRun(t, "selfcheck-corrupt"), []int64{1013972 - 1009828}},
		{"without a plan: last and first meminfo", noPlan, []int64{1013972 - 948148}},
		{"two hops", multiHop(), []int64{100000, 101000}},
		{"missing before-open", noBeforeOpen, []int64{100000, -1}},
		{"hung before before-open", hungAfterKexec(t), []int64{-1}},
		{"no kexec", selftest(), nil},
		{"no VM", harnessError(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PreservedKB(tc.o); !slices.Equal(got, tc.want) {
				t.Errorf("PreservedKB = %v, want %v", got, tc.want)
			}
		})
	}
}

func decodeJUnit(t *testing.T, b []byte) junitSuites {
	t.Helper()
	var doc junitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JUnit is not valid XML: %v\n%s", err, b)
	}
	// A strict token pass as well: xml.Unmarshal skips what it does
	// not map.
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("XML token error: %v", err)
			}
			break
		}
	}
	return doc
}

func TestWriteJUnit(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, "smoke", allOutcomes(t)); err != nil {
		t.Fatal(err)
	}
	doc := decodeJUnit(t, buf.Bytes())
	if len(doc.Suites) != 1 {
		t.Fatalf("%d testsuites, want 1", len(doc.Suites))
	}
	ts := doc.Suites[0]
	// 7 scenarios + 4 KTAP results of lu-selftest.
	if ts.Tests != 11 || ts.Failures != 4 || ts.Errors != 2 || ts.Skipped != 2 {
		t.Errorf("suite counts tests=%d failures=%d errors=%d skipped=%d, want 11 4 2 2",
			ts.Tests, ts.Failures, ts.Errors, ts.Skipped)
	}
	if doc.Tests != ts.Tests || doc.Failures != ts.Failures || ts.Name != "luotest.smoke" {
		t.Errorf("testsuites %+v disagrees with testsuite %s", doc, ts.Name)
	}
	cases := map[string]junitCase{}
	var names []string
	for _, c := range ts.Cases {
		if c.Classname != "luotest.smoke" {
			t.Errorf("%s: classname %q", c.Name, c.Classname)
		}
		cases[c.Name] = c
		names = append(names, c.Name)
	}
	wantNames := []string{"basic-64m", "selfcheck-corrupt", "basic-64m-broken", "basic-64m-hang", "hugetlb-2m", "no-qemu",
		"lu-selftest", "lu-selftest/liveupdate.open_device", "lu-selftest/liveupdate.preserve_memfd",
		"lu-selftest/liveupdate.hugetlb", "lu-selftest/test-4"}
	if !slices.Equal(names, wantNames) {
		t.Errorf("test cases %q, want %q", names, wantNames)
	}
	for _, tc := range []struct {
		name     string
		kind     string // "", "failure", "error", "skipped"
		typ      string
		message  string
		text     []string // substrings of the failure body
		out      []string // substrings of system-out
		notInOut []string
	}{
		{name: "basic-64m", out: []string{
			"verdict: PASS",
			"[PASS] stage 0 step 4 preserve session=s0 file=m0 token=0x1000: expect ok, got ok (9.6027ms)",
			"[PASS] stage 1 step 4 verify file=m0: expect ok, got ok (1.627996186s): m0: 67108864 bytes, 67108864 data bytes verified",
			"console: " + filepath.Join("testdata", "basic-64m", "console.log"),
			"rerun: go run ./harness/cmd/luotest run -run basic-64m",
			"hop 0: preserve 9.6027ms, reboot 602.752615ms",
			"MemTotal drop 65824 kB",
			"kernel of stage 1: stock 7.3.4 (agent saw 7.3.4 #1 SMP PREEMPT Sun Nov 22 04:31:23 UTC 2026)",
		}},
		{name: "selfcheck-corrupt", out: []string{"[PASS] stage 1 step 5 verify file=m0: expect mismatch, got mismatch"}},
		{name: "basic-64m-broken", kind: "failure", typ: "fail",
			message: "stage 1 step 4 verify: m0: [1 page(s) differ; page 0x200000: 1 bytes differ, first at 0x200000 (want 0x2d got 0xd2)]",
			text: []string{"failed step: [FAIL] stage 1 step 4 verify file=m0: expect ok, got mismatch",
				"rerun: go run ./harness/cmd/luotest run -run basic-64m", "console: testdata/basic-64m/console.log"},
			out: []string{"[FAIL] stage 1 step 4 verify file=m0: expect ok, got mismatch (1.627996186s): m0: [1 page(s) differ"}},
		{name: "basic-64m-hang", kind: "failure", typ: "timeout", message: "no verdict within the timeout",
			text: []string{"blame: kernel", "rcu_preempt detected stalls"},
			out:  []string{"[NOT REPORTED] stage 1 step 1 retrieve_session session=s0: expect ok, never reported"}},
		{name: "hugetlb-2m", kind: "skipped", message: "needs hugetlb pages"},
		{name: "no-qemu", kind: "error", typ: "error", message: "finding QEMU",
			text: []string{"blame: harness", "rerun: luotest run -run no-qemu"}},
		{name: "lu-selftest", kind: "failure", typ: "fail", message: "stage 0 step 0 exec: killed by SIGSEGV",
			out: []string{"path=/usr/lib/kselftests/liveupdate/liveupdate_test", "KTAP problem: plan said 4 tests, 3 reported",
				"      not ok 2 liveupdate.preserve_memfd"}},
		{name: "lu-selftest/liveupdate.open_device", out: []string{"OK  liveupdate.open_device"}},
		{name: "lu-selftest/liveupdate.preserve_memfd", kind: "failure", typ: "ktap", message: "not ok",
			text: []string{"liveupdate_test.c:142:preserve_memfd:Expected 0 (0) == ret (-22)"}},
		{name: "lu-selftest/liveupdate.hugetlb", kind: "skipped", message: "no hugepages"},
		{name: "lu-selftest/test-4", kind: "error", typ: "ktap-error", message: "no result: plan said 4 tests, 3 reported",
			text: []string{"RUN           liveupdate.kexec_twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := cases[tc.name]
			if !ok {
				t.Fatalf("no test case %q", tc.name)
			}
			var p *junitProblem
			kind := ""
			switch {
			case c.Failure != nil:
				kind, p = "failure", c.Failure
			case c.Error != nil:
				kind, p = "error", c.Error
			case c.Skipped != nil:
				kind = "skipped"
				if !strings.Contains(c.Skipped.Message, tc.message) {
					t.Errorf("skipped message %q, want %q", c.Skipped.Message, tc.message)
				}
			}
			if kind != tc.kind {
				t.Fatalf("kind %q, want %q", kind, tc.kind)
			}
			if p != nil {
				if p.Type != tc.typ || !strings.Contains(p.Message, tc.message) {
					t.Errorf("%s type %q message %q, want %q containing %q", kind, p.Type, p.Message, tc.typ, tc.message)
				}
				for _, s := range tc.text {
					if !strings.Contains(p.Text, s) {
						t.Errorf("%s body lacks %q:\n%s", kind, s, p.Text)
					}
				}
			}
			for _, s := range tc.out {
				if c.SystemOut == nil || !strings.Contains(c.SystemOut.Text, s) {
					t.Errorf("system-out lacks %q:\n%v", s, c.SystemOut)
				}
			}
		})
	}
	// Text stays readable: real newlines in CDATA, not &#xA;.
	if !strings.Contains(buf.String(), "\n  [PASS] stage 0 step 0 meminfo label=start") {
		t.Error("system-out is not readable text")
	}
	if got := cases["lu-selftest/test-4"].Error.Text; !strings.Contains(got, "odd bytes: ]]> \uFFFD \uFFFD") {
		t.Errorf("odd bytes not carried safely: %q", got)
	}
	if got := cases["basic-64m"].Time; got != "9.595" {
		t.Errorf("basic-64m time %q, want 9.595", got)
	}
}

func TestWriteJUnitEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, "", nil); err != nil {
		t.Fatal(err)
	}
	doc := decodeJUnit(t, buf.Bytes())
	if len(doc.Suites) != 1 || doc.Suites[0].Tests != 0 || doc.Suites[0].Name != "luotest" {
		t.Errorf("empty run: %+v", doc)
	}
}

func TestWriteJSON(t *testing.T) {
	outs := allOutcomes(t)
	run := RunInfo{Started: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC), Host: "ci-7", Accel: "kvm",
		Kernels: []bootable.Kernel{stockKernel()}, Command: "luotest run -tag default", Suite: "smoke"}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, run, outs); err != nil {
		t.Fatal(err)
	}
	var doc Results
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != JSONSchema || !doc.Started.Equal(run.Started) || doc.Host != "ci-7" || len(doc.Kernels) != 1 {
		t.Errorf("run header %+v", doc)
	}
	if want := (Counts{Pass: 2, Fail: 2, Timeout: 1, Error: 1, Skip: 1}); doc.Counts != want || doc.ExitCode != 1 {
		t.Errorf("counts %+v exit %d, want %+v 1", doc.Counts, doc.ExitCode, want)
	}
	if len(doc.Scenarios) != len(outs) {
		t.Fatalf("%d scenarios, want %d", len(doc.Scenarios), len(outs))
	}
	byName := map[string]ScenarioResult{}
	for _, s := range doc.Scenarios {
		byName[s.Scenario] = s
	}

	basic := byName["basic-64m"]
	if basic.Verdict != runner.Pass || basic.Rerun == "" || basic.Console == "" || basic.Elapsed <= 0 {
		t.Errorf("basic-64m header %+v", basic)
	}
	if len(basic.Kernels) != 2 || basic.Kernels[1].Name != "stock" || basic.Kernels[1].Release != "7.3.4" ||
		!strings.HasPrefix(basic.Kernels[1].Uname, "7.3.4 #1") {
		t.Errorf("kernels %+v", basic.Kernels)
	}
	if n := len(basic.Steps); n != 13 {
		t.Errorf("%d steps, want 13", n)
	}
	for _, s := range basic.Steps {
		if !s.Reported || !s.Pass || s.Expect == "" || s.Outcome == "" {
			t.Errorf("step %+v", s)
		}
	}
	if v := basic.Steps[11]; v.Op != "verify" || v.Duration != 1627996186 || v.Values["data_bytes"] != 64<<20 {
		t.Errorf("verify step %+v", v)
	}
	var labels []string
	for _, m := range basic.Meminfo {
		labels = append(labels, m.Label)
	}
	if want := []string{"start", "populated", "preserved", "before-open", "retrieved"}; !slices.Equal(labels, want) {
		t.Errorf("meminfo labels %q, want %q", labels, want)
	}
	if basic.Meminfo[3].Values["MemTotal"] != 948148 {
		t.Errorf("before-open MemTotal %d", basic.Meminfo[3].Values["MemTotal"])
	}
	if !slices.Equal(basic.PreservedKB, []int64{65824}) {
		t.Errorf("preserved_kb %v", basic.PreservedKB)
	}
	if ph := basic.Phases; ph.Boot <= 0 || len(ph.Hops) != 1 || !reflect.DeepEqual(ph, Phases(outs[0])) {
		t.Errorf("phases %+v", ph)
	}
	for _, h := range basic.Phases.Hops {
		for name, d := range map[string]time.Duration{"preserve": h.Preserve, "reboot": h.Reboot,
			"kernel_to_agent": h.KernelToAgent, "retrieve": h.Retrieve, "verify": h.Verify, "blackout": h.Blackout} {
			if d <= 0 || d > 10*time.Second {
				t.Errorf("phase %s = %v, not plausible", name, d)
			}
		}
	}
	if len(basic.LastConsoleLines) != 0 {
		t.Errorf("a passing run keeps its last console lines")
	}

	broken := byName["basic-64m-broken"]
	if broken.Verdict != runner.Fail || !strings.Contains(broken.Reason, "stage 1 step 4 verify") {
		t.Errorf("broken %s %q", broken.Verdict, broken.Reason)
	}
	if v := broken.Steps[11]; v.Pass || v.Outcome != "mismatch" || !strings.Contains(v.Detail, "1 page(s) differ") {
		t.Errorf("failing step %+v", v)
	}

	hang := byName["basic-64m-hang"]
	if hang.Verdict != runner.Timeout || len(hang.LastConsoleLines) != 1 {
		t.Errorf("hang %s %q", hang.Verdict, hang.LastConsoleLines)
	}
	notReported := 0
	for _, s := range hang.Steps {
		if !s.Reported {
			notReported++
			if s.Pass {
				t.Errorf("unreported step passes: %+v", s)
			}
		}
	}
	if notReported != 6 {
		t.Errorf("%d unreported steps, want 6", notReported)
	}

	st := byName["lu-selftest"]
	if k := st.Steps[0].KTAP; k == nil || len(k.Results) != 4 || k.Results[3].Status != ktap.Error {
		t.Errorf("exec step KTAP %+v", k)
	}

	// The field names are the interface: check a few literally.
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	sc := raw["scenarios"].([]any)[0].(map[string]any)
	for _, k := range []string{"scenario", "verdict", "elapsed_ns", "dir", "rerun", "kernels", "steps", "meminfo", "phases", "preserved_kb"} {
		if _, ok := sc[k]; !ok {
			t.Errorf("scenario lacks %q", k)
		}
	}
	stp := sc["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"stage", "step", "op", "expect", "outcome", "pass", "duration_ns", "values"} {
		if _, ok := stp[k]; !ok {
			t.Errorf("step lacks %q", k)
		}
	}
	hop := sc["phases"].(map[string]any)["hops"].([]any)[0].(map[string]any)
	for _, k := range []string{"preserve_ns", "reboot_ns", "kernel_to_agent_ns", "retrieve_ns", "verify_ns", "blackout_ns"} {
		if _, ok := hop[k]; !ok {
			t.Errorf("hop lacks %q", k)
		}
	}
}

func TestWriteKTAP(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteKTAP(&buf, "smoke", allOutcomes(t)); err != nil {
		t.Fatal(err)
	}
	rep, err := ktap.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Name != "luotest.smoke" || rep.Plan != 7 || len(rep.Problems) != 0 {
		t.Errorf("name %q plan %d problems %q", rep.Name, rep.Plan, rep.Problems)
	}
	want := []struct {
		name   string
		status ktap.Status
		dir    string
		steps  int
	}{
		{"basic-64m", ktap.Pass, "", 13},
		{"selfcheck-corrupt", ktap.Pass, "", 14},
		{"basic-64m-broken", ktap.Fail, "", 13},
		{"basic-64m-hang", ktap.Error, ktap.DirTimeout, 13},
		{"hugetlb-2m", ktap.Skip, ktap.DirSkip, 0},
		{"no-qemu", ktap.Error, ktap.DirError, 0},
		{"lu-selftest", ktap.Fail, "", 1},
	}
	for i, w := range want {
		r := rep.Results[i]
		if r.Name != w.name || r.Status != w.status || r.Directive != w.dir || len(r.Subtests) != w.steps {
			t.Errorf("result %d: %s %s %q %d steps, want %+v", i, r.Name, r.Status, r.Directive, len(r.Subtests), w)
		}
	}
	verify := rep.Results[2].Subtests[11]
	if verify.Name != "stage1.step4.verify" || verify.Status != ktap.Fail ||
		!strings.Contains(strings.Join(verify.Diagnostics, "\n"), "got mismatch") {
		t.Errorf("failing step %+v", verify)
	}
	if s := rep.Results[3].Subtests[8]; s.Status != ktap.Error || s.Reason != "never reported" {
		t.Errorf("unreported step %+v", s)
	}
	exec := rep.Results[6].Subtests[0]
	var got []string
	for _, r := range exec.Subtests {
		got = append(got, r.Name+"="+string(r.Status))
	}
	if want := []string{"liveupdate.open_device=pass", "liveupdate.preserve_memfd=fail", "liveupdate.hugetlb=skip", "=error"}; !slices.Equal(got, want) {
		t.Errorf("exec subtests %q, want %q", got, want)
	}
}

func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	outs := allOutcomes(t)
	if err := WriteAll(dir, RunInfo{Started: time.Now(), Suite: "smoke"}, outs); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{JSONFile, KTAPFile, JUnitFile}; !slices.Equal(names, want) {
		t.Errorf("files %q, want %q (no temporary files left)", names, want)
	}
	x, err := os.ReadFile(filepath.Join(dir, JUnitFile))
	if err != nil {
		t.Fatal(err)
	}
	if doc := decodeJUnit(t, x); doc.Suites[0].Name != "luotest.smoke" {
		t.Errorf("suite %q", doc.Suites[0].Name)
	}
	j, err := os.ReadFile(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc Results
	if err := json.Unmarshal(j, &doc); err != nil || len(doc.Scenarios) != len(outs) || doc.Suite != "smoke" {
		t.Errorf("results.json: %v, %d scenarios", err, len(doc.Scenarios))
	}
	k, err := os.ReadFile(filepath.Join(dir, KTAPFile))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := ktap.Parse(bytes.NewReader(k)); err != nil || len(rep.Results) != len(outs) {
		t.Errorf("results.ktap: %v", err)
	}

	// A file where the directory should be.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteAll(filepath.Join(blocker, "run"), RunInfo{}, outs); err == nil {
		t.Error("WriteAll under a file succeeded")
	}
}

type failWriter struct{ after int }

var errFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errFull
	}
	w.after--
	return len(p), nil
}

func TestWritersWrapErrors(t *testing.T) {
	outs := []*runner.Outcome{skipped()}
	for _, tc := range []struct {
		name  string
		write func(w *failWriter) error
	}{
		{"junit header", func(w *failWriter) error { return WriteJUnit(w, "s", outs) }},
		{"junit body", func(w *failWriter) error { w.after = 1; return WriteJUnit(w, "s", outs) }},
		{"json", func(w *failWriter) error { return WriteJSON(w, RunInfo{}, outs) }},
		{"ktap", func(w *failWriter) error { return WriteKTAP(w, "s", outs) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.write(&failWriter{}); !errors.Is(err, errFull) {
				t.Errorf("error %v, want it to wrap %v", err, errFull)
			}
		})
	}
}

// The workload's blackout runs from its racer's last beat in the stage
// that kexecs to its first write after the next stage's retrieve; beats
// of other stages and writes before the retrieve do not count.
func TestWorkloadGap(t *testing.T) {
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	step := func(stage int, op plan.Op, host float64) vm.TimedEvent {
		return vm.TimedEvent{Event: plan.Event{Kind: plan.EventStep, Stage: stage, Op: op, Pass: true}, Host: at(host)}
	}
	beat := func(stage int, host float64) vm.TimedEvent {
		return vm.TimedEvent{Event: plan.Event{Kind: plan.EventBeat, Stage: stage, Detail: "m0/write0"}, Host: at(host)}
	}
	base := []vm.TimedEvent{
		step(0, plan.OpPreserve, 1.0), step(0, plan.OpRaceStart, 1.1),
		beat(0, 1.2), beat(0, 1.5), step(0, plan.OpKexec, 1.6), beat(0, 1.9),
	}
	tests := []struct {
		name string
		evs  []vm.TimedEvent
		want time.Duration
	}{
		{"writer resumes after retrieve", append(slices.Clone(base), step(1, plan.OpWrite, 4.0), step(1, plan.OpRetrieveSession, 5.0), step(1, plan.OpRetrieve, 5.5), beat(1, 5.6), step(1, plan.OpWrite, 5.8)), at(3.9)},
		{"no write after retrieve", append(slices.Clone(base), step(1, plan.OpRetrieve, 5.5)), 0},
		{"no beat", []vm.TimedEvent{step(0, plan.OpKexec, 1.6), step(1, plan.OpRetrieve, 5.5), step(1, plan.OpWrite, 5.8)}, 0},
	}
	for _, tc := range tests {
		got := Phases(&runner.Outcome{VM: &vm.Result{Events: tc.evs}})
		if len(got.Hops) != 1 {
			t.Fatalf("%s: %d hops", tc.name, len(got.Hops))
		}
		if g := got.Hops[0].WorkloadGap.Round(time.Millisecond); g != tc.want {
			t.Errorf("%s: WorkloadGap %s, want %s", tc.name, g, tc.want)
		}
	}
}
