package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// outcome is a measured scenario's run: a kexec between a preserve that
// grew the file from 2048 to 2097152 blocks and a verify that found them,
// MemTotal 1 GiB lower after the kexec, and host times for the phases.
func outcome(name string, v runner.Verdict) *runner.Outcome {
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	p := &plan.Plan{Stages: []plan.Stage{
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "preserved"},
			{Op: plan.OpPreserve, Session: "s0", File: "m0"},
			{Op: plan.OpKexec},
		}},
		{Steps: []plan.Step{
			{Op: plan.OpMeminfo, Label: "before-open"},
			{Op: plan.OpRetrieve, Session: "s0", File: "m0"},
			{Op: plan.OpVerify, File: "m0"},
		}},
	}}
	ev := func(t float64, e plan.Event) vm.TimedEvent { return vm.TimedEvent{Host: at(t), Event: e} }
	step := func(stage, i int, op plan.Op, d time.Duration, values map[string]int64) plan.Event {
		return plan.Event{Kind: plan.EventStep, Stage: stage, Step: i, Op: op, Pass: true, DurationNS: int64(d), Values: values}
	}
	return &runner.Outcome{Scenario: name, Verdict: v, Plan: p, VM: &vm.Result{Events: []vm.TimedEvent{
		ev(1, plan.Event{Kind: plan.EventStage, Stage: 0}),
		ev(1.5, step(0, 0, plan.OpMeminfo, 0, map[string]int64{"MemTotal": 4 << 20})),
		ev(2, step(0, 1, plan.OpPreserve, 250*time.Millisecond, map[string]int64{"blocks_before": 2048, "blocks_after": 2097152})),
		ev(2.1, step(0, 2, plan.OpKexec, 0, nil)),
		ev(5, plan.Event{Kind: plan.EventStage, Stage: 1}),
		ev(5.1, step(1, 0, plan.OpMeminfo, 0, map[string]int64{"MemTotal": 3 << 20})),
		ev(5.6, step(1, 1, plan.OpRetrieve, 400*time.Millisecond, nil)),
		ev(7, step(1, 2, plan.OpVerify, time.Second, map[string]int64{"blocks": 2097152})),
	}}}
}

func TestFromOutcome(t *testing.T) {
	f := FromOutcome(outcome("measure-dense-1g", runner.Pass), "stock")
	if f.Scenario != "measure-dense-1g" || f.Kernel != "stock" || f.Verdict != "PASS" {
		t.Errorf("labels %+v", f)
	}
	if f.PreservedKB != 1<<20 || f.BlocksBefore != 2048 || f.BlocksAfter != 2097152 || f.BlocksNext != 2097152 {
		t.Errorf("sizes %+v: want MemTotal drop 1048576 kB, blocks 2048 -> 2097152 -> 2097152", f)
	}
	if f.PreserveMS <= 0 || f.RetrieveMS <= 0 || f.ToRetrieveMS <= 0 {
		t.Errorf("times %+v: want each phase measured", f)
	}

	// A run that never got going has no figures: zeros, not -1.
	z := FromOutcome(&runner.Outcome{Scenario: "x", Verdict: runner.Error}, "patched")
	if z != (Figures{Scenario: "x", Kernel: "patched", Verdict: "ERROR"}) {
		t.Errorf("no run: %+v", z)
	}
}

func TestParseKernelsAndLabel(t *testing.T) {
	ks := ParseKernels("stock,patched@memfd_luo.abi=v2,tree:/src/l@a=1 b/c")
	want := []Kernel{{"stock", ""}, {"patched", "memfd_luo.abi=v2"}, {"tree:/src/l", "a=1 b/c"}}
	if !slices.Equal(ks, want) {
		t.Errorf("ParseKernels: %+v, want %+v", ks, want)
	}
	for _, tc := range []struct{ name, cmdline, want string }{
		{"stock", "", "stock"},
		{"patched", "memfd_luo.abi=v2", "patched-abi-v2"},
		{"tree", "a=1 b/c", "tree-a-1_b_c"},
	} {
		if got := label(tc.name, tc.cmdline); got != tc.want {
			t.Errorf("label(%q, %q) = %q, want %q", tc.name, tc.cmdline, got, tc.want)
		}
	}
}

func TestRun(t *testing.T) {
	todo := []*scenario.Scenario{{Name: "measure-dense-1g"}, {Name: "measure-sparse-4g"}}
	for _, tc := range []struct {
		name        string
		kernels     string
		prepareErr  kernels.Spec
		scenarioErr error
		fail        string // kernel label whose runs fail
		wantRows    []string
		wantPassed  bool
		wantErr     string
	}{
		{"two kernels", "stock,patched", "", nil, "", []string{"measure-dense-1g stock", "measure-sparse-4g stock", "measure-dense-1g patched", "measure-sparse-4g patched"}, true, ""},
		{"a kernel with a command line", "patched@memfd_luo.abi=v2", "", nil, "", []string{"measure-dense-1g patched-abi-v2", "measure-sparse-4g patched-abi-v2"}, true, ""},
		{"a failure", "stock,patched", "", nil, "stock", []string{"measure-dense-1g stock", "measure-sparse-4g stock", "measure-dense-1g patched", "measure-sparse-4g patched"}, false, ""},
		{"a kernel that cannot be prepared", "stock,nosuch", "nosuch", nil, "", nil, true, "preparing nosuch: unknown kernel"},
		{"nothing selected", "stock", "", errors.New("no scenario matches"), "", nil, true, "no scenario matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var batches []fleet.Batch
			var reports []string
			d := Deps{
				Prepare: func(_ context.Context, s kernels.Spec) (bootable.Kernel, error) {
					if s == tc.prepareErr {
						return bootable.Kernel{}, errors.New("unknown kernel")
					}
					return bootable.Kernel{Name: s.Name()}, nil
				},
				Scenarios: func() ([]*scenario.Scenario, error) { return todo, tc.scenarioErr },
				Run: func(_ context.Context, b fleet.Batch, w io.Writer) []*runner.Outcome {
					batches = append(batches, b)
					var outs []*runner.Outcome
					for _, s := range b.Scenarios {
						v := runner.Pass
						if b.Kernels[0].Name == tc.fail {
							v = runner.Fail
						}
						outs = append(outs, outcome(s.Name, v))
						fmt.Fprintf(w, "%s %s\n", v, s.Name)
					}
					return outs
				},
				Report: func(dir, suite string, _ time.Time, _ []bootable.Kernel, _ []*runner.Outcome) {
					reports = append(reports, suite+" "+dir)
				},
			}
			var out, progress bytes.Buffer
			all, passed, err := Run(context.Background(), Options{Kernels: ParseKernels(tc.kernels), Dir: "/runs/m", Out: &out, Progress: &progress}, d)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var rows []string
			for _, f := range all {
				rows = append(rows, f.Scenario+" "+f.Kernel)
			}
			if !slices.Equal(rows, tc.wantRows) || passed != tc.wantPassed {
				t.Errorf("rows %q passed %v, want %q %v", rows, passed, tc.wantRows, tc.wantPassed)
			}
			n := len(ParseKernels(tc.kernels))
			if got := strings.Count(progress.String(), "measure: "); got != n || !strings.Contains(progress.String(), fmt.Sprintf("measure: %d/%d kernels, ", n, n)) {
				t.Errorf("progress %q: want a line per kernel", progress.String())
			}
			for i, b := range batches {
				if !strings.HasPrefix(b.Dir, "/runs/m/") || b.Rerun != "" || len(b.Kernels) != 1 {
					t.Errorf("batch %d %+v", i, b)
				}
				if want := "measure-" + b.Kernels[0].Name + " " + b.Dir; reports[i] != want {
					t.Errorf("report %q, want %q", reports[i], want)
				}
			}
		})
	}
}

func TestTableAndJSON(t *testing.T) {
	all := []Figures{
		{Scenario: "measure-dense-1g", Kernel: "stock", Verdict: "PASS", PreservedKB: 1048576, BlocksBefore: 2048, BlocksAfter: 2097152,
			BlocksNext: 2097152, PreserveMS: 250.4, RebootMS: 1, ToRetrieveMS: 3500.6, RetrieveMS: 400},
		{Scenario: "measure-sparse-4g", Kernel: "patched-abi-v2", Verdict: "FAIL", PreservedKB: -1},
	}
	var b bytes.Buffer
	WriteTable(&b, all)
	want := `
scenario             kernel                MemTotal-drop  blocks@create blocks@preserve blocks@next  preserve reboot->ret   retrieve
measure-dense-1g     stock           PASS     1048576 kB           2048        2097152     2097152     250ms      3501ms      400ms
measure-sparse-4g    patched-abi-v2  FAIL          -1 kB              0              0           0       0ms         0ms        0ms
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	var back []Figures
	if err := json.Unmarshal(JSON(all), &back); err != nil || !slices.Equal(back, all) {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	if !strings.Contains(string(JSON(all)), `"memtotal_drop_kb": 1048576`) {
		t.Errorf("JSON %s", JSON(all))
	}
	if string(JSON(nil)) != "null" {
		t.Errorf("JSON(nil) = %s, want null as before", JSON(nil))
	}
}
