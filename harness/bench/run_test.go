package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/selftests"
)

// fakeKernels prepares "stock" and "patched" as files under dir (their
// hash goes into the document) and counts the preparations.
type fakeKernels struct {
	dir      string
	caps     map[string]bool
	fail     map[kernels.Spec]bool
	prepared []kernels.Spec
}

func (f *fakeKernels) prepare(_ context.Context, s kernels.Spec) (bootable.Kernel, error) {
	f.prepared = append(f.prepared, s)
	if f.fail[s] {
		return bootable.Kernel{}, errors.New("does not build")
	}
	p := filepath.Join(f.dir, string(s))
	if err := os.WriteFile(p, []byte("kernel "+s), 0o644); err != nil {
		return bootable.Kernel{}, err
	}
	return bootable.Kernel{Name: string(s), BzImage: p, Release: "7.3-" + string(s), SrcDir: "/src/" + string(s)}, nil
}

func (f *fakeKernels) sourceCaps(src string) map[string]bool {
	if src == "/src/patched" {
		return f.caps
	}
	return nil
}

func variants(t *testing.T, list string) []Variant {
	t.Helper()
	v, err := SelectVariants(Variants(), list)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPrepareKernels(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kernels string // -kernels
		harness string // -harness-kernel; "" for -no-harness
		caps    map[string]bool
		fail    map[kernels.Spec]bool
		// wantDoc is doc.Kernels as "name" or "name: skipped".
		wantDoc    []string
		wantRun    []string
		wantByName []string
		wantErr    string
	}{
		{"default, a series without the knob", "", "patched", nil, nil,
			[]string{"stock", "patched", "patched-abi-v2: the series has no abi-knob yet", "patched-abi-v3: the series has no memfd-v3 yet"},
			[]string{"stock", "patched"}, []string{"patched", "stock"}, ""},
		{"default, a series with the knob: plain patched is one of the abi lines", "", "patched",
			map[string]bool{kernels.CapABIKnob: true, kernels.CapMemfdV3: true, "abi-default:v2": true}, nil,
			[]string{"stock", "patched: the same kernel as patched-abi-v2 (its default policy)", "patched-abi-v2", "patched-abi-v3"},
			[]string{"stock", "patched-abi-v2", "patched-abi-v3"}, []string{"patched", "patched-abi-v2", "patched-abi-v3", "stock"}, ""},
		{"named variants the series lacks are listed as skipped", "stock,patched-abi-v3", "", nil, nil,
			[]string{"stock", "patched-abi-v3: the series has no memfd-v3 yet"}, []string{"stock"}, []string{"stock"}, ""},
		{"the harness kernel alone is prepared but not measured", "stock", "patched-abi-v2",
			map[string]bool{kernels.CapABIKnob: true}, nil,
			[]string{"stock", "patched-abi-v2"}, []string{"stock"}, []string{"patched-abi-v2", "stock"}, ""},
		{"a kernel that does not build stops the bench", "stock", "", nil, map[kernels.Spec]bool{"stock": true},
			nil, nil, nil, "preparing kernel stock: does not build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fk := &fakeKernels{dir: t.TempDir(), caps: tc.caps, fail: tc.fail}
			sel := Selection{Variants: variants(t, tc.kernels), Default: tc.kernels == ""}
			if tc.harness != "" {
				sel.Harness = variants(t, tc.harness)
			}
			doc := &Doc{}
			var log bytes.Buffer
			byName, run, err := PrepareKernels(context.Background(), doc, sel, bootable.Once(fk.prepare), fk.sourceCaps, &log)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var gotDoc []string
			for _, k := range doc.Kernels {
				s := k.Variant.Name
				if k.Skipped != "" {
					s += ": " + k.Skipped
				} else if k.SHA256 == "" || k.Release == "" {
					t.Errorf("%s: no hash or release: %+v", s, k)
				}
				gotDoc = append(gotDoc, s)
			}
			if !slices.Equal(gotDoc, tc.wantDoc) {
				t.Errorf("doc.Kernels %q, want %q", gotDoc, tc.wantDoc)
			}
			var gotRun []string
			for _, v := range run {
				gotRun = append(gotRun, v.Name)
			}
			if !slices.Equal(gotRun, tc.wantRun) || !slices.Equal(doc.Config.Kernels, tc.wantRun) {
				t.Errorf("measured %q (config %q), want %q", gotRun, doc.Config.Kernels, tc.wantRun)
			}
			var names []string
			for n, k := range byName {
				names = append(names, n)
				v := variants(t, n)[0]
				if k.Cmdline != v.Cmdline {
					t.Errorf("%s boots with %q, want %q", n, k.Cmdline, v.Cmdline)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.wantByName) {
				t.Errorf("prepared variants %q, want %q", names, tc.wantByName)
			}
			seen := map[kernels.Spec]int{}
			for _, s := range fk.prepared {
				if seen[s]++; seen[s] > 1 {
					t.Errorf("kernel %s prepared twice", s)
				}
			}
		})
	}
}

// fakeVMs answers every VM with PASS (or verdict(name)) and records the
// options it got.
type fakeVMs struct {
	mu      sync.Mutex
	verdict func(string) runner.Verdict
	opts    map[string][]runner.Options
}

func (f *fakeVMs) run(_ context.Context, members []*scenario.Scenario, o runner.Options) []*runner.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	var outs []*runner.Outcome
	for _, m := range members {
		if f.opts == nil {
			f.opts = map[string][]runner.Options{}
		}
		f.opts[m.Name] = append(f.opts[m.Name], o)
		v := runner.Pass
		if f.verdict != nil {
			v = f.verdict(m.Name)
		}
		outs = append(outs, &runner.Outcome{Scenario: m.Name, Verdict: v, Reason: map[bool]string{true: "", false: "broke"}[v == runner.Pass],
			Elapsed: 2 * time.Second, Dir: o.Dir})
	}
	return outs
}

type fakeInTree struct {
	prepErr error
	results []*InTreeRun
	errs    []error
	runs    []string
}

func (f *fakeInTree) Prepare(context.Context) (time.Duration, error) {
	return 3 * time.Second, f.prepErr
}
func (f *fakeInTree) Name() string    { return "luo_kexec_simple" }
func (f *fakeInTree) WorkDir() string { return "/work/in-tree" }
func (f *fakeInTree) Run(_ context.Context, ws string, timeout time.Duration) (*InTreeRun, error) {
	i := len(f.runs)
	f.runs = append(f.runs, ws)
	return f.results[i], f.errs[i]
}

// minutes is a clock that advances a minute at every reading.
func minutes() func() time.Time {
	t := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Minute)
		return t
	}
}

func catalogueOf(names ...string) scenario.Catalogue {
	var c scenario.Catalogue
	for _, n := range names {
		c = append(c, &scenario.Scenario{Name: n, Tags: []string{"default"}})
	}
	return c
}

func TestRunnerRun(t *testing.T) {
	stock := bootable.Kernel{Name: "stock", BzImage: "/k/stock"}
	patched := bootable.Kernel{Name: "patched", BzImage: "/k/patched", SrcDir: "/src/patched"}
	vms := &fakeVMs{verdict: func(n string) runner.Verdict {
		if n == "sparse" || n == "bench-sparse-64m" {
			return runner.Fail
		}
		return runner.Pass
	}}
	it := &fakeInTree{
		results: []*InTreeRun{{Passed: true, Prep: time.Second, QEMU: 4 * time.Second, Command: "qemu ..."}, {Reason: "no PASS line", Serial: "/s"}, nil},
		errs:    []error{nil, nil, errors.New("gcc failed")},
	}
	var log, echo bytes.Buffer
	r := &Runner{
		Fleet:           &fleet.Fleet{Agent: "/agent", Accel: "tcg", AccelCache: "/c", Limits: pool.Limits{Slots: 1}, RunGroup: vms.run, Echo: &echo},
		CatalogueLimits: pool.Limits{Slots: 3},
		Catalogue: func(context.Context, bootable.Kernel) (scenario.Catalogue, map[string]string) {
			return catalogueOf("basic-64m", "sparse", selftests.ScenarioPrefix+"luo_kexec_simple"), map[string]string{"t": "/t"}
		},
		InTree: func(bootable.Kernel) InTreeFlow { return it },
		Log:    &log,
		Now:    minutes(),
	}
	doc := &Doc{Started: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC),
		Kernels: []KernelID{{Variant: Variant{Name: "stock"}}, {Variant: Variant{Name: "patched"}}}}
	p := Plan{
		Variants: variants(t, "stock,patched"), Kernels: map[string]bootable.Kernel{"stock": stock, "patched": patched},
		Backings: []Backing{Dense4K, Sparse}, Sizes: []int64{64 << 20}, Reps: 2, HarnessReps: 3,
		Silence: time.Minute, InTreeTimeout: 30 * time.Second, HarnessKernel: "patched", Dir: "/runs/b",
	}
	r.Run(context.Background(), doc, p)

	// Kernel cost: 2 kernels × 2 backings × 1 size × 2 reps.
	if len(doc.Points) != 4 {
		t.Fatalf("%d points, want 4", len(doc.Points))
	}
	for _, pt := range doc.Points {
		if pt.Runs != 2 || len(pt.Samples) != 2 {
			t.Errorf("point %s: %d runs, %d samples, want 2", pt.ID(), pt.Runs, len(pt.Samples))
		}
	}
	progress := regexp.MustCompile(`(?m)^\[(\d)/8, (\d+)m0s\] `).FindAllStringSubmatch(log.String(), -1)
	if len(progress) != 8 {
		t.Errorf("want 8 kernel-cost progress lines [i/8, elapsed], got %d:\n%s", len(progress), log.String())
	}
	for i, m := range progress {
		if m[1] != string(rune('1'+i)) {
			t.Errorf("progress line %d counts %s", i, m[1])
		}
	}
	if n := len(vms.opts["bench-4k-64m"]); n != 4 {
		t.Errorf("bench-4k-64m ran %d times, want 4", n)
	}
	for _, o := range vms.opts["bench-4k-64m"] {
		if o.Timeout != VMTimeout(0, 64<<20) || o.Silence != time.Minute || o.Agent != "/agent" || o.OnLine == nil {
			t.Errorf("kernel-cost VM options %+v", o)
		}
	}

	// Harness: three reps of the in-tree flow and of each of ours.
	h := doc.Harness
	if h == nil || h.InTree == nil {
		t.Fatalf("no harness or in-tree figures: %+v", h)
	}
	if h.InTree.Runs != 3 || h.InTree.Failed != 2 || h.InTree.OnceS != 3 || h.InTree.Total.N != 1 || h.InTree.Total.Median != 5 {
		t.Errorf("in-tree %+v", h.InTree)
	}
	if want := []string{"/work/in-tree/ws-rep0", "/work/in-tree/ws-rep1", "/work/in-tree/ws-rep2"}; !slices.Equal(it.runs, want) {
		t.Errorf("in-tree workspaces %q, want %q", it.runs, want)
	}
	if len(h.Ours) != 2 || h.Ours[0].Runs != 3 || h.Ours[0].Wall.Median != 2 || h.Ours[0].Ratio != 0.4 {
		t.Errorf("ours %+v", h.Ours)
	}
	for _, o := range vms.opts["basic-64m"] {
		if o.Files["t"] != "/t" || o.OnLine != nil || len(o.Kernels) != 1 || o.Kernels[0].Name != "patched" {
			t.Errorf("harness VM options %+v", o)
		}
	}
	if n := strings.Count(log.String(), "bench: harness "); n != 3 || !strings.Contains(log.String(), "bench: harness 3/3 reps, ") {
		t.Errorf("want three harness progress lines, got %d:\n%s", n, log.String())
	}

	// The catalogue, as luotest run runs it.
	c := h.Catalogue
	if c == nil || c.Scenarios != 3 || c.Pass != 2 || c.NotPass != 1 || c.Parallel != 3 || !slices.Equal(c.Failures, []string{"sparse FAIL"}) {
		t.Errorf("catalogue %+v", c)
	}
	if len(doc.Notes) != 0 || doc.ElapsedS <= 0 {
		t.Errorf("notes %q, elapsed %v", doc.Notes, doc.ElapsedS)
	}
	if !strings.Contains(Done(doc), "8 kernel-cost runs (4 failed)") {
		t.Errorf("Done: %s", Done(doc))
	}
}

func TestRunnerRunNotes(t *testing.T) {
	vms := &fakeVMs{}
	r := &Runner{Fleet: &fleet.Fleet{RunGroup: vms.run}, Log: &bytes.Buffer{},
		Catalogue: func(context.Context, bootable.Kernel) (scenario.Catalogue, map[string]string) {
			return nil, nil
		}}
	for _, tc := range []struct {
		name      string
		cancel    bool
		plan      Plan
		wantNotes []string
		wantVMs   int
	}{
		{"no harness kernel", false, Plan{HarnessKernel: "patched", NoKernel: true}, []string{"harness cost not measured: kernel patched is not available"}, 0},
		{"interrupted", true, Plan{Variants: variants(t, "stock"), Backings: []Backing{Dense4K}, Sizes: []int64{64 << 20}, Reps: 1, NoHarness: true,
			Kernels: map[string]bootable.Kernel{"stock": {Name: "stock"}}}, []string{"interrupted: the figures are partial"}, 0},
		{"harness without the in-tree flow or our scenarios", false, Plan{NoKernel: true, HarnessKernel: "stock", HarnessReps: 1, NoCatalogue: true,
			Kernels: map[string]bootable.Kernel{"stock": {Name: "stock"}}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			vms.opts = nil
			doc := &Doc{}
			r.Run(ctx, doc, tc.plan)
			if !slices.Equal(doc.Notes, tc.wantNotes) {
				t.Errorf("notes %q, want %q", doc.Notes, tc.wantNotes)
			}
			if len(vms.opts) != tc.wantVMs {
				t.Errorf("%d VMs ran", len(vms.opts))
			}
		})
	}
}

func TestVMTimeout(t *testing.T) {
	for _, tc := range []struct {
		flag time.Duration
		size int64
		want time.Duration
	}{
		{0, 0, 5 * time.Minute},
		{0, GiB, 9 * time.Minute},
		{0, 2 * GiB, 13 * time.Minute},
		{0, GiB / 2, 7 * time.Minute},
		{time.Minute, 2 * GiB, time.Minute},
	} {
		if got := VMTimeout(tc.flag, tc.size); got != tc.want {
			t.Errorf("VMTimeout(%s, %d) = %s, want %s", tc.flag, tc.size, got, tc.want)
		}
	}
}

func TestWriteDocs(t *testing.T) {
	out := t.TempDir()
	if err := WriteDocs(&Doc{Schema: Schema, Metrics: Metrics()}, out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "benchmarks.md")); err != nil {
		t.Error(err)
	}
	blocked := filepath.Join(out, "file")
	os.WriteFile(blocked, nil, 0o644)
	if err := WriteDocs(&Doc{}, blocked); err == nil {
		t.Error("writing into a file: no error")
	}
}
