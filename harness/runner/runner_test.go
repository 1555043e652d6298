package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/vm"
)

func TestCmdlineFor(t *testing.T) {
	base := BaseCmdline + " extra=1"
	for _, tc := range []struct {
		name string
		k    bootable.Kernel
		want string
	}{
		{"normal", bootable.Kernel{Name: "patched"}, base},
		{"normal with args", bootable.Kernel{Name: "patched", Cmdline: "memfd_luo.abi=v2"}, base + " memfd_luo.abi=v2"},
		{"debug", bootable.Kernel{Name: "patched", Flavour: flavour.Debug}, base + " panic_on_warn=1 acpi=noirq no5lvl kunit.autorun=0"},
		{"debug with args", bootable.Kernel{Name: "stock", Flavour: flavour.Debug, Cmdline: "  a=b  "}, base + " panic_on_warn=1 acpi=noirq no5lvl kunit.autorun=0 a=b"},
	} {
		if got := cmdlineFor(base, tc.k); got != tc.want {
			t.Errorf("%s: cmdlineFor = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUnmet(t *testing.T) {
	ku := &scenario.Scenario{Name: "kunit", KUnit: true}
	plain := &scenario.Scenario{Name: "basic"}
	withKUnit := writeConfig(t, "CONFIG_KUNIT=y\nCONFIG_KASAN=y\n")
	without := writeConfig(t, "# CONFIG_KUNIT is not set\n")
	hook := &scenario.Scenario{Name: "corrupt", NeedsConfig: []string{"CONFIG_MEMFD_LUO_TEST_HOOK"}}
	withHook := writeConfig(t, "CONFIG_MEMFD_LUO_TEST_HOOK=y\n")
	one := &scenario.Scenario{Name: "chain", OneKernel: true}
	unbuilt := &scenario.Scenario{Name: "selftest-x", Skip: "cannot be built: undefined reference"}
	for _, tc := range []struct {
		name string
		s    *scenario.Scenario
		k    []bootable.Kernel
		want string
	}{
		{"plain scenario", plain, []bootable.Kernel{{Config: without}}, ""},
		{"kunit on a KUnit kernel", ku, []bootable.Kernel{{Config: withKUnit}}, ""},
		{"kunit on a kernel without it", ku, []bootable.Kernel{{Config: without}}, "kernel built without CONFIG_KUNIT"},
		{"the first kernel decides", ku, []bootable.Kernel{{Config: without}, {Config: withKUnit}}, "kernel built without CONFIG_KUNIT"},
		{"prebuilt", ku, []bootable.Kernel{{BzImage: "/x/bzImage"}}, "prebuilt kernel"},
		{"unreadable config", ku, []bootable.Kernel{{Config: "/nonexistent/config"}}, "cannot tell"},
		{"hook on a hook kernel", hook, []bootable.Kernel{{Config: withHook}, {Config: withHook}}, ""},
		{"the second kernel may lack the hook", hook, []bootable.Kernel{{Config: withHook}, {Config: withKUnit}}, ""},
		{"the first kernel must have it", hook, []bootable.Kernel{{Config: withKUnit}, {Config: withHook}}, "kernel built without CONFIG_MEMFD_LUO_TEST_HOOK"},
		{"hook on a kernel without it", hook, []bootable.Kernel{{Config: without}}, "kernel built without CONFIG_MEMFD_LUO_TEST_HOOK"},
		{"one kernel at every hop", one, []bootable.Kernel{{Name: "patched", BzImage: "/a"}, {Name: "patched", BzImage: "/a"}}, ""},
		{"one kernel, two images", one, []bootable.Kernel{{Name: "patched", BzImage: "/a"}, {Name: "stock", BzImage: "/b"}}, "needs the same kernel at every hop (patched, then stock)"},
		{"one kernel, two command lines", one, []bootable.Kernel{{Name: "patched", BzImage: "/a"}, {Name: "patched", BzImage: "/a", Cmdline: "memfd_luo.abi=v3"}}, "needs the same kernel"},
		{"one kernel, single boot", one, []bootable.Kernel{{Name: "patched", BzImage: "/a"}}, ""},
		{"a scenario that cannot be built", unbuilt, []bootable.Kernel{{Config: withKUnit}}, "cannot be built: undefined reference"},
		{"a scenario that cannot be built, no kernel", unbuilt, nil, "cannot be built"},
	} {
		got := Unmet(tc.s, tc.k)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: Unmet = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// RunGroup skips what the kernel cannot run without booting anything.
func TestRunGroupSkipsUnmet(t *testing.T) {
	ku := &scenario.Scenario{Name: "kunit", KUnit: true}
	cfg := writeConfig(t, "# CONFIG_KUNIT is not set\n")
	outs := RunGroup(t.Context(), []*scenario.Scenario{ku}, Options{
		Kernels: []bootable.Kernel{{Name: "patched", Config: cfg, Flavour: flavour.Debug}},
		Dir:     filepath.Join(t.TempDir(), "run"), Rerun: "luotest run -flavour debug -run %s",
	})
	if len(outs) != 1 {
		t.Fatalf("%d outcomes", len(outs))
	}
	o := outs[0]
	if o.Verdict != Skip || o.Reason != "kernel built without CONFIG_KUNIT" || o.Flavour != flavour.Debug || o.Rerun != "luotest run -flavour debug -run kunit" {
		t.Errorf("outcome %+v, want SKIP: kernel built without CONFIG_KUNIT", o)
	}
}

func TestJudgeKUnit(t *testing.T) {
	const boot = "[host 0.1] [    0.000000] Linux version 7.3.4\n"
	const suite = "[host 1.0] [    1.0] KTAP version 1\n[host 1.0] [    1.0] 1..1\n" +
		"[host 1.0] [    1.0]     KTAP version 1\n[host 1.0] [    1.0]     # Subtest: memfd_luo_records\n[host 1.0] [    1.0]     1..2\n" +
		"[host 1.0] [    1.0]     ok 1 roundtrip\n"
	const end = "[host 1.2] [    1.2] Run /init as init process\nLUOTEST: stage 0 step 0 meminfo: ok\n"
	for _, tc := range []struct {
		name       string
		log        string
		verdict    Verdict
		want       Verdict
		wantReason string
		wantKUnit  bool
	}{
		{"all pass", boot + suite + "[host 1.1] [    1.1]     ok 2 decode\n[host 1.1] [    1.1] ok 1 memfd_luo_records\n" + end,
			Pass, Pass, "", true},
		{"a case fails", boot + suite + "[host 1.1] [    1.1]     # decode: EXPECTATION FAILED at mm/memfd_luo_test.c:9\n" +
			"[host 1.1] [    1.1]     not ok 2 decode\n[host 1.1] [    1.1] not ok 1 memfd_luo_records\n" + end,
			Pass, Fail, "KUnit case memfd_luo_records/decode failed: EXPECTATION FAILED at mm/memfd_luo_test.c:9", true},
		{"no KUnit output", boot + end, Pass, Fail, "no KUnit output", false},
		{"disabled", boot + "[host 1.0] [    1.0] kunit: disabled\n" + end, Pass, Fail, "kunit: disabled", false},
		{"a kernel report explains it better", boot + suite, Fail, Fail, "kernel kasan", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "console.log")
			if err := os.WriteFile(logPath, []byte(tc.log), 0o644); err != nil {
				t.Fatal(err)
			}
			out := &Outcome{Verdict: tc.verdict}
			if tc.verdict == Fail {
				out.Blame, out.Reason = "kernel", "kernel kasan: BUG: KASAN: ..."
			}
			judgeKUnit(out, &vm.Result{ConsoleLog: logPath})
			if out.Verdict != tc.want || !strings.Contains(out.Reason, tc.wantReason) {
				t.Errorf("%s %q, want %s %q", out.Verdict, out.Reason, tc.want, tc.wantReason)
			}
			if (out.KUnit != nil) != tc.wantKUnit {
				t.Errorf("KUnit report attached: %v, want %v", out.KUnit != nil, tc.wantKUnit)
			}
			if tc.want == Fail && out.Blame != "kernel" {
				t.Errorf("blame %q, want kernel", out.Blame)
			}
		})
	}
}

// swap-zram needs swap and zram in the kernel that preserves: elsewhere it
// is skipped, naming what is missing.
func TestUnmetSwapScenario(t *testing.T) {
	s, err := scenario.Default().Find("swap-zram")
	if err != nil {
		t.Fatal(err)
	}
	both := writeConfig(t, "CONFIG_SWAP=y\nCONFIG_ZRAM=y\n")
	swapOnly := writeConfig(t, "CONFIG_SWAP=y\n# CONFIG_ZRAM is not set\n")
	neither := writeConfig(t, "# CONFIG_SWAP is not set\n")
	for _, tc := range []struct {
		name string
		k    []bootable.Kernel
		want string
	}{
		{"swap and zram", []bootable.Kernel{{Config: both}}, ""},
		{"no zram", []bootable.Kernel{{Config: swapOnly}}, "kernel built without CONFIG_ZRAM"},
		{"no swap", []bootable.Kernel{{Config: neither}}, "kernel built without CONFIG_SWAP"},
	} {
		got := Unmet(s, tc.k)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: Unmet = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The debug flavour sizes KHO's boot memory with the kernel's own
// spelling of the parameter: kho_scratch= up to 7.3, kho_bootmem= from 7.4.
func TestFirstBootCmdlineSpelling(t *testing.T) {
	src74 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src74, "kernel", "liveupdate"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src74, "kernel", "liveupdate", "kexec_handover.c"), []byte("early_param(\"kho_bootmem\", kho_parse_bootmem);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		k    bootable.Kernel
		want string
	}{
		{bootable.Kernel{Flavour: flavour.Debug}, "kho_scratch=288M,8M,32M"},
		{bootable.Kernel{Flavour: flavour.Debug, SrcDir: src74}, "kho_bootmem=288M,8M,32M"},
		{bootable.Kernel{SrcDir: src74}, ""},
	} {
		if got := firstBootCmdline(tc.k, 1024); got != tc.want {
			t.Errorf("firstBootCmdline(%+v) = %q, want %q", tc.k, got, tc.want)
		}
	}
}
