package bench

import (
	"fmt"
	"slices"

	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// The paired design measures two kernels on the same file in the same VM:
// the VM boots one kernel, fills the memfd and preserves it, then kexecs
// back and forth between the two, each boot retrieving the file and
// preserving it again. Both kernels then preserve and retrieve the same
// folios at the same physical addresses, in the same QEMU process, a few
// seconds apart. In the one-kernel-per-VM design (Scenario) a dense 1 GiB
// cell moved by 20-40% between VMs of the same kernel image under TCG,
// while a CPU loop timed around it (OpCalibrate) did not: the phases
// depend on the VM (where the file's folios lie, the host's state), not
// only on the kernel. Pairing takes the VM out of the comparison.
//
// It needs both kernels to read what the other writes (the series' default
// policy and stock 7.3 do) and to preserve the file alike: a sparse file is
// not paired, since stock fills its holes at the first preserve and the
// file is dense from then on.

// DefaultPairedHops is the number of kexecs of one paired VM: every
// kernel retrieves hops/2 times; stage 0's preserve (after the fill, in a
// cold-booted kernel) is not counted, so the first kernel preserves one
// time fewer than it retrieves.
const DefaultPairedHops = 8

// Phase names of paired samples.
const (
	PhasePreserve = "preserve"
	PhaseRetrieve = "retrieve"
)

// PairedSkipReason says why workload w is not measured paired, "" if it
// is; caps are the two kernels' kernels.SourceCaps.
func PairedSkipReason(w Workload, caps ...map[string]bool) string {
	if w.Backing == Sparse {
		return "stock fills a sparse file's holes when it preserves it, so after the first hop both kernels would preserve a dense file"
	}
	for _, c := range caps {
		if why := SkipReason(w, c); why != "" {
			return why
		}
	}
	return ""
}

// PairedScenario compiles the workload into a scenario of hops kexecs
// (at least 2) that preserves and retrieves the same memfd at every hop,
// with a calibration (OpCalibrate) right before and after each preserve
// and each retrieve. The file is verified once, in the last kernel: a
// verify in between would not change what is measured, only the VM time.
func (w Workload) PairedScenario(hops int) *scenario.Scenario {
	hops = max(hops, 2)
	f := w.File()
	const token = 0x1000
	preserve := []plan.Step{
		{Op: plan.OpCreateSession, Session: "s0"},
		{Op: plan.OpCalibrate},
		{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: token},
		{Op: plan.OpCalibrate},
		{Op: plan.OpKexec},
	}
	retrieve := []plan.Step{
		{Op: plan.OpCalibrate},
		{Op: plan.OpRetrieveSession, Session: "s0"},
		{Op: plan.OpRetrieve, Session: "s0", File: f.Name, Token: token},
		{Op: plan.OpCalibrate},
	}
	stages := []plan.Stage{{Steps: slices.Concat([]plan.Step{
		{Op: plan.OpMeminfo, Label: LabelStart},
		{Op: plan.OpCreateMemfd, File: f.Name},
		w.populatedStep(),
	}, preserve)}}
	for h := 1; h < hops; h++ {
		stages = append(stages, plan.Stage{Steps: slices.Concat(retrieve,
			[]plan.Step{{Op: plan.OpFinish, Session: "s0"}}, preserve)})
	}
	stages = append(stages, plan.Stage{Steps: slices.Concat(retrieve, []plan.Step{
		{Op: plan.OpVerify, File: f.Name},
		{Op: plan.OpFinish, Session: "s0"},
	})})
	return &scenario.Scenario{
		Name: "paired-" + w.Name(),
		Description: fmt.Sprintf("paired benchmark: one %s memfd of %s preserved and retrieved at each of %d kexecs alternating two kernels (%s)",
			w.Backing, FormatSize(w.Size), hops, w.Backing.Describe()),
		Files:    []plan.File{f},
		MemoryMB: w.MemoryMB(),
		Cmdline:  w.Cmdline(),
		Tags:     []string{"bench", scenario.TagSolo},
		Stages:   stages,
	}
}

// populatedStep is the meminfo snapshot after the fill, with the checks
// that make the figures mean something: the file is THP-backed, or its
// pages are the hugetlb pool's.
func (w Workload) populatedStep() plan.Step {
	populated := plan.Step{Op: plan.OpMeminfo, Label: LabelPopulated}
	if w.Backing == THP {
		populated.Checks = []plan.Check{{Key: "ShmemHugePages", Op: ">", Value: 0}}
	}
	if hp := w.Backing.HugePageSize(); hp > 0 {
		key := fmt.Sprintf("hugepages-%dkB/free_hugepages", hp>>10)
		populated.Checks = []plan.Check{{Key: key, Op: "==", Value: 0}}
	}
	return populated
}

// PairedJob is one VM of the paired design: Chain[i] is the variant that
// boot i runs (the two kernels alternating).
type PairedJob struct {
	Chain    []Variant
	Workload Workload
	Rep      int
}

// Dir is the job's artefact directory, relative to the run's.
func (j PairedJob) Dir() string {
	return fmt.Sprintf("paired/%s-%s/%s/rep%d", j.Chain[0].Name, j.Chain[1].Name, j.Workload.Name(), j.Rep)
}

// PairedJobs lists the paired VMs: per repetition, size and backing one
// VM of hops kexecs; even repetitions start on base, odd ones on other,
// so that each kernel is as often the one that filled the file.
func PairedJobs(base, other Variant, backings []Backing, sizes []int64, reps, hops int) []PairedJob {
	hops = max(hops, 2)
	var out []PairedJob
	for r := 0; r < reps; r++ {
		first, second := base, other
		if r%2 == 1 {
			first, second = other, base
		}
		chain := make([]Variant, hops+1)
		for i := range chain {
			chain[i] = first
			if i%2 == 1 {
				chain[i] = second
			}
		}
		for _, sz := range sizes {
			for _, b := range backings {
				out = append(out, PairedJob{Chain: chain, Workload: Workload{Backing: b, Size: sz}, Rep: r})
			}
		}
	}
	return out
}

// PairedSample is one phase of one boot of a paired VM.
type PairedSample struct {
	Rep    int    `json:"rep"`
	Stage  int    `json:"stage"`
	Kernel string `json:"kernel"`
	Phase  string `json:"phase"`
	// Seconds is the phase's guest time; Calibrated that divided by the
	// mean of the calibrations right before and after it (0 when there
	// is none); CPUSeconds the agent thread's CPU time in it.
	Seconds    float64 `json:"s"`
	Calibrated float64 `json:"calibrated,omitempty"`
	CPUSeconds float64 `json:"cpu_s,omitempty"`
}

// MeasurePaired reads the phases of one paired VM: boot i ran
// chain[i]. Stage 0's preserve is left out (it follows the fill in a
// cold-booted kernel; every other preserve follows a retrieve), and so
// is any phase whose steps were not all reported.
func MeasurePaired(r report.ScenarioResult, chain []string, rep int) []PairedSample {
	var out []PairedSample
	stages := 0
	for _, st := range r.Steps {
		stages = max(stages, st.Stage+1)
	}
	for stage := 0; stage < stages && stage < len(chain); stage++ {
		steps := stageSteps(r.Steps, stage)
		phases := []struct {
			name string
			ops  []plan.Op
		}{
			{PhaseRetrieve, []plan.Op{plan.OpRetrieveSession, plan.OpRetrieve}},
			{PhasePreserve, []plan.Op{plan.OpPreserve}},
		}
		for _, ph := range phases {
			if stage == 0 && ph.name == PhasePreserve {
				continue
			}
			if s, ok := phaseOf(steps, ph.ops); ok {
				s.Rep, s.Stage, s.Kernel, s.Phase = rep, stage, chain[stage], ph.name
				out = append(out, s)
			}
		}
	}
	return out
}

// phaseOf sums the steps of ops in one stage's steps (in step order) and
// calibrates the sum by the calibrate steps right before the first and
// right after the last of them.
func phaseOf(steps []report.StepResult, ops []plan.Op) (PairedSample, bool) {
	first, last := -1, -1
	var s PairedSample
	for i, st := range steps {
		if !slices.Contains(ops, plan.Op(st.Op)) {
			continue
		}
		if !st.Reported || !st.Pass {
			return s, false
		}
		if first < 0 {
			first = i
		}
		last = i
		s.Seconds += st.Duration.Seconds()
	}
	if first < 0 {
		return s, false
	}
	s.CPUSeconds, _ = cpuSeconds(steps[first:last+1], ops...)
	around := []report.StepResult{}
	if first > 0 {
		around = append(around, steps[first-1])
	}
	if last+1 < len(steps) {
		around = append(around, steps[last+1])
	}
	if c, ok := meanCalibration(around); ok {
		s.Calibrated = s.Seconds / c
	}
	return s, true
}

// PairedPhase compares the two kernels in one phase: other/base of the
// medians over every sample of the point, raw and calibrated, and the
// same ratio per VM, whose spread shows what the pooled figure hides.
type PairedPhase struct {
	Phase       string    `json:"phase"`
	Base        Stat      `json:"base"`
	Other       Stat      `json:"other"`
	BaseCal     Stat      `json:"base_calibrated"`
	OtherCal    Stat      `json:"other_calibrated"`
	Ratio       float64   `json:"ratio"`
	RatioCal    float64   `json:"ratio_calibrated"`
	VMRatios    []float64 `json:"vm_ratios,omitempty"`
	VMRatioStat Stat      `json:"vm_ratio"`
}

// PairedPoint is one workload measured paired.
type PairedPoint struct {
	Backing Backing `json:"backing"`
	Size    int64   `json:"size"`
	Hops    int     `json:"hops"`
	// Base is the baseline variant, Other the one compared with it.
	Base     string         `json:"base"`
	Other    string         `json:"other"`
	VMs      int            `json:"vms"`
	Failed   int            `json:"failed"`
	Failures []string       `json:"failures,omitempty"`
	Samples  []PairedSample `json:"samples,omitempty"`
	Phases   []PairedPhase  `json:"phases,omitempty"`
}

// Aggregate computes p.Phases from p.Samples.
func (p *PairedPoint) Aggregate() {
	p.Phases = nil
	for _, phase := range []string{PhasePreserve, PhaseRetrieve} {
		pick := func(kernel string, rep int, cal bool) []float64 {
			var xs []float64
			for _, s := range p.Samples {
				if s.Phase != phase || s.Kernel != kernel || (rep >= 0 && s.Rep != rep) {
					continue
				}
				v := s.Seconds
				if cal {
					if s.Calibrated <= 0 {
						continue
					}
					v = s.Calibrated
				}
				xs = append(xs, v)
			}
			return xs
		}
		ph := PairedPhase{Phase: phase,
			Base: Summarize(pick(p.Base, -1, false)), Other: Summarize(pick(p.Other, -1, false)),
			BaseCal: Summarize(pick(p.Base, -1, true)), OtherCal: Summarize(pick(p.Other, -1, true)),
		}
		if ph.Base.N == 0 || ph.Other.N == 0 {
			continue
		}
		ph.Ratio = ratio(ph.Other.Median, ph.Base.Median)
		ph.RatioCal = ratio(ph.OtherCal.Median, ph.BaseCal.Median)
		var reps []int
		for _, s := range p.Samples {
			if !slices.Contains(reps, s.Rep) {
				reps = append(reps, s.Rep)
			}
		}
		slices.Sort(reps)
		for _, rep := range reps {
			b, o := Summarize(pick(p.Base, rep, false)), Summarize(pick(p.Other, rep, false))
			if b.N > 0 && o.N > 0 {
				ph.VMRatios = append(ph.VMRatios, ratio(o.Median, b.Median))
			}
		}
		ph.VMRatioStat = Summarize(ph.VMRatios)
		p.Phases = append(p.Phases, ph)
	}
}

func ratio(a, b float64) float64 {
	if b <= 0 || a <= 0 {
		return 0
	}
	return a / b
}

// Phase returns the comparison of one phase, nil when it has none.
func (p *PairedPoint) Phase(name string) *PairedPhase {
	for i := range p.Phases {
		if p.Phases[i].Phase == name {
			return &p.Phases[i]
		}
	}
	return nil
}
