// Package console watches a guest's serial console: it timestamps lines
// for the log, remembers the last lines, and classifies kernel trouble
// (panic, Oops, BUG, WARNING, KASAN, hung task, RCU stall).
package console

import (
	"regexp"
	"strings"
)

// Kind is a class of kernel trouble seen on the console.
type Kind string

// Kinds, most severe first.
const (
	Panic      Kind = "panic"
	Oops       Kind = "oops"
	Bug        Kind = "bug"
	KASAN      Kind = "kasan"
	HungTask   Kind = "hung-task"
	RCUStall   Kind = "rcu-stall"
	Warning    Kind = "warning"
	SoftLockup Kind = "soft-lockup"
)

// Finding is one piece of trouble: its kind and the line that showed it.
type Finding struct {
	Kind Kind   `json:"kind"`
	Line string `json:"line"`
	// LineNo is the 1-based console line number.
	LineNo int `json:"line_no"`
}

// Fatal reports whether the finding stops the kernel.
func (f Finding) Fatal() bool { return f.Kind == Panic }

var rules = []struct {
	kind Kind
	re   *regexp.Regexp
}{
	{Panic, regexp.MustCompile(`Kernel panic - not syncing`)},
	{KASAN, regexp.MustCompile(`BUG: KASAN: `)},
	{Bug, regexp.MustCompile(`(kernel BUG at |BUG: (unable to handle|kernel NULL pointer|Bad page|scheduling while atomic|sleeping function|spinlock|Bad rss|workqueue lockup))`)},
	{Oops, regexp.MustCompile(`(Oops: |general protection fault)`)},
	{HungTask, regexp.MustCompile(`INFO: task .* blocked for more than`)},
	{RCUStall, regexp.MustCompile(`rcu: INFO: rcu_(sched|preempt) (self-)?detected (stalls|expedited stalls)|rcu_(sched|preempt) detected stalls`)},
	{SoftLockup, regexp.MustCompile(`(soft|hard)lockup - CPU#|BUG: soft lockup`)},
	{Warning, regexp.MustCompile(`WARNING: .* at |------------\[ cut here \]------------`)},
}

// Classify returns the finding a single console line shows, if any.
func Classify(line string) (Finding, bool) {
	for _, r := range rules {
		if r.re.MatchString(line) {
			// "cut here" precedes the real message; it alone
			// is a warning until something worse follows.
			return Finding{Kind: r.kind, Line: strings.TrimSpace(line)}, true
		}
	}
	return Finding{}, false
}

// Monitor accumulates what a console showed.
type Monitor struct {
	lines    int
	findings []Finding
	last     []string
	keep     int
}

// NewMonitor keeps the last keep lines.
func NewMonitor(keep int) *Monitor { return &Monitor{keep: keep} }

// Line feeds one console line (without newline).
func (m *Monitor) Line(line string) {
	m.lines++
	if f, ok := Classify(line); ok {
		// A "cut here" banner is only reported if nothing else
		// follows; keep it as a warning.
		f.LineNo = m.lines
		m.findings = append(m.findings, f)
	}
	if strings.TrimSpace(line) != "" {
		m.last = append(m.last, line)
		if len(m.last) > m.keep {
			m.last = m.last[len(m.last)-m.keep:]
		}
	}
}

// Findings returns everything classified so far, in console order.
func (m *Monitor) Findings() []Finding { return append([]Finding(nil), m.findings...) }

// Worst returns the most severe finding, if any.
func (m *Monitor) Worst() (Finding, bool) {
	for _, r := range rules {
		for _, f := range m.findings {
			if f.Kind == r.kind {
				return f, true
			}
		}
	}
	return Finding{}, false
}

// LastLines returns the last non-empty lines seen.
func (m *Monitor) LastLines() []string { return append([]string(nil), m.last...) }

// Lines returns the number of lines seen.
func (m *Monitor) Lines() int { return m.lines }
