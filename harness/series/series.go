// Package series reads the project's kernel patch series (kernel/series) and
// applies it with git am to a copy of a kernel source tree.
package series

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
)

// Patch is one entry of the series.
type Patch struct {
	Name string // as listed in kernel/series, relative to kernel/
	Path string // absolute path of the patch file
	Data []byte // its content, which is what gets hashed and applied
}

// Load reads repoRoot/kernel/series: one patch file name per line, relative
// to kernel/, in the order they apply; '#' comments and blank lines are
// ignored. An absent or empty series means no patches.
func Load(repoRoot string) ([]Patch, error) {
	dir := filepath.Join(repoRoot, "kernel")
	seriesPath := filepath.Join(dir, "series")
	b, err := os.ReadFile(seriesPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("series: reading the patch list: %w", err)
	}
	var ps []Patch
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		name := strings.TrimSpace(line)
		where := fmt.Sprintf("%s:%d", seriesPath, n)
		switch {
		case name == "":
			continue
		case strings.ContainsAny(name, " \t"):
			return nil, fmt.Errorf("series: %s: %q: one patch file name per line (options such as -p1 are not supported)", where, name)
		case filepath.IsAbs(name) || !filepath.IsLocal(name):
			return nil, fmt.Errorf("series: %s: %q must be a path relative to %s, inside it", where, name, dir)
		case seen[name] != 0:
			return nil, fmt.Errorf("series: %s: %q is already listed on line %d", where, name, seen[name])
		}
		seen[name] = n
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("series: %s lists %s, which cannot be read: %w", where, name, err)
		}
		ps = append(ps, Patch{Name: name, Path: p, Data: data})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("series: reading %s: %w", seriesPath, err)
	}
	return ps, nil
}

// Hash identifies the series for cache keys: "" when empty, else a
// cache.Key over every patch's name and bytes, in order.
func Hash(ps []Patch) string {
	if len(ps) == 0 {
		return ""
	}
	parts := make([][]byte, 0, 2*len(ps))
	for _, p := range ps {
		parts = append(parts, []byte(p.Name), p.Data)
	}
	return cache.Key(parts...)
}

// ApplyError says which patch of the series did not apply and where.
type ApplyError struct {
	Patch   string   // the patch's name in kernel/series
	Files   []string // the conflicting file(s), as git named them
	Output  string   // what git am printed
	LogPath string   // full log of the copy and of git
	Base    string   // Origin of the tree the series was applied to
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "series: patch %s does not apply", e.Patch)
	if e.Base != "" {
		fmt.Fprintf(&b, " to %s", e.Base)
	}
	if len(e.Files) > 0 {
		fmt.Fprintf(&b, ": conflict in %s", strings.Join(e.Files, ", "))
	}
	fmt.Fprintf(&b, " (git am --3way output in %s); refresh the patch against that tree, or drop it from kernel/series, and rerun", e.LogPath)
	return b.String()
}

// Git identity and dates used for every commit, so that the same base and
// series give the same history.
const (
	gitName  = "memfd-luo"
	gitEmail = "maintainers@memfd-luo.invalid"
	gitDate  = "2000-01-01T00:00:00+0000"
)

// Apply applies ps in order to a git-initialised copy of base at dst and
// returns the patched tree. With no patches it returns base itself and
// copies nothing. A dst completed earlier for the same base and series is
// reused, except when base is mutable (a user tree may have changed). On a
// patch that does not apply, dst is removed and an *ApplyError is returned.
func Apply(ctx context.Context, base *kernelsrc.Source, ps []Patch, dst string, log io.Writer) (*kernelsrc.Source, error) {
	if len(ps) == 0 {
		return base, nil
	}
	if base == nil {
		return nil, errors.New("series: applying patches: no base tree")
	}
	if log == nil {
		log = io.Discard
	}
	dst, err := filepath.Abs(dst)
	if err != nil {
		return nil, fmt.Errorf("series: resolving the patched tree's directory: %w", err)
	}
	srcDir, err := filepath.Abs(base.Dir)
	if err != nil {
		return nil, fmt.Errorf("series: resolving the base tree's directory: %w", err)
	}
	if within(dst, srcDir) || within(srcDir, dst) {
		return nil, fmt.Errorf("series: the patched copy %s must lie outside the base tree %s and not contain it", dst, srcDir)
	}
	h := Hash(ps)
	what := fmt.Sprintf("%d patches", len(ps))
	if len(ps) == 1 {
		what = "1 patch"
	}
	out := &kernelsrc.Source{
		Dir:     dst,
		Version: base.Version,
		Origin:  base.Origin + " + " + what,
		ID:      base.ID + "+series:" + h,
		Mutable: base.Mutable,
	}
	stamp := base.ID + " " + h

	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, fmt.Errorf("series: creating the parent of %s: %w", dst, err)
	}
	unlock, err := cache.Lock(ctx, dst+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()

	if s, ok := cache.DoneStamp(dst); ok && s == stamp && !base.Mutable {
		fmt.Fprintf(log, "series: reusing %s (%s of %s, series %s)\n", dst, what, base.Origin, h)
		return out, nil
	}

	logPath := dst + ".log"
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("series: creating log: %w", err)
	}
	defer lf.Close()
	g := &gitRunner{dir: dst, log: lf}

	// The patched tree keeps the base's mtimes, so that its object
	// directory stays valid for the files no patch touches. A copy made
	// earlier from the same base is reset to its base commit instead of
	// being copied again: git rewrites exactly the files whose content
	// changes, with a new mtime, so a file that the previous series
	// changed and this one does not is rebuilt too (a fresh copy would
	// give it back the base's old mtime, older than the object built
	// from the patched content, and make would keep that object). It is
	// also minutes faster than copying and committing the tree.
	reused := false
	if !base.Mutable && readBaseMarker(dst) == base.ID {
		if err := resetToBase(ctx, g, dst); err != nil {
			fmt.Fprintf(lf, "series: resetting %s failed, copying the base again: %v\n", dst, err)
		} else {
			fmt.Fprintf(log, "series: reset %s to its base commit to apply %s\n", dst, what)
			reused = true
		}
	}
	if !reused {
		fmt.Fprintf(log, "series: copying %s to %s to apply %s\n", srcDir, dst, what)
		if err := os.RemoveAll(dst); err != nil {
			return nil, fmt.Errorf("series: removing the old patched copy: %w", err)
		}
		if err := copyTree(ctx, srcDir, dst, lf); err != nil {
			os.RemoveAll(dst)
			return nil, fmt.Errorf("series: copying %s to %s: %w (log: %s)", srcDir, dst, err, logPath)
		}
		fmt.Fprintf(log, "series: committing the base tree in git (a large tree takes a minute)\n")
		for _, args := range [][]string{
			{"init", "-q", "-b", "base"},
			{"add", "-A", "-f"},
			{"commit", "-q", "--no-verify", "-m", "base: " + base.Origin},
		} {
			if _, err := g.run(ctx, nil, args...); err != nil {
				os.RemoveAll(dst)
				return nil, fmt.Errorf("series: preparing %s for git am: %w (log: %s)", dst, err, logPath)
			}
		}
		if err := cache.WriteFileAtomic(filepath.Join(dst, ".git", baseMarkerName), []byte(base.ID)); err != nil {
			os.RemoveAll(dst)
			return nil, fmt.Errorf("series: recording the base of %s: %w", dst, err)
		}
	}
	for i, p := range ps {
		fmt.Fprintf(log, "series: [%d/%d] git am --3way %s\n", i+1, len(ps), p.Name)
		output, err := g.run(ctx, p.Data, "am", "--3way", "--no-gpg-sign")
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			os.RemoveAll(dst)
			return nil, fmt.Errorf("series: applying %s: %w", p.Name, ctx.Err())
		}
		g.run(ctx, nil, "am", "--abort")
		os.RemoveAll(dst)
		return nil, &ApplyError{
			Patch:   p.Name,
			Files:   ConflictFiles(output),
			Output:  strings.TrimSpace(output),
			LogPath: logPath,
			Base:    base.Origin,
		}
	}
	if err := cache.MarkDoneWith(dst, stamp); err != nil {
		return nil, fmt.Errorf("series: %w", err)
	}
	fmt.Fprintf(log, "series: %s applied in %s\n", what, dst)
	return out, nil
}

// baseMarkerName is the file in a patched copy's .git directory that holds
// the ID of the base its root commit was made from.
const baseMarkerName = "memfd-luo-base"

// readBaseMarker returns the base ID recorded in dst, or "".
func readBaseMarker(dst string) string {
	b, err := os.ReadFile(filepath.Join(dst, ".git", baseMarkerName))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// resetToBase brings the copy at dst back to its root (base) commit: an
// interrupted git am is abandoned, patched and added files are restored or
// removed, and the completion marker goes with the untracked files.
func resetToBase(ctx context.Context, g *gitRunner, dst string) error {
	if err := cache.Unmark(dst); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dst, ".git", "rebase-apply")); err == nil {
		if _, err := g.run(ctx, nil, "am", "--abort"); err != nil {
			return err
		}
	}
	root, err := g.run(ctx, nil, "rev-list", "--max-parents=0", "HEAD")
	if err != nil {
		return err
	}
	if f := strings.Fields(root); len(f) != 1 {
		return fmt.Errorf("want one root commit, git rev-list printed %q", root)
	}
	if _, err := g.run(ctx, nil, "reset", "-q", "--hard", strings.TrimSpace(root)); err != nil {
		return err
	}
	_, err = g.run(ctx, nil, "clean", "-q", "-f", "-d", "-x")
	return err
}

func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && filepath.IsLocal(rel) || path == dir
}

// copyTree copies src's content into dst with cp -a (modes and times kept,
// so an out-of-tree build of a recreated copy stays incremental), leaving out
// src's own .git and completion marker.
func copyTree(ctx context.Context, src, dst string, log io.Writer) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	args := []string{"-a", "-t", dst, "--"}
	for _, e := range ents {
		if e.Name() == ".git" || e.Name() == cache.MarkerName {
			continue
		}
		args = append(args, filepath.Join(src, e.Name()))
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "cp", args...)
	cmd.Stdout, cmd.Stderr = log, log
	fmt.Fprintf(log, "$ cp -a -t %s -- %s/*\n", dst, src)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cp: %w", err)
	}
	return nil
}

// gitRunner runs git in one repository independently of the user's git
// configuration and environment.
type gitRunner struct {
	dir string
	log io.Writer
}

func (g *gitRunner) run(ctx context.Context, stdin []byte, args ...string) (string, error) {
	full := append([]string{
		"-c", "user.name=" + gitName,
		"-c", "user.email=" + gitEmail,
		"-c", "commit.gpgsign=false",
		"-c", "core.autocrlf=false",
		"-c", "core.hooksPath=/dev/null",
		"-c", "gc.auto=0",
		"-c", "maintenance.auto=false",
		"-c", "am.keepcr=false",
	}, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Dir = g.dir
	cmd.Env = gitEnv()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	fmt.Fprintf(g.log, "$ git %s\n", strings.Join(args, " "))
	err := cmd.Run()
	g.log.Write(out.Bytes())
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return out.String(), fmt.Errorf("git is needed to apply kernel/series and was not found: %w", err)
		}
		return out.String(), fmt.Errorf("git %s: %w", args[0], err)
	}
	return out.String(), nil
}

func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME="+gitName, "GIT_AUTHOR_EMAIL="+gitEmail, "GIT_AUTHOR_DATE="+gitDate,
		"GIT_COMMITTER_NAME="+gitName, "GIT_COMMITTER_EMAIL="+gitEmail, "GIT_COMMITTER_DATE="+gitDate,
		"LC_ALL=C", "LANGUAGE=",
	)
}

// ConflictFiles returns the files git apply/am output names as not applying,
// in order, without duplicates.
func ConflictFiles(output string) []string {
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		f = strings.TrimSpace(f)
		if f != "" && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "error: patch failed: "):
			f := strings.TrimPrefix(l, "error: patch failed: ")
			if i := strings.LastIndex(f, ":"); i > 0 {
				f = f[:i]
			}
			add(f)
		case strings.HasPrefix(l, "CONFLICT ("):
			if _, f, ok := strings.Cut(l, "Merge conflict in "); ok {
				add(f)
			} else if _, rest, ok := strings.Cut(l, "): "); ok {
				// e.g. "CONFLICT (modify/delete): FILE deleted in ..."
				add(strings.Fields(rest)[0])
			}
		case strings.HasPrefix(l, "error: sha1 information is lacking or useless ("):
			add(strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(l, "error: sha1 information is lacking or useless ("), "."), ")"))
		case strings.HasPrefix(l, "error: "):
			rest := strings.TrimPrefix(l, "error: ")
			for _, suffix := range []string{": does not exist in index", ": patch does not apply", ": already exists in index", ": already exists in working directory", ": No such file or directory"} {
				if f, ok := strings.CutSuffix(rest, suffix); ok {
					add(f)
				}
			}
		}
	}
	return files
}
