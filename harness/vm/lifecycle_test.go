package vm_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// fast are the waits of the runs below: each ends within about a second
// of its limits.
func fast() vm.Fast {
	return vm.Fast{
		WatchPoll:  20 * time.Millisecond,
		SysRqQuiet: 150 * time.Millisecond,
		SysRqGap:   30 * time.Millisecond,
		QMPCall:    qmpCall,
		OutputPoll: 10 * time.Millisecond,
		BugGrace:   bugGrace,
	}
}

// Limits of the runs below. silence is long enough for a fake QEMU to
// start on a loaded host; the scripts that go silent wait for the QMP
// client first.
const (
	silence   = 500 * time.Millisecond
	sysrqWait = 400 * time.Millisecond
	bugGrace  = 300 * time.Millisecond
	qmpCall   = 500 * time.Millisecond
)

// Script steps: a kernel that booted, a passing agent's events, the
// agent's line before a step.
const (
	booted   = "print Linux version 6.18.0-fake (gcc) #1 SMP"
	stage    = `event {"kind":"stage","stage":0}`
	step     = `event {"kind":"step","stage":0,"step":0,"op":"create_memfd","pass":true}`
	passed   = `event {"kind":"done","pass":true}`
	preserve = "print LUOTEST: stage 0 step 1 preserve"
)

// stacks are what a kernel prints for SysRq w and l.
func stacks() []string {
	return []string{"sysrq: Show State %k", "task:luoagent state:D stack:0 pid:1"}
}

// TestRunEndsEachWay runs a fake QEMU through every way a VM ends and
// checks what the harness makes of it: Run's error, the Result, what
// QEMU was sent over QMP, the verdict, blame and reason runner.Judge
// gives (or the harness error runner.Run gives when Run fails), and how
// long it took.
func TestRunEndsEachWay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script script
		// qemu, if set, replaces the fake QEMU: a script, or
		// "missing" for no file at all.
		qemu string
		// timeout and silence are the run's limits.
		timeout, silence time.Duration
		cancelAfter      time.Duration // 0: never
		wantErr          string
		wantFlags        string // of TimedOut Silent Panicked StoppedOnBug
		wantSysRq        *wantSysRq
		wantQMP          []string // the commands QEMU received after qmp_capabilities
		wantQMPEvent     string
		wantEvents       int // agent events
		verdict          runner.Verdict
		blame, reason    string
		min, max         time.Duration
	}{
		{
			name:    "clean exit",
			script:  script{Steps: []string{booted, "waitqmp", stage, step, passed, "done", "print reboot: Power down", "qmp SHUTDOWN"}},
			silence: silence, wantQMPEvent: "SHUTDOWN", wantEvents: 3,
			verdict: runner.Pass, max: time.Second,
		},
		{
			name:    "guest panic event",
			script:  script{Steps: []string{booted, "waitqmp", stage, "qmp GUEST_PANICKED", "qmp SHUTDOWN"}},
			silence: silence, wantFlags: "Panicked", wantQMPEvent: "GUEST_PANICKED", wantEvents: 1,
			verdict: runner.Fail, blame: "kernel", reason: "guest panicked (QMP GUEST_PANICKED)", max: time.Second,
		},
		{
			name: "kernel panic on the console, then exit",
			script: script{Steps: []string{booted, "print Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
				"print ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---"}},
			silence: silence,
			verdict: runner.Fail, blame: "kernel", reason: "kernel panic: Kernel panic - not syncing: VFS: Unable to mount root fs", max: time.Second,
		},
		{
			name:    "bug report, stopped after the grace",
			script:  script{Steps: []string{booted, "print BUG: kernel NULL pointer dereference, address: 0000000000000000", "hang"}},
			silence: 10 * time.Second, wantFlags: "StoppedOnBug",
			verdict: runner.Fail, blame: "kernel", reason: "BUG: kernel NULL pointer dereference",
			min: bugGrace, max: bugGrace + time.Second,
		},
		{
			name:    "bug report, exit within the grace",
			script:  script{Steps: []string{booted, "print BUG: unable to handle page fault for address: ffff888000000000", "sleep 50ms"}},
			silence: silence,
			verdict: runner.Fail, blame: "kernel", reason: "BUG: unable to handle page fault",
			max: bugGrace,
		},
		{
			name:    "silence, SysRq, stop",
			script:  script{Steps: []string{booted, "waitqmp", preserve, "hang"}, OnKey: stacks()},
			silence: silence, wantFlags: "Silent",
			wantSysRq: &wantSysRq{why: "silence", keys: []string{"w", "l"}, someOutput: true},
			wantQMP:   []string{"send-key alt-sysrq-w", "send-key alt-sysrq-l"},
			verdict:   runner.Timeout, blame: "kernel", reason: "no console output for too long (hang?); SysRq w,l sent, the stacks are in console.log; last console line: LUOTEST: stage 0 step 1 preserve",
			min: silence, max: silence + time.Second,
		},
		{
			name: "silence, SysRq brings nothing, NMI",
			script: script{Steps: []string{booted, "waitqmp", preserve, "hang"},
				OnNMI: []string{"Kernel panic - not syncing: NMI: Not continuing", "Call Trace:", " <NMI>"}},
			silence: silence, wantFlags: "Silent",
			wantSysRq: &wantSysRq{why: "silence", keys: []string{"w", "l"}, nmi: true, someOutput: true},
			wantQMP:   []string{"send-key alt-sysrq-w", "send-key alt-sysrq-l", "inject-nmi"},
			verdict:   runner.Timeout, blame: "kernel", reason: "so an NMI was injected",
			min: silence + sysrqWait, max: silence + sysrqWait + time.Second,
		},
		{
			name:    "silence before QMP answers",
			script:  script{Steps: []string{booted, "hang"}, NoQMP: true},
			silence: silence, wantFlags: "Silent",
			wantSysRq: &wantSysRq{why: "silence", err: "QMP monitor not connected"},
			verdict:   runner.Timeout, blame: "kernel", reason: "SysRq not sent: QMP monitor not connected",
			min: silence, max: silence + time.Second,
		},
		{
			name:    "silence, QMP stops answering",
			script:  script{Steps: []string{booted, "waitqmp", preserve, "hang"}, OnKey: stacks(), Mute: []string{"send-key"}},
			silence: silence, wantFlags: "Silent",
			wantSysRq: &wantSysRq{why: "silence", err: "sending alt-sysrq-w through QMP: no answer within", nmiErr: "injecting an NMI through QMP: no answer within"},
			wantQMP:   []string{"send-key alt-sysrq-w"},
			verdict:   runner.Timeout, blame: "kernel", reason: "SysRq not sent: sending alt-sysrq-w through QMP: no answer within",
			// The key, then the NMI queued behind it, each wait
			// for an answer as long as they may.
			min: silence + 2*qmpCall, max: silence + 2*qmpCall + time.Second,
		},
		{
			name:    "overall timeout",
			script:  script{Steps: []string{booted, "waitqmp", "chatter 20ms"}, OnKey: stacks()},
			timeout: time.Second, silence: silence, wantFlags: "TimedOut",
			wantSysRq: &wantSysRq{why: "timeout", keys: []string{"w", "l"}, someOutput: true},
			wantQMP:   []string{"send-key alt-sysrq-w", "send-key alt-sysrq-l"},
			verdict:   runner.Timeout, blame: "kernel", reason: "no verdict within the timeout",
			// The console never goes quiet: the wait for the stacks
			// runs to its bound.
			min: time.Second + sysrqWait, max: time.Second + sysrqWait + time.Second,
		},
		{
			name:    "QEMU exits non-zero at once",
			script:  script{Steps: []string{"stderr qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied", "exit 1"}},
			silence: silence,
			wantErr: "QEMU exited with exit status 1",
			verdict: runner.Error, blame: "harness", reason: "failed to initialize kvm: Permission denied", max: time.Second,
		},
		{
			name: "QEMU missing", qemu: "missing",
			wantErr: "finding QEMU",
			verdict: runner.Error, blame: "harness", reason: "install qemu-system-x86", max: time.Second,
		},
		{
			name: "QEMU cannot be started", qemu: "#!/nonexistent/interpreter\n",
			wantErr: "starting QEMU",
			verdict: runner.Error, blame: "harness", reason: "no such file or directory", max: time.Second,
		},
		{
			name:        "context cancelled",
			script:      script{Steps: []string{booted, "waitqmp", "chatter 20ms"}},
			silence:     silence,
			cancelAfter: 300 * time.Millisecond,
			wantErr:     "VM run interrupted: context canceled",
			verdict:     runner.Error, blame: "harness", reason: "VM run interrupted",
			min: 300 * time.Millisecond, max: time.Second,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.script.Log = filepath.Join(dir, "qmp.log")
			ctx := context.Background()
			if tc.cancelAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			begin := time.Now()
			qemuPath := filepath.Join(dir, "qemu-system-x86_64")
			switch tc.qemu {
			case "":
				qemuPath = fakeQEMUPath(t, tc.script)
			case "missing":
			default:
				if err := os.WriteFile(qemuPath, []byte(tc.qemu), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			res, err := vm.RunFast(ctx, vm.Options{
				QEMU: qemuPath, Kernel: "/boot/bzImage-fake", Initramfs: "/tmp/fake.cpio",
				Cmdline: "console=ttyS0", Accel: vm.AccelTCG,
				Timeout: tc.timeout, Silence: tc.silence, SysRqWait: sysrqWait, Dir: filepath.Join(dir, "run"),
			}, fast())
			took := time.Since(begin)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run error %v, want %q", err, tc.wantErr)
			}
			if res == nil {
				if err == nil {
					t.Fatal("no Result and no error")
				}
			} else {
				checkResult(t, res)
				if got := flags(res); got != tc.wantFlags {
					t.Errorf("flags %q, want %q", got, tc.wantFlags)
				}
				if tc.wantQMPEvent != "" && !hasPrefix(res.QMP, tc.wantQMPEvent) {
					t.Errorf("QMP events %q, want %s", res.QMP, tc.wantQMPEvent)
				}
				checkSysRq(t, res.SysRq, tc.wantSysRq)
				if len(res.Events) != tc.wantEvents {
					t.Errorf("%d agent events, want %d: %+v", len(res.Events), tc.wantEvents, res.Events)
				}
			}
			if got := qmpCommands(t, tc.script.Log); !reflect.DeepEqual(got, tc.wantQMP) {
				t.Errorf("QEMU received %q, want %q", got, tc.wantQMP)
			}
			verdict, blame, reason := runner.Error, "harness", ""
			if err != nil {
				reason = err.Error()
			} else {
				j := runner.Judge(&plan.Plan{}, res)
				verdict, blame, reason = j.Verdict, j.Blame, j.Reason
			}
			if verdict != tc.verdict || blame != tc.blame || !strings.Contains(reason, tc.reason) || tc.reason == "" && reason != "" {
				t.Errorf("judged %s, blame %q, reason %q;\nwant %s, blame %q, reason with %q", verdict, blame, reason, tc.verdict, tc.blame, tc.reason)
			}
			if took < tc.min || took > tc.max {
				t.Errorf("took %s, want between %s and %s", took, tc.min, tc.max)
			}
		})
	}
}

// checkResult checks what every Result that Run returns has: the
// console log with the console's lines, and its own time.
func checkResult(t *testing.T, res *vm.Result) {
	t.Helper()
	b, err := os.ReadFile(res.ConsoleLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range res.LastLines {
		if !strings.Contains(string(b), "] "+l+"\n") {
			t.Errorf("console.log lacks %q:\n%s", l, b)
		}
	}
	if res.Elapsed <= 0 {
		t.Errorf("Elapsed %s", res.Elapsed)
	}
	evs, err := vm.ReadEvents(res.EventsLog)
	if err != nil || !reflect.DeepEqual(evs, res.Events) {
		t.Errorf("events.jsonl holds %+v (%v), want %+v", evs, err, res.Events)
	}
	if res.Done != nil && (len(res.Events) == 0 || !reflect.DeepEqual(*res.Done, res.Events[len(res.Events)-1])) {
		t.Errorf("Done %+v is not the last event of %+v", *res.Done, res.Events)
	}
	if len(res.Boots) != 1 && strings.Contains(string(b), "Linux version") {
		t.Errorf("boots at %v, want one", res.Boots)
	}
	cmd, err := os.ReadFile(filepath.Join(filepath.Dir(res.ConsoleLog), "qemu-cmdline.txt"))
	if err != nil || string(cmd) != res.Command+"\n" {
		t.Errorf("qemu-cmdline.txt %q (%v), want %q", cmd, err, res.Command)
	}
}

// wantSysRq is what a run's SysRq record should say.
type wantSysRq struct {
	why        string
	keys       []string
	nmi        bool
	err        string
	nmiErr     string
	someOutput bool // the keys (or, with nmi, the NMI) brought lines
}

func checkSysRq(t *testing.T, got *vm.SysRq, want *wantSysRq) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("SysRq %+v, want none", got)
		}
		return
	}
	if got == nil {
		t.Fatalf("no SysRq, want %+v", *want)
	}
	if got.Why != want.why || !reflect.DeepEqual(got.Keys, want.keys) || got.NMI != want.nmi || !strings.Contains(got.Err, want.err) || want.err == "" && got.Err != "" ||
		!strings.Contains(got.NMIErr, want.nmiErr) || want.nmiErr == "" && got.NMIErr != "" {
		t.Errorf("SysRq %+v, want %+v", *got, *want)
	}
	lines := got.Lines
	if want.nmi {
		lines = got.NMILines
		if got.Lines != 0 {
			t.Errorf("the keys brought %d lines, yet an NMI followed", got.Lines)
		}
	}
	if want.someOutput != (lines > 0) {
		t.Errorf("SysRq brought %d lines (NMI: %d), want some: %v", got.Lines, got.NMILines, want.someOutput)
	}
	if got.LinesBefore == 0 || got.LastLineBefore == "" {
		t.Errorf("SysRq lacks where the guest stopped: %+v", *got)
	}
}

func flags(res *vm.Result) string {
	var f []string
	for _, x := range []struct {
		set  bool
		name string
	}{{res.TimedOut, "TimedOut"}, {res.Silent, "Silent"}, {res.Panicked, "Panicked"}, {res.StoppedOnBug, "StoppedOnBug"}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, " ")
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// qmpCommands reads the fake QEMU's log of QMP commands, but for the
// negotiation (which a QEMU that exits at once may not get to).
func qmpCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, c := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if c != "qmp_capabilities" {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// TestRunRefusesICountWithoutTCG: QEMU's instruction-counted clock exists
// under TCG only; with KVM the run fails before QEMU starts, saying why.
func TestRunRefusesICountWithoutTCG(t *testing.T) {
	dir := t.TempDir()
	_, err := vm.Run(context.Background(), vm.Options{
		QEMU: "true", Kernel: "/k", Initramfs: "/i", Accel: vm.AccelKVM, ICount: "shift=0", Dir: dir,
	})
	if err == nil || !strings.Contains(err.Error(), "-icount shift=0 needs TCG") {
		t.Fatalf("error %v, want the -icount refusal", err)
	}
}
