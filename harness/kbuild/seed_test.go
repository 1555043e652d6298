package kbuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/objseed"
)

func TestStamp(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	o := Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache}
	obj := ObjDir(e.cache, e.src.ID, flavour.Normal)
	if _, err := Build(ctx, o); err != nil {
		t.Fatal(err)
	}
	st, err := objseed.ReadStamp(obj)
	if err != nil {
		t.Fatalf("no stamp after a successful build: %v", err)
	}
	fp, err := objseed.Fingerprint(ctx, e.src.Dir)
	if err != nil {
		t.Fatal(err)
	}
	realSrc, _ := filepath.EvalSymlinks(e.src.Dir)
	realObj, _ := filepath.EvalSymlinks(obj)
	if want := (objseed.Stamp{SrcDir: realSrc, ObjDir: realObj, Flavour: "normal", Tree: fp}); st != want {
		t.Errorf("stamp = %+v, want %+v", st, want)
	}

	// A cached kernel runs no make: the objects and their stamp stay.
	if k, err := Build(ctx, o); err != nil || !k.Cached {
		t.Fatalf("second Build: %+v, %v; want it cached", k, err)
	}
	if _, err := objseed.ReadStamp(obj); err != nil {
		t.Errorf("a cached build removed the stamp: %v", err)
	}

	// An interrupted make leaves no stamp.
	t.Setenv("FAKE_SLEEP", "5")
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	o.Fragments = []string{e.frag2}
	if _, err := Build(cctx, o); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted Build: %v, want deadline exceeded", err)
	}
	if _, err := objseed.ReadStamp(obj); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stamp after an interrupted build: %v, want none", err)
	}

	// A user tree is never a seed: no stamp.
	t.Setenv("FAKE_SLEEP", "")
	mutable := *e.src
	mutable.Mutable, mutable.ID = true, "tree:"+e.src.Dir
	if _, err := Build(ctx, Options{Source: &mutable, Fragments: []string{e.frag}, CacheDir: e.cache}); err != nil {
		t.Fatal(err)
	}
	if _, err := objseed.ReadStamp(ObjDir(e.cache, mutable.ID, flavour.Normal)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a mutable tree's object directory was stamped: %v", err)
	}
}

// sibling builds e.src as the seed (stock) and returns a patched copy of
// it (one header changed) and the seed's object directory, in which a
// kbuild .cmd file depends on that header and another does not.
func sibling(t *testing.T, e env) (*kernelsrc.Source, string) {
	t.Helper()
	hdr := filepath.Join(e.src.Dir, "include/linux/memfd.h")
	if err := os.MkdirAll(filepath.Dir(hdr), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hdr, []byte("#define MEMFD 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), Options{Source: e.src, Fragments: []string{e.frag}, CacheDir: e.cache, Name: "stock"}); err != nil {
		t.Fatal(err)
	}
	seedObj := ObjDir(e.cache, e.src.ID, flavour.Normal)
	src, _ := filepath.EvalSymlinks(e.src.Dir)
	for name, content := range map[string]string{
		"mm/.memfd.o.cmd":    "savedcmd_mm/memfd.o := gcc -I" + src + "/include -c " + src + "/mm/memfd.c\n\ndeps_mm/memfd.o := \\\n  " + src + "/include/linux/memfd.h \\\n",
		"mm/memfd.o":         "\x7fELF\x00",
		"kernel/.fork.o.cmd": "savedcmd_kernel/fork.o := gcc -I" + src + "/include -c " + src + "/kernel/fork.c\n",
		"kernel/fork.o":      "\x7fELF\x00",
	} {
		p := filepath.Join(seedObj, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "patched")
	if out, err := exec.Command("cp", "-a", e.src.Dir, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "include/linux/memfd.h"), []byte("#define MEMFD 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	patched := *e.src
	patched.Dir, patched.ID = dir, e.src.ID+"+series"
	return &patched, seedObj
}

func TestBuildSeeded(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare breaks the seed or the target, or leaves them be.
		prepare    func(t *testing.T, e env, seedObj string, target *kernelsrc.Source)
		wantSeeded bool
		wantLine   string // in the progress
		wantLog    string // in the build log
	}{
		{name: "seeded", prepare: func(*testing.T, env, string, *kernelsrc.Source) {}, wantSeeded: true,
			wantLine: "seeding obj dir from %SEED: 1 file differs, 1 target to rebuild", wantLog: "include/linux/memfd.h"},
		{name: "seed without stamp", prepare: func(t *testing.T, _ env, seedObj string, _ *kernelsrc.Source) {
			if err := objseed.RemoveStamp(seedObj); err != nil {
				t.Fatal(err)
			}
		}, wantLog: "not seeding from %SEED: no completed build there"},
		{name: "seed tree changed since its build", prepare: func(t *testing.T, e env, _ string, _ *kernelsrc.Source) {
			if err := os.WriteFile(filepath.Join(e.src.Dir, "include/linux/memfd.h"), []byte("#define MEMFD 3\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, wantLine: "not seeding obj dir from %SEED, building cold", wantLog: "changed since it was built"},
		{name: "seeding fails", prepare: func(t *testing.T, _ env, _ string, _ *kernelsrc.Source) {
			bin := t.TempDir()
			if err := os.WriteFile(filepath.Join(bin, "cp"), []byte("#!/bin/sh\necho 'cp: disk full' >&2\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		}, wantLine: "seeding obj dir from %SEED failed, building cold", wantLog: "disk full"},
		{name: "mutable target", prepare: func(_ *testing.T, _ env, _ string, target *kernelsrc.Source) {
			target.Mutable = true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			target, seedObj := sibling(t, e)
			tc.prepare(t, e, seedObj, target)
			var prog bytes.Buffer
			k, err := Build(context.Background(), Options{Source: target, Fragments: []string{e.frag}, CacheDir: e.cache, Name: "patched",
				Progress: &prog, Seed: &Seed{SrcDir: e.src.Dir, ObjDir: seedObj}})
			if err != nil {
				t.Fatalf("Build: %v\nprogress:\n%s", err, prog.String())
			}
			obj := ObjDir(e.cache, target.ID, flavour.Normal)
			log, _ := os.ReadFile(obj + ".log")
			subst := func(s string) string { return strings.ReplaceAll(s, "%SEED", seedObj) }
			if tc.wantLine != "" && !strings.Contains(prog.String(), subst(tc.wantLine)) {
				t.Errorf("progress lacks %q:\n%s", subst(tc.wantLine), prog.String())
			}
			if tc.wantLine == "" && strings.Contains(prog.String(), "seeding obj dir") {
				t.Errorf("progress mentions seeding:\n%s", prog.String())
			}
			if !strings.Contains(string(log), subst(tc.wantLog)) {
				t.Errorf("build log lacks %q:\n%s", subst(tc.wantLog), log)
			}
			_, errFork := os.Stat(filepath.Join(obj, "kernel/fork.o"))
			if seeded := errFork == nil; seeded != tc.wantSeeded {
				t.Fatalf("seeded = %v, want %v", seeded, tc.wantSeeded)
			}
			if m, _ := filepath.Glob(filepath.Join(e.cache, "obj", ".seed-*")); len(m) > 0 {
				t.Errorf("temporary copies left: %q", m)
			}
			if _, err := os.Stat(k.BzImage); err != nil {
				t.Errorf("no kernel: %v", err)
			}
			if !tc.wantSeeded {
				return
			}
			if _, err := os.Stat(filepath.Join(obj, "mm/memfd.o")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mm/memfd.o, which depends on the changed header, survived: %v", err)
			}
			cmd, _ := os.ReadFile(filepath.Join(obj, "kernel/.fork.o.cmd"))
			if src, _ := filepath.EvalSymlinks(target.Dir); !strings.Contains(string(cmd), src+"/kernel/fork.c") {
				t.Errorf("kernel/.fork.o.cmd does not name the target tree:\n%s", cmd)
			}
			if _, err := objseed.ReadStamp(obj); err != nil {
				t.Errorf("the seeded build was not stamped: %v", err)
			}
		})
	}
}
