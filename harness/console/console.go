// Package console watches a guest's serial console: it timestamps lines
// for the log, remembers the last lines, and classifies kernel trouble
// (panic, Oops, BUG, KASAN, lockdep, list corruption, DEBUG_VM, hung task,
// soft lockup, RCU stall, WARNING) and the guest agent's own death (the Go
// runtime's crash report).
package console

import (
	"regexp"
	"slices"
	"strings"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Kind is a class of kernel trouble seen on the console.
type Kind string

// Kinds.
const (
	Panic Kind = "panic"
	Oops  Kind = "oops"
	// Bug is a "BUG: ..." report or a BUG_ON ("kernel BUG at"), KASAN
	// and soft lockups aside.
	Bug   Kind = "bug"
	KASAN Kind = "kasan"
	// Lockdep is a lockdep report ("WARNING: possible circular locking
	// dependency detected", ...).
	Lockdep Kind = "lockdep"
	// ListCorruption is a DEBUG_LIST report ("list_add corruption").
	ListCorruption Kind = "list-corruption"
	// DebugVM is a DEBUG_VM page dump ("page dumped because: ..."),
	// which VM_BUG_ON_PAGE/FOLIO and VM_WARN_ON_*_PAGE print first.
	DebugVM    Kind = "debug-vm"
	HungTask   Kind = "hung-task"
	RCUStall   Kind = "rcu-stall"
	SoftLockup Kind = "soft-lockup"
	Warning    Kind = "warning"
	// AgentCrash is no kernel trouble: it is the first line of the Go
	// runtime's report that the guest agent died, "panic: ..." or
	// "fatal error: ..." at the start of a line, as the runtime writes
	// it. The agent is PID 1, so the kernel's "Attempted to kill init"
	// panic follows, after the goroutine stacks: too far for the last
	// lines to hold both.
	AgentCrash Kind = "agent-crash"
)

// Finding is one piece of trouble: its kind and the line that showed it.
type Finding struct {
	Kind Kind   `json:"kind"`
	Line string `json:"line"`
	// Title is the report's title: the line without the printk
	// timestamp, e.g. "BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2".
	Title string `json:"title,omitempty"`
	// LineNo is the 1-based console line number.
	LineNo int `json:"line_no"`
}

// Fatal reports whether the finding stops the kernel.
func (f Finding) Fatal() bool { return f.Kind == Panic }

// Severe reports whether the kernel cannot be trusted after a report of
// kind k (an Oops, a BUG, a KASAN report, corrupted lists or pages): the
// run is stopped a little later, and the report overrides whatever the
// steps said.
func (k Kind) Severe() bool {
	switch k {
	case Panic, Oops, Bug, KASAN, ListCorruption, DebugVM:
		return true
	}
	return false
}

// rules classify a line; the first match wins, so specific reports come
// before the generic "BUG:" and "WARNING:" ones. A lone "cut here" banner
// is not a finding: the WARNING or BUG line that follows it is.
var rules = []struct {
	kind Kind
	re   *regexp.Regexp
}{
	{Panic, regexp.MustCompile(`Kernel panic - not syncing`)},
	{KASAN, regexp.MustCompile(`BUG: KASAN: `)},
	{SoftLockup, regexp.MustCompile(`(soft|hard)lockup - CPU#|BUG: soft lockup|Watchdog detected hard LOCKUP`)},
	{Lockdep, regexp.MustCompile(`WARNING: (possible circular locking dependency detected|possible recursive locking detected|` +
		`inconsistent lock state|possible irq lock inversion dependency detected|bad unlock balance detected|` +
		`held lock freed|lock held when returning to user space|lock held at task exit time|suspicious RCU usage|` +
		`Nested lock was not taken|\S+-safe -> \S+-unsafe lock order detected|bad contention detected)|` +
		`BUG: (MAX_LOCKDEP_\w+ too low|looking up invalid subclass|key \S+ has not been registered)`)},
	{ListCorruption, regexp.MustCompile(`list_(add|del) corruption`)},
	{DebugVM, regexp.MustCompile(`page dumped because: `)},
	{Bug, regexp.MustCompile(`kernel BUG at |\bBUG: |\bUBSAN: `)},
	{Oops, regexp.MustCompile(`Oops: |general protection fault`)},
	{HungTask, regexp.MustCompile(`INFO: task \S+ blocked for more than`)},
	{RCUStall, regexp.MustCompile(`rcu: INFO: rcu_(sched|preempt) (self-)?detected (stalls|expedited stalls)|rcu_(sched|preempt) detected stalls`)},
	// "WARNING: mm/x.c:1 at f+0x1/0x2, CPU#0: t/1" (7.x),
	// "WARNING: at f+0x1/0x2, ..." and "WARNING: CPU: 0 PID: 1 at ..."
	{Warning, regexp.MustCompile(`WARNING: (.*\s)?at \S`)},
}

// severity orders the kinds, most severe first, for Worst.
func severity() []Kind {
	return []Kind{Panic, KASAN, Bug, Oops, ListCorruption, DebugVM, Lockdep, HungTask, RCUStall, SoftLockup, Warning}
}

// goCrash is the start of the Go runtime's crash report. The kernel's
// lines carry a printk timestamp and the agent's own the console prefix,
// so neither matches.
var goCrash = regexp.MustCompile(`^(panic|fatal error): `)

// printkPrefix is a printk timestamp and caller id, "[   12.345678] " or
// "[   12.345678][    T1] ".
var printkPrefix = regexp.MustCompile(`^\s*(\[\s*\d+\.\d+\])?(\[\s*[TC]\d+\])?\s*`)

// Title is a console line without its printk timestamp and caller id.
func Title(line string) string {
	return strings.TrimSpace(printkPrefix.ReplaceAllString(line, ""))
}

// embeddedPrintk finds a kernel message that cut into an agent line: the
// serial port interleaves the two ("LUOTEST: stage 1[   14.5] BUG: ...").
var embeddedPrintk = regexp.MustCompile(`\[\s*\d+\.\d+\](\[\s*[TC]\d+\])?`)

// Classify returns the finding a single console line shows, if any. The
// agent's own lines (plan.ConsolePrefix) are user space, never kernel
// trouble, except for a kernel message that cut into one.
func Classify(line string) (Finding, bool) {
	if l := strings.TrimRight(line, "\r\n"); goCrash.MatchString(l) {
		return Finding{Kind: AgentCrash, Line: l, Title: l}, true
	}
	title := Title(line)
	if strings.HasPrefix(title, plan.ConsolePrefix) {
		loc := embeddedPrintk.FindStringIndex(title)
		if loc == nil {
			return Finding{}, false
		}
		title = Title(title[loc[0]:])
	}
	for _, r := range rules {
		if r.re.MatchString(title) {
			return Finding{Kind: r.kind, Line: strings.TrimSpace(line), Title: title}, true
		}
	}
	return Finding{}, false
}

// Primary returns the finding a verdict should name: the first kernel
// report in console order. A panic is named only when no report came
// before it, since a panic is mostly the end of the report before it
// (panic_on_warn, an Oops in init, a KASAN report with panic_on_warn).
// An AgentCrash is not a kernel report and is never named.
func Primary(findings []Finding) (Finding, bool) {
	findings = slices.DeleteFunc(slices.Clone(findings), func(f Finding) bool { return f.Kind == AgentCrash })
	panicAt := -1
	for i, f := range findings {
		if f.Kind == Panic {
			panicAt = i
			break
		}
	}
	for i, f := range findings {
		if f.Kind != Panic && (panicAt < 0 || i < panicAt) {
			return f, true
		}
	}
	if panicAt >= 0 {
		return findings[panicAt], true
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

// Line feeds one console line (without newline) and returns its finding,
// if it is one: the caller acts on a line as it comes (vm stops a kernel
// after a severe report) without classifying it again.
func (m *Monitor) Line(line string) (Finding, bool) {
	m.lines++
	f, ok := Classify(line)
	if ok {
		f.LineNo = m.lines
		m.findings = append(m.findings, f)
	}
	if strings.TrimSpace(line) != "" {
		m.last = append(m.last, line)
		if len(m.last) > m.keep {
			m.last = m.last[len(m.last)-m.keep:]
		}
	}
	return f, ok
}

// Findings returns everything classified so far, in console order.
func (m *Monitor) Findings() []Finding { return append([]Finding(nil), m.findings...) }

// Worst returns the most severe finding, if any.
func (m *Monitor) Worst() (Finding, bool) {
	for _, k := range severity() {
		for _, f := range m.findings {
			if f.Kind == k {
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
