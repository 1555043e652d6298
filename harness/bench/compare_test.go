package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	old := testDoc()
	cur := testDoc()
	set := func(d *Doc, id, metric string, s Stat) {
		for i := range d.Points {
			if d.Points[i].ID() == id {
				d.Points[i].Stats[metric] = s
			}
		}
	}
	// Clearly faster: ranges apart.
	set(cur, "patched/4k/1G", MBlackout, st(4, 5, 6))
	// Within the noise: ranges overlap.
	set(cur, "stock/4k/1G", MBlackout, st(19, 21, 23))
	// A point the old run lacks is left out.
	cur.Points = append(cur.Points, Point{Kernel: "patched", Backing: THP, Size: GiB, Stats: map[string]Stat{MBlackout: st(1)}})
	cur.Harness.InTree.Total = st(12, 12, 12)

	ds := Compare(old, cur)
	find := func(point, metric string) *Delta {
		for i := range ds {
			if ds[i].Point == point && ds[i].Metric == metric {
				return &ds[i]
			}
		}
		return nil
	}
	tests := []struct {
		point, metric string
		rel           float64
		significant   bool
	}{
		{"patched/4k/1G", MBlackout, -0.5, true},
		{"stock/4k/1G", MBlackout, 0.05, false},
		{"stock/4k/512M", MBlackout, 0, false},
		{"harness", "in-tree vmtest.sh flow", 1, true},
		{"harness", "basic-64m", 0, false},
		{"harness", "default catalogue wall", 0, false},
	}
	for _, tt := range tests {
		d := find(tt.point, tt.metric)
		if d == nil {
			t.Errorf("%s %s: no delta", tt.point, tt.metric)
			continue
		}
		if math.Abs(d.Rel-tt.rel) > 1e-9 || d.Significant != tt.significant {
			t.Errorf("%s %s: rel %v significant %v, want %v %v", tt.point, tt.metric, d.Rel, d.Significant, tt.rel, tt.significant)
		}
	}
	if find("patched/thp/1G", MBlackout) != nil {
		t.Error("a point only the new run has was compared")
	}
	// stock/sparse metadata has a zero median: no relative change.
	if d := find("stock/sparse/1G", MMetadata); d == nil || !math.IsNaN(d.Rel) || d.Significant {
		t.Errorf("zero-median delta: %+v", d)
	}

	var b bytes.Buffer
	WriteCompare(&b, old, cur, ds)
	out := b.String()
	for _, want := range []string{"-50.0% !", "+5.0% ~", "noise old/new", "20%/20%", "+100.0% !", "n/a",
		"figures changed beyond the noise"} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "warning") {
		t.Errorf("same machine flagged as different:\n%s", out)
	}
	cur.Accel = "kvm"
	b.Reset()
	WriteCompare(&b, old, cur, ds)
	if !strings.Contains(b.String(), "warning: the runs differ") {
		t.Errorf("different accelerators not flagged")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.json")
	var b bytes.Buffer
	if err := WriteJSON(&b, testDoc()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ds := Compare(testDoc(), d)
	if len(ds) == 0 {
		t.Fatal("nothing compared")
	}
	for _, x := range ds {
		if x.Significant || (!math.IsNaN(x.Rel) && x.Rel != 0) {
			t.Errorf("a run differs from itself: %+v", x)
		}
	}
	os.WriteFile(path, []byte(`{"schema":"luotest-results/1"}`), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("wrong schema accepted: %v", err)
	}
}
