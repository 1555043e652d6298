package agent

import (
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// raceFile is a sparse 1 MiB memfd: data in its first 256 KiB.
var raceFile = plan.File{Name: "m", Flags: plan.MFDAllowSeal, Size: 1 << 20, Seed: 3, Extents: []plan.Extent{{Off: 0, Len: 256 << 10}}}

// Racers over data and over a hole, stopped in the same stage: the
// verifier knows exactly how far each got; a later write masks them.
func TestRaceStartStopVerify(t *testing.T) {
	racers := []plan.Racer{
		{How: "fault", Extent: plan.Extent{Off: 128 << 10, Len: 256 << 10}, Warm: 80},
		{How: "write", Extent: plan.Extent{Off: 512 << 10, Len: 128 << 10}, Warm: 40},
	}
	evs := run(t, []plan.File{raceFile}, []plan.Step{
		{Op: plan.OpCreateMemfd, File: "m"},
		{Op: plan.OpRaceStart, File: "m", Seed: 11, Racers: racers},
		{Op: plan.OpRaceStop, File: "m", Checks: []plan.Check{{Key: "fault0_pages", Op: ">=", Value: 80}, {Key: "write1_failed", Op: "==", Value: 0}}},
		{Op: plan.OpVerify, File: "m"},
		{Op: plan.OpCorrupt, File: "m", Offset: 128<<10 + 9},
		{Op: plan.OpVerify, File: "m", Expect: "mismatch"},
		{Op: plan.OpWrite, File: "m", Extent: plan.Extent{Off: 128 << 10, Len: 512 << 10}, Seed: 12},
		{Op: plan.OpVerify, File: "m"},
	})
	for _, ev := range evs {
		if !ev.Pass {
			t.Errorf("step %d %s: %s", ev.Step, ev.Op, ev.Detail)
		}
	}
	if v := evs[3].Values; v["fault0_progress_pages"] != evs[2].Values["fault0_pages"] || v["write1_progress_pages"] != evs[2].Values["write1_pages"] {
		t.Errorf("verify found progress %v, the racers reported %v", v, evs[2].Values)
	}
	if !strings.Contains(evs[5].Detail, "fault0") {
		t.Errorf("a corrupted word in a racer's extent: %q", evs[5].Detail)
	}
}

// Racers still running when the stage ends (they race the kexec): the
// next stage's agent checks their extents against their sweep order only.
func TestRaceAcrossStages(t *testing.T) {
	racers := []plan.Racer{
		{How: "write", Extent: plan.Extent{Off: 0, Len: 64 << 10}, Warm: 16},
		{How: "fault", Extent: plan.Extent{Off: 768 << 10, Len: 64 << 10}, Warm: 4, Sweeps: 1, PaceUS: 2000},
	}
	p := &plan.Plan{Scenario: t.Name(), Files: []plan.File{raceFile}, Stages: []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpCreateMemfd, File: "m"},
			{Op: plan.OpRaceStart, File: "m", Seed: 21, Racers: racers},
			{Op: plan.OpKexec, Kernel: "/k"},
		}},
		{Steps: []plan.Step{{Op: plan.OpVerify, File: "m"}}},
	}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	a := New(p, 0, nil, &recorder{}, noSystem{}, io.Discard)
	_ = a.RunStage(t.Context()) // the kexec fails on the host
	// The CPUs stop: so do the racers, wherever they are.
	time.Sleep(20 * time.Millisecond)
	run := a.running["m"]
	run.stop.Store(true)
	for _, r := range run.racers {
		<-r.exited
	}
	next := func() []plan.Event {
		rec := &recorder{}
		b := New(p, 1, nil, rec, noSystem{}, io.Discard)
		b.files["m"] = a.files["m"]
		if err := b.RunStage(t.Context()); err != nil {
			t.Fatal(err)
		}
		return rec.steps()
	}
	ev := next()[0]
	if !ev.Pass || ev.Values["write0_progress_pages"] < 16 || ev.Values["fault1_gen"] != 1 {
		t.Fatalf("verify after the race: pass=%v %s %v", ev.Pass, ev.Detail, ev.Values)
	}
	// A page the faulter filled in the hole comes back as a hole.
	if err := unix.Fallocate(a.files["m"].fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 768<<10, 4096); err != nil {
		t.Fatal(err)
	}
	if ev := next()[0]; ev.Pass || !strings.Contains(ev.Detail, "fault1") {
		t.Errorf("a lost page of the faulter passed: %s", ev.Detail)
	}
}

func TestRaceStartValidation(t *testing.T) {
	for _, rs := range [][]plan.Racer{
		nil,
		{{How: "poke", Extent: plan.Extent{Off: 0, Len: 4096}}},
		{{How: "fault", Extent: plan.Extent{Off: 100, Len: 4096}}},
		{{How: "fault", Extent: plan.Extent{Off: 0, Len: 2 << 20}}},
		{{How: "fault", Extent: plan.Extent{Off: 0, Len: 8192}}, {How: "write", Extent: plan.Extent{Off: 4096, Len: 4096}}},
		{{How: "write", Extent: plan.Extent{Off: 0, Len: 8192}, Sweeps: 1, Warm: 3}},
	} {
		p := &plan.Plan{Scenario: "r", Files: []plan.File{raceFile}, Stages: []plan.Stage{{Steps: []plan.Step{{Op: plan.OpRaceStart, File: "m", Racers: rs}}}}}
		if err := p.Validate(); err == nil {
			t.Errorf("racers %+v validated", rs)
		}
	}
}

// A racer with BeatMS reports heartbeats with its progress while it
// runs, and none once stopped: the host times the workload's last write
// before a kexec by them.
func TestRaceBeats(t *testing.T) {
	p := &plan.Plan{Scenario: t.Name(), Files: []plan.File{raceFile}, Stages: []plan.Stage{{Steps: []plan.Step{
		{Op: plan.OpCreateMemfd, File: "m"},
		{Op: plan.OpRaceStart, File: "m", Seed: 31, Racers: []plan.Racer{
			{How: "write", Extent: plan.Extent{Off: 0, Len: 64 << 10}, Warm: 4, PaceUS: 500, BeatMS: 5},
			{How: "write", Extent: plan.Extent{Off: 64 << 10, Len: 64 << 10}, Warm: 4},
		}},
		{Op: plan.OpMeminfo, Label: "while-racing"},
	}}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a := New(p, 0, map[string]bool{}, rec, noSystem{}, io.Discard)
	if err := a.RunStage(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	stop := a.raceStop(plan.Step{Op: plan.OpRaceStop, File: "m"})
	if stop.err != nil {
		t.Fatal(stop.err)
	}
	beats := rec.of(plan.EventBeat)
	if len(beats) < 3 {
		t.Fatalf("%d beats in 60 ms with BeatMS 5", len(beats))
	}
	var last int64
	for _, b := range beats {
		if b.Detail != "m/write0" || b.Stage != 0 || b.Values["pages"] <= last || b.RealtimeNS == 0 {
			t.Errorf("beat %+v after %d pages", b, last)
		}
		last = b.Values["pages"]
	}
	if last > stop.values["write0_pages"] {
		t.Errorf("a beat reported %d pages, the racer stopped at %d", last, stop.values["write0_pages"])
	}
	time.Sleep(20 * time.Millisecond)
	if n := len(rec.of(plan.EventBeat)); n != len(beats) {
		t.Errorf("%d beats after the stop", n-len(beats))
	}
}
