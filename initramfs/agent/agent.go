// Package agent executes a plan.Plan inside the guest: one stage per boot,
// every step checked against its expectation and reported as a plan.Event.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/luo"
	"github.com/memfd-luo/memfd-luo/initramfs/pattern"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Emitter sends events to the host.
type Emitter interface {
	Emit(plan.Event) error
}

// System is what the agent needs from the machine besides LUO and memfds:
// it is swapped out in tests.
type System interface {
	// Kexec loads kernel with the running initramfs and cmdline and
	// reboots into it. It returns only on failure.
	Kexec(kernel, cmdline string) error
	// Meminfo returns /proc/meminfo in kB.
	Meminfo() (map[string]int64, error)
}

// Agent runs one stage of a plan.
type Agent struct {
	plan  *plan.Plan
	stage int
	emit  Emitter
	sys   System
	log   io.Writer
	caps  map[string]bool

	devPath  string // luo.DevicePath, or a stand-in in tests
	dev      *luo.Device
	devErr   error
	sessions map[string]*luo.Session
	files    map[string]*memfile
	models   map[string]*pattern.Model
	specs    map[string]*plan.File
	failed   int
	// races are the racers' extents per file (OpRaceStart), running
	// the racers of this stage not stopped yet.
	races   map[string][]*raceRegion
	running map[string]*raceRun

	// reaper waits for orphans, held off while a program runs.
	reaper *Reaper
	// crashed receives the panic of a background goroutine (goSafe).
	crashed chan error
	// grace is stepGrace (shorter in tests).
	grace time.Duration
}

// New returns an agent for stage of p.
func New(p *plan.Plan, stage int, caps map[string]bool, emit Emitter, sys System, log io.Writer) *Agent {
	a := &Agent{
		plan: p, stage: stage, emit: emit, sys: sys, log: &syncWriter{w: log}, caps: caps,
		reaper: &Reaper{}, crashed: make(chan error, 1), grace: stepGrace, devPath: luo.DevicePath,
		sessions: map[string]*luo.Session{},
		files:    map[string]*memfile{},
		models:   map[string]*pattern.Model{},
		specs:    map[string]*plan.File{},
		races:    map[string][]*raceRegion{},
		running:  map[string]*raceRun{},
	}
	for i := range p.Files {
		f := &p.Files[i]
		a.specs[f.Name] = f
		m := &pattern.Model{Size: f.Size}
		for _, e := range f.DataExtents() {
			m.Layers = append(m.Layers, pattern.Layer{Off: e.Off, Len: e.Len, Seed: f.Seed})
		}
		a.models[f.Name] = m
	}
	// Writes of earlier stages are part of what this stage must find.
	for si := 0; si < stage && si < len(p.Stages); si++ {
		for _, s := range p.Stages[si].Steps {
			switch s.Op {
			case plan.OpWrite:
				a.addWrite(s)
			case plan.OpKexecAbort:
				// Its hammers fill the whole extent (its checks
				// say so in that stage).
				a.addWrite(s)
			case plan.OpRaceStart:
				// Its racers may have run up to the kexec.
				a.addRace(s)
			}
		}
	}
	return a
}

func (a *Agent) addWrite(s plan.Step) {
	m := a.models[s.File]
	m.Layers = append(m.Layers, pattern.Layer{Off: s.Extent.Off, Len: s.Extent.Len, Seed: s.Seed})
	a.maskRaces(s.File, s.Extent)
}

func (a *Agent) logf(format string, args ...any) {
	fmt.Fprintf(a.log, plan.ConsolePrefix+" "+format+"\n", args...)
}

// Failed reports how many steps missed their expectation.
func (a *Agent) Failed() int { return a.failed }

// ReapOrphans waits for the children reparented to the agent (PID 1)
// until ctx ends, logging each.
func (a *Agent) ReapOrphans(ctx context.Context) {
	a.reaper.Run(ctx, func(c Reaped) {
		a.logf("reaped orphan pid %d (wait status %#x)", c.PID, uint32(c.Status))
	})
}

// RunStage executes every step of the agent's stage. For a non-final
// stage, a successful run ends in a kexec and never returns.
//
// Every step is announced before it runs (a console line and an
// EventStart) and runs under the plan's step deadline. A step past its
// deadline is reported with outcome "timeout" and ends the stage with an
// error; so does a panic in the agent, without a step report: the panic
// is the agent's failure, not the kernel's.
func (a *Agent) RunStage(ctx context.Context) error {
	if a.stage >= len(a.plan.Stages) {
		return fmt.Errorf("stage %d: the plan has only %d stages", a.stage, len(a.plan.Stages))
	}
	st := a.plan.Stages[a.stage]
	// Values of this stage's labelled meminfo steps, as "@label.Key",
	// for checks that compare with them.
	labelled := map[string]int64{}
	lastMemTotal, haveMemTotal := int64(0), false
	for i, s := range st.Steps {
		expect := s.Expectation(a.caps)
		if s.Op == plan.OpKexec {
			a.announce(i, s)
			// Report before leaving: the step only returns on failure.
			a.report(i, s, expect, "ok", true, "kexec_file_load + reboot(KEXEC)", 0, nil, "")
			cmdline := s.Cmdline
			if cmdline == "" {
				cmdline, _ = Cmdline()
			}
			res, _, stop := a.runStep(ctx, i, s, func(context.Context) result {
				return result{err: a.sys.Kexec(s.Kernel, NextCmdline(cmdline, a.stage+1, a.caps))}
			})
			var pe *panicError
			if errors.As(stop, &pe) {
				return fmt.Errorf("stage %d: %w", a.stage, stop)
			}
			a.report(i, s, expect, outcome(res.err), false, fmt.Sprintf("kexec into %s failed: %v", s.Kernel, res.err), 0, nil, "")
			return fmt.Errorf("stage %d: kexec: %w", a.stage, res.err)
		}
		if expect == "skip" {
			a.report(i, s, expect, "skip", true, "not run on this kernel", 0, nil, "")
			continue
		}
		a.announce(i, s)
		res, dur, stop := a.runStep(ctx, i, s, func(ctx context.Context) result { return a.do(ctx, i, s) })
		var pe *panicError
		if errors.As(stop, &pe) {
			return fmt.Errorf("stage %d: %w", a.stage, stop)
		}
		if s.Op == plan.OpMeminfo && res.err == nil {
			mt := res.values["MemTotal"]
			res.values["MemTotal_delta"] = 0
			if haveMemTotal {
				res.values["MemTotal_delta"] = mt - lastMemTotal
			}
			lastMemTotal, haveMemTotal = mt, true
		}
		if res.err == nil && !res.mismatch {
			var bad []string
			values := res.values
			if len(labelled) > 0 {
				values = make(map[string]int64, len(res.values)+len(labelled))
				for k, v := range labelled {
					values[k] = v
				}
				for k, v := range res.values {
					values[k] = v
				}
			}
			for _, c := range s.Checks {
				if c.Applies(a.caps) {
					if d := c.Eval(values); d != "" {
						bad = append(bad, d)
					}
				}
			}
			if len(bad) > 0 {
				res.mismatch = true
				res.detail = strings.TrimSpace(res.detail + " checks failed: " + strings.Join(bad, "; "))
			}
		}
		got := outcome(res.err)
		if res.mismatch {
			got = "mismatch"
		}
		pass := got == expectName(expect)
		detail := res.detail
		if res.err != nil && detail == "" {
			detail = res.err.Error()
		}
		if !pass {
			detail = fmt.Sprintf("expected %s, got %s: %s", expectName(expect), got, detail)
			if s.Cite != "" {
				detail += " [" + s.Cite + "]"
			}
		}
		a.report(i, s, expect, got, pass, detail, dur, res.values, res.output)
		if stop != nil {
			return fmt.Errorf("stage %d step %d %s: %w", a.stage, i, s.Op, stop)
		}
		if s.Op == plan.OpMeminfo && s.Label != "" {
			for k, v := range res.values {
				labelled["@"+s.Label+"."+k] = v
			}
		}
	}
	select {
	case err := <-a.crashed:
		return fmt.Errorf("stage %d: %w", a.stage, err)
	default:
	}
	return nil
}

// announce tells the console and the host that step i starts, and its
// deadline: should it never end, the host knows which step hung.
func (a *Agent) announce(i int, s plan.Step) {
	limit := a.stepTimeout()
	a.logf("stage %d step %d %s %s: start (deadline %s)", a.stage, i, s.Op, stepWhat(s), limit)
	ev := plan.Event{Kind: plan.EventStart, Stage: a.stage, Step: i, Op: s.Op, Detail: fmt.Sprintf("deadline %s", limit)}
	Stamp(&ev)
	if err := a.emit.Emit(ev); err != nil {
		a.logf("emitting event: %v", err)
	}
}

func expectName(e string) string {
	if plan.ExpectOK(e) {
		return "ok"
	}
	return e
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if n := luo.ErrnoName(err); n != "" {
		return n
	}
	var es exitStatus
	if errors.As(err, &es) {
		return es.Error()
	}
	var fe *faultError
	if errors.As(err, &fe) {
		return "fault"
	}
	return "error"
}

func (a *Agent) report(i int, s plan.Step, expect, got string, pass bool, detail string, dur time.Duration, values map[string]int64, output string) {
	if !pass {
		a.failed++
	}
	verdict := "ok"
	if !pass {
		verdict = "FAIL"
	}
	a.logf("stage %d step %d %s %s: %s (%s) %s", a.stage, i, s.Op, stepWhat(s), verdict, dur.Round(time.Microsecond), detail)
	ev := plan.Event{
		Kind: plan.EventStep, Stage: a.stage, Step: i, Op: s.Op,
		Outcome: got, Expect: expectName(expect), Pass: pass, Detail: detail,
		DurationNS: dur.Nanoseconds(), Values: values, Output: output,
	}
	Stamp(&ev)
	if err := a.emit.Emit(ev); err != nil {
		a.logf("emitting event: %v", err)
	}
}

func stepWhat(s plan.Step) string {
	var parts []string
	if s.Session != "" {
		parts = append(parts, "session="+s.Session)
	}
	if s.File != "" {
		parts = append(parts, "file="+s.File)
	}
	if s.Label != "" {
		parts = append(parts, "label="+s.Label)
	}
	if s.Other != "" {
		parts = append(parts, "other="+s.Other)
	}
	return strings.Join(parts, " ")
}

// Stamp sets the event's guest clocks.
func Stamp(ev *plan.Event) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) == nil {
		ev.BoottimeNS = ts.Nano()
	}
	if unix.ClockGettime(unix.CLOCK_REALTIME, &ts) == nil {
		ev.RealtimeNS = ts.Nano()
	}
}

// result is what one step produced.
type result struct {
	err      error
	output   string
	mismatch bool
	detail   string
	values   map[string]int64
}

func (a *Agent) device() (*luo.Device, error) {
	if a.dev == nil && a.devErr == nil {
		a.dev, a.devErr = luo.OpenPath(a.devPath)
		if errors.Is(a.devErr, unix.ENOENT) {
			a.devErr = fmt.Errorf("%w: the kernel has no LIVEUPDATE or was booted without liveupdate=on", a.devErr)
		}
	}
	return a.dev, a.devErr
}

func (a *Agent) session(name string) (*luo.Session, error) {
	s, ok := a.sessions[name]
	if !ok {
		return nil, fmt.Errorf("plan error: session %q is not open in this stage", name)
	}
	return s, nil
}

func (a *Agent) do(ctx context.Context, i int, s plan.Step) result {
	switch s.Op {
	case plan.OpCreateSession, plan.OpRetrieveSession:
		dev, err := a.device()
		if err != nil {
			return result{err: err}
		}
		var ss *luo.Session
		if s.Op == plan.OpCreateSession {
			ss, err = dev.CreateSession(s.Session)
		} else {
			ss, err = dev.RetrieveSession(s.Session)
		}
		if err == nil {
			a.sessions[s.Session] = ss
		}
		return result{err: err}
	case plan.OpCloseSession:
		ss, err := a.session(s.Session)
		if err != nil {
			return result{err: err}
		}
		delete(a.sessions, s.Session)
		return result{err: ss.Close()}
	case plan.OpFinish:
		ss, err := a.session(s.Session)
		if err != nil {
			return result{err: err}
		}
		return result{err: ss.Finish()}
	case plan.OpGetName:
		ss, err := a.session(s.Session)
		if err != nil {
			return result{err: err}
		}
		name, err := ss.GetName()
		if err == nil && name != s.Session {
			return result{mismatch: true, detail: fmt.Sprintf("GET_NAME returned %q, want %q", name, s.Session)}
		}
		return result{err: err}
	case plan.OpCreateMemfd:
		return a.createMemfd(a.specs[s.File])
	case plan.OpWrite:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
		}
		a.addWrite(s)
		return result{err: f.writePattern(s.Extent, s.Seed, a.specs[s.File].Write)}
	case plan.OpPreserve:
		return a.preserve(s)
	case plan.OpRetrieve:
		ss, err := a.session(s.Session)
		if err != nil {
			return result{err: err}
		}
		fd, err := ss.RetrieveFD(s.Token)
		if err != nil {
			return result{err: err}
		}
		if s.File != "" {
			a.files[s.File] = &memfile{name: s.File, fd: fd}
		}
		return result{}
	case plan.OpVerify:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q was not created or retrieved in this stage", s.File)}
		}
		if a.running[s.File] != nil {
			return result{err: fmt.Errorf("plan error: verify of %q while its racers run", s.File)}
		}
		return f.verify(a.specs[s.File], a.models[s.File], a.races[s.File])
	case plan.OpCorrupt:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
		}
		return result{err: f.flipByte(s.Offset)}
	case plan.OpCloseFile:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
		}
		delete(a.files, s.File)
		return result{err: unix.Close(f.fd)}
	case plan.OpMeminfo:
		mi, err := a.sys.Meminfo()
		return result{err: err, values: mi}
	case plan.OpPreserveOther:
		return a.preserveOther(s)
	case plan.OpRawIoctl:
		return a.rawIoctl(s)
	case plan.OpSetParam:
		return result{err: setModuleParam(s.Path, s.Data)}
	case plan.OpSysctl:
		return result{err: setSysctl("/proc/sys", s.Path, s.Data)}
	case plan.OpExec:
		return a.execProgram(ctx, i, s.Path, s.Args)
	case plan.OpKexecAbort:
		return a.kexecAbort(s)
	case plan.OpRaceStart:
		return a.raceStart(s)
	case plan.OpRaceStop:
		return a.raceStop(s)
	case plan.OpCgroup:
		if err := mountCgroup2(CgroupRoot); err != nil {
			return result{err: err}
		}
		return result{err: joinCgroup(CgroupRoot, s.Path, s.Args)}
	case plan.OpSwapon:
		return swapon(s.Data, a.sys)
	case plan.OpPageout:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
		}
		return f.pageout(s.Extent, a.sys)
	case plan.OpCalibrate:
		return calibrate(plan.CalibrateIters)
	case plan.OpScratchPages:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
		}
		return f.scratchPages(KHOScratchDir)
	case plan.OpCorruptHandover:
		f, ok := a.files[s.File]
		if !ok {
			return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
		}
		return corruptHandover(f, s.Data)
	case plan.OpOpenDevice:
		d, err := luo.OpenPath(a.devPath)
		if err == nil {
			d.Close()
		}
		return result{err: err}
	}
	return result{err: fmt.Errorf("plan error: unknown op %q", s.Op)}
}

func (a *Agent) preserve(s plan.Step) result {
	ss, err := a.session(s.Session)
	if err != nil {
		return result{err: err}
	}
	f, ok := a.files[s.File]
	if !ok {
		return result{err: fmt.Errorf("plan error: file %q is not open", s.File)}
	}
	before, _ := f.stat()
	run := a.running[s.File]
	vmBefore := readVmstat()
	racing := run.pagesDone()
	err = ss.PreserveFD(f.fd, s.Token)
	racing = run.pagesDone() - racing
	vmAfter := readVmstat()
	after, _ := f.stat()
	values := map[string]int64{
		"blocks_before": before.Blocks,
		"blocks_after":  after.Blocks,
	}
	if run != nil {
		// What racers (OpRaceStart) did while the ioctl ran: did
		// they really race it?
		values["race_pages_during"] = racing
	}
	// Pages the long-term pin moved out of CMA (KHO scratch) or
	// ZONE_MOVABLE during the preserve ioctl, from the machine-wide
	// counters (nothing else runs in the guest meanwhile).
	for _, k := range []string{"pgmigrate_success", "pgmigrate_fail"} {
		b, ok1 := vmBefore[k]
		a, ok2 := vmAfter[k]
		if ok1 && ok2 {
			values[k] = a - b
		}
	}
	return result{err: err, values: values}
}

func (a *Agent) preserveOther(s plan.Step) result {
	ss, err := a.session(s.Session)
	if err != nil {
		return result{err: err}
	}
	fd, cleanup, err := otherFile(s.Other)
	if err != nil {
		return result{err: err}
	}
	defer cleanup()
	return result{err: ss.PreserveFD(fd, s.Token)}
}

func (a *Agent) rawIoctl(s plan.Step) result {
	if s.Raw == nil {
		return result{err: fmt.Errorf("plan error: raw_ioctl without raw")}
	}
	var fd int
	if s.Raw.OnDevice {
		dev, err := a.device()
		if err != nil {
			return result{err: err}
		}
		fd = dev.FD()
	} else {
		ss, err := a.session(s.Session)
		if err != nil {
			return result{err: err}
		}
		fd = ss.FD()
	}
	r := luo.Raw{Cmd: s.Raw.Cmd, Size: s.Raw.Size, Reserved: s.Raw.Reserved, Name: s.Raw.Name, Tail: s.Raw.Tail, Token: s.Token, FD: -1}
	if s.File != "" {
		if f, ok := a.files[s.File]; ok {
			r.FD = int32(f.fd)
		}
	}
	out, err := luo.RawIoctl(fd, r)
	if err == nil && out >= 0 {
		// A created session or retrieved file: keep it open, like a
		// real user would, so the kernel state matches the ioctl's.
		if r.Cmd == "create_session" || r.Cmd == "retrieve_session" {
			a.sessions[s.Raw.Name] = luo.NewSession(out, s.Raw.Name)
		}
	}
	return result{err: err}
}

// Caps returns the sorted capability names for reporting.
func Caps(caps map[string]bool) []string {
	return slices.Sorted(maps.Keys(caps))
}
