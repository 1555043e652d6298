package kunit

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/ktap"
)

// cases lists a report's leaves as "path=status".
func cases(rep *ktap.Report) []string {
	var out []string
	for _, r := range ktap.Flatten(rep.Results, "/") {
		out = append(out, r.Name+"="+string(r.Status))
	}
	return out
}

func TestFromConsoleCapturedLog(t *testing.T) {
	f, err := os.Open("testdata/debug-boot.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := FromConsole(f)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Report.Found() || c.FirstLine != 6 || c.Disabled {
		t.Fatalf("Found=%v FirstLine=%d Disabled=%v, want KTAP from line 6", c.Report.Found(), c.FirstLine, c.Disabled)
	}
	want := []string{
		"memfd_luo_records/records_roundtrip_dense=pass",
		"memfd_luo_records/records_roundtrip_sparse=pass",
		"memfd_luo_records/records_reject_overlap=fail",
		"memfd_luo_records/records_sizes/4K=pass",
		"memfd_luo_records/records_sizes/2M=pass",
		"memfd_luo_records/records_sizes/1G=skip",
		"memfd_luo_policy/policy_default_v3=pass",
		"memfd_luo_policy/policy_parse=pass",
	}
	if got := cases(c.Report); !slices.Equal(got, want) {
		t.Errorf("cases:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(c.Report.Problems) > 0 {
		t.Errorf("problems %q, want none (per-suite totals agree)", c.Report.Problems)
	}
	got := Failure(c.Report)
	wantFail := "KUnit case memfd_luo_records/records_reject_overlap failed: EXPECTATION FAILED at mm/memfd_luo_test.c:142"
	if got != wantFail {
		t.Errorf("Failure = %q\nwant      %q", got, wantFail)
	}
}

func TestFromConsole(t *testing.T) {
	for _, tc := range []struct {
		name         string
		log          string
		found        bool
		disabled     bool
		cases        []string
		failureLike  string // "" means Failure must be ""
		wantProblems bool
	}{
		{
			name: "raw serial output, caller ids",
			log: "[    0.000000] Linux version 7.3.4\n" +
				"[    1.000000][    T1] KTAP version 1\n[    1.000001][    T1] 1..1\n" +
				"[    1.000002][    T1]     KTAP version 1\n[    1.000003][    T1]     # Subtest: s\n[    1.000004][    T1]     1..2\n" +
				"[    1.000005][    T1]     ok 1 a\n[    1.100000][   C1] clocksource: tsc: mask: 0xffffffffffffffff\n" +
				"[    1.000006][    T1]     ok 2 b\n[    1.000007][    T1] # Totals: pass:2 fail:0 skip:0 total:2\n[    1.000008][    T1] ok 1 s\n" +
				"[    1.200000][    T1] Run /init as init process\n",
			found: true, cases: []string{"s/a=pass", "s/b=pass"},
		},
		{
			name:  "no suites built in",
			log:   "[    0.0] Linux version 7.3.4\n[    1.0] KTAP version 1\n[    1.0] 1..0\n[    1.2] Run /init as init process\n",
			found: true,
		},
		{
			name:  "no KUnit at all",
			log:   "[    0.0] Linux version 7.3.4\n[    1.2] Run /init as init process\nLUOTEST: stage 0\n",
			found: false,
		},
		{
			name:     "disabled",
			log:      "[    0.0] Linux version 7.3.4\n[    1.0] kunit: disabled\n[    1.2] Run /init as init process\n",
			disabled: true,
		},
		{
			// A crash in the middle of a suite: the cases the plan
			// announced and nobody reported are errors.
			name: "cut off by a crash",
			log: "[    1.0] KTAP version 1\n[    1.0] 1..1\n[    1.0]     KTAP version 1\n[    1.0]     # Subtest: s\n[    1.0]     1..3\n" +
				"[    1.1]     ok 1 a\n[    1.2] BUG: KASAN: slab-out-of-bounds in memfd_luo_test_b+0x1/0x2\n[    1.3] Kernel panic - not syncing: KASAN: panic_on_warn set ...\n",
			found: true, cases: []string{"s/a=pass", "s/test-2=error", "s/test-3=error"},
			failureLike: "KUnit case s/test-2 failed: no result: plan said 3 tests, 1 reported (crashed or truncated?) (and 1 more)", wantProblems: true,
		},
		{
			name: "the agent's lines end the document",
			log: "[    1.0] KTAP version 1\n[    1.0] 1..1\n[    1.0]     KTAP version 1\n[    1.0]     # Subtest: s\n[    1.0]     1..1\n" +
				"[    1.1]     ok 1 a\n[    1.1] ok 1 s\nLUOTEST: ok 2 not-kunit\n",
			found: true, cases: []string{"s/a=pass"},
		},
		{
			name: "indented lines before the executor's are not the start",
			log: "[    0.9]     KTAP version 1\n[    1.0] KTAP version 1\n[    1.0] 1..1\n[    1.0]     KTAP version 1\n" +
				"[    1.0]     # Subtest: s\n[    1.0]     1..1\n[    1.1]     not ok 1 a\n[    1.1] not ok 1 s\n",
			found: true, cases: []string{"s/a=fail"}, failureLike: "KUnit case s/a failed",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromConsole(strings.NewReader(tc.log))
			if err != nil {
				t.Fatal(err)
			}
			if c.Report.Found() != tc.found || c.Disabled != tc.disabled {
				t.Fatalf("Found=%v Disabled=%v, want %v %v", c.Report.Found(), c.Disabled, tc.found, tc.disabled)
			}
			if got := cases(c.Report); !slices.Equal(got, tc.cases) {
				t.Errorf("cases %q, want %q", got, tc.cases)
			}
			got := Failure(c.Report)
			if tc.failureLike == "" && got != "" || tc.failureLike != "" && !strings.Contains(got, tc.failureLike) {
				t.Errorf("Failure = %q, want %q", got, tc.failureLike)
			}
			if (len(c.Report.Problems) > 0) != tc.wantProblems {
				t.Errorf("problems %q, want some: %v", c.Report.Problems, tc.wantProblems)
			}
		})
	}
}
