package bench

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want Stat
	}{
		{"empty", nil, Stat{}},
		{"only NaN", []float64{math.NaN()}, Stat{}},
		{"one", []float64{2}, Stat{N: 1, Min: 2, Median: 2, Max: 2}},
		{"odd, unsorted", []float64{5, 1, 3}, Stat{N: 3, Min: 1, Median: 3, Max: 5}},
		{"even: mean of the middle two", []float64{4, 1, 2, 10}, Stat{N: 4, Min: 1, Median: 3, Max: 10}},
		{"NaN ignored", []float64{1, math.NaN(), 3}, Stat{N: 2, Min: 1, Median: 2, Max: 3}},
		{"negative values", []float64{-3, -1, -2}, Stat{N: 3, Min: -3, Median: -2, Max: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.in); got != tt.want {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSummarizeDoesNotReorderInput(t *testing.T) {
	in := []float64{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("input reordered: %v", in)
	}
}

func TestSpreadOverlapsRatio(t *testing.T) {
	tests := []struct {
		name     string
		s        Stat
		spread   float64
		other    Stat
		overlaps bool
	}{
		{"single value has no spread", Stat{N: 1, Min: 2, Median: 2, Max: 2}, 0, Stat{N: 1, Min: 2, Median: 2, Max: 2}, true},
		{"20% spread", Stat{N: 3, Min: 9, Median: 10, Max: 11}, 0.2, Stat{N: 3, Min: 11, Median: 12, Max: 13}, true},
		{"disjoint ranges", Stat{N: 3, Min: 1, Median: 2, Max: 3}, 1, Stat{N: 3, Min: 4, Median: 5, Max: 6}, false},
		{"zero median, values differ", Stat{N: 3, Min: -1, Median: 0, Max: 1}, math.Inf(1), Stat{N: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Spread(); got != tt.spread {
				t.Errorf("Spread = %v, want %v", got, tt.spread)
			}
			if got := tt.s.Overlaps(tt.other); got != tt.overlaps {
				t.Errorf("Overlaps = %v, want %v", got, tt.overlaps)
			}
			if got := tt.other.Overlaps(tt.s); got != tt.overlaps {
				t.Errorf("Overlaps is not symmetric")
			}
		})
	}
	if r, ok := Ratio(Stat{N: 1, Median: 3}, Stat{N: 1, Median: 2}); !ok || r != 1.5 {
		t.Errorf("Ratio = %v, %v; want 1.5, true", r, ok)
	}
	for _, den := range []Stat{{}, {N: 1, Median: 0}, {N: 1, Median: -5}} {
		if _, ok := Ratio(Stat{N: 1, Median: 3}, den); ok {
			t.Errorf("Ratio over %+v is meaningful", den)
		}
	}
}

func TestAggregateLeavesFailuresOut(t *testing.T) {
	p := Point{Samples: []Sample{
		{Verdict: "PASS", Values: map[string]float64{MBlackout: 2, MPreserved: 100}},
		{Verdict: "FAIL", Reason: "stage 1 step 4 verify: mismatch", Values: map[string]float64{MBlackout: 99}},
		{Verdict: "PASS", Values: map[string]float64{MBlackout: 4}},
	}}
	p.Aggregate()
	if p.Runs != 3 || p.Failed != 1 || len(p.Failures) != 1 {
		t.Errorf("runs %d failed %d failures %v", p.Runs, p.Failed, p.Failures)
	}
	if got := p.Stats[MBlackout]; got != (Stat{N: 2, Min: 2, Median: 3, Max: 4}) {
		t.Errorf("blackout = %+v", got)
	}
	if got := p.Stats[MPreserved]; got.N != 1 {
		t.Errorf("preserved = %+v, want one value", got)
	}
}
