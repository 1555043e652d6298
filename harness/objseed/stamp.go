package objseed

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

// StampName is the completion stamp's file name in an object directory.
const StampName = ".luotest-objdir.json"

// Stamp is what a completed build leaves in its object directory: where
// it was built and from what. Only a stamped object directory can seed
// another; the builder removes the stamp before it runs make and writes it
// again once make succeeded, so an interrupted build leaves none.
type Stamp struct {
	SrcDir  string `json:"src_dir"` // real path of the source tree (as kbuild embeds it)
	ObjDir  string `json:"obj_dir"` // real path of the object directory
	Flavour string `json:"flavour"`
	// Tree is the treediff fingerprint of the source tree as the build
	// saw it: a seed is used only if its tree is still in that state.
	Tree string `json:"tree"`
}

// NewStamp describes a build of srcDir in objDir, resolving both to the
// real paths kbuild writes into its files (make -C and O= resolve
// symlinks).
func NewStamp(srcDir, objDir, flavour, tree string) (Stamp, error) {
	src, err := RealPath(srcDir)
	if err != nil {
		return Stamp{}, fmt.Errorf("objseed: resolving the source tree: %w", err)
	}
	obj, err := RealPath(objDir)
	if err != nil {
		return Stamp{}, fmt.Errorf("objseed: resolving the object directory: %w", err)
	}
	return Stamp{SrcDir: src, ObjDir: obj, Flavour: flavour, Tree: tree}, nil
}

// WriteStamp writes s into objDir atomically.
func WriteStamp(objDir string, s Stamp) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("objseed: encoding the stamp of %s: %w", objDir, err)
	}
	if err := cache.WriteFileAtomic(filepath.Join(objDir, StampName), append(b, '\n')); err != nil {
		return fmt.Errorf("objseed: stamping %s: %w", objDir, err)
	}
	return nil
}

// ReadStamp reads objDir's stamp; an error wrapping fs.ErrNotExist means
// there is none.
func ReadStamp(objDir string) (Stamp, error) {
	var s Stamp
	b, err := os.ReadFile(filepath.Join(objDir, StampName))
	if err != nil {
		return s, fmt.Errorf("objseed: reading the stamp of %s: %w", objDir, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("objseed: decoding the stamp of %s: %w", objDir, err)
	}
	return s, nil
}

// RemoveStamp removes objDir's stamp; a missing one is not an error.
func RemoveStamp(objDir string) error {
	if err := os.Remove(filepath.Join(objDir, StampName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("objseed: removing the stamp of %s: %w", objDir, err)
	}
	return nil
}

// Fresh reports whether objDir holds no finished build that seeding would
// throw away: it is missing, empty, or has neither a stamp nor a vmlinux
// (a cold build that never got to the link).
func Fresh(objDir string) bool {
	f, err := os.Open(objDir)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	names, err := f.Readdirnames(1)
	f.Close()
	if len(names) == 0 && errors.Is(err, io.EOF) {
		return true
	}
	for _, done := range []string{StampName, "vmlinux"} {
		if _, err := os.Lstat(filepath.Join(objDir, done)); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}

// RealPath resolves p's symlinks, as getcwd would after a chdir to it;
// when p does not exist yet, its longest existing parent is resolved and
// the rest appended.
func RealPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for d := abs; ; d = filepath.Dir(d) {
		r, err := filepath.EvalSymlinks(d)
		if err == nil {
			slices.Reverse(rest)
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			return "", err
		}
		rest = append(rest, filepath.Base(d))
	}
}
