package bench

import (
	"fmt"
	"strings"

	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// HeadroomMB is the guest memory on top of the memfd's size: the kernel,
// the initramfs (which carries the kexec image) and the agent. A quarter
// of the size is added on top for what grows with the guest (struct
// pages, the KHO scratch areas, ~300 MiB of a 1 GiB guest). A stock
// kernel fills a sparse memfd's holes at preserve, so the size counts
// whole for every backing.
const HeadroomMB = 1024

// Meminfo labels of a bench plan. "populated", "preserved" and
// "before-open" are the labels report.PreservedKB reads.
const (
	LabelStart       = "start"
	LabelPopulated   = "populated"
	LabelPrePreserve = "pre-preserve"
	LabelPreserved   = "preserved"
	LabelBeforeOpen  = "before-open"
	LabelRetrieved   = "retrieved"
)

// thpCmdline turns shmem THP on for every mapping.
const thpCmdline = "transparent_hugepage_shmem=always"

// Workload is one memfd of the benchmark.
type Workload struct {
	Backing Backing
	Size    int64
}

// Name is the scenario name: bench-<backing>-<size>.
func (w Workload) Name() string {
	return "bench-" + string(w.Backing) + "-" + strings.ToLower(FormatSize(w.Size))
}

// File is the memfd the workload creates.
func (w Workload) File() plan.File {
	f := plan.File{Name: "m0", Flags: plan.MFDAllowSeal, Size: w.Size, Seed: 77}
	switch w.Backing {
	case THP:
		f.Write = plan.WriteMmap
	case Hugetlb2M:
		f.Flags |= plan.MFDHugetlb
		f.Write = plan.WriteMmap
	case Hugetlb1G:
		f.Flags |= plan.MFDHugetlb | plan.MFDHuge1GB
		f.Write = plan.WriteMmap
	case Sparse:
		each := w.Size / SparseFraction / SparseExtents
		each = max(each&^4095, 4096)
		for i := int64(0); i < SparseExtents; i++ {
			f.Extents = append(f.Extents, plan.Extent{Off: i * (w.Size / SparseExtents), Len: each})
		}
	}
	return f
}

// Written is how many bytes the workload writes.
func (w Workload) Written() int64 {
	f := w.File()
	if len(f.Extents) == 0 {
		return f.Size
	}
	var n int64
	for _, e := range f.Extents {
		n += e.Len
	}
	return n
}

// MemoryMB is the guest memory of the workload's VM.
func (w Workload) MemoryMB() int {
	mb := int(w.Size>>20) + int(w.Size>>22) + HeadroomMB
	if w.Backing == Hugetlb1G {
		// Each kernel's boot allocation needs free 1 GiB blocks, and
		// the next kernel's may only use blocks that hold no
		// preserved page: room for the pool twice over. KHO's
		// scratch areas, sized from early memblock use (the boot
		// pool's pages included), must still find a contiguous
		// place: in a 4 GiB guest (3 GiB below the PCI hole, 1 GiB
		// above) the first kernel failed to reserve them once
		// ("KHO: Failed to reserve nid 0 scratch buffer"), hence 4
		// GiB on top.
		mb = 2*int(w.Size>>20) + 4*HeadroomMB
	}
	return (mb + 255) &^ 255
}

// Pages is the number of huge pages a hugetlb workload's file has, 0 for
// the other backings.
func (w Workload) Pages() int64 {
	if hp := w.Backing.HugePageSize(); hp > 0 {
		return (w.Size + hp - 1) / hp
	}
	return 0
}

// Cmdline is what the workload adds to every kernel's command line.
func (w Workload) Cmdline() string {
	switch w.Backing {
	case THP:
		return thpCmdline
	case Hugetlb2M:
		return fmt.Sprintf("hugepagesz=2M hugepages=%d memfd_luo.abi=v3", w.Pages())
	case Hugetlb1G:
		return fmt.Sprintf("hugepagesz=1G hugepages=%d memfd_luo.abi=v3", w.Pages())
	}
	return ""
}

// Scenario compiles the workload into a scenario that runs solo: one
// memfd, one session, one kexec, with meminfo snapshots right around
// the preserve ioctl and before /dev/liveupdate is opened again.
func (w Workload) Scenario() *scenario.Scenario {
	f := w.File()
	s := &scenario.Scenario{
		Name: w.Name(),
		Description: fmt.Sprintf("benchmark: %s memfd of %s, %s written (%s)", w.Backing, FormatSize(w.Size),
			FormatSize(w.Written()), w.Backing.Describe()),
		Files:    []plan.File{f},
		MemoryMB: w.MemoryMB(),
		Cmdline:  w.Cmdline(),
		Tags:     []string{"bench", scenario.TagSolo},
	}
	populated := w.populatedStep()
	const token = 0x1000
	writer, resume := w.Writer()
	s.Stages = []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: LabelStart},
			{Op: plan.OpCreateMemfd, File: f.Name},
			populated,
			{Op: plan.OpCreateSession, Session: "s0"},
			{Op: plan.OpCalibrate},
			{Op: plan.OpMeminfo, Label: LabelPrePreserve},
			{Op: plan.OpPreserve, Session: "s0", File: f.Name, Token: token},
			{Op: plan.OpMeminfo, Label: LabelPreserved},
			{Op: plan.OpCalibrate},
			writer,
			{Op: plan.OpKexec},
		}},
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: LabelBeforeOpen},
			{Op: plan.OpCalibrate},
			{Op: plan.OpRetrieveSession, Session: "s0"},
			{Op: plan.OpRetrieve, Session: "s0", File: f.Name, Token: token},
			resume,
			{Op: plan.OpCalibrate},
			{Op: plan.OpMeminfo, Label: LabelRetrieved},
			{Op: plan.OpVerify, File: f.Name},
			{Op: plan.OpFinish, Session: "s0"},
		}},
	}
	return s
}

// Writer returns the workload's writer: a racer started right after the
// preserve (and the snapshot after it) that keeps writing the first
// pages of the memfd, a page per millisecond, through the kexec until
// the kernel stops it, with a heartbeat every 10 ms; and the step that
// resumes writing right after the retrieve, its first page again. The
// gap between the last heartbeat and that write is the blackout as the
// workload sees it (report.HopTimings.WorkloadGap). Mapped backings
// write through a shared mapping (hugetlbfs has no write()), the others
// with pwrite. The region lies in written data, so no page is added
// after the preserve.
func (w Workload) Writer() (start, resume plan.Step) {
	f := w.File()
	region := int64(64 << 10)
	if len(f.Extents) > 0 {
		region = min(region, f.Extents[0].Len)
	}
	how := "write"
	if f.Write == plan.WriteMmap {
		how = "fault"
		if hp := w.Backing.HugePageSize(); hp > 0 {
			// A mapping of a hugetlb file covers whole huge pages.
			region = hp
		}
	}
	start = plan.Step{Op: plan.OpRaceStart, File: f.Name, Seed: f.Seed + 1, Racers: []plan.Racer{
		{How: how, Extent: plan.Extent{Off: 0, Len: region}, Warm: 1, PaceUS: 1000, BeatMS: 10},
	}}
	// The write goes the way the file was written (plan.File.Write).
	resume = plan.Step{Op: plan.OpWrite, File: f.Name, Extent: plan.Extent{Off: 0, Len: 4096}, Seed: f.Seed + 2}
	return start, resume
}

// Job is one VM of the benchmark: a workload on a kernel variant, one
// repetition.
type Job struct {
	Variant  Variant
	Workload Workload
	Rep      int
}

// Dir is the job's artefact directory, relative to the run's.
func (j Job) Dir() string {
	return fmt.Sprintf("%s/%s/rep%d", j.Variant.Name, j.Workload.Name(), j.Rep)
}

// Jobs lists the VMs of a run, interleaved so that slow drift of the
// machine (other load, thermal) falls on every kernel alike: repetition
// outermost, then size, backing and kernel. Odd repetitions run the
// kernels in reverse order (ABBA), so that no kernel always goes first
// after another kernel's VM or always sees the machine one step later.
func Jobs(variants []Variant, backings []Backing, sizes []int64, reps int) []Job {
	var out []Job
	for r := 0; r < reps; r++ {
		for _, sz := range sizes {
			for _, b := range backings {
				for i := range variants {
					v := variants[i]
					if r%2 == 1 {
						v = variants[len(variants)-1-i]
					}
					out = append(out, Job{Variant: v, Workload: Workload{Backing: b, Size: sz}, Rep: r})
				}
			}
		}
	}
	return out
}
