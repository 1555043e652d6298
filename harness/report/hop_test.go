package report

import "testing"

func TestFirstHop(t *testing.T) {
	v := func(kv ...any) map[string]int64 {
		m := map[string]int64{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = int64(kv[i+1].(int))
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		steps []StepResult
		want  HopFigures
	}{
		{"nothing reported", []StepResult{{Stage: 0, Op: "preserve", Values: v("blocks_before", 8)}}, HopFigures{-1, -1, -1, -1}},
		{"one hop", []StepResult{
			{Stage: 0, Op: "create_memfd", Reported: true, Values: v("blocks", 99)},
			{Stage: 0, Op: "preserve", Reported: true, Values: v("blocks_before", 8, "blocks_after", 16, "pgmigrate_success", 3)},
			{Stage: 1, Op: "verify", Reported: true, Values: v("blocks", 16)},
		}, HopFigures{8, 16, 16, 3}},
		{"later hops do not count", []StepResult{
			{Stage: 0, Op: "preserve", Reported: true, Values: v("blocks_before", 8, "blocks_after", 16)},
			{Stage: 1, Op: "preserve", Reported: true, Values: v("blocks_before", 80, "blocks_after", 160)},
			{Stage: 1, Op: "verify", Reported: true, Values: v("blocks", 16)},
			{Stage: 2, Op: "verify", Reported: true, Values: v("blocks", 32)},
		}, HopFigures{8, 16, 16, -1}},
		{"a verify before the kexec does not count", []StepResult{
			{Stage: 0, Op: "verify", Reported: true, Values: v("blocks", 4)},
		}, HopFigures{-1, -1, -1, -1}},
		{"the last of several preserves counts", []StepResult{
			{Stage: 0, Op: "preserve", Reported: true, Values: v("blocks_before", 1, "blocks_after", 2)},
			{Stage: 0, Op: "preserve", Reported: true, Values: v("blocks_before", 3)},
		}, HopFigures{3, 2, -1, -1}},
	} {
		if got := FirstHop(tc.steps); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
