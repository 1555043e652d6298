package ktap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tree renders results as "path=status" lines, parents before their
// subtests; skip, xfail and error results carry their reason.
func tree(rs []Result) []string {
	var out []string
	var walk func(rs []Result, path string)
	walk = func(rs []Result, path string) {
		for _, r := range rs {
			name := r.Name
			if name == "" {
				name = fmt.Sprintf("#%d", r.Number)
			}
			if path != "" {
				name = path + "/" + name
			}
			s := name + "=" + string(r.Status)
			if r.Status == Skip || r.Status == XFail || r.Status == Error {
				s += "(" + r.Reason + ")"
			}
			out = append(out, s)
			walk(r.Subtests, name)
		}
	}
	walk(rs, "")
	return out
}

func parseString(t *testing.T, s string) *Report {
	t.Helper()
	r, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func TestParseFiles(t *testing.T) {
	for _, tc := range []struct {
		file     string
		version  string
		plan     int
		tree     []string
		problems []string
		passed   bool
	}{
		{
			file: "kselftest_runner.ktap", version: "TAP version 13", plan: 4,
			tree: []string{
				"selftests: memfd: memfd_test=pass",
				"selftests: memfd: memfd_test/memfd_create=pass",
				"selftests: memfd: memfd_test/seals=pass",
				"selftests: memfd: memfd_test/#3=skip(hugetlbfs not mounted)",
				"selftests: liveupdate: liveupdate=fail",
				"selftests: liveupdate: liveupdate/liveupdate.open_device=pass",
				"selftests: liveupdate: liveupdate/liveupdate.create_session=pass",
				"selftests: liveupdate: liveupdate/liveupdate.preserve_memfd=fail",
				"selftests: liveupdate: luo_multi_session=fail",
				"selftests: liveupdate: luo_multi_session/create_sessions=pass",
				"selftests: liveupdate: luo_multi_session/preserve_all=pass",
				"selftests: liveupdate: luo_multi_session/#3=error(no result: plan said 4 tests, 2 reported (crashed or truncated?))",
				"selftests: liveupdate: luo_multi_session/#4=error(no result: plan said 4 tests, 2 reported (crashed or truncated?))",
				"selftests: liveupdate: luo_slow=error(45 seconds)",
				"selftests: liveupdate: luo_slow/first=pass",
				"selftests: liveupdate: luo_slow/#2=error(no result: plan said 2 tests, 1 reported (crashed or truncated?))",
			},
			problems: []string{
				"selftests: liveupdate: luo_multi_session: plan said 4 tests, 2 reported",
				"selftests: liveupdate: luo_slow: plan said 2 tests, 1 reported",
			},
		},
		{
			file: "kselftest_harness.ktap", version: "TAP version 13", plan: 5,
			tree: []string{
				"memfd.basic=pass",
				"memfd.seal_write=fail",
				"memfd.hugetlb=skip(no hugepages configured)",
				"luo.xfail_case=xfail(known broken on 6.x)",
				"luo.timeout_case=error(30 seconds)",
			},
		},
		{
			file: "kunit.ktap", version: "KTAP version 1", plan: 2,
			tree: []string{
				"memfd_luo=fail",
				"memfd_luo/memfd_luo_preserve_empty=pass",
				"memfd_luo/memfd_luo_preserve_sealed=fail",
				"memfd_luo/memfd_luo_preserve_hugetlb=skip(CONFIG_HUGETLBFS not set)",
				"luo_session=pass",
				"luo_session/luo_session_names=pass",
				"luo_session/luo_session_names/empty=pass",
				"luo_session/luo_session_names/max_length=pass",
				"luo_session/luo_session_finish=pass",
			},
		},
		{
			file: "ktap_spec.ktap", version: "KTAP version 1", plan: 1,
			tree: []string{
				"example_test=fail",
				"example_test/example_test_1=fail",
				"example_test/example_test_1/test_1=pass",
				"example_test/example_test_1/test_2=fail",
				"example_test/example_test_2=pass",
			},
		},
		{
			file: "console_noise.log", version: "KTAP version 1", plan: 2,
			tree: []string{
				"luo_smoke=pass",
				"luo_smoke/luo_open=pass",
				"luo_smoke/luo_close=pass",
				"luo_other=skip(not built)",
			},
			passed: true,
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Found() {
				t.Error("Found() = false")
			}
			if r.Version != tc.version || r.Plan != tc.plan {
				t.Errorf("version %q plan %d, want %q %d", r.Version, r.Plan, tc.version, tc.plan)
			}
			if got := tree(r.Results); !slices.Equal(got, tc.tree) {
				t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.tree, "\n"))
			}
			if !slices.Equal(r.Problems, tc.problems) {
				t.Errorf("problems %q, want %q", r.Problems, tc.problems)
			}
			if r.Passed() != tc.passed {
				t.Errorf("Passed() = %v, want %v", r.Passed(), tc.passed)
			}
		})
	}
}

func TestParseDetails(t *testing.T) {
	f, err := os.Open("testdata/kselftest_runner.ktap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	lu := r.Results[1]
	// The nested KTAP moved into Subtests; what stays is the runner's
	// own chatter and the nested trailer.
	want := []string{"timeout set to 45", "selftests: liveupdate: liveupdate", "FAILED: 2 / 3 tests passed."}
	if !slices.Equal(lu.Diagnostics, want) {
		t.Errorf("diagnostics %q, want %q", lu.Diagnostics, want)
	}
	if lu.Reason != "exit=1" || lu.Directive != "" {
		t.Errorf("directive %q reason %q, want \"\" \"exit=1\"", lu.Directive, lu.Reason)
	}
	fail := lu.Subtests[2]
	if !slices.Contains(fail.Diagnostics, "liveupdate_test.c:142:preserve_memfd:Expected 0 (0) == ret (-22)") {
		t.Errorf("failing subtest lost its diagnostics: %q", fail.Diagnostics)
	}
	if lu := r.Results[3]; lu.Directive != DirTimeout {
		t.Errorf("timeout directive = %q", lu.Directive)
	}

	f2, err := os.Open("testdata/kselftest_harness.ktap")
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	h, err := Parse(f2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Totals{Pass: 1, Fail: 1, XFail: 1, Skip: 1, Error: 1}); h.Totals == nil || *h.Totals != want {
		t.Errorf("totals %+v, want %+v", h.Totals, want)
	}
	if !slices.Equal(h.Diagnostics, []string{"FAILED: 1 / 5 tests passed."}) {
		t.Errorf("trailing diagnostics %q", h.Diagnostics)
	}
}

func TestParseEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		found    bool
		plan     int
		tree     []string
		problems []string
		passed   bool
		bailed   string
		skipAll  string
	}{
		{
			name: "empty", in: "", plan: -1,
		},
		{
			name: "not ktap", in: "hello\nok, fine\nnot okay\n", plan: -1,
		},
		{
			name: "no plan", in: "KTAP version 1\nok 1 a\nok 2 b\n", found: true, plan: -1,
			tree: []string{"a=pass", "b=pass"}, problems: []string{"no plan line"},
		},
		{
			name: "plan at the end", in: "TAP version 13\nok 1 a\nok 2 b\n1..2\n", found: true, plan: 2,
			tree: []string{"a=pass", "b=pass"}, passed: true,
		},
		{
			name: "skip everything", in: "TAP version 13\n1..0 # SKIP liveupdate not supported\n", found: true,
			plan: 0, passed: true, skipAll: "liveupdate not supported",
		},
		{
			name: "missing results", in: "KTAP version 1\n1..4\nok 1 a\nok 2 b\nnot ok 3 c\n", found: true, plan: 4,
			tree:     []string{"a=pass", "b=pass", "c=fail", "#4=error(no result: plan said 4 tests, 3 reported (crashed or truncated?))"},
			problems: []string{"plan said 4 tests, 3 reported"},
		},
		{
			name: "crash after the version line", in: "TAP version 13\n", found: true, plan: -1,
			tree:     []string{"#0=error(KTAP output has neither a plan nor results)"},
			problems: []string{"no plan line"},
		},
		{
			name: "more results than planned", in: "TAP version 13\n1..1\nok 1 a\nok 2 b\n", found: true, plan: 1,
			tree: []string{"a=pass", "b=pass"}, problems: []string{"plan said 1 tests, 2 reported"},
		},
		{
			name: "bail out", in: "TAP version 13\n1..3\nok 1 a\nBail out! no /dev/liveupdate\n# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0\n",
			found: true, plan: 3, bailed: "no /dev/liveupdate",
			tree: []string{"a=pass",
				"#2=error(not run: Bail out! no /dev/liveupdate)",
				"#3=error(not run: Bail out! no /dev/liveupdate)"},
			problems: []string{"plan said 3 tests, 1 reported"},
		},
		{
			name: "bail out without a plan", in: "TAP version 13\nok 1 a\nBail out!\n", found: true, plan: -1, bailed: "",
			tree: []string{"a=pass", "#0=error(Bail out!)"}, problems: []string{"no plan line"},
		},
		{
			name:  "bail out inside the runner's nesting",
			in:    "TAP version 13\n1..1\n# selftests: liveupdate: t\n# TAP version 13\n# 1..2\n# Bail out! no device\nnot ok 1 selftests: liveupdate: t # exit=1\n",
			found: true, plan: 1, bailed: "no device",
			tree: []string{"selftests: liveupdate: t=fail",
				"selftests: liveupdate: t/#1=error(not run: Bail out! no device)",
				"selftests: liveupdate: t/#2=error(not run: Bail out! no device)"},
			problems: []string{"selftests: liveupdate: t: plan said 2 tests, 0 reported"},
		},
		{
			name:  "subtest block cut off by a crash",
			in:    "KTAP version 1\n1..1\n  KTAP version 1\n  # Subtest: suite\n  1..2\n  ok 1 a\n",
			found: true, plan: 1,
			tree: []string{
				"suite=error(no result: plan said 1 tests, 0 reported (crashed or truncated?))",
				"suite/a=pass",
				"suite/#2=error(no result: plan said 2 tests, 1 reported (crashed or truncated?))"},
			problems: []string{"suite: plan said 2 tests, 1 reported", "plan said 1 tests, 0 reported"},
		},
		{
			name:  "two subtest blocks, one result line",
			in:    "KTAP version 1\n1..2\n  1..1\n  ok 1 a\n# between\n  1..1\n  ok 1 b\nok 1 y\nok 2 z\n",
			found: true, plan: 2,
			tree: []string{"subtests=error(subtest block has no result line)", "subtests/a=pass",
				"y=pass", "y/b=pass", "z=pass"},
		},
		{
			name: "result line variants",
			in: "TAP version 13\n1..8\nok 1 - dash name\nnot ok 2 x # TODO later\nok 3 y # skipped by config\n" +
				"not ok 4 z # exit=2\nok 5 test#1\nok 6\nnot ok 7 w # ERROR setup failed\nok 8 v # XPASS\n",
			found: true, plan: 8,
			tree: []string{"dash name=pass", "x=xfail(later)", "y=skip(by config)", "z=fail", "test#1=pass",
				"#6=pass", "w=error(setup failed)", "v=pass"},
		},
		{
			name: "CRLF and trailing blanks", in: "KTAP version 1\r\n1..1  \r\nok 1 a  \r\n", found: true, plan: 1,
			tree: []string{"a=pass"}, passed: true,
		},
		{
			name: "totals that disagree", in: "TAP version 13\n1..2\nok 1 a\nok 2 b\n# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0\n",
			found: true, plan: 2, tree: []string{"a=pass", "b=pass"},
			problems: []string{"totals say pass:1 fail:1 skip:0, results show pass:2 fail:0 skip:0"},
		},
		{
			// KUnit prints each suite's totals between its
			// subtests and its result line.
			name: "KUnit totals per suite",
			in: "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: s1\n    1..2\n    ok 1 a\n    ok 2 b\n" +
				"# s1: pass:2 fail:0 skip:0 total:2\n# Totals: pass:2 fail:0 skip:0 total:2\nok 1 s1\n" +
				"    KTAP version 1\n    # Subtest: s2\n    1..1\n    not ok 1 c\n" +
				"# Totals: pass:0 fail:1 skip:0 total:1\nnot ok 2 s2\n",
			found: true, plan: 2,
			tree: []string{"s1=pass", "s1/a=pass", "s1/b=pass", "s2=fail", "s2/c=fail"},
		},
		{
			name: "KUnit suite totals that disagree",
			in: "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s1\n    1..2\n    ok 1 a\n    ok 2 b\n" +
				"# Totals: pass:1 fail:1 skip:0 total:2\nok 1 s1\n",
			found: true, plan: 1, tree: []string{"s1=pass", "s1/a=pass", "s1/b=pass"},
			problems: []string{"s1: totals say pass:1 fail:1 skip:0, results show pass:2 fail:0 skip:0"},
		},
		{
			name: "numbers out of sequence", in: "TAP version 13\n1..2\nok 2 b\nok 1 a\n", found: true, plan: 2,
			tree:     []string{"b=pass", "a=pass"},
			problems: []string{"test number 2 at line 3, expected 1", "test number 1 at line 4, expected 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := parseString(t, tc.in)
			if r.Found() != tc.found {
				t.Errorf("Found() = %v, want %v", r.Found(), tc.found)
			}
			if r.Plan != tc.plan {
				t.Errorf("plan %d, want %d", r.Plan, tc.plan)
			}
			if got := tree(r.Results); !slices.Equal(got, tc.tree) {
				t.Errorf("tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.tree, "\n"))
			}
			if !slices.Equal(r.Problems, tc.problems) {
				t.Errorf("problems %q, want %q", r.Problems, tc.problems)
			}
			if tc.found && r.Passed() != tc.passed {
				t.Errorf("Passed() = %v, want %v", r.Passed(), tc.passed)
			}
			if wantBail := tc.bailed != "" || strings.Contains(tc.in, "Bail out!"); r.Bailed != wantBail || r.BailReason != tc.bailed {
				t.Errorf("bailed %v %q, want %v %q", r.Bailed, r.BailReason, wantBail, tc.bailed)
			}
			if r.SkipAll != (tc.skipAll != "") || r.SkipReason != tc.skipAll {
				t.Errorf("skip all %v %q, want %q", r.SkipAll, r.SkipReason, tc.skipAll)
			}
		})
	}
}

func TestFlatten(t *testing.T) {
	rs := []Result{
		{Name: "suite", Number: 1, Status: Fail, Subtests: []Result{
			{Name: "a", Number: 1, Status: Pass},
			{Name: "b", Number: 2, Status: Fail},
		}},
		// Failed, but every subtest passed: the parent itself is
		// listed so its failure is not lost.
		{Name: "crashy", Number: 2, Status: Error, Reason: "exit=139", Subtests: []Result{
			{Name: "a", Number: 1, Status: Pass},
		}},
		{Number: 3, Status: Skip},
	}
	var got []string
	for _, r := range Flatten(rs, "/") {
		got = append(got, r.Name+"="+string(r.Status))
	}
	want := []string{"suite/a=pass", "suite/b=fail", "crashy/a=pass", "crashy=error", "test-3=skip"}
	if !slices.Equal(got, want) {
		t.Errorf("Flatten = %q, want %q", got, want)
	}
}

func TestWrite(t *testing.T) {
	rs := []Result{
		{Name: "plain\x1b[0m", Status: Pass},
		{Name: "two\nlines # not a directive", Status: Fail, Reason: "mismatch at 0x200000",
			Diagnostics: []string{"first\nsecond", ""}},
		{Name: "skipped", Status: Skip, Reason: "no hugetlb"},
		{Name: "slow", Status: Error, Directive: DirTimeout, Reason: "after 30s"},
		{Name: "broken", Status: Error},
		{Name: "unset"},
		{Name: "known", Status: XFail, Reason: "bug 123"},
		{Name: "parent", Status: Pass, Subtests: []Result{
			{Name: "child", Status: Pass, Number: 7},
			{Name: "grand", Status: Fail, Subtests: []Result{{Name: "leaf", Status: Fail}}},
		}},
	}
	var b strings.Builder
	if err := Write(&b, "luotest.smoke", rs); err != nil {
		t.Fatal(err)
	}
	want := `KTAP version 1
# Subtest: luotest.smoke
1..8
ok 1 plain�[0m
# first
# second
#
# mismatch at 0x200000
not ok 2 two lines _ not a directive
ok 3 skipped # SKIP no hugetlb
not ok 4 slow # TIMEOUT after 30s
not ok 5 broken # ERROR
not ok 6 unset # ERROR no status
ok 7 known # XFAIL bug 123
  KTAP version 1
  # Subtest: parent
  1..2
  ok 1 child
    KTAP version 1
    # Subtest: grand
    1..1
    not ok 1 leaf
  not ok 2 grand
ok 8 parent
`
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), want)
	}
	// Writing does not modify the input.
	if len(rs[1].Diagnostics) != 2 {
		t.Errorf("Write changed the diagnostics: %q", rs[1].Diagnostics)
	}
	back := parseString(t, b.String())
	if back.Name != "luotest.smoke" || len(back.Problems) != 0 {
		t.Errorf("reparsed name %q problems %q", back.Name, back.Problems)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			first, err := Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := Write(&b, "suite", first.Results); err != nil {
				t.Fatal(err)
			}
			second := parseString(t, b.String())
			if len(second.Problems) != 0 {
				t.Errorf("written KTAP has problems %q:\n%s", second.Problems, b.String())
			}
			if second.Name != "suite" || second.Version != "KTAP version 1" {
				t.Errorf("name %q version %q", second.Name, second.Version)
			}
			if a, b := tree(first.Results), tree(second.Results); !reflect.DeepEqual(a, b) {
				t.Errorf("round trip changed the results:\n%s\nvs\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
			}
		})
	}
}

type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestWriteError(t *testing.T) {
	err := Write(failWriter{}, "s", []Result{{Name: "a", Status: Pass}})
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Write error = %v, want it to wrap %v", err, errDiskFull)
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errDiskFull }

func TestParseReadError(t *testing.T) {
	if _, err := Parse(failReader{}); !errors.Is(err, errDiskFull) {
		t.Errorf("Parse error = %v, want it to wrap %v", err, errDiskFull)
	}
}
