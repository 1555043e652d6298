package selftests

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Status is the result of one KTAP test case.
type Status string

// Statuses. NotRun is for an invocation the plan had but the run never
// reached (e.g. stage 2 after a failed kexec).
const (
	Pass   Status = "PASS"
	Fail   Status = "FAIL"
	Skip   Status = "SKIP"
	XFail  Status = "XFAIL"
	Error  Status = "ERROR"
	NotRun Status = "NOTRUN"
)

// Case is one "ok"/"not ok" line of a KTAP (or TAP 13) report.
type Case struct {
	Number int
	Name   string
	Status Status
	// Directive is the text after "# SKIP", "# XFAIL", ... if any.
	Directive string
}

// KTAP is a parsed top-level KTAP report. Subtests (indented lines) are
// not descended into.
type KTAP struct {
	// Version is the header line ("TAP version 13", "KTAP version 1").
	Version string
	// Plan is the N of "1..N", -1 when absent.
	Plan  int
	Cases []Case
	// BailOut is the message of a "Bail out!" line.
	BailOut string
	// Totals is the "# Totals: ..." line of kselftest.h, if any.
	Totals string
}

// ParseKTAP parses the output of a kselftest program.
func ParseKTAP(out string) KTAP {
	k := KTAP{Plan: -1}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "TAP version"), strings.HasPrefix(line, "KTAP version"):
			k.Version = line
		case strings.HasPrefix(line, "1.."):
			plan, _, _ := strings.Cut(line[3:], " ")
			if n, err := strconv.Atoi(plan); err == nil {
				k.Plan = n
			}
		case strings.HasPrefix(line, "Bail out!"):
			k.BailOut = strings.TrimSpace(strings.TrimPrefix(line, "Bail out!"))
		case strings.HasPrefix(line, "# Totals:"):
			k.Totals = strings.TrimSpace(strings.TrimPrefix(line, "#"))
		case strings.HasPrefix(line, "ok "), strings.HasPrefix(line, "not ok "):
			if c, ok := parseCase(line); ok {
				k.Cases = append(k.Cases, c)
			}
		}
	}
	return k
}

// parseCase parses "ok 3 name # SKIP why" and "not ok 4 name".
func parseCase(line string) (Case, bool) {
	var c Case
	rest, notOK := strings.CutPrefix(line, "not ok ")
	if !notOK {
		rest = strings.TrimPrefix(line, "ok ")
	}
	num, rest, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(num)
	if err != nil {
		return c, false
	}
	c.Number = n
	name, dir, hasDir := strings.Cut(rest, " # ")
	if !hasDir {
		// "ok 1 # SKIP reason" has no name.
		if d, ok := strings.CutPrefix(rest, "# "); ok {
			name, dir, hasDir = "", d, true
		}
	}
	c.Name = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), "- "))
	c.Status = Pass
	if notOK {
		c.Status = Fail
	}
	if hasDir {
		word, text, _ := strings.Cut(strings.TrimSpace(dir), " ")
		switch strings.ToUpper(word) {
		case "SKIP":
			c.Status, c.Directive = Skip, strings.TrimSpace(text)
		case "XFAIL":
			c.Status, c.Directive = XFail, strings.TrimSpace(text)
		case "TODO":
			c.Directive = strings.TrimSpace(dir)
		case "ERROR":
			c.Status, c.Directive = Error, strings.TrimSpace(text)
		default:
			c.Directive = strings.TrimSpace(dir)
		}
	}
	return c, true
}

// Result is one first-class selftest result: a KTAP case of one
// invocation of a selftest program, or, for an invocation that reports no
// cases (the kexec tests print only diagnostics), the invocation itself.
type Result struct {
	// Test is the selftest program, e.g. "luo_kexec_simple".
	Test string
	// Stage is the boot (0-based) the invocation ran in.
	Stage int
	// Invocation is the program's arguments, e.g. "-s 1".
	Invocation string
	// Case is the KTAP case name, or "" for a whole invocation.
	Case   string
	Status Status
	// Detail is the directive, the bail-out message or why the
	// invocation failed or did not run.
	Detail string
	// Output is the program's output (whole invocations only).
	Output string
}

// String formats r as one report line.
func (r Result) String() string {
	what := r.Test
	if r.Invocation != "" {
		what += " " + r.Invocation
	}
	if r.Case != "" {
		what += ": " + r.Case
	}
	s := fmt.Sprintf("%-6s %s (stage %d)", r.Status, what, r.Stage)
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// Results extracts the selftest results of a selftest scenario's run: one
// per KTAP case of every exec step, or one per exec step that reports no
// cases, judged by its exit status (0 pass, 4 skip, else fail), and a
// NotRun result for every planned exec step that never reported.
func Results(o *runner.Outcome) []Result {
	if o == nil || o.Plan == nil {
		return nil
	}
	events := map[[2]int]plan.Event{}
	if o.VM != nil {
		for _, ev := range o.VM.Events {
			if ev.Kind == plan.EventStep && ev.Op == plan.OpExec {
				events[[2]int{ev.Stage, ev.Step}] = ev.Event
			}
		}
	}
	var out []Result
	for si, st := range o.Plan.Stages {
		for i, step := range st.Steps {
			if step.Op != plan.OpExec {
				continue
			}
			base := Result{Test: path.Base(step.Path), Stage: si, Invocation: strings.Join(step.Args, " ")}
			ev, ok := events[[2]int{si, i}]
			if !ok {
				r := base
				r.Status, r.Detail = NotRun, "never ran"
				if o.Reason != "" {
					r.Detail += ": " + o.Reason
				}
				out = append(out, r)
				continue
			}
			out = append(out, invocationResults(base, ev)...)
		}
	}
	return out
}

func invocationResults(base Result, ev plan.Event) []Result {
	k := ParseKTAP(ev.Output)
	var out []Result
	for _, c := range k.Cases {
		r := base
		r.Case, r.Status, r.Detail = c.Name, c.Status, c.Directive
		if r.Case == "" {
			r.Case = fmt.Sprintf("#%d", c.Number)
		}
		out = append(out, r)
	}
	// The program's exit status decides too: a crash after its last
	// case, a bail-out or a missing case is a failure of its own.
	r := base
	r.Output = ev.Output
	switch ev.Outcome {
	case "ok":
		r.Status = Pass
	case "exit:4":
		r.Status = Skip
	default:
		r.Status = Fail
	}
	switch {
	case k.BailOut != "":
		r.Detail = "Bail out! " + k.BailOut
	case r.Status == Fail:
		r.Detail = ev.Detail
	}
	if k.Plan >= 0 && len(k.Cases) != k.Plan && r.Status == Pass {
		r.Status, r.Detail = Fail, fmt.Sprintf("KTAP plan 1..%d but %d cases reported", k.Plan, len(k.Cases))
	}
	if len(k.Cases) > 0 && r.Status == Pass {
		return out // the cases say it all
	}
	return append(out, r)
}
