package bench

import (
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/report"
)

func TestFromResult(t *testing.T) {
	r := report.ScenarioResult{
		Kernels: []report.BootedKernel{{Stage: 0, Uname: "7.3.4 #1 SMP"}, {Stage: 1, Uname: "7.3.4 #1 SMP"}},
		Phases: report.Timings{Boot: 3 * time.Second, Hops: []report.HopTimings{{
			Preserve: 20 * time.Millisecond, Reboot: 600 * time.Millisecond, KernelToAgent: 1700 * time.Millisecond,
			Retrieve: 80 * time.Millisecond, Verify: 800 * time.Millisecond, Blackout: 2500 * time.Millisecond,
		}}},
		Steps: []report.StepResult{
			{Op: "preserve", Reported: true, Values: map[string]int64{"blocks_before": 2048, "blocks_after": 131072, "pgmigrate_success": 3, "cpu_ns": 15e6}},
			{Stage: 1, Op: "retrieve_session", Reported: true, Values: map[string]int64{"cpu_ns": 1e6}},
			{Stage: 1, Op: "retrieve", Reported: true, Values: map[string]int64{"cpu_ns": 60e6}},
			{Stage: 1, Op: "verify", Reported: true, Values: map[string]int64{"blocks": 131072, "data_bytes": 64 << 20}},
			{Stage: 1, Op: "verify", Reported: false, Values: map[string]int64{"blocks": 1}},
			// Calibrations: 10 and 30 ms around the preserve, 40 ms
			// (twice) around the retrieve; one never reported.
			{Op: "calibrate", Reported: true, Values: map[string]int64{"calib_ns": 10e6}},
			{Op: "calibrate", Reported: true, Values: map[string]int64{"calib_ns": 30e6}},
			{Stage: 1, Op: "calibrate", Reported: true, Values: map[string]int64{"calib_ns": 40e6}},
			{Stage: 1, Op: "calibrate", Reported: true, Values: map[string]int64{"calib_ns": 40e6}},
			{Stage: 1, Op: "calibrate", Reported: false, Values: map[string]int64{"calib_ns": 1}},
		},
		Meminfo: []report.MeminfoSnapshot{
			{Label: LabelPrePreserve, Values: map[string]int64{"MemFree": 900000}},
			{Label: LabelPreserved, Values: map[string]int64{"MemFree": 900000 - 65536 - 300}},
		},
		PreservedKB: []int64{65536 + 288},
	}
	s := FromResult(r, Sample{Verdict: "PASS"})
	want := map[string]float64{
		MBoot: 3, MPreserve: 0.02, MReboot: 0.6, MKernelToAgent: 1.7, MRetrieve: 0.08, MVerify: 0.8, MBlackout: 2.5,
		MBlocksBefore: 1 << 20, MBlocksAfter: 64 << 20, MData: 64 << 20, MRetrievedBlocks: 64 << 20,
		MPreserved: (65536 + 288) << 10, MMetadata: 288 << 10,
		MPreserveFree: (65536 + 300) << 10,
		// MemFree drop minus the 63 MiB the preserve populated.
		MPreserveExtra:   (65536+300)<<10 - (63 << 20),
		MPreserveMigrate: 3 * 4096,
		MCalibPreserve:   0.02, MPreserveCal: 1,
		MCalibRetrieve: 0.04, MRetrieveCal: 2,
		MPreserveCPU: 0.015, MRetrieveCPU: 0.061,
	}
	for k, v := range want {
		if got, ok := s.Values[k]; !ok || abs(got-v) > 1e-9 {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(s.Values) != len(want) {
		t.Errorf("%d values, want %d: %v", len(s.Values), len(want), s.Values)
	}
	if s.Uname != "7.3.4 #1 SMP" || !s.OK() {
		t.Errorf("uname %q ok %v", s.Uname, s.OK())
	}
}

func TestFromResultLeavesUnmeasuredOut(t *testing.T) {
	r := report.ScenarioResult{
		Phases:      report.Timings{Hops: []report.HopTimings{{Preserve: time.Millisecond}}},
		PreservedKB: []int64{-1},
		Meminfo:     []report.MeminfoSnapshot{{Label: LabelPrePreserve, Values: map[string]int64{"MemFree": 1}}},
	}
	s := FromResult(r, Sample{})
	if len(s.Values) != 1 || s.Values[MPreserve] != 0.001 {
		t.Errorf("values %v, want only preserve", s.Values)
	}
}
