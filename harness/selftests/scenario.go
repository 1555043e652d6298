package selftests

import (
	"fmt"
	"path"

	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// ImageDir is the initramfs directory the selftest binaries go into.
const ImageDir = "selftests"

// ScenarioPrefix starts the name of every selftest scenario.
const ScenarioPrefix = "selftest-"

// Tags of the selftest scenarios.
const (
	// Tag marks every selftest scenario.
	Tag = "selftests"
	// TagProject marks memfd-luo's own selftests (selftests/*.c).
	TagProject = "series-selftests"
	// TagDefault marks the quick ones: a few seconds of test time
	// under TCG, on top of the boots.
	TagDefault = "default"
)

// quick lists the tests whose whole scenario (boots, kexec and the
// test's own run) takes a few seconds under TCG. Measured with 7.3.4 on a
// stock bzImage, 1 GiB, 2 vCPUs: liveupdate 2.5 s (test 0.49 s),
// luo_kexec_simple 4.2 s (0.09 + 0.06 s), luo_multi_session 4.8 s
// (0.13 + 0.12 s), luo_stress_files 4.2 s (0.16 + 0.15 s),
// luo_stress_sessions 4.4 s (0.20 + 0.28 s). A test not listed (a newer
// tree's) is left out of the default set until it is measured.
var quick = map[string]bool{
	"liveupdate":          true,
	"luo_kexec_simple":    true,
	"luo_multi_session":   true,
	"luo_stress_files":    true,
	"luo_stress_sessions": true,
}

// ImagePath is where test t lives inside the initramfs.
func (t Test) ImagePath() string { return "/" + path.Join(ImageDir, t.Name) }

// ScenarioName is the name of t's scenario.
func (t Test) ScenarioName() string { return ScenarioPrefix + t.Name }

// Files returns the initramfs files the tests need (archive path to host
// path), for runner.Options.Files.
func Files(tests []Test) map[string]string {
	files := make(map[string]string, len(tests))
	for _, t := range tests {
		if t.Binary != "" {
			files[path.Join(ImageDir, t.Name)] = t.Binary
		}
	}
	return files
}

// Scenarios turns each test into a scenario of exec steps. A kexec test
// runs as the in-tree init.c runs it: "<test> -s 1" (which leaves a child
// holding the sessions open), a kexec, then "<test> -s 2" in the next
// kernel. Any other test runs once without arguments, as the kselftest
// runner would. The agent itself never opens /dev/liveupdate in these
// scenarios: the device admits one opener and the test must be it.
func Scenarios(tests []Test) []*scenario.Scenario {
	var out []*scenario.Scenario
	for _, t := range tests {
		s := &scenario.Scenario{
			Name: t.ScenarioName(),
			// solo: the test owns /dev/liveupdate, so it cannot
			// share a VM with scenarios the agent drives.
			Tags: []string{Tag, scenario.TagSolo},
		}
		if quick[t.Name] {
			s.Tags = append(s.Tags, TagDefault)
		}
		exe := t.ImagePath()
		flag := t.StageFlag
		if flag == "" {
			flag = "-s"
		}
		if t.Project {
			// Our own tests are quick and check the series: they
			// run by default, and carry their own tag.
			s.Tags = []string{TagProject, scenario.TagSolo, TagDefault}
			// memfd_luo_sparse preserves a 1 GiB sparse memfd;
			// a stock kernel fills its holes at preserve.
			s.MemoryMB = 3072
		}
		if t.Kexec {
			s.Description = fmt.Sprintf("in-tree selftest %s/%s: `%s %s 1`, kexec, `%s %s 2`", TestDir, t.Name, t.Name, flag, t.Name, flag)
			if t.Project {
				s.Description = fmt.Sprintf("memfd-luo selftest selftests/%s.c: `%s 1`, kexec, `%s 2`", t.Name, flag, flag)
			}
			s.Stages = []plan.Stage{
				{Steps: []plan.Step{
					{Op: plan.OpExec, Path: exe, Args: []string{flag, "1"}, Expect: "ok"},
					// Kernel and Cmdline are filled in by Scenario.Plan.
					{Op: plan.OpKexec},
				}},
				{Steps: []plan.Step{
					{Op: plan.OpExec, Path: exe, Args: []string{flag, "2"}, Expect: "ok"},
				}},
			}
		} else {
			s.Description = fmt.Sprintf("in-tree selftest %s/%s, run once", TestDir, t.Name)
			s.Stages = []plan.Stage{
				{Steps: []plan.Step{
					{Op: plan.OpExec, Path: exe, Expect: "ok"},
				}},
			}
		}
		if t.BuildError != "" {
			s.Skip = "cannot be built: " + t.BuildError
			if t.BuildLog != "" {
				s.Skip += " (log: " + t.BuildLog + ")"
			}
		}
		out = append(out, s)
	}
	return out
}
