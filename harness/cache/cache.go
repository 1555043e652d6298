// Package cache locates the memfd-luo cache directory and provides the small
// primitives the harness uses to fill it safely: content keys, atomic file
// writes, completion markers and inter-process locks.
//
// A directory in the cache is only ever trusted when it carries a completion
// marker written after its content was finished, so an interrupted download,
// extraction or build is redone instead of being taken as done.
package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvDir is the environment variable that overrides the cache directory.
const EnvDir = "MEMFD_LUO_CACHE"

// Dir returns the cache directory, creating it if missing: $MEMFD_LUO_CACHE
// if set, else $XDG_CACHE_HOME/memfd-luo, else ~/.cache/memfd-luo. The result
// is always absolute, because it is handed to tools that change directory.
func Dir() (string, error) {
	dir, err := dirFrom(os.Getenv, os.UserHomeDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache: creating cache directory: %w (set %s to a writable directory)", err, EnvDir)
	}
	return dir, nil
}

func dirFrom(getenv func(string) string, home func() (string, error)) (string, error) {
	var dir string
	switch {
	case getenv(EnvDir) != "":
		dir = getenv(EnvDir)
	case getenv("XDG_CACHE_HOME") != "":
		dir = filepath.Join(getenv("XDG_CACHE_HOME"), "memfd-luo")
	default:
		h, err := home()
		if err != nil {
			return "", fmt.Errorf("cache: finding the home directory for ~/.cache/memfd-luo: %w (set %s)", err, EnvDir)
		}
		if h == "" {
			return "", fmt.Errorf("cache: no home directory for ~/.cache/memfd-luo (set %s)", EnvDir)
		}
		dir = filepath.Join(h, ".cache", "memfd-luo")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("cache: making cache directory %q absolute: %w", dir, err)
	}
	return abs, nil
}

// Key returns 16 hex characters of the SHA-256 of parts, each prefixed by its
// length so that ("ab","c") and ("a","bc") differ.
func Key(parts ...[]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// WriteFileAtomic writes data to path so that readers see either the old
// content or all of the new one: it writes a temporary file in the same
// directory, syncs it and renames it over path.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: writing %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("cache: writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cache: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cache: writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: makes the rename durable
		d.Close()
	}
	return nil
}

// MarkerName is the file, inside a directory, whose presence says the
// directory's content is complete.
const MarkerName = ".memfd-luo-done"

// MarkDone marks dir complete. Call it only after everything in dir was
// written.
func MarkDone(dir string) error {
	return MarkDoneWith(dir, "")
}

// MarkDoneWith marks dir complete and records stamp in the marker, e.g. the
// hash of the inputs dir was made from; see DoneStamp.
func MarkDoneWith(dir, stamp string) error {
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("cache: marking %s complete: %w", dir, err)
	} else if !st.IsDir() {
		return fmt.Errorf("cache: marking %s complete: not a directory", dir)
	}
	if err := WriteFileAtomic(filepath.Join(dir, MarkerName), []byte(stamp)); err != nil {
		return fmt.Errorf("cache: marking %s complete: %w", dir, err)
	}
	return nil
}

// IsDone reports whether dir was marked complete.
func IsDone(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, MarkerName))
	return err == nil && st.Mode().IsRegular()
}

// DoneStamp returns the stamp recorded by MarkDoneWith and whether dir is
// marked complete at all.
func DoneStamp(dir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, MarkerName))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Unmark removes dir's completion marker, before dir is modified in place.
// A missing marker or directory is not an error.
func Unmark(dir string) error {
	err := os.Remove(filepath.Join(dir, MarkerName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cache: unmarking %s: %w", dir, err)
	}
	return nil
}
