package kbuild

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
)

// progress writes "kbuild NAME: ..." lines, one Write per line, never
// carriage-return animations (the output may be a CI log).
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	name string
}

func newProgress(w io.Writer, name string) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, name: name}
}

func (p *progress) printf(format string, args ...any) {
	line := fmt.Sprintf("kbuild %s: %s\n", p.name, fmt.Sprintf(format, args...))
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, line)
}

// stepRE matches kbuild's short command lines: "  CC      kernel/fork.o",
// "  LD [M]  fs/x.ko", "  HOSTCC  scripts/basic/fixdep".
var stepRE = regexp.MustCompile(`^  ([A-Z][A-Z0-9_-]*(?: \[M\])?) +(\S.*)$`)

// counter counts kbuild step lines in make output and remembers the last.
type counter struct {
	mu      sync.Mutex
	partial []byte
	n       int
	last    string
}

func (c *counter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, b...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		line := string(c.partial[:i])
		c.partial = c.partial[i+1:]
		if m := stepRE.FindStringSubmatch(line); m != nil {
			c.n++
			c.last = m[1] + " " + strings.TrimSpace(m[2])
		}
	}
	if len(c.partial) > 64*1024 { // a runaway line without newline
		c.partial = c.partial[:0]
	}
	return len(b), nil
}

func (c *counter) snapshot() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.last
}

const tailLines = 25

// tailFrom reads the log from offset on and picks its telling lines.
func tailFrom(path string, offset int64, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil
	}
	return compilerTail(strings.Split(string(b), "\n"), n)
}

var noiseRE = regexp.MustCompile(`^make(\[\d+\])?: (Entering|Leaving) directory|^\$ |^# `)

// compilerTail picks at most n lines of make output that explain a failure:
// from just before the first compiler "error:" on, or else the last lines;
// kbuild step lines and make's directory chatter are left out.
func compilerTail(lines []string, n int) []string {
	var keep []string
	for _, l := range lines {
		l = strings.TrimRight(l, "\r ")
		if strings.TrimSpace(l) == "" || stepRE.MatchString(l) || noiseRE.MatchString(l) {
			continue
		}
		keep = append(keep, l)
	}
	for i, l := range keep {
		if strings.Contains(l, "error:") || strings.Contains(l, "Error:") || strings.Contains(l, "undefined reference") {
			start := max(0, i-3) // "In file included from", "In function"
			return keep[start:min(len(keep), start+n)]
		}
	}
	for i, l := range keep {
		if strings.Contains(l, "Error ") { // only make's "*** [...] Error 2": what led to it
			end := min(len(keep), i+3)
			return keep[max(0, end-n):end]
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return keep
}
