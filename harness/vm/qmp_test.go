package vm

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hugelgupf/vmtest/qemu"
)

// TestWatchQMPKeepsTheLastEvents stops the watcher before QEMU's last
// events reach it, as vmtest does when QEMU exits right after them (a
// guest panic with -action panic=shutdown): they must still be recorded.
func TestWatchQMPKeepsTheLastEvents(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write([]byte(`{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}` + "\n"))
		r.ReadString('\n') // qmp_capabilities
		c.Write([]byte(`{"return": {}}` + "\n"))
		time.Sleep(50 * time.Millisecond) // the watcher asks for events
		cancel()
		time.Sleep(50 * time.Millisecond) // the watcher sees it
		c.Write([]byte(`{"event": "GUEST_PANICKED", "data": {"action": "pause"}}` + "\n" +
			`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-panic"}}` + "\n"))
	}()
	n := &qemu.Notifications{VMStarted: make(chan struct{}), VMExited: make(chan error, 1)}
	close(n.VMStarted)
	log := &qmpLog{}
	done := make(chan error)
	go func() { done <- watchQMP(sock, &qmpLink{}, log)(ctx, n) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher still running 5 s after QEMU closed the socket")
	}
	var res Result
	log.fill(&res)
	want := []string{`GUEST_PANICKED {"action":"pause"}`, `SHUTDOWN {"guest":true,"reason":"guest-panic"}`}
	if !reflect.DeepEqual(res.QMP, want) || !res.Panicked {
		t.Errorf("QMP %q, panicked %v; want %q, panicked", res.QMP, res.Panicked, want)
	}
}
