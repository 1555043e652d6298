package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// runFiles are what a run writes: console.log and events.jsonl in its
// directory, and the QMP socket in a directory of its own (a Unix socket's
// path must be short).
type runFiles struct {
	console, events *os.File
	sockDir         string
}

func createRunFiles(dir string) (*runFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	f := &runFiles{}
	var err error
	if f.console, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
		return nil, fmt.Errorf("creating console log: %w", err)
	}
	if f.events, err = os.Create(filepath.Join(dir, "events.jsonl")); err != nil {
		f.close()
		return nil, fmt.Errorf("creating events log: %w", err)
	}
	if f.sockDir, err = os.MkdirTemp("", "luoqmp"); err != nil {
		f.close()
		return nil, fmt.Errorf("creating QMP socket directory: %w", err)
	}
	return f, nil
}

func (f *runFiles) sock() string { return filepath.Join(f.sockDir, "qmp.sock") }

// close closes the logs and removes the socket's directory.
func (f *runFiles) close() error {
	var errs []error
	for _, c := range []*os.File{f.console, f.events} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	if f.sockDir != "" {
		errs = append(errs, os.RemoveAll(f.sockDir))
	}
	return errors.Join(errs...)
}
