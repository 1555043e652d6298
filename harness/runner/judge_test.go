package runner

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/console"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// initPanic is the kernel's panic when PID 1 exits, shaped after
// testdata/panic-no-init.log of package console plus the user registers
// that an exit from a system call prints.
var initPanic = []string{
	"[   12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200",
	"[   12.1] CPU: 1 UID: 0 PID: 1 Comm: luoagent Not tainted 7.3.4 #1 PREEMPTLAZY",
	"[   12.1] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014",
	"[   12.1] Call Trace:",
	"[   12.1]  <TASK>",
	"[   12.1]  vpanic+0x2f9/0x370",
	"[   12.1]  panic+0x4b/0x50",
	"[   12.1]  do_exit+0x9c2/0xa90",
	"[   12.1]  do_group_exit+0x2d/0x80",
	"[   12.1]  __x64_sys_exit_group+0x14/0x20",
	"[   12.1]  x64_sys_call+0x14c8/0x14d0",
	"[   12.1]  do_syscall_64+0x58/0x2c0",
	"[   12.1]  entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	"[   12.1] RIP: 0033:0x4036ce",
	"[   12.1] Code: Unable to access opcode bytes at 0x4036a4.",
	"[   12.1] RSP: 002b:000000c000123e28 EFLAGS: 00000246 ORIG_RAX: 00000000000000e7",
	"[   12.1] RAX: ffffffffffffffda RBX: 0000000000000002 RCX: 00000000004036ce",
	"[   12.1] RDX: 0000000000000000 RSI: 0000000000000000 RDI: 0000000000000002",
	"[   12.1] RBP: 000000c000123e38 R08: 0000000000000000 R09: 0000000000000000",
	"[   12.1] R10: 0000000000000000 R11: 0000000000000246 R12: 000000c000123e48",
	"[   12.1] R13: 0000000000000000 R14: 000000c0000061c0 R15: 0000000000000000",
	"[   12.1]  </TASK>",
	"[   12.1] Kernel Offset: 0x1e00000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)",
	"[   12.1] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200 ]---",
}

// goroutineStacks returns n goroutines' stacks as the Go runtime prints
// them.
func goroutineStacks(n int) []string {
	var out []string
	for i := range n {
		out = append(out, "", fmt.Sprintf("goroutine %d [select]:", i+1),
			"runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)", "\t/usr/local/go/src/runtime/proc.go:435 +0xce",
			"main.main()", "\t/work/initramfs/cmd/luoagent/main.go:96 +0x5a5")
	}
	return out
}

// consoleResult is a result whose findings and last lines come from the
// console lines as the VM's monitor keeps them.
func consoleResult(events []vm.TimedEvent, lines ...string) vm.Result {
	m := console.NewMonitor(20)
	for _, l := range lines {
		m.Line(l)
	}
	return vm.Result{Events: events, Findings: m.Findings(), LastLines: m.LastLines(), Panicked: true}
}

// finds classifies console lines the way the VM's monitor does.
func finds(lines ...string) []console.Finding {
	m := console.NewMonitor(1)
	for _, l := range lines {
		m.Line(l)
	}
	return m.Findings()
}

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
		// A report names the verdict by its title, ahead of the steps
		// it made fail, and ahead of the panic it caused.
		{"lockdep report ahead of a failed step", vm.Result{Events: []vm.TimedEvent{step(0, 0, true, ""), step(0, 1, true, ""), step(1, 0, false, "page 0x1000 differs")}, Done: done(false),
			Findings: finds("[    9.1] WARNING: possible circular locking dependency detected")},
			Fail, "kernel lockdep: WARNING: possible circular locking dependency detected (console line 1)"},
		{"KASAN then panic_on_warn", vm.Result{Events: all[:2],
			Findings: finds("[    9.1] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2", "[    9.2] Kernel panic - not syncing: KASAN: panic_on_warn set ...")},
			Fail, "kernel kasan: BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2 (console line 1; then panic)"},
		{"list corruption before its WARNING", vm.Result{Events: all[:2],
			Findings: finds("[    9.1] list_add corruption. prev->next should be next (ffff1), but was ffff2. (prev=ffff3).",
				"[    9.1] WARNING: lib/list_debug.c:32 at __list_add_valid_or_report+0x1/0x2, CPU#0: luoagent/1",
				"[    9.2] Kernel panic - not syncing: kernel: panic_on_warn set ...")},
			Fail, "kernel list-corruption: list_add corruption. prev->next should be next"},
		{"sleeping in atomic context", vm.Result{Events: all, Done: done(true),
			Findings: finds("[    9.1] BUG: sleeping function called from invalid context at mm/memfd_luo.c:321")},
			Fail, "kernel bug: BUG: sleeping function called from invalid context at mm/memfd_luo.c:321"},
		{"DEBUG_VM page dump", vm.Result{Events: all[:2],
			Findings: finds("[    9.1] page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio))", "[    9.1] kernel BUG at mm/filemap.c:1498!")},
			Fail, "kernel debug-vm: page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio)) (console line 1; then bug)"},
		{"hung task during a hang", vm.Result{Events: all[:1], Silent: true, LastLines: []string{"x"},
			Findings: finds("[   61.1] INFO: task luoagent:1 blocked for more than 61 seconds.")},
			Fail, "kernel hung-task: INFO: task luoagent:1 blocked for more than 61 seconds."},
		// SysRq output after a hang is no kernel report: the run stays
		// a timeout, naming the line where the guest stopped.
		{"silence with SysRq", vm.Result{Events: all[:1], Silent: true,
			LastLines: []string{"[  370.1] sysrq: Show backtrace of all active CPUs", "[  370.2] NMI backtrace for cpu 1"},
			SysRq:     &vm.SysRq{Why: "silence", Keys: []string{"w", "l"}, LastLineBefore: "LUOTEST: stage 0 step 1 preserve"}},
			Timeout, "no console output for too long (hang?); SysRq w,l sent, the stacks are in console.log; last console line: LUOTEST: stage 0 step 1 preserve"},
		// The guest finished while the host waited for the SysRq
		// output: the limit was crossed all the same.
		{"finished during the SysRq wait after silence", vm.Result{Events: all, Done: done(true), Silent: true,
			SysRq: &vm.SysRq{Why: "silence", Keys: []string{"w", "l"}, LastLineBefore: "LUOTEST: stage 0 step 1 kexec"}},
			Timeout, "fell silent for longer than the silence limit and finished only while the host was collecting stacks; SysRq w,l sent"},
		{"finished during the SysRq wait after the timeout", vm.Result{Events: all, Done: done(true), TimedOut: true,
			SysRq: &vm.SysRq{Why: "timeout", Keys: []string{"w", "l"}}},
			Timeout, "ran past the timeout"},
		// A Go panic in the agent kills PID 1; the kernel's panic
		// that follows is not the kernel's fault.
		{"agent panic kills init", vm.Result{Events: all[:1],
			LastLines: []string{"LUOTEST: stage 0 step 0 meminfo", "panic: runtime error: index out of range [3] with length 3", "", "goroutine 7 [running]:", "[   12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200"},
			Findings:  finds("[   12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200")},
			Fail, "the guest agent (PID 1) panicked: panic: runtime error: index out of range [3] with length 3"},
		{"init killed without a Go report stays the kernel's", vm.Result{Events: all[:1],
			LastLines: []string{"[   12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"},
			Findings:  finds("[   12.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009")},
			Fail, "kernel panic"},
		{"timeout, SysRq failed", vm.Result{TimedOut: true, LastLines: []string{"stuck"},
			SysRq: &vm.SysRq{Why: "timeout", Err: "QMP monitor not connected"}},
			Timeout, "no verdict within the timeout; SysRq not sent: QMP monitor not connected; last console line: stuck"},
		// As the VM sees it: the Go runtime's report, the goroutine's
		// stack, then the kernel's panic with its own stack and the
		// registers, far more than the last lines hold.
		{"goroutine panic, then the kernel's whole panic", consoleResult(all[:1], append(append([]string{
			"LUOTEST: stage 0 step 1 kexec : start (deadline 2m30s)",
			"panic: send on closed channel",
			"",
			"goroutine 34 [running]:",
			"github.com/memfd-luo/memfd-luo/initramfs/agent.(*racer).run(0xc000124000, 0xc00012a000, 0x15, 0xc00011e0f8)",
			"\t/work/initramfs/agent/race.go:131 +0x3c5",
			"created by github.com/memfd-luo/memfd-luo/initramfs/agent.(*Agent).raceStart in goroutine 33",
			"\t/work/initramfs/agent/race.go:148 +0x2a5",
		}, goroutineStacks(6)...), initPanic...)...),
			Fail, "the guest agent (PID 1) panicked: panic: send on closed channel (console line 2); the kernel then panicked"},
		{"fatal error with every goroutine's stack", consoleResult(all[:1], append(append([]string{
			"fatal error: concurrent map writes",
			"",
		}, goroutineStacks(12)...), initPanic...)...),
			Fail, "the guest agent (PID 1) died: fatal error: concurrent map writes (console line 1)"},
		{"a kernel report before the agent's crash names the run", consoleResult(all[:1], append([]string{
			"[   11.9] BUG: KASAN: use-after-free in memfd_luo_retrieve+0x1/0x2",
			"panic: runtime error: invalid memory address or nil pointer dereference",
		}, initPanic...)...),
			Fail, "kernel kasan: BUG: KASAN: use-after-free in memfd_luo_retrieve+0x1/0x2 (console line 1; then agent-crash, panic)"},
		// The agent's own ways of failing.
		{"step past its deadline", vm.Result{Events: append(all[:2:2], vm.TimedEvent{Event: plan.Event{Kind: plan.EventStep, Stage: 1, Step: 0, Op: plan.OpVerify,
			Outcome: "timeout", Detail: "expected ok, got timeout: did not finish within its deadline of 2m30s"}}), Done: done(false)},
			Fail, "stage 1 step 0 verify: expected ok, got timeout: did not finish within its deadline of 2m30s"},
		{"agent recovered a panic", vm.Result{Events: all[:1], Done: &vm.TimedEvent{Event: plan.Event{Kind: plan.EventDone,
			Detail: "stage 0: agent panic in stage 0 step 1 kexec: boom (stack on the console)"}}},
			Fail, "agent: stage 0: agent panic in stage 0 step 1 kexec: boom"},
		// A hang names the step that started and never finished.
		{"timeout names the unfinished step", vm.Result{TimedOut: true, LastLines: []string{"[  99.0] x"}, Events: append(all[:2:2],
			vm.TimedEvent{Event: plan.Event{Kind: plan.EventStage, Stage: 1}, Host: 1500 * time.Millisecond},
			vm.TimedEvent{Event: plan.Event{Kind: plan.EventStart, Stage: 1, Step: 0, Op: plan.OpVerify}, Host: 2 * time.Second})},
			Timeout, "no verdict within the timeout; stage 1 step 0 (verify) started 2s into the run and never finished; last console line: [  99.0] x"},
		{"silence in a kexec", vm.Result{Silent: true, LastLines: []string{"x"}, Events: append(all[:1:1],
			vm.TimedEvent{Event: plan.Event{Kind: plan.EventStart, Stage: 0, Step: 1, Op: plan.OpKexec}, Host: time.Second},
			vm.TimedEvent{Event: plan.Event{Kind: plan.EventStep, Stage: 0, Step: 1, Op: plan.OpKexec, Pass: true}, Host: time.Second})},
			Timeout, "no console output for too long (hang?); stage 0's kexec began 1s into the run and no agent reported from the next kernel"},
		{"exit after every step finished", vm.Result{LastLines: []string{"bye"}, Events: all},
			Fail, "VM exited without a verdict (<nil>); last console line: bye"},
	}
	// Who is blamed matters as much as the verdict: a harness bug must
	// never be reported as the kernel's. Every case says.
	blames := map[string]string{
		"pass": "", "step failed": "", "missing step": "harness",
		"panic on console": "kernel", "qmp panic": "kernel", "timeout names last line": "kernel",
		"silence": "kernel", "exit without verdict": "kernel", "warning fails a passing run": "kernel",
		"lockdep report ahead of a failed step": "kernel", "KASAN then panic_on_warn": "kernel",
		"list corruption before its WARNING": "kernel", "sleeping in atomic context": "kernel",
		"DEBUG_VM page dump": "kernel", "hung task during a hang": "kernel", "silence with SysRq": "kernel",
		"finished during the SysRq wait after silence": "kernel", "finished during the SysRq wait after the timeout": "kernel",
		"agent panic kills init": "harness", "init killed without a Go report stays the kernel's": "kernel",
		"timeout, SysRq failed":                          "kernel",
		"goroutine panic, then the kernel's whole panic": "harness", "fatal error with every goroutine's stack": "harness",
		"a kernel report before the agent's crash names the run": "kernel",
		"step past its deadline":                                 "", "agent recovered a panic": "harness",
		"timeout names the unfinished step": "kernel", "silence in a kexec": "kernel", "exit after every step finished": "kernel",
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := Judge(p, &tc.res)
			v, blame, reason := j.Verdict, j.Blame, j.Reason
			if want, ok := blames[tc.name]; !ok {
				t.Errorf("the test does not say whom to blame (got %q)", blame)
			} else if blame != want {
				t.Errorf("blame %q, want %q (reason %q)", blame, want, reason)
			}
			if v != tc.want {
				t.Errorf("verdict %s, want %s (reason %q)", v, tc.want, reason)
			}
			if !strings.Contains(reason, tc.wantReason) {
				t.Errorf("reason %q does not contain %q", reason, tc.wantReason)
			}
		})
	}
}

// A hang in early boot: SysRq brings nothing, the host injects an NMI, and
// the kernel panics as asked (unknown_nmi_panic). The verdict is the hang,
// with the stacks pointed at; a report from before the NMI still counts.
func TestJudgeNMIAfterSilence(t *testing.T) {
	p := &plan.Plan{Scenario: "t", Stages: []plan.Stage{{Steps: []plan.Step{{Op: plan.OpMeminfo}}}}}
	boot := []string{"[    1.0] smpboot: Total of 2 processors activated"}
	nmiPanic := []string{"[  140.0] Kernel panic - not syncing: NMI: Not continuing", "[  140.1] Call Trace:"}
	tests := []struct {
		name    string
		lines   []string
		before  int
		verdict Verdict
		reason  string
	}{
		{"panic asked for", append(append([]string{}, boot...), nmiPanic...), 1, Timeout, "an NMI was injected"},
		{"a lockup report before the NMI", append(append([]string{}, "[   30.0] watchdog: BUG: soft lockup - CPU#1 stuck for 22s!"), nmiPanic...), 1, Fail, "soft lockup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := &vm.Result{Silent: true, Panicked: true, Findings: finds(tc.lines...), LastLines: tc.lines,
				SysRq: &vm.SysRq{Why: "silence", Keys: []string{"w", "l"}, NMI: true, LinesBefore: tc.before, LastLineBefore: tc.lines[0]}}
			j := Judge(p, res)
			v, reason := j.Verdict, j.Reason
			if v != tc.verdict || !strings.Contains(reason, tc.reason) {
				t.Errorf("Judge = %v %q, want %v mentioning %q", v, reason, tc.verdict, tc.reason)
			}
		})
	}
}
