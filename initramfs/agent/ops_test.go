package agent

import (
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/luo"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// withLUO runs steps with /dev/liveupdate stood in for by devPath and,
// when session is set, a session of that name open on /dev/null: every
// LUO ioctl then reaches a real file and fails with the errno it gives
// (ENOTTY), which must become the step's outcome as a kernel's errno
// would.
func withLUO(t *testing.T, devPath, session string, files []plan.File, steps []plan.Step) []plan.Event {
	t.Helper()
	p := &plan.Plan{Scenario: t.Name(), Files: files, Stages: []plan.Stage{{Steps: steps}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a := New(p, 0, map[string]bool{}, rec, fakeSystem{}, io.Discard)
	a.devPath = devPath
	if session != "" {
		fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		a.sessions[session] = luo.NewSession(fd, session)
	}
	if err := a.RunStage(t.Context()); err != nil {
		t.Fatal(err)
	}
	return rec.steps()
}

func TestLUOStepsReportTheErrno(t *testing.T) {
	m := plan.File{Name: "m", Flags: plan.MFDAllowSeal, Size: 1 << 20, Seed: 3}
	raw := func(cmd string, onDevice bool) *plan.RawIoctl {
		return &plan.RawIoctl{Cmd: cmd, OnDevice: onDevice}
	}
	tests := []struct {
		name    string
		devPath string
		step    plan.Step
		outcome string
		detail  string
	}{
		{"create_session", "/dev/null", plan.Step{Op: plan.OpCreateSession, Session: "x"}, "ENOTTY", "LIVEUPDATE_IOCTL_CREATE_SESSION"},
		{"retrieve_session", "/dev/null", plan.Step{Op: plan.OpRetrieveSession, Session: "x"}, "ENOTTY", "LIVEUPDATE_IOCTL_RETRIEVE_SESSION"},
		{"no device", "/nonexistent/liveupdate", plan.Step{Op: plan.OpCreateSession, Session: "x"}, "ENOENT", "booted without liveupdate=on"},
		{"second opener", "/dev/null", plan.Step{Op: plan.OpOpenDevice}, "ok", ""},
		{"second opener, no device", "/nonexistent/liveupdate", plan.Step{Op: plan.OpOpenDevice}, "ENOENT", ""},
		{"raw on the device", "/dev/null", plan.Step{Op: plan.OpRawIoctl, Raw: raw("create_session", true)}, "ENOTTY", "raw create_session"},
		{"raw on a session", "/dev/null", plan.Step{Op: plan.OpRawIoctl, Session: "s", Raw: raw("finish", false)}, "ENOTTY", "raw finish"},
		{"raw fd ioctl with a file", "/dev/null", plan.Step{Op: plan.OpRawIoctl, Session: "s", File: "m", Raw: raw("preserve_fd", false)}, "ENOTTY", "raw preserve_fd"},
		{"preserve", "/dev/null", plan.Step{Op: plan.OpPreserve, Session: "s", File: "m", Token: 7}, "ENOTTY", "LIVEUPDATE_SESSION_PRESERVE_FD"},
		{"retrieve", "/dev/null", plan.Step{Op: plan.OpRetrieve, Session: "s", Token: 7, File: "r"}, "ENOTTY", "LIVEUPDATE_SESSION_RETRIEVE_FD"},
		{"finish", "/dev/null", plan.Step{Op: plan.OpFinish, Session: "s"}, "ENOTTY", "LIVEUPDATE_SESSION_FINISH"},
		{"get_name", "/dev/null", plan.Step{Op: plan.OpGetName, Session: "s"}, "ENOTTY", "LIVEUPDATE_SESSION_GET_NAME"},
		{"preserve a pipe", "/dev/null", plan.Step{Op: plan.OpPreserveOther, Session: "s", Other: "pipe", Token: 1}, "ENOTTY", "PRESERVE_FD"},
		{"preserve a socket", "/dev/null", plan.Step{Op: plan.OpPreserveOther, Session: "s", Other: "socket", Token: 1}, "ENOTTY", "PRESERVE_FD"},
		{"close_session", "/dev/null", plan.Step{Op: plan.OpCloseSession, Session: "s"}, "ok", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.step
			s.Expect = tc.outcome
			evs := withLUO(t, tc.devPath, "s", []plan.File{m}, []plan.Step{{Op: plan.OpCreateMemfd, File: "m"}, s})
			ev := evs[len(evs)-1]
			if ev.Outcome != tc.outcome || !ev.Pass || !strings.Contains(ev.Detail, tc.detail) {
				t.Errorf("outcome %q pass %v detail %q; want %q mentioning %q", ev.Outcome, ev.Pass, ev.Detail, tc.outcome, tc.detail)
			}
			if s.Op == plan.OpPreserve {
				if _, ok := ev.Values["blocks_before"]; !ok {
					t.Errorf("preserve reported no blocks: %v", ev.Values)
				}
			}
		})
	}
}

// A plan that refers to what this stage does not have is the plan's
// mistake: outcome "error" with a detail that says so, never an errno.
func TestPlanErrorsAreNotOutcomes(t *testing.T) {
	m := plan.File{Name: "m", Size: 4096}
	tests := []struct {
		name string
		step plan.Step
		want string
	}{
		{"session not open", plan.Step{Op: plan.OpFinish, Session: "nope"}, `session "nope" is not open`},
		{"close a session not open", plan.Step{Op: plan.OpCloseSession, Session: "nope"}, `session "nope" is not open`},
		{"get_name of a session not open", plan.Step{Op: plan.OpGetName, Session: "nope"}, `session "nope" is not open`},
		{"retrieve from a session not open", plan.Step{Op: plan.OpRetrieve, Session: "nope"}, `session "nope" is not open`},
		{"preserve into a session not open", plan.Step{Op: plan.OpPreserve, Session: "nope", File: "m"}, `session "nope" is not open`},
		{"preserve a file not open", plan.Step{Op: plan.OpPreserve, Session: "s", File: "m"}, `file "m" is not open`},
		{"preserve_other into a session not open", plan.Step{Op: plan.OpPreserveOther, Session: "nope", Other: "pipe"}, `session "nope" is not open`},
		{"preserve an unknown kind", plan.Step{Op: plan.OpPreserveOther, Session: "s", Other: "teapot"}, `unknown other file kind "teapot"`},
		{"write a file not open", plan.Step{Op: plan.OpWrite, File: "m", Extent: plan.Extent{Len: 1}}, `file "m" is not open`},
		{"verify a file not open", plan.Step{Op: plan.OpVerify, File: "m"}, `file "m" was not created or retrieved`},
		{"corrupt a file not open", plan.Step{Op: plan.OpCorrupt, File: "m"}, `file "m" is not open`},
		{"close a file not open", plan.Step{Op: plan.OpCloseFile, File: "m"}, `file "m" is not open`},
		{"page out a file not open", plan.Step{Op: plan.OpPageout, File: "m"}, `file "m" is not open`},
		{"corrupt the handover of a file not open", plan.Step{Op: plan.OpCorruptHandover, File: "m", Data: "count"}, `file "m" is not open`},
		{"raw ioctl without raw", plan.Step{Op: plan.OpRawIoctl, Session: "s"}, "raw_ioctl without raw"},
		{"raw ioctl on a session not open", plan.Step{Op: plan.OpRawIoctl, Session: "nope", Raw: &plan.RawIoctl{Cmd: "finish"}}, `session "nope" is not open`},
		{"stop racers that do not run", plan.Step{Op: plan.OpRaceStop, File: "m"}, `no racers run on "m"`},
		{"race on a file not open", plan.Step{Op: plan.OpRaceStart, File: "m", Racers: []plan.Racer{{How: "write", Extent: plan.Extent{Len: 4096}}}}, `file "m" is not open`},
		{"bad module parameter", plan.Step{Op: plan.OpSetParam, Path: "../etc/x", Data: "1"}, `module parameter "../etc/x" is not "module/name"`},
		{"unknown op", plan.Step{Op: "frobnicate"}, `unknown op "frobnicate"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.step
			s.Expect = "error"
			ev := withLUO(t, "/dev/null", "s", []plan.File{m}, []plan.Step{s})[0]
			if ev.Outcome != "error" || !ev.Pass || !strings.Contains(ev.Detail, "plan error") || !strings.Contains(ev.Detail, tc.want) {
				t.Errorf("outcome %q pass %v detail %q; want error mentioning %q", ev.Outcome, ev.Pass, ev.Detail, tc.want)
			}
		})
	}
}

func TestStageFromCmdline(t *testing.T) {
	tests := []struct {
		cmdline string
		want    int
		err     bool
	}{
		{"console=ttyS0", 0, false},
		{"a luo_stage=2 b", 2, false},
		{"luo_stage=x", 0, true},
		{"luo_stage=-1", 0, true},
		{"xluo_stage=3", 0, false},
	}
	for _, tc := range tests {
		got, err := Stage(tc.cmdline)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("Stage(%q) = %d, %v; want %d, error %v", tc.cmdline, got, err, tc.want, tc.err)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	got := ParseMeminfo([]byte("MemTotal:        2014580 kB\nHugePages_Total:       4\nbogus line\nEmpty:\nBad: x kB\n"))
	want := map[string]int64{"MemTotal": 2014580, "HugePages_Total": 4}
	if len(got) != len(want) || got["MemTotal"] != want["MemTotal"] || got["HugePages_Total"] != 4 {
		t.Errorf("ParseMeminfo = %v, want %v", got, want)
	}
	if got := Caps(map[string]bool{"b": true, "a": true}); strings.Join(got, ",") != "a,b" {
		t.Errorf("Caps = %v", got)
	}
}
