package vm

import (
	"context"
	"errors"
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
