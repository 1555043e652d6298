package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"text/tabwriter"
)

// Load reads a bench JSON document.
func Load(path string) (*Doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bench results: %w", err)
	}
	var d Doc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if d.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q, want %q", path, d.Schema, Schema)
	}
	return &d, nil
}

// WriteJSON writes d, indented.
func WriteJSON(w io.Writer, d *Doc) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("writing bench JSON: %w", err)
	}
	return nil
}

// Delta is one figure in two runs.
type Delta struct {
	// Point is "kernel/backing/size" or "harness".
	Point  string
	Metric string
	Unit   Unit
	Old    Stat
	New    Stat
	// Rel is (new−old)/|old| of the medians; NaN when old is 0.
	Rel float64
	// Noise is the larger relative spread of the two runs.
	Noise float64
	// Significant: the [min, max] ranges do not overlap, and the
	// change is larger than the noise.
	Significant bool
}

// Compare pairs every figure of old with the same figure of new.
// Figures only one run has are left out.
func Compare(old, new *Doc) []Delta {
	var out []Delta
	add := func(point, metric string, unit Unit, o, n Stat) {
		if o.N == 0 || n.N == 0 {
			return
		}
		d := Delta{Point: point, Metric: metric, Unit: unit, Old: o, New: n, Rel: math.NaN()}
		if o.Median != 0 {
			d.Rel = (n.Median - o.Median) / math.Abs(o.Median)
		}
		d.Noise = math.Max(o.Spread(), n.Spread())
		d.Significant = !o.Overlaps(n) && !math.IsNaN(d.Rel) && math.Abs(d.Rel) > d.Noise
		out = append(out, d)
	}
	oldPts := map[string]*Point{}
	for i := range old.Points {
		oldPts[old.Points[i].ID()] = &old.Points[i]
	}
	for i := range new.Points {
		np := &new.Points[i]
		op := oldPts[np.ID()]
		if op == nil {
			continue
		}
		for _, m := range Metrics() {
			add(np.ID(), m.Key, m.Unit, op.Stats[m.Key], np.Stats[m.Key])
		}
	}
	if old.Harness != nil && new.Harness != nil {
		oh, nh := old.Harness, new.Harness
		if oh.InTree != nil && nh.InTree != nil {
			add("harness", "in-tree vmtest.sh flow", Seconds, oh.InTree.Total, nh.InTree.Total)
		}
		for _, n := range nh.Ours {
			for _, o := range oh.Ours {
				if o.Scenario == n.Scenario {
					add("harness", n.Scenario, Seconds, o.Wall, n.Wall)
				}
			}
		}
		if oh.Catalogue != nil && nh.Catalogue != nil {
			one := func(v float64) Stat { return Stat{N: 1, Min: v, Median: v, Max: v} }
			add("harness", "default catalogue wall", Seconds, one(oh.Catalogue.WallS), one(nh.Catalogue.WallS))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Point < out[j].Point })
	return out
}

// WriteCompare prints the deltas as a table: old and new medians, the
// change, and the noise (relative spread) of each run. "~" marks a change
// within the noise.
func WriteCompare(w io.Writer, old, new *Doc, ds []Delta) {
	fmt.Fprintf(w, "old: %s  %s  accel %s\n", old.Started.Format("2006-01-02 15:04"), old.Machine.Describe(), old.Accel)
	fmt.Fprintf(w, "new: %s  %s  accel %s\n", new.Started.Format("2006-01-02 15:04"), new.Machine.Describe(), new.Accel)
	if old.Accel != new.Accel || old.Machine.CPUModel != new.Machine.CPUModel || old.Machine.NProc != new.Machine.NProc {
		fmt.Fprintln(w, "warning: the runs differ in machine or accelerator; absolute deltas compare unlike things")
	}
	if len(ds) == 0 {
		fmt.Fprintln(w, "no figure in common")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "point\tmetric\told\tnew\tchange\tnoise old/new\t")
	sig := 0
	for _, d := range ds {
		mark := "~"
		if d.Significant {
			mark, sig = "!", sig+1
		}
		change := "n/a"
		if !math.IsNaN(d.Rel) {
			change = fmt.Sprintf("%+.1f%% %s", 100*d.Rel, mark)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s/%s\t\n", d.Point, d.Metric,
			FormatValue(d.Unit, d.Old.Median), FormatValue(d.Unit, d.New.Median), change, pct(d.Old.Spread()), pct(d.New.Spread()))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d figures changed beyond the noise (!); ~ is within it\n", sig, len(ds))
}

func pct(f float64) string {
	if math.IsInf(f, 0) {
		return "inf"
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}
