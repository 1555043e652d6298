package vm

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
)

// errSilent, errTimeout and errKernelBug are the causes the host stops a
// run with.
var (
	errSilent    = errors.New("no console output")
	errTimeout   = errors.New("timeout")
	errKernelBug = errors.New("kernel bug")
)

// recordCause sets the Result flag of the cause ctx was cancelled with.
func recordCause(ctx context.Context, res *Result) {
	switch context.Cause(ctx) {
	case errTimeout:
		res.TimedOut = true
	case errSilent:
		res.Silent = true
	case errKernelBug:
		res.StoppedOnBug = true
	}
}

// qemuFailure is the error of a QEMU that ended on its own with a failure
// (an exit status, or a signal the harness did not send) before the
// guest finished: it could not run the VM (an option it rejects, KVM it
// cannot open, a kernel it cannot load) or it crashed. That is no verdict
// on the guest; a guest's panic or reset ends QEMU with status 0.
func qemuFailure(runCtx context.Context, res *Result) error {
	var ee *exec.ExitError
	if runCtx.Err() != nil || res.Done != nil || !errors.As(res.ExitErr, &ee) {
		return nil
	}
	last := "(none)"
	if n := len(res.LastLines); n > 0 {
		last = res.LastLines[n-1]
	}
	return fmt.Errorf("QEMU exited with %w before the guest finished; its last output: %s", ee, last)
}
