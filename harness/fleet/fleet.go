// Package fleet runs a batch of scenarios on a chain of kernels: it puts
// the scenarios that can share a boot chain into one VM, runs the VMs as
// many at once as the cores and the memory budget allow, writes a line per
// scenario as each finishes, and returns the outcomes in the batch's
// order, marking what an interrupt kept from starting as skipped.
//
// run, matrix, measure and bench all run their scenarios through it.
package fleet

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/pool"
	"github.com/memfd-luo/memfd-luo/harness/report"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
)

// Fleet is what every VM of an invocation shares.
type Fleet struct {
	// Agent is the compiled guest agent.
	Agent string
	// Accel is the accelerator every VM uses; AccelWhy says why it was
	// chosen, AccelCache caches the KVM probe.
	Accel      vm.Accel
	AccelWhy   string
	AccelCache string
	// Timeout and Silence bound each VM.
	Timeout, Silence time.Duration
	// Solo gives every scenario a VM of its own instead of grouping
	// those that can share a boot chain.
	Solo bool
	// Limits bound the VMs running at once.
	Limits pool.Limits
	// Echo, when set, receives every guest console line, prefixed with
	// the VM's name (-v).
	Echo io.Writer
	// Log receives the batch's plan ("N scenario(s) in M VM(s)").
	Log io.Writer
	// RunGroup runs one VM's scenarios; nil means runner.RunGroup.
	// Tests put a fake here.
	RunGroup func(context.Context, []*scenario.Scenario, runner.Options) []*runner.Outcome
}

// Batch is one set of scenarios run on one chain of kernels.
type Batch struct {
	// Kernels: Kernels[0] boots first; each kexec goes into the next.
	Kernels   []bootable.Kernel
	Scenarios []*scenario.Scenario
	// Files are extra initramfs files, archive path -> host path.
	Files map[string]string
	// Dir is the batch's artefact directory; each VM gets a directory
	// in it named after its first scenario.
	Dir string
	// Rerun is the command that reruns one scenario, with %s for its
	// name.
	Rerun string
}

// Groups returns the scenarios of each VM of the batch.
func (f *Fleet) Groups(todo []*scenario.Scenario) [][]*scenario.Scenario {
	if !f.Solo {
		return scenario.Partition(todo)
	}
	var groups [][]*scenario.Scenario
	for _, s := range todo {
		groups = append(groups, []*scenario.Scenario{s})
	}
	return groups
}

// vmName names a VM after its first scenario, "batch-" first when it
// runs several.
func vmName(grp []*scenario.Scenario) string {
	if len(grp) > 1 {
		return "batch-" + grp[0].Name
	}
	return grp[0].Name
}

// Run runs b and writes report.Line for each scenario to w as it
// finishes. The outcomes come back in the order of b.Scenarios; a
// scenario whose VM never started (ctx was cancelled) is a SKIP,
// "interrupted before it started".
func (f *Fleet) Run(ctx context.Context, b Batch, w io.Writer) []*runner.Outcome {
	groups := f.Groups(b.Scenarios)
	if f.Log != nil {
		fmt.Fprintf(f.Log, "%d scenario(s) in %d VM(s)\n", len(b.Scenarios), len(groups))
	}
	runGroup := f.RunGroup
	if runGroup == nil {
		runGroup = runner.RunGroup
	}
	var (
		mu       sync.Mutex
		outcomes []*runner.Outcome
		jobs     []pool.Job
	)
	for _, grp := range groups {
		name := vmName(grp)
		mem := 0
		for _, s := range grp {
			mem = max(mem, s.Memory())
		}
		jobs = append(jobs, pool.Job{MemoryMB: mem, Run: func(ctx context.Context) {
			outs := runGroup(ctx, grp, runner.Options{
				Agent: f.Agent, Kernels: b.Kernels, Dir: filepath.Join(b.Dir, name), Files: b.Files,
				Accel: f.Accel, AccelCache: f.AccelCache, Timeout: f.Timeout, Silence: f.Silence,
				Rerun: b.Rerun, OnLine: Echo(f.Echo, &mu, name),
			})
			mu.Lock()
			defer mu.Unlock()
			for _, o := range outs {
				report.Line(w, o)
			}
			outcomes = append(outcomes, outs...)
		}})
	}
	pool.Run(ctx, f.Limits, jobs)
	return complete(b.Scenarios, outcomes)
}

// complete orders outcomes as todo and adds a SKIP for every scenario
// that has none.
func complete(todo []*scenario.Scenario, outcomes []*runner.Outcome) []*runner.Outcome {
	order := map[string]int{}
	for i, s := range todo {
		order[s.Name] = i
	}
	sort.SliceStable(outcomes, func(a, b int) bool { return order[outcomes[a].Scenario] < order[outcomes[b].Scenario] })
	ran := map[string]bool{}
	for _, o := range outcomes {
		ran[o.Scenario] = true
	}
	for _, s := range todo {
		if !ran[s.Name] {
			outcomes = append(outcomes, &runner.Outcome{Scenario: s.Name, Verdict: runner.Skip, Reason: "interrupted before it started"})
		}
	}
	return outcomes
}

// Echo returns a runner.Options.OnLine that writes each console line of
// VM name to w as "name [seconds] line", holding mu while it writes so
// that lines of VMs running at once do not mix; nil when w is nil.
func Echo(w io.Writer, mu *sync.Mutex, name string) func(time.Duration, string) {
	if w == nil {
		return nil
	}
	return func(t time.Duration, l string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s [%7.3f] %s\n", name, t.Seconds(), l)
	}
}
