package selftests

import (
	"reflect"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func TestScenarios(t *testing.T) {
	tests := []struct {
		name      string
		test      Test
		wantName  string
		wantSteps [][]plan.Step
		wantTags  []string
	}{
		{
			name:     "kexec test: -s 1, kexec, -s 2",
			test:     Test{Name: "luo_kexec_simple", Binary: "/b/luo_kexec_simple", Kexec: true},
			wantName: "selftest-luo_kexec_simple",
			wantSteps: [][]plan.Step{
				{
					{Op: plan.OpExec, Path: "/selftests/luo_kexec_simple", Args: []string{"-s", "1"}, Expect: "ok"},
					{Op: plan.OpKexec, Kernel: "/kernels/k", Cmdline: "console=ttyS0 liveupdate=on"},
				},
				{
					{Op: plan.OpExec, Path: "/selftests/luo_kexec_simple", Args: []string{"-s", "2"}, Expect: "ok"},
				},
			},
			wantTags: []string{Tag, scenario.TagSolo, TagDefault},
		},
		{
			name:     "plain test runs once without arguments",
			test:     Test{Name: "liveupdate", Binary: "/b/liveupdate"},
			wantName: "selftest-liveupdate",
			wantSteps: [][]plan.Step{
				{{Op: plan.OpExec, Path: "/selftests/liveupdate", Expect: "ok"}},
			},
			wantTags: []string{Tag, scenario.TagSolo, TagDefault},
		},
		{
			name:     "an unmeasured test is not in the default set",
			test:     Test{Name: "luo_future", Binary: "/b/luo_future", Kexec: true},
			wantName: "selftest-luo_future",
			wantSteps: [][]plan.Step{
				{
					{Op: plan.OpExec, Path: "/selftests/luo_future", Args: []string{"-s", "1"}, Expect: "ok"},
					{Op: plan.OpKexec, Kernel: "/kernels/k", Cmdline: "console=ttyS0 liveupdate=on"},
				},
				{{Op: plan.OpExec, Path: "/selftests/luo_future", Args: []string{"-s", "2"}, Expect: "ok"}},
			},
			wantTags: []string{Tag, scenario.TagSolo},
		},
	}
	hops := []scenario.Kexec{{Kernel: "/kernels/k", Cmdline: "console=ttyS0 liveupdate=on"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := Scenarios([]Test{tt.test})
			if len(ss) != 1 {
				t.Fatalf("%d scenarios, want 1", len(ss))
			}
			s := ss[0]
			if s.Name != tt.wantName {
				t.Errorf("name = %q, want %q", s.Name, tt.wantName)
			}
			if !reflect.DeepEqual(s.Tags, tt.wantTags) {
				t.Errorf("tags = %v, want %v", s.Tags, tt.wantTags)
			}
			if s.Description == "" {
				t.Error("no description")
			}
			if got, want := s.NumHops(), len(tt.wantSteps)-1; got != want {
				t.Errorf("NumHops = %d, want %d", got, want)
			}
			p, err := s.Plan(hops)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			var got [][]plan.Step
			for _, st := range p.Stages {
				got = append(got, st.Steps)
			}
			if !reflect.DeepEqual(got, tt.wantSteps) {
				t.Errorf("steps =\n%+v\nwant\n%+v", got, tt.wantSteps)
			}
			// The test owns /dev/liveupdate (it admits one opener):
			// the agent must do nothing but run it and kexec.
			for si, st := range p.Stages {
				for i, step := range st.Steps {
					if step.Op != plan.OpExec && step.Op != plan.OpKexec {
						t.Errorf("stage %d step %d: op %s would make the agent touch LUO", si, i, step.Op)
					}
				}
			}
			if len(p.Files) != 0 {
				t.Errorf("plan declares memfds: %+v", p.Files)
			}
		})
	}
}

func TestScenariosAllMeasuredTestsAreKnown(t *testing.T) {
	// Every quick test is one of 7.3's; a rename must be noticed.
	for name := range quick {
		switch name {
		case "liveupdate", "luo_kexec_simple", "luo_multi_session", "luo_stress_files", "luo_stress_sessions":
		default:
			t.Errorf("quick lists %q, which 7.3 does not have", name)
		}
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		name  string
		tests []Test
		want  map[string]string
	}{
		{"none", nil, map[string]string{}},
		{
			"two",
			[]Test{{Name: "liveupdate", Binary: "/o/bin/liveupdate-1/liveupdate"}, {Name: "luo_kexec_simple", Binary: "/o/x", Kexec: true}},
			map[string]string{"selftests/liveupdate": "/o/bin/liveupdate-1/liveupdate", "selftests/luo_kexec_simple": "/o/x"},
		},
		{
			"one not built",
			[]Test{{Name: "liveupdate", Binary: "/o/l"}, {Name: "luo_kexec_simple", Kexec: true, BuildError: "undefined reference to `luo_test'"}},
			map[string]string{"selftests/liveupdate": "/o/l"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Files(tt.tests)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Files = %v, want %v", got, tt.want)
			}
			// Every archive path must be what the scenario executes.
			for _, tst := range tt.tests {
				if tst.Binary == "" {
					continue
				}
				if _, ok := got[tst.ImagePath()[1:]]; !ok {
					t.Errorf("%s: %s not in Files", tst.Name, tst.ImagePath())
				}
			}
		})
	}
}

// A test that could not be built stays in the catalogue as a scenario
// that is skipped with the build's reason and log.
func TestScenariosUnbuilt(t *testing.T) {
	ss := Scenarios([]Test{
		{Name: "luo_kexec_simple", Kexec: true, BuildError: "make luo_kexec_simple: exit status 2: undefined reference to `luo_test'", BuildLog: "/o/logs/luo_kexec_simple-k.log"},
		{Name: "liveupdate", Binary: "/o/l"},
	})
	if len(ss) != 2 {
		t.Fatalf("%d scenarios, want 2", len(ss))
	}
	if want := "cannot be built: make luo_kexec_simple: exit status 2: undefined reference to `luo_test' (log: /o/logs/luo_kexec_simple-k.log)"; ss[0].Skip != want {
		t.Errorf("Skip = %q, want %q", ss[0].Skip, want)
	}
	if ss[1].Skip != "" {
		t.Errorf("built test skipped: %q", ss[1].Skip)
	}
}
