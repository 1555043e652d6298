package vm

import (
	"context"
	"fmt"
	"time"

	"github.com/digitalocean/go-qemu/qmp/raw"
)

// SysRq records the SysRq keys the host sent a VM that fell silent or ran
// out of time, so that a hang ends with the kernel's stacks in console.log.
type SysRq struct {
	// Why is "silence" or "timeout".
	Why string `json:"why"`
	// Keys are the SysRq commands sent, in order: "w" (blocked tasks),
	// "l" (every CPU's backtrace).
	Keys []string `json:"keys"`
	// At is the host time the first key was sent, since QEMU started.
	At time.Duration `json:"at_ns"`
	// Waited is how long the host then waited for the output.
	Waited time.Duration `json:"waited_ns"`
	// Lines is the number of console lines that arrived meanwhile.
	Lines int `json:"lines"`
	// LastLineBefore is the last console line before the keys: where
	// the guest stopped.
	LastLineBefore string `json:"last_line_before,omitempty"`
	// LinesBefore is the number of console lines before the keys:
	// reports after it were asked for, not kernel trouble of their own.
	LinesBefore int `json:"lines_before"`
	// Err says why the keys could not be sent ("" when they were).
	Err string `json:"error,omitempty"`
	// NMI is set when the keys brought no output (the keyboard driver
	// is not up in early boot, or the CPUs do not take interrupts) and
	// the host injected an NMI instead; runner.BaseCmdline makes the
	// kernel panic on it and print every task's and CPU's stack.
	NMI bool `json:"nmi,omitempty"`
	// NMILines is the number of console lines after the NMI.
	NMILines int `json:"nmi_lines,omitempty"`
	// NMIErr says why the NMI could not be injected.
	NMIErr string `json:"nmi_error,omitempty"`
}

// Sent reports whether the keys reached QEMU.
func (s *SysRq) Sent() bool { return s != nil && s.Err == "" && len(s.Keys) > 0 }

// SysRq timings.
const (
	// DefaultSysRqWait bounds the wait for SysRq output.
	DefaultSysRqWait = 10 * time.Second
	// SysRqQuiet ends the wait early: the dump is over once the
	// console has been quiet this long after printing something.
	SysRqQuiet = 2 * time.Second
	// sysrqGap separates two key combinations: longer than QEMU's
	// default 100 ms hold time, so they do not overlap.
	sysrqGap = 300 * time.Millisecond
	// qmpCallTimeout bounds one QMP round trip (send-key, inject-nmi).
	qmpCallTimeout = 5 * time.Second
	// outputPoll is how often the console is looked at while waiting
	// for the stacks.
	outputPoll = 100 * time.Millisecond
)

// collectStacks asks a guest that fell silent or ran out of time (why)
// for its stacks: SysRq w and l, then, when they bring no output, an
// NMI. It waits for the output of each, no longer than wait, and stops
// waiting once exited is closed or ctx is done.
func collectStacks(ctx context.Context, why string, at time.Duration, exited <-chan struct{}, link *qmpLink, cons *consoleState, wait time.Duration, tm timings) *SysRq {
	sr := &SysRq{Why: why, At: at}
	sr.LastLineBefore, sr.LinesBefore = cons.lastLine()
	if m := link.get(); m == nil {
		sr.Err = "QMP monitor not connected"
	} else {
		sent, err := sendSysRq(ctx, raw.NewMonitor(m), sysrqKeys(), tm.sysrqGap, tm.qmpCall)
		sr.Keys = sent
		if err != nil {
			sr.Err = err.Error()
		}
	}
	if len(sr.Keys) > 0 {
		// The kernel prints the stacks of the first key while the
		// host waits to send the second: they count.
		waitStart := time.Now()
		sr.Lines = awaitOutput(ctx, exited, cons.probe, sr.LinesBefore, wait, tm.sysrqQuiet, tm.outputPoll)
		sr.Waited = time.Since(waitStart)
	}
	// Early in boot there is no keyboard driver yet, and a CPU
	// spinning with interrupts off ignores it: an NMI still gets
	// through.
	if m := link.get(); sr.Lines == 0 && m != nil {
		before, _ := cons.probe()
		if err := callQMP(ctx, tm.qmpCall, raw.NewMonitor(m).InjectNmi); err != nil {
			sr.NMIErr = fmt.Sprintf("injecting an NMI through QMP: %v", err)
		} else {
			sr.NMI = true
			sr.NMILines = awaitOutput(ctx, exited, cons.probe, before, wait, tm.sysrqQuiet, tm.outputPoll)
		}
	}
	return sr
}

// sysrqKeys are the SysRq commands sent to a hung guest: blocked tasks
// (with lockdep, the locks they hold), then every CPU's backtrace.
func sysrqKeys() []raw.QKeyCode { return []raw.QKeyCode{raw.QKeyCodeW, raw.QKeyCodeL} }

// keySender is the part of go-qemu's raw.Monitor that sends keys.
type keySender interface {
	SendKey(keys []raw.KeyValue, holdTime *int64) error
}

// sendSysRq presses alt+sysrq+key for each key, through QEMU's PS/2
// keyboard, gap apart, each bounded by timeout. It returns the letters
// sent, and the first error.
func sendSysRq(ctx context.Context, ks keySender, keys []raw.QKeyCode, gap, timeout time.Duration) ([]string, error) {
	var sent []string
	for i, k := range keys {
		if i > 0 {
			select {
			case <-ctx.Done():
				return sent, fmt.Errorf("sending SysRq: %w", ctx.Err())
			case <-time.After(gap):
			}
		}
		combo := []raw.KeyValue{raw.KeyValueQcode(raw.QKeyCodeAlt), raw.KeyValueQcode(raw.QKeyCodeSysrq), raw.KeyValueQcode(k)}
		if err := callQMP(ctx, timeout, func() error { return ks.SendKey(combo, nil) }); err != nil {
			return sent, fmt.Errorf("sending alt-sysrq-%s through QMP: %w", k, err)
		}
		sent = append(sent, k.String())
	}
	return sent, nil
}

// callQMP runs a QMP command, call, for at most timeout: go-qemu's calls
// have no deadline, and a QEMU that stopped answering would hold the run
// forever. The call itself ends when QEMU is stopped.
func callQMP(ctx context.Context, timeout time.Duration, call func() error) error {
	done := make(chan error, 1)
	go func() { done <- call() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("no answer within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// consoleProbe reports how many console lines arrived so far and how
// long ago the last one did.
type consoleProbe func() (lines int, quiet time.Duration)

// awaitOutput waits for the output of SysRq keys or an NMI, the console
// having had before lines when the first was sent: at most limit, less
// once the console has been quiet for quietFor after at least one line
// more, and not after stop is closed or ctx is done. It returns the
// number of lines since before, those that came while the keys were
// still being sent included.
func awaitOutput(ctx context.Context, stop <-chan struct{}, probe consoleProbe, before int, limit, quietFor, poll time.Duration) int {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
		case <-stop:
		case <-deadline.C:
		case <-t.C:
			n, quiet := probe()
			if n > before && quiet >= quietFor {
				return n - before
			}
			continue
		}
		n, _ := probe()
		return n - before
	}
}
