package agent

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// subreaper makes the test process inherit the orphans of its
// descendants, as PID 1 does in the guest.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// procState returns the state letter of pid ("Z" for a zombie), "" when
// there is no such process.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+3 <= len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// A selftest that leaves a child behind: the child is reparented to the
// agent and, once it exits, reaped instead of staying a zombie.
func TestReaperReapsOrphans(t *testing.T) {
	subreaper(t)
	evs := run(t, nil, []plan.Step{{Op: plan.OpExec, Path: "/bin/sh", Args: []string{"-c", "sleep 0.2 </dev/null >/dev/null 2>&1 & echo $!"}}})
	pid, err := strconv.Atoi(strings.TrimSpace(evs[0].Output))
	if err != nil {
		t.Fatalf("orphan pid from %q: %v", evs[0].Output, err)
	}
	var r Reaper
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, c := range r.ReapNow() {
			if c.PID == pid {
				if !c.Status.Exited() || c.Status.ExitStatus() != 0 {
					t.Errorf("orphan %d: wait status %#x", pid, uint32(c.Status))
				}
				if st := procState(pid); st != "" {
					t.Errorf("orphan %d still there after reaping, state %s", pid, st)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d never reaped (state %q)", pid, procState(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The reaper running all along must not steal the exit status of the
// programs the agent runs.
func TestReaperLeavesProgramsExitStatus(t *testing.T) {
	subreaper(t)
	p := &plan.Plan{Scenario: t.Name(), Stages: []plan.Stage{{}}}
	for i := range 20 {
		// Each also leaves an orphan for the reaper to take.
		p.Stages[0].Steps = append(p.Stages[0].Steps, plan.Step{Op: plan.OpExec, Path: "/bin/sh",
			Args: []string{"-c", "(exit 0) & exit " + strconv.Itoa(i%4)}, Expect: []string{"ok", "exit:1", "exit:2", "exit:3"}[i%4]})
	}
	rec := &recorder{}
	con := &consoleBuf{}
	a := New(p, 0, nil, rec, fakeSystem{}, con)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); a.ReapOrphans(ctx) }()
	err := a.RunStage(t.Context())
	cancel()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range rec.steps() {
		if !ev.Pass {
			t.Errorf("step %d: %s, want %s: %s", ev.Step, ev.Outcome, ev.Expect, ev.Detail)
		}
	}
	a.reaper.ReapNow()
	if !strings.Contains(con.String(), "LUOTEST: reaped orphan pid ") {
		t.Logf("no orphan reaped while the stage ran (they may all have exited after it):\n%s", con)
	}
}
