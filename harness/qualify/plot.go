package qualify

import (
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotSpec is one of the soak's plots: a figure of each hop, per kernel.
type plotSpec struct {
	base, title, y string
	value          func(Hop) (float64, bool)
}

func plotSpecs() []plotSpec {
	return []plotSpec{
		{"soak-held", "soak: memory the handover held at boot", "MiB (MemTotal after finish - at boot)",
			func(h Hop) (float64, bool) { return float64(h.Held) / 1024, h.Held >= 0 }},
		{"soak-leak", "soak: memory finish did not give back", "kB less than at the kernel's first soak boot",
			func(h Hop) (float64, bool) { return float64(h.Leak), h.Baseline >= 0 && h.Finished >= 0 }},
		{"soak-drift", "soak: MemTotal after finish", "kB below the kernel's baseline",
			func(h Hop) (float64, bool) { return float64(h.Drift), h.Baseline >= 0 && h.Finished >= 0 }},
	}
}

// WritePlots draws the soak's memory per hop into dir (soak-held,
// soak-leak and soak-drift, as PNG and SVG), one line per kernel, and returns the files
// written.
func WritePlots(hops []Hop, dir string) ([]string, error) {
	if len(hops) < 2 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("soak plot: %w", err)
	}
	var files []string
	for _, s := range plotSpecs() {
		p := plot.New()
		p.Title.Text, p.X.Label.Text, p.Y.Label.Text = s.title, "hop", s.y
		var order []string
		lines := map[string]plotter.XYs{}
		for _, h := range hops[1:] {
			if _, ok := lines[h.Kernel]; !ok {
				order = append(order, h.Kernel)
				lines[h.Kernel] = nil
			}
			if v, ok := s.value(h); ok {
				lines[h.Kernel] = append(lines[h.Kernel], plotter.XY{X: float64(h.Hop), Y: v})
			}
		}
		var args []any
		for _, k := range order {
			if len(lines[k]) > 0 {
				args = append(args, k, lines[k])
			}
		}
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return files, fmt.Errorf("soak plot %s: %w", s.base, err)
		}
		for _, ext := range []string{"png", "svg"} {
			f := filepath.Join(dir, s.base+"."+ext)
			if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, f); err != nil {
				return files, fmt.Errorf("saving %s: %w", f, err)
			}
			files = append(files, f)
		}
	}
	return files, nil
}
