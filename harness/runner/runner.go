// Package runner runs one scenario in one VM and judges it: it builds the
// initramfs, boots the first kernel, collects the agent's events and the
// console's findings, and turns them into an Outcome.
package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/console"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/image"
	"github.com/memfd-luo/memfd-luo/harness/kconfig"
	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/kunit"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// BaseCmdline is what every kernel of a run boots with. unknown_nmi_panic
// and panic_sys_info make a hung kernel that the host sends an NMI (when
// SysRq brought nothing) panic with every task's and CPU's stack.
//
// tsc=reliable turns off the clocksource watchdog, which deadlocks 7.3 in
// early boot under TCG about once in 30 kexec chains (docs/hang.md): its
// cross-CPU skew check spins with interrupts off waiting for a CPU that
// sits in stop_machine with interrupts off, and its timeout is measured
// on the jiffies clocksource, which no CPU can advance then.
const BaseCmdline = "console=ttyS0 liveupdate=on panic=-1 retain_initrd printk.time=1 unknown_nmi_panic panic_sys_info=tasks,all_bt tsc=reliable"

// firstBootCmdline is what only the first boot of a VM adds: the KHO
// scratch sizes of a debug kernel. KHO sizes scratch by default at twice
// the early boot allocations, once in low memory and once per node; under
// KASAN those include the shadow (an eighth of RAM), and the two areas do
// not fit in a 1 GiB guest ("KHO: Failed to reserve nid 0 scratch buffer",
// live update disabled). The parameter is spelt as the kernel spells it
// (bootable.Kernel.KHOBootmemParam). The next kernel's early allocations (its own
// shadow), its image and initramfs must fit in scratch, so size the low
// area at an eighth of RAM plus 160 MiB. Later boots inherit the scratch
// areas and ignore the parameter.
func firstBootCmdline(k bootable.Kernel, memoryMB int) string {
	if k.Flavour != flavour.Debug {
		return ""
	}
	return fmt.Sprintf("%s=%dM,8M,32M", k.KHOBootmemParam(), memoryMB/8+160)
}

// cmdlineFor is the command line kernel k boots with in this run.
func cmdlineFor(base string, k bootable.Kernel) string {
	return strings.Join(strings.Fields(base+" "+k.Flavour.Cmdline()+" "+k.Cmdline), " ")
}

// Options configure a run.
type Options struct {
	// Agent is the compiled guest agent.
	Agent string
	// Kernels: Kernels[0] boots first; hop i kexecs into
	// Kernels[min(i+1, len-1)].
	Kernels []bootable.Kernel
	// Dir is the artefact directory of this scenario's run.
	Dir     string
	Accel   vm.Accel
	Timeout time.Duration
	Silence time.Duration
	// Cmdline is appended to every kernel's command line.
	Cmdline string
	// Rerun is the command line that reruns just one case; "%s" in it
	// is replaced by the scenario's name.
	Rerun string
	// OnLine sees console lines (for -v).
	OnLine func(time.Duration, string)
	// Files are extra initramfs files, archive path -> host path
	// (e.g. selftest binaries).
	Files map[string]string
	// AccelCache caches the KVM probe.
	AccelCache string
	// CPUs is the guest's vCPU count (0: vm.Options' default, 2).
	CPUs int
	// ICount is vm.Options.ICount: guest clocks that count
	// instructions, under TCG.
	ICount string
}

// Verdict is a scenario's result.
type Verdict string

// Verdicts.
const (
	Pass    Verdict = "PASS"
	Fail    Verdict = "FAIL"
	Timeout Verdict = "TIMEOUT"
	Error   Verdict = "ERROR"
	Skip    Verdict = "SKIP"
)

// Outcome is the judged result of one scenario.
type Outcome struct {
	Scenario string
	Verdict  Verdict
	// Reason is one line saying why (empty on PASS).
	Reason string
	// Blame is "kernel" or "harness" for failures that are not a step
	// missing its expectation.
	Blame   string
	Elapsed time.Duration
	Dir     string
	Rerun   string
	Plan    *plan.Plan
	VM      *vm.Result
	// Kernels booted, in order.
	Kernels []bootable.Kernel
	// Flavour is the flavour of the first kernel.
	Flavour flavour.Flavour
	// KUnit is the KUnit report of a KUnit scenario (scenario.KUnit),
	// read from the console; nil when there was none.
	KUnit *ktap.Report
}

// Unmet says why scenario s cannot run on kernels (kernels[0] boots
// first), or "" when it can: a scenario with Skip set never can; a OneKernel scenario needs one kernel (image
// and command line) at every hop; a KUnit scenario needs CONFIG_KUNIT=y in the
// first kernel, and every option of s.NeedsConfig must be =y in the first
// kernel too (the one that preserves: a later kernel without the option is
// what a two-kernel run of such a scenario tests).
func Unmet(s *scenario.Scenario, kernels []bootable.Kernel) string {
	if s.Skip != "" {
		return s.Skip
	}
	if len(kernels) == 0 {
		return ""
	}
	if s.OneKernel {
		for _, k := range kernels[1:] {
			if k.BzImage != kernels[0].BzImage || k.Cmdline != kernels[0].Cmdline {
				return fmt.Sprintf("needs the same kernel at every hop (%s, then %s): a later stage cannot tell what hops before the previous one handed over", kernels[0].Name, k.Name)
			}
		}
	}
	type need struct {
		option string
		ks     []bootable.Kernel
	}
	var needs []need
	if s.KUnit {
		needs = append(needs, need{"CONFIG_KUNIT", kernels[:1]})
	}
	for _, o := range s.NeedsConfig {
		needs = append(needs, need{o, kernels[:1]})
	}
	for _, n := range needs {
		for _, k := range n.ks {
			if k.Config == "" {
				return fmt.Sprintf("prebuilt kernel: no .config to tell whether it was built with %s", n.option)
			}
			b, err := os.ReadFile(k.Config)
			if err != nil {
				return fmt.Sprintf("cannot tell whether the kernel was built with %s: %v", n.option, err)
			}
			if kconfig.Parse(b)[n.option] != "y" {
				return fmt.Sprintf("kernel built without %s", n.option)
			}
		}
	}
	return ""
}

// Run executes scenario s in a VM of its own.
func Run(ctx context.Context, s *scenario.Scenario, o Options) *Outcome {
	return RunGroup(ctx, []*scenario.Scenario{s}, o)[0]
}

// RunGroup runs scenarios that share a boot chain (scenario.Partition) in
// one VM and judges each member on its own steps. Kernel trouble (a panic,
// a hang) is charged to every member. A member the kernels cannot run
// (Unmet) is skipped with the reason.
func RunGroup(ctx context.Context, members []*scenario.Scenario, o Options) []*Outcome {
	var fl flavour.Flavour
	if len(o.Kernels) > 0 {
		fl = o.Kernels[0].Flavour
	}
	outs := make([]*Outcome, len(members))
	var run []*scenario.Scenario
	var idx []int
	for i, m := range members {
		if why := Unmet(m, o.Kernels); why != "" {
			outs[i] = &Outcome{Scenario: m.Name, Verdict: Skip, Reason: why, Flavour: fl,
				Rerun: strings.Replace(o.Rerun, "%s", m.Name, 1)}
			continue
		}
		run = append(run, m)
		idx = append(idx, i)
	}
	if len(run) > 0 {
		for j, out := range runGroup(ctx, run, o) {
			out.Flavour = fl
			outs[idx[j]] = out
		}
	}
	return outs
}

func runGroup(ctx context.Context, members []*scenario.Scenario, o Options) []*Outcome {
	start := time.Now()
	outs := make([]*Outcome, len(members))
	for i, m := range members {
		outs[i] = &Outcome{Scenario: m.Name, Dir: o.Dir, Rerun: strings.Replace(o.Rerun, "%s", m.Name, 1)}
	}
	fail := func(v Verdict, blame, format string, args ...any) []*Outcome {
		for _, out := range outs {
			out.Verdict, out.Blame, out.Reason = v, blame, fmt.Sprintf(format, args...)
			out.Elapsed = time.Since(start)
		}
		return outs
	}
	if len(o.Kernels) == 0 {
		return fail(Error, "harness", "no kernel to boot")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fail(Error, "harness", "creating %s: %v", o.Dir, err)
	}
	var rr strings.Builder
	rr.WriteString("#!/bin/sh\n# Rerun one scenario of this VM from the memfd-luo checkout.\n")
	for _, out := range outs {
		fmt.Fprintf(&rr, "# %s\n", out.Rerun)
	}
	if len(outs) == 1 {
		rr.WriteString(outs[0].Rerun + "\n")
	}
	os.WriteFile(filepath.Join(o.Dir, "rerun.sh"), []byte(rr.String()), 0o755)
	cmdline := strings.TrimSpace(strings.Join([]string{BaseCmdline, o.Cmdline}, " "))
	// The scenario's own parameters go last, after the flavour's and
	// the kernel's: the last value of a parameter wins, and what a
	// scenario needs (memfd_luo.abi=v2, kunit.autorun=1) is what it
	// tests.
	// kho_scratch= (7.3) became kho_bootmem= (7.4): each kernel gets
	// its own spelling, whichever the scenario wrote.
	// The spelling is read from the kernel's source once per kernel,
	// not once per hop of a long chain.
	khoParam := map[string]string{}
	bootCmdline := func(k bootable.Kernel) string {
		param, ok := khoParam[k.SrcDir]
		if !ok {
			param = k.KHOBootmemParam()
			khoParam[k.SrcDir] = param
		}
		return bootable.SpellKHOParam(strings.TrimSpace(cmdlineFor(cmdline, k)+" "+members[0].Cmdline), param)
	}
	// Extra files first: the kernels' paths must not be overridden.
	files := map[string]string{}
	for k, v := range o.Files {
		files[k] = v
	}
	var hops []scenario.Kexec
	booted := []bootable.Kernel{o.Kernels[0]}
	for i := 0; i < members[0].NumHops(); i++ {
		k := o.Kernels[min(i+1, len(o.Kernels)-1)]
		path := fmt.Sprintf("kernels/%s", k.Name)
		files[path] = k.BzImage
		hops = append(hops, scenario.Kexec{Kernel: "/" + path, Cmdline: bootCmdline(k)})
		booted = append(booted, k)
	}
	g, err := scenario.Merge(members, hops)
	if err != nil {
		return fail(Error, "harness", "compiling scenario: %v", err)
	}
	for _, out := range outs {
		out.Kernels = booted
	}
	g.Plan.StepTimeoutMS = stepTimeout(o.Timeout).Milliseconds()
	initrd := filepath.Join(o.Dir, "initramfs.cpio")
	if err := image.Create(image.Options{Agent: o.Agent, Plan: g.Plan, Files: files, Out: initrd}); err != nil {
		return fail(Error, "harness", "%v", err)
	}
	res, err := vm.Run(ctx, vm.Options{
		Kernel:     o.Kernels[0].BzImage,
		Initramfs:  initrd,
		Cmdline:    strings.TrimSpace(bootCmdline(o.Kernels[0]) + " " + firstBootCmdline(o.Kernels[0], g.MemoryMB)),
		MemoryMB:   g.MemoryMB,
		CPUs:       o.CPUs,
		ICount:     o.ICount,
		Accel:      o.Accel,
		AccelCache: o.AccelCache,
		Timeout:    o.Timeout,
		Silence:    o.Silence,
		Dir:        o.Dir,
		OnLine:     o.OnLine,
	})
	if err != nil {
		return fail(Error, "harness", "%v", err)
	}
	for i, m := range members {
		out := outs[i]
		p, _ := m.Plan(hops)
		mres := res
		if len(members) > 1 {
			mres = split(res, g, m.Name, p)
		}
		out.Plan, out.VM = p, mres
		j := Judge(p, mres)
		out.Verdict, out.Blame, out.Reason = j.Verdict, j.Blame, j.Reason
		if m.KUnit {
			judgeKUnit(out, mres)
		}
		out.Elapsed = time.Since(start)
	}
	return outs
}

// stepTimeout is the deadline the agent gives each step of a VM that may
// run for vmTimeout (0: no limit, the agent's default): half of it. A
// step that runs that long while printing (a selftest that never ends)
// is the agent's to name and stop; a silent hang ends at the silence
// limit first, and the step's start event names it.
func stepTimeout(vmTimeout time.Duration) time.Duration {
	return max(vmTimeout/2, 0)
}

// judgeKUnit reads the KUnit results from the console log into out and
// fails an otherwise passing outcome when a case failed, KUnit's output
// is incomplete, or there is none.
func judgeKUnit(out *Outcome, res *vm.Result) {
	f, err := os.Open(res.ConsoleLog)
	if err != nil {
		if out.Verdict == Pass {
			out.Verdict, out.Blame, out.Reason = Error, "harness", fmt.Sprintf("reading the console log for KUnit output: %v", err)
		}
		return
	}
	defer f.Close()
	c, err := kunit.FromConsole(f)
	if err != nil {
		if out.Verdict == Pass {
			out.Verdict, out.Blame, out.Reason = Error, "harness", err.Error()
		}
		return
	}
	if c.Report.Found() {
		out.KUnit = c.Report
	}
	if out.Verdict != Pass {
		// A kernel report or a hang explains the run better.
		return
	}
	switch {
	case !c.Report.Found():
		reason := "no KUnit output on the console of a kernel built with CONFIG_KUNIT=y"
		if c.Disabled {
			reason += " (the kernel said \"kunit: disabled\": kunit.enable=0?)"
		}
		out.Verdict, out.Blame, out.Reason = Fail, "kernel", reason
	case kunit.Failure(c.Report) != "":
		out.Verdict, out.Blame, out.Reason = Fail, "kernel", kunit.Failure(c.Report)
	}
}

// split returns the part of a group's result that belongs to member:
// its step events, renumbered to the member's own plan, and everything
// machine-wide (console, QMP, boots, stage events) as is. The member's
// verdict event passes when its own steps all passed.
func split(res *vm.Result, g *scenario.Group, member string, mp *plan.Plan) *vm.Result {
	r := *res
	r.Events = nil
	pass := true
	for _, ev := range res.Events {
		switch ev.Kind {
		case plan.EventStep, plan.EventStart:
			ms, ok := g.Origin[scenario.StepRef{Stage: ev.Stage, Step: ev.Step}]
			if !ok {
				// the shared kexec step of each stage
				if ev.Op == plan.OpKexec {
					r.Events = append(r.Events, ev)
				}
				continue
			}
			if ms.Member != member {
				continue
			}
			ev.Stage, ev.Step = ms.Stage, ms.Step
			if ev.Kind == plan.EventStep {
				pass = pass && ev.Pass
			}
			r.Events = append(r.Events, ev)
		case plan.EventDone:
			// The agent's verdict covers every member; a member
			// is judged on its own steps (missing ones are caught
			// by Judge).
			d := ev
			d.Pass = pass
			if pass {
				d.Detail = "all of this scenario's steps met their expectations"
			}
			r.Events = append(r.Events, d)
			r.Done = &r.Events[len(r.Events)-1]
		default:
			r.Events = append(r.Events, ev)
		}
	}
	// The shared kexec steps keep the merged step index; give them the
	// member's index (the last step of the stage).
	for i := range r.Events {
		ev := &r.Events[i]
		if (ev.Kind == plan.EventStep || ev.Kind == plan.EventStart) && ev.Op == plan.OpKexec && mp != nil && ev.Stage < len(mp.Stages) {
			ev.Step = len(mp.Stages[ev.Stage].Steps) - 1
		}
	}
	return &r
}

// reportReason names a kernel report: its kind, its title, where it is,
// and the kinds of the reports after it (a panic_on_warn panic, ...).
func reportReason(f console.Finding, all []console.Finding) string {
	title := f.Title
	if title == "" {
		title = console.Title(f.Line)
	}
	var after []string
	seen := map[console.Kind]bool{}
	for _, o := range all {
		if o.LineNo > f.LineNo && !seen[o.Kind] {
			seen[o.Kind] = true
			after = append(after, string(o.Kind))
		}
	}
	where := fmt.Sprintf("console line %d", f.LineNo)
	if len(after) > 0 {
		where += "; then " + strings.Join(after, ", ")
	}
	return fmt.Sprintf("kernel %s: %s (%s)", f.Kind, title, where)
}

// hangNote says what the host did about a hang: the SysRq keys it sent
// (their output is in console.log) or why it could not.
func hangNote(s *vm.SysRq) string {
	switch {
	case s == nil:
		return ""
	case s.NMI:
		return fmt.Sprintf("; SysRq %s brought no output, so an NMI was injected: the panic's task and CPU stacks are in console.log", strings.Join(s.Keys, ","))
	case s.Sent():
		return fmt.Sprintf("; SysRq %s sent, the stacks are in console.log", strings.Join(s.Keys, ","))
	case len(s.Keys) > 0:
		return fmt.Sprintf("; SysRq %s sent, then: %s", strings.Join(s.Keys, ","), s.Err)
	}
	return fmt.Sprintf("; SysRq not sent: %s", s.Err)
}

// agentDied tells a guest agent that died from the kernel it ran on: the
// agent is PID 1, so a Go panic or fatal error in any of its goroutines
// that it did not recover ends in the kernel's "Attempted to kill init"
// panic, which is the harness's fault, not the kernel's. The Go runtime's
// report comes before it (a console.AgentCrash finding; the last lines,
// should the findings lack it, hold it only when the goroutine stacks and
// the kernel's panic output are short). A kernel report before the
// agent's crash still names the run: it explains the crash.
func agentDied(findings []console.Finding, last []string) (string, bool) {
	killedInit := false
	var crash *console.Finding
	for i, f := range findings {
		if f.Kind == console.Panic && strings.Contains(f.Line, "Attempted to kill init") {
			killedInit = true
		}
		if f.Kind == console.AgentCrash && crash == nil {
			crash = &findings[i]
		}
	}
	if !killedInit {
		return "", false
	}
	if crash != nil {
		if p, ok := console.Primary(findings); ok && p.Kind != console.Panic && p.LineNo < crash.LineNo {
			return "", false
		}
		what := "panicked"
		if strings.HasPrefix(crash.Title, "fatal error: ") {
			what = "died"
		}
		return fmt.Sprintf("the guest agent (PID 1) %s: %s (console line %d); the kernel then panicked as it does when init dies", what, crash.Title, crash.LineNo), true
	}
	for _, l := range last {
		if i := strings.Index(l, "panic: "); i >= 0 && !strings.Contains(l, "Kernel panic") {
			return "the guest agent (PID 1) panicked: " + strings.TrimSpace(l[i:]) + "; the kernel then panicked as it does when init dies", true
		}
		if i := strings.Index(l, "fatal error: "); i >= 0 {
			return "the guest agent (PID 1) died: " + strings.TrimSpace(l[i:]) + "; the kernel then panicked as it does when init dies", true
		}
	}
	return "", false
}

// unfinished names where the agent was when the run stopped: a step that
// started (plan.EventStart) and never reported, or the kexec a stage
// ended in when the next kernel's agent never reported. It returns "" if
// neither.
func unfinished(evs []vm.TimedEvent) string {
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		switch ev.Kind {
		case plan.EventStart:
			return fmt.Sprintf("; stage %d step %d (%s) started %s into the run and never finished", ev.Stage, ev.Step, ev.Op, ev.Host.Round(time.Millisecond))
		case plan.EventStep:
			if ev.Op == plan.OpKexec && ev.Pass {
				return fmt.Sprintf("; stage %d's kexec began %s into the run and no agent reported from the next kernel", ev.Stage, ev.Host.Round(time.Millisecond))
			}
			return ""
		case plan.EventStage, plan.EventDone:
			return ""
		}
	}
	return ""
}

// Judgement is a verdict with who is to blame and why.
type Judgement struct {
	Verdict Verdict
	// Blame is "kernel" or "harness"; "" for a step that missed its
	// expectation (and for a pass).
	Blame string
	// Reason is one line saying why (empty on a pass).
	Reason string
}

// Judge turns a VM result into a judgement for plan p.
func Judge(p *plan.Plan, res *vm.Result) Judgement {
	last := "(no console output)"
	if n := len(res.LastLines); n > 0 {
		last = res.LastLines[n-1]
	}
	if res.SysRq != nil && res.SysRq.LastLineBefore != "" {
		// SysRq output came after the guest stopped: where it
		// stopped is the line before it.
		last = res.SysRq.LastLineBefore
	}
	// Kernel trouble first: it explains everything after it. The first
	// report names it (a panic is mostly the end of the report before
	// it); SysRq output is not a report.
	findings := res.Findings
	if res.SysRq != nil && res.SysRq.NMI {
		// The panic the NMI caused, and what it printed, were asked
		// for: judge the hang, not them.
		findings = nil
		for _, f := range res.Findings {
			if f.LineNo <= res.SysRq.LinesBefore {
				findings = append(findings, f)
			}
		}
	}
	if why, ok := agentDied(findings, res.LastLines); ok {
		return Judgement{Verdict: Fail, Blame: "harness", Reason: why}
	}
	if f, ok := console.Primary(findings); ok {
		return Judgement{Verdict: Fail, Blame: "kernel", Reason: reportReason(f, findings)}
	}
	if res.Panicked && (res.SysRq == nil || !res.SysRq.NMI) {
		return Judgement{Verdict: Fail, Blame: "kernel", Reason: fmt.Sprintf("guest panicked (QMP GUEST_PANICKED); last console line: %s", last)}
	}
	// Steps that missed their expectation, in order.
	reported := map[[2]int]bool{}
	for _, ev := range res.Events {
		if ev.Kind != plan.EventStep {
			continue
		}
		reported[[2]int{ev.Stage, ev.Step}] = true
		if !ev.Pass {
			return Judgement{Verdict: Fail, Reason: fmt.Sprintf("stage %d step %d %s: %s", ev.Stage, ev.Step, ev.Op, ev.Detail)}
		}
	}
	if res.Done != nil && (res.TimedOut || res.Silent) {
		// The guest finished while the host was collecting stacks
		// after the limit: the limit was still crossed.
		why := "ran past the timeout"
		if res.Silent {
			why = "fell silent for longer than the silence limit"
		}
		return Judgement{Verdict: Timeout, Blame: "kernel", Reason: fmt.Sprintf("%s and finished only while the host was collecting stacks%s; last console line before: %s", why, hangNote(res.SysRq), last)}
	}
	if res.Done == nil {
		where := unfinished(res.Events)
		switch {
		case res.TimedOut:
			return Judgement{Verdict: Timeout, Blame: "kernel", Reason: fmt.Sprintf("no verdict within the timeout%s%s; last console line: %s", where, hangNote(res.SysRq), last)}
		case res.Silent:
			return Judgement{Verdict: Timeout, Blame: "kernel", Reason: fmt.Sprintf("no console output for too long (hang?)%s%s; last console line: %s", where, hangNote(res.SysRq), last)}
		}
		return Judgement{Verdict: Fail, Blame: "kernel", Reason: fmt.Sprintf("VM exited without a verdict (%v)%s; last console line: %s", res.ExitErr, where, last)}
	}
	if !res.Done.Pass {
		return Judgement{Verdict: Fail, Blame: "harness", Reason: "agent: " + res.Done.Detail}
	}
	// Every planned step must have been reported: a step that never
	// ran is not a pass.
	for si, st := range p.Stages {
		for i := range st.Steps {
			if !reported[[2]int{si, i}] {
				return Judgement{Verdict: Fail, Blame: "harness", Reason: fmt.Sprintf("stage %d step %d (%s) was never reported", si, i, st.Steps[i].Op)}
			}
		}
	}
	return Judgement{Verdict: Pass}
}
