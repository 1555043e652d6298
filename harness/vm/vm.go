// Package vm boots one QEMU virtual machine for a test: it builds the QEMU
// command line (through vmtest's qemu package), keeps the serial console in
// a timestamped log, receives the agent's events over a virtio-serial
// channel (vmtest's qevent), watches the QEMU monitor (go-qemu's qmp) for
// GUEST_PANICKED and SHUTDOWN, and enforces an overall timeout and a
// silence timeout, asking a guest that hit one for its stacks first
// (SysRq w and l through the monitor's send-key).
package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
	"github.com/hugelgupf/vmtest/qemu"
	"github.com/hugelgupf/vmtest/qemu/qevent"
	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/harness/console"
	"github.com/memfd-luo/memfd-luo/harness/shell"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Accel is a QEMU accelerator.
type Accel string

// Accelerators.
const (
	AccelAuto Accel = ""
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg"
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

// TimedEvent is an agent event and when the host received it.
type TimedEvent struct {
	plan.Event
	// Host is the time since QEMU started.
	Host time.Duration `json:"host_ns"`
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

// KVMUsable reports whether /dev/kvm answers KVM_GET_API_VERSION.
func KVMUsable() bool {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	const kvmGetAPIVersion = 0xAE00
	v, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	return e == 0 && v == 12
}

// kvmProbeBudget is how long SeaBIOS may take to reach its boot message
// under KVM for KVM to count as usable. Under TCG it takes ~0.3 s on the
// project machine; under a working KVM less. On a nested host without
// hardware support, /dev/kvm answers but the same takes ~30 s, and a kernel
// then shows no output for minutes.
const kvmProbeBudget = 5 * time.Second

// ProbeKVM checks that QEMU really runs a KVM guest with -cpu host, and
// fast: on some nested hosts /dev/kvm answers but QEMU aborts at vCPU
// reset, on others the guest crawls. It boots an empty machine and calls
// KVM usable if SeaBIOS reaches its boot message ("Booting from ..." or
// "No bootable device") within kvmProbeBudget.
func ProbeKVM(ctx context.Context, qemuBin string) (bool, string) {
	if !KVMUsable() {
		return false, "/dev/kvm is missing or not usable"
	}
	ctx, cancel := context.WithTimeout(ctx, kvmProbeBudget)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuBin, "-accel", "kvm", "-cpu", "host", "-machine", "pc",
		"-nodefaults", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "128")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, fmt.Sprintf("KVM probe: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return false, fmt.Sprintf("KVM probe: starting %s: %v", qemuBin, err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	last := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" {
			last = line
		}
		if strings.Contains(line, "Booting from") || strings.Contains(line, "No bootable device") {
			return true, fmt.Sprintf("KVM guest reached the BIOS boot message in %s", time.Since(start).Round(time.Millisecond))
		}
	}
	if ctx.Err() != nil {
		return false, fmt.Sprintf("QEMU with -accel kvm -cpu host did not reach the BIOS boot message within %s "+
			"(nested virtualization without hardware support?)", kvmProbeBudget)
	}
	return false, fmt.Sprintf("QEMU with -accel kvm -cpu host exited before the BIOS boot message (last output: %q)", last)
}

// ResolveAccel turns AccelAuto into the accelerator a run will use and
// says why. The KVM probe result is cached in cacheFile (keyed by the
// host's boot id) when cacheFile is not empty.
func ResolveAccel(ctx context.Context, a Accel, qemuBin, cacheFile string) (Accel, string) {
	if a != AccelAuto {
		return a, "requested"
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	// "probe2": the probe measures speed now; older results are void.
	key := strings.TrimSpace(string(bootID)) + " " + qemuBin + " probe2"
	if cacheFile != "" {
		if b, err := os.ReadFile(cacheFile); err == nil {
			if k, v, ok := strings.Cut(string(b), "\n"); ok && k == key {
				acc, why, _ := strings.Cut(v, " ")
				return Accel(acc), why
			}
		}
	}
	acc, why := AccelTCG, ""
	if ok, reason := ProbeKVM(ctx, qemuBin); ok {
		acc, why = AccelKVM, reason
	} else {
		why = "TCG because " + reason
	}
	if cacheFile != "" {
		os.WriteFile(cacheFile, []byte(key+"\n"+string(acc)+" "+why), 0o644)
	}
	return acc, why
}

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
	// sysrqSendTimeout bounds one QMP send-key round trip.
	sysrqSendTimeout = 5 * time.Second
)

// sysrqKeys are the SysRq commands sent to a hung guest: blocked tasks
// (with lockdep, the locks they hold), then every CPU's backtrace.
func sysrqKeys() []raw.QKeyCode { return []raw.QKeyCode{raw.QKeyCodeW, raw.QKeyCodeL} }

// keySender is the part of go-qemu's raw.Monitor that sends keys.
type keySender interface {
	SendKey(keys []raw.KeyValue, holdTime *int64) error
}

// sendSysRq presses alt+sysrq+key for each key, through QEMU's PS/2
// keyboard. It returns the letters sent, and the first error.
func sendSysRq(ctx context.Context, ks keySender, keys []raw.QKeyCode) ([]string, error) {
	var sent []string
	for i, k := range keys {
		if i > 0 {
			select {
			case <-ctx.Done():
				return sent, fmt.Errorf("sending SysRq: %w", ctx.Err())
			case <-time.After(sysrqGap):
			}
		}
		combo := []raw.KeyValue{raw.KeyValueQcode(raw.QKeyCodeAlt), raw.KeyValueQcode(raw.QKeyCodeSysrq), raw.KeyValueQcode(k)}
		done := make(chan error, 1)
		go func() { done <- ks.SendKey(combo, nil) }()
		select {
		case err := <-done:
			if err != nil {
				return sent, fmt.Errorf("sending alt-sysrq-%s through QMP: %w", k, err)
			}
		case <-time.After(sysrqSendTimeout):
			return sent, fmt.Errorf("sending alt-sysrq-%s through QMP: no answer within %s", k, sysrqSendTimeout)
		case <-ctx.Done():
			return sent, fmt.Errorf("sending alt-sysrq-%s: %w", k, ctx.Err())
		}
		sent = append(sent, k.String())
	}
	return sent, nil
}

// consoleProbe reports how many console lines arrived so far and how
// long ago the last one did.
type consoleProbe func() (lines int, quiet time.Duration)

// awaitOutput waits for the output of SysRq keys: at most limit, less once
// the console has been quiet for quietFor after at least one new line,
// and not after stop is closed or ctx is done. It returns the number of
// new lines.
func awaitOutput(ctx context.Context, stop <-chan struct{}, probe consoleProbe, limit, quietFor, poll time.Duration) int {
	before, _ := probe()
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

// qmpLink shares the QMP connection between the event watcher and the
// SysRq sender: QEMU's monitor socket takes one client.
type qmpLink struct {
	mu  sync.Mutex
	mon *qmp.SocketMonitor
}

func (l *qmpLink) set(m *qmp.SocketMonitor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mon = m
}

func (l *qmpLink) get() *qmp.SocketMonitor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mon
}

// errSilent, errTimeout and errKernelBug are the causes a run is
// cancelled with.
var (
	errSilent    = errors.New("no console output")
	errTimeout   = errors.New("timeout")
	errKernelBug = errors.New("kernel bug")
)

// BugGrace is how long a VM keeps running after the console shows a severe
// report (console.Kind.Severe: a BUG, an Oops, KASAN, list corruption, a
// DEBUG_VM page dump): long enough for the trace, not for a hang.
const BugGrace = 5 * time.Second

// Run boots the VM and waits until it exits, times out or goes silent.
// An error is returned only when the VM could not be run at all; what the
// guest did is in the Result.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	qemuPath, err := lookPath(o.QEMU)
	if err != nil {
		return nil, fmt.Errorf("finding QEMU: %w (install qemu-system-x86, or run scripts/bootstrap.sh)", err)
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	res := &Result{}
	res.Accel, res.AccelWhy = ResolveAccel(ctx, o.Accel, qemuPath, o.AccelCache)
	res.ConsoleLog = filepath.Join(o.Dir, "console.log")
	res.EventsLog = filepath.Join(o.Dir, "events.jsonl")

	logf, err := os.Create(res.ConsoleLog)
	if err != nil {
		return nil, fmt.Errorf("creating console log: %w", err)
	}
	evf, err := os.Create(res.EventsLog)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("creating events log: %w", err)
	}
	defer evf.Close()

	sockDir, err := os.MkdirTemp("", "luoqmp")
	if err != nil {
		return nil, fmt.Errorf("creating QMP socket directory: %w", err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "qmp.sock")

	cpu := "max"
	if res.Accel == AccelKVM {
		cpu = "host"
	}
	if o.SysRqWait <= 0 {
		o.SysRqWait = DefaultSysRqWait
	}
	start := time.Now()
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if o.Timeout > 0 {
		// The watchdog task ends the run at o.Timeout, after SysRq;
		// this is the backstop should that take longer than it may.
		var stop context.CancelFunc
		runCtx, stop = context.WithTimeoutCause(runCtx, o.Timeout+o.SysRqWait+2*sysrqSendTimeout+10*time.Second, errTimeout)
		defer stop()
	}

	mon := console.NewMonitor(20)
	var mu sync.Mutex // guards res fields written by tasks, and mon
	lastOutput := time.Now()
	var bugTimer *time.Timer
	cw := &lineWriter{out: logf, start: start, line: func(host time.Duration, line string) {
		mu.Lock()
		f, found := mon.Line(line)
		lastOutput = time.Now()
		if found && bugTimer == nil && f.Kind.Severe() && f.Kind != console.Panic {
			bugTimer = time.AfterFunc(BugGrace, func() { cancel(errKernelBug) })
		}
		if strings.Contains(line, "Linux version ") {
			res.Boots = append(res.Boots, host)
		}
		mu.Unlock()
		if o.OnLine != nil {
			o.OnLine(host, line)
		}
	}}

	onEvent := func(ev plan.Event) {
		te := TimedEvent{Event: ev, Host: time.Since(start)}
		b, _ := json.Marshal(te)
		mu.Lock()
		res.Events = append(res.Events, te)
		if ev.Kind == plan.EventDone {
			res.Done = &res.Events[len(res.Events)-1]
		}
		evf.Write(append(b, '\n'))
		mu.Unlock()
	}

	events := make(chan plan.Event, 1024)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ev := range events {
			onEvent(ev)
		}
	}()

	link := &qmpLink{}
	qmpTask := qemu.WaitVMStarted(func(ctx context.Context, n *qemu.Notifications) error {
		watchQMP(ctx, sock, link, func(name, data string) {
			mu.Lock()
			res.QMP = append(res.QMP, strings.TrimSpace(name+" "+data))
			if name == "GUEST_PANICKED" {
				res.Panicked = true
			}
			mu.Unlock()
		})
		return nil
	})
	// The watchdog ends a run that falls silent or runs out of time,
	// after asking the kernel for its stacks (SysRq w and l).
	watchdog := func(ctx context.Context, n *qemu.Notifications) error {
		if o.Silence <= 0 && o.Timeout <= 0 {
			return nil
		}
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-n.VMExited:
				return nil
			case <-t.C:
			}
			mu.Lock()
			quiet := time.Since(lastOutput)
			mu.Unlock()
			var cause error
			why := ""
			switch {
			case o.Timeout > 0 && time.Since(start) >= o.Timeout:
				cause, why = errTimeout, "timeout"
			case o.Silence > 0 && quiet > o.Silence:
				cause, why = errSilent, "silence"
			default:
				continue
			}
			exited := make(chan struct{})
			go func() {
				select {
				case <-n.VMExited:
				case <-ctx.Done():
				}
				close(exited)
			}()
			sr := &SysRq{Why: why, At: time.Since(start)}
			mu.Lock()
			if last := mon.LastLines(); len(last) > 0 {
				sr.LastLineBefore = last[len(last)-1]
			}
			sr.LinesBefore = mon.Lines()
			mu.Unlock()
			if m := link.get(); m == nil {
				sr.Err = "QMP monitor not connected"
			} else if sent, err := sendSysRq(ctx, raw.NewMonitor(m), sysrqKeys()); err != nil {
				sr.Keys, sr.Err = sent, err.Error()
			} else {
				sr.Keys = sent
			}
			lines := func() (int, time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				return mon.Lines(), time.Since(lastOutput)
			}
			if len(sr.Keys) > 0 {
				waitStart := time.Now()
				sr.Lines = awaitOutput(ctx, exited, lines, o.SysRqWait, SysRqQuiet, 100*time.Millisecond)
				sr.Waited = time.Since(waitStart)
			}
			// Early in boot there is no keyboard driver yet, and a
			// CPU spinning with interrupts off ignores it: an NMI
			// still gets through.
			if m := link.get(); sr.Lines == 0 && m != nil {
				if err := raw.NewMonitor(m).InjectNmi(); err == nil {
					sr.NMI = true
					sr.NMILines = awaitOutput(ctx, exited, lines, o.SysRqWait, SysRqQuiet, 100*time.Millisecond)
				}
			}
			mu.Lock()
			res.SysRq = sr
			mu.Unlock()
			cancel(cause)
			return nil
		}
	}

	opts, err := qemu.OptionsFor(qemu.ArchAMD64,
		qemu.WithQEMUCommand(qemuPath),
		qemu.WithKernel(o.Kernel),
		qemu.WithInitramfs(o.Initramfs),
		ownLimits(o.Cmdline),
		qemu.WithSerialOutput(cw),
		qemu.ArbitraryArgs(
			"-machine", "pc", "-accel", string(res.Accel), "-cpu", cpu,
			"-m", fmt.Sprint(o.MemoryMB), "-smp", fmt.Sprint(o.CPUs),
			"-nodefaults", "-no-reboot", "-serial", "mon:stdio",
			"-device", "pvpanic-pci",
			"-qmp", "unix:"+sock+",server=on,wait=off",
		),
		// EventChannel, not EventChannelCallback: the callback's
		// consumer stops at cancellation, which VM.Wait does before
		// waiting for tasks, so a last event still in flight blocks
		// the reader forever. This consumer drains until the channel
		// is closed, which qevent does on every path.
		qevent.EventChannel[plan.Event](plan.EventPort, events),
		qemu.WithTask(qmpTask, watchdog),
	)
	if err != nil {
		return nil, fmt.Errorf("configuring QEMU: %w", err)
	}
	if cmd, err := opts.Cmdline(); err == nil {
		res.Command = shell.Quote(cmd...)
		os.WriteFile(filepath.Join(o.Dir, "qemu-cmdline.txt"), []byte(res.Command+"\n"), 0o644)
	}
	v, err := opts.Start(runCtx)
	if err != nil {
		return nil, fmt.Errorf("starting QEMU (%s): %w", res.Command, err)
	}
	res.ExitErr = v.Wait()
	<-drained
	res.Elapsed = time.Since(start)
	cw.Flush()
	switch context.Cause(runCtx) {
	case errTimeout:
		res.TimedOut = true
	case errSilent:
		res.Silent = true
	case errKernelBug:
		res.StoppedOnBug = true
	}
	mu.Lock()
	if bugTimer != nil {
		bugTimer.Stop()
	}
	mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	res.Findings = mon.Findings()
	res.LastLines = mon.LastLines()
	if ctx.Err() != nil {
		return res, fmt.Errorf("VM run interrupted: %w", ctx.Err())
	}
	return res, nil
}

// watchQMP connects to QEMU's monitor socket (retrying until QEMU has
// created it), shares the connection through link and reports events
// until the socket closes.
func watchQMP(ctx context.Context, sock string, link *qmpLink, report func(name, data string)) {
	var mon *qmp.SocketMonitor
	for {
		m, err := qmp.NewSocketMonitor("unix", sock, time.Second)
		if err == nil {
			if err = m.Connect(); err == nil {
				mon = m
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer mon.Disconnect()
	link.set(mon)
	defer link.set(nil)
	events, err := mon.Events(ctx)
	if err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			data := ""
			if len(ev.Data) > 0 {
				b, _ := json.Marshal(ev.Data)
				data = string(b)
			}
			report(ev.Event, data)
		}
	}
}

// lineWriter timestamps console output line by line.
type lineWriter struct {
	mu    sync.Mutex
	out   *os.File
	start time.Time
	buf   bytes.Buffer
	line  func(time.Duration, string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		w.emit(string(bytes.TrimRight(w.buf.Next(i+1), "\r\n")))
	}
	return len(p), nil
}

func (w *lineWriter) emit(line string) {
	host := time.Since(w.start)
	fmt.Fprintf(w.out, "[host %9.3f] %s\n", host.Seconds(), line)
	w.line(host, line)
}

// Flush emits a trailing partial line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(strings.TrimRight(w.buf.String(), "\r\n"))
		w.buf.Reset()
	}
}

// Close is called by vmtest when the VM is done; the file stays open
// until Flush.
func (w *lineWriter) Close() error {
	w.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Sync()
}

// ownLimits replaces what vmtest's qemu.OptionsFor reads from the
// environment with the run's own settings: the kernel command line is
// exactly cmdline (VMTEST_KERNEL_APPEND would reach the first boot only,
// not the kernels it kexecs into, and no rerun would repeat it), and
// vmtest's own VM timeout (VMTEST_TIMEOUT) is off: the watchdog's -timeout
// asks the guest for its stacks before it stops QEMU, and a run vmtest
// killed would be judged a kernel failure ("VM exited without a
// verdict"). VMTEST_QEMU_APPEND stays: extra QEMU arguments for debugging
// (-s, -d ...), recorded in qemu-cmdline.txt.
func ownLimits(cmdline string) qemu.Fn {
	return func(_ *qemu.IDAllocator, opts *qemu.Options) error {
		opts.KernelArgs = cmdline
		opts.VMTimeout = 0
		return nil
	}
}

func lookPath(bin string) (string, error) {
	if strings.Contains(bin, "/") {
		if _, err := os.Stat(bin); err != nil {
			return "", err
		}
		return bin, nil
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH", bin)
}

// ReadEvents loads an events.jsonl written by Run.
func ReadEvents(path string) ([]TimedEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []TimedEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var te TimedEvent
		if err := json.Unmarshal(sc.Bytes(), &te); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, te)
	}
	return out, sc.Err()
}
