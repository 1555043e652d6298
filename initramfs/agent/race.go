package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/pattern"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// How long OpRaceStart waits for its racers' warm-up, and OpRaceStop for
// them to stop.
const (
	raceWarmTimeout = 2 * time.Minute
	raceStopTimeout = time.Minute
)

// raceRegion is the extent of one racer of an OpRaceStart (this stage's or
// an earlier one's): any verify of its file checks it with a
// pattern.RaceChecker instead of the model.
type raceRegion struct {
	name  string // "fault0", "write1": how and number among the file's racers
	racer plan.Racer
	seed  uint64
	// masks are ranges written after the racers started: the model
	// checks them.
	masks []plan.Extent
	// pages is how many pages the racer did when it was stopped in this
	// stage, -1 if unknown (it is still running, or ran in an earlier
	// stage).
	pages int64
}

// addRace records the racers of s as regions of its file.
func (a *Agent) addRace(s plan.Step) []*raceRegion {
	var out []*raceRegion
	for _, r := range s.Racers {
		rg := &raceRegion{name: fmt.Sprintf("%s%d", r.How, len(a.races[s.File])), racer: r, seed: s.Seed, pages: -1}
		a.races[s.File] = append(a.races[s.File], rg)
		out = append(out, rg)
	}
	return out
}

// maskRaces notes that e of file was written after its racers started.
func (a *Agent) maskRaces(file string, e plan.Extent) {
	for _, rg := range a.races[file] {
		if e.Off < rg.racer.Extent.End() && rg.racer.Extent.Off < e.End() {
			rg.masks = append(rg.masks, e)
		}
	}
}

// racer is the goroutine of one plan.Racer.
type racer struct {
	plan.Racer
	region *raceRegion
	pages  atomic.Int64
	// Written by the goroutine, read after exited is closed.
	sweeps  int64
	longest time.Duration
	err     error
	exited  chan struct{}
}

// raceRun is the racers of one OpRaceStart.
type raceRun struct {
	racers []*racer
	stop   atomic.Bool
}

// pagesDone returns the pages the racers of run have done so far (0 for
// no run).
func (run *raceRun) pagesDone() int64 {
	if run == nil {
		return 0
	}
	n := int64(0)
	for _, r := range run.racers {
		n += r.pages.Load()
	}
	return n
}

// run sweeps until stop; its caller closes r.exited after it. With
// BeatMS set, beat is called with the pages done at most every BeatMS.
func (r *racer) run(f *memfile, seed uint64, stop *atomic.Bool, beat func(pages int64)) {
	pg := int64(unix.Getpagesize())
	var lastBeat time.Time
	buf := make([]byte, pg)
	var m []byte
	if r.How == "fault" {
		var err error
		var unmap func()
		if m, unmap, err = mapFaultSafe(f.fd, r.Extent, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			r.err = fmt.Errorf("%s: %w", r.region.name, err)
			return
		}
		defer unmap()
		defer func() {
			if p := recover(); p != nil {
				if !isFault(p) {
					panic(p) // a bug of the agent's, not the kernel's doing
				}
				r.err = fmt.Errorf("%s: fault after %d pages: %v", r.region.name, r.pages.Load(), p)
			}
		}()
	}
	for gen := int64(1); (r.Sweeps == 0 || gen <= r.Sweeps) && gen <= pattern.RaceMaxGen; gen++ {
		for off := r.Extent.Off; off < r.Extent.End(); off += pg {
			if stop.Load() {
				return
			}
			start := time.Now()
			if m != nil {
				pattern.RaceFill(m[off-r.Extent.Off:off-r.Extent.Off+pg], seed, off, gen)
			} else {
				pattern.RaceFill(buf, seed, off, gen)
				if _, err := unix.Pwrite(f.fd, buf, off); err != nil {
					r.err = fmt.Errorf("%s: pwrite at %#x: %w", r.region.name, off, err)
					return
				}
			}
			r.longest = max(r.longest, time.Since(start))
			n := r.pages.Add(1)
			if r.BeatMS > 0 && beat != nil && time.Since(lastBeat) >= time.Duration(r.BeatMS)*time.Millisecond {
				beat(n)
				lastBeat = time.Now()
			}
			if r.PaceUS > 0 {
				time.Sleep(time.Duration(r.PaceUS) * time.Microsecond)
			}
		}
		r.sweeps = gen
	}
}

// raceStart runs an OpRaceStart: it starts the racers and returns when
// each has done its warm-up pages (or stopped).
func (a *Agent) raceStart(s plan.Step) result {
	f, ok := a.files[s.File]
	if !ok {
		return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
	}
	if a.running[s.File] != nil {
		return result{err: fmt.Errorf("plan error: racers already run on %q", s.File)}
	}
	run := &raceRun{}
	for i, rg := range a.addRace(s) {
		r := &racer{Racer: s.Racers[i], region: rg, exited: make(chan struct{})}
		run.racers = append(run.racers, r)
		name := rg.name
		beat := func(pages int64) {
			ev := plan.Event{Kind: plan.EventBeat, Stage: a.stage, Detail: s.File + "/" + name, Values: map[string]int64{"pages": pages}}
			Stamp(&ev)
			// A lost beat only makes the gap look longer.
			_ = a.emit.Emit(ev)
		}
		a.goSafe("racer "+rg.name, func() { r.run(f, s.Seed, &run.stop, beat) }, func() { close(r.exited) })
	}
	a.running[s.File] = run
	deadline := time.Now().Add(raceWarmTimeout)
	vals := map[string]int64{}
	var errs []error
	for _, r := range run.racers {
	wait:
		for r.pages.Load() < r.Warm {
			select {
			case <-r.exited:
				if r.err != nil {
					errs = append(errs, r.err)
				}
				break wait
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("%s: %d of %d warm-up pages after %s", r.region.name, r.pages.Load(), r.Warm, raceWarmTimeout))
				break
			}
		}
		vals[r.region.name+"_warm_pages"] = r.pages.Load()
	}
	if len(errs) > 0 {
		// A failed warm-up leaves the racers running: race_stop
		// reports them.
		return result{err: errors.Join(errs...), values: vals}
	}
	return result{values: vals, detail: fmt.Sprintf("%d racers on %s warmed up", len(run.racers), s.File)}
}

// raceStop runs an OpRaceStop: it stops the racers of s.File and reports
// what they did. A racer's error (SIGBUS, a pwrite's errno) is the step's.
func (a *Agent) raceStop(s plan.Step) result {
	run := a.running[s.File]
	if run == nil {
		return result{err: fmt.Errorf("plan error: no racers run on %q", s.File)}
	}
	delete(a.running, s.File)
	run.stop.Store(true)
	deadline := time.After(raceStopTimeout)
	vals := map[string]int64{}
	var errs []error
	for _, r := range run.racers {
		n := r.region.name
		select {
		case <-r.exited:
		case <-deadline:
			errs = append(errs, fmt.Errorf("%s: still running %s after the stop (blocked in the kernel?)", n, raceStopTimeout))
			vals[n+"_failed"] = 1
			continue
		}
		r.region.pages = r.pages.Load()
		vals[n+"_pages"] = r.pages.Load()
		vals[n+"_sweeps"] = r.sweeps
		vals[n+"_longest_ms"] = r.longest.Milliseconds()
		vals[n+"_failed"] = 0
		if r.err != nil {
			vals[n+"_failed"] = 1
			errs = append(errs, r.err)
		}
	}
	res := result{values: vals}
	if len(errs) > 0 {
		// The first error's errno is the outcome.
		res.err = errs[0]
		if len(errs) > 1 {
			res.err = fmt.Errorf("%w; and %v", errs[0], errors.Join(errs[1:]...))
		}
	}
	return res
}

// checkRace checks the words of rg's extent in f that no later write
// masked against the racer's sweep order. It returns what it found and a
// description of any problem.
func (f *memfile) checkRace(rg *raceRegion, model *pattern.Model) (pattern.RaceState, string) {
	e := rg.racer.Extent
	c := &pattern.RaceChecker{Seed: rg.seed, Off: e.Off, Len: e.Len, MaxGen: rg.racer.Sweeps}
	got := make([]byte, min(chunk, e.Len))
	want := make([]byte, len(got))
	for off := e.Off; off < e.End(); {
		n := min(int64(len(got)), e.End()-off)
		r, err := unix.Pread(f.fd, got[:n], off)
		if err != nil || int64(r) != n {
			return pattern.RaceState{}, fmt.Sprintf("%s: pread(%d bytes at %#x): %d, %v", rg.name, n, off, r, err)
		}
		model.Expected(want[:n], off)
		for i := int64(0); i+8 <= n; i += 8 {
			if masked(rg.masks, off+i, off+i+8) {
				continue
			}
			c.Feed(binary.LittleEndian.Uint64(got[i:]), binary.LittleEndian.Uint64(want[i:]), off+i)
		}
		off += n
	}
	st := c.State()
	if st.Problem != "" {
		return st, fmt.Sprintf("%s (racer over %#x+%#x): %s", rg.name, e.Off, e.Len, st.Problem)
	}
	pgWords := int64(unix.Getpagesize()) / 8
	if st.Words > 0 && st.Progress < rg.racer.Warm*pgWords {
		return st, fmt.Sprintf("%s: the racer did %d pages before race_start returned, the file shows at most %d words (%d pages)",
			rg.name, rg.racer.Warm, st.Progress, st.Progress/pgWords)
	}
	if rg.pages >= 0 && len(rg.masks) == 0 && st.Progress != rg.pages*pgWords {
		return st, fmt.Sprintf("%s: the racer stopped after %d pages, the file shows %d words (%d pages)",
			rg.name, rg.pages, st.Progress, st.Progress/pgWords)
	}
	return st, ""
}

// masked reports whether any of masks overlaps [lo, hi).
func masked(masks []plan.Extent, lo, hi int64) bool {
	for _, m := range masks {
		if m.Off < hi && lo < m.End() {
			return true
		}
	}
	return false
}

// subtract returns the parts of e outside every mask, in order.
func subtract(e plan.Extent, masks []plan.Extent) []plan.Extent {
	out := []plan.Extent{e}
	for _, m := range masks {
		var next []plan.Extent
		for _, p := range out {
			if m.End() <= p.Off || p.End() <= m.Off {
				next = append(next, p)
				continue
			}
			if p.Off < m.Off {
				next = append(next, plan.Extent{Off: p.Off, Len: m.Off - p.Off})
			}
			if m.End() < p.End() {
				next = append(next, plan.Extent{Off: m.End(), Len: p.End() - m.End()})
			}
		}
		out = next
	}
	return out
}

// raceSkips returns the ranges of the racers' extents that the model must
// not check: everything no later write covered. (The bytes of a word that
// a later write covers only in part are checked by neither.)
func raceSkips(regions []*raceRegion) []plan.Extent {
	var out []plan.Extent
	for _, rg := range regions {
		out = append(out, subtract(rg.racer.Extent, rg.masks)...)
	}
	return out
}
