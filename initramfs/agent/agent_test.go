package agent

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/pattern"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// recorder keeps the events; racers' beats arrive from their goroutines.
type recorder struct {
	mu     sync.Mutex
	events []plan.Event
}

func (r *recorder) Emit(ev plan.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

// of returns the events of kind k, in order.
func (r *recorder) of(k plan.EventKind) []plan.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []plan.Event
	for _, ev := range r.events {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// steps returns the step events, in order.
func (r *recorder) steps() []plan.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []plan.Event
	for _, ev := range r.events {
		if ev.Kind == plan.EventStep {
			out = append(out, ev)
		}
	}
	return out
}

type noSystem struct{}

func (noSystem) Kexec(string, string) error         { return io.EOF }
func (noSystem) Meminfo() (map[string]int64, error) { return map[string]int64{"MemTotal": 100}, nil }

// run executes a one-stage plan on the host (memfds are real; no LUO).
func run(t *testing.T, files []plan.File, steps []plan.Step) []plan.Event {
	t.Helper()
	p := &plan.Plan{Scenario: t.Name(), Files: files, Stages: []plan.Stage{{Steps: steps}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a := New(p, 0, map[string]bool{}, rec, noSystem{}, io.Discard)
	if err := a.RunStage(t.Context()); err != nil {
		t.Fatal(err)
	}
	return rec.steps()
}

func TestVerifierDetectsCorruption(t *testing.T) {
	f := plan.File{Name: "m", Flags: plan.MFDAllowSeal, Size: 3<<20 + 5, Seed: 9, Pos: 77}
	tests := []struct {
		name    string
		steps   []plan.Step
		want    []bool // pass per step
		mention string // in the last event's detail
	}{
		{"clean", []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}, {Op: plan.OpVerify, File: "m"}}, []bool{true, true}, "verified"},
		{"flipped byte expected ok", []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}, {Op: plan.OpCorrupt, File: "m", Offset: 1<<20 + 3}, {Op: plan.OpVerify, File: "m"}},
			[]bool{true, true, false}, "page 0x100000"},
		{"flipped byte expected mismatch", []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}, {Op: plan.OpCorrupt, File: "m", Offset: 5}, {Op: plan.OpVerify, File: "m", Expect: "mismatch"}},
			[]bool{true, true, true}, "1 page(s) differ"},
		{"write not in model", []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}, {Op: plan.OpWrite, File: "m", Extent: plan.Extent{Off: 8192, Len: 10}, Seed: 3}, {Op: plan.OpVerify, File: "m"}},
			[]bool{true, true, true}, "verified"},
		{"check fails", []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}, {Op: plan.OpVerify, File: "m", Checks: []plan.Check{{Key: "size", Op: "==", Value: 1}}}},
			[]bool{true, false}, "size = 3145733, want == 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs := run(t, []plan.File{f}, tc.steps)
			if len(evs) != len(tc.want) {
				t.Fatalf("%d events for %d steps", len(evs), len(tc.want))
			}
			for i, ev := range evs {
				if ev.Pass != tc.want[i] {
					t.Errorf("step %d (%s): pass=%v want %v: %s", i, ev.Op, ev.Pass, tc.want[i], ev.Detail)
				}
			}
			if last := evs[len(evs)-1]; !strings.Contains(last.Detail, tc.mention) {
				t.Errorf("last detail %q does not mention %q", last.Detail, tc.mention)
			}
		})
	}
}

// A file whose data was lost (a hole where the model expects data) must
// fail verification even though reading a hole is cheap and skipped.
func TestVerifierDetectsLostData(t *testing.T) {
	files := []plan.File{
		{Name: "m", Flags: plan.MFDAllowSeal, Size: 4 << 20, Seed: 1, Extents: []plan.Extent{{Off: 0, Len: 1 << 20}}},
	}
	p := &plan.Plan{Scenario: "lost", Files: files, Stages: []plan.Stage{{Steps: []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}}}}}
	rec := &recorder{}
	a := New(p, 0, nil, rec, noSystem{}, io.Discard)
	if err := a.RunStage(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The model now claims more data than the file holds.
	a.models["m"].Layers = append(a.models["m"].Layers, patternLayer(2<<20, 4096, 5))
	res := a.files["m"].verify(&files[0], a.models["m"], nil)
	if !res.mismatch || !strings.Contains(res.detail, "page 0x200000") {
		t.Fatalf("hole where data was expected not reported: %+v", res)
	}
}

func TestExecOutcome(t *testing.T) {
	evs := run(t, nil, []plan.Step{
		{Op: plan.OpExec, Path: "/bin/sh", Args: []string{"-c", "echo 'ok 1 - x'"}},
		{Op: plan.OpExec, Path: "/bin/sh", Args: []string{"-c", "exit 3"}, Expect: "exit:3"},
		{Op: plan.OpExec, Path: "/bin/sh", Args: []string{"-c", "exit 1"}},
	})
	for i, want := range []bool{true, true, false} {
		if evs[i].Pass != want {
			t.Errorf("exec step %d: pass=%v want %v (%s / %s)", i, evs[i].Pass, want, evs[i].Outcome, evs[i].Detail)
		}
	}
	if !strings.Contains(evs[0].Output, "ok 1 - x") {
		t.Errorf("exec output %q lost", evs[0].Output)
	}
}

func patternLayer(off, n int64, seed uint64) pattern.Layer {
	return pattern.Layer{Off: off, Len: n, Seed: seed}
}

// data_bytes is the sum of the file's data segments, not of the chunks
// the verifier reads: an unaligned extent touches one more page.
func TestVerifierCountsDataSegments(t *testing.T) {
	const mib = 1 << 20
	f := plan.File{Name: "s", Flags: plan.MFDAllowSeal, Size: 8 * mib, Seed: 4,
		Extents: []plan.Extent{{Off: 0, Len: mib}, {Off: 4*mib + 100, Len: mib}}}
	evs := run(t, []plan.File{f}, []plan.Step{{Op: plan.OpCreateMemfd, File: "s"}, {Op: plan.OpVerify, File: "s"}})
	got := evs[1].Values["data_bytes"]
	if want := int64(2*mib + 4096); got != want {
		t.Errorf("data_bytes = %d, want %d (257 + 256 pages)", got, want)
	}
}

// seqMeminfo reports MemTotal from a list, one value per call.
type seqMeminfo struct{ totals []int64 }

func (*seqMeminfo) Kexec(string, string) error { return io.EOF }
func (s *seqMeminfo) Meminfo() (map[string]int64, error) {
	v := s.totals[0]
	s.totals = s.totals[1:]
	return map[string]int64{"MemTotal": v}, nil
}

// MemTotal_delta and "@label.Key" references let a scenario compare what
// one retrieve gave back with what another did (the leak check of the
// corruption scenarios).
func TestMeminfoDeltaAndLabelRefs(t *testing.T) {
	same := []plan.Check{
		{Key: "MemTotal_delta", Op: ">=", Ref: "@b.MemTotal_delta", Value: -4},
		{Key: "MemTotal_delta", Op: "<=", Ref: "@b.MemTotal_delta", Value: 4},
	}
	tests := []struct {
		name   string
		totals []int64
		pass   bool
		detail string
	}{
		{"same growth", []int64{1000, 5100, 9200}, true, ""},
		{"within a page", []int64{1000, 5100, 9196}, true, ""},
		{"a leak", []int64{1000, 5100, 5104}, false, "MemTotal_delta = 4, want >= @b.MemTotal_delta(4100)-4"},
		{"more than a page extra", []int64{1000, 5100, 9208}, false, "want <= @b.MemTotal_delta(4100)+4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &plan.Plan{Scenario: t.Name(), Stages: []plan.Stage{{Steps: []plan.Step{
				{Op: plan.OpMeminfo, Label: "a"},
				{Op: plan.OpMeminfo, Label: "b"},
				{Op: plan.OpMeminfo, Label: "c", Checks: same},
			}}}}
			rec := &recorder{}
			a := New(p, 0, map[string]bool{}, rec, &seqMeminfo{totals: tc.totals}, io.Discard)
			if err := a.RunStage(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := rec.steps()[0].Values["MemTotal_delta"]; got != 0 {
				t.Errorf("first meminfo: MemTotal_delta = %d, want 0", got)
			}
			if got, want := rec.steps()[1].Values["MemTotal_delta"], tc.totals[1]-tc.totals[0]; got != want {
				t.Errorf("second meminfo: MemTotal_delta = %d, want %d", got, want)
			}
			last := rec.steps()[2]
			if last.Pass != tc.pass || !strings.Contains(last.Detail, tc.detail) {
				t.Errorf("pass=%v detail %q; want pass=%v mentioning %q", last.Pass, last.Detail, tc.pass, tc.detail)
			}
		})
	}
}

func TestCorruptHandoverNeedsFileAndClass(t *testing.T) {
	for _, s := range []plan.Step{
		{Op: plan.OpCorruptHandover, File: "m"},
		{Op: plan.OpCorruptHandover, Data: "count"},
	} {
		p := &plan.Plan{Scenario: "c", Files: []plan.File{{Name: "m", Size: 1}}, Stages: []plan.Stage{{Steps: []plan.Step{s}}}}
		if err := p.Validate(); err == nil {
			t.Errorf("plan with %+v validated", s)
		}
	}
}

// abortingKexec stands for a live update that the kernel aborts: it takes
// a while and fails with EIO.
type abortingKexec struct{ noSystem }

func (abortingKexec) Kexec(string, string) error {
	time.Sleep(300 * time.Millisecond)
	return fmt.Errorf("reboot(LINUX_REBOOT_CMD_KEXEC): %w", unix.EIO)
}

// kexec_abort hammers a file while the live update is aborted; what the
// hammers wrote becomes part of the file's expected content, so a later
// verify checks it.
func TestKexecAbortHammers(t *testing.T) {
	files := []plan.File{{Name: "m", Flags: plan.MFDAllowSeal, Size: 1 << 20, Seed: 4, Extents: []plan.Extent{{Off: 0, Len: 64 << 10}}}}
	p := &plan.Plan{Scenario: t.Name(), Files: files, Stages: []plan.Stage{{Steps: []plan.Step{
		{Op: plan.OpCreateMemfd, File: "m"},
		{Op: plan.OpKexecAbort, File: "m", Kernel: "/kernels/x", Extent: plan.Extent{Off: 512 << 10, Len: 256 << 10}, Seed: 9, Expect: "EIO",
			Checks: []plan.Check{{Key: "fault_failed", Op: "==", Value: 0}, {Key: "write_failed", Op: "==", Value: 0}, {Key: "fault_pages", Op: "==", Value: 32}}},
		{Op: plan.OpVerify, File: "m"},
		{Op: plan.OpCorrupt, File: "m", Offset: 512<<10 + 5},
		{Op: plan.OpVerify, File: "m", Expect: "mismatch"},
	}}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a := New(p, 0, map[string]bool{}, rec, abortingKexec{}, io.Discard)
	if err := a.RunStage(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, ev := range rec.steps() {
		if !ev.Pass {
			t.Errorf("step %d %s: %s", ev.Step, ev.Op, ev.Detail)
		}
	}
	if v := rec.steps()[1].Values; v["write_pages"] != 32 || v["reboot_ms"] < 300 {
		t.Errorf("kexec_abort values %v", v)
	}
}
