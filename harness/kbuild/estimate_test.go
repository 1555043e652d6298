package kbuild

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/objseed"
)

func TestEstimateStatus(t *testing.T) {
	const s = time.Second
	cold := estimate{kind: kindCold, steps: 1405}
	timed := estimate{kind: kindCold, steps: 1405, time: 600 * s}
	for _, tc := range []struct {
		name    string
		e       estimate
		elapsed time.Duration
		n       int
		want    string
	}{
		{"no estimate", estimate{kind: kindCold}, 40 * s, 61, "61 steps done"},
		{"incremental", estimate{kind: kindIncremental}, 40 * s, 61, "incremental, 61 steps so far"},
		{"resumed", estimate{kind: kindResumed}, 40 * s, 0, "resumed, 0 steps so far"},
		{"nothing done yet", cold, 3 * s, 0, "0/1405 steps (0%)"},
		// Below 5% of the steps, the pace says too little.
		{"too early for the pace", cold, 30 * s, 70, "70/1405 steps (4%)"},
		// 130 s for 612 steps: 793 more take 168 s.
		{"by the pace", cold, 130 * s, 612, "612/1405 steps (43%), about 2m50s left"},
		{"by the record alone", timed, 20 * s, 10, "10/1405 steps (0%), about 9m40s left"},
		// 43.6% of the pace's 168 s and 56.4% of the record's 470 s.
		{"pace and record blended", timed, 130 * s, 612, "612/1405 steps (43%), about 5m40s left"},
		{"record overrun, too early for the pace", timed, 700 * s, 20, "20/1405 steps (1%)"},
		{"record overrun, by the pace", timed, 900 * s, 1300, "1300/1405 steps (92%), about 1m10s left"},
		{"last step", cold, 600 * s, 1404, "1404/1405 steps (99%), a few seconds left"},
		{"never 100% before the end", cold, 600 * s, 1405, "1405/1405 steps (99%), a few seconds left"},
		{"estimate exceeded", timed, 700 * s, 1406, "1406 steps, estimate exceeded"},
		{"seeded", estimate{kind: kindSeeded, steps: 136}, 20 * s, 68, "68/136 steps (50%), about 20s left"},
		{"small", estimate{kind: kindCold, steps: 4}, 2 * s, 3, "3/4 steps (75%), a few seconds left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.e.status(tc.elapsed, tc.n); got != tc.want {
				t.Errorf("status(%s, %d) = %q, want %q", tc.elapsed, tc.n, got, tc.want)
			}
		})
	}
}

func TestEstimateFor(t *testing.T) {
	day := time.Date(2025, 11, 27, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	base, patched, debug, other := filepath.Join(dir, "base"), filepath.Join(dir, "patched"), filepath.Join(dir, "base-debug"), filepath.Join(dir, "other")
	for obj, recs := range map[string][]stepRecord{
		base: {
			{Kind: kindCold, Steps: 1405, CompileSeconds: 700, ConfigHash: "c1", SourceID: "debian:7.3", Flavour: "normal", Jobs: 8, Finished: day},
			{Kind: kindIncremental, Steps: 43, CompileSeconds: 30, ConfigHash: "c1", SourceID: "debian:7.3", Flavour: "normal", Jobs: 8, Finished: day.Add(time.Hour)},
		},
		patched: {
			{Kind: kindSeeded, Steps: 135, CompileSeconds: 112, ConfigHash: "c2", SourceID: "debian:7.3+series", Flavour: "normal", Jobs: 8, Planned: 76, Finished: day},
		},
		debug: {
			{Kind: kindCold, Steps: 2079, CompileSeconds: 1260, ConfigHash: "c3", SourceID: "debian:7.3", Flavour: "debug", Jobs: 8, Finished: day},
		},
		other: {
			{Kind: kindCold, Steps: 1300, CompileSeconds: 900, ConfigHash: "c2", SourceID: "tree:/src", Flavour: "normal", Jobs: 4, Finished: day.Add(2 * time.Hour)},
		},
	} {
		for _, r := range recs {
			if err := writeRecord(obj, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "broken"+stepsSuffix), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh")
	for _, tc := range []struct {
		name    string
		obj     string
		kind    buildKind
		planned int
		want    stepRecord // ConfigHash, Flavour, Jobs
		steps   int
		time    time.Duration
		basis   string
	}{
		{name: "cold, same config elsewhere", obj: fresh, kind: kindCold, want: stepRecord{ConfigHash: "c1", Flavour: "normal", Jobs: 8},
			steps: 1405, time: 700 * time.Second, basis: "the cold build of debian:7.3 in obj/base (-j8, same .config)"},
		{name: "cold, same config beats the latest", obj: fresh, kind: kindCold, want: stepRecord{ConfigHash: "c2", Flavour: "normal", Jobs: 8},
			steps: 1300, basis: "obj/other"},
		{name: "cold, other config: the latest", obj: fresh, kind: kindCold, want: stepRecord{ConfigHash: "c9", Flavour: "normal", Jobs: 4},
			steps: 1300, time: 900 * time.Second, basis: "other .config"},
		{name: "cold, other config: the same object directory first", obj: base, kind: kindCold, want: stepRecord{ConfigHash: "c9", Flavour: "normal", Jobs: 8},
			steps: 1405, time: 700 * time.Second, basis: "obj/base"},
		{name: "cold, other jobs: no time", obj: base, kind: kindCold, want: stepRecord{ConfigHash: "c1", Flavour: "normal", Jobs: 16},
			steps: 1405, basis: "obj/base"},
		{name: "cold, by flavour", obj: fresh, kind: kindCold, want: stepRecord{ConfigHash: "c1", Flavour: "debug", Jobs: 8},
			steps: 2079, time: 1260 * time.Second, basis: "obj/base-debug"},
		{name: "cold, flavour never built", obj: fresh, kind: kindCold, want: stepRecord{ConfigHash: "c1", Flavour: "kasan", Jobs: 8},
			basis: "none: no cold build of flavour kasan recorded yet"},
		// 10 planned plus the 59 the recorded seeded build did besides
		// its 76, in 112 s * 69/135.
		{name: "seeded", obj: base, kind: kindSeeded, planned: 10, want: stepRecord{ConfigHash: "c1", Flavour: "normal", Jobs: 8},
			steps: 69, time: 57244444444, basis: "10 targets seeding deleted + the 59 steps besides its 76 of the seeded build of debian:7.3+series in obj/patched (-j8, other .config)"},
		{name: "seeded, none recorded", obj: debug, kind: kindSeeded, planned: 10, want: stepRecord{ConfigHash: "c3", Flavour: "debug", Jobs: 8},
			steps: 10 + seededLinkSteps, basis: "no seeded build of flavour debug recorded yet"},
		{name: "incremental", obj: base, kind: kindIncremental, want: stepRecord{ConfigHash: "c1", Flavour: "normal", Jobs: 8},
			basis: "none: an incremental build"},
		{name: "resumed", obj: fresh, kind: kindResumed, want: stepRecord{ConfigHash: "c1", Flavour: "normal", Jobs: 8},
			basis: "none: the object directory holds an unfinished build"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			e := estimateFor(tc.obj, tc.kind, tc.planned, tc.want, &log)
			if e.kind != tc.kind || e.steps != tc.steps || e.time.Round(time.Millisecond) != tc.time.Round(time.Millisecond) {
				t.Errorf("estimate = %s %d steps in %s, want %s %d steps in %s", e.kind, e.steps, e.time, tc.kind, tc.steps, tc.time)
			}
			if !strings.Contains(e.basis, tc.basis) {
				t.Errorf("basis %q lacks %q", e.basis, tc.basis)
			}
			if tc.kind == kindCold && !strings.Contains(log.String(), "broken"+stepsSuffix) {
				t.Errorf("the unreadable record went unmentioned: %q", log.String())
			}
		})
	}
}

func TestWriteRecord(t *testing.T) {
	obj := filepath.Join(t.TempDir(), "obj")
	cold := stepRecord{Kind: kindCold, Steps: 1405, CompileSeconds: 700.5, ConfigHash: "c1", SourceID: "s", Flavour: "normal", Jobs: 8,
		Finished: time.Date(2025, 11, 27, 12, 0, 0, 0, time.UTC)}
	incr := cold
	incr.Kind, incr.Steps = kindIncremental, 43
	seeded := cold
	seeded.Kind, seeded.Steps, seeded.Planned = kindSeeded, 135, 76
	if err := os.WriteFile(stepsPath(obj), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		write stepRecord
		want  map[buildKind]stepRecord
	}{
		// An unreadable file is replaced.
		{cold, map[buildKind]stepRecord{kindCold: cold}},
		// An incremental build leaves the cold one's record be.
		{incr, map[buildKind]stepRecord{kindCold: cold, kindIncremental: incr}},
		{seeded, map[buildKind]stepRecord{kindCold: cold, kindIncremental: incr, kindSeeded: seeded}},
	} {
		if err := writeRecord(obj, step.write); err != nil {
			t.Fatal(err)
		}
		got, err := readRecords(stepsPath(obj))
		if err != nil || !reflect.DeepEqual(got, step.want) {
			t.Fatalf("after writing the %s record: %+v, %v; want %+v", step.write.Kind, got, err, step.want)
		}
	}
	if got, err := readRecords(filepath.Join(t.TempDir(), "none"+stepsSuffix)); got != nil || err != nil {
		t.Errorf("missing records: %v, %v; want none and no error", got, err)
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string // under the object directory; nil: it is missing
		want  buildKind
	}{
		{"missing", nil, kindCold},
		{"empty", []string{}, kindCold},
		{"configured only", []string{".config", "Makefile", "scripts/kconfig/conf.o", "scripts/basic/fixdep", "include/generated/autoconf.h"}, kindCold},
		{"make began", []string{".config", "scripts/kconfig/conf.o", "kernel/fork.o"}, kindResumed},
		{"linked", []string{".config", "kernel/fork.o", "vmlinux"}, kindIncremental},
		{"stamped", []string{".config", objseed.StampName}, kindIncremental},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := filepath.Join(t.TempDir(), "obj")
			if tc.files != nil {
				if err := os.Mkdir(obj, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tc.files {
				p := filepath.Join(obj, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := kindOf(obj); got != tc.want {
				t.Errorf("kindOf = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestBuildEstimate runs builds whose progress measures itself against an
// earlier one's steps.
func TestBuildEstimate(t *testing.T) {
	tickRE := regexp.MustCompile(`^kbuild \w+: compile \d+s, (.*), last: `)
	pctRE := regexp.MustCompile(`\((\d+)%\)`)
	for _, tc := range []struct {
		name string
		// prepare builds what the build under test is measured
		// against and returns its source and seed.
		prepare   func(t *testing.T, e env) (*kernelsrc.Source, *Seed)
		more      string // $FAKE_MORE of the build under test
		wantStart string // a progress line before make's ticks
		wantTick  string // a tick matches it
		wantKind  buildKind
		wantSteps int // recorded
	}{
		{name: "cold, nothing recorded", prepare: func(t *testing.T, e env) (*kernelsrc.Source, *Seed) { return e.src, nil },
			wantTick: `^\d steps done$`, wantKind: kindCold, wantSteps: 4},
		{name: "cold after another tree's", prepare: func(t *testing.T, e env) (*kernelsrc.Source, *Seed) {
			build(t, e, e.src)
			return other(e), nil
		}, wantStart: "cold build, expecting about 4 steps", wantTick: `^\d/4 steps \(\d+%\)`, wantKind: kindCold, wantSteps: 4},
		{name: "estimate exceeded", prepare: func(t *testing.T, e env) (*kernelsrc.Source, *Seed) {
			build(t, e, e.src)
			return other(e), nil
		}, more: "a/b c/d e/f", wantTick: `^[5-7] steps, estimate exceeded$`, wantKind: kindCold, wantSteps: 7},
		{name: "incremental", prepare: func(t *testing.T, e env) (*kernelsrc.Source, *Seed) {
			mutable := *e.src
			mutable.Mutable, mutable.ID = true, "tree:"+e.src.Dir
			build(t, e, &mutable)
			return &mutable, nil
		}, wantTick: `^incremental, \d steps so far$`, wantKind: kindIncremental, wantSteps: 4},
		{name: "resumed", prepare: func(t *testing.T, e env) (*kernelsrc.Source, *Seed) {
			build(t, e, e.src)
			obj := ObjDir(e.cache, other(e).ID, flavour.Normal)
			if err := os.MkdirAll(filepath.Join(obj, "init"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(obj, "init", "main.o"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			return other(e), nil
		}, wantTick: `^resumed, \d steps so far$`},
		// One target to rebuild and, with no seeded build recorded,
		// seededLinkSteps more.
		{name: "seeded", prepare: func(t *testing.T, e env) (*kernelsrc.Source, *Seed) {
			patched, seedObj := sibling(t, e)
			return patched, &Seed{SrcDir: e.src.Dir, ObjDir: seedObj}
		}, wantStart: "seeded build, expecting about " + strconv.Itoa(1+seededLinkSteps) + " steps",
			wantTick: `^\d/` + strconv.Itoa(1+seededLinkSteps) + ` steps \(\d+%\)`, wantKind: kindSeeded, wantSteps: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			src, seed := tc.prepare(t, e)
			t.Setenv("FAKE_SLEEP", "0.3")
			t.Setenv("FAKE_MORE", tc.more)
			var prog syncBuffer
			_, err := Build(context.Background(), Options{Source: src, Fragments: []string{e.frag}, CacheDir: e.cache, Name: "stock",
				Progress: &prog, Every: 200 * time.Millisecond, Seed: seed, Jobs: 2})
			if err != nil {
				t.Fatalf("Build: %v\nprogress:\n%s", err, prog.String())
			}
			out := prog.String()
			if tc.wantStart != "" && !strings.Contains(out, tc.wantStart) {
				t.Errorf("progress lacks %q:\n%s", tc.wantStart, out)
			}
			matched := false
			for _, l := range strings.Split(out, "\n") {
				m := tickRE.FindStringSubmatch(l)
				if m == nil {
					continue
				}
				if regexp.MustCompile(tc.wantTick).MatchString(m[1]) {
					matched = true
				}
				if p := pctRE.FindStringSubmatch(m[1]); p != nil {
					if n, _ := strconv.Atoi(p[1]); n > 99 {
						t.Errorf("%d%% before the build finished: %q", n, l)
					}
				}
			}
			if !matched {
				t.Errorf("no progress tick matches %q:\n%s", tc.wantTick, out)
			}
			obj := ObjDir(e.cache, src.ID, flavour.Normal)
			recs, err := readRecords(stepsPath(obj))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantKind == "" {
				if len(recs) != 0 {
					t.Errorf("a resumed build was recorded: %+v", recs)
				}
				return
			}
			r, ok := recs[tc.wantKind]
			if !ok || r.Steps != tc.wantSteps || r.CompileSeconds <= 0 || r.Jobs != 2 || r.SourceID != src.ID || r.Flavour != "normal" || r.ConfigHash == "" {
				t.Errorf("records %+v; want a %s one of %d steps", recs, tc.wantKind, tc.wantSteps)
			}
			if tc.wantKind == kindSeeded && r.Planned != 1 {
				t.Errorf("seeded record planned %d targets, want 1", r.Planned)
			}
		})
	}
}

// build builds src quickly in e's cache.
func build(t *testing.T, e env, src *kernelsrc.Source) {
	t.Helper()
	if _, err := Build(context.Background(), Options{Source: src, Fragments: []string{e.frag}, CacheDir: e.cache, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
}

// other is another tree like e.src, with an object directory of its own.
func other(e env) *kernelsrc.Source {
	o := *e.src
	o.ID += "+other"
	return &o
}
