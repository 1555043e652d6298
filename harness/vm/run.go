package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

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
	files, err := createRunFiles(o.Dir)
	if err != nil {
		return nil, err
	}
	defer files.close()
	res := &Result{ConsoleLog: files.console.Name(), EventsLog: files.events.Name()}
	res.Accel, res.AccelWhy = ResolveAccel(ctx, o.Accel, qemuPath, o.AccelCache)
	if o.ICount != "" && res.Accel != AccelTCG {
		return nil, fmt.Errorf("-icount %s needs TCG, and the accelerator is %s (%s)", o.ICount, res.Accel, res.AccelWhy)
	}

	start := time.Now()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(runCtx, backstop(o, tm), errTimeout)
		defer cancel()
	}

	cons := newConsoleState(start)
	lines := newLineWriter(start, files.console, func(host time.Duration, line string) {
		cons.line(host, line)
		if o.OnLine != nil {
			o.OnLine(host, line)
		}
	})
	evlog := newEventLog(start, files.events)
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
	opts, err := qemuOptions(o, qemuPath, res.Accel, files.sock(), lines, events,
		watchQMP(files.sock(), link, qlog), dog.task(), bugGrace(cons.severe, tm.bugGrace, stop))
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
	return res, qemuFailure(runCtx, res)
}
