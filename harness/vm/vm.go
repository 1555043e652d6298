// Package vm boots one QEMU virtual machine for a test: it builds the QEMU
// command line (through vmtest's qemu package), keeps the serial console in
// a timestamped log, receives the agent's events over a virtio-serial
// channel (vmtest's qevent), watches the QEMU monitor (go-qemu's qmp) for
// GUEST_PANICKED and SHUTDOWN, and enforces an overall timeout and a
// silence timeout, asking a guest that hit one for its stacks first
// (SysRq w and l through the monitor's send-key, then an NMI).
//
// Each part is a vmtest task or serial writer of its own file: the
// console (consoleline.go, console.go), the agent's events (events.go),
// the QMP watcher (qmp.go), the silence and time watchdog (watchdog.go)
// with the stack collection it triggers (sysrq.go), and the grace after a
// kernel bug report (grace.go). run.go wires them together.
package vm

import (
	"context"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/console"
)

// Options configure one VM run.
type Options struct {
	// QEMU is the emulator binary (default qemu-system-x86_64).
	QEMU      string
	Kernel    string
	Initramfs string
	// Cmdline is the whole kernel command line.
	Cmdline  string
	MemoryMB int
	CPUs     int
	// Accel selects the accelerator; AccelAuto uses KVM when /dev/kvm
	// is usable, else TCG.
	Accel Accel
	// AccelCache caches the KVM probe (optional).
	AccelCache string
	// ICount, under TCG, is QEMU's -icount setting: with "shift=0" the
	// guest's clocks advance one nanosecond per instruction the guest
	// executes (and with real time while it idles), so a guest-timed
	// phase counts the instructions it executed, whatever the host's
	// speed. It makes TCG single-threaded. "" leaves the clocks real;
	// KVM refuses it.
	ICount string
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Silence bounds the time without any console output.
	Silence time.Duration
	// SysRqWait bounds how long the host waits for the output of the
	// SysRq keys it sends when the VM falls silent or runs out of time
	// (default DefaultSysRqWait); it stops waiting earlier once the
	// console has been quiet for SysRqQuiet after some output.
	SysRqWait time.Duration
	// Dir receives console.log, events.jsonl, qemu-cmdline.txt.
	Dir string
	// OnLine, if set, sees every console line as it arrives.
	OnLine func(host time.Duration, line string)
}

// Result is what a run produced.
type Result struct {
	Accel    Accel
	AccelWhy string
	Events   []TimedEvent
	Done     *TimedEvent
	Findings []console.Finding
	// LastLines are the last console lines.
	LastLines []string
	// QMP lists monitor events, "NAME {data}".
	QMP      []string
	Panicked bool
	TimedOut bool
	// Silent is set when the run was stopped for lack of output.
	Silent bool
	// StoppedOnBug is set when the run was stopped BugGrace after a
	// severe report (a BUG, an Oops, KASAN, ...).
	StoppedOnBug bool
	// SysRq is set when the host sent SysRq keys before stopping a VM
	// that fell silent or ran out of time.
	SysRq   *SysRq
	ExitErr error
	Elapsed time.Duration
	// Boots are the host times of each "Linux version" banner: one per
	// kernel booted (the first boot, then one per kexec).
	Boots      []time.Duration
	ConsoleLog string
	EventsLog  string
	Command    string
}

// Run boots the VM and waits until it exits, times out or goes silent.
// What the guest did is in the Result. An error says that the VM could
// not be run at all, that QEMU failed before the guest finished (with the
// Result so far), or that ctx ended the run (with the Result so far).
func Run(ctx context.Context, o Options) (*Result, error) {
	return run(ctx, o, defaultTimings())
}
