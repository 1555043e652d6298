package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// DefaultStepTimeout bounds a step when the plan sets no StepTimeoutMS.
const DefaultStepTimeout = 10 * time.Minute

// stepGrace is how long the agent waits, once a step's deadline has
// passed, for the step to return on its own: an exec step's program is
// killed at the deadline and its output is still worth reporting.
const stepGrace = 10 * time.Second

// stepTimeout returns the deadline of one step of the agent's plan.
func (a *Agent) stepTimeout() time.Duration {
	if a.plan.StepTimeoutMS > 0 {
		return time.Duration(a.plan.StepTimeoutMS) * time.Millisecond
	}
	return DefaultStepTimeout
}

// panicError is a panic the agent recovered. The agent is PID 1: had the
// panic been left alone, the kernel would have panicked ("Attempted to
// kill init") and the run would look like the kernel's failure.
type panicError struct {
	what  string // where: "stage 0 step 3 preserve", "racer fault0"
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("agent panic in %s: %v (stack on the console)", e.what, e.value)
}

// recovered returns the panicError for a value recover returned.
func recovered(what string, v any) *panicError {
	return &panicError{what: what, value: v, stack: debug.Stack()}
}

// logPanic prints a recovered panic and its stack on the console.
func (a *Agent) logPanic(e *panicError) {
	a.logf("%v", e)
	a.logLines("stack: ", e.stack)
}

// logLines prints text line by line, every line behind the console
// prefix and tag, so that the host never takes it for kernel output or
// for the Go runtime's own crash report.
func (a *Agent) logLines(tag string, text []byte) {
	for _, l := range strings.Split(strings.TrimRight(string(text), "\n"), "\n") {
		a.logf("%s%s", tag, l)
	}
}

// goSafe runs fn in a new goroutine whose panic, instead of killing the
// agent, is printed and ends the stage (RunStage returns it). exited, if
// not nil, runs last, after the panic is queued for RunStage: whoever
// waits for the goroutine's end (a race_stop) then cannot finish the
// stage before the panic is seen.
func (a *Agent) goSafe(what string, fn func(), exited func()) {
	go func() {
		defer func() {
			if v := recover(); v != nil {
				e := recovered(what, v)
				// Printed first: the stage may end, and the
				// machine power off, as soon as it is queued.
				a.logPanic(e)
				select {
				case a.crashed <- e:
				default: // one is enough to end the stage
				}
			}
			if exited != nil {
				exited()
			}
		}()
		fn()
	}()
}

// stepDone is what a step's goroutine hands back.
type stepDone struct {
	res   result
	dur   time.Duration
	panic *panicError
}

// deadlineError is the outcome of a step that ran past its deadline. It
// unwraps to context.DeadlineExceeded, whose outcome name is "timeout".
type deadlineError struct {
	limit time.Duration
	// stuck: the step had not returned grace after the deadline.
	stuck bool
	grace time.Duration
	// state is the stuck step's goroutine state ("syscall, 2
	// minutes"), if found.
	state string
}

func (e *deadlineError) Error() string {
	if !e.stuck {
		return fmt.Sprintf("did not finish within its deadline of %s", e.limit)
	}
	s := fmt.Sprintf("no result within its deadline of %s nor %s after; the agent's goroutine stacks are on the console", e.limit, e.grace)
	switch {
	case strings.HasPrefix(e.state, "syscall"):
		s += fmt.Sprintf("; the step's goroutine is in a system call [%s]: blocked in the kernel", e.state)
	case e.state != "":
		s += fmt.Sprintf("; the step's goroutine is [%s]", e.state)
	}
	return s
}

func (e *deadlineError) Unwrap() error { return context.DeadlineExceeded }

// runStep runs fn, the work of step i, in a goroutine of its own under
// the step's deadline, and returns its result and how long it took. The
// returned error, when not nil, ends the stage: a *panicError (the
// step's own or a background goroutine's; no result to report), or a
// *deadlineError, also in the result's err so that the step is reported
// with outcome "timeout".
func (a *Agent) runStep(ctx context.Context, i int, s plan.Step, fn func(context.Context) result) (result, time.Duration, error) {
	limit := a.stepTimeout()
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	what := fmt.Sprintf("stage %d step %d %s", a.stage, i, s.Op)
	done := make(chan stepDone, 1)
	gid := make(chan string, 1)
	start := time.Now()
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- stepDone{dur: time.Since(start), panic: recovered(what, v)}
			}
		}()
		gid <- goroutineID()
		// The step's own thread: its CPU time (user and system,
		// the ioctl's kernel work included) is what the step cost,
		// whatever else ran on the CPU meanwhile.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cpu0 := threadCPU()
		st := time.Now()
		res := fn(sctx)
		dur := time.Since(st)
		if cpu0 >= 0 {
			if cpu1 := threadCPU(); cpu1 >= cpu0 {
				if res.values == nil {
					res.values = map[string]int64{}
				}
				res.values["cpu_ns"] = cpu1 - cpu0
			}
		}
		done <- stepDone{res: res, dur: dur}
	}()
	var d stepDone
	select {
	case d = <-done:
	case e := <-a.crashed:
		return result{}, time.Since(start), e
	case <-sctx.Done():
		select {
		case d = <-done:
		case e := <-a.crashed:
			return result{}, time.Since(start), e
		case <-time.After(a.grace):
			dur := time.Since(start)
			id := ""
			select {
			case id = <-gid:
			default:
			}
			e := &deadlineError{limit: limit, stuck: true, grace: a.grace, state: a.dumpStacks(what, id)}
			return result{err: e}, dur, e
		}
	}
	if d.panic != nil {
		a.logPanic(d.panic)
		return result{}, d.dur, d.panic
	}
	if d.dur >= limit || errors.Is(d.res.err, context.DeadlineExceeded) {
		// Late: whatever it did, the step missed its deadline.
		e := &deadlineError{limit: limit}
		msg := e.Error()
		if d.res.err != nil {
			msg += "; " + d.res.err.Error()
		}
		if d.res.detail != "" {
			msg += "; " + d.res.detail
		}
		d.res.err, d.res.mismatch, d.res.detail = e, false, msg
		return d.res, d.dur, e
	}
	return d.res, d.dur, nil
}

// goroutineID returns the calling goroutine's number, as stack dumps
// show it.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := strings.Fields(string(buf))
	if len(f) >= 2 && f[0] == "goroutine" {
		return f[1]
	}
	return ""
}

// dumpStacks prints every goroutine's stack on the console, for a step
// that is stuck, and returns the state of goroutine id.
func (a *Agent) dumpStacks(what, id string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	a.logf("%s is stuck; the agent's goroutines:", what)
	a.logLines("stacks: ", buf)
	return goroutineState(buf, id)
}

// goroutineState finds goroutine id in a stack dump and returns its
// state, e.g. "syscall, 2 minutes".
func goroutineState(dump []byte, id string) string {
	if id == "" {
		return ""
	}
	head := []byte("goroutine " + id + " [")
	for _, l := range bytes.Split(dump, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(l, head); ok {
			if j := bytes.IndexByte(rest, ']'); j >= 0 {
				return string(rest[:j])
			}
		}
	}
	return ""
}

// syncWriter serializes writes: the step's goroutine streams a program's
// output while RunStage may report a deadline.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
