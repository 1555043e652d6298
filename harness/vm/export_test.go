package vm

import (
	"context"
	"time"
)

// Fast are the waits of a run that Options do not set, for the tests of
// a whole run (package vm_test): short enough that each takes well under
// a second more than its limits.
type Fast struct {
	WatchPoll, SysRqQuiet, SysRqGap, QMPCall, OutputPoll, BugGrace time.Duration
}

// RunFast is Run with the waits of f.
func RunFast(ctx context.Context, o Options, f Fast) (*Result, error) {
	return run(ctx, o, timings{
		watchPoll:  f.WatchPoll,
		sysrqQuiet: f.SysRqQuiet,
		sysrqGap:   f.SysRqGap,
		qmpCall:    f.QMPCall,
		outputPoll: f.OutputPoll,
		bugGrace:   f.BugGrace,
	})
}
