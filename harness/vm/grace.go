package vm

import (
	"context"
	"time"

	"github.com/hugelgupf/vmtest/qemu"
)

// BugGrace is how long a VM keeps running after the console shows a severe
// report (console.Kind.Severe: a BUG, an Oops, KASAN, list corruption, a
// DEBUG_VM page dump): long enough for the trace, not for a hang.
const BugGrace = 5 * time.Second

// bugGrace is a task that stops the run (cause errKernelBug) grace after
// severe is closed, unless the VM exits first.
func bugGrace(severe <-chan struct{}, grace time.Duration, stop context.CancelCauseFunc) qemu.Task {
	return func(ctx context.Context, n *qemu.Notifications) error {
		select {
		case <-severe:
		case <-n.VMExited:
			return nil
		case <-ctx.Done():
			return nil
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			stop(errKernelBug)
		case <-n.VMExited:
		case <-ctx.Done():
		}
		return nil
	}
}
