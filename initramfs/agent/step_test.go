package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// fakeSystem is a System whose calls do what a test says.
type fakeSystem struct {
	kexec   func() error
	meminfo func() (map[string]int64, error)
}

func (f fakeSystem) Kexec(string, string) error {
	if f.kexec != nil {
		return f.kexec()
	}
	return io.EOF
}

func (f fakeSystem) Meminfo() (map[string]int64, error) {
	if f.meminfo != nil {
		return f.meminfo()
	}
	return map[string]int64{"MemTotal": 100}, nil
}

// consoleBuf is a console that tests read while the agent writes to it.
type consoleBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *consoleBuf) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *consoleBuf) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// stageRun is one RunStage of a test.
type stageRun struct {
	rec     *recorder
	console *consoleBuf
	err     error
}

// runStage runs stage 0 of steps with sys, a step deadline of timeout and
// grace after it; setup, if set, sees the agent before it runs.
func runStage(t *testing.T, timeout, grace time.Duration, sys System, steps []plan.Step, setup func(*Agent)) stageRun {
	t.Helper()
	p := &plan.Plan{Scenario: t.Name(), StepTimeoutMS: timeout.Milliseconds(), Stages: []plan.Stage{{Steps: steps}}}
	if len(steps) > 0 && steps[len(steps)-1].Op == plan.OpKexec {
		p.Stages = append(p.Stages, plan.Stage{})
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	r := stageRun{rec: &recorder{}, console: &consoleBuf{}}
	a := New(p, 0, map[string]bool{}, r.rec, sys, r.console)
	a.grace = grace
	if setup != nil {
		setup(a)
	}
	r.err = a.RunStage(t.Context())
	return r
}

// A step past its deadline fails with outcome "timeout", the stage ends
// there, and the detail says whether the step came back or is stuck.
func TestStepDeadline(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	meminfo := plan.Step{Op: plan.OpMeminfo}
	// The deadlines are short where only lateness matters and long
	// where the step must get something done first: the machine may be
	// busy.
	const short, long = 300 * time.Millisecond, 3 * time.Second
	tests := []struct {
		name           string
		timeout, grace time.Duration
		sys            System
		steps          []plan.Step
		outcome        string // of the last step event; "" for no deadline
		detail         string
		console        string
	}{
		{"in time", 10 * long, short, fakeSystem{}, []plan.Step{meminfo, meminfo}, "", "", "stage 0 step 1 meminfo : ok"},
		{"late", short, long, fakeSystem{meminfo: func() (map[string]int64, error) {
			time.Sleep(2 * short)
			return map[string]int64{"MemTotal": 1}, nil
		}}, []plan.Step{meminfo, meminfo}, "timeout", "expected ok, got timeout: did not finish within its deadline of 300ms", ""},
		{"stuck", short, short, fakeSystem{meminfo: func() (map[string]int64, error) {
			<-block
			return nil, nil
		}}, []plan.Step{meminfo, meminfo}, "timeout", "no result within its deadline of 300ms nor 300ms after; the agent's goroutine stacks are on the console; the step's goroutine is [chan receive",
			"stacks: goroutine"},
		{"program killed", long, 3 * long, fakeSystem{}, []plan.Step{{Op: plan.OpExec, Path: "/bin/sh", Args: []string{"-c", "echo first; sleep 60"}}, meminfo},
			"timeout", "did not finish within its deadline of 3s; running /bin/sh: killed at the step's deadline", "stage 0 step 0 out: first"},
		{"kexec stuck", short, short, fakeSystem{kexec: func() error { <-block; return nil }}, []plan.Step{{Op: plan.OpKexec, Kernel: "/k"}},
			"timeout", "kexec into /k failed: no result within its deadline of 300ms", "stacks: goroutine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runStage(t, tc.timeout, tc.grace, tc.sys, tc.steps, nil)
			evs := r.rec.steps()
			if !strings.Contains(r.console.String(), tc.console) {
				t.Errorf("console lacks %q:\n%s", tc.console, r.console)
			}
			if tc.outcome == "" {
				if r.err != nil || len(evs) != len(tc.steps) {
					t.Fatalf("RunStage = %v with %d step events, want nil and %d", r.err, len(evs), len(tc.steps))
				}
				return
			}
			if r.err == nil || !strings.Contains(r.err.Error(), "deadline") {
				t.Errorf("RunStage = %v, want the stage ended by the deadline", r.err)
			}
			var pe *panicError
			if errors.As(r.err, &pe) {
				t.Errorf("a deadline reported as the agent's panic: %v", r.err)
			}
			last := evs[len(evs)-1]
			if last.Step != 0 {
				t.Errorf("steps after the one that timed out ran: %+v", evs)
			}
			// A step event that failed: the host judges the step,
			// not the harness.
			if last.Outcome != tc.outcome || last.Pass || !strings.Contains(last.Detail, tc.detail) {
				t.Errorf("last step: outcome %q pass %v detail %q; want %q, fail, %q", last.Outcome, last.Pass, last.Detail, tc.outcome, tc.detail)
			}
		})
	}
}

// A panic anywhere in the agent ends the stage with a *panicError and no
// failed step event: the host must blame the agent (its verdict), never
// the kernel or the step.
func TestPanicsAreTheAgents(t *testing.T) {
	var agent *Agent
	setup := func(a *Agent) { agent = a }
	meminfo := plan.Step{Op: plan.OpMeminfo}
	tests := []struct {
		name   string
		sys    System
		want   string
		events int // at most this many step events before the stage ended
	}{
		{"step panics", fakeSystem{meminfo: func() (map[string]int64, error) { panic("boom") }},
			"agent panic in stage 0 step 0 meminfo: boom", 0},
		{"runtime error in a step", fakeSystem{meminfo: func() (map[string]int64, error) {
			var m map[string]int64
			m["x"] = 1
			return m, nil
		}}, "agent panic in stage 0 step 0 meminfo: assignment to entry in nil map", 0},
		{"background goroutine panics during a step", fakeSystem{meminfo: func() (map[string]int64, error) {
			agent.goSafe("racer w0", func() { panic("late") }, nil)
			time.Sleep(5 * time.Second)
			return nil, nil
		}}, "agent panic in racer w0: late", 0},
		{"background goroutine panics between steps", fakeSystem{meminfo: func() (map[string]int64, error) {
			done := make(chan struct{})
			agent.goSafe("hammer", func() { panic("bang") }, func() { close(done) })
			<-done
			return map[string]int64{"MemTotal": 1}, nil
		}}, "agent panic in hammer: bang", 1}, // the step reported or not: both are ready
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runStage(t, time.Minute, time.Second, tc.sys, []plan.Step{meminfo}, setup)
			var pe *panicError
			if !errors.As(r.err, &pe) || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("RunStage = %v, want a panicError containing %q", r.err, tc.want)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("the panic ended the stage only after %s", time.Since(start))
			}
			evs := r.rec.steps()
			if len(evs) > tc.events {
				t.Errorf("%d step events, want at most %d: %+v", len(evs), tc.events, evs)
			}
			for _, ev := range evs {
				if !ev.Pass {
					t.Errorf("a step was failed for the agent's panic: %+v", ev)
				}
			}
			con := r.console.String()
			if !strings.Contains(con, "LUOTEST: stack: goroutine") {
				t.Errorf("no stack on the console:\n%s", con)
			}
			// The host recognises the Go runtime's own crash report by
			// lines that start with "panic: ": a recovered panic must
			// not look like one.
			for _, l := range strings.Split(con, "\n") {
				if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
					t.Errorf("console line %q looks like an unrecovered crash", l)
				}
			}
		})
	}
}

// Every step that runs is announced first, on the console and as an
// EventStart with the step's deadline; skipped steps are not.
func TestStepsAreAnnounced(t *testing.T) {
	r := runStage(t, 90*time.Second, time.Second, fakeSystem{}, []plan.Step{
		{Op: plan.OpMeminfo, Label: "a"},
		{Op: plan.OpMeminfo, Expect: "skip"},
		{Op: plan.OpMeminfo, Label: "c"},
	}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	var got []string
	for _, ev := range r.rec.events {
		got = append(got, fmt.Sprintf("%s %d %s %s", ev.Kind, ev.Step, ev.Op, ev.Detail))
	}
	want := []string{
		"start 0 meminfo deadline 1m30s", "step 0 meminfo ",
		"step 1 meminfo not run on this kernel",
		"start 2 meminfo deadline 1m30s", "step 2 meminfo ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if con := r.console.String(); !strings.Contains(con, "LUOTEST: stage 0 step 2 meminfo label=c: start (deadline 1m30s)\n") {
		t.Errorf("console lacks the start of step 2:\n%s", con)
	}
}

// A program's output reaches the console while it runs, not when it
// exits: a hung selftest must not take its output with it.
func TestExecStreamsOutput(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	script := fmt.Sprintf("echo first; echo to-stderr >&2; while [ ! -e %s ]; do sleep 0.01; done; printf 'second\\r\\nno newline'", gate)
	con := &consoleBuf{}
	p := &plan.Plan{Scenario: t.Name(), Stages: []plan.Stage{{Steps: []plan.Step{{Op: plan.OpExec, Path: "/bin/sh", Args: []string{"-c", script}}}}}}
	rec := &recorder{}
	a := New(p, 0, nil, rec, fakeSystem{}, con)
	done := make(chan error, 1)
	go func() { done <- a.RunStage(t.Context()) }()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(con.String(), "LUOTEST: stage 0 step 0 out: to-stderr\n") || !strings.Contains(con.String(), "out: first\n") {
		select {
		case err := <-done:
			t.Fatalf("the program ended (%v) before its first lines were seen:\n%s", err, con)
		case <-deadline:
			t.Fatalf("the program's first lines did not reach the console while it ran:\n%s", con)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"out: second\n", "out: no newline\n"} {
		if !strings.Contains(con.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, con)
		}
	}
	if ev := rec.steps()[0]; !ev.Pass || ev.Output != "first\nto-stderr\nsecond\r\nno newline" {
		t.Errorf("event: pass %v output %q", ev.Pass, ev.Output)
	}
}

func TestLineStream(t *testing.T) {
	long := strings.Repeat("x", maxStreamLine)
	tests := []struct {
		name   string
		writes []string
		limit  int
		lines  string // on the console
		kept   string
	}{
		{"lines split across writes", []string{"ok 1 - a\nok ", "2 - b\n", "tail"}, 100, "> ok 1 - a\n> ok 2 - b\n> tail\n", "ok 1 - a\nok 2 - b\ntail"},
		{"CRLF", []string{"a\r\nb\r\n"}, 100, "> a\n> b\n", "a\r\nb\r\n"},
		{"empty lines kept", []string{"\n\nx\n"}, 100, "> \n> \n> x\n", "\n\nx\n"},
		{"kept output truncated, console not", []string{"abcdef\n", "gh\n"}, 4, "> abcdef\n> gh\n", "abcd\n[output truncated]\n"},
		{"a line too long is cut", []string{long + "yz\n"}, 0, "> " + long + "\n> yz\n", "\n[output truncated]\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var con bytes.Buffer
			s := &lineStream{w: &con, prefix: "> ", limit: tc.limit}
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			s.Close()
			if con.String() != tc.lines {
				t.Errorf("console %q, want %q", con.String(), tc.lines)
			}
			if s.String() != tc.kept {
				t.Errorf("kept %q, want %q", s.String(), tc.kept)
			}
		})
	}
}

func TestGoroutineState(t *testing.T) {
	dump := []byte("goroutine 1 [running]:\nmain.main()\n\ngoroutine 23 [syscall, 2 minutes]:\nsyscall.Syscall()\n\ngoroutine 230 [select]:\n")
	for id, want := range map[string]string{"23": "syscall, 2 minutes", "230": "select", "1": "running", "2": "", "": ""} {
		if got := goroutineState(dump, id); got != want {
			t.Errorf("goroutineState(%q) = %q, want %q", id, got, want)
		}
	}
	if id := goroutineID(); id == "" || strings.Trim(id, "0123456789") != "" {
		t.Errorf("goroutineID() = %q", id)
	}
	e := &deadlineError{limit: time.Second, stuck: true, state: "syscall, 1 minutes"}
	if !strings.Contains(e.Error(), "in a system call [syscall, 1 minutes]: blocked in the kernel") {
		t.Errorf("stuck in a syscall: %q", e.Error())
	}
	if outcome(fmt.Errorf("wrapped: %w", e)) != "timeout" {
		t.Errorf("outcome of a deadline = %q", outcome(e))
	}
}
