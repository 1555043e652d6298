// Package scenario holds the test catalogue: each Scenario declares
// memfds, sessions, kexec hops and expectations as data, and compiles into
// a plan.Plan the guest agent executes.
package scenario

import (
	"fmt"
	"sort"
	"strings"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// MiB is a mebibyte.
const MiB = 1 << 20

// Session groups files preserved together.
type Session struct {
	Name string
	// Files are names from Scenario.Files; the token of the i-th file
	// is TokenBase+i.
	Files     []string
	TokenBase uint64
}

// Scenario is one test case.
type Scenario struct {
	Name        string
	Description string
	Files       []plan.File
	Sessions    []Session
	// Hops is the number of kexecs (default 1). Each hop retrieves,
	// verifies and finishes every session, then preserves the files
	// again in fresh sessions for the next hop.
	Hops int
	// MemoryMB is the guest memory (default 1024).
	MemoryMB int
	// Cmdline is appended to every kernel's command line.
	Cmdline string
	// HopCmdline, for scenarios with Stages, replaces Cmdline on the
	// command line of the kernel that hop n (from 0) kexecs into (or is
	// appended to it, where it does not hold Cmdline): a next kernel
	// booted differently (a smaller hugetlb pool).
	HopCmdline map[int]string
	// Corrupt flips one byte of the first file after the last
	// retrieve and expects verification to report it: the verifier's
	// self-check.
	Corrupt bool
	// Stages, when set, replace the generated stages (lifecycle and
	// bad-input cases spell out every step).
	Stages []plan.Stage
	// Tags group scenarios ("default", "slow", ...).
	Tags []string
	// KUnit makes the scenario judge the KUnit results the first kernel
	// printed on its console at boot (KTAP), each case a test of its
	// own. It needs a kernel built with CONFIG_KUNIT=y; on any other it
	// is skipped.
	KUnit bool
	// NeedsConfig lists kernel options (=y) that the first kernel of
	// the run (the one that preserves) must have; otherwise the
	// scenario is skipped with the missing option as the reason.
	NeedsConfig []string
	// OneKernel: the expectations hold only when every hop boots the
	// same kernel. A later stage only knows the capabilities of the
	// kernel right before it, not what hops before that handed over, so
	// a chain that re-preserves at every hop cannot be judged in a
	// two-kernel run; there it is skipped with that reason.
	OneKernel bool
	// Skip, when set, is why the scenario cannot run on any kernel (a
	// selftest the tree cannot build): it is reported skipped with this
	// reason and counted, never dropped.
	Skip string
	// MeminfoAfterFinish adds a meminfo step labelled "finished" after
	// the sessions of every hop are finished: what the kernel holds
	// once everything handed over is given back (soak accounting).
	MeminfoAfterFinish bool

	// Additions to generated stages:
	// afterPreserve checks the preserve steps' values;
	afterPreserve []plan.Check
	// afterPreserveSteps run after the files are preserved in stage 0;
	afterPreserveSteps []plan.Step
	// verifyChecks and verifyExpect refine the verify step of a file;
	verifyChecks map[string][]plan.Check
	verifyExpect map[string]stepExpect
	// meminfoChecks check the meminfo step with a label.
	meminfoChecks map[string][]plan.Check
}

// stepExpect is an expectation with capability overrides.
type stepExpect struct {
	expect string
	byCap  []plan.CapExpect
	cite   string
}

// Kexec is where a hop goes: the kernel's path inside the initramfs and
// its full command line.
type Kexec struct {
	Kernel  string
	Cmdline string
}

// Plan compiles the scenario. hops[i] is the kexec target of hop i.
func (s *Scenario) Plan(hops []Kexec) (*plan.Plan, error) {
	p := &plan.Plan{Scenario: s.Name, Files: s.Files}
	if s.Stages != nil {
		// Copy deeply: filling in kexec targets must not write
		// into the scenario.
		for _, st := range s.Stages {
			p.Stages = append(p.Stages, plan.Stage{Steps: append([]plan.Step(nil), st.Steps...)})
		}
		n := 0
		for si := range p.Stages {
			st := &p.Stages[si]
			if k := len(st.Steps); k > 0 && st.Steps[k-1].Op == plan.OpKexec {
				if n >= len(hops) {
					return nil, fmt.Errorf("scenario %s: kexec %d has no target kernel", s.Name, n)
				}
				cmd := hops[n].Cmdline
				if r, ok := s.HopCmdline[n]; ok {
					if s.Cmdline != "" && strings.Contains(cmd, s.Cmdline) {
						cmd = strings.Replace(cmd, s.Cmdline, r, 1)
					} else {
						cmd = strings.TrimSpace(cmd + " " + r)
					}
				}
				st.Steps[k-1].Kernel, st.Steps[k-1].Cmdline = hops[n].Kernel, cmd
				n++
			}
		}
		return p, p.Validate()
	}
	nh := s.NumHops()
	if len(hops) < nh {
		return nil, fmt.Errorf("scenario %s: %d hops but %d kexec targets", s.Name, nh, len(hops))
	}
	for stage := 0; stage <= nh; stage++ {
		var st plan.Stage
		add := func(step plan.Step) {
			switch step.Op {
			case plan.OpMeminfo:
				step.Checks = s.meminfoChecks[step.Label]
			case plan.OpPreserve:
				step.Checks = s.afterPreserve
			case plan.OpVerify:
				if step.Expect == "" {
					step.Checks = s.verifyChecks[step.File]
					if e, ok := s.verifyExpect[step.File]; ok {
						step.Expect, step.ExpectByCap, step.Cite = e.expect, e.byCap, e.cite
					}
				}
			}
			st.Steps = append(st.Steps, step)
		}
		if stage == 0 {
			add(plan.Step{Op: plan.OpMeminfo, Label: "start"})
			for _, f := range s.Files {
				add(plan.Step{Op: plan.OpCreateMemfd, File: f.Name})
			}
			add(plan.Step{Op: plan.OpMeminfo, Label: "populated"})
		} else {
			// Before /dev/liveupdate is opened, preserved memory is
			// still memblock-reserved: MemTotal measures it.
			add(plan.Step{Op: plan.OpMeminfo, Label: "before-open"})
			for _, ss := range s.Sessions {
				add(plan.Step{Op: plan.OpRetrieveSession, Session: ss.Name})
				for i, f := range ss.Files {
					add(plan.Step{Op: plan.OpRetrieve, Session: ss.Name, File: f, Token: ss.TokenBase + uint64(i)})
				}
			}
			add(plan.Step{Op: plan.OpMeminfo, Label: "retrieved"})
			for _, ss := range s.Sessions {
				for _, f := range ss.Files {
					if s.Corrupt && stage == nh && f == s.Sessions[0].Files[0] {
						spec := s.file(f)
						add(plan.Step{Op: plan.OpCorrupt, File: f, Offset: spec.Size / 2})
						add(plan.Step{Op: plan.OpVerify, File: f, Expect: "mismatch"})
						continue
					}
					add(plan.Step{Op: plan.OpVerify, File: f})
				}
			}
			for _, ss := range s.Sessions {
				add(plan.Step{Op: plan.OpFinish, Session: ss.Name})
			}
			if s.MeminfoAfterFinish {
				add(plan.Step{Op: plan.OpMeminfo, Label: "finished"})
			}
		}
		if stage < nh {
			for _, ss := range s.Sessions {
				add(plan.Step{Op: plan.OpCreateSession, Session: ss.Name})
				for i, f := range ss.Files {
					add(plan.Step{Op: plan.OpPreserve, Session: ss.Name, File: f, Token: ss.TokenBase + uint64(i)})
				}
			}
			if stage == 0 {
				for _, step := range s.afterPreserveSteps {
					add(step)
				}
			}
			add(plan.Step{Op: plan.OpMeminfo, Label: "preserved"})
			add(plan.Step{Op: plan.OpKexec, Kernel: hops[stage].Kernel, Cmdline: hops[stage].Cmdline})
		}
		p.Stages = append(p.Stages, st)
	}
	return p, p.Validate()
}

// NumHops returns the number of kexecs the scenario makes.
func (s *Scenario) NumHops() int {
	if s.Stages != nil {
		n := 0
		for _, st := range s.Stages {
			if k := len(st.Steps); k > 0 && st.Steps[k-1].Op == plan.OpKexec {
				n++
			}
		}
		return n
	}
	if s.Hops <= 0 {
		return 1
	}
	return s.Hops
}

func (s *Scenario) file(name string) *plan.File {
	for i := range s.Files {
		if s.Files[i].Name == name {
			return &s.Files[i]
		}
	}
	return nil
}

// Memory returns the guest memory in MiB.
func (s *Scenario) Memory() int {
	if s.MemoryMB == 0 {
		return 1024
	}
	return s.MemoryMB
}

// HasTag reports whether the scenario carries tag.
func (s *Scenario) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Catalogue is an ordered set of scenarios.
type Catalogue []*Scenario

// Find returns the scenario called name.
func (c Catalogue) Find(name string) (*Scenario, error) {
	var names []string
	for _, s := range c {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("no scenario %q; the catalogue has: %v", name, names)
}
