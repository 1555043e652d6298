package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bench"
	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/compat"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/fleet"
	"github.com/memfd-luo/memfd-luo/harness/kernels"
	"github.com/memfd-luo/memfd-luo/harness/runner"
	"github.com/memfd-luo/memfd-luo/harness/scenario"
	"github.com/memfd-luo/memfd-luo/harness/selftests"
)

func TestSelectScenarios(t *testing.T) {
	cat := scenario.Catalogue{
		{Name: "a", Tags: []string{"default"}},
		{Name: "b", Tags: []string{"default", "large"}},
		{Name: "c", Tags: []string{"large"}},
		{Name: "d", Tags: []string{"default"}},
	}
	for _, tc := range []struct {
		name    string
		f       runFlags
		want    []string
		wantErr string
	}{
		{"default tag", runFlags{tag: "default"}, []string{"a", "b", "d"}, ""},
		{"another tag", runFlags{tag: "large"}, []string{"b", "c"}, ""},
		{"all", runFlags{tag: "all"}, []string{"a", "b", "c", "d"}, ""},
		{"-run names, in their order, whatever the tag", runFlags{tag: "large", only: "d, a"}, []string{"d", "a"}, ""},
		{"-run with an unknown name", runFlags{tag: "default", only: "a,zz"}, nil, "zz"},
		{"a tag nothing has", runFlags{tag: "nosuch"}, nil, "no scenario matches"},
		{"shard 1/2 of the sorted selection", runFlags{tag: "all", shard: "1/2"}, []string{"a", "c"}, ""},
		{"shard 2/2", runFlags{tag: "all", shard: "2/2"}, []string{"b", "d"}, ""},
		{"a shard past n", runFlags{tag: "all", shard: "3/2"}, nil, `-shard "3/2"`},
		{"a shard that is no i/n", runFlags{tag: "all", shard: "x"}, nil, `-shard "x"`},
		{"an empty shard", runFlags{tag: "large", shard: "3/3"}, nil, "no scenario matches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			todo, err := tc.f.selectScenarios(cat)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range todo {
				got = append(got, s.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("selected %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKernelSpec(t *testing.T) {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	for _, tc := range []struct {
		k    kernelFlags
		want kernels.Spec
	}{
		{kernelFlags{base: "patched"}, "patched"},
		{kernelFlags{base: "stock"}, "stock"},
		{kernelFlags{base: "stock", tree: "src/linux"}, kernels.Spec("tree:" + abs("src/linux"))},
		{kernelFlags{base: "stock", tree: "src/linux", kernel: "/b/bzImage"}, "bzimage:/b/bzImage"},
	} {
		if got := tc.k.spec(); got != tc.want {
			t.Errorf("%+v: spec %q, want %q", tc.k, got, tc.want)
		}
	}
}

func TestCheckPrediction(t *testing.T) {
	keeps := compat.Prediction{KeepsSessions: true}
	loses := compat.Prediction{Losses: []compat.Loss{{What: "every session", Errno: "EIO"}}}
	for _, tc := range []struct {
		name     string
		pred     compat.Prediction
		code     int
		want     int
		disagree bool
	}{
		{"kept as predicted", keeps, 0, 0, false},
		{"predicted kept, a scenario failed", keeps, 1, 1, true},
		{"predicted kept, a timeout", keeps, 124, 124, true},
		{"predicted lost and lost", loses, 1, 1, false},
		{"predicted lost, everything passed: the prediction is wrong", loses, 0, 1, true},
		{"everything skipped says nothing", loses, 4, 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if got := checkPrediction(&b, tc.pred, tc.code, "/runs/x"); got != tc.want {
				t.Errorf("exit %d, want %d", got, tc.want)
			}
			if !strings.HasPrefix(b.String(), "prediction (luotest compat): "+tc.pred.Summary()+"; outcome: ") {
				t.Errorf("output %q", b.String())
			}
			if got := strings.Contains(b.String(), "disagree: see /runs/x"); got != tc.disagree {
				t.Errorf("disagreement said %v, want %v: %q", got, tc.disagree, b.String())
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	if got, err := repoRoot("some/dir"); err != nil || !filepath.IsAbs(got) || !strings.HasSuffix(got, "some/dir") {
		t.Errorf("repoRoot(flag) = %q, %v", got, err)
	}
	// The test runs in harness/cmd/luotest of the checkout.
	got, err := repoRoot("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(got, "kernel", "BASE")); err != nil {
		t.Errorf("repoRoot() = %s: %v", got, err)
	}
	t.Chdir(t.TempDir())
	if _, err := repoRoot(""); err == nil || !strings.Contains(err.Error(), "use -repo") {
		t.Errorf("outside a checkout: err %v, want one saying -repo", err)
	}
	if got := rerunBinary("/nonexistent"); got != "go run ./harness/cmd/luotest" && !filepath.IsAbs(got) {
		t.Errorf("rerunBinary = %q", got)
	}
}

func TestCmdList(t *testing.T) {
	out := captureStdout(t, func() {
		if code := cmdList(); code != 0 {
			t.Errorf("exit %d", code)
		}
	})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(scenario.Default())+1 {
		t.Errorf("%d lines for %d scenarios and the selftests:\n%s", len(lines), len(scenario.Default()), out)
	}
	if !strings.Contains(out, "\nbasic-64m ") && !strings.HasPrefix(out, "basic-64m ") {
		t.Errorf("no line for basic-64m:\n%s", out)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, selftests.ScenarioPrefix+"* ") {
		t.Errorf("last line %q: want the selftests", last)
	}
}

// Usage mistakes of bench exit 2 before any kernel is prepared.
func TestBenchUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-reps", "0"}, "-reps must be at least 1"},
		{[]string{"-min-size", "lots"}, "-min-size"},
		{[]string{"-max-size", "lots"}, "-max-size"},
		{[]string{"-min-size", "1G", "-max-size", "64M"}, "no size between"},
		{[]string{"-backings", "floppy"}, "-backings"},
		{[]string{"-kernels", "nosuch"}, "-kernels"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-compare", "/nonexistent/old.json"}, "/nonexistent/old.json"},
		{[]string{"-render", "/nonexistent/b.json"}, "/nonexistent/b.json"},
		{[]string{"-compare", "/nonexistent/a.json", "/nonexistent/b.json"}, "/nonexistent/a.json"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := captureStderr(t, func() {
				if code := cmdBench(ctx, tc.args); code != 2 {
					t.Errorf("exit %d, want 2", code)
				}
			})
			if !strings.Contains(out, tc.want) {
				t.Errorf("stderr %q does not name %q", out, tc.want)
			}
		})
	}
}

// -render and -compare OLD NEW run nothing: they read bench JSON.
func TestBenchRenderAndCompare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteJSON(f, &bench.Doc{Schema: bench.Schema, Metrics: bench.Metrics()}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := captureStdout(t, func() {
		if code := cmdBench(context.Background(), []string{"-render", path, "-out", filepath.Join(dir, "docs")}); code != 0 {
			t.Errorf("render: exit %d", code)
		}
		if code := cmdBench(context.Background(), []string{"-compare", path, path}); code != 0 {
			t.Errorf("compare: exit %d", code)
		}
	})
	if _, err := os.Stat(filepath.Join(dir, "docs", "benchmarks.md")); err != nil {
		t.Errorf("render -out: %v", err)
	}
	if out == "" {
		t.Error("render and compare printed nothing")
	}
}

// captureStdout runs f with os.Stdout redirected to a pipe.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stdout = old }()
	f()
	w.Close()
	os.Stdout = old
	return <-done
}

// A prebuilt kernel needs no build: build prints its path, and compat
// reads it (a file that is no kernel image is a setup error).
func TestPrebuiltKernel(t *testing.T) {
	img := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(img, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := captureStdout(t, func() {
		if code := cmdBuild(context.Background(), []string{"-kernel", img}); code != 0 {
			t.Errorf("build: exit %d", code)
		}
	})
	if out != img+"\n" {
		t.Errorf("build printed %q, want %q", out, img+"\n")
	}
	for _, tc := range []struct {
		name string
		cmd  func(context.Context, []string) int
		args []string
		want string
	}{
		{"build with a debug prebuilt kernel", cmdBuild, []string{"-kernel", img, "-flavour", "debug"}, "the debug flavour is a build configuration"},
		{"build with a missing kernel", cmdBuild, []string{"-kernel", img + ".missing"}, "prebuilt kernel"},
		{"compat of a file that is no kernel", cmdCompat, []string{img, img}, "luotest compat: kernel "},
		{"run with -from alone", cmdRun, []string{"-from", "stock"}, "-from and -to go together"},
		{"run with a debug prebuilt kernel", cmdRun, []string{"-kernel", img, "-flavour", "debug"}, "preparing the kernel"},
		{"run from a missing kernel", cmdRun, []string{"-from", "bzimage:" + img + ".missing", "-to", "stock"}, "preparing kernel bzimage:"},
		{"series check on a missing tree", cmdSeriesCheck, []string{"-tree", "/nonexistent/linux"}, "base tree"},
		{"series check with an argument", cmdSeriesCheck, []string{"x"}, `unexpected argument "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MEMFD_LUO_CACHE", t.TempDir())
			errOut := captureStderr(t, func() {
				if code := tc.cmd(context.Background(), tc.args); code != 2 {
					t.Errorf("exit %d, want 2", code)
				}
			})
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
		})
	}
}

// A setup failure before any VM (here: the artefact directory cannot be
// made) exits 2 naming it.
func TestSetupErrorsExit2(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	img := filepath.Join(t.TempDir(), "bzImage")
	for _, p := range []string{notDir, img} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		cmd  func(context.Context, []string) int
		args []string
		want string
	}{
		{"matrix", cmdMatrix, []string{"-repo", notDir, "-cells", "stock->stock"}, "luotest matrix: mkdir "},
		{"measure", cmdMeasure, []string{"-repo", notDir}, "luotest measure: mkdir "},
		{"run", cmdRun, []string{"-repo", notDir, "-kernel", img}, "luotest run: mkdir "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("MEMFD_LUO_CACHE", t.TempDir())
			errOut := captureStderr(t, func() {
				if code := tc.cmd(context.Background(), tc.args); code != 2 {
					t.Errorf("exit %d, want 2", code)
				}
			})
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not say %q", errOut, tc.want)
			}
		})
	}
}

func TestEnvPieces(t *testing.T) {
	if got := runDir("/repo", "/elsewhere"); got != "/elsewhere" {
		t.Errorf("runDir with -out = %s", got)
	}
	if got := runDir("/repo", ""); !strings.HasPrefix(got, "/repo/out/runs/") {
		t.Errorf("runDir = %s, want under /repo/out/runs", got)
	}
	f := runFlags{timeout: time.Minute, silence: time.Second, solo: true, parallel: 3, mem: 4096, verbose: true}
	fl := f.fleet()
	if fl.Timeout != time.Minute || fl.Silence != time.Second || !fl.Solo || fl.Limits.Slots != 3 || fl.Limits.MemoryMB != 4096 || fl.Echo == nil || fl.Log == nil {
		t.Errorf("fleet %+v does not carry the flags", fl)
	}
	f.verbose = false
	if f.fleet().Echo != nil {
		t.Error("the console is echoed without -v")
	}

	dir := t.TempDir()
	e := &env{Fleet: &fleet.Fleet{Accel: "tcg", AccelWhy: "no KVM"}, flavour: flavour.Debug}
	e.writeReports(dir, "stock->patched", time.Now(), []bootable.Kernel{{Name: "stock"}}, []*runner.Outcome{{Scenario: "a", Verdict: runner.Pass}})
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"suite": "debug.stock->patched"`, `"accel": "tcg (no KVM)"`, `"flavour": "debug"`} {
		if !strings.Contains(strings.ReplaceAll(string(b), `\u003e`, ">"), want) {
			t.Errorf("results.json lacks %s:\n%s", want, b)
		}
	}
}
