package vm

import (
	"context"
	"time"

	"github.com/hugelgupf/vmtest/qemu"
)

// watchdog ends a run that falls silent or runs out of time, after
// asking the kernel for its stacks.
type watchdog struct {
	start time.Time
	// timeout bounds the run, silence the time without console
	// output; 0 is no limit.
	timeout, silence time.Duration
	poll             time.Duration
	// quiet says how long ago the console printed its last line.
	quiet func() time.Duration
	// stacks asks the guest for its stacks and waits for them, not
	// after exited is closed.
	stacks func(ctx context.Context, why string, exited <-chan struct{}) *SysRq
	// record gets what stacks returned, before the run is stopped.
	record func(*SysRq)
	stop   context.CancelCauseFunc
}

// overLimit says which limit a run crossed after elapsed, its console
// quiet for quiet: "timeout" (errTimeout), "silence" (errSilent), or
// none ("", nil). The timeout comes first: a run both late and silent
// is late.
func overLimit(elapsed, quiet, timeout, silence time.Duration) (why string, cause error) {
	switch {
	case timeout > 0 && elapsed >= timeout:
		return "timeout", errTimeout
	case silence > 0 && quiet > silence:
		return "silence", errSilent
	}
	return "", nil
}

// task is the watchdog as a vmtest task.
func (w watchdog) task() qemu.Task {
	return func(ctx context.Context, n *qemu.Notifications) error {
		if w.silence <= 0 && w.timeout <= 0 {
			return nil
		}
		t := time.NewTicker(w.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-n.VMExited:
				return nil
			case <-t.C:
			}
			why, cause := overLimit(time.Since(w.start), w.quiet(), w.timeout, w.silence)
			if cause == nil {
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
			w.record(w.stacks(ctx, why, exited))
			w.stop(cause)
			return nil
		}
	}
}
