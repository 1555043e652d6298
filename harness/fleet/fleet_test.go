package fleet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
)

// sc is a scenario with no steps: Partition groups scenarios by their
// hops and command line, and solo ones alone.
func sc(name string, tags ...string) *scenario.Scenario {
	return &scenario.Scenario{Name: name, Tags: tags}
}

// fakeVMs records each VM the fleet started and answers with verdict(name)
// for every member.
type fakeVMs struct {
	mu      sync.Mutex
	started [][]string
	opts    []runner.Options
	verdict func(string) runner.Verdict
}

func (f *fakeVMs) run(ctx context.Context, members []*scenario.Scenario, o runner.Options) []*runner.Outcome {
	var names []string
	var outs []*runner.Outcome
	for _, m := range members {
		names = append(names, m.Name)
		v := runner.Pass
		if f.verdict != nil {
			v = f.verdict(m.Name)
		}
		outs = append(outs, &runner.Outcome{Scenario: m.Name, Verdict: v, Dir: o.Dir, Rerun: strings.Replace(o.Rerun, "%s", m.Name, 1)})
	}
	if o.OnLine != nil {
		o.OnLine(1500*time.Millisecond, "hello from "+names[0])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, names)
	f.opts = append(f.opts, o)
	return outs
}

func TestRun(t *testing.T) {
	todo := []*scenario.Scenario{sc("a"), sc("b"), sc("big", scenario.TagSolo), sc("c")}
	for _, tc := range []struct {
		name      string
		solo      bool
		verdict   func(string) runner.Verdict
		wantVMs   [][]string
		wantLines []string
	}{
		{"batched: a, b and c share a VM", false, nil,
			[][]string{{"a", "b", "c"}, {"big"}}, nil},
		{"solo: a VM each", true, nil,
			[][]string{{"a"}, {"b"}, {"big"}, {"c"}}, nil},
		{"a failure names its rerun", true, func(n string) runner.Verdict {
			if n == "b" {
				return runner.Fail
			}
			return runner.Pass
		}, [][]string{{"a"}, {"b"}, {"big"}, {"c"}}, []string{"rerun:   luotest run -run b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vms := &fakeVMs{verdict: tc.verdict}
			var out, log, echo strings.Builder
			f := &Fleet{Agent: "/agent", Accel: "tcg", Timeout: time.Minute, Silence: time.Second, Solo: tc.solo,
				Limits: pool.Limits{Slots: 1}, Log: &log, Echo: &echo, RunGroup: vms.run}
			k := []bootable.Kernel{{Name: "stock"}, {Name: "patched"}}
			outs := f.Run(context.Background(), Batch{Kernels: k, Scenarios: todo, Files: map[string]string{"x": "/y"},
				Dir: "/runs/1", Rerun: "luotest run -run %s"}, &out)
			if !slices.EqualFunc(vms.started, tc.wantVMs, slices.Equal) {
				t.Errorf("VMs %q, want %q", vms.started, tc.wantVMs)
			}
			var got []string
			for _, o := range outs {
				got = append(got, o.Scenario)
			}
			if want := []string{"a", "b", "big", "c"}; !slices.Equal(got, want) {
				t.Errorf("outcomes in the order %q, want %q", got, want)
			}
			if want := fmt.Sprintf("4 scenario(s) in %d VM(s)\n", len(tc.wantVMs)); log.String() != want {
				t.Errorf("log %q, want %q", log.String(), want)
			}
			if n := strings.Count(out.String(), "PASS "); n+strings.Count(out.String(), "FAIL ") != 4 {
				t.Errorf("want a line per scenario, got:\n%s", out.String())
			}
			for _, l := range tc.wantLines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("output lacks %q:\n%s", l, out.String())
				}
			}
			for i, o := range vms.opts {
				if o.Agent != "/agent" || o.Accel != "tcg" || o.Timeout != time.Minute || o.Silence != time.Second ||
					len(o.Kernels) != 2 || o.Files["x"] != "/y" {
					t.Errorf("VM %d: options %+v do not carry the fleet's and the batch's settings", i, o)
				}
				want := filepath.Join("/runs/1", vmName(scs(vms.started[i])))
				if o.Dir != want {
					t.Errorf("VM %d: dir %s, want %s", i, o.Dir, want)
				}
			}
			first := vms.started[0][0]
			wantEcho := vmName(scs(vms.started[0])) + " [  1.500] hello from " + first + "\n"
			if !strings.HasPrefix(echo.String(), wantEcho) {
				t.Errorf("echo %q does not start with %q", echo.String(), wantEcho)
			}
		})
	}
}

func scs(names []string) []*scenario.Scenario {
	var out []*scenario.Scenario
	for _, n := range names {
		out = append(out, sc(n))
	}
	return out
}

// A cancelled context starts no VM: every scenario is a SKIP that says so.
func TestRunInterrupted(t *testing.T) {
	vms := &fakeVMs{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &Fleet{RunGroup: vms.run, Limits: pool.Limits{Slots: 2}}
	var out strings.Builder
	outs := f.Run(ctx, Batch{Scenarios: []*scenario.Scenario{sc("a"), sc("b", scenario.TagSolo)}}, &out)
	if len(vms.started) != 0 {
		t.Errorf("started %q after the interrupt", vms.started)
	}
	if len(outs) != 2 {
		t.Fatalf("%d outcomes, want 2", len(outs))
	}
	for _, o := range outs {
		if o.Verdict != runner.Skip || o.Reason != "interrupted before it started" {
			t.Errorf("%s: %s %q, want SKIP interrupted", o.Scenario, o.Verdict, o.Reason)
		}
	}
}

func TestComplete(t *testing.T) {
	todo := []*scenario.Scenario{sc("a"), sc("b"), sc("c")}
	outs := complete(todo, []*runner.Outcome{{Scenario: "c", Verdict: runner.Fail}, {Scenario: "a", Verdict: runner.Pass}})
	var got []string
	for _, o := range outs {
		got = append(got, o.Scenario+":"+string(o.Verdict))
	}
	if want := []string{"a:PASS", "c:FAIL", "b:SKIP"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEchoOff(t *testing.T) {
	var mu sync.Mutex
	if Echo(nil, &mu, "x") != nil {
		t.Error("Echo(nil) must return nil: the runner then skips the console callback")
	}
}
