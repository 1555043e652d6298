// Package treediff compares two directory trees that are mostly copies of
// each other (a kernel tree and its patched cp -a copy) and says which files
// differ, reading only the few files whose metadata does not settle it.
package treediff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// entry is what a scan records of one file.
type entry struct {
	mode  fs.FileMode // type bits only: regular file or symlink
	size  int64
	mtime int64  // nanoseconds since the epoch
	link  string // symlink target
}

// Tree is a scan of a directory: every regular file and symlink under it,
// by slash-separated path relative to Dir, with its type, size and mtime.
type Tree struct {
	Dir   string
	files map[string]entry
}

// Len returns the number of files scanned.
func (t *Tree) Len() int { return len(t.files) }

// Scan walks dir and records its regular files and symlinks. Directories
// named .git and entries whose base name is in skip are left out, at any
// depth; other file types (sockets, fifos) are ignored.
func Scan(ctx context.Context, dir string, skip ...string) (*Tree, error) {
	t := &Tree{Dir: dir, files: map[string]entry{}}
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if p == dir {
			return nil
		}
		if d.Name() == ".git" || slices.Contains(skip, d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !(d.Type().IsRegular() || d.Type() == fs.ModeSymlink) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: info.Mode().Type(), size: info.Size(), mtime: info.ModTime().UnixNano()}
		if e.mode == fs.ModeSymlink {
			// A symlink is its target: make follows it, so its
			// own size and times do not matter.
			e.size, e.mtime = 0, 0
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		t.files[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("treediff: scanning %s: %w", dir, err)
	}
	return t, nil
}

// Fingerprint identifies the tree's state as make sees it: a hash of every
// file's path, type, size, mtime and symlink target. A tree rewritten with
// other content gets another fingerprint (unless a file keeps its size and
// mtime, which make could not see either).
func (t *Tree) Fingerprint() string {
	paths := make([]string, 0, len(t.files))
	for p := range t.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	h := sha256.New()
	for _, p := range paths {
		e := t.files[p]
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%s\n", p, uint32(e.mode), e.size, e.mtime, e.link)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Diff returns, sorted, the paths (relative, slash-separated) of the files
// that differ between a and b: present in only one, of another type, a
// symlink to elsewhere, or a regular file of other content. Regular files
// of equal size and mtime are taken as equal without reading them (a cp -a
// copy keeps mtimes); those of equal size and other mtimes are compared
// byte by byte.
func Diff(ctx context.Context, a, b *Tree) ([]string, error) {
	var out []string
	for p, ea := range a.files {
		eb, ok := b.files[p]
		switch {
		case !ok, ea.mode != eb.mode, ea.link != eb.link, ea.size != eb.size:
			out = append(out, p)
		case ea.mode.IsRegular() && ea.mtime != eb.mtime:
			same, err := sameContent(ctx, filepath.Join(a.Dir, filepath.FromSlash(p)), filepath.Join(b.Dir, filepath.FromSlash(p)))
			if err != nil {
				return nil, fmt.Errorf("treediff: comparing %s in %s and %s: %w", p, a.Dir, b.Dir, err)
			}
			if !same {
				out = append(out, p)
			}
		}
	}
	for p := range b.files {
		if _, ok := a.files[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// sameContent reports whether files x and y have the same bytes.
func sameContent(ctx context.Context, x, y string) (bool, error) {
	fx, err := os.Open(x)
	if err != nil {
		return false, err
	}
	defer fx.Close()
	fy, err := os.Open(y)
	if err != nil {
		return false, err
	}
	defer fy.Close()
	bx, by := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		nx, errx := io.ReadFull(fx, bx)
		ny, erry := io.ReadFull(fy, by)
		if nx != ny || !bytes.Equal(bx[:nx], by[:ny]) {
			return false, nil
		}
		endx, endy := isEnd(errx), isEnd(erry)
		if errx != nil && !endx {
			return false, errx
		}
		if erry != nil && !endy {
			return false, erry
		}
		if endx || endy {
			return endx == endy, nil
		}
	}
}

func isEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
