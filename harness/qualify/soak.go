// Package qualify answers the release question "can kernel A live-update
// into kernel B without losing data?": the catalogue upgrading A → B, the
// catalogue rolling back B → A, and a soak that alternates A and B for N
// hops, verifying every byte at every hop and accounting for every page.
package qualify

import (
	"fmt"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// SoakName is the soak scenario's name.
const SoakName = "soak"

// DriftLimitKB bounds how far MemTotal after finish may sit from a
// kernel's baseline. The incoming KHO metadata stays reserved, and its
// radix tree takes a page more or less with the physical spread of the
// preserved folios (seen: 4 kB at one of three boots of 7.3.4+series
// after 7.2.13, 2026-11-28); four pages is more than that jitter and
// less than any growth a long soak would show.
const DriftLimitKB = 16

const mib = 1 << 20

// Soak returns the soak scenario: three memfds of different shapes (dense
// with a file position, sealed with an odd size, sparse) preserved in two
// sessions, carried across hops kexecs. Every hop retrieves and verifies
// every byte, size, seal and position, finishes the sessions, records
// MemTotal ("finished") and preserves the files again.
func Soak(hops int) *scenario.Scenario {
	return &scenario.Scenario{
		Name:        SoakName,
		Description: fmt.Sprintf("%d kexecs alternating the two kernels; every hop verifies every file and accounts for memory", hops),
		Files: []plan.File{
			{Name: "dense", Flags: plan.MFDAllowSeal, Size: 8 * mib, Seed: 90, Pos: 12345},
			{Name: "sealed", Flags: plan.MFDAllowSeal, Size: 2*mib + 1, Seed: 91, Seals: scenario.SealGrow | scenario.SealShrink},
			{Name: "sparse", Flags: plan.MFDAllowSeal, Size: 64 * mib, Seed: 92,
				Extents: []plan.Extent{{Off: 0, Len: 4096}, {Off: 16 * mib, Len: 3 * 4096}, {Off: 64*mib - 4096, Len: 4096}}},
		},
		Sessions: []scenario.Session{
			{Name: "soak-a", TokenBase: 0x5000, Files: []string{"dense", "sealed"}},
			{Name: "soak-b", TokenBase: 0x6000, Files: []string{"sparse"}},
		},
		Hops:               hops,
		MeminfoAfterFinish: true,
	}
}

// SoakTimeout is the VM time a soak of hops kexecs is given: a hop takes
// 5-7 s on the normal flavour under TCG (2026-11-28), so 30 s a hop, and
// 5 min besides, times the flavour's factor.
func SoakTimeout(hops, factor int) time.Duration {
	return time.Duration(max(factor, 1)) * (5*time.Minute + time.Duration(hops)*30*time.Second)
}

// Chain returns the kernels of a soak of hops kexecs that starts on a and
// alternates with b: a, b, a, b, ...
func Chain(a, b bootable.Kernel, hops int) []bootable.Kernel {
	ks := make([]bootable.Kernel, hops+1)
	for i := range ks {
		ks[i] = a
		if i%2 == 1 {
			ks[i] = b
		}
	}
	return ks
}

// Hop is one boot of the soak, as its meminfo steps saw it (kB; -1 where
// a figure is missing).
type Hop struct {
	Hop    int    `json:"hop"`
	Kernel string `json:"kernel"`
	// BeforeOpen is MemTotal at boot, with the handed-over memory still
	// reserved; Finished after every session was finished.
	BeforeOpen int64 `json:"before_open_kb"`
	Finished   int64 `json:"finished_kb"`
	// Preserved is MemTotal right after preserving, before the kexec
	// (the next hop's BeforeOpen is measured by the next kernel).
	Preserved int64 `json:"preserved_kb"`
	// Held is what the handover held at boot and finish gave back:
	// Finished - BeforeOpen.
	Held int64 `json:"held_kb"`
	// Leak is how much less finish gave back than at this kernel's
	// first soak boot (its Held minus this Held; a page kept shows as
	// 4, a handover that grew as a negative figure).
	Leak int64 `json:"leak_kb"`
	// Baseline is Finished of this kernel's first soak boot, and Drift
	// how far below it this boot ended (Baseline - Finished). Within
	// DriftLimitKB it is the previous kernel's KHO metadata (the
	// preserved-memory radix tree and the FDT), which a kernel keeps
	// reserved for its lifetime and whose size follows where the
	// preserved folios happened to lie.
	Baseline int64 `json:"baseline_kb"`
	Drift    int64 `json:"drift_kb"`
	// Verified counts the verify steps of the hop that passed, out of
	// Files.
	Verified int `json:"verified"`
	Files    int `json:"files"`
	// Problem says what is wrong with this hop, "" when nothing is.
	Problem string `json:"problem,omitempty"`
}

// Account reads a soak's outcome into one Hop per boot after the first
// (hop 0 is the first kernel's cold boot, listed with its MemTotal at
// start as BeforeOpen and Finished) and judges them: every file verified
// at every hop; finish giving back, to the page, what it gave back at the
// kernel's first soak boot (nothing kept, nothing grown); and MemTotal
// after finish within DriftLimitKB of the kernel's baseline (its first
// soak boot). The error names every problem.
func Account(o *runner.Outcome) ([]Hop, error) {
	res := report.NewResults(report.RunInfo{}, []*runner.Outcome{o})
	if len(res.Scenarios) == 0 {
		return nil, fmt.Errorf("soak: no result")
	}
	steps := res.Scenarios[0].Steps
	nstages := 0
	if o.Plan != nil {
		nstages = len(o.Plan.Stages)
	}
	hops := make([]Hop, nstages)
	for i := range hops {
		name := ""
		if i < len(o.Kernels) {
			name = kernelLabel(o.Kernels[i])
		}
		hops[i] = Hop{Hop: i, Kernel: name, BeforeOpen: -1, Finished: -1, Preserved: -1, Held: -1, Baseline: -1}
	}
	for _, s := range steps {
		if s.Stage >= len(hops) {
			continue
		}
		h := &hops[s.Stage]
		if s.Op == string(plan.OpVerify) {
			h.Files++
			if s.Pass {
				h.Verified++
			}
			continue
		}
		if s.Op != string(plan.OpMeminfo) || !s.Reported {
			continue
		}
		mt, ok := s.Values["MemTotal"]
		if !ok {
			continue
		}
		switch s.Label {
		case "start":
			h.BeforeOpen, h.Finished = mt, mt
		case "before-open":
			h.BeforeOpen = mt
		case "finished":
			h.Finished = mt
		case "preserved":
			h.Preserved = mt
		}
	}
	var problems []string
	baseline := map[string]int64{}
	firstHeld := map[string]int64{}
	failed := -1
	for i := range hops {
		h := &hops[i]
		var p []string
		if i > 0 && failed >= 0 {
			// What a failed hop left behind (sessions lost, memory
			// kept reserved) changes every figure after it.
			h.Problem = fmt.Sprintf("not accounted: hop %d failed", failed)
			continue
		}
		if i > 0 {
			if h.Verified != h.Files || h.Files == 0 {
				p = append(p, fmt.Sprintf("%d of %d files verified", h.Verified, h.Files))
			}
			if h.BeforeOpen < 0 || h.Finished < 0 {
				p = append(p, "MemTotal not reported (the hop did not complete)")
			} else {
				h.Held = h.Finished - h.BeforeOpen
				if f, ok := firstHeld[h.Kernel]; ok {
					h.Leak = f - h.Held
					switch {
					case h.Leak > 0:
						p = append(p, fmt.Sprintf("finish gave back %d kB, %d kB less than at %s's first soak boot (a leak)", h.Held, h.Leak, h.Kernel))
					case h.Leak < 0:
						p = append(p, fmt.Sprintf("the handover held %d kB at boot, %d kB more than at %s's first soak boot", h.Held, -h.Leak, h.Kernel))
					}
				} else {
					firstHeld[h.Kernel] = h.Held
				}
				if b, ok := baseline[h.Kernel]; ok {
					h.Baseline, h.Drift = b, b-h.Finished
					if h.Drift > DriftLimitKB || h.Drift < -DriftLimitKB {
						p = append(p, fmt.Sprintf("MemTotal after finish %d kB, %+d kB from %s's baseline %d kB (more than the %d kB the incoming KHO metadata varies by)", h.Finished, -h.Drift, h.Kernel, b, DriftLimitKB))
					}
				} else {
					baseline[h.Kernel], h.Baseline = h.Finished, h.Finished
				}
			}
		}
		if i < len(hops)-1 && h.Preserved < 0 {
			p = append(p, "no MemTotal after preserve")
		}
		if len(p) > 0 {
			h.Problem = strings.Join(p, "; ")
			problems = append(problems, fmt.Sprintf("hop %d (%s): %s", i, h.Kernel, h.Problem))
			if h.Verified != h.Files || h.Files == 0 || h.BeforeOpen < 0 || h.Finished < 0 {
				failed = i
			}
		}
	}
	if failed >= 0 && failed < len(hops)-1 {
		problems = append(problems, fmt.Sprintf("hops %d-%d not accounted", failed+1, len(hops)-1))
	}
	if len(hops) == 0 {
		problems = append(problems, "the soak has no plan")
	}
	if len(problems) > 0 {
		return hops, fmt.Errorf("soak: %s", strings.Join(problems, "; "))
	}
	return hops, nil
}

// kernelLabel names a kernel of the chain with its command line.
func kernelLabel(k bootable.Kernel) string { return withArgs(k.Name, k.Cmdline) }
