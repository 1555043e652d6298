package vm

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/hugelgupf/vmtest/qemu/qevent"
)

// exitError runs sh -c script for the *exec.ExitError it ends with.
func exitError(t *testing.T, script string) error {
	t.Helper()
	err := exec.Command("sh", "-c", script).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("sh -c %q: %v, want an exit error", script, err)
	}
	return err
}

func TestQEMUFailure(t *testing.T) {
	stopped, stop := context.WithCancel(context.Background())
	stop()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		exitErr error
		done    bool
		want    string // "": no failure
	}{
		{"exit status", context.Background(), exitError(t, "exit 1"), false, "QEMU exited with exit status 1 before the guest finished; its last output: qemu: could not load kernel"},
		{"signal the harness did not send", context.Background(), exitError(t, "kill -SEGV $$"), false, "QEMU exited with signal: segmentation fault"},
		{"killed by the harness", stopped, exitError(t, "kill -KILL $$"), false, ""},
		{"exit after the guest finished", context.Background(), exitError(t, "exit 1"), true, ""},
		{"clean exit", context.Background(), nil, false, ""},
		{"clean exit, agent channel not closed", context.Background(), qevent.ErrEventChannelMissingDoneEvent, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &Result{ExitErr: tc.exitErr, LastLines: []string{"qemu: could not load kernel"}}
			if tc.done {
				res.Done = &TimedEvent{}
			}
			err := qemuFailure(tc.ctx, res)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("qemuFailure = %v, want %q", err, tc.want)
			}
			if err != nil && !errors.Is(err, tc.exitErr) {
				t.Errorf("%v does not wrap %v", err, tc.exitErr)
			}
		})
	}
}
