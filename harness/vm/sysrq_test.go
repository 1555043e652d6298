package vm

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-qemu/qmp/raw"
)

// fakeKeys records the key combinations it is sent; failAt makes the
// n-th send (1-based) fail.
type fakeKeys struct {
	mu     sync.Mutex
	sent   []string
	failAt int
}

func (f *fakeKeys) SendKey(keys []raw.KeyValue, hold *int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	if len(f.sent)+1 == f.failAt {
		return errors.New("QMP error: no such device")
	}
	f.sent = append(f.sent, string(b))
	return nil
}

func TestSendSysRq(t *testing.T) {
	combo := func(k string) string {
		return `[{"data":"alt","type":"qcode"},{"data":"sysrq","type":"qcode"},{"data":"` + k + `","type":"qcode"}]`
	}
	for _, tc := range []struct {
		name     string
		failAt   int
		wantSent []string
		wantKeys []string
		wantErr  string
	}{
		{"both keys", 0, []string{combo("w"), combo("l")}, []string{"w", "l"}, ""},
		{"first fails", 1, nil, nil, "alt-sysrq-w"},
		{"second fails", 2, []string{combo("w")}, []string{"w"}, "alt-sysrq-l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeKeys{failAt: tc.failAt}
			keys, err := sendSysRq(context.Background(), f, sysrqKeys(), sysrqGap, qmpCallTimeout)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(keys, tc.wantKeys) {
				t.Errorf("keys = %v, want %v", keys, tc.wantKeys)
			}
			if !reflect.DeepEqual(f.sent, tc.wantSent) {
				t.Errorf("sent %v, want %v", f.sent, tc.wantSent)
			}
		})
	}
}

// timeline is a console whose line count and last-output time follow a
// script of (time since start, lines so far) points.
type timeline struct {
	start  time.Time
	points []struct {
		at    time.Duration
		lines int
	}
}

func (tl *timeline) probe() (int, time.Duration) {
	now := time.Since(tl.start)
	lines, last := 0, time.Duration(0)
	for _, p := range tl.points {
		if p.at <= now {
			lines, last = p.lines, p.at
		}
	}
	return lines, now - last
}

func TestAwaitOutput(t *testing.T) {
	type pt = struct {
		at    time.Duration
		lines int
	}
	ms := time.Millisecond
	for _, tc := range []struct {
		name      string
		points    []pt
		max       time.Duration
		quiet     time.Duration
		stopAfter time.Duration // 0: never
		wantLines int
		minWait   time.Duration
		maxWait   time.Duration
	}{
		{"output then quiet ends early", []pt{{0, 10}, {50 * ms, 30}, {100 * ms, 50}}, 2 * time.Second, 150 * ms, 0, 40, 240 * ms, 800 * ms},
		{"no output waits the whole bound", []pt{{0, 10}}, 400 * ms, 100 * ms, 0, 0, 390 * ms, 900 * ms},
		{"endless output stops at the bound", func() []pt {
			var p []pt
			for i := 0; i < 100; i++ {
				p = append(p, pt{time.Duration(i) * 20 * ms, 10 + i})
			}
			return p
		}(), 500 * ms, 200 * ms, 0, 25, 490 * ms, 1000 * ms},
		{"VM exit stops the wait", []pt{{0, 10}, {50 * ms, 12}}, 5 * time.Second, 10 * time.Second, 200 * ms, 2, 190 * ms, 700 * ms},
		// The first key's stacks came while the second was sent.
		{"output before the wait counts", []pt{{0, 14}}, 2 * time.Second, 150 * ms, 0, 4, 140 * ms, 700 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := &timeline{start: time.Now()}
			tl.points = append(tl.points, tc.points...)
			stop := make(chan struct{})
			if tc.stopAfter > 0 {
				time.AfterFunc(tc.stopAfter, func() { close(stop) })
			}
			begin := time.Now()
			n := awaitOutput(context.Background(), stop, tl.probe, 10, tc.max, tc.quiet, 10*ms)
			waited := time.Since(begin)
			// "endless output" counts whatever arrived by the bound.
			if tc.name != "endless output stops at the bound" && n != tc.wantLines {
				t.Errorf("lines = %d, want %d", n, tc.wantLines)
			}
			if n < tc.wantLines-5 {
				t.Errorf("lines = %d, want about %d", n, tc.wantLines)
			}
			if waited < tc.minWait || waited > tc.maxWait {
				t.Errorf("waited %s, want between %s and %s", waited, tc.minWait, tc.maxWait)
			}
		})
	}
}

// TestRunSendsSysRqOnSilence boots QEMU with no kernel at all (the
// firmware prints nothing on the serial port), so the silence watchdog
// fires: the keys must go out through QMP before QEMU is stopped.
func TestRunSendsSysRqOnSilence(t *testing.T) {
	if testing.Short() {
		t.Skip("starts QEMU")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("no qemu-system-x86_64")
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		silence time.Duration
		why     string
	}{
		// Long enough for QEMU to start and QMP to connect on a loaded
		// host (2 s was not: "QMP monitor not connected" at load 6).
		{"silence", 0, 6 * time.Second, "silence"},
		{"timeout", 8 * time.Second, time.Minute, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(context.Background(), Options{Accel: AccelTCG, MemoryMB: 128, CPUs: 1,
				Timeout: tc.timeout, Silence: tc.silence, SysRqWait: time.Second, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if res.SysRq == nil {
				t.Fatalf("no SysRq recorded; result %+v", res)
			}
			if !res.SysRq.Sent() || !reflect.DeepEqual(res.SysRq.Keys, []string{"w", "l"}) || res.SysRq.Why != tc.why {
				t.Errorf("SysRq = %+v, want w and l sent on %s", res.SysRq, tc.why)
			}
			if tc.why == "silence" && !res.Silent || tc.why == "timeout" && !res.TimedOut {
				t.Errorf("Silent=%v TimedOut=%v, want the %s recorded", res.Silent, res.TimedOut, tc.why)
			}
			if res.SysRq.Waited < 900*time.Millisecond || res.SysRq.Waited > 3*time.Second {
				t.Errorf("waited %s for SysRq output, want about the 1s bound", res.SysRq.Waited)
			}
		})
	}
}
