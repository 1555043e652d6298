// Package objseed makes a cold kernel build cheap when a sibling tree (the
// same base, a few files apart, e.g. stock and patched) has a completed
// object directory: it copies that directory, points the copy's paths at
// the new tree and deletes the targets that depend on the files that
// differ, so kbuild rebuilds only those. It also owns the completion
// stamp that says an object directory may serve as a seed.
package objseed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/treediff"
)

// ErrUnusable says the candidate seed cannot be used (no stamp, built for
// another flavour or place, its tree changed since, or the target already
// holds a build); nothing was changed.
var ErrUnusable = errors.New("objseed: not a usable seed")

// Options says what to seed from and into.
type Options struct {
	SeedObj string // the sibling's object directory, stamped
	SeedSrc string // the sibling's source tree
	Obj     string // the object directory to fill: missing or Fresh
	Src     string // the source tree Obj is for
	Flavour string // must be the seed's (see Stamp)
	Log     io.Writer
}

// Result says what seeding did.
type Result struct {
	Rewritten int      // files and symlinks whose paths were rewritten
	Removed   []string // thin archives that named the old paths, removed to be rebuilt
	// Differ are the files (relative to the trees) that differ
	// between the seed's tree and Src.
	Differ []string
	// Invalidated are the targets (relative to Obj) deleted because
	// their kbuild .cmd file names a file of Differ.
	Invalidated []string
}

// Fingerprint returns the treediff fingerprint of the source tree at dir
// as a stamp records it (.git and cache markers left out).
func Fingerprint(ctx context.Context, dir string) (string, error) {
	t, err := scan(ctx, dir)
	if err != nil {
		return "", err
	}
	return t.Fingerprint(), nil
}

func scan(ctx context.Context, dir string) (*treediff.Tree, error) {
	return treediff.Scan(ctx, dir, cache.MarkerName)
}

// Seed fills o.Obj from o.SeedObj so that make in o.Obj for o.Src rebuilds
// only what the differing files affect:
//
//  1. it checks o.SeedObj's stamp: same place, flavour and tree state;
//  2. it lists the files that differ between the two trees (treediff);
//  3. it copies o.SeedObj with cp -a into a temporary directory next to
//     o.Obj and removes the copied stamp;
//  4. it rewrites the seed's absolute source and object paths to o.Src's
//     and o.Obj's in every text file (no NUL byte) and symlink of the
//     copy, keeping each file's mtime; binary files are left alone, and
//     thin archives that name the old paths are removed (rewriting them
//     would break their offsets);
//  5. it deletes every target whose .<target>.cmd file (kbuild's command
//     line, source and dependency list) names a differing file, and that
//     .cmd file, so make rebuilds it;
//  6. it replaces o.Obj with the copy.
//
// On any error o.Obj is left as it was (or, if the failure came while
// swapping, missing), and the temporary copy is removed. An error wrapping
// ErrUnusable means the seed was refused before anything was written.
// The caller holds the locks of both object directories.
func Seed(ctx context.Context, o Options) (*Result, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	var dirs [4]string
	for i, p := range []string{o.SeedObj, o.SeedSrc, o.Obj, o.Src} {
		r, err := RealPath(p)
		if err != nil {
			return nil, fmt.Errorf("%w: resolving %s: %w", ErrUnusable, p, err)
		}
		dirs[i] = r
	}
	seedObj, seedSrc, obj, src := dirs[0], dirs[1], dirs[2], dirs[3]
	if err := usable(seedObj, seedSrc, obj, src, o); err != nil {
		return nil, err
	}
	st, err := ReadStamp(seedObj)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (only a completed build is stamped)", ErrUnusable, err)
	}
	if st.SrcDir != seedSrc || st.ObjDir != seedObj || st.Flavour != o.Flavour {
		return nil, fmt.Errorf("%w: its stamp is for %s built from %s, flavour %s; wanted %s built from %s, flavour %s",
			ErrUnusable, st.ObjDir, st.SrcDir, st.Flavour, seedObj, seedSrc, o.Flavour)
	}

	start := time.Now()
	seedTree, tree, err := scanBoth(ctx, seedSrc, src)
	if err != nil {
		return nil, err
	}
	if fp := seedTree.Fingerprint(); fp != st.Tree {
		return nil, fmt.Errorf("%w: its source tree %s changed since it was built there (fingerprint %.12s, stamp %.12s)", ErrUnusable, seedSrc, fp, st.Tree)
	}
	differ, err := treediff.Diff(ctx, seedTree, tree)
	if err != nil {
		return nil, fmt.Errorf("objseed: %w", err)
	}
	res := &Result{Differ: differ}
	fmt.Fprintf(log, "# seed: %s (built from %s); %d of %d files differ in %s (compared in %s):\n",
		seedObj, seedSrc, len(differ), tree.Len(), src, time.Since(start).Round(time.Millisecond))
	for _, d := range differ {
		fmt.Fprintf(log, "#   %s\n", d)
	}

	parent, base := filepath.Dir(o.Obj), filepath.Base(o.Obj)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("objseed: creating %s: %w", parent, err)
	}
	prefix := ".seed-" + base + "-"
	if old, err := filepath.Glob(filepath.Join(parent, prefix+"*")); err == nil {
		for _, d := range old { // left by a run that was killed while seeding
			os.RemoveAll(d)
		}
	}
	tmp, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, fmt.Errorf("objseed: creating the copy's directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	start = time.Now()
	if err := copyDir(ctx, seedObj, tmp, log); err != nil {
		return nil, err
	}
	if err := RemoveStamp(tmp); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "# seed: copied %s in %s\n", seedObj, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	ps := pairs([][2]string{
		{seedSrc, src}, {seedObj, obj},
		{abs(o.SeedSrc), abs(o.Src)}, {abs(o.SeedObj), abs(o.Obj)},
	})
	if res.Rewritten, res.Removed, err = rewrite(ctx, tmp, ps); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "# seed: rewrote %s -> %s and %s -> %s in %d files (%s)\n", seedSrc, src, seedObj, obj, res.Rewritten, time.Since(start).Round(time.Millisecond))
	for _, r := range res.Removed {
		fmt.Fprintf(log, "# seed: removed thin archive %s (names the old paths)\n", r)
	}

	start = time.Now()
	changed := make(map[string]bool, len(differ))
	for _, d := range differ {
		changed[d] = true
	}
	var prefixes []string
	for _, p := range []string{src, abs(o.Src), seedSrc, abs(o.SeedSrc)} {
		if p := p + "/"; !slices.Contains(prefixes, p) {
			prefixes = append(prefixes, p)
		}
	}
	if res.Invalidated, err = invalidate(ctx, tmp, prefixes, changed); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "# seed: %d targets name a differing file and will be rebuilt (%s):\n", len(res.Invalidated), time.Since(start).Round(time.Millisecond))
	for _, t := range res.Invalidated {
		fmt.Fprintf(log, "#   %s\n", t)
	}

	if err := os.RemoveAll(o.Obj); err != nil {
		return nil, fmt.Errorf("objseed: removing the unfinished %s: %w", o.Obj, err)
	}
	if err := os.Rename(tmp, o.Obj); err != nil {
		return nil, fmt.Errorf("objseed: moving the seeded copy to %s: %w", o.Obj, err)
	}
	done = true
	return res, nil
}

// usable checks what can be checked without reading the seed.
func usable(seedObj, seedSrc, obj, src string, o Options) error {
	switch {
	case seedObj == obj:
		return fmt.Errorf("%w: %s is the object directory itself", ErrUnusable, obj)
	case within(obj, src) || within(seedObj, seedSrc):
		// kbuild would then write paths relative to the tree.
		return fmt.Errorf("%w: an object directory lies inside its source tree", ErrUnusable)
	case within(obj, seedObj) || within(seedObj, obj):
		return fmt.Errorf("%w: the object directories %s and %s overlap", ErrUnusable, seedObj, obj)
	case !Fresh(o.Obj):
		return fmt.Errorf("%w: %s already holds a build", ErrUnusable, o.Obj)
	}
	return nil
}

func scanBoth(ctx context.Context, a, b string) (ta, tb *treediff.Tree, err error) {
	type result struct {
		t   *treediff.Tree
		err error
	}
	ch := make(chan result, 1)
	go func() {
		t, err := scan(ctx, a)
		ch <- result{t, err}
	}()
	tb, errb := scan(ctx, b)
	r := <-ch
	if err := errors.Join(r.err, errb); err != nil {
		return nil, nil, fmt.Errorf("objseed: %w", err)
	}
	return r.t, tb, nil
}

func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel)
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// copyDir copies from's content into the existing, empty directory to
// with cp -a: modes and mtimes kept, so make sees the same ages.
func copyDir(ctx context.Context, from, to string, log io.Writer) error {
	argv := []string{"cp", "-a", "-T", "--", from, to}
	fmt.Fprintf(log, "$ %s\n", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("objseed: copying %s: %w", from, ctx.Err())
		}
		return fmt.Errorf("objseed: copying %s to %s: %w: %s", from, to, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// pair is one path to rewrite.
type pair struct{ old, new []byte }

// pairs turns old -> new paths into pairs, dropping identities and
// duplicates, longest old path first (so that of two paths where one is a
// prefix of the other, the longer wins).
func pairs(in [][2]string) []pair {
	var out []pair
	for _, p := range in {
		if p[0] == p[1] || p[0] == "" || slices.ContainsFunc(out, func(q pair) bool { return string(q.old) == p[0] }) {
			continue
		}
		out = append(out, pair{[]byte(p[0]), []byte(p[1])})
	}
	slices.SortStableFunc(out, func(a, b pair) int { return len(b.old) - len(a.old) })
	return out
}

// endsPath reports whether c may follow a whole path in kbuild's files
// (a path separator, whitespace, quoting or shell and make syntax), so
// that /a/src is not taken for the start of /a/src2.
func endsPath(c byte) bool {
	return strings.IndexByte("/ \t\n\r\v\f'\"`():;=,\\|&<>$}]", c) >= 0
}

// replacePaths replaces, in one pass from left to right, every occurrence
// of an old path that ends on a path boundary with its new path. It
// returns b itself when nothing was replaced.
func replacePaths(b []byte, ps []pair) ([]byte, int) {
	const unknown = -2
	next := make([]int, len(ps)) // next occurrence of ps[k].old at or after i, or -1
	for k := range next {
		next[k] = unknown
	}
	var out []byte
	n, last, i := 0, 0, 0
	for {
		at := -1
		for k, p := range ps {
			if next[k] == unknown || next[k] >= 0 && next[k] < i {
				next[k] = bytes.Index(b[i:], p.old)
				if next[k] >= 0 {
					next[k] += i
				}
			}
			if next[k] >= 0 && (at < 0 || next[k] < at) {
				at = next[k]
			}
		}
		if at < 0 {
			break
		}
		match := -1
		for k, p := range ps { // longest first
			if end := at + len(p.old); next[k] == at && (end == len(b) || endsPath(b[end])) {
				match = k
				break
			}
		}
		if match < 0 {
			i = at + 1
			continue
		}
		out = append(out, b[last:at]...)
		out = append(out, ps[match].new...)
		i = at + len(ps[match].old)
		last = i
		n++
	}
	if n == 0 {
		return b, 0
	}
	return append(out, b[last:]...), n
}

// rewrite rewrites the paths in the text files and symlinks under root.
func rewrite(ctx context.Context, root string, ps []pair) (rewritten int, removed []string, err error) {
	if len(ps) == 0 {
		return 0, nil, nil
	}
	seen := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if seen++; seen%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case d.Type() == fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			nt, n := replacePaths([]byte(target), ps)
			if n == 0 {
				return nil
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.Symlink(string(nt), p); err != nil {
				return err
			}
			rewritten++
		case d.Type().IsRegular():
			what, err := rewriteFile(p, d, ps)
			if err != nil {
				return err
			}
			switch what {
			case fileRewritten:
				rewritten++
			case fileRemoved:
				rel, _ := filepath.Rel(root, p)
				removed = append(removed, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	if err != nil {
		return rewritten, removed, fmt.Errorf("objseed: rewriting paths in %s: %w", root, err)
	}
	return rewritten, removed, nil
}

type fileOutcome int

const (
	fileKept fileOutcome = iota
	fileRewritten
	fileRemoved
)

// binaryProbe is how much of a file is read to tell binary from text
// before reading the rest: ELF objects have a NUL within their first bytes.
const binaryProbe = 8 << 10

// rewriteFile rewrites the paths in the file at p unless it is binary (has
// a NUL byte), keeping its mode and mtime. A thin archive (text, but with
// offsets into its name table) that names an old path is removed instead.
func rewriteFile(p string, d fs.DirEntry, ps []pair) (fileOutcome, error) {
	info, err := d.Info()
	if err != nil {
		return fileKept, err
	}
	f, err := os.Open(p)
	if err != nil {
		return fileKept, err
	}
	head := make([]byte, binaryProbe)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		f.Close()
		return fileKept, err
	}
	head = head[:n]
	if bytes.IndexByte(head, 0) >= 0 {
		f.Close()
		return fileKept, nil
	}
	rest, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return fileKept, err
	}
	data := append(head, rest...)
	if bytes.IndexByte(rest, 0) >= 0 {
		return fileKept, nil
	}
	out, replaced := replacePaths(data, ps)
	if replaced == 0 {
		return fileKept, nil
	}
	if bytes.HasPrefix(data, []byte("!<thin>\n")) {
		return fileRemoved, os.Remove(p)
	}
	if err := os.WriteFile(p, out, info.Mode().Perm()); err != nil {
		return fileKept, err
	}
	// Keep the age make compares: the content means the same thing.
	if err := os.Chtimes(p, time.Time{}, info.ModTime()); err != nil {
		return fileKept, err
	}
	return fileRewritten, nil
}

// invalidate deletes, under root, every target whose kbuild .cmd file
// (.<target>.cmd next to it: the savedcmd_/cmd_ command line, the
// source_ line and the deps_ list that fixdep wrote) names a changed file
// by an absolute path starting with one of prefixes, and the .cmd file
// too. It returns the deleted targets relative to root, in walk order.
func invalidate(ctx context.Context, root string, prefixes []string, changed map[string]bool) ([]string, error) {
	if len(changed) == 0 {
		return nil, nil
	}
	var out []string
	seen := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if seen++; seen%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".cmd") || len(name) <= len("..cmd") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !namesChanged(b, prefixes, changed) {
			return nil
		}
		target := filepath.Join(filepath.Dir(p), name[1:len(name)-len(".cmd")])
		if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, target)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("objseed: invalidating the targets of changed files in %s: %w", root, err)
	}
	return out, nil
}

// endsWord reports whether c ends a path in a .cmd file: whitespace,
// quoting, or shell and make syntax. Commas do not: a few kernel file
// names have them (namesChanged also tries the parts before each comma).
func endsWord(c byte) bool {
	return strings.IndexByte(" \t\n\r\v\f'\"`():;=\\|&<>${}[]", c) >= 0
}

// namesChanged reports whether b names a changed file as prefix + its path
// (cleaned, so /src/tools/objtool/../include/x.h is include/x.h).
func namesChanged(b []byte, prefixes []string, changed map[string]bool) bool {
	for _, pre := range prefixes {
		for i := 0; ; {
			j := bytes.Index(b[i:], []byte(pre))
			if j < 0 {
				break
			}
			start := i + j + len(pre)
			end := start
			for end < len(b) && !endsWord(b[end]) {
				end++
			}
			word := string(b[start:end])
			if changed[path.Clean(word)] {
				return true
			}
			for k := 0; k < len(word); k++ {
				if word[k] == ',' && changed[path.Clean(word[:k])] {
					return true
				}
			}
			i = start
		}
	}
	return false
}
