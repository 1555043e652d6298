package report

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/runner"
)

// WriteKTAP writes outs as KTAP v1: one test per scenario, one subtest
// per planned or reported step, and the KTAP results of an exec step as
// that step's subtests. A TIMEOUT scenario carries the TIMEOUT
// directive, an ERROR one ERROR; a step the agent never reported is an
// error, not a pass.
func WriteKTAP(w io.Writer, suite string, outs []*runner.Outcome) error {
	var rs []ktap.Result
	for _, o := range outs {
		rs = append(rs, scenarioKTAP(o))
	}
	if err := ktap.Write(w, className(suite), rs); err != nil {
		return fmt.Errorf("writing KTAP results: %w", err)
	}
	return nil
}

func scenarioKTAP(o *runner.Outcome) ktap.Result {
	r := ktap.Result{Name: o.Scenario, Reason: o.Reason}
	switch o.Verdict {
	case runner.Pass:
		r.Status = ktap.Pass
	case runner.Skip:
		r.Status = ktap.Skip
	case runner.Timeout:
		r.Status, r.Directive = ktap.Error, ktap.DirTimeout
	case runner.Error:
		r.Status, r.Directive = ktap.Error, ktap.DirError
	default:
		r.Status = ktap.Fail
	}
	if o.Blame != "" {
		r.Diagnostics = append(r.Diagnostics, "blame: "+o.Blame)
	}
	if o.Verdict != runner.Pass && o.Verdict != runner.Skip {
		if o.VM != nil && o.VM.ConsoleLog != "" {
			r.Diagnostics = append(r.Diagnostics, "console: "+o.VM.ConsoleLog)
		}
		if o.Rerun != "" {
			r.Diagnostics = append(r.Diagnostics, "rerun: "+o.Rerun)
		}
	}
	for _, s := range steps(o) {
		sr := ktap.Result{Name: s.Name()}
		switch {
		case !s.Reported:
			sr.Status, sr.Directive, sr.Reason = ktap.Error, ktap.DirError, "never reported"
		case s.Pass:
			sr.Status = ktap.Pass
		default:
			sr.Status = ktap.Fail
		}
		if !s.Pass || s.Detail != "" {
			sr.Diagnostics = append(sr.Diagnostics, s.Line())
		}
		if s.KTAP != nil {
			sr.Subtests = s.KTAP.Results
			for _, p := range s.KTAP.Problems {
				sr.Diagnostics = append(sr.Diagnostics, "KTAP problem: "+p)
			}
		}
		r.Subtests = append(r.Subtests, sr)
	}
	if o.KUnit != nil {
		// The KUnit suites the kernel ran at boot, as it printed them.
		kr := ktap.Result{Name: "kunit", Status: ktap.Pass, Subtests: o.KUnit.Results}
		if !o.KUnit.Passed() {
			kr.Status = ktap.Fail
		}
		for _, p := range o.KUnit.Problems {
			kr.Diagnostics = append(kr.Diagnostics, "KTAP problem: "+p)
		}
		r.Subtests = append(r.Subtests, kr)
	}
	return r
}

// Result file names WriteAll writes.
const (
	JUnitFile = "results.xml"
	JSONFile  = "results.json"
	KTAPFile  = "results.ktap"
)

// WriteAll writes results.xml (JUnit), results.json and results.ktap
// into dir, each through a temporary file renamed into place. The JUnit
// and KTAP suite is run.Suite (classname "luotest.<suite>", or
// "luotest" when it is empty).
func WriteAll(dir string, run RunInfo, outs []*runner.Outcome) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating results directory: %w", err)
	}
	suite := run.Suite
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{JUnitFile, func(w io.Writer) error { return WriteJUnit(w, suite, outs) }},
		{JSONFile, func(w io.Writer) error { return WriteJSON(w, run, outs) }},
		{KTAPFile, func(w io.Writer) error { return WriteKTAP(w, suite, outs) }},
	} {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
