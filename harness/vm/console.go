package vm

import (
	"strings"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/console"
)

// consoleState is what the console showed so far: its reports and last
// lines (console.Monitor), when the last line came, and the kernels that
// booted. Its methods are safe for concurrent use.
type consoleState struct {
	mu     sync.Mutex
	mon    *console.Monitor
	last   time.Time // when the last line arrived (start before any)
	boots  []time.Duration
	severe chan struct{} // closed at the first severe report
}

// keepLines is how many last console lines a Result keeps.
const keepLines = 20

func newConsoleState(start time.Time) *consoleState {
	return &consoleState{mon: console.NewMonitor(keepLines), last: start, severe: make(chan struct{})}
}

// line takes one console line that arrived host after start.
func (c *consoleState) line(host time.Duration, line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = time.Now()
	f, found := c.mon.Line(line)
	// A panic ends the run by itself (panic=-1, -no-reboot); other
	// severe reports may leave the guest hung.
	if found && f.Kind.Severe() && f.Kind != console.Panic && !c.severeSeen() {
		close(c.severe)
	}
	if strings.Contains(line, "Linux version ") {
		c.boots = append(c.boots, host)
	}
}

func (c *consoleState) severeSeen() bool {
	select {
	case <-c.severe:
		return true
	default:
		return false
	}
}

// probe reports how many lines arrived so far and how long ago the last
// one did.
func (c *consoleState) probe() (lines int, quiet time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mon.Lines(), time.Since(c.last)
}

// lastLine returns the last line ("" before any) and the number of lines.
func (c *consoleState) lastLine() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	last := c.mon.LastLines()
	if len(last) == 0 {
		return "", c.mon.Lines()
	}
	return last[len(last)-1], c.mon.Lines()
}

// fill copies the reports, last lines and boots into res.
func (c *consoleState) fill(res *Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res.Findings = c.mon.Findings()
	res.LastLines = c.mon.LastLines()
	res.Boots = append([]time.Duration(nil), c.boots...)
}
