package vm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// TimedEvent is an agent event and when the host received it.
type TimedEvent struct {
	plan.Event
	// Host is the time since QEMU started.
	Host time.Duration `json:"host_ns"`
}

// eventLog keeps the agent's events with their host times and writes
// each as a line of JSON (events.jsonl). Its methods are safe for
// concurrent use.
type eventLog struct {
	start time.Time
	out   io.Writer

	mu     sync.Mutex
	events []TimedEvent
	done   int // index of the done event, -1 before it
}

func newEventLog(start time.Time, out io.Writer) *eventLog {
	return &eventLog{start: start, out: out, done: -1}
}

// drain records the events of ch until it is closed (qevent closes it on
// every path), so a last event in flight never blocks the reader.
func (l *eventLog) drain(ch <-chan plan.Event) {
	for ev := range ch {
		l.add(ev)
	}
}

func (l *eventLog) add(ev plan.Event) {
	te := TimedEvent{Event: ev, Host: time.Since(l.start)}
	b, _ := json.Marshal(te) // plain data: cannot fail
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, te)
	if ev.Kind == plan.EventDone {
		l.done = len(l.events) - 1
	}
	// The log is a copy for later reading; the run's events are in
	// memory, so a full disk does not change the run.
	l.out.Write(append(b, '\n'))
}

// fill copies the events into res.
func (l *eventLog) fill(res *Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res.Events = append([]TimedEvent(nil), l.events...)
	if l.done >= 0 {
		res.Done = &res.Events[l.done]
	}
}

// ReadEvents loads an events.jsonl written by Run.
func ReadEvents(path string) ([]TimedEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []TimedEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var te TimedEvent
		if err := json.Unmarshal(sc.Bytes(), &te); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, te)
	}
	return out, sc.Err()
}
