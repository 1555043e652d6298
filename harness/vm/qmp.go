package vm

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/hugelgupf/vmtest/qemu"
)

// qmpLink shares the QMP connection between the event watcher and the
// stack collector: QEMU's monitor socket takes one client.
type qmpLink struct {
	mu  sync.Mutex
	mon *qmp.SocketMonitor
}

func (l *qmpLink) set(m *qmp.SocketMonitor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mon = m
}

func (l *qmpLink) get() *qmp.SocketMonitor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mon
}

// qmpLog keeps the monitor's events. Its methods are safe for concurrent
// use.
type qmpLog struct {
	mu       sync.Mutex
	events   []string
	panicked bool
}

func (q *qmpLog) add(ev qmp.Event) {
	data := ""
	if len(ev.Data) > 0 {
		b, _ := json.Marshal(ev.Data)
		data = string(b)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.events = append(q.events, strings.TrimSpace(ev.Event+" "+data))
	if ev.Event == "GUEST_PANICKED" {
		q.panicked = true
	}
}

// fill copies the events into res.
func (q *qmpLog) fill(res *Result) {
	q.mu.Lock()
	defer q.mu.Unlock()
	res.QMP = append([]string(nil), q.events...)
	res.Panicked = q.panicked
}

const (
	// qmpRetry is the pause between two attempts to connect to the
	// monitor socket, which QEMU creates some time after it starts.
	qmpRetry = 50 * time.Millisecond
	// qmpDrain bounds the reading of the events QEMU sent before it
	// exited.
	qmpDrain = time.Second
)

// watchQMP is a task that connects to QEMU's monitor socket once the VM
// has started (retrying until QEMU has created it), shares the
// connection through link and records its events in log until the
// socket closes.
func watchQMP(sock string, link *qmpLink, log *qmpLog) qemu.Task {
	return qemu.WaitVMStarted(func(ctx context.Context, n *qemu.Notifications) error {
		mon := connectQMP(ctx, sock)
		if mon == nil {
			return nil
		}
		link.set(mon)
		defer link.set(nil)
		events, err := mon.Events(ctx)
		if err != nil {
			mon.Disconnect()
			return nil
		}
		defer disconnectQMP(mon, events)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return nil
				}
				log.add(ev)
			case <-ctx.Done():
				// vmtest cancels tasks once QEMU has exited,
				// and QEMU exits at once after a guest panic
				// (-action panic=shutdown): its last events,
				// GUEST_PANICKED and SHUTDOWN, may still wait
				// in the socket.
				drainQMP(events, log, qmpDrain)
				return nil
			}
		}
	})
}

// drainQMP records the events left in the socket until it closes, for
// at most limit.
func drainQMP(events <-chan qmp.Event, log *qmpLog, limit time.Duration) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			log.add(ev)
		case <-t.C:
			return
		}
	}
}

// disconnectQMP closes the monitor. go-qemu's reader blocks on an event
// nobody reads, and Disconnect waits for the reader: events are
// discarded meanwhile.
func disconnectQMP(mon *qmp.SocketMonitor, events <-chan qmp.Event) {
	go func() {
		for range events {
		}
	}()
	mon.Disconnect()
}

// connectQMP connects to the monitor at sock, retrying until it answers
// or ctx is done (nil then).
func connectQMP(ctx context.Context, sock string) *qmp.SocketMonitor {
	for {
		m, err := qmp.NewSocketMonitor("unix", sock, time.Second)
		if err == nil {
			if err = m.Connect(); err == nil {
				return m
			}
			m.Disconnect()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(qmpRetry):
		}
	}
}
