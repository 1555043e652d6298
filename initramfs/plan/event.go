package plan

// EventKind classifies an Event.
type EventKind string

// Event kinds, in the order a stage emits them.
const (
	// EventStage opens a stage: kernel identity, capabilities, clocks.
	EventStage EventKind = "stage"
	// EventStart announces a step before it runs (Step, Op; Detail
	// says its deadline). A start without the step's EventStep names
	// the step a hang or a crash interrupted.
	EventStart EventKind = "start"
	// EventStep reports one executed step and whether it met its
	// expectation.
	EventStep EventKind = "step"
	// EventBeat is a racer's heartbeat (plan.Racer.BeatMS): Detail
	// names the racer, Values["pages"] counts its pages so far. The host
	// stamps it on arrival, so the last beat before a kexec bounds when
	// the kernel stopped the workload.
	EventBeat EventKind = "beat"
	// EventDone is the agent's final verdict, emitted once at the end
	// of the last stage (or when the agent gives up).
	EventDone EventKind = "done"
)

// OutputLimit bounds Event.Output.
const OutputLimit = 256 << 10

// Event is what the agent sends to the host over the event channel.
type Event struct {
	Kind  EventKind `json:"kind"`
	Stage int       `json:"stage"`
	// Step is the step index within the stage (EventStep).
	Step int `json:"step,omitempty"`
	Op   Op  `json:"op,omitempty"`
	// Outcome is "ok" or the errno name the step produced, or
	// "mismatch" when a verification found different content,
	// "timeout" when the step did not finish by its deadline, "fault"
	// when the kernel refused a page of a file's mapping (SIGBUS).
	Outcome string `json:"outcome,omitempty"`
	Expect  string `json:"expect,omitempty"`
	Pass    bool   `json:"pass"`
	// Detail explains a failure (or carries a measurement).
	Detail string `json:"detail,omitempty"`
	// DurationNS is how long the step took (guest CLOCK_MONOTONIC).
	DurationNS int64 `json:"duration_ns,omitempty"`
	// BoottimeNS is the guest CLOCK_BOOTTIME when the event was made.
	BoottimeNS int64 `json:"boottime_ns,omitempty"`
	// RealtimeNS is the guest CLOCK_REALTIME when the event was made;
	// it survives kexec, so it orders events across kernels.
	RealtimeNS int64 `json:"realtime_ns,omitempty"`
	// Kernel is `uname -r` plus version (EventStage).
	Kernel string `json:"kernel,omitempty"`
	// Caps are the capabilities the agent detected (EventStage).
	Caps []string `json:"caps,omitempty"`
	// Cmdline is /proc/cmdline (EventStage).
	Cmdline string `json:"cmdline,omitempty"`
	// Output is the standard output and error of an OpExec step
	// (truncated to OutputLimit bytes).
	Output string `json:"output,omitempty"`
	// Values carries measurements: meminfo fields in kB, st_blocks,
	// byte counts (EventStep).
	Values map[string]int64 `json:"values,omitempty"`
}
