// Package ktap reads and writes KTAP v1, the test output format of the
// kernel's selftests (kselftest) and KUnit, and its ancestor TAP 13.
//
// The parser is lenient where kernel output is untidy and strict where
// leniency would hide a failure:
//
//   - lines that are not KTAP (program noise, console chatter) are
//     skipped; a printk timestamp ("[    1.234567] ") and the harness's
//     console-log stamp ("[host    1.234] ") are stripped first;
//   - nested subtests are found by indentation, whatever its width (KTAP
//     uses 2 spaces, KUnit 4);
//   - kselftest's runner nests a test's own KTAP inside "# " diagnostic
//     lines; such output is parsed into Subtests as well;
//   - "# Subtest: name" names a block, "# Totals: pass:X fail:Y ..." is
//     read into Totals and checked against the results;
//   - a plan that promises more tests than were reported (a crash, a
//     truncated log, "Bail out!") yields an Error result for every
//     missing test, so a test that died never reads as a pass.
package ktap

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Status is the outcome of one test.
type Status string

// Statuses. The zero Status is none of them; Write renders it as an
// error.
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Skip  Status = "skip"
	XFail Status = "xfail"
	Error Status = "error"
)

// Directives recognised after "#" on a result line.
const (
	DirSkip    = "SKIP"
	DirTodo    = "TODO"
	DirXFail   = "XFAIL"
	DirXPass   = "XPASS"
	DirTimeout = "TIMEOUT"
	DirError   = "ERROR"
)

// Result is one test result line, with the diagnostics that preceded it
// and its subtests.
type Result struct {
	Name string `json:"name"`
	// Number is the test number from the result line; 0 for results the
	// parser made up (a subtest block without a result line, a bail
	// out without a plan).
	Number int    `json:"number"`
	Status Status `json:"status"`
	// Directive is the upper-case directive ("SKIP", "XFAIL",
	// "TIMEOUT", ...) or "" when the line had none.
	Directive string `json:"directive,omitempty"`
	// Reason is the text after the directive (or after "#" when the
	// text is not a known directive).
	Reason string `json:"reason,omitempty"`
	// Diagnostics are the "#" lines before the result line, without
	// the "#" and one following space.
	Diagnostics []string `json:"diagnostics,omitempty"`
	Subtests    []Result `json:"subtests,omitempty"`
}

// Totals are the counts of a kselftest "# Totals:" line.
type Totals struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	XFail int `json:"xfail"`
	XPass int `json:"xpass"`
	Skip  int `json:"skip"`
	Error int `json:"error"`
}

// Report is a parsed KTAP document.
type Report struct {
	// Version is the version line ("KTAP version 1", "TAP version
	// 13"), or "" when there was none.
	Version string `json:"version,omitempty"`
	// Name is the top-level "# Subtest:" name, if any.
	Name string `json:"name,omitempty"`
	// Plan is the number of tests the top-level plan announced, or -1
	// when there was no plan.
	Plan int `json:"plan"`
	// SkipAll is set by a "1..0 # SKIP reason" plan; SkipReason holds
	// the reason.
	SkipAll    bool     `json:"skip_all,omitempty"`
	SkipReason string   `json:"skip_reason,omitempty"`
	Results    []Result `json:"results,omitempty"`
	// Totals is the top-level "# Totals:" line, if any.
	Totals *Totals `json:"totals,omitempty"`
	// Bailed is set when a "Bail out!" line was seen at any level;
	// BailReason is the first one's text.
	Bailed     bool   `json:"bailed,omitempty"`
	BailReason string `json:"bail_reason,omitempty"`
	// Diagnostics are top-level "#" lines no result line claimed.
	Diagnostics []string `json:"diagnostics,omitempty"`
	// Problems describe what did not add up: missing or extra
	// results, a missing plan, totals that disagree. Missing results
	// are also present in Results with Status Error.
	Problems []string `json:"problems,omitempty"`
}

// Found reports whether the input contained any KTAP at all.
func (r *Report) Found() bool {
	if r.Version != "" || r.Plan >= 0 {
		return true
	}
	for _, res := range r.Results {
		if res.Number > 0 {
			return true
		}
	}
	return false
}

// Passed reports whether every test passed, was skipped or failed
// expectedly, nothing was missing and nothing bailed out.
func (r *Report) Passed() bool {
	if r.Bailed || len(r.Problems) > 0 {
		return false
	}
	for _, res := range Flatten(r.Results, "/") {
		if res.Status != Pass && res.Status != Skip && res.Status != XFail {
			return false
		}
	}
	return true
}

var (
	prefixRE  = regexp.MustCompile(`^(?:\[host\s+\d+\.\d+\] )?(?:\[\s*\d+\.\d+\] ?)?`)
	versionRE = regexp.MustCompile(`^(K?TAP version \d+)\s*$`)
	planRE    = regexp.MustCompile(`^1\.\.(\d+)\s*(?:#\s*(.*?))?\s*$`)
	resultRE  = regexp.MustCompile(`^(ok|not ok)\s+(\d+)(?:\s+(.*?))?\s*$`)
	bailRE    = regexp.MustCompile(`^Bail out!\s*(.*?)\s*$`)
	totalsRE  = regexp.MustCompile(`^Totals:\s*(.*)$`)
)

type kind int

const (
	kNoise kind = iota
	kVersion
	kPlan
	kResult
	kDiag
	kBail
)

// line is one classified input line.
type line struct {
	no     int
	indent int
	kind   kind
	// text is the version, the diagnostic text or the bail-out reason.
	text string
	// result
	ok                      bool
	num                     int
	name, directive, reason string
	// plan
	plan int
}

func classify(no int, raw string) line {
	raw = strings.TrimRight(raw, "\r\n")
	raw = prefixRE.ReplaceAllString(raw, "")
	body := strings.TrimLeft(raw, " \t")
	l := line{no: no, indent: len(raw) - len(body)}
	body = strings.TrimRight(body, " \t")
	if m := versionRE.FindStringSubmatch(body); m != nil {
		l.kind, l.text = kVersion, m[1]
		return l
	}
	if m := planRE.FindStringSubmatch(body); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return l
		}
		l.kind, l.plan = kPlan, n
		l.directive, l.reason = splitDirective(m[2])
		return l
	}
	if m := resultRE.FindStringSubmatch(body); m != nil {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return l
		}
		l.kind, l.ok, l.num = kResult, m[1] == "ok", n
		rest := m[3]
		var dtext string
		switch {
		case strings.HasPrefix(rest, "#"):
			rest, dtext = "", rest[1:]
		default:
			if i := strings.Index(rest, " #"); i >= 0 {
				rest, dtext = rest[:i], rest[i+2:]
			}
		}
		rest = strings.TrimSpace(rest)
		if rest == "-" {
			rest = ""
		}
		l.name = strings.TrimSpace(strings.TrimPrefix(rest, "- "))
		l.directive, l.reason = splitDirective(dtext)
		return l
	}
	if m := bailRE.FindStringSubmatch(body); m != nil {
		l.kind, l.text = kBail, m[1]
		return l
	}
	if strings.HasPrefix(body, "#") {
		l.kind = kDiag
		// Keep the indentation after "# ": nested KTAP inside
		// diagnostics (kselftest's runner) depends on it.
		t := strings.TrimPrefix(body[1:], " ")
		l.text = strings.TrimRight(t, " \t")
		return l
	}
	return l
}

// splitDirective splits the text after "#" into a known directive and
// its reason; unknown text is all reason.
func splitDirective(text string) (directive, reason string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", ""
	}
	word, rest, _ := strings.Cut(text, " ")
	up := strings.ToUpper(word)
	for _, d := range []string{DirSkip, DirTodo, DirXFail, DirXPass, DirTimeout, DirError} {
		if strings.HasPrefix(up, d) {
			return d, strings.TrimSpace(rest)
		}
	}
	return "", text
}

// status maps a result line to a Status.
func status(ok bool, directive string) Status {
	switch directive {
	case DirSkip:
		return Skip
	case DirXFail:
		return XFail
	case DirTimeout, DirError:
		return Error
	case DirTodo:
		if !ok {
			return XFail
		}
	}
	if ok {
		return Pass
	}
	return Fail
}

// block is one level of nesting being parsed.
type block struct {
	indent     int
	start      int
	name       string
	version    string
	plan       int
	skipAll    bool
	skipReason string
	results    []Result
	pendDiag   []string
	pendSub    *closed
	totals     *Totals
	bailed     bool
	bailReason string
}

// closed is a finished block waiting for its parent's result line.
type closed struct {
	name    string
	results []Result
	diags   []string
}

type parser struct {
	stack    []*block
	problems []string
	bailed   bool
	bailWhy  string
}

// Parse reads a KTAP document. It fails only when r cannot be read;
// whether r held KTAP at all is Report.Found.
func Parse(r io.Reader) (*Report, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading KTAP: %w", err)
	}
	return parseLines(lines), nil
}

func parseLines(lines []string) *Report {
	p := &parser{}
	for i, raw := range lines {
		l := classify(i+1, raw)
		if l.kind == kNoise {
			continue
		}
		if len(p.stack) == 0 {
			p.stack = append(p.stack, newBlock(l.indent, l.no))
		}
		for len(p.stack) > 1 && l.indent < p.top().indent {
			p.pop()
		}
		if root := p.stack[0]; len(p.stack) == 1 && l.indent < root.indent {
			root.indent = l.indent
		}
		if l.indent > p.top().indent {
			p.stack = append(p.stack, newBlock(l.indent, l.no))
		}
		p.handle(p.top(), l)
	}
	for len(p.stack) > 1 {
		p.pop()
	}
	rep := &Report{Plan: -1}
	if len(p.stack) == 1 {
		root := p.stack[0]
		c := p.close(root, true)
		rep.Version, rep.Name, rep.Plan = root.version, root.name, root.plan
		rep.SkipAll, rep.SkipReason = root.skipAll, root.skipReason
		rep.Results, rep.Diagnostics, rep.Totals = c.results, c.diags, root.totals
	}
	rep.Results = p.expand(rep.Results, "")
	rep.Bailed, rep.BailReason = p.bailed, p.bailWhy
	rep.Problems = p.problems
	return rep
}

func newBlock(indent, start int) *block { return &block{indent: indent, start: start, plan: -1} }

func (p *parser) top() *block { return p.stack[len(p.stack)-1] }

// pop closes the innermost block and hands it to its parent, where the
// next result line will claim it.
func (p *parser) pop() {
	b := p.top()
	p.stack = p.stack[:len(p.stack)-1]
	c := p.close(b, false)
	parent := p.top()
	if parent.pendSub != nil {
		parent.results = append(parent.results, orphan(parent.pendSub))
	}
	parent.pendSub = &c
}

// orphan turns a subtest block no result line claimed into an Error
// result.
func orphan(c *closed) Result {
	name := c.name
	if name == "" {
		name = "subtests"
	}
	return Result{Name: name, Status: Error, Directive: DirError,
		Reason: "subtest block has no result line", Diagnostics: c.diags, Subtests: c.results}
}

func (p *parser) problem(b *block, root bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch {
	case root && b.name == "":
	case b.name != "":
		msg = b.name + ": " + msg
	default:
		msg = fmt.Sprintf("subtests at line %d: %s", b.start, msg)
	}
	p.problems = append(p.problems, msg)
}

func (p *parser) handle(b *block, l line) {
	switch l.kind {
	case kVersion:
		if b.version == "" {
			b.version = l.text
		}
	case kPlan:
		if b.plan >= 0 {
			p.problem(b, len(p.stack) == 1, "second plan 1..%d at line %d ignored", l.plan, l.no)
			return
		}
		b.plan = l.plan
		if l.plan == 0 && l.directive == DirSkip {
			b.skipAll, b.skipReason = true, l.reason
		}
	case kResult:
		r := Result{Name: l.name, Number: l.num, Status: status(l.ok, l.directive),
			Directive: l.directive, Reason: l.reason}
		if c := b.pendSub; c != nil {
			r.Subtests = c.results
			r.Diagnostics = append(r.Diagnostics, c.diags...)
			if r.Name == "" {
				r.Name = c.name
			}
			b.pendSub = nil
		}
		r.Diagnostics = append(r.Diagnostics, b.pendDiag...)
		b.pendDiag = nil
		if want := numbered(b.results) + 1; l.num != want {
			p.problem(b, len(p.stack) == 1, "test number %d at line %d, expected %d", l.num, l.no, want)
		}
		b.results = append(b.results, r)
	case kDiag:
		if name, ok := strings.CutPrefix(l.text, "Subtest:"); ok && b.name == "" && len(b.results) == 0 {
			b.name = strings.TrimSpace(name)
			return
		}
		if m := totalsRE.FindStringSubmatch(l.text); m != nil {
			t := parseTotals(m[1])
			if c := b.pendSub; c != nil {
				// KUnit prints each suite's totals after the
				// suite's subtests, before its result line:
				// they count that suite, not the document.
				if leaves := count(Flatten(c.results, "/")); !t.agrees(leaves) && !t.agrees(count(c.results)) {
					name := c.name
					if name == "" {
						name = fmt.Sprintf("subtests before line %d", l.no)
					}
					p.problem(b, len(p.stack) == 1, "%s: totals say pass:%d fail:%d skip:%d, results show pass:%d fail:%d skip:%d",
						name, t.Pass, t.Fail, t.Skip, leaves.Pass, leaves.Fail, leaves.Skip)
				}
				return
			}
			b.totals = t
			return
		}
		b.pendDiag = append(b.pendDiag, l.text)
	case kBail:
		b.bailed, b.bailReason = true, l.text
		if !p.bailed {
			p.bailed, p.bailWhy = true, l.text
		}
	}
}

func numbered(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Number > 0 {
			n++
		}
	}
	return n
}

func parseTotals(s string) *Totals {
	t := &Totals{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		switch strings.ToLower(k) {
		case "pass":
			t.Pass = n
		case "fail":
			t.Fail = n
		case "xfail":
			t.XFail = n
		case "xpass":
			t.XPass = n
		case "skip":
			t.Skip = n
		case "error":
			t.Error = n
		}
	}
	return t
}

// close finishes a block: it adds an Error result for every test the
// plan announced but nobody reported, gives them what was left over
// (a subtest block, diagnostics), and checks the totals line.
func (p *parser) close(b *block, root bool) closed {
	c := closed{name: b.name, results: b.results}
	seen := map[int]bool{}
	for _, r := range b.results {
		if r.Number > 0 {
			seen[r.Number] = true
		}
	}
	reported := numbered(b.results)
	first := -1 // index of the first made-up result
	why := func() string {
		if b.bailed {
			return strings.TrimSpace("not run: Bail out! " + b.bailReason)
		}
		return fmt.Sprintf("no result: plan said %d tests, %d reported (crashed or truncated?)", b.plan, reported)
	}
	switch {
	case b.plan >= 0 && reported < b.plan:
		p.problem(b, root, "plan said %d tests, %d reported", b.plan, reported)
		for n := 1; n <= b.plan; n++ {
			if seen[n] {
				continue
			}
			if first < 0 {
				first = len(c.results)
			}
			c.results = append(c.results, Result{Number: n, Status: Error, Directive: DirError, Reason: why()})
		}
	case b.plan >= 0 && reported > b.plan:
		p.problem(b, root, "plan said %d tests, %d reported", b.plan, reported)
	case b.plan < 0 && !root && len(b.results) > 0:
		// KUnit prints no plan for the cases of a parameterized
		// test ("# Subtest: name", then one result per parameter):
		// the results are complete as they are.
	case b.plan < 0 && (len(b.results) > 0 || b.version != ""):
		p.problem(b, root, "no plan line")
	}
	if first < 0 && (b.bailed || (b.version != "" && b.plan < 0 && len(b.results) == 0)) {
		// Nothing announced is missing, yet the test stopped: say so
		// in a result of its own.
		reason := "KTAP output has neither a plan nor results"
		if b.bailed {
			reason = strings.TrimSpace("Bail out! " + b.bailReason)
		}
		first = len(c.results)
		c.results = append(c.results, Result{Name: b.name, Status: Error, Directive: DirError, Reason: reason})
	}
	if s := b.pendSub; s != nil {
		if first >= 0 {
			m := &c.results[first]
			m.Subtests = s.results
			m.Diagnostics = append(m.Diagnostics, s.diags...)
			if m.Name == "" {
				m.Name = s.name
			}
		} else {
			c.results = append(c.results, orphan(s))
		}
	}
	if len(b.pendDiag) > 0 {
		if first >= 0 {
			c.results[first].Diagnostics = append(c.results[first].Diagnostics, b.pendDiag...)
		} else {
			c.diags = b.pendDiag
		}
	}
	if t := b.totals; t != nil {
		// kselftest counts its own results, KUnit every leaf below.
		direct, leaves := count(b.results), count(Flatten(b.results, "/"))
		if !t.agrees(direct) && !t.agrees(leaves) {
			p.problem(b, root, "totals say pass:%d fail:%d skip:%d, results show pass:%d fail:%d skip:%d",
				t.Pass, t.Fail, t.Skip, direct.Pass, direct.Fail, direct.Skip)
		}
	}
	return c
}

// count tallies results by status.
func count(rs []Result) Totals {
	var t Totals
	for _, r := range rs {
		switch r.Status {
		case Pass:
			t.Pass++
		case Fail:
			t.Fail++
		case Skip:
			t.Skip++
		case XFail:
			t.XFail++
		case Error:
			t.Error++
		}
	}
	return t
}

// agrees compares the counts every format reports.
func (t *Totals) agrees(got Totals) bool {
	return got.Pass == t.Pass && got.Fail == t.Fail && got.Skip == t.Skip
}

// expand parses KTAP nested inside diagnostics (kselftest's runner
// prefixes each test's output with "# ") into subtests.
func (p *parser) expand(rs []Result, path string) []Result {
	for i := range rs {
		r := &rs[i]
		name := r.Name
		if path != "" {
			name = path + "/" + name
		}
		if len(r.Subtests) == 0 && hasVersion(r.Diagnostics) {
			sub := parseLines(r.Diagnostics)
			if len(sub.Results) > 0 {
				r.Subtests = sub.Results
				// Keep what is not KTAP: the lines before the
				// nested version line and the nested trailer.
				var keep []string
				for _, l := range r.Diagnostics {
					if versionRE.MatchString(strings.TrimSpace(l)) {
						break
					}
					keep = append(keep, l)
				}
				r.Diagnostics = append(keep, sub.Diagnostics...)
				for _, pr := range sub.Problems {
					p.problems = append(p.problems, name+": "+pr)
				}
				if sub.Bailed && !p.bailed {
					p.bailed, p.bailWhy = true, sub.BailReason
				}
			}
			continue
		}
		r.Subtests = p.expand(r.Subtests, name)
	}
	return rs
}

func hasVersion(lines []string) bool {
	for _, l := range lines {
		if versionRE.MatchString(strings.TrimSpace(l)) {
			return true
		}
	}
	return false
}

// Flatten lists the leaves of a result tree, each named by its path
// (names joined with sep; an empty name becomes "test-N"). A parent is
// listed too when it failed or erred while none of its leaves did, so
// that its failure is not lost.
func Flatten(rs []Result, sep string) []Result {
	var out []Result
	var walk func(rs []Result, path string)
	walk = func(rs []Result, path string) {
		for _, r := range rs {
			name := r.Name
			if name == "" {
				name = fmt.Sprintf("test-%d", r.Number)
			}
			if path != "" {
				name = path + sep + name
			}
			if len(r.Subtests) == 0 {
				r.Name = name
				out = append(out, r)
				continue
			}
			before := len(out)
			walk(r.Subtests, name)
			if r.Status == Fail || r.Status == Error {
				explained := false
				for _, l := range out[before:] {
					if l.Status == Fail || l.Status == Error {
						explained = true
						break
					}
				}
				if !explained {
					r.Name, r.Subtests = name, nil
					out = append(out, r)
				}
			}
		}
	}
	walk(rs, "")
	return out
}

// Write emits results as a KTAP v1 document. suite, when not empty,
// names the document in a "# Subtest:" line. Tests are renumbered from
// 1 at every level; subtests are indented by 2 spaces per level;
// diagnostics are written before their result line.
func Write(w io.Writer, suite string, results []Result) error {
	ew := &errWriter{w: w}
	ew.line(0, "KTAP version 1")
	if suite != "" {
		ew.line(0, "# Subtest: "+clean(suite))
	}
	ew.line(0, fmt.Sprintf("1..%d", len(results)))
	for i, r := range results {
		writeResult(ew, 0, i+1, r)
	}
	if ew.err != nil {
		return fmt.Errorf("writing KTAP: %w", ew.err)
	}
	return nil
}

func writeResult(w *errWriter, depth, num int, r Result) {
	if len(r.Subtests) > 0 {
		w.line(depth+1, "KTAP version 1")
		if r.Name != "" {
			w.line(depth+1, "# Subtest: "+clean(r.Name))
		}
		w.line(depth+1, fmt.Sprintf("1..%d", len(r.Subtests)))
		for i, s := range r.Subtests {
			writeResult(w, depth+1, i+1, s)
		}
	}
	diags := r.Diagnostics
	word, directive := "ok", ""
	switch r.Status {
	case Pass, Fail:
		if r.Status == Fail {
			word = "not ok"
		}
		switch r.Directive {
		case DirTodo, DirXPass:
			directive = r.Directive
		default:
			if r.Reason != "" {
				diags = append(diags[:len(diags):len(diags)], r.Reason)
			}
		}
	case Skip:
		directive = DirSkip
	case XFail:
		directive = DirXFail
	case Error:
		word, directive = "not ok", DirError
		if r.Directive == DirTimeout {
			directive = DirTimeout
		}
	default:
		word, directive = "not ok", DirError
	}
	for _, d := range diags {
		for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
			if l = printable(strings.TrimRight(l, " \t\r")); l == "" {
				w.line(depth, "#")
			} else {
				w.line(depth, "# "+l)
			}
		}
	}
	s := fmt.Sprintf("%s %d", word, num)
	if name := clean(r.Name); name != "" {
		s += " " + name
	}
	if directive != "" {
		s += " # " + directive
		reason := r.Reason
		if r.Status == "" && reason == "" {
			reason = "no status"
		}
		if reason = oneLine(reason); reason != "" {
			s += " " + reason
		}
	}
	w.line(depth, s)
}

// clean makes a name safe for a result line: one line, and no "#" to be
// mistaken for a directive.
func clean(s string) string {
	return strings.ReplaceAll(oneLine(s), "#", "_")
}

func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}

// printable replaces control characters (a console's escape sequences,
// NULs) with U+FFFD; KTAP is a text format read by people as well.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\t' && (r < 0x20 || r == 0x7f) {
			return '\uFFFD'
		}
		return r
	}, s)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) line(depth int, s string) {
	if e.err != nil {
		return
	}
	_, e.err = io.WriteString(e.w, strings.Repeat("  ", depth)+s+"\n")
}
