package bench

import (
	"slices"

	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// Measure turns one bench run into a sample. Figures that could not be
// measured (their events or snapshots are missing) are left out.
func Measure(o *runner.Outcome) Sample {
	s := Sample{Values: map[string]float64{}, Dir: o.Dir, Verdict: string(o.Verdict), Reason: o.Reason}
	doc := report.NewResults(report.RunInfo{}, []*runner.Outcome{o})
	if len(doc.Scenarios) == 0 {
		return s
	}
	return FromResult(doc.Scenarios[0], s)
}

// FromResult fills s from a scenario's results.json entry (so a run's
// reports can be measured again without the VM).
func FromResult(r report.ScenarioResult, s Sample) Sample {
	if s.Values == nil {
		s.Values = map[string]float64{}
	}
	for _, k := range r.Kernels {
		if k.Uname != "" {
			s.Uname = k.Uname
			break
		}
	}
	set := func(key string, v float64) { s.Values[key] = v }
	secs := func(key string, d int64) {
		if d > 0 {
			set(key, float64(d)/1e9)
		}
	}
	secs(MBoot, int64(r.Phases.Boot))
	if len(r.Phases.Hops) > 0 {
		h := r.Phases.Hops[0]
		secs(MPreserve, int64(h.Preserve))
		secs(MReboot, int64(h.Reboot))
		secs(MKernelToAgent, int64(h.KernelToAgent))
		secs(MRetrieve, int64(h.Retrieve))
		secs(MVerify, int64(h.Verify))
		secs(MBlackout, int64(h.Blackout))
		secs(MWorkloadGap, int64(h.WorkloadGap))
	}
	// The calibrations around each phase (plan.OpCalibrate): stage 0's
	// around the preserve, stage 1's around the retrieve.
	if c, ok := meanCalibration(stageSteps(r.Steps, 0)); ok {
		set(MCalibPreserve, c)
		if v, ok := s.Values[MPreserve]; ok {
			set(MPreserveCal, v/c)
		}
	}
	if c, ok := meanCalibration(stageSteps(r.Steps, 1)); ok {
		set(MCalibRetrieve, c)
		if v, ok := s.Values[MRetrieve]; ok {
			set(MRetrieveCal, v/c)
		}
	}
	// Thread CPU time of the phases (agent steps report cpu_ns).
	if v, ok := cpuSeconds(stageSteps(r.Steps, 0), plan.OpPreserve); ok {
		set(MPreserveCPU, v)
	}
	if v, ok := cpuSeconds(stageSteps(r.Steps, 1), plan.OpRetrieveSession, plan.OpRetrieve); ok {
		set(MRetrieveCPU, v)
	}
	hop := report.FirstHop(r.Steps)
	before, after, retrieved, migrated := hop.BlocksBefore, hop.BlocksAfter, hop.BlocksRetrieved, hop.MigratedPages
	if before >= 0 {
		before *= 512
	}
	if after >= 0 {
		after *= 512
	}
	if retrieved >= 0 {
		retrieved *= 512
	}
	if migrated >= 0 {
		migrated *= 4096
	}
	if before >= 0 {
		set(MBlocksBefore, float64(before))
	}
	if after >= 0 {
		set(MBlocksAfter, float64(after))
		set(MData, float64(after))
	}
	if retrieved >= 0 {
		set(MRetrievedBlocks, float64(retrieved))
	}
	if migrated >= 0 {
		set(MPreserveMigrate, float64(migrated))
	}
	if len(r.PreservedKB) > 0 && r.PreservedKB[0] >= 0 {
		preserved := r.PreservedKB[0] * 1024
		set(MPreserved, float64(preserved))
		if after >= 0 {
			set(MMetadata, float64(preserved-after))
		}
	}
	free := func(label string) (int64, bool) {
		for _, m := range r.Meminfo {
			if m.Label == label {
				v, ok := m.Values["MemFree"]
				return v * 1024, ok
			}
		}
		return 0, false
	}
	if pre, ok1 := free(LabelPrePreserve); ok1 {
		if post, ok2 := free(LabelPreserved); ok2 {
			drop := pre - post
			set(MPreserveFree, float64(drop))
			if before >= 0 && after >= 0 {
				set(MPreserveExtra, float64(drop-(after-before)))
			}
		}
	}
	return s
}

// stageSteps returns the steps of one stage, in step order.
func stageSteps(steps []report.StepResult, stage int) []report.StepResult {
	var out []report.StepResult
	for _, st := range steps {
		if st.Stage == stage {
			out = append(out, st)
		}
	}
	return out
}

// meanCalibration is the mean of the calibrations (plan.OpCalibrate
// steps the agent reported, calib_ns) among steps, in seconds; false
// when there is none.
func meanCalibration(steps []report.StepResult) (float64, bool) {
	var sum float64
	n := 0
	for _, st := range steps {
		if st.Op == string(plan.OpCalibrate) && st.Reported {
			if v := st.Values["calib_ns"]; v > 0 {
				sum += float64(v) / 1e9
				n++
			}
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// cpuSeconds sums the thread CPU time (cpu_ns) of the reported steps of
// ops among steps; false when none of them reports it.
func cpuSeconds(steps []report.StepResult, ops ...plan.Op) (float64, bool) {
	var sum int64
	found := false
	for _, st := range steps {
		if !st.Reported || !slices.Contains(ops, plan.Op(st.Op)) {
			continue
		}
		if v, ok := st.Values["cpu_ns"]; ok {
			sum += v
			found = true
		}
	}
	return float64(sum) / 1e9, found
}
