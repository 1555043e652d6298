// Package seriescheck checks a patch series the way a maintainer would
// before sending it: it applies to the base, every patch is clean under
// scripts/checkpatch.pl --strict, and the tree builds after every patch
// (bisectability).
//
// The builds share one git worktree and one object directory, stepping
// through the series commit by commit, so only the first build is cold.
package seriescheck

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/kbuild"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/series"
)

// Result is what one patch got.
type Result struct {
	Patch string
	// Checkpatch is checkpatch's summary line ("total: 0 errors, 0
	// warnings, 0 checks, 120 lines checked").
	Checkpatch   string
	CheckpatchOK bool
	// CheckpatchOutput is the full report when it is not clean.
	CheckpatchOutput string
	Built            bool
	BuildErr         string
	BuildTime        time.Duration
}

// OK reports whether the patch passed every check.
func (r Result) OK() bool { return r.CheckpatchOK && r.Built }

// Options configure a check.
type Options struct {
	Base      *kernelsrc.Source
	Patches   []series.Patch
	Fragments []string
	CacheDir  string
	// NoBuild skips the per-patch builds (checkpatch and apply only).
	NoBuild  bool
	Jobs     int
	Progress io.Writer
}

var summaryRE = regexp.MustCompile(`(?m)^total: (\d+) errors, (\d+) warnings, (\d+) checks.*$`)

// Checkpatch runs scripts/checkpatch.pl --strict on patch inside tree and
// returns the summary line, whether it is clean, and the full output.
func Checkpatch(ctx context.Context, tree, patch string) (string, bool, string, error) {
	cmd := exec.CommandContext(ctx, "perl", filepath.Join(tree, "scripts", "checkpatch.pl"), "--strict", "--no-color", "--show-types", patch)
	cmd.Dir = tree
	out, err := cmd.CombinedOutput()
	m := summaryRE.FindSubmatch(out)
	if m == nil {
		return "", false, string(out), fmt.Errorf("running checkpatch on %s: no summary line (%v)", filepath.Base(patch), err)
	}
	clean := string(m[1]) == "0" && string(m[2]) == "0" && string(m[3]) == "0"
	return string(m[0]), clean, string(out), nil
}

// Run checks the series. An error means the check itself could not run
// (including a patch that does not apply: *series.ApplyError).
func Run(ctx context.Context, o Options) ([]Result, error) {
	if len(o.Patches) == 0 {
		return nil, fmt.Errorf("series check: the series is empty")
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	key := cache.Key([]byte(o.Base.ID), []byte(series.Hash(o.Patches)))
	full, err := series.Apply(ctx, o.Base, o.Patches, filepath.Join(o.CacheDir, "trees", key), o.Progress)
	if err != nil {
		return nil, err
	}
	commits, err := git(ctx, full.Dir, "rev-list", "--reverse", "HEAD")
	if err != nil {
		return nil, err
	}
	cs := strings.Fields(commits)
	if len(cs) != len(o.Patches)+1 {
		return nil, fmt.Errorf("series check: %s has %d commits, want base + %d patches", full.Dir, len(cs), len(o.Patches))
	}
	var wt string
	if !o.NoBuild {
		wt = filepath.Join(o.CacheDir, "seriescheck", key)
		if _, err := os.Stat(filepath.Join(wt, ".git")); err != nil {
			os.RemoveAll(wt)
			git(ctx, full.Dir, "worktree", "prune")
			fmt.Fprintf(o.Progress, "series check: creating worktree %s\n", wt)
			if _, err := git(ctx, full.Dir, "worktree", "add", "--detach", wt, cs[0]); err != nil {
				return nil, err
			}
		}
	}
	var res []Result
	for i, p := range o.Patches {
		r := Result{Patch: p.Name}
		sum, ok, out, err := Checkpatch(ctx, full.Dir, p.Path)
		if err != nil {
			return res, err
		}
		r.Checkpatch, r.CheckpatchOK = sum, ok
		if !ok {
			r.CheckpatchOutput = out
		}
		if !o.NoBuild {
			if _, err := git(ctx, wt, "checkout", "-q", "--detach", cs[i+1]); err != nil {
				return res, err
			}
			src := &kernelsrc.Source{Dir: wt, Version: full.Version, Mutable: true,
				Origin: fmt.Sprintf("%s, patches 1..%d", o.Base.Origin, i+1),
				ID:     "seriescheck:" + key}
			start := time.Now()
			_, err := kbuild.Build(ctx, kbuild.Options{Source: src, Fragments: o.Fragments, CacheDir: o.CacheDir,
				Name: fmt.Sprintf("after %d/%d", i+1, len(o.Patches)), Jobs: o.Jobs, Progress: o.Progress,
				Extra: []byte(cs[i+1])})
			r.BuildTime = time.Since(start)
			if err != nil {
				if ctx.Err() != nil {
					return res, err
				}
				r.BuildErr = err.Error()
			} else {
				r.Built = true
			}
		}
		res = append(res, r)
		fmt.Fprintf(o.Progress, "series check: [%d/%d] %s: %s; build %s\n", i+1, len(o.Patches), p.Name, verdict(r.CheckpatchOK, r.Checkpatch), buildVerdict(r, o.NoBuild))
	}
	return res, nil
}

func verdict(ok bool, s string) string {
	if ok {
		return "checkpatch clean"
	}
	return "checkpatch: " + s
}

func buildVerdict(r Result, skipped bool) string {
	switch {
	case skipped:
		return "skipped"
	case r.Built:
		return fmt.Sprintf("ok (%s)", r.BuildTime.Round(time.Second))
	}
	return "FAILED"
}

// Table writes the per-patch report.
func Table(w io.Writer, base string, res []Result, noBuild bool) {
	fmt.Fprintf(w, "series check against %s\n", base)
	for i, r := range res {
		fmt.Fprintf(w, "%2d %-70s %-18s %s\n", i+1, r.Patch, map[bool]string{true: "checkpatch ok", false: "checkpatch FAIL"}[r.CheckpatchOK], buildVerdict(r, noBuild))
		if !r.CheckpatchOK {
			fmt.Fprintf(w, "   %s\n", r.Checkpatch)
			for _, l := range strings.Split(r.CheckpatchOutput, "\n") {
				if strings.HasPrefix(l, "ERROR:") || strings.HasPrefix(l, "WARNING:") || strings.HasPrefix(l, "CHECK:") || strings.HasPrefix(l, "#") {
					fmt.Fprintf(w, "   %s\n", l)
				}
			}
		}
		if r.BuildErr != "" {
			for _, l := range strings.Split(r.BuildErr, "\n") {
				fmt.Fprintf(w, "   %s\n", l)
			}
		}
	}
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
