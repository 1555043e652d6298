package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/console"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/ktap"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/vm"
)

// RunInfo describes a run as a whole, for results.json.
type RunInfo struct {
	Started time.Time
	Host    string
	Accel   string
	Kernels []bootable.Kernel
	// Command is the command line that started the run.
	Command string
	// Suite names the run's test suite in results.xml and
	// results.ktap (WriteAll); empty means plain "luotest".
	Suite string
	// Flavour is the kernel flavour of the run.
	Flavour flavour.Flavour
}

// JSONSchema names the layout of results.json; it changes when a field
// changes meaning or goes away.
const JSONSchema = "luotest-results/1"

// Results is the document WriteJSON writes. Durations are integer
// nanoseconds in fields ending in "_ns".
type Results struct {
	Schema    string           `json:"schema"`
	Started   time.Time        `json:"started"`
	Host      string           `json:"host,omitempty"`
	Accel     string           `json:"accel,omitempty"`
	Command   string           `json:"command,omitempty"`
	Suite     string           `json:"suite,omitempty"`
	Flavour   string           `json:"flavour"`
	Kernels   []KernelInfo     `json:"kernels,omitempty"`
	Counts    Counts           `json:"counts"`
	ExitCode  int              `json:"exit_code"`
	Scenarios []ScenarioResult `json:"scenarios"`
}

// KernelInfo is a kernel the run could boot.
type KernelInfo struct {
	Name    string `json:"name"`
	Flavour string `json:"flavour"`
	Release string `json:"release,omitempty"`
	BzImage string `json:"bzimage,omitempty"`
}

// ScenarioResult is one scenario's outcome.
type ScenarioResult struct {
	Scenario string         `json:"scenario"`
	Verdict  runner.Verdict `json:"verdict"`
	Reason   string         `json:"reason,omitempty"`
	Blame    string         `json:"blame,omitempty"`
	Elapsed  time.Duration  `json:"elapsed_ns"`
	Dir      string         `json:"dir,omitempty"`
	Rerun    string         `json:"rerun,omitempty"`
	Console  string         `json:"console,omitempty"`
	Events   string         `json:"events,omitempty"`
	Accel    string         `json:"accel,omitempty"`
	Flavour  string         `json:"flavour"`
	// Kernels are the kernels of the scenario, one per stage (booted
	// in that order; see BootedKernel).
	Kernels []BootedKernel `json:"kernels,omitempty"`
	Steps   []StepResult   `json:"steps,omitempty"`
	// Meminfo are the meminfo snapshots, labelled as in the plan.
	Meminfo []MeminfoSnapshot `json:"meminfo,omitempty"`
	Phases  Timings           `json:"phases"`
	// PreservedKB is PreservedKB: the MemTotal drop per hop, -1 when
	// not measurable.
	PreservedKB []int64           `json:"preserved_kb,omitempty"`
	Findings    []console.Finding `json:"findings,omitempty"`
	// SysRq is set when the host asked a silent or late VM for its
	// stacks before stopping it.
	SysRq *vm.SysRq `json:"sysrq,omitempty"`
	// KUnit is the KUnit report a KUnit scenario read from the console.
	KUnit *ktap.Report `json:"kunit,omitempty"`
	// LastConsoleLines are kept for outcomes that did not pass.
	LastConsoleLines []string `json:"last_console_lines,omitempty"`
}

// StepResult is one planned or reported step.
type StepResult struct {
	Stage int    `json:"stage"`
	Step  int    `json:"step"`
	Op    string `json:"op"`
	Args  string `json:"args,omitempty"`
	Label string `json:"label,omitempty"`
	// Reported is false when the agent never reported the step.
	Reported bool             `json:"reported"`
	Expect   string           `json:"expect"`
	Outcome  string           `json:"outcome,omitempty"`
	Pass     bool             `json:"pass"`
	Detail   string           `json:"detail,omitempty"`
	Cite     string           `json:"cite,omitempty"`
	Duration time.Duration    `json:"duration_ns"`
	Host     time.Duration    `json:"host_ns,omitempty"`
	Values   map[string]int64 `json:"values,omitempty"`
	Output   string           `json:"output,omitempty"`
	// KTAP is the exec step's output parsed as KTAP, if it was.
	KTAP *ktap.Report `json:"ktap,omitempty"`
}

// NewResults builds the results.json document.
func NewResults(run RunInfo, outs []*runner.Outcome) *Results {
	c := Tally(outs)
	doc := &Results{
		Schema: JSONSchema, Started: run.Started, Host: run.Host, Accel: run.Accel, Command: run.Command, Suite: run.Suite,
		Flavour:   run.Flavour.String(),
		Counts:    c,
		ExitCode:  ExitCode(outs),
		Scenarios: []ScenarioResult{},
	}
	for _, k := range run.Kernels {
		doc.Kernels = append(doc.Kernels, KernelInfo{Name: k.Name, Flavour: k.Flavour.String(), Release: k.Release, BzImage: k.BzImage})
	}
	for _, o := range outs {
		doc.Scenarios = append(doc.Scenarios, scenarioResult(o))
	}
	return doc
}

func scenarioResult(o *runner.Outcome) ScenarioResult {
	ss := steps(o)
	r := ScenarioResult{
		Scenario: o.Scenario, Verdict: o.Verdict, Reason: o.Reason, Blame: o.Blame,
		Elapsed: o.Elapsed, Dir: o.Dir, Rerun: o.Rerun, Flavour: o.Flavour.String(), KUnit: o.KUnit,
		Kernels: boots(o), Meminfo: meminfos(ss), Phases: Phases(o), PreservedKB: PreservedKB(o),
	}
	if o.VM != nil {
		r.Console, r.Events, r.Accel = o.VM.ConsoleLog, o.VM.EventsLog, string(o.VM.Accel)
		r.Findings = o.VM.Findings
		r.SysRq = o.VM.SysRq
		if o.Verdict != runner.Pass && o.Verdict != runner.Skip {
			r.LastConsoleLines = o.VM.LastLines
		}
	}
	for _, s := range ss {
		r.Steps = append(r.Steps, StepResult{
			Stage: s.Stage, Step: s.Index, Op: string(s.Op), Args: s.Args, Label: s.Label,
			Reported: s.Reported, Expect: s.Expect, Outcome: s.Outcome, Pass: s.Pass, Detail: s.Detail,
			Cite: s.Cite, Duration: s.Duration, Host: s.Host, Values: s.Values, Output: s.Output, KTAP: s.KTAP,
		})
	}
	return r
}

// WriteJSON writes outs as the results.json document (see Results).
func WriteJSON(w io.Writer, run RunInfo, outs []*runner.Outcome) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(NewResults(run, outs)); err != nil {
		return fmt.Errorf("writing JSON results: %w", err)
	}
	return nil
}
