// Package kunit reads the results of a kernel's built-in KUnit suites from
// its console. A kernel with CONFIG_KUNIT=y runs them during boot, before
// init, and prints KTAP through printk: each line carries a printk
// timestamp (and maybe a caller id), and suites and cases are indented.
package kunit

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Console is what a console log says about KUnit.
type Console struct {
	// Report is the KTAP of the first boot's KUnit run; Report.Found()
	// is false when there was none.
	Report *ktap.Report
	// Disabled is set when the kernel said "kunit: disabled"
	// (kunit.enable=0).
	Disabled bool
	// FirstLine is the 1-based console line of the KTAP version line,
	// 0 when there was none.
	FirstLine int
}

var (
	// hostStamp is the prefix vm puts on every line of console.log.
	hostStamp = regexp.MustCompile(`^\[host\s+\d+\.\d+\] `)
	// printkStamp is a printk timestamp and optional caller id,
	// followed by the one space printk puts before the message.
	printkStamp = regexp.MustCompile(`^\[\s*\d+\.\d+\](\[\s*[TC]\d+\])? ?`)
)

// strip removes the host stamp and the printk prefix of a console line,
// keeping the message's own indentation.
func strip(line string) string {
	line = strings.TrimRight(line, "\r\n")
	line = hostStamp.ReplaceAllString(line, "")
	return printkStamp.ReplaceAllString(line, "")
}

// FromConsole reads a console log (vm's console.log, or raw serial
// output) and returns the KUnit results the first kernel booted in it
// printed. The KUnit executor starts with an unindented "KTAP version 1"
// and runs before init, so the document ends where init starts ("Run
// /init as init process"), where the agent speaks, or where the next
// kernel's banner appears; lines of other kernel messages in between are
// noise the KTAP parser skips.
func FromConsole(r io.Reader) (*Console, error) {
	c := &Console{}
	var doc []string
	boots := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strip(sc.Text())
		if strings.Contains(line, "Linux version ") {
			boots++
			if boots > 1 {
				break
			}
		}
		if strings.HasPrefix(strings.TrimSpace(line), "kunit: disabled") {
			c.Disabled = true
		}
		if c.FirstLine == 0 {
			if line == "KTAP version 1" {
				c.FirstLine = n
				doc = append(doc, line)
			}
			continue
		}
		if strings.Contains(line, " as init process") ||
			strings.HasPrefix(line, plan.ConsolePrefix) {
			break
		}
		doc = append(doc, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the console log for KUnit output: %w", err)
	}
	rep, err := ktap.Parse(strings.NewReader(strings.Join(doc, "\n")))
	if err != nil {
		return nil, fmt.Errorf("parsing the console's KUnit output: %w", err)
	}
	c.Report = rep
	return c, nil
}

// Failure describes what failed in a KUnit report, in one line ("" when
// everything passed or was skipped): the first failed case by its path
// ("suite/case"), how many more failed, and what did not add up.
func Failure(rep *ktap.Report) string {
	var failed []ktap.Result
	for _, r := range ktap.Flatten(rep.Results, "/") {
		if r.Status == ktap.Fail || r.Status == ktap.Error {
			failed = append(failed, r)
		}
	}
	var parts []string
	if len(failed) > 0 {
		f := failed[0]
		s := fmt.Sprintf("KUnit case %s failed", f.Name)
		if f.Status == ktap.Error && f.Reason != "" {
			s += ": " + f.Reason
		} else if d := firstDiagnostic(f.Diagnostics); d != "" {
			s += ": " + d
		}
		if len(failed) > 1 {
			s += fmt.Sprintf(" (and %d more)", len(failed)-1)
		}
		parts = append(parts, s)
	}
	if rep.Bailed {
		parts = append(parts, "KUnit bailed out: "+rep.BailReason)
	}
	if len(failed) == 0 && len(rep.Problems) > 0 {
		parts = append(parts, "KUnit output incomplete: "+rep.Problems[0])
	}
	return strings.Join(parts, "; ")
}

// firstDiagnostic picks the line of a failed case's diagnostics that says
// what failed ("EXPECTATION FAILED at file:line").
func firstDiagnostic(diags []string) string {
	for _, d := range diags {
		if strings.Contains(d, "FAILED at ") {
			_, after, ok := strings.Cut(d, ": ")
			if ok && strings.Contains(after, "FAILED at ") {
				return strings.TrimSpace(after)
			}
			return strings.TrimSpace(d)
		}
	}
	return ""
}
