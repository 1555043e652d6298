package scenario

import (
	"testing"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func hops(n int) []Kexec {
	var h []Kexec
	for i := 0; i < n; i++ {
		h = append(h, Kexec{Kernel: "/kernels/k", Cmdline: "console=ttyS0"})
	}
	return h
}

func TestCatalogueCompiles(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Default() {
		if seen[s.Name] {
			t.Errorf("scenario %s listed twice", s.Name)
		}
		seen[s.Name] = true
		p, err := s.Plan(hops(s.NumHops()))
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		if len(p.Stages) != s.NumHops()+1 {
			t.Errorf("%s: %d stages for %d hops", s.Name, len(p.Stages), s.NumHops())
		}
		if len(s.Tags) == 0 {
			t.Errorf("%s: no tags; it would never run", s.Name)
		}
	}
}

func TestGeneratedPlanShape(t *testing.T) {
	s := &Scenario{Name: "x", Hops: 2, Corrupt: true,
		Files:    []plan.File{{Name: "f", Size: 8192, Seed: 1}},
		Sessions: []Session{{Name: "s", Files: []string{"f"}, TokenBase: 5}}}
	p, err := s.Plan(hops(2))
	if err != nil {
		t.Fatal(err)
	}
	count := func(st plan.Stage, op plan.Op) int {
		n := 0
		for _, x := range st.Steps {
			if x.Op == op {
				n++
			}
		}
		return n
	}
	for i, want := range []struct{ preserve, retrieve, verify, finish, kexec, corrupt int }{
		{1, 0, 0, 0, 1, 0}, {1, 1, 1, 1, 1, 0}, {0, 1, 1, 1, 0, 1},
	} {
		st := p.Stages[i]
		got := [6]int{count(st, plan.OpPreserve), count(st, plan.OpRetrieve), count(st, plan.OpVerify), count(st, plan.OpFinish), count(st, plan.OpKexec), count(st, plan.OpCorrupt)}
		if got != [6]int{want.preserve, want.retrieve, want.verify, want.finish, want.kexec, want.corrupt} {
			t.Errorf("stage %d: preserve/retrieve/verify/finish/kexec/corrupt = %v, want %+v", i, got, want)
		}
	}
	// The corrupted file's verification must expect a mismatch.
	for _, st := range p.Stages[2].Steps {
		if st.Op == plan.OpVerify && st.Expect != "mismatch" {
			t.Errorf("verify after corrupt expects %q, want mismatch", st.Expect)
		}
	}
	if _, err := s.Plan(hops(1)); err == nil {
		t.Error("2 hops with 1 kexec target accepted")
	}
}

func TestFind(t *testing.T) {
	if _, err := Default().Find("basic-64m"); err != nil {
		t.Error(err)
	}
	if _, err := Default().Find("nope"); err == nil {
		t.Error("unknown scenario found")
	}
}

func TestHopCmdline(t *testing.T) {
	s := &Scenario{Name: "h", Cmdline: "hugepages=16 x=1", HopCmdline: map[int]string{0: "hugepages=2 x=1"},
		Files:  []plan.File{{Name: "f", Size: 1}},
		Stages: []plan.Stage{{Steps: []plan.Step{{Op: plan.OpKexec}}}, {Steps: []plan.Step{{Op: plan.OpMeminfo}}}}}
	for _, tc := range []struct{ hop, want string }{
		{"console=ttyS0 hugepages=16 x=1", "console=ttyS0 hugepages=2 x=1"},
		{"console=ttyS0", "console=ttyS0 hugepages=2 x=1"},
	} {
		p, err := s.Plan([]Kexec{{Kernel: "/k", Cmdline: tc.hop}})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Stages[0].Steps[0].Cmdline; got != tc.want {
			t.Errorf("hop %q: kexec command line %q, want %q", tc.hop, got, tc.want)
		}
	}
	if s.Stages[0].Steps[0].Cmdline != "" {
		t.Errorf("Plan wrote into the scenario's stages")
	}
}
