package agent

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// reapPoll is how often the reaper looks for exited orphans even without
// a SIGCHLD.
const reapPoll = 5 * time.Second

// Reaper waits for the agent's orphans. As PID 1 the agent inherits every
// process whose parent exits first (a selftest's forked helper), and each
// of them that exits stays a zombie until PID 1 waits for it. Reaping is
// held off while the agent runs a program of its own, whose exit status
// os/exec must collect itself: waiting for any child then would steal it.
type Reaper struct {
	mu sync.Mutex
}

// hold keeps the reaper from waiting for children until release is
// called.
func (r *Reaper) hold() (release func()) {
	r.mu.Lock()
	return r.mu.Unlock
}

// Reaped is a child the reaper waited for.
type Reaped struct {
	PID    int
	Status unix.WaitStatus
}

// ReapNow waits, without blocking, for every child that has exited.
func (r *Reaper) ReapNow() []Reaped {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Reaped
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			// ECHILD: no children; 0: none has exited.
			return out
		}
		out = append(out, Reaped{PID: pid, Status: ws})
	}
}

// Run reaps on every SIGCHLD, and every reapPoll in case one was missed,
// until ctx ends. report, if not nil, sees each child reaped.
func (r *Reaper) Run(ctx context.Context, report func(Reaped)) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	defer signal.Stop(sig)
	t := time.NewTicker(reapPoll)
	defer t.Stop()
	for {
		for _, c := range r.ReapNow() {
			if report != nil {
				report(c)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-t.C:
		}
	}
}
