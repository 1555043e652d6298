package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotFormats are the files every plot is written as.
func PlotFormats() []string { return []string{"png", "svg"} }

// errPoints is a line's medians with their min–max bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// WritePlots writes every plot of PlotSpecs(d) into dir as PNG and SVG,
// and returns the files written.
func WritePlots(d *Doc, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("writing plots: %w", err)
	}
	var files []string
	for _, s := range PlotSpecs(d) {
		p, err := buildPlot(d, s)
		if err != nil {
			return files, fmt.Errorf("plot %s: %w", s.Base, err)
		}
		for _, ext := range PlotFormats() {
			f := filepath.Join(dir, s.Base+"."+ext)
			if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, f); err != nil {
				return files, fmt.Errorf("saving %s: %w", f, err)
			}
			files = append(files, f)
		}
	}
	return files, nil
}

// log2Ticks marks the sizes measured.
type sizeTicks []float64

func (t sizeTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for _, v := range t {
		out = append(out, plot.Tick{Value: v, Label: FormatSize(int64(v * float64(MiB)))})
	}
	return out
}

func buildPlot(d *Doc, s PlotSpec) (*plot.Plot, error) {
	m, _ := MetricByKey(s.Metric)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s — %s", colTitle(s.Metric), s.Backing)
	p.X.Label.Text = "memfd size"
	p.X.Scale = plot.LogScale{}
	scale, unit := 1.0, "s"
	if m.Unit == Bytes {
		scale, unit = float64(MiB), "MiB"
	}
	p.Y.Label.Text = fmt.Sprintf("%s (%s, median, min–max)", colTitle(s.Metric), unit)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	var sizes []float64
	seen := map[float64]bool{}
	ki := 0
	for _, k := range d.Kernels {
		if k.Skipped != "" {
			continue
		}
		var pts []*Point
		for i := range d.Points {
			pt := &d.Points[i]
			if pt.Kernel == k.Variant.Name && pt.Backing == s.Backing && pt.Stats[s.Metric].N > 0 {
				pts = append(pts, pt)
			}
		}
		if len(pts) == 0 {
			continue
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].Size < pts[j].Size })
		ep := errPoints{XYs: make(plotter.XYs, len(pts)), YErrors: make(plotter.YErrors, len(pts))}
		for i, pt := range pts {
			st := pt.Stats[s.Metric]
			x := float64(pt.Size) / float64(MiB)
			ep.XYs[i] = plotter.XY{X: x, Y: st.Median / scale}
			ep.YErrors[i].Low = (st.Median - st.Min) / scale
			ep.YErrors[i].High = (st.Max - st.Median) / scale
			if !seen[x] {
				seen[x] = true
				sizes = append(sizes, x)
			}
		}
		line, points, err := plotter.NewLinePoints(ep.XYs)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(ki)
		line.Dashes = plotutil.Dashes(ki)
		points.Color = plotutil.Color(ki)
		points.Shape = plotutil.Shape(ki)
		bars, err := plotter.NewYErrorBars(ep)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(ki)
		p.Add(line, points, bars)
		p.Legend.Add(k.Variant.Name, line, points)
		ki++
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("no data")
	}
	sort.Float64s(sizes)
	p.X.Tick.Marker = sizeTicks(sizes)
	p.X.Min, p.X.Max = sizes[0]/1.4, sizes[len(sizes)-1]*1.4
	if p.Y.Min > 0 {
		p.Y.Min = 0
	}
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min + 1
	}
	// Room for the legend above the highest point.
	p.Y.Max += 0.2 * (p.Y.Max - p.Y.Min)
	return p, nil
}
