package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hugelgupf/vmtest/qemu"
	"github.com/hugelgupf/vmtest/qemu/qevent"

	"github.com/memfd-luo/memfd-luo/harness/shell"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// withDefaults fills in the settings o leaves at zero.
func (o Options) withDefaults() Options {
	if o.QEMU == "" {
		o.QEMU = "qemu-system-x86_64"
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 1024
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.SysRqWait <= 0 {
		o.SysRqWait = DefaultSysRqWait
	}
	return o
}

// backstop bounds a run whose watchdog does not stop it in time. The
// watchdog stops it at the timeout (noticed within a poll) after the
// stacks: each key, gap apart, then the wait for their output, then the
// NMI and the wait for its output.
func backstop(o Options, tm timings) time.Duration {
	keys := time.Duration(len(sysrqKeys()))
	stacks := keys*(tm.sysrqGap+tm.qmpCall) + o.SysRqWait + tm.qmpCall + o.SysRqWait
	return o.Timeout + tm.watchPoll + stacks + 10*time.Second
}

// run is Run with the given timings.
func run(ctx context.Context, o Options, tm timings) (*Result, error) {
	o = o.withDefaults()
	qemuPath, err := exec.LookPath(o.QEMU)
	if err != nil {
		return nil, fmt.Errorf("finding QEMU: %w (install qemu-system-x86, or run scripts/bootstrap.sh)", err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	res := &Result{
		ConsoleLog: filepath.Join(o.Dir, "console.log"),
		EventsLog:  filepath.Join(o.Dir, "events.jsonl"),
	}
	res.Accel, res.AccelWhy = ResolveAccel(ctx, o.Accel, qemuPath, o.AccelCache)
	logf, err := os.Create(res.ConsoleLog)
	if err != nil {
		return nil, fmt.Errorf("creating console log: %w", err)
	}
	defer logf.Close()
	evf, err := os.Create(res.EventsLog)
	if err != nil {
		return nil, fmt.Errorf("creating events log: %w", err)
	}
	defer evf.Close()
	sockDir, err := os.MkdirTemp("", "luoqmp")
	if err != nil {
		return nil, fmt.Errorf("creating QMP socket directory: %w", err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "qmp.sock")

	start := time.Now()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(runCtx, backstop(o, tm), errTimeout)
		defer cancel()
	}

	cons := newConsoleState(start)
	lines := newLineWriter(start, logf, func(host time.Duration, line string) {
		cons.line(host, line)
		if o.OnLine != nil {
			o.OnLine(host, line)
		}
	})
	evlog := newEventLog(start, evf)
	events := make(chan plan.Event, 1024)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		evlog.drain(events)
	}()
	link, qlog := &qmpLink{}, &qmpLog{}
	stacks := make(chan *SysRq, 1)
	dog := watchdog{
		start: start, timeout: o.Timeout, silence: o.Silence, poll: tm.watchPoll,
		quiet: func() time.Duration { _, q := cons.probe(); return q },
		stacks: func(ctx context.Context, why string, exited <-chan struct{}) *SysRq {
			return collectStacks(ctx, why, time.Since(start), exited, link, cons, o.SysRqWait, tm)
		},
		record: func(sr *SysRq) { stacks <- sr },
		stop:   stop,
	}

	opts, err := qemu.OptionsFor(qemu.ArchAMD64,
		qemu.WithQEMUCommand(qemuPath),
		qemu.WithKernel(o.Kernel),
		qemu.WithInitramfs(o.Initramfs),
		ownLimits(o.Cmdline),
		qemu.WithSerialOutput(lines),
		machine(res.Accel),
		size(o.MemoryMB, o.CPUs),
		serialConsole(),
		pvpanic(),
		qmpSocket(sock),
		// EventChannel, not EventChannelCallback: the callback's
		// consumer stops at cancellation, which VM.Wait does before
		// waiting for tasks, so a last event still in flight blocks
		// the reader forever. evlog.drain reads until the channel is
		// closed, which qevent does on every path.
		qevent.EventChannel[plan.Event](plan.EventPort, events),
		qemu.WithTask(watchQMP(sock, link, qlog), dog.task(), bugGrace(cons.severe, tm.bugGrace, stop)),
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
		// qevent's task never started, so it will not close events.
		close(events)
		return nil, fmt.Errorf("starting QEMU (%s): %w", res.Command, err)
	}
	res.ExitErr = v.Wait()
	<-drained
	res.Elapsed = time.Since(start)
	lines.Flush()
	recordCause(runCtx, res)
	select {
	case res.SysRq = <-stacks:
	default:
	}
	cons.fill(res)
	evlog.fill(res)
	qlog.fill(res)
	if ctx.Err() != nil {
		return res, fmt.Errorf("VM run interrupted: %w", ctx.Err())
	}
	if err := qemuFailure(runCtx, res); err != nil {
		return res, err
	}
	return res, nil
}
