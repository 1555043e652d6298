package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// HeadlineSize is the memfd size the headline ratios are quoted at.
const HeadlineSize = GiB

// TimeColumns lists the timing metrics of the tables, in order.
func TimeColumns() []string {
	return []string{MPreserve, MPreserveCPU, MReboot, MKernelToAgent, MRetrieve, MRetrieveCPU, MVerify, MBlackout, MWorkloadGap}
}

// MemColumns lists the memory metrics of the tables, in order.
func MemColumns() []string {
	return []string{MPreserved, MData, MMetadata, MPreserveFree, MPreserveExtra, MPreserveMigrate, MBlocksBefore, MBlocksAfter, MRetrievedBlocks}
}

// short column titles
func colTitle(key string) string {
	switch key {
	case MPreserve:
		return "preserve"
	case MReboot:
		return "reboot→kernel"
	case MKernelToAgent:
		return "kernel→agent"
	case MRetrieve:
		return "retrieve"
	case MVerify:
		return "verify"
	case MBlackout:
		return "blackout"
	case MWorkloadGap:
		return "workload gap"
	case MPreserveCPU:
		return "preserve CPU"
	case MRetrieveCPU:
		return "retrieve CPU"
	case MPreserved:
		return "preserved"
	case MData:
		return "data"
	case MMetadata:
		return "metadata"
	case MPreserveFree:
		return "MemFree drop@preserve"
	case MPreserveExtra:
		return "preserve overhead"
	case MPreserveMigrate:
		return "migrated@preserve"
	case MBlocksBefore:
		return "st_blocks before"
	case MBlocksAfter:
		return "st_blocks after"
	case MRetrievedBlocks:
		return "st_blocks retrieved"
	}
	return key
}

// sortedPoints orders points by backing (table order), size, then kernel
// (table order of the doc's kernels).
func sortedPoints(d *Doc) []*Point {
	kord := map[string]int{}
	for i, k := range d.Kernels {
		kord[k.Variant.Name] = i
	}
	bord := map[Backing]int{}
	for i, b := range Backings() {
		bord[b] = i
	}
	var ps []*Point
	for i := range d.Points {
		ps = append(ps, &d.Points[i])
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Backing != b.Backing {
			return bord[a.Backing] < bord[b.Backing]
		}
		if a.Size != b.Size {
			return a.Size < b.Size
		}
		return kord[a.Kernel] < kord[b.Kernel]
	})
	return ps
}

func termCell(s Stat, u Unit) string {
	if s.N == 0 {
		return "-"
	}
	c := FormatValue(u, s.Median)
	if sp := s.Spread(); s.N > 1 && sp > 0 {
		if math.IsInf(sp, 0) {
			c += " ±inf"
		} else {
			c += fmt.Sprintf(" ±%.0f%%", 50*sp)
		}
	}
	return c
}

// WriteTable prints the kernel-cost tables (timings, then memory) and the
// harness cost: medians, "±" half the relative spread when repeated.
func WriteTable(w io.Writer, d *Doc) {
	parts := []struct {
		title string
		cols  []string
	}{{"timings (median ±half the min–max spread)", TimeColumns()}, {"memory", MemColumns()}}
	if len(d.Points) == 0 {
		parts = nil
	}
	for _, part := range parts {
		fmt.Fprintf(w, "\n%s\n", part.title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		hdr := []string{"kernel", "backing", "size", "runs"}
		for _, c := range part.cols {
			hdr = append(hdr, colTitle(c))
		}
		fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
		for _, p := range sortedPoints(d) {
			row := []string{p.Kernel, string(p.Backing), FormatSize(p.Size), passedOf(p.Runs, p.Failed)}
			for _, c := range part.cols {
				m, _ := MetricByKey(c)
				row = append(row, termCell(p.Stats[c], m.Unit))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	if rs := Headlines(d); len(rs) > 0 {
		fmt.Fprintln(w, "\nratios in this run (median / median)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "backing\tsize\tkernels\tpreserve\tretrieve\tpreserve/cal\tretrieve/cal\tmetadata\tpreserved\tblackout\t")
		for _, r := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Backing, FormatSize(r.Size), r.Kernel, r.Baseline,
				r.Preserve.String(), r.Retrieve.String(), r.PreserveCal.String(), r.RetrieveCal.String(),
				r.Metadata.String(), r.Preserved.String(), r.Blackout.String())
		}
		tw.Flush()
	}
	WritePairedTable(w, d)
	if h := d.Harness; h != nil {
		fmt.Fprintf(w, "\nharness cost (kernel %s)\n", h.Kernel)
		if c := h.Catalogue; c != nil {
			fmt.Fprintf(w, "  default catalogue: %d scenarios in %d VMs, %d at once: %.1fs wall (%d passed, %d did not)\n",
				c.Scenarios, c.VMs, c.Parallel, c.WallS, c.Pass, c.NotPass)
		}
		if t := h.InTree; t != nil {
			fmt.Fprintf(w, "  in-tree vmtest.sh flow (%s): %s total (mkinitrd %s, QEMU %s), %d/%d passed\n", t.Test,
				termCell(t.Total, Seconds), termCell(t.Prep, Seconds), termCell(t.QEMU, Seconds), t.Runs-t.Failed, t.Runs)
		}
		for _, o := range h.Ours {
			ratio := "n/a"
			if o.Ratio > 0 {
				ratio = fmt.Sprintf("%.2f×", o.Ratio)
			}
			fmt.Fprintf(w, "  %s: %s (VM %s; %d/%d passed), %s the in-tree flow\n", o.Scenario, termCell(o.Wall, Seconds),
				termCell(o.VM, Seconds), o.Runs-o.Failed, o.Runs, ratio)
		}
	}
}

// RatioCell is a ratio of medians, or why there is none.
type RatioCell struct {
	Value float64
	OK    bool
	// Why explains a missing ratio.
	Why string
}

func (r RatioCell) String() string {
	if r.OK {
		return fmt.Sprintf("%.3f", r.Value)
	}
	if r.Why != "" {
		return "n/a (" + r.Why + ")"
	}
	return "n/a"
}

// Headline is one row of the headline ratios: a variant against the
// baseline, for one backing, at one size.
type Headline struct {
	Backing                       Backing
	Size                          int64
	Kernel, Baseline              string
	Metadata, Preserved, Blackout RatioCell
	// Preserve and Retrieve are the kernel's own phases: the preserve
	// ioctl and RETRIEVE_SESSION + RETRIEVE_FD.
	Preserve, Retrieve RatioCell
	// PreserveCal and RetrieveCal are the same phases divided by the
	// calibration taken around them in the same VM.
	PreserveCal, RetrieveCal RatioCell
}

// headlineSize picks the size the headline is quoted at: HeadlineSize
// when measured, else the largest measured size below it, else the
// smallest.
func headlineSize(d *Doc) int64 {
	var best int64
	var smallest int64 = math.MaxInt64
	for _, p := range d.Points {
		if p.Size == HeadlineSize {
			return p.Size
		}
		if p.Size < HeadlineSize && p.Size > best {
			best = p.Size
		}
		smallest = min(smallest, p.Size)
	}
	if best == 0 && smallest != math.MaxInt64 {
		return smallest
	}
	return best
}

// Headlines computes, per backing, every non-baseline variant's ratio to
// the baseline at the headline size.
func Headlines(d *Doc) []Headline {
	base := ""
	for _, k := range d.Kernels {
		if k.Variant.Baseline && k.Skipped == "" {
			base = k.Variant.Name
		}
	}
	if base == "" {
		return nil
	}
	size := headlineSize(d)
	find := func(k string, b Backing) *Point {
		for i := range d.Points {
			p := &d.Points[i]
			if p.Kernel == k && p.Backing == b && p.Size == size {
				return p
			}
		}
		return nil
	}
	ratio := func(num, den *Point, key string) RatioCell {
		n, dn := num.Stats[key], den.Stats[key]
		if n.N == 0 || dn.N == 0 {
			return RatioCell{Why: "not measured"}
		}
		if dn.Median <= 0 {
			m, _ := MetricByKey(key)
			return RatioCell{Why: base + " " + FormatValue(m.Unit, dn.Median)}
		}
		v, _ := Ratio(n, dn)
		return RatioCell{Value: v, OK: true}
	}
	var out []Headline
	for _, b := range Backings() {
		bp := find(base, b)
		if bp == nil {
			continue
		}
		for _, k := range d.Kernels {
			if k.Variant.Name == base || k.Skipped != "" {
				continue
			}
			kp := find(k.Variant.Name, b)
			if kp == nil {
				continue
			}
			out = append(out, Headline{Backing: b, Size: size, Kernel: k.Variant.Name, Baseline: base,
				Metadata: ratio(kp, bp, MMetadata), Preserved: ratio(kp, bp, MPreserved), Blackout: ratio(kp, bp, MBlackout),
				Preserve: ratio(kp, bp, MPreserve), Retrieve: ratio(kp, bp, MRetrieve),
				PreserveCal: ratio(kp, bp, MPreserveCal), RetrieveCal: ratio(kp, bp, MRetrieveCal)})
		}
	}
	return out
}

func mdCell(s Stat, u Unit) string {
	if s.N == 0 {
		return "–"
	}
	c := FormatValue(u, s.Median)
	if s.N > 1 {
		c += fmt.Sprintf(" [%s–%s]", FormatValue(u, s.Min), FormatValue(u, s.Max))
	}
	return c
}

// PlotSpec is one plot: a metric against memfd size for one backing,
// one line per kernel variant.
type PlotSpec struct {
	Metric  string
	Backing Backing
	// Base is the file name without extension (.png, .svg).
	Base string
}

// PlotMetrics are the metrics plotted against size.
func PlotMetrics() []string { return []string{MBlackout, MPreserve, MMetadata, MPreserved} }

// PlotSpecs lists the plots d has data for.
func PlotSpecs(d *Doc) []PlotSpec {
	var out []PlotSpec
	for _, m := range PlotMetrics() {
		for _, b := range Backings() {
			has := false
			for _, p := range d.Points {
				if p.Backing == b && p.Stats[m].N > 0 {
					has = true
				}
			}
			if has {
				out = append(out, PlotSpec{Metric: m, Backing: b, Base: fmt.Sprintf("%s-%s", strings.ReplaceAll(m, "_", "-"), b)})
			}
		}
	}
	return out
}

// MarkdownOptions say where the plots are, relative to the document.
type MarkdownOptions struct {
	// PlotDir is the plots' directory relative to the document
	// ("benchmarks"); empty leaves the plots out.
	PlotDir string
	// Command is the command that regenerates the document.
	Command string
}

// WriteMarkdown renders docs/benchmarks.md: the stamp, the ratios
// measured in this run first, then the tables, the plots and the clocks.
func WriteMarkdown(w io.Writer, d *Doc, o MarkdownOptions) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Benchmarks\n\n")
	p("<!-- Generated by `%s`; do not edit by hand. -->\n\n", o.Command)
	p("What preserving a memfd across kexec costs on the stock 7.3 kernel and with the series, and what the harness costs next to the kernel tree's own `vmtest.sh` flow. ")
	p("Nothing here is a pass/fail test. Regenerate with `make bench` (bound it with `ARGS='-reps 1 -max-size 256M'`); compare with an earlier run with `luotest bench -compare docs/benchmarks.json`.\n\n")
	p("| | |\n|---|---|\n")
	p("| date | %s (took %s) |\n", d.Started.UTC().Format("2006-01-02 15:04 MST"), (time.Duration(d.ElapsedS) * time.Second).String())
	p("| machine | %s |\n", mdEscape(d.Machine.Describe()))
	if d.Machine.Load != "" {
		p("| load average at start | %s (the machine may be shared: absolute times carry that noise) |\n", d.Machine.Load)
	}
	p("| accelerator | **%s** (%s) |\n", strings.ToUpper(d.Accel), mdEscape(d.AccelWhy))
	for _, k := range d.Kernels {
		if k.Skipped != "" {
			p("| kernel `%s` | skipped: %s |\n", k.Variant.Name, mdEscape(k.Skipped))
			continue
		}
		id := k.Release
		if k.Uname != "" {
			id = k.Uname
		}
		extra := ""
		if k.Variant.Cmdline != "" {
			extra = fmt.Sprintf(", command line `%s`", k.Variant.Cmdline)
		}
		p("| kernel `%s` | %s%s, bzImage sha256 %s |\n", k.Variant.Name, mdEscape(id), extra, k.SHA256)
	}
	sizes := make([]string, len(d.Config.Sizes))
	for i, s := range d.Config.Sizes {
		sizes[i] = FormatSize(s)
	}
	p("| workload | sizes %s; backings %s; %d repetition(s) per point, one VM each, %d VM(s) at once; guest RAM = size × 1.25 + %d MiB |\n",
		strings.Join(sizes, ", "), joinBackings(d.Config.Backings), d.Config.Reps, d.Config.Parallel, d.Config.HeadroomMB)
	if d.Config.CPUs > 0 {
		p("| vCPUs per VM | %d |\n", d.Config.CPUs)
	}
	if d.Config.ICount != "" {
		p("| guest clock | QEMU `-icount %s`: the kernel-cost and paired VMs' clocks count executed instructions (1 ns each at shift=0), so every guest-timed phase (preserve, retrieve, calibrate) is an instruction count, free of the host's speed; blackout and workload gap are host time, slowed by the instruction counting and by whatever else the host ran |\n", d.Config.ICount)
	}
	if d.Config.PairedReps > 0 {
		p("| paired | %d VM(s) per backing and size, %d kexecs each |\n", d.Config.PairedReps, d.Config.PairedHops)
	}
	if d.Command != "" {
		p("| command | `%s` |\n", d.Command)
	}
	p("\n")
	if strings.EqualFold(d.Accel, "tcg") {
		p("> **TCG:** every guest instruction is emulated, so absolute times are many times what hardware virtualization or bare metal gives, ")
		p("and memory-touching phases (writing, verifying, copying) are inflated most. Read the ratios below, measured in the same run on the same machine; ")
		p("the absolute figures only compare with runs on the same machine and accelerator.\n\n")
	}
	for _, n := range d.Notes {
		p("> %s\n\n", mdEscape(n))
	}

	p("## Ratios measured in this run\n\n")
	hs := Headlines(d)
	if len(hs) == 0 {
		p("No kernel pair to compare (the baseline or the other kernels were not measured).\n\n")
	} else {
		size := hs[0].Size
		var names []string
		for _, h := range hs {
			if !slices.Contains(names, h.Kernel) {
				names = append(names, h.Kernel)
			}
		}
		p("Median over median, %s against %s, at %s", strings.Join(names, " and "), hs[0].Baseline, FormatSize(size))
		if size != HeadlineSize {
			p(" (the largest size measured in this run; the headline size is %s)", FormatSize(HeadlineSize))
		}
		p(". Below 1 means cheaper than the baseline. *preserve* is the preserve ioctl, *retrieve* RETRIEVE_SESSION + RETRIEVE_FD in the new kernel; *metadata* is what the kernel keeps beyond the data itself; *preserved* is the whole MemTotal drop across kexec (data + metadata); *blackout* runs from the kexec step (kexec_file_load + reboot(KEXEC)) to the memfd retrieved in the new kernel. The *calibrated* columns divide each run's phase by a fixed CPU loop the agent timed right before and after it in the same VM, before taking the medians: under TCG a VM's speed moves by up to 2x with the host's load, and this divides it out.\n\n")
		p("| backing | kernels | preserve | retrieve | preserve, calibrated | retrieve, calibrated | metadata | preserved | blackout |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, h := range hs {
			p("| %s | %s / %s | %s | %s | %s | %s | %s | %s | %s |\n", h.Backing, h.Kernel, h.Baseline, h.Preserve, h.Retrieve, h.PreserveCal, h.RetrieveCal, h.Metadata, h.Preserved, h.Blackout)
		}
		p("\n")
	}
	writePairedMarkdown(p, d)
	writeMigration(p, d)
	if h := d.Harness; h != nil {
		p("### The harness against the kernel tree's own flow\n\n")
		p("Kernel `%s`, the same cached bzImage on both sides. ", h.Kernel)
		if t := h.InTree; t != nil {
			p("The in-tree flow is `%s/vmtest.sh` minus its kernel build: it compiles the nolibc `init` and `%s`, builds the two cpio archives with `gen_init_cpio` (*mkinitrd*), and boots `%s`. ",
				InTreeDir, t.Test, mdEscape(t.Command))
			p("vmtest.sh gives QEMU 30 s; the in-tree runs here may take longer (the bench allows more under TCG). ")
			p("Ours is the runner's time for one scenario in a VM of its own: u-root initramfs with the Go agent, boot, kexec, judge; *VM* is QEMU alone.\n\n")
			p("| | wall | ratio | VM (QEMU) | ratio |\n|---|---|---|---|---|\n")
			p("| in-tree `%s` (mkinitrd %s) | %s | 1 | %s | 1 |\n", t.Test, mdCell(t.Prep, Seconds), mdCell(t.Total, Seconds), mdCell(t.QEMU, Seconds))
			for _, o := range h.Ours {
				r, vr := "n/a", "n/a"
				if o.Ratio > 0 {
					r = fmt.Sprintf("**%.2f**", o.Ratio)
				}
				if o.VMRatio > 0 {
					vr = fmt.Sprintf("%.2f", o.VMRatio)
				}
				p("| ours: `%s` | %s | %s | %s | %s |\n", o.Scenario, mdCell(o.Wall, Seconds), r, mdCell(o.VM, Seconds), vr)
			}
			p("\n")
			if t.Failed > 0 {
				p("In-tree runs that failed: %s\n\n", mdEscape(strings.Join(t.Failures, "; ")))
			}
			if t.OnceS > 0 {
				p("One-off, before the first in-tree run: uAPI headers and `gen_init_cpio`, %.1fs (vmtest.sh gets both from its kernel build).\n\n", t.OnceS)
			}
		}
		for _, o := range h.Ours {
			if o.Failed > 0 {
				p("`%s` runs that did not pass: %s\n\n", o.Scenario, mdEscape(strings.Join(o.Failures, "; ")))
			}
		}
		if c := h.Catalogue; c != nil {
			p("The whole default catalogue, as `luotest run` runs it with a cached kernel (the VMs; the agent and the selftests were already built): **%.1fs** wall for %d scenarios in %d VMs, up to %d at once (%d passed, %d did not",
				c.WallS, c.Scenarios, c.VMs, c.Parallel, c.Pass, c.NotPass)
			if len(c.Failures) > 0 {
				p(": %s", mdEscape(strings.Join(c.Failures, ", ")))
			}
			p("). Measured once.\n\n")
		}
	}

	p("## Kernel cost\n\n")
	p("Each point is one memfd, preserved in one session, one kexec, retrieved and verified, in a VM of its own; cells are the median and [min–max] of the runs that passed. Failed runs are listed under the tables and left out of the figures.\n\n")
	for _, bk := range d.Config.Backings {
		pts := pointsOf(d, bk)
		if len(pts) == 0 {
			continue
		}
		p("### %s: %s\n\n", bk, bk.Describe())
		for _, cols := range [][]string{TimeColumns(), MemColumns()} {
			p("| size | kernel | runs |")
			for _, c := range cols {
				p(" %s |", colTitle(c))
			}
			p("\n|---|---|---|%s\n", strings.Repeat("---|", len(cols)))
			for _, pt := range pts {
				p("| %s | %s | %d |", FormatSize(pt.Size), pt.Kernel, pt.Runs-pt.Failed)
				for _, c := range cols {
					m, _ := MetricByKey(c)
					p(" %s |", mdCell(pt.Stats[c], m.Unit))
				}
				p("\n")
			}
			p("\n")
		}
		if hp := bk.HugePageSize(); hp > 0 {
			for _, pt := range pts {
				if st := pt.Stats[MMetadata]; st.N > 0 {
					pages := (pt.Size + hp - 1) / hp
					p("- %s: metadata per huge page %s (%d pages)\n", pt.ID(), FormatValue(Bytes, st.Median/float64(pages)), pages)
				}
			}
			p("\n")
		}
		for _, pt := range pts {
			for _, f := range pt.Failures {
				p("- %s: %s\n", pt.ID(), mdEscape(f))
			}
		}
	}
	if o.PlotDir != "" {
		specs := PlotSpecs(d)
		if len(specs) > 0 {
			p("## Plots\n\n")
			p("Median per size, bars from min to max; one line per kernel. SVG inline, PNG next to it.\n\n")
			for _, s := range specs {
				m, _ := MetricByKey(s.Metric)
				p("![%s, %s](%s/%s.svg)\n\n", m.Title, s.Backing, o.PlotDir, s.Base)
				p("[%s, %s (PNG)](%s/%s.png)\n\n", colTitle(s.Metric), s.Backing, o.PlotDir, s.Base)
			}
		}
	}
	p("## What each figure is, and which clock measures it\n\n")
	p("Host times come from the host's monotonic clock when it read an agent event from virtio-serial or a console line (timestamped as it arrived), counted from QEMU's start; they include the emulator's and the host's delays. Guest times are the guest's CLOCK_MONOTONIC around one step. Memory figures come from the guest's /proc/meminfo and fstat.\n\n")
	p("| figure | unit | clock |\n|---|---|---|\n")
	for _, m := range d.Metrics {
		p("| %s | %s | %s |\n", mdEscape(m.Title), m.Unit, mdEscape(m.Clock))
	}
	p("\nMemory snapshots are taken between steps: what the preserve ioctl allocates and frees again before it returns is invisible to them, so *preserve overhead* is what the ioctl kept, not its peak. ")
	p("The MemTotal drop is read in the new kernel before /dev/liveupdate is opened, while the preserved memory is still reserved; it also moves with anything else that differs between the two boots (a few hundred KiB between kernels of different size).\n\n")
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("writing markdown: %w", err)
	}
	return nil
}

// writeMigration explains, from this run's figures, what the preserve
// ioctl spends its time on as files grow: it pins with FOLL_LONGTERM, which
// first migrates every folio sitting in a CMA area, and KHO scratch is CMA.
func writeMigration(p func(string, ...any), d *Doc) {
	type row struct {
		size            int64
		kernel          string
		preserve, moved Stat
	}
	var rows []row
	for _, pt := range sortedPoints(d) {
		if pt.Backing != Dense4K {
			continue
		}
		m, ok := pt.Stats[MPreserveMigrate]
		if !ok || m.N == 0 {
			continue
		}
		rows = append(rows, row{pt.Size, pt.Kernel, pt.Stats[MPreserve], m})
	}
	if len(rows) == 0 {
		return
	}
	p("### Why preserve time grows faster than the file\n\n")
	p("Stock and the series pin the folios they preserve with `FOLL_LONGTERM` (`memfd_pin_folios()`, `memfd_pin_folios_populated()`), so that no preserved page stays in memory the next kernel boots from: KHO scratch, which is CMA. Pinning long-term first *migrates* (copies) every folio that sits in a CMA area. The page allocator serves movable allocations, such as shmem folios, from CMA once free CMA memory exceeds half of all free memory, so the bigger the file is next to the guest's RAM (here %s), the more of it lands in scratch and the more preserve copies. The migrated column is `pgmigrate_success` across the preserve ioctl, in bytes; 4k backing:\n\n", "RAM = size × 1.25 + 1 GiB")
	p("| size | kernel | preserve | migrated@preserve | preserve per GiB |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		perGiB := Stat{N: r.preserve.N, Median: r.preserve.Median * float64(GiB) / float64(r.size), Min: r.preserve.Min * float64(GiB) / float64(r.size), Max: r.preserve.Max * float64(GiB) / float64(r.size)}
		p("| %s | %s | %s | %s | %s |\n", FormatSize(r.size), r.kernel, mdCell(r.preserve, Seconds), mdCell(r.moved, Bytes), mdCell(perGiB, Seconds))
	}
	p("\nThe copy is the price of never booting the next kernel over preserved data, and stock pays it the same way: it is not the series' to remove. It is paid at preserve, while the workload still runs, not during the blackout.\n\n")
}

func pointsOf(d *Doc, b Backing) []*Point {
	var out []*Point
	for _, p := range sortedPoints(d) {
		if p.Backing == b {
			out = append(out, p)
		}
	}
	return out
}

func joinBackings(bs []Backing) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = string(b)
	}
	return strings.Join(s, ", ")
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "`", "'").Replace(s)
}

// passedOf says how many of n runs passed, and how many failed if any.
func passedOf(n, failed int) string {
	s := fmt.Sprint(n - failed)
	if failed > 0 {
		s += fmt.Sprintf(" (%d failed)", failed)
	}
	return s
}
