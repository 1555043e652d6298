package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WritePairedTable prints the paired points: per workload and phase, each
// kernel's median (n samples), the ratio of the medians, raw and
// calibrated, and the range of the per-VM ratios.
func WritePairedTable(w io.Writer, d *Doc) {
	if len(d.Paired) == 0 {
		return
	}
	fmt.Fprintln(w, "\npaired: both kernels on the same file in the same VM (median / median)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "backing\tsize\tphase\tbase (n)\tother (n)\tratio\tcalibrated\tper-VM ratios\tVMs\t")
	for _, p := range d.Paired {
		for _, ph := range p.Phases {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s (%d)\t%s %s (%d)\t%.3f\t%.3f\t%s\t%s\t\n", p.Backing, FormatSize(p.Size), ph.Phase,
				p.Base, FormatValue(Seconds, ph.Base.Median), ph.Base.N, p.Other, FormatValue(Seconds, ph.Other.Median), ph.Other.N,
				ph.Ratio, ph.RatioCal, vmRatioRange(ph), passedOf(p.VMs, p.Failed))
		}
		if len(p.Phases) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t%s\t\n", p.Backing, FormatSize(p.Size), passedOf(p.VMs, p.Failed))
		}
	}
	tw.Flush()
}

func vmRatioRange(ph PairedPhase) string {
	s := ph.VMRatioStat
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f–%.3f", s.Min, s.Max)
}

// writePairedMarkdown writes the paired section of benchmarks.md.
func writePairedMarkdown(p func(string, ...any), d *Doc) {
	if len(d.Paired) == 0 {
		return
	}
	first := d.Paired[0]
	p("### Paired: both kernels on the same file, in the same VM\n\n")
	p("Each VM fills one memfd on one kernel, then kexecs %d times, alternating %s and %s; every boot retrieves the file and preserves it again. ",
		first.Hops, first.Base, first.Other)
	p("Both kernels so preserve and retrieve the same folios at the same physical addresses, in the same QEMU process, seconds apart. ")
	p("The first preserve (after the fill, in a cold-booted kernel) is not counted. Half of the VMs start on each kernel. ")
	p("*ratio* is the median of every %s sample over the median of every %s sample; *calibrated* divides each sample by the CPU loop timed right before and after it first; *per-VM* is the same ratio within each VM.\n\n",
		first.Other, first.Base)
	p("| backing | size | phase | %s | %s | ratio | calibrated | per-VM ratios | VMs |\n|---|---|---|---|---|---|---|---|---|\n", first.Base, first.Other)
	for _, pt := range d.Paired {
		for _, ph := range pt.Phases {
			p("| %s | %s | %s | %s (n=%d) | %s (n=%d) | **%.3f** | %.3f | %s | %s |\n", pt.Backing, FormatSize(pt.Size), ph.Phase,
				mdCell(ph.Base, Seconds), ph.Base.N, mdCell(ph.Other, Seconds), ph.Other.N, ph.Ratio, ph.RatioCal,
				vmRatioRange(ph), passedOf(pt.VMs, pt.Failed))
		}
	}
	p("\n")
	var fails []string
	for _, pt := range d.Paired {
		fails = append(fails, pt.Failures...)
	}
	if len(fails) > 0 {
		p("Paired VMs that failed (left out): %s\n\n", mdEscape(strings.Join(fails, "; ")))
	}
}
