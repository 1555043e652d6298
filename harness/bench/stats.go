package bench

import (
	"math"
	"sort"
)

// Stat summarises repeated measurements of one figure.
type Stat struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// Summarize returns the min, median and max of xs (the median of an even
// count is the mean of the middle two). NaNs are ignored; no values give
// N == 0.
func Summarize(xs []float64) Stat {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Stat{}
	}
	sort.Float64s(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Stat{N: n, Min: v[0], Median: med, Max: v[n-1]}
}

// Spread is the relative spread (max−min)/|median|: the noise of the
// figure. It is 0 for a single value and +Inf when the median is 0 but
// the values differ.
func (s Stat) Spread() float64 {
	if s.N < 2 || s.Max == s.Min {
		return 0
	}
	if s.Median == 0 {
		return math.Inf(1)
	}
	return (s.Max - s.Min) / math.Abs(s.Median)
}

// Overlaps reports whether the [min, max] ranges of s and t overlap.
func (s Stat) Overlaps(t Stat) bool {
	return s.Min <= t.Max && t.Min <= s.Max
}

// Ratio returns num.Median/den.Median, and false when it means nothing
// (a missing figure, or a denominator that is not positive).
func Ratio(num, den Stat) (float64, bool) {
	if num.N == 0 || den.N == 0 || den.Median <= 0 {
		return 0, false
	}
	return num.Median / den.Median, true
}

// Aggregate computes the per-metric statistics of p from its passing
// samples, and counts the failures.
func (p *Point) Aggregate() {
	by := map[string][]float64{}
	p.Runs, p.Failed, p.Failures = len(p.Samples), 0, nil
	for _, s := range p.Samples {
		if !s.OK() {
			p.Failed++
			p.Failures = append(p.Failures, s.Verdict+": "+s.Reason)
			continue
		}
		for k, v := range s.Values {
			by[k] = append(by[k], v)
		}
	}
	p.Stats = map[string]Stat{}
	for k, vs := range by {
		p.Stats[k] = Summarize(vs)
	}
}
