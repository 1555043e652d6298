package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// execWaitDelay bounds how long, once an exec step's program has exited
// or been killed, the agent waits for the end of its output: a process
// it left behind may still hold the pipe (a daemon that kept stdout).
const execWaitDelay = 5 * time.Second

// execProgram runs path with args until it exits or ctx ends (the step's
// deadline; its process group is then killed). Its output goes to the
// console line by line as it comes, behind the step's prefix, and the
// first plan.OutputLimit bytes of it into the result. A non-zero exit
// status N becomes the outcome "exit:N".
func (a *Agent) execProgram(ctx context.Context, i int, path string, args []string) result {
	out := &lineStream{w: a.log, prefix: fmt.Sprintf("%s stage %d step %d out: ", plan.ConsolePrefix, a.stage, i), limit: plan.OutputLimit}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that the deadline kills what it
	// started too (unless that left the group, as a daemon does).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	cmd.WaitDelay = execWaitDelay
	release := a.reaper.hold()
	err := cmd.Run()
	release()
	out.Close()
	res := result{output: out.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil && err != nil:
		res.err = fmt.Errorf("running %s: killed at the step's deadline (%v): %w", path, err, ctx.Err())
	case errors.As(err, &ee) && ee.Exited():
		res.err = exitStatus(ee.ExitCode())
		res.detail = fmt.Sprintf("%s exited with status %d", path, ee.ExitCode())
	case err != nil:
		res.err = fmt.Errorf("running %s: %w", path, err)
	default:
		res.detail = fmt.Sprintf("%s exited with status 0", path)
	}
	return res
}

// killGroup kills process group pgid.
func killGroup(pgid int) error {
	err := unix.Kill(-pgid, unix.SIGKILL)
	if errors.Is(err, unix.ESRCH) {
		return os.ErrProcessDone
	}
	if err != nil {
		return fmt.Errorf("killing process group %d: %w", pgid, err)
	}
	return nil
}

// exitStatus is a program's non-zero exit status as a step outcome.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit:%d", int(e)) }

// maxStreamLine is the longest line lineStream holds back waiting for its
// newline.
const maxStreamLine = 4096

// lineStream copies a program's output to w as it comes, one line at a
// time behind prefix (so that the host never takes it for the kernel's),
// and keeps the first limit bytes.
type lineStream struct {
	w      io.Writer
	prefix string
	limit  int

	mu      sync.Mutex
	partial []byte
	kept    bytes.Buffer
	dropped bool
}

func (s *lineStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	room := max(s.limit-s.kept.Len(), 0)
	s.kept.Write(p[:min(len(p), room)])
	s.dropped = s.dropped || len(p) > room
	s.partial = append(s.partial, p...)
	rest := s.partial
	for {
		j := bytes.IndexByte(rest, '\n')
		switch {
		case j >= 0 && j <= maxStreamLine:
			s.line(rest[:j])
			rest = rest[j+1:]
		case len(rest) >= maxStreamLine:
			s.line(rest[:maxStreamLine])
			rest = rest[maxStreamLine:]
		default:
			// copy, as append does, handles the overlap
			s.partial = append(s.partial[:0], rest...)
			return len(p), nil
		}
	}
}

func (s *lineStream) line(l []byte) {
	fmt.Fprintf(s.w, "%s%s\n", s.prefix, bytes.TrimRight(l, "\r"))
}

// Close writes out a last line without newline.
func (s *lineStream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.line(s.partial)
		s.partial = s.partial[:0]
	}
}

// String returns the output kept, marked when some was dropped.
func (s *lineStream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return s.kept.String() + "\n[output truncated]\n"
	}
	return s.kept.String()
}
