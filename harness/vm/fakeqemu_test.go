package vm_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/shell"
)

// fakeEnv, when set, turns the test binary into a fake
// qemu-system-x86_64 that plays the script in the file it names.
const fakeEnv = "LUO_VM_FAKE_QEMU"

func TestMain(m *testing.M) {
	if path := os.Getenv(fakeEnv); path != "" {
		os.Exit(fakeQEMU(path, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// script is what a fake QEMU does.
type script struct {
	// Steps run in order, then the fake exits 0:
	//
	//	print TEXT   a console line (stdout, ending "\r\n" as a
	//	             kernel's serial console does)
	//	stderr TEXT  a line on stderr, as QEMU's own messages
	//	sleep D      pause for the duration D
	//	waitqmp      wait until a client has negotiated QMP, and
	//	             50 ms more: go-qemu drops the events that come
	//	             before its client asks for them, just after
	//	             the negotiation
	//	qmp NAME     emit the QMP event NAME (after waitqmp)
	//	event JSON   send a plan.Event over the agent's channel
	//	done         close the agent's channel (vmtest's done)
	//	chatter D    print a line every D, forever
	//	hang         do nothing, forever
	//	exit N       exit with status N
	Steps []string
	// OnKey are the console lines printed after each send-key; "%k"
	// is the SysRq letter.
	OnKey []string
	// OnNMI are the console lines printed after inject-nmi.
	OnNMI []string
	// NoQMP leaves the monitor socket closed.
	NoQMP bool
	// Mute are the QMP commands the fake never answers, nor any
	// command after them, as a hung QEMU.
	Mute []string
	// Log receives each QMP command received, one a line.
	Log string
}

// fakeQEMUPath writes s and a wrapper that runs this test binary as a
// fake QEMU playing it, and returns the wrapper's path. Each test has
// its own, so they can run in parallel.
func fakeQEMUPath(t *testing.T, s script) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(dir, "script.json")
	if err := os.WriteFile(sp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "qemu-system-x86_64")
	sh := fmt.Sprintf("#!/bin/sh\n%s=%s exec %s \"$@\"\n", fakeEnv, shell.Quote(sp), shell.Quote(self))
	if err := os.WriteFile(wrapper, []byte(sh), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// fake is a running fake QEMU.
type fake struct {
	s      script
	outMu  sync.Mutex
	qmpMu  sync.Mutex
	conn   net.Conn      // the QMP client, once negotiated
	ready  chan struct{} // closed once a client negotiated QMP
	events *os.File      // the agent's channel (virtio-serial pipe)
}

func fakeQEMU(path string, args []string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake QEMU:", err)
		return 90
	}
	f := &fake{ready: make(chan struct{})}
	if err := json.Unmarshal(b, &f.s); err != nil {
		fmt.Fprintln(os.Stderr, "fake QEMU:", err)
		return 90
	}
	// A test that dies leaves no fake behind.
	go func(parent int) {
		for os.Getppid() == parent {
			time.Sleep(100 * time.Millisecond)
		}
		os.Exit(94)
	}(os.Getppid())
	if err := f.open(args); err != nil {
		fmt.Fprintln(os.Stderr, "fake QEMU:", err)
		return 91
	}
	for _, st := range f.s.Steps {
		if code, exit := f.step(st); exit {
			return code
		}
	}
	return 0
}

// open opens what QEMU would from its arguments: the QMP socket of -qmp
// unix:PATH,... and the pipe of the agent's channel (-chardev
// pipe,...,path=/proc/self/fd/N).
func (f *fake) open(args []string) error {
	for i := 0; i+1 < len(args); i++ {
		a, v := args[i], args[i+1]
		switch {
		case a == "-qmp" && !f.s.NoQMP:
			path, _, _ := strings.Cut(strings.TrimPrefix(v, "unix:"), ",")
			l, err := net.Listen("unix", path)
			if err != nil {
				return err
			}
			go f.serveQMP(l)
		case a == "-chardev" && strings.HasPrefix(v, "pipe,"):
			_, path, ok := strings.Cut(v, "path=")
			if !ok {
				return fmt.Errorf("no path in -chardev %s", v)
			}
			ev, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.events = ev
		}
	}
	return nil
}

func (f *fake) step(st string) (code int, exit bool) {
	verb, arg, _ := strings.Cut(st, " ")
	switch verb {
	case "print":
		f.print(arg)
	case "stderr":
		fmt.Fprintln(os.Stderr, arg)
	case "sleep":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "waitqmp":
		select {
		case <-f.ready:
			time.Sleep(50 * time.Millisecond)
		case <-time.After(10 * time.Second):
			fmt.Fprintln(os.Stderr, "fake QEMU: no QMP client")
			return 92, true
		}
	case "qmp":
		f.emit(arg)
	case "event":
		fmt.Fprintf(f.events, `{"hugelgupf_vmtest_guest_action":"guestevent","Actual":%s}`+"\n", arg)
	case "done":
		fmt.Fprintln(f.events, `{"hugelgupf_vmtest_guest_action":"done"}`)
	case "chatter":
		d, _ := time.ParseDuration(arg)
		for i := 0; ; i++ {
			f.print(fmt.Sprintf("[%6d.000000] busy %d", i, i))
			time.Sleep(d)
		}
	case "hang":
		time.Sleep(time.Hour)
	case "exit":
		n, _ := strconv.Atoi(arg)
		return n, true
	default:
		fmt.Fprintf(os.Stderr, "fake QEMU: unknown step %q\n", st)
		return 93, true
	}
	return 0, false
}

func (f *fake) print(line string) {
	f.outMu.Lock()
	defer f.outMu.Unlock()
	os.Stdout.WriteString(line + "\r\n")
}

// serveQMP speaks enough QMP for the harness: the greeting, then a reply
// to every command, printing the script's console lines for send-key
// and inject-nmi and exiting on quit. One client at a time, as QEMU.
func (f *fake) serveQMP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		f.serveConn(c)
	}
}

func (f *fake) serveConn(c net.Conn) {
	defer c.Close()
	f.send(c, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": []}}`)
	dec := json.NewDecoder(c)
	for {
		var cmd struct {
			Execute   string `json:"execute"`
			Arguments struct {
				Keys []struct {
					Data string `json:"data"`
				} `json:"keys"`
			} `json:"arguments"`
		}
		if err := dec.Decode(&cmd); err != nil {
			return
		}
		entry := cmd.Execute
		var keys []string
		for _, k := range cmd.Arguments.Keys {
			keys = append(keys, k.Data)
		}
		if len(keys) > 0 {
			entry += " " + strings.Join(keys, "-")
		}
		f.log(entry)
		if slices.Contains(f.s.Mute, cmd.Execute) {
			time.Sleep(time.Hour)
		}
		switch cmd.Execute {
		case "qmp_capabilities":
			f.send(c, `{"return": {}}`)
			f.qmpMu.Lock()
			f.conn = c
			f.qmpMu.Unlock()
			close(f.ready)
		case "send-key":
			f.send(c, `{"return": {}}`)
			for _, line := range f.s.OnKey {
				f.print(strings.ReplaceAll(line, "%k", keys[len(keys)-1]))
			}
		case "inject-nmi":
			f.send(c, `{"return": {}}`)
			for _, line := range f.s.OnNMI {
				f.print(line)
			}
		case "quit":
			f.send(c, `{"return": {}}`)
			os.Exit(0)
		default:
			f.send(c, `{"error": {"class": "CommandNotFound", "desc": "The command `+cmd.Execute+` has not been found"}}`)
		}
	}
}

// emit sends the QMP event name to the client.
func (f *fake) emit(name string) {
	f.qmpMu.Lock()
	c := f.conn
	f.qmpMu.Unlock()
	if c == nil {
		fmt.Fprintf(os.Stderr, "fake QEMU: no QMP client for %s\n", name)
		return
	}
	now := time.Now()
	f.send(c, fmt.Sprintf(`{"event": %q, "data": {"fake": true}, "timestamp": {"seconds": %d, "microseconds": %d}}`,
		name, now.Unix(), now.Nanosecond()/1000))
}

func (f *fake) send(c net.Conn, msg string) {
	f.qmpMu.Lock()
	defer f.qmpMu.Unlock()
	c.Write([]byte(msg + "\r\n"))
}

func (f *fake) log(entry string) {
	if f.s.Log == "" {
		return
	}
	lf, err := os.OpenFile(f.s.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer lf.Close()
	lf.WriteString(entry + "\n")
}
