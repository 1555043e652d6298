package kbuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/objseed"
)

// A compile's progress lines say how far along it is and how long it has
// left, measured against the steps of an earlier compile: every successful
// one leaves a record next to its object directory,
//
//	obj/<key>[-<flavour>].steps.json
//
// holding the latest record of each kind of build (an incremental rebuild
// does far fewer steps than a cold one, so it must not overwrite the cold
// one's). Build picks the record that best fits the compile it is about to
// run (estimateFor).

// buildKind says what make has to do in an object directory, judged from
// the directory before it runs.
type buildKind string

const (
	// kindCold is an empty or only configured object directory:
	// every target.
	kindCold buildKind = "cold"
	// kindSeeded is a directory seeded from a sibling's (objseed): the
	// targets seeding deleted, the archives above them and the link.
	kindSeeded buildKind = "seeded"
	// kindIncremental is a directory holding a finished build: whatever
	// changed since, from nothing to everything; no estimate.
	kindIncremental buildKind = "incremental"
	// kindResumed is a directory holding an unfinished build: the rest
	// of it, of an unknown size; no estimate, and no record.
	kindResumed buildKind = "resumed"
)

// kindOf judges the object directory obj before make runs in it. Its
// configuration alone (kconfig.ConfigureTree leaves .config and the
// kconfig programs under scripts/) still makes a cold build; an object
// file elsewhere is a build make began.
func kindOf(obj string) buildKind {
	if !objseed.Fresh(obj) {
		return kindIncremental
	}
	began := false
	filepath.WalkDir(obj, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil // unreadable: judged on the rest
		case d.IsDir() && filepath.Dir(p) == obj && (d.Name() == "scripts" || d.Name() == "include"):
			return fs.SkipDir
		case d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".o"):
			began = true
			return fs.SkipAll
		}
		return nil
	})
	if began {
		return kindResumed
	}
	return kindCold
}

// seededLinkSteps is what a seeded build does besides rebuilding the
// targets seeding deleted, until a seeded build of the flavour is
// recorded: the archives above them, vmlinux and bzImage. Measured on a
// 7.3 tree, 76 deleted targets made a compile of 135 steps.
const seededLinkSteps = 60

// stepsSuffix follows an object directory's path to name its records.
const stepsSuffix = ".steps.json"

// stepsPath is where the records of the object directory obj are kept.
func stepsPath(obj string) string { return obj + stepsSuffix }

// stepRecord is one successful compile, as the estimates of later ones
// use it.
type stepRecord struct {
	Kind           buildKind `json:"kind"`
	Steps          int       `json:"steps"`           // kbuild step lines make printed
	CompileSeconds float64   `json:"compile_seconds"` // how long make ran
	ConfigHash     string    `json:"config_hash"`     // cache.Key of the final .config
	SourceID       string    `json:"source_id"`       // kernelsrc.Source.ID
	Flavour        string    `json:"flavour"`
	Jobs           int       `json:"jobs"` // make -j
	// Planned is, for a seeded build, how many targets seeding deleted
	// (objseed.Result.Invalidated and .Removed).
	Planned  int       `json:"planned,omitempty"`
	Finished time.Time `json:"finished"`
}

func (r stepRecord) compileTime() time.Duration {
	return time.Duration(r.CompileSeconds * float64(time.Second))
}

// readRecords reads the records kept at path (stepsPath), by kind; a
// missing file holds none.
func readRecords(path string) (map[buildKind]stepRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the step records: %w", err)
	}
	var recs map[buildKind]stepRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("decoding the step records %s: %w", path, err)
	}
	return recs, nil
}

// writeRecord keeps r as the latest record of its kind for the object
// directory obj, whose lock the caller holds. Records of other kinds stay;
// an unreadable file is replaced.
func writeRecord(obj string, r stepRecord) error {
	path := stepsPath(obj)
	recs, err := readRecords(path)
	if err != nil || recs == nil {
		recs = map[buildKind]stepRecord{}
	}
	recs[r.Kind] = r
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the step records of %s: %w", obj, err)
	}
	if err := cache.WriteFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("keeping the step record of %s: %w", obj, err)
	}
	return nil
}

// estimate is what a compile is expected to take.
type estimate struct {
	kind  buildKind
	steps int           // expected steps; 0 when unknown
	time  time.Duration // expected duration; 0 when unknown
	basis string        // where steps and time come from, for the log
}

// estimateFor estimates the compile of kind in the object directory obj
// from the records of every object directory next to it. want describes
// the compile: its ConfigHash, Flavour and Jobs. planned is, for a seeded
// build, how many targets seeding deleted. Unreadable records are skipped
// with a note to log.
//
// A cold build is expected to do what the best fitting cold build of the
// flavour did: preferably of the same .config, then in the same object
// directory, then the latest. A seeded one the planned targets plus what
// the best fitting seeded build did besides its own planned ones. The
// expected time comes from the same record, when it ran with as many jobs.
func estimateFor(obj string, kind buildKind, planned int, want stepRecord, log io.Writer) estimate {
	e := estimate{kind: kind}
	switch kind {
	case kindIncremental:
		e.basis = "none: an incremental build does what changed since the last one"
		return e
	case kindResumed:
		e.basis = "none: the object directory holds an unfinished build"
		return e
	}
	paths, err := filepath.Glob(filepath.Join(filepath.Dir(obj), "*"+stepsSuffix))
	if err != nil {
		fmt.Fprintf(log, "# no step records: %v\n", err)
	}
	var best stepRecord
	bestScore, bestFrom := -1, ""
	for _, p := range paths {
		recs, err := readRecords(p)
		if err != nil {
			fmt.Fprintf(log, "# ignoring step records: %v\n", err)
			continue
		}
		r, ok := recs[kind]
		if !ok || r.Flavour != want.Flavour || r.Steps <= 0 || r.Planned > r.Steps {
			continue
		}
		score := 0
		if r.ConfigHash == want.ConfigHash {
			score += 2
		}
		if p == stepsPath(obj) {
			score++
		}
		if score > bestScore || score == bestScore && r.Finished.After(best.Finished) {
			best, bestScore, bestFrom = r, score, strings.TrimSuffix(filepath.Base(p), stepsSuffix)
		}
	}
	if bestScore < 0 {
		if kind == kindSeeded {
			e.steps = planned + seededLinkSteps
			e.basis = fmt.Sprintf("%d targets seeding deleted + about %d steps to link (no seeded build of flavour %s recorded yet)",
				planned, seededLinkSteps, want.Flavour)
		} else {
			e.basis = fmt.Sprintf("none: no %s build of flavour %s recorded yet", kind, want.Flavour)
		}
		return e
	}
	config := "other"
	if best.ConfigHash == want.ConfigHash {
		config = "same"
	}
	what := fmt.Sprintf("the %s build of %s in obj/%s (-j%d, %s .config)", kind, best.SourceID, bestFrom, best.Jobs, config)
	e.steps = best.Steps
	e.basis = what
	if kind == kindSeeded {
		e.steps = planned + best.Steps - best.Planned
		e.basis = fmt.Sprintf("%d targets seeding deleted + the %d steps besides its %d of %s", planned, best.Steps-best.Planned, best.Planned, what)
	}
	if best.Jobs == want.Jobs && best.CompileSeconds > 0 {
		e.time = time.Duration(float64(best.compileTime()) * float64(e.steps) / float64(best.Steps))
	}
	return e
}

// String describes the estimate for the progress and the log.
func (e estimate) String() string {
	if e.steps <= 0 {
		return e.basis
	}
	s := fmt.Sprintf("about %d steps", e.steps)
	if e.time >= time.Second {
		s += fmt.Sprintf(" in %s", roundLeft(e.time))
	}
	return s + ", from " + e.basis
}

// status says how far a compile is that has run for elapsed and done n
// steps, for its progress line: "612/1405 steps (43%), about 2m50s left".
// The percent stays below 100 while make runs; past the estimate it says
// so instead.
func (e estimate) status(elapsed time.Duration, n int) string {
	switch {
	case e.steps <= 0 && (e.kind == kindIncremental || e.kind == kindResumed):
		return fmt.Sprintf("%s, %d steps so far", e.kind, n)
	case e.steps <= 0:
		return fmt.Sprintf("%d steps done", n)
	case n > e.steps:
		return fmt.Sprintf("%d steps, estimate exceeded", n)
	}
	s := fmt.Sprintf("%d/%d steps (%d%%)", n, e.steps, min(99, n*100/e.steps))
	if left, ok := e.left(elapsed, n); ok {
		s += ", " + leftPhrase(left)
	}
	return s
}

// left estimates the time a compile has left after elapsed and n steps
// (n at most e.steps): from the pace so far, once 5% of the steps are
// done, blended with what the record's time leaves, which counts the
// less the further the compile is. ok is false when neither is known.
func (e estimate) left(elapsed time.Duration, n int) (left time.Duration, ok bool) {
	rest := e.steps - n
	paced := n > 0 && n*20 >= e.steps
	var byPace time.Duration
	if paced {
		byPace = time.Duration(float64(elapsed) * float64(rest) / float64(n))
	}
	if e.time <= 0 {
		return byPace, paced
	}
	byRecord := max(0, e.time-elapsed)
	if !paced {
		return byRecord, byRecord > 0
	}
	done := float64(n) / float64(e.steps)
	return time.Duration(done*float64(byPace) + (1-done)*float64(byRecord)), true
}

// leftPhrase says how long is left, no more precisely than an estimate
// deserves.
func leftPhrase(d time.Duration) string {
	if d < 10*time.Second {
		return "a few seconds left"
	}
	return "about " + roundLeft(d) + " left"
}

// roundLeft rounds d to 10 s from a minute on, to seconds below.
func roundLeft(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(10 * time.Second).String()
	}
	return d.Round(time.Second).String()
}
