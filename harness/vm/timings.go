package vm

import "time"

// timings are the waits of a run that Options do not set: the constants
// in production, short ones in the tests of a whole run.
type timings struct {
	// watchPoll is how often the watchdog looks at the clock and
	// the console.
	watchPoll time.Duration
	// sysrqQuiet ends the wait for stacks once the console has been
	// quiet that long after some output.
	sysrqQuiet time.Duration
	// sysrqGap separates two SysRq key combinations.
	sysrqGap time.Duration
	// qmpCall bounds one QMP round trip.
	qmpCall time.Duration
	// outputPoll is how often the console is looked at while waiting
	// for stacks.
	outputPoll time.Duration
	// bugGrace is how long a VM runs on after a severe report.
	bugGrace time.Duration
}

func defaultTimings() timings {
	return timings{
		watchPoll:  time.Second,
		sysrqQuiet: SysRqQuiet,
		sysrqGap:   sysrqGap,
		qmpCall:    qmpCallTimeout,
		outputPoll: outputPoll,
		bugGrace:   BugGrace,
	}
}
