package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// JUnit XML, in the dialect CI systems (Jenkins, GitLab, GitHub
// actions) read: <testsuites> around one <testsuite>.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is element text kept readable (newlines and all) in CDATA.
type junitText struct {
	Text string `xml:",cdata"`
}

// text wraps s for <system-out>, or returns nil for nothing.
func text(s string) *junitText {
	if s == "" {
		return nil
	}
	return &junitText{Text: xmlSafe(s)}
}

// xmlSafe replaces what XML 1.0 cannot carry even escaped (control
// characters such as the console's ESC, invalid UTF-8) with U+FFFD.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

func problem(message, typ, body string) *junitProblem {
	return &junitProblem{Message: xmlSafe(message), Type: typ, Text: xmlSafe(body)}
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// seconds formats a duration the JUnit way.
func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// className is the JUnit class of a suite's test cases.
func className(suite string) string {
	if suite == "" {
		return "luotest"
	}
	return "luotest." + suite
}

// WriteJUnit writes outs as JUnit XML: one <testsuite>, one <testcase>
// per scenario (classname "luotest.<suite>", name the scenario). FAIL
// and TIMEOUT are <failure> (type "fail" or "timeout"), ERROR is
// <error>, SKIP is <skipped>; the message is the outcome's reason and
// the body says why in more detail. <system-out> holds the step list
// (op, arguments, expectation, outcome, pass, detail), the timings, the
// console log and the command that reruns the scenario.
//
// Every KTAP result found in an exec step's output (a kernel selftest)
// becomes a <testcase> of its own named "<scenario>/<test>" (nested
// subtests are joined with "/"; with several exec steps, the step name
// is inserted after the scenario to keep names unique).
func WriteJUnit(w io.Writer, suite string, outs []*runner.Outcome) error {
	cls := className(suite)
	ts := junitSuite{Name: cls}
	var total time.Duration
	for _, o := range outs {
		total += o.Elapsed
		ss := steps(o)
		ts.Cases = append(ts.Cases, scenarioCase(cls, o, ss))
		ts.Cases = append(ts.Cases, ktapCases(cls, o, ss)...)
	}
	for _, c := range ts.Cases {
		ts.Tests++
		switch {
		case c.Failure != nil:
			ts.Failures++
		case c.Error != nil:
			ts.Errors++
		case c.Skipped != nil:
			ts.Skipped++
		}
	}
	ts.Time = seconds(total)
	doc := junitSuites{Name: "luotest", Tests: ts.Tests, Failures: ts.Failures, Errors: ts.Errors,
		Skipped: ts.Skipped, Time: ts.Time, Suites: []junitSuite{ts}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing JUnit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JUnit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("writing JUnit: %w", err)
	}
	return nil
}

func scenarioCase(cls string, o *runner.Outcome, ss []step) junitCase {
	c := junitCase{Classname: cls, Name: xmlSafe(o.Scenario), Time: seconds(o.Elapsed), SystemOut: text(scenarioText(o, ss))}
	switch o.Verdict {
	case runner.Pass:
	case runner.Skip:
		c.Skipped = &junitSkipped{Message: xmlSafe(o.Reason)}
	case runner.Error:
		c.Error = problem(o.Reason, "error", whyText(o, ss))
	case runner.Timeout:
		c.Failure = problem(o.Reason, "timeout", whyText(o, ss))
	default:
		c.Failure = problem(o.Reason, "fail", whyText(o, ss))
	}
	return c
}

// whyText is the body of a failure: the reason, the steps that missed
// their expectation, where to look and how to rerun.
func whyText(o *runner.Outcome, ss []step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", o.Verdict, o.Reason)
	if o.Blame != "" {
		fmt.Fprintf(&b, "blame: %s\n", o.Blame)
	}
	for _, s := range ss {
		if s.Reported && !s.Pass {
			fmt.Fprintf(&b, "failed step: %s\n", s.Line())
		}
	}
	writeWhere(&b, o)
	if o.VM != nil && len(o.VM.LastLines) > 0 {
		b.WriteString("last console lines:\n")
		for _, l := range o.VM.LastLines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

func writeWhere(b *strings.Builder, o *runner.Outcome) {
	if o.VM != nil && o.VM.ConsoleLog != "" {
		fmt.Fprintf(b, "console: %s\n", o.VM.ConsoleLog)
	}
	if o.VM != nil && o.VM.EventsLog != "" {
		fmt.Fprintf(b, "events: %s\n", o.VM.EventsLog)
	}
	if o.Dir != "" {
		fmt.Fprintf(b, "dir: %s\n", o.Dir)
	}
	if o.Rerun != "" {
		fmt.Fprintf(b, "rerun: %s\n", o.Rerun)
	}
}

// scenarioText is the <system-out> of a scenario: what ran, step by
// step, and how long each phase took.
func scenarioText(o *runner.Outcome, ss []step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario: %s\nverdict: %s\n", o.Scenario, o.Verdict)
	if o.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", o.Reason)
	}
	if o.Blame != "" {
		fmt.Fprintf(&b, "blame: %s\n", o.Blame)
	}
	fmt.Fprintf(&b, "elapsed: %s\n", o.Elapsed.Round(time.Millisecond))
	if o.VM != nil && o.VM.Accel != "" {
		fmt.Fprintf(&b, "accel: %s\n", o.VM.Accel)
	}
	fmt.Fprintf(&b, "flavour: %s\n", o.Flavour)
	if o.VM != nil && o.VM.SysRq != nil {
		sr := o.VM.SysRq
		fmt.Fprintf(&b, "sysrq: on %s at %s, keys %s, waited %s for %d console line(s)",
			sr.Why, sr.At.Round(time.Millisecond), strings.Join(sr.Keys, ","), sr.Waited.Round(time.Millisecond), sr.Lines)
		if sr.Err != "" {
			fmt.Fprintf(&b, "; %s", sr.Err)
		}
		b.WriteString("\n")
	}
	if o.KUnit != nil {
		fmt.Fprintf(&b, "kunit: %d case(s) from the console\n", len(ktap.Flatten(o.KUnit.Results, "/")))
		for _, p := range o.KUnit.Problems {
			fmt.Fprintf(&b, "  KTAP problem: %s\n", p)
		}
	}
	writeWhere(&b, o)
	for _, k := range boots(o) {
		fmt.Fprintf(&b, "kernel of stage %d: %s %s", k.Stage, k.Name, k.Release)
		if k.Uname != "" {
			fmt.Fprintf(&b, " (agent saw %s)", k.Uname)
		}
		b.WriteString("\n")
	}
	ph := Phases(o)
	if ph.Boot > 0 {
		fmt.Fprintf(&b, "boot (host, QEMU start to agent): %s\n", ph.Boot.Round(time.Millisecond))
	}
	kb := PreservedKB(o)
	for i, h := range ph.Hops {
		fmt.Fprintf(&b, "hop %d: preserve %s, reboot %s, kernel to agent %s, retrieve %s, verify %s, blackout %s",
			h.Hop, h.Preserve, h.Reboot, h.KernelToAgent, h.Retrieve, h.Verify, h.Blackout)
		if i < len(kb) && kb[i] >= 0 {
			fmt.Fprintf(&b, ", MemTotal drop %d kB", kb[i])
		}
		b.WriteString("\n")
	}
	if len(ss) > 0 {
		b.WriteString("steps:\n")
	}
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s\n", s.Line())
		if s.KTAP != nil {
			for _, p := range s.KTAP.Problems {
				fmt.Fprintf(&b, "    KTAP problem: %s\n", p)
			}
		}
		if s.Op == plan.OpExec && s.Output != "" {
			b.WriteString("    output:\n")
			for _, l := range strings.Split(strings.TrimRight(s.Output, "\n"), "\n") {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}
	return b.String()
}

// ktapCases turns the KTAP results of o's exec steps, and the KUnit
// results of a KUnit scenario, into test cases.
func ktapCases(cls string, o *runner.Outcome, ss []step) []junitCase {
	var withKTAP []*step
	for i := range ss {
		if ss[i].KTAP != nil {
			withKTAP = append(withKTAP, &ss[i])
		}
	}
	var cases []junitCase
	for _, s := range withKTAP {
		prefix := o.Scenario + "/"
		if len(withKTAP) > 1 {
			prefix += s.Name() + "/"
		}
		cases = append(cases, reportCases(cls, prefix, execName(s), s.KTAP, s.Duration, s.Output)...)
	}
	if o.KUnit != nil && (o.KUnit.Plan != 0 || len(o.KUnit.Results) > 0) {
		// Each KUnit case is "<scenario>/<suite>/<case>"; a kernel
		// with no suites built in ("1..0") adds none.
		cases = append(cases, reportCases(cls, o.Scenario+"/", "kunit", o.KUnit, 0, "")...)
	}
	return cases
}

// reportCases turns the leaves of a KTAP report into test cases named
// prefix+path; a report without leaves is one case called prefix+name.
func reportCases(cls, prefix, name string, rep *ktap.Report, d time.Duration, output string) []junitCase {
	var cases []junitCase
	leaves := ktap.Flatten(rep.Results, "/")
	if len(leaves) == 0 {
		// "1..0 # SKIP reason": the whole program skipped.
		c := junitCase{Classname: cls, Name: xmlSafe(prefix + name), Time: seconds(d)}
		switch {
		case rep.SkipAll:
			c.Skipped = &junitSkipped{Message: xmlSafe(rep.SkipReason)}
		case rep.Plan == 0:
		default:
			c.Error = problem("KTAP output without results", "ktap-error", output)
		}
		return append(cases, c)
	}
	for _, r := range leaves {
		c := junitCase{Classname: cls, Name: xmlSafe(prefix + r.Name), Time: "0"}
		body := strings.Join(r.Diagnostics, "\n")
		msg := r.Reason
		if msg == "" {
			msg = "not ok"
		}
		switch r.Status {
		case ktap.Pass:
		case ktap.XFail:
			body = strings.TrimSpace("XFAIL " + r.Reason + "\n" + body)
		case ktap.Skip:
			c.Skipped = &junitSkipped{Message: xmlSafe(r.Reason)}
		case ktap.Fail:
			c.Failure = problem(msg, "ktap", body)
		default:
			typ := "ktap-error"
			if r.Directive == ktap.DirTimeout {
				typ = "timeout"
			}
			c.Error = problem(msg, typ, body)
		}
		if c.Failure == nil && c.Error == nil {
			c.SystemOut = text(body)
		}
		cases = append(cases, c)
	}
	return cases
}
