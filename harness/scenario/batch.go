package scenario

import (
	"fmt"
	"sort"
	"strings"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// TagSolo marks a scenario that must have a VM of its own: it owns
// /dev/liveupdate (a selftest binary opens it), or its MemTotal figures
// must not be shared.
const TagSolo = "solo"

// Group is a set of scenarios that share one boot chain: one VM, the
// same kernels and command line, every member's steps in each stage.
type Group struct {
	// Name identifies the group's run.
	Name    string
	Members []*Scenario
	// Plan is the merged plan; Origin maps its steps back.
	Plan   *plan.Plan
	Origin map[StepRef]MemberStep
	// MemoryMB is the guest memory the merged run needs.
	MemoryMB int
	Cmdline  string
}

// StepRef names a step of a plan.
type StepRef struct{ Stage, Step int }

// MemberStep is where a merged step came from.
type MemberStep struct {
	Member string
	StepRef
}

// Batchable reports whether s can share a VM.
func (s *Scenario) Batchable() bool { return !s.HasTag(TagSolo) }

// GroupKey is what scenarios sharing a boot chain must agree on.
func (s *Scenario) GroupKey() string {
	return fmt.Sprintf("hops=%d cmdline=%q hopcmdline=%v", s.NumHops(), s.Cmdline, s.HopCmdline)
}

// Partition splits scenarios into groups that can share a boot chain.
func Partition(scs []*Scenario) [][]*Scenario {
	byKey := map[string]int{}
	var groups [][]*Scenario
	for _, s := range scs {
		if !s.Batchable() {
			groups = append(groups, []*Scenario{s})
			continue
		}
		k := s.GroupKey()
		if i, ok := byKey[k]; ok {
			groups[i] = append(groups[i], s)
			continue
		}
		byKey[k] = len(groups)
		groups = append(groups, []*Scenario{s})
	}
	return groups
}

// Merge compiles members into one plan whose stages run every member's
// steps in turn. File and session names are prefixed with the member's
// name so they cannot collide.
func Merge(members []*Scenario, hops []Kexec) (*Group, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("merging scenarios: no members")
	}
	key := members[0].GroupKey()
	g := &Group{Members: members, Origin: map[StepRef]MemberStep{}, Cmdline: members[0].Cmdline}
	var names []string
	merged := &plan.Plan{}
	nh := members[0].NumHops()
	merged.Stages = make([]plan.Stage, nh+1)
	var dataMB int64
	// The kexec of each stage, as the first member's plan has it (the
	// hop, with its HopCmdline); the members of a group agree on both
	// (GroupKey).
	kexecs := make([]plan.Step, nh)
	for mi, m := range members {
		if m.GroupKey() != key {
			return nil, fmt.Errorf("merging %s into a group of %s: %s differs from %s", m.Name, members[0].Name, m.GroupKey(), key)
		}
		names = append(names, m.Name)
		p, err := m.Plan(hops)
		if err != nil {
			return nil, err
		}
		pre := m.Name + "."
		for _, f := range p.Files {
			f.Name = pre + f.Name
			merged.Files = append(merged.Files, f)
			dataMB += f.Size >> 20
		}
		for si, st := range p.Stages {
			for i, step := range st.Steps {
				if step.Op == plan.OpKexec {
					if mi == 0 && si < nh {
						kexecs[si] = step
					}
					continue // one kexec per stage, added below
				}
				if step.File != "" {
					step.File = pre + step.File
				}
				if step.Session != "" {
					step.Session = prefixSession(m.Name, step.Session)
				}
				if step.Label != "" {
					step.Label = pre + step.Label
				}
				if len(step.Checks) > 0 {
					// References to a member's labelled values
					// follow its labels.
					cs := append([]plan.Check(nil), step.Checks...)
					for ci := range cs {
						if r, ok := strings.CutPrefix(cs[ci].Ref, "@"); ok {
							cs[ci].Ref = "@" + pre + r
						}
					}
					step.Checks = cs
				}
				g.Origin[StepRef{si, len(merged.Stages[si].Steps)}] = MemberStep{Member: m.Name, StepRef: StepRef{si, i}}
				merged.Stages[si].Steps = append(merged.Stages[si].Steps, step)
			}
		}
	}
	for si := 0; si < nh; si++ {
		merged.Stages[si].Steps = append(merged.Stages[si].Steps, kexecs[si])
	}
	g.Name = "batch-" + members[0].Name
	if len(members) == 1 {
		g.Name = members[0].Name
	}
	merged.Scenario = g.Name + " [" + strings.Join(names, " ") + "]"
	g.Plan = merged
	// Guest memory: the largest member's need, plus room for the data
	// of the others (stock kernels fill holes: count whole sizes).
	maxMem := 0
	for _, m := range members {
		maxMem = max(maxMem, m.Memory())
	}
	g.MemoryMB = max(maxMem, int(768+dataMB*3/2))
	g.MemoryMB = (g.MemoryMB + 255) &^ 255
	return g, merged.Validate()
}

// prefixSession makes a session name unique per member while keeping it
// within LIVEUPDATE_SESSION_NAME_LENGTH-1 bytes.
func prefixSession(member, session string) string {
	n := member + "." + session
	if len(n) <= 63 {
		return n
	}
	// keep the session part whole; shorten the member part
	keep := 63 - len(session) - 1
	if keep < 1 {
		return session
	}
	return member[:keep] + "." + session
}

// MemberNames lists the group's member names, sorted.
func (g *Group) MemberNames() []string {
	var n []string
	for _, m := range g.Members {
		n = append(n, m.Name)
	}
	sort.Strings(n)
	return n
}
