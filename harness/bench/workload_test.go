package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func TestWorkloadScenario(t *testing.T) {
	tests := []struct {
		w           Workload
		name        string
		written     int64
		memoryMB    int
		cmdline     string
		write       plan.WriteMode
		extents     int
		thpCheck    bool
		extentBytes int64
	}{
		{Workload{Dense4K, 64 * MiB}, "bench-4k-64m", 64 * MiB, 1024 + 64 + 192, "", "", 0, false, 0},
		{Workload{THP, GiB}, "bench-thp-1g", GiB, 2304, thpCmdline, plan.WriteMmap, 0, true, 0},
		{Workload{Sparse, 2 * GiB}, "bench-sparse-2g", 2 * GiB / 64, 3584, "", "", 16, false, 2 * GiB / 64 / 16},
		{Workload{Sparse, 64 * MiB}, "bench-sparse-64m", MiB, 1280, "", "", 16, false, 64 << 10},
	}
	hops := []scenario.Kexec{{Kernel: "/kernels/k", Cmdline: "console=ttyS0"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.w.Scenario()
			if s.Name != tt.name || tt.w.Name() != tt.name {
				t.Errorf("name %q, want %q", s.Name, tt.name)
			}
			if got := tt.w.Written(); got != tt.written {
				t.Errorf("written %d, want %d", got, tt.written)
			}
			if got := s.Memory(); got != tt.memoryMB || got%256 != 0 || int64(got)<<20 < tt.w.Size*5/4+HeadroomMB<<20 {
				t.Errorf("memory %d MiB, want %d (size × 1.25 + %d MiB, rounded to 256)", got, tt.memoryMB, HeadroomMB)
			}
			if s.Cmdline != tt.cmdline {
				t.Errorf("cmdline %q, want %q", s.Cmdline, tt.cmdline)
			}
			if !s.HasTag(scenario.TagSolo) || s.Batchable() {
				t.Error("a bench scenario must run solo")
			}
			f := s.Files[0]
			if f.Write != tt.write || len(f.Extents) != tt.extents || f.Size != tt.w.Size {
				t.Errorf("file %+v", f)
			}
			for i, e := range f.Extents {
				if e.Len != tt.extentBytes || e.Off%4096 != 0 || e.Off+e.Len > f.Size {
					t.Errorf("extent %d: %+v", i, e)
				}
				if i > 0 && e.Off <= f.Extents[i-1].Off+f.Extents[i-1].Len {
					t.Errorf("extent %d overlaps the previous", i)
				}
			}
			p, err := s.Plan(hops)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			if len(p.Stages) != 2 {
				t.Fatalf("%d stages, want 2", len(p.Stages))
			}
			// Stage 0: meminfo snapshots right around the preserve.
			st0 := p.Stages[0].Steps
			pi := indexOp(st0, plan.OpPreserve)
			if pi < 1 || st0[pi-1].Op != plan.OpMeminfo || st0[pi-1].Label != LabelPrePreserve ||
				st0[pi+1].Op != plan.OpMeminfo || st0[pi+1].Label != LabelPreserved {
				t.Errorf("stage 0 does not bracket preserve with meminfo: %v", ops(st0))
			}
			last := st0[len(st0)-1]
			if last.Op != plan.OpKexec || last.Kernel != "/kernels/k" {
				t.Errorf("stage 0 ends with %+v", last)
			}
			// The workload's writer starts after the preserve and
			// races the kexec, beating; inside written data.
			w := st0[len(st0)-2]
			if w.Op != plan.OpRaceStart || w.File != "m0" || len(w.Racers) != 1 || w.Racers[0].BeatMS <= 0 || w.Racers[0].Sweeps != 0 {
				t.Errorf("no writer before the kexec: %+v", w)
			} else if f := tt.w.File(); len(f.Extents) > 0 && w.Racers[0].Extent.End() > f.Extents[0].End() {
				t.Errorf("the writer's extent %+v leaves the data %+v", w.Racers[0].Extent, f.Extents[0])
			}
			hasCheck := false
			for _, step := range st0 {
				if step.Label == LabelPopulated && len(step.Checks) > 0 {
					hasCheck = true
				}
			}
			if hasCheck != tt.thpCheck {
				t.Errorf("THP check on populated: %v, want %v", hasCheck, tt.thpCheck)
			}
			// Stage 1: MemTotal before /dev/liveupdate is opened, then
			// retrieve, verify, finish.
			st1 := p.Stages[1].Steps
			if st1[0].Op != plan.OpMeminfo || st1[0].Label != LabelBeforeOpen {
				t.Errorf("stage 1 starts with %s %s", st1[0].Op, st1[0].Label)
			}
			// Calibrations bracket the retrieve (and the workload's
			// first write), as they bracket the preserve in stage 0.
			want := []plan.Op{plan.OpMeminfo, plan.OpCalibrate, plan.OpRetrieveSession, plan.OpRetrieve, plan.OpWrite, plan.OpCalibrate, plan.OpMeminfo, plan.OpVerify, plan.OpFinish}
			if fmt.Sprint(ops(st1)) != fmt.Sprint(want) {
				t.Errorf("stage 1 ops %v, want %v", ops(st1), want)
			}
			if ri := indexOp(st1, plan.OpRetrieve); ri < 0 || st0[pi].Token != st1[ri].Token {
				t.Errorf("preserve token %#x, retrieve %+v", st0[pi].Token, st1)
			}
			if pi < 2 || st0[pi-2].Op != plan.OpCalibrate || st0[pi+2].Op != plan.OpCalibrate {
				t.Errorf("stage 0 does not bracket preserve with calibrations: %v", ops(st0))
			}
		})
	}
}

func indexOp(steps []plan.Step, op plan.Op) int {
	for i, s := range steps {
		if s.Op == op {
			return i
		}
	}
	return -1
}

func ops(steps []plan.Step) []plan.Op {
	var out []plan.Op
	for _, s := range steps {
		out = append(out, s.Op)
	}
	return out
}

func TestJobsInterleaveKernels(t *testing.T) {
	vs := []Variant{{Name: "stock"}, {Name: "patched"}}
	js := Jobs(vs, []Backing{Dense4K, Sparse}, []int64{64 * MiB, 128 * MiB}, 3)
	if len(js) != 2*2*2*3 {
		t.Fatalf("%d jobs", len(js))
	}
	// Neighbouring jobs alternate kernels, stock first in even
	// repetitions and last in odd ones; repetitions are outermost.
	for i := 0; i+1 < len(js); i += 2 {
		a, b := js[i], js[i+1]
		first, second := "stock", "patched"
		if a.Rep%2 == 1 {
			first, second = second, first
		}
		if a.Variant.Name != first || b.Variant.Name != second || a.Workload != b.Workload || a.Rep != b.Rep {
			t.Errorf("jobs %d,%d: %+v %+v", i, i+1, a, b)
		}
	}
	if js[0].Rep != 0 || js[len(js)-1].Rep != 2 || js[7].Rep != 0 || js[8].Rep != 1 {
		t.Errorf("repetitions are not outermost")
	}
	dirs := map[string]bool{}
	for _, j := range js {
		if dirs[j.Dir()] {
			t.Errorf("duplicate dir %s", j.Dir())
		}
		dirs[j.Dir()] = true
	}
}

func TestHugetlbWorkload(t *testing.T) {
	tests := []struct {
		w        Workload
		pages    int64
		cmdline  string
		flags    uint32
		memoryMB int
		poolKey  string
	}{
		{Workload{Hugetlb2M, 64 * MiB}, 32, "hugepagesz=2M hugepages=32 memfd_luo.abi=v3", plan.MFDHugetlb, 1280, "hugepages-2048kB/free_hugepages"},
		{Workload{Hugetlb1G, GiB}, 1, "hugepagesz=1G hugepages=1 memfd_luo.abi=v3", plan.MFDHugetlb | plan.MFDHuge1GB, 6144, "hugepages-1048576kB/free_hugepages"},
	}
	for _, tt := range tests {
		t.Run(tt.w.Name(), func(t *testing.T) {
			if got := tt.w.Pages(); got != tt.pages {
				t.Errorf("pages %d, want %d", got, tt.pages)
			}
			if got := tt.w.Cmdline(); got != tt.cmdline {
				t.Errorf("cmdline %q, want %q", got, tt.cmdline)
			}
			f := tt.w.File()
			if f.Flags&tt.flags != tt.flags || f.Write != plan.WriteMmap || f.Size != tt.w.Size || len(f.Extents) != 0 {
				t.Errorf("file %+v: want flags %#x, mmap writes, the whole size", f, tt.flags)
			}
			if got := tt.w.MemoryMB(); got != tt.memoryMB {
				t.Errorf("memory %d MiB, want %d", got, tt.memoryMB)
			}
			s := tt.w.Scenario()
			var found bool
			for _, st := range s.Stages[0].Steps {
				for _, c := range st.Checks {
					found = found || (st.Label == LabelPopulated && c.Key == tt.poolKey && c.Op == "==" && c.Value == 0)
				}
			}
			if !found {
				t.Errorf("no check that the pool is used up after populating (%s == 0)", tt.poolKey)
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	series := t.TempDir()
	if err := os.MkdirAll(filepath.Join(series, "mm"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "module_param_cb(abi, &memfd_luo_abi_ops, NULL, 0644);\nerr = hugetlb_restore_folio(inode, folio, idx);\n"
	if err := os.WriteFile(filepath.Join(series, "mm", "memfd_luo.c"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	patched, stock := kernels.SourceCaps(series), kernels.SourceCaps(t.TempDir())
	for _, tt := range []struct {
		name string
		w    Workload
		k    map[string]bool
		want string
	}{
		{"4k on stock", Workload{Dense4K, GiB}, stock, ""},
		{"hugetlb on the series", Workload{Hugetlb2M, GiB}, patched, ""},
		{"hugetlb on stock", Workload{Hugetlb2M, GiB}, stock, "cannot preserve hugetlb memfds"},
		{"prebuilt kernel", Workload{Hugetlb1G, GiB}, kernels.SourceCaps(""), "cannot preserve hugetlb memfds"},
		{"partial gigantic page", Workload{Hugetlb1G, 512 * MiB}, patched, "not a whole number of 1G pages"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := SkipReason(tt.w, tt.k)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("SkipReason = %q, want %q", got, tt.want)
			}
		})
	}
}
