package report

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// step is one planned or reported step of a scenario: the plan's view
// (arguments, label) merged with the agent's report of it.
type step struct {
	Stage, Index int
	Op           plan.Op
	// Args describes the step's arguments ("session=s0 file=m0").
	Args  string
	Label string
	Path  string
	Cite  string
	// Reported is false for a planned step the agent never reported.
	Reported bool
	Expect   string
	Outcome  string
	Pass     bool
	Detail   string
	Duration time.Duration
	// Host is when the host received the report.
	Host   time.Duration
	Values map[string]int64
	Output string
	// KTAP is the parsed Output of an exec step, when it holds KTAP.
	KTAP *ktap.Report
}

// Name is the step's short name, "stage1.step4.verify".
func (s *step) Name() string { return fmt.Sprintf("stage%d.step%d.%s", s.Stage, s.Index, s.Op) }

// Status says how the step went in a few words.
func (s *step) Status() string {
	switch {
	case !s.Reported:
		return "NOT REPORTED"
	case s.Pass:
		return "PASS"
	}
	return "FAIL"
}

// Line is the step on one line, as the text reports print it.
func (s *step) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] stage %d step %d %s", s.Status(), s.Stage, s.Index, s.Op)
	if s.Args != "" {
		fmt.Fprintf(&b, " %s", s.Args)
	}
	if !s.Reported {
		fmt.Fprintf(&b, ": expect %s, never reported", s.Expect)
		return b.String()
	}
	fmt.Fprintf(&b, ": expect %s, got %s", s.Expect, s.Outcome)
	if s.Duration > 0 {
		fmt.Fprintf(&b, " (%s)", s.Duration)
	}
	if s.Detail != "" {
		fmt.Fprintf(&b, ": %s", s.Detail)
	}
	if !s.Pass && s.Cite != "" {
		fmt.Fprintf(&b, " [see %s]", s.Cite)
	}
	return b.String()
}

// events returns the run's agent events, or nil.
func events(o *runner.Outcome) []vm.TimedEvent {
	if o.VM == nil {
		return nil
	}
	return o.VM.Events
}

// stageCaps returns the capabilities each stage's agent reported.
func stageCaps(evs []vm.TimedEvent) map[int]map[string]bool {
	caps := map[int]map[string]bool{}
	for _, ev := range evs {
		if ev.Kind != plan.EventStage {
			continue
		}
		m := map[string]bool{}
		for _, c := range ev.Caps {
			m[c] = true
		}
		caps[ev.Stage] = m
	}
	return caps
}

// steps lists a scenario's steps: every planned step in plan order
// (reported or not), then reported steps the plan does not know.
func steps(o *runner.Outcome) []step {
	evs := events(o)
	byKey := map[[2]int]*vm.TimedEvent{}
	for i := range evs {
		if evs[i].Kind == plan.EventStep {
			byKey[[2]int{evs[i].Stage, evs[i].Step}] = &evs[i]
		}
	}
	caps := stageCaps(evs)
	var out []step
	used := map[[2]int]bool{}
	if o.Plan != nil {
		for si, st := range o.Plan.Stages {
			for i := range st.Steps {
				ps := &st.Steps[i]
				s := step{Stage: si, Index: i, Op: ps.Op, Args: describe(ps), Label: ps.Label,
					Path: ps.Path, Cite: ps.Cite, Expect: ps.Expectation(caps[si])}
				if s.Expect == "" {
					s.Expect = "ok"
				}
				key := [2]int{si, i}
				if ev := byKey[key]; ev != nil {
					used[key] = true
					fill(&s, ev)
				}
				out = append(out, s)
			}
		}
	}
	for i := range evs {
		ev := &evs[i]
		key := [2]int{ev.Stage, ev.Step}
		if ev.Kind != plan.EventStep || used[key] {
			continue
		}
		used[key] = true
		s := step{Stage: ev.Stage, Index: ev.Step, Op: ev.Op}
		fill(&s, ev)
		out = append(out, s)
	}
	return out
}

func fill(s *step, ev *vm.TimedEvent) {
	s.Reported = true
	if ev.Op != "" {
		s.Op = ev.Op
	}
	if ev.Expect != "" {
		s.Expect = ev.Expect
	}
	s.Outcome, s.Pass, s.Detail = ev.Outcome, ev.Pass, ev.Detail
	s.Duration = time.Duration(ev.DurationNS)
	s.Host, s.Values, s.Output = ev.Host, ev.Values, ev.Output
	if ev.Output != "" {
		if rep, err := ktap.Parse(strings.NewReader(ev.Output)); err == nil && rep.Found() {
			s.KTAP = rep
		}
	}
}

// describe renders a plan step's arguments the way the agent's console
// lines do.
func describe(s *plan.Step) string {
	var a []string
	add := func(k, v string) {
		if v != "" {
			a = append(a, k+"="+v)
		}
	}
	add("label", s.Label)
	add("session", s.Session)
	add("file", s.File)
	if s.Token != 0 {
		add("token", fmt.Sprintf("%#x", s.Token))
	}
	add("other", s.Other)
	add("kernel", s.Kernel)
	if s.Path != "" {
		add("path", strings.Join(append([]string{s.Path}, s.Args...), " "))
	}
	if s.Raw != nil {
		add("ioctl", s.Raw.Cmd)
	}
	return strings.Join(a, " ")
}

// execName names an exec step's program, for test names.
func execName(s *step) string {
	if s.Path != "" {
		return path.Base(s.Path)
	}
	return s.Name()
}

// Timings are a run's phase timings. Times measured on the host come from
// vm.Result: TimedEvent.Host (when the host received an agent event)
// and Result.Boots (when a "Linux version" banner reached the console),
// both counted from QEMU's start on the host's monotonic clock. Times
// measured in the guest are sums of Event.DurationNS (the guest's
// CLOCK_MONOTONIC around each step). A zero duration means the phase
// could not be measured (its events are missing).
type Timings struct {
	// Boot is host time from QEMU's start to the first agent stage
	// event: firmware, first kernel boot, agent start.
	Boot time.Duration `json:"boot_ns"`
	// Hops has one entry per kexec the agent reported.
	Hops []HopTimings `json:"hops,omitempty"`
}

// HopTimings are the timings of one kexec, from stage Hop into stage
// Hop+1.
type HopTimings struct {
	Hop int `json:"hop"`
	// Preserve is guest time: the sum of the preserve steps' durations
	// in stage Hop.
	Preserve time.Duration `json:"preserve_ns"`
	// Reboot is host time from the kexec step event to the next
	// "Linux version" banner (the new kernel starting).
	Reboot time.Duration `json:"reboot_ns"`
	// KernelToAgent is host time from that banner to the next stage
	// event (the new kernel booting up to the agent).
	KernelToAgent time.Duration `json:"kernel_to_agent_ns"`
	// Retrieve is guest time: the sum of the retrieve_session and
	// retrieve steps' durations in stage Hop+1.
	Retrieve time.Duration `json:"retrieve_ns"`
	// Verify is guest time: the sum of the verify steps' durations in
	// stage Hop+1.
	Verify time.Duration `json:"verify_ns"`
	// Blackout is host time from the kexec step event to the last
	// retrieve step event of stage Hop+1: how long the preserved
	// memory was out of reach of any process.
	Blackout time.Duration `json:"blackout_ns"`
	// WorkloadGap is the blackout as a workload saw it, host time from
	// the last heartbeat (plan.EventBeat) of a racer of stage Hop, the
	// last write the kernel let it make, to the first write step of
	// stage Hop+1 after its last retrieve: 0 when the plan has no such
	// writer.
	WorkloadGap time.Duration `json:"workload_gap_ns,omitempty"`
}

// kexecs returns the reported kexec step events, in order.
func kexecs(evs []vm.TimedEvent) []vm.TimedEvent {
	var ks []vm.TimedEvent
	for _, ev := range evs {
		if ev.Kind == plan.EventStep && ev.Op == plan.OpKexec {
			ks = append(ks, ev)
		}
	}
	return ks
}

// Phases computes the timings of o; see the Timings type for the clock
// behind each.
func Phases(o *runner.Outcome) Timings {
	var ph Timings
	evs := events(o)
	for _, ev := range evs {
		if ev.Kind == plan.EventStage {
			ph.Boot = ev.Host
			break
		}
	}
	var boots []time.Duration
	if o.VM != nil {
		boots = append(boots, o.VM.Boots...)
		sort.Slice(boots, func(i, j int) bool { return boots[i] < boots[j] })
	}
	guest := func(stage int, ops ...plan.Op) time.Duration {
		var d time.Duration
		for _, ev := range evs {
			if ev.Kind == plan.EventStep && ev.Stage == stage && containsOp(ops, ev.Op) {
				d += time.Duration(ev.DurationNS)
			}
		}
		return d
	}
	for i, k := range kexecs(evs) {
		h := HopTimings{Hop: i}
		next := k.Stage + 1
		h.Preserve = guest(k.Stage, plan.OpPreserve)
		h.Retrieve = guest(next, plan.OpRetrieveSession, plan.OpRetrieve)
		h.Verify = guest(next, plan.OpVerify)
		banner := time.Duration(-1)
		for _, b := range boots {
			if b > k.Host {
				banner = b
				break
			}
		}
		if banner >= 0 {
			h.Reboot = banner - k.Host
		}
		for _, ev := range evs {
			if ev.Kind == plan.EventStage && ev.Stage == next && ev.Host > k.Host {
				if banner >= 0 && ev.Host > banner {
					h.KernelToAgent = ev.Host - banner
				}
				break
			}
		}
		var retrieved time.Duration = -1
		for _, ev := range evs {
			if ev.Kind == plan.EventStep && ev.Stage == next && ev.Op == plan.OpRetrieve && ev.Host > k.Host {
				h.Blackout = ev.Host - k.Host
				retrieved = ev.Host
			}
		}
		h.WorkloadGap = workloadGap(evs, k.Stage, retrieved)
		ph.Hops = append(ph.Hops, h)
	}
	return ph
}

// workloadGap is the host time from the last beat of stage to the first
// write step of stage+1 after retrieved (the last retrieve's event), 0
// when either is missing.
func workloadGap(evs []vm.TimedEvent, stage int, retrieved time.Duration) time.Duration {
	if retrieved < 0 {
		return 0
	}
	last := time.Duration(-1)
	for _, ev := range evs {
		if ev.Kind == plan.EventBeat && ev.Stage == stage {
			last = max(last, ev.Host)
		}
	}
	if last < 0 {
		return 0
	}
	for _, ev := range evs {
		if ev.Kind == plan.EventStep && ev.Stage == stage+1 && ev.Op == plan.OpWrite && ev.Host >= retrieved {
			return ev.Host - last
		}
	}
	return 0
}

func containsOp(ops []plan.Op, op plan.Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// MeminfoSnapshot is one meminfo step's values, in kB as /proc/meminfo gives them.
type MeminfoSnapshot struct {
	Stage  int              `json:"stage"`
	Step   int              `json:"step"`
	Label  string           `json:"label,omitempty"`
	Host   time.Duration    `json:"host_ns"`
	Values map[string]int64 `json:"values"`
}

func meminfos(ss []step) []MeminfoSnapshot {
	var out []MeminfoSnapshot
	for _, s := range ss {
		if s.Op == plan.OpMeminfo && s.Reported && s.Values != nil {
			out = append(out, MeminfoSnapshot{Stage: s.Stage, Step: s.Index, Label: s.Label, Host: s.Host, Values: s.Values})
		}
	}
	return out
}

// PreservedKB returns, per kexec hop, how much MemTotal dropped across
// it, in kB: MemTotal at the "preserved" meminfo step (else
// "populated") of stage i minus MemTotal at the "before-open" step of
// stage i+1. Until /dev/liveupdate is opened, the memory the previous
// kernel preserved stays reserved, so the drop measures it. Without a
// plan (no labels), the last meminfo of stage i and the first of stage
// i+1 are used. An entry is -1 when a snapshot is missing.
func PreservedKB(o *runner.Outcome) []int64 {
	ks := kexecs(events(o))
	if len(ks) == 0 {
		return nil
	}
	snaps := meminfos(steps(o))
	memTotal := func(stage int, labels []string, last bool) (int64, bool) {
		var v int64
		found := false
		for _, m := range snaps {
			if m.Stage != stage {
				continue
			}
			if o.Plan != nil && !containsString(labels, m.Label) {
				continue
			}
			t, ok := m.Values["MemTotal"]
			if !ok {
				continue
			}
			if o.Plan != nil {
				// Prefer the first label listed.
				if !found || m.Label == labels[0] {
					v, found = t, true
				}
				continue
			}
			v, found = t, true
			if !last {
				break
			}
		}
		return v, found
	}
	out := make([]int64, len(ks))
	for i, k := range ks {
		before, ok1 := memTotal(k.Stage, []string{"preserved", "populated"}, true)
		after, ok2 := memTotal(k.Stage+1, []string{"before-open"}, false)
		if ok1 && ok2 {
			out[i] = before - after
		} else {
			out[i] = -1
		}
	}
	return out
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// BootedKernel is a kernel booted during a scenario.
type BootedKernel struct {
	Stage   int    `json:"stage"`
	Name    string `json:"name,omitempty"`
	Release string `json:"release,omitempty"`
	// Uname and Caps are what the agent reported from that kernel;
	// empty when no agent stage event came from it (the kernel did
	// not boot, or not far enough).
	Uname string   `json:"uname,omitempty"`
	Caps  []string `json:"caps,omitempty"`
}

// boots lists the kernels of o: the ones the runner planned to boot,
// with what the agent saw in each.
func boots(o *runner.Outcome) []BootedKernel {
	var out []BootedKernel
	for i, k := range o.Kernels {
		out = append(out, BootedKernel{Stage: i, Name: k.Name, Release: k.Release})
	}
	for _, ev := range events(o) {
		if ev.Kind != plan.EventStage {
			continue
		}
		for len(out) <= ev.Stage {
			out = append(out, BootedKernel{Stage: len(out)})
		}
		out[ev.Stage].Uname, out[ev.Stage].Caps = ev.Kernel, ev.Caps
	}
	return out
}
