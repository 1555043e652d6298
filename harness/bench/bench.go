// Package bench measures what preserving a memfd across kexec costs: per
// kernel (stock, patched, and every memfd_luo.abi setting once the series
// has one), per backing (4 KiB pages, shmem THP, sparse) and per size, with
// repeated runs reported as min/median/max; and what the harness itself
// costs next to the kernel tree's own vmtest.sh flow.
//
// The package turns runner outcomes into figures, and figures into a
// terminal table, a JSON document (luotest-bench/1) that later runs are
// compared with, plots and docs/benchmarks.md. Running the VMs is the
// caller's business (luotest bench); nothing here boots one, except
// RunInTree, which runs the kernel tree's own flow.
package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/kernels"
)

// Schema names the layout of the JSON document.
const Schema = "luotest-bench/1"

// MiB and GiB are byte counts.
const (
	MiB = int64(1) << 20
	GiB = int64(1) << 30
)

// Variant is one kernel setting the benchmark measures: a kernel and the
// command line it boots with. Every memfd_luo.abi setting is one line of
// Variants.
type Variant struct {
	// Name labels the variant in tables, plots and the JSON.
	Name string `json:"name"`
	// Spec is the kernel to prepare.
	Spec kernels.Spec `json:"spec"`
	// Cmdline is added to the kernel command line (every boot).
	Cmdline string `json:"cmdline,omitempty"`
	// Requires is a kernels.SourceCaps capability the patched source
	// must declare; without it the variant is skipped.
	Requires string `json:"requires,omitempty"`
	// Baseline marks the variant the others are compared with.
	Baseline bool `json:"baseline,omitempty"`
}

// Variants is the kernel table: stock is the baseline; the abi lines
// only run once the series has the memfd_luo.abi knob.
func Variants() []Variant {
	return []Variant{
		{Name: "stock", Spec: "stock", Baseline: true},
		{Name: "patched", Spec: "patched"},
		{Name: "patched-abi-v2", Spec: "patched", Cmdline: "memfd_luo.abi=v2", Requires: kernels.CapABIKnob},
		{Name: "patched-abi-v3", Spec: "patched", Cmdline: "memfd_luo.abi=v3", Requires: kernels.CapMemfdV3},
	}
}

// Backing is how a memfd's memory is populated.
type Backing string

// Backings.
const (
	// Dense4K: every byte written with pwrite into 4 KiB shmem pages.
	Dense4K Backing = "4k"
	// THP: every byte written through a shared mapping with shmem THP
	// enabled for every mapping (transparent_hugepage_shmem=always).
	THP Backing = "thp"
	// Sparse: 1/SparseFraction of the size written, in SparseExtents
	// evenly spaced extents; the rest are holes.
	Sparse Backing = "sparse"
	// Hugetlb2M and Hugetlb1G: an MFD_HUGETLB memfd of 2 MiB or 1 GiB
	// pages, every byte written through a shared mapping, from a boot
	// pool of exactly the file's pages (memfd_luo.abi=v3: the series
	// preserves hugetlb memfds in memfd-v3 only). Stock 7.3 refuses
	// them: kernels without the hugetlb capability are skipped.
	Hugetlb2M Backing = "hugetlb-2m"
	Hugetlb1G Backing = "hugetlb-1g"
)

// Sparse layout.
const (
	SparseFraction = 64
	SparseExtents  = 16
)

// Backings lists every backing, in table order.
func Backings() []Backing { return []Backing{Dense4K, THP, Sparse, Hugetlb2M, Hugetlb1G} }

// HugePageSize is the huge page size of a hugetlb backing, 0 for the
// others.
func (b Backing) HugePageSize() int64 {
	switch b {
	case Hugetlb2M:
		return 2 << 20
	case Hugetlb1G:
		return 1 << 30
	}
	return 0
}

// Describe says what the backing is, for the document.
func (b Backing) Describe() string {
	switch b {
	case Dense4K:
		return "every byte written with pwrite, 4 KiB shmem pages"
	case THP:
		return "every byte written through a shared mapping, transparent_hugepage_shmem=always"
	case Sparse:
		return fmt.Sprintf("1/%d of the size written in %d evenly spaced extents, the rest holes", SparseFraction, SparseExtents)
	case Hugetlb2M, Hugetlb1G:
		return fmt.Sprintf("MFD_HUGETLB memfd of %s pages, every byte written through a shared mapping, boot pool of the file's pages, memfd_luo.abi=v3 (stock 7.3 refuses hugetlb memfds: no baseline)",
			FormatSize(b.HugePageSize()))
	}
	return string(b)
}

// ParseBackings parses a comma-separated list of backings.
func ParseBackings(s string) ([]Backing, error) {
	var out []Backing
	for _, f := range splitList(s) {
		b := Backing(f)
		switch b {
		case Dense4K, THP, Sparse, Hugetlb2M, Hugetlb1G:
			out = append(out, b)
		default:
			return nil, fmt.Errorf("unknown backing %q: want 4k, thp, sparse, hugetlb-2m or hugetlb-1g", f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no backing selected")
	}
	return out, nil
}

// SelectVariants picks the variants named in s (comma-separated; "" means
// all) from table.
func SelectVariants(table []Variant, s string) ([]Variant, error) {
	if strings.TrimSpace(s) == "" {
		return table, nil
	}
	var out []Variant
	for _, n := range splitList(s) {
		found := false
		for _, v := range table {
			if v.Name == n {
				out, found = append(out, v), true
				break
			}
		}
		if !found {
			var names []string
			for _, v := range table {
				names = append(names, v.Name)
			}
			return nil, fmt.Errorf("unknown kernel variant %q: want one of %s", n, strings.Join(names, ", "))
		}
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ParseSize parses a byte count: a number with an optional K, M, G
// suffix (binary; "KiB", "MiB", "GiB" and "B" are accepted too).
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = MiB, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = GiB, strings.TrimSuffix(t, "G")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q: want e.g. 64M, 1G", s)
	}
	return n * mult, nil
}

// Sizes doubles from min up to and including max.
func Sizes(min, max int64) []int64 {
	var out []int64
	for s := min; s > 0 && s <= max; s *= 2 {
		out = append(out, s)
	}
	return out
}

// FormatSize renders a byte count the way the tables do: 64M, 1G.
func FormatSize(n int64) string {
	switch {
	case n >= GiB && n%GiB == 0:
		return fmt.Sprintf("%dG", n/GiB)
	case n >= MiB && n%MiB == 0:
		return fmt.Sprintf("%dM", n/MiB)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Unit is how a metric's values are expressed.
type Unit string

// Units.
const (
	Seconds Unit = "s"
	Bytes   Unit = "bytes"
	// Factor is a time divided by the calibration taken around it.
	Factor Unit = "x"
)

// Metric is one figure measured per run.
type Metric struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	Unit  Unit   `json:"unit"`
	// Clock says where the figure comes from: the host's clock on
	// console lines and events, the guest's clock around a step, or
	// guest counters.
	Clock string `json:"clock"`
}

// Metric keys.
const (
	MPreserve        = "preserve"
	MReboot          = "reboot"
	MKernelToAgent   = "kernel_to_agent"
	MRetrieve        = "retrieve"
	MVerify          = "verify"
	MBlackout        = "blackout"
	MWorkloadGap     = "workload_gap"
	MCalibPreserve   = "calib_preserve"
	MCalibRetrieve   = "calib_retrieve"
	MPreserveCal     = "preserve_calibrated"
	MRetrieveCal     = "retrieve_calibrated"
	MPreserveCPU     = "preserve_cpu"
	MRetrieveCPU     = "retrieve_cpu"
	MBoot            = "boot"
	MPreserved       = "preserved_bytes"
	MData            = "data_bytes"
	MMetadata        = "metadata_bytes"
	MPreserveFree    = "preserve_memfree_drop"
	MPreserveExtra   = "preserve_overhead"
	MPreserveMigrate = "preserve_migrated"
	MBlocksBefore    = "blocks_before_bytes"
	MBlocksAfter     = "blocks_after_bytes"
	MRetrievedBlocks = "retrieved_blocks_bytes"
)

const (
	clockGuest = "guest CLOCK_MONOTONIC around the step (agent event duration)"
	clockHost  = "host monotonic clock: when the host read the agent event or the console line, counted from QEMU's start; the kexec event leaves the guest just before kexec_file_load"
	clockMem   = "guest /proc/meminfo and st_blocks, reported by the agent"
)

// Metrics lists every figure, in table order.
func Metrics() []Metric {
	return []Metric{
		{MPreserve, "preserve ioctl (LIVEUPDATE_SESSION_PRESERVE_FD)", Seconds, clockGuest},
		{MReboot, "kexec: kexec_file_load + reboot(KEXEC) → first console line of the new kernel (\"Linux version\")", Seconds, clockHost},
		{MKernelToAgent, "new kernel banner → agent started", Seconds, clockHost},
		{MRetrieve, "retrieve (RETRIEVE_SESSION + RETRIEVE_FD)", Seconds, clockGuest},
		{MVerify, "verify every byte against the seeded pattern", Seconds, clockGuest},
		{MBlackout, "blackout: kexec_file_load + reboot(KEXEC) → memfd retrieved and usable", Seconds, clockHost},
		{MWorkloadGap, "blackout as the workload saw it: the writer's last write before the kernel stopped it (its last heartbeat) → its first write after retrieve", Seconds, clockHost},
		{MBoot, "QEMU start → agent of the first kernel", Seconds, clockHost},
		{MCalibPreserve, "calibration around the preserve: mean of a fixed CPU loop (plan.OpCalibrate) right before and after it", Seconds, clockGuest},
		{MCalibRetrieve, "calibration around the retrieve: mean of the fixed CPU loop right before RETRIEVE_SESSION and right after the retrieve (and the workload's first write)", Seconds, clockGuest},
		{MPreserveCPU, "preserve ioctl's thread CPU time (user + system): what it cost, without the time it gave other tasks", Seconds, clockGuest},
		{MRetrieveCPU, "retrieve's thread CPU time (RETRIEVE_SESSION + RETRIEVE_FD, user + system)", Seconds, clockGuest},
		{MPreserveCal, "preserve in calibrations: preserve ÷ the calibration around it (the guest's speed at that moment divided out)", Factor, clockGuest},
		{MRetrieveCal, "retrieve in calibrations: retrieve ÷ the calibration around it", Factor, clockGuest},
		{MPreserved, "preserved: MemTotal drop across kexec, measured before /dev/liveupdate is opened", Bytes, clockMem},
		{MData, "data preserved: st_blocks after preserve × 512", Bytes, clockMem},
		{MMetadata, "metadata: MemTotal drop minus data preserved", Bytes, clockMem},
		{MPreserveFree, "MemFree drop across the preserve ioctl", Bytes, clockMem},
		{MPreserveExtra, "memory the preserve ioctl kept beyond data it populated: MemFree drop − Δst_blocks × 512", Bytes, clockMem},
		{MPreserveMigrate, "memory the preserve ioctl migrated before pinning (out of CMA, i.e. KHO scratch, or ZONE_MOVABLE): Δpgmigrate_success × 4 KiB", Bytes, clockMem},
		{MBlocksBefore, "st_blocks × 512 before preserve", Bytes, clockMem},
		{MBlocksAfter, "st_blocks × 512 after preserve", Bytes, clockMem},
		{MRetrievedBlocks, "st_blocks × 512 of the retrieved memfd in the new kernel", Bytes, clockMem},
	}
}

// MetricByKey finds a metric definition.
func MetricByKey(key string) (Metric, bool) {
	for _, m := range Metrics() {
		if m.Key == key {
			return m, true
		}
	}
	return Metric{}, false
}

// FormatValue renders v in the metric's unit, compactly.
func FormatValue(u Unit, v float64) string {
	switch u {
	case Factor:
		return fmt.Sprintf("%.3g", v)
	case Seconds:
		switch a := abs(v); {
		case a == 0:
			return "0"
		case a < 0.01:
			return fmt.Sprintf("%.2fms", v*1e3)
		case a < 10:
			return fmt.Sprintf("%.3fs", v)
		}
		return fmt.Sprintf("%.1fs", v)
	case Bytes:
		switch a := abs(v); {
		case a >= float64(GiB):
			return fmt.Sprintf("%.2fG", v/float64(GiB))
		case a >= float64(MiB):
			return fmt.Sprintf("%.1fM", v/float64(MiB))
		case a >= 1<<10:
			return fmt.Sprintf("%.0fK", v/(1<<10))
		}
		return fmt.Sprintf("%.0fB", v)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// Doc is the JSON document of one bench run.
type Doc struct {
	Schema   string    `json:"schema"`
	Started  time.Time `json:"started"`
	ElapsedS float64   `json:"elapsed_s"`
	Command  string    `json:"command,omitempty"`
	Machine  Machine   `json:"machine"`
	// Accel is the accelerator the VMs ran with, AccelWhy why.
	Accel    string     `json:"accel"`
	AccelWhy string     `json:"accel_why,omitempty"`
	Kernels  []KernelID `json:"kernels"`
	Config   Config     `json:"config"`
	Metrics  []Metric   `json:"metrics"`
	Points   []Point    `json:"points"`
	// Paired are the workloads measured paired (PairedScenario).
	Paired  []PairedPoint `json:"paired,omitempty"`
	Harness *HarnessDoc   `json:"harness,omitempty"`
	// Notes are things the reader must know (skipped variants, ...).
	Notes []string `json:"notes,omitempty"`
}

// Machine is the host the run measured on.
type Machine struct {
	Host       string `json:"host,omitempty"`
	NProc      int    `json:"nproc"`
	MemTotalKB int64  `json:"mem_total_kb"`
	CPUModel   string `json:"cpu_model,omitempty"`
	// Load is /proc/loadavg when the run started: the machine may be
	// shared.
	Load string `json:"load,omitempty"`
}

// KernelID identifies a kernel variant as run.
type KernelID struct {
	Variant Variant `json:"variant"`
	Release string  `json:"release,omitempty"`
	// Uname is what the guest agent reported (uname -r and -v).
	Uname   string `json:"uname,omitempty"`
	BzImage string `json:"bzimage,omitempty"`
	// SHA256 is the first 16 hex digits of the bzImage's hash.
	SHA256 string `json:"sha256,omitempty"`
	// Skipped says why the variant was not run.
	Skipped string `json:"skipped,omitempty"`
}

// Config is what the run was asked to measure.
type Config struct {
	Reps     int       `json:"reps"`
	Sizes    []int64   `json:"sizes"`
	Backings []Backing `json:"backings"`
	Kernels  []string  `json:"kernels"`
	// HeadroomMB is the guest memory on top of the memfd's size.
	HeadroomMB int `json:"headroom_mb"`
	// Parallel is the number of VMs run at once.
	Parallel int `json:"parallel"`
	// PairedHops and PairedReps are the kexecs of one paired VM and the
	// number of paired VMs per workload (0: no paired points).
	PairedHops int `json:"paired_hops,omitempty"`
	PairedReps int `json:"paired_reps,omitempty"`
	// CPUs is the vCPU count of the kernel-cost and paired VMs (0: 2).
	CPUs int `json:"cpus,omitempty"`
	// ICount is QEMU's -icount setting of those VMs: with it, guest
	// times count executed instructions (1 ns each at shift=0).
	ICount string `json:"icount,omitempty"`
}

// Point is one (kernel, backing, size) cell with its repeated runs.
type Point struct {
	Kernel  string  `json:"kernel"`
	Backing Backing `json:"backing"`
	Size    int64   `json:"size"`
	// Written is how many bytes the workload writes.
	Written int64 `json:"written"`
	// MemoryMB is the guest memory.
	MemoryMB int `json:"memory_mb"`
	Runs     int `json:"runs"`
	// Failed counts runs that did not pass; their figures are left out.
	Failed   int             `json:"failed"`
	Failures []string        `json:"failures,omitempty"`
	Stats    map[string]Stat `json:"stats"`
	Samples  []Sample        `json:"samples,omitempty"`
}

// ID names the point in comparisons.
func (p *Point) ID() string {
	return fmt.Sprintf("%s/%s/%s", p.Kernel, p.Backing, FormatSize(p.Size))
}

// Sample is one run's figures, by metric key.
type Sample struct {
	Values map[string]float64 `json:"values"`
	// Dir holds the run's artefacts.
	Dir string `json:"dir,omitempty"`
	// Verdict is the runner's verdict; Reason says why it failed.
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	// Uname is the kernel the agent reported in the first boot.
	Uname string `json:"uname,omitempty"`
}

// OK reports whether the run passed and its figures count.
func (s Sample) OK() bool { return s.Verdict == "PASS" }
