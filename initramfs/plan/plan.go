// Package plan holds the contract between the host harness and the guest
// agent: the Plan the agent executes (a list of stages, each a list of
// steps, with the expected outcome of every step) and the Events the agent
// reports back while it runs.
//
// A Plan is data. The host compiles a scenario into a Plan, writes it as
// JSON into the initramfs (PlanPath), and the agent interprets it. The
// initramfs is retained across kexec, so every stage reads the same Plan;
// the stage number travels on the kernel command line (StageParam).
package plan

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Paths and parameters shared by host and guest.
const (
	// PlanPath is where the plan lives inside the initramfs.
	PlanPath = "/etc/luotest/plan.json"
	// StageParam is the kernel command-line parameter carrying the
	// stage number (0-based) to the agent.
	StageParam = "luo_stage"
	// EventPort is the virtio-serial port name of the event channel.
	EventPort = "luotest-events"
	// ConsolePrefix starts every line the agent prints on the console.
	ConsolePrefix = "LUOTEST:"
)

// Op names a step the agent can execute.
type Op string

// Steps the agent knows. Arguments live in the Step fields noted.
const (
	OpCreateSession   Op = "create_session"   // Session
	OpRetrieveSession Op = "retrieve_session" // Session
	OpCloseSession    Op = "close_session"    // Session
	OpFinish          Op = "finish"           // Session
	OpGetName         Op = "get_name"         // Session
	OpCreateMemfd     Op = "create_memfd"     // File (spec from Plan.Files)
	OpWrite           Op = "write"            // File, Extent: write pattern
	OpPreserve        Op = "preserve"         // Session, File, Token
	OpRetrieve        Op = "retrieve"         // Session, Token, File
	OpVerify          Op = "verify"           // File
	OpCorrupt         Op = "corrupt"          // File, Offset: flip one byte (self-check)
	OpMeminfo         Op = "meminfo"          // Label
	OpKexec           Op = "kexec"            // Kernel, Cmdline
	OpPreserveOther   Op = "preserve_other"   // Session, Other, Token
	OpRawIoctl        Op = "raw_ioctl"        // Session, Raw
	OpOpenDevice      Op = "open_device"      // (second opener)
	OpCloseFile       Op = "close_file"       // File
	// OpSetParam writes Data to the parameter Path of a built-in
	// module under /sys/module (e.g. "memfd_luo/abi").
	OpSetParam Op = "set_param"
	// OpSysctl writes Data to the sysctl Path below /proc/sys (e.g.
	// "vm/nr_overcommit_hugepages").
	OpSysctl Op = "sysctl"
	// OpExec runs a program from the image (Path, Args) and waits for
	// it; Expect "ok" means exit status 0, "exit:N" status N. Its
	// output (KTAP for selftests) travels in the event.
	OpExec Op = "exec"
	// OpCorruptHandover asks the kernel's test hook
	// (CONFIG_MEMFD_LUO_TEST_HOOK, /sys/kernel/debug/memfd_luo/corrupt)
	// to corrupt the handover data of File at the next freeze, in the
	// way Data names ("pfn-unpreserved", "count", ...).
	OpCorruptHandover Op = "corrupt_handover"
	// OpKexecAbort starts a live update that must be aborted (the test
	// hook's "freeze-fail" on a file frozen later), while one goroutine
	// faults into the first half of Extent of File through a shared
	// mapping and another writes into the second half with pwrite, a
	// page every few milliseconds, with the pattern of Seed. The
	// outcome is reboot()'s errno. It reports reboot_ms, and per hammer
	// ("fault", "write") _pages done, _longest_ms for one page and
	// _failed (1 after a SIGBUS or an error). Kernel and Cmdline default
	// to the stage's final kexec.
	OpKexecAbort Op = "kexec_abort"
	// OpSwapon gives the guest swap: the zram device (built in; a new
	// one through /sys/class/zram-control if zram0 is taken) gets
	// Data bytes ("64M", "1G" or a number), a swap header written by
	// the agent, and swapon(2). It reports swap_total_kb.
	OpSwapon Op = "swapon"
	// OpPageout pushes the pages of File (within Extent, the whole file
	// if empty) that hold data to swap: it maps them shared, touches
	// them, and madvise(MADV_PAGEOUT)s the mapping. Holes are never
	// touched. It reports pages (data pages in range), swapped_kb (the
	// mapping's Swap in /proc/self/smaps), swap_used_delta_kb
	// (SwapTotal-SwapFree after minus before) and resident_kb (the
	// mapping's Rss after). Require pages to have gone to swap with a
	// check (swapped_kb > 0); without one, the step only reports.
	OpPageout Op = "pageout"
	// OpRaceStart starts Racers on File in the background and returns
	// once each has done its Warm pages: goroutines that sweep their
	// extent page by page, again and again, through a shared mapping
	// ("fault") or pwrite ("write"), every sweep a new generation of
	// RaceWord(Seed, offset, generation). They keep running through
	// the steps that follow (a preserve, or the stage's kexec: then
	// they race freeze) until OpRaceStop. Any later verify of File
	// accepts in a racer's extent exactly the states the racer could
	// have left: a prefix of its sweeps (see RaceCheck).
	OpRaceStart Op = "race_start"
	// OpRaceStop stops the racers of File and reports, per racer
	// ("<how><i>_"): pages, sweeps, longest_ms and failed.
	OpRaceStop Op = "race_stop"
	// OpCgroup moves the agent into the cgroup v2 group Path (created
	// below /sys/fs/cgroup, which is mounted with
	// memory_hugetlb_accounting where the kernel has it; the memory and
	// hugetlb controllers enabled for it), after writing each
	// "file=value" of Args into the group (e.g.
	// "hugetlb.2MB.max=4194304"). Path "/" moves it back to the root.
	// From then on, meminfo steps also report the group's charges:
	// cgroup/memory.current, cgroup/hugetlb.<size>.current and
	// cgroup/hugetlb.<size>.rsvd.current, in bytes.
	OpCgroup Op = "cgroup"
	// OpScratchPages reports how many of File's data pages lie in the
	// KHO scratch areas, which the next kernel boots from
	// (/sys/kernel/debug/kho/out/scratch_phys and scratch_len): it maps
	// and reads each data page and looks its frame up in
	// /proc/self/pagemap. It reports pages and in_scratch. Holes are
	// found with SEEK_DATA; hugetlbfs has none and counts every page
	// as data, so use it on dense hugetlb files only.
	OpScratchPages Op = "scratch_pages"
	// OpCalibrate runs a fixed CPU loop (CalibrateIters steps of a
	// xorshift generator) and reports its duration as calib_ns: how
	// fast the guest runs right now. Under TCG the speed of a VM moves
	// by up to 2x with the host's load; a phase divided by a calibration
	// taken around it compares across VMs.
	OpCalibrate Op = "calibrate"
)

// CorruptHookPath is the test hook OpCorruptHandover writes to.
const CorruptHookPath = "/sys/kernel/debug/memfd_luo/corrupt"

// Plan is everything the agent needs for one scenario.
type Plan struct {
	// Scenario is the scenario name, for logs.
	Scenario string `json:"scenario"`
	// Files declares the memfds the steps refer to by name.
	Files []File `json:"files,omitempty"`
	// Stages are executed one per boot: stage i runs in the kernel
	// booted for the i-th time. Every stage but the last ends in a
	// kexec step.
	Stages []Stage `json:"stages"`
	// StepTimeoutMS is how long the agent lets one step run before it
	// fails the step with outcome "timeout", kills the program of an
	// exec step, and ends the stage. 0 means the agent's default.
	StepTimeoutMS int64 `json:"step_timeout_ms,omitempty"`
}

// Stage is the work done in one boot.
type Stage struct {
	Steps []Step `json:"steps"`
}

// Step is one action and its expected outcome.
type Step struct {
	Op      Op     `json:"op"`
	Session string `json:"session,omitempty"`
	File    string `json:"file,omitempty"`
	Token   uint64 `json:"token,omitempty"`
	Extent  Extent `json:"extent,omitzero"`
	Offset  int64  `json:"offset,omitempty"`
	Label   string `json:"label,omitempty"`
	// Kernel is the initramfs path of the kernel to kexec into.
	Kernel string `json:"kernel,omitempty"`
	// Cmdline is appended to the current command line (after the
	// stage parameter is replaced) for the next kernel.
	Cmdline string `json:"cmdline,omitempty"`
	// Other names a non-memfd file kind for OpPreserveOther:
	// "pipe", "socket", "tmpfs".
	Other string `json:"other,omitempty"`
	// Path and Args are the program of an OpExec.
	Path string   `json:"path,omitempty"`
	Args []string `json:"args,omitempty"`
	// Data is what OpSetParam writes.
	Data string `json:"data,omitempty"`
	// Raw describes a hand-made ioctl for OpRawIoctl.
	Raw *RawIoctl `json:"raw,omitempty"`
	// Racers are the goroutines of an OpRaceStart.
	Racers []Racer `json:"racers,omitempty"`
	// Expect is the expected outcome: "" or "ok" for success, an errno
	// name such as "ENOENT", "mismatch" for a verification that must
	// find a difference, or "skip" to not run the step on this kernel.
	Expect string `json:"expect,omitempty"`
	// ExpectByCap overrides Expect when the kernel under test has (or,
	// with a leading "!", lacks) a capability; the first match wins.
	ExpectByCap []CapExpect `json:"expect_by_cap,omitempty"`
	// Checks are applied to the values the step reports (meminfo
	// fields, blocks, data_bytes, ...); a failing check makes the
	// outcome "mismatch".
	Checks []Check `json:"checks,omitempty"`
	// Seed is the pattern seed of an OpWrite.
	Seed uint64 `json:"seed,omitempty"`
	// Cite names the uAPI documentation behind a non-trivial
	// expectation, reported with failures.
	Cite string `json:"cite,omitempty"`
}

// Check compares a reported value with a constant or another value:
// Key Op (Value + Ref's value). When, if set, is a capability condition
// ("sparse", "!sparse", or several joined by "&", all of which must hold:
// "hugetlb&prev:hugetlb") under which the check applies.
//
// A Ref of the form "@label.Key" names a value reported by an earlier
// meminfo step of the same stage with that label. Every meminfo step also
// reports MemTotal_delta, the change of MemTotal since the previous
// meminfo step of its stage (0 for the first).
type Check struct {
	Key   string `json:"key"`
	Op    string `json:"op"`
	Value int64  `json:"value,omitempty"`
	Ref   string `json:"ref,omitempty"`
	When  string `json:"when,omitempty"`
}

// Applies reports whether the check's capability condition holds.
func (c Check) Applies(caps map[string]bool) bool {
	return c.When == "" || CapsHold(c.When, caps)
}

// CapsHold reports whether a capability condition holds on a kernel with
// caps: "sparse" (present), "!sparse" (absent), or several joined by "&",
// all of which must hold.
func CapsHold(cond string, caps map[string]bool) bool {
	for _, c := range strings.Split(cond, "&") {
		name, want := c, true
		if strings.HasPrefix(name, "!") {
			name, want = name[1:], false
		}
		if caps[name] != want {
			return false
		}
	}
	return true
}

// Eval applies the check to values; it returns a description of the
// failure, or "" when the check holds.
func (c Check) Eval(values map[string]int64) string {
	got, ok := values[c.Key]
	if !ok {
		return fmt.Sprintf("%s not reported", c.Key)
	}
	want := c.Value
	what := fmt.Sprint(c.Value)
	if c.Ref != "" {
		r, ok := values[c.Ref]
		if !ok {
			return fmt.Sprintf("%s not reported", c.Ref)
		}
		want += r
		what = fmt.Sprintf("%s(%d)", c.Ref, r)
		if c.Value != 0 {
			what += fmt.Sprintf("%+d", c.Value)
		}
	}
	var holds bool
	switch c.Op {
	case "==":
		holds = got == want
	case "!=":
		holds = got != want
	case ">":
		holds = got > want
	case ">=":
		holds = got >= want
	case "<":
		holds = got < want
	case "<=":
		holds = got <= want
	default:
		return fmt.Sprintf("bad check operator %q", c.Op)
	}
	if holds {
		return ""
	}
	return fmt.Sprintf("%s = %d, want %s %s", c.Key, got, c.Op, what)
}

// CapExpect is an expectation that applies when a capability condition
// holds (CapsHold: "sparse", "!sparse", "a&!b").
type CapExpect struct {
	Cap    string `json:"cap"`
	Expect string `json:"expect"`
}

// Expectation returns the outcome expected of s on a kernel with caps.
func (s *Step) Expectation(caps map[string]bool) string {
	for _, ce := range s.ExpectByCap {
		if CapsHold(ce.Cap, caps) {
			return ce.Expect
		}
	}
	return s.Expect
}

// RawIoctl is an ioctl built by hand, to test argument checking.
type RawIoctl struct {
	// Cmd is the ioctl: "create_session", "retrieve_session",
	// "preserve_fd", "retrieve_fd", "finish", "get_name".
	Cmd string `json:"cmd"`
	// Size overrides the size field (0 = correct size).
	Size uint32 `json:"size,omitempty"`
	// Reserved is written to the reserved field, if the struct has one.
	Reserved uint32 `json:"reserved,omitempty"`
	// Name is the session name bytes, for the session ioctls; it is
	// copied as is (no NUL is added when it fills the field).
	Name string `json:"name,omitempty"`
	// Tail is written into the byte after the real struct, to test
	// the kernel's check of an oversized struct (E2BIG).
	Tail uint8 `json:"tail,omitempty"`
	// OnDevice sends the ioctl to /dev/liveupdate instead of Session.
	OnDevice bool `json:"on_device,omitempty"`
}

// Racer is one goroutine of OpRaceStart. It sweeps Extent (page aligned)
// in order, one page at a time, writing generation g of the race pattern
// into the whole page in sweep g (the first sweep is generation 1).
type Racer struct {
	// How: "fault" (a shared mapping: a fault per page the first time,
	// holes included) or "write" (pwrite of one page).
	How    string `json:"how"`
	Extent Extent `json:"extent"`
	// PaceUS is a pause after every page, in microseconds (0: none).
	PaceUS int64 `json:"pace_us,omitempty"`
	// Sweeps stops the racer after that many sweeps (0: when stopped).
	Sweeps int64 `json:"sweeps,omitempty"`
	// Warm is how many pages the racer must have done before
	// OpRaceStart returns; the verifier of a later stage knows the racer
	// got at least that far.
	Warm int64 `json:"warm,omitempty"`
	// BeatMS, when > 0, makes the racer send an EventBeat at most every
	// BeatMS milliseconds while it writes: a workload whose last write
	// before a kexec the host can time.
	BeatMS int64 `json:"beat_ms,omitempty"`
}

// CalibrateIters is the work of one OpCalibrate: about 10-30 ms under
// TCG on the project machine.
const CalibrateIters = 1 << 21

// MFD flags understood in File.Flags.
const (
	MFDCloexec    = 0x1
	MFDAllowSeal  = 0x2
	MFDHugetlb    = 0x4
	MFDNoexecSeal = 0x8
	MFDExec       = 0x10
	// MFDHuge1GB selects 1 GiB pages for an MFDHugetlb memfd (log2 of
	// the size << MFD_HUGE_SHIFT, 26); without it, the kernel's default
	// huge page size.
	MFDHuge1GB = 30 << 26
)

// WriteMode says how the agent puts data into a memfd.
type WriteMode string

// Write modes.
const (
	WriteSyscall WriteMode = "pwrite"
	WriteMmap    WriteMode = "mmap"
)

// File describes a memfd: how it is created, what data it holds and the
// state the next kernel must reproduce.
type File struct {
	Name string `json:"name"`
	// Flags are memfd_create flags (MFD*).
	Flags uint32 `json:"flags,omitempty"`
	// Size is the file size set with ftruncate.
	Size int64 `json:"size"`
	// Seed selects the content pattern.
	Seed uint64 `json:"seed"`
	// Extents are the byte ranges written with the pattern. Everything
	// else reads as zero. Empty means "the whole file".
	Extents []Extent `json:"extents,omitempty"`
	// NoData leaves the file without written data (Extents ignored).
	NoData bool `json:"no_data,omitempty"`
	// Fallocated ranges are allocated with fallocate but not written.
	Fallocated []Extent `json:"fallocated,omitempty"`
	// Write says how data is written (default pwrite).
	Write WriteMode `json:"write,omitempty"`
	// Mode, if non-nil, is set with fchmod right after memfd_create.
	Mode *uint32 `json:"mode,omitempty"`
	// Seals are applied with F_ADD_SEALS after the data is written.
	Seals uint32 `json:"seals,omitempty"`
	// Pos is the file position set before preservation.
	Pos int64 `json:"pos,omitempty"`
	// ExpectSeals, if non-nil, is the seal set the next kernel must
	// report (default: Seals plus what the kernel implies).
	ExpectSeals *uint32 `json:"expect_seals,omitempty"`
	// ExpectMode, if non-nil, is the i_mode & 07777 expected after
	// retrieve.
	ExpectMode *uint32 `json:"expect_mode,omitempty"`
	// CheckLayout asks the verifier to compare allocated blocks and
	// the SEEK_DATA/SEEK_HOLE layout with what stage 1 recorded.
	CheckLayout bool `json:"check_layout,omitempty"`
	// ExpectWritable asks the verifier to pwrite one byte at offset 0
	// and read it back (restores it afterwards).
	ExpectWritable bool `json:"expect_writable,omitempty"`
}

// Extent is a byte range [Off, Off+Len).
type Extent struct {
	Off int64 `json:"off"`
	Len int64 `json:"len"`
}

// End returns the end offset of the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// DataExtents returns the ranges of f that hold pattern data.
func (f *File) DataExtents() []Extent {
	if f.NoData || f.Size == 0 {
		return nil
	}
	if len(f.Extents) == 0 {
		return []Extent{{0, f.Size}}
	}
	return f.Extents
}

// Validate checks a plan for mistakes the agent would only find late.
func (p *Plan) Validate() error {
	files := map[string]*File{}
	for i := range p.Files {
		f := &p.Files[i]
		if f.Name == "" {
			return fmt.Errorf("plan %q: file %d has no name", p.Scenario, i)
		}
		if _, dup := files[f.Name]; dup {
			return fmt.Errorf("plan %q: file %q declared twice", p.Scenario, f.Name)
		}
		if f.Size < 0 {
			return fmt.Errorf("plan %q: file %q: negative size", p.Scenario, f.Name)
		}
		for _, e := range append(append([]Extent{}, f.Extents...), f.Fallocated...) {
			if e.Off < 0 || e.Len <= 0 || e.End() > f.Size {
				return fmt.Errorf("plan %q: file %q: extent %+v outside [0,%d)", p.Scenario, f.Name, e, f.Size)
			}
		}
		files[f.Name] = f
	}
	if len(p.Stages) == 0 {
		return fmt.Errorf("plan %q: no stages", p.Scenario)
	}
	if p.StepTimeoutMS < 0 {
		return fmt.Errorf("plan %q: negative step timeout %d ms", p.Scenario, p.StepTimeoutMS)
	}
	for si, st := range p.Stages {
		last := si == len(p.Stages)-1
		for i, s := range st.Steps {
			if s.File != "" && s.Op != OpRetrieve {
				if _, ok := files[s.File]; !ok {
					return fmt.Errorf("plan %q: stage %d step %d (%s): unknown file %q", p.Scenario, si, i, s.Op, s.File)
				}
			}
			if s.Op == OpKexecAbort && (s.File == "" || s.Extent.Len < 2*4096) {
				return fmt.Errorf("plan %q: stage %d step %d: kexec_abort needs a file and an extent of two pages or more", p.Scenario, si, i)
			}
			if s.Op == OpRaceStart {
				if err := validateRacers(s, files[s.File]); err != nil {
					return fmt.Errorf("plan %q: stage %d step %d: %w", p.Scenario, si, i, err)
				}
			}
			if (s.Op == OpRaceStop || s.Op == OpPageout || s.Op == OpScratchPages) && s.File == "" {
				return fmt.Errorf("plan %q: stage %d step %d: %s needs a file", p.Scenario, si, i, s.Op)
			}
			if s.Op == OpSwapon && s.Data == "" {
				return fmt.Errorf("plan %q: stage %d step %d: swapon needs a size in data", p.Scenario, si, i)
			}
			if s.Op == OpCorruptHandover && (s.File == "" || s.Data == "") {
				return fmt.Errorf("plan %q: stage %d step %d: corrupt_handover needs a file and a class in data", p.Scenario, si, i)
			}
			if s.Op == OpKexec && (last || i != len(st.Steps)-1) {
				return fmt.Errorf("plan %q: stage %d: kexec must be the last step of a non-final stage", p.Scenario, si)
			}
		}
		if !last && (len(st.Steps) == 0 || st.Steps[len(st.Steps)-1].Op != OpKexec) {
			return fmt.Errorf("plan %q: stage %d does not end in kexec", p.Scenario, si)
		}
	}
	return nil
}

// validateRacers checks the racers of an OpRaceStart on file f: page
// aligned, inside the file, not overlapping.
func validateRacers(s Step, f *File) error {
	if f == nil || len(s.Racers) == 0 {
		return fmt.Errorf("race_start needs a file and racers")
	}
	const pg = 4096
	for i, r := range s.Racers {
		if r.How != "fault" && r.How != "write" {
			return fmt.Errorf("racer %d: how %q is not fault or write", i, r.How)
		}
		e := r.Extent
		if e.Off < 0 || e.Len <= 0 || e.Off%pg != 0 || e.Len%pg != 0 || e.End() > f.Size {
			return fmt.Errorf("racer %d: extent %+v is not page aligned inside [0,%d)", i, e, f.Size)
		}
		if r.Warm < 0 || r.Sweeps < 0 || (r.Sweeps > 0 && r.Warm > r.Sweeps*(e.Len/pg)) {
			return fmt.Errorf("racer %d: warm %d beyond %d sweeps", i, r.Warm, r.Sweeps)
		}
		for j := range i {
			o := s.Racers[j].Extent
			if e.Off < o.End() && o.Off < e.End() {
				return fmt.Errorf("racers %d and %d overlap", j, i)
			}
		}
	}
	return nil
}

// Marshal encodes the plan as indented JSON.
func (p *Plan) Marshal() ([]byte, error) { return json.MarshalIndent(p, "", "  ") }

// Unmarshal decodes a plan.
func Unmarshal(b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decoding plan: %w", err)
	}
	return &p, nil
}

// ExpectOK reports whether an expectation string means success.
func ExpectOK(expect string) bool {
	return expect == "" || strings.EqualFold(expect, "ok")
}
