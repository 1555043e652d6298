package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// execProgram runs path with args, collecting its output. A non-zero exit
// status N becomes the outcome "exit:N".
func execProgram(path string, args []string) result {
	var out bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	o := out.String()
	if len(o) > plan.OutputLimit {
		o = o[:plan.OutputLimit] + "\n[output truncated]\n"
	}
	res := result{output: o}
	var ee *exec.ExitError
	switch {
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

// exitStatus is a program's non-zero exit status as a step outcome.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit:%d", int(e)) }
