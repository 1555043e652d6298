package series

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    []string // patch names
		errLike string
	}{
		{"absent", nil, nil, ""},
		{"empty", map[string]string{"kernel/series": ""}, nil, ""},
		{"comments only", map[string]string{"kernel/series": "# nothing yet\n\n"}, nil, ""},
		{
			"two in order",
			map[string]string{
				"kernel/series":               "# memfd fixes\npatches/0002-b.patch\n\npatches/0001-a.patch  # trailing comment\n",
				"kernel/patches/0001-a.patch": "A",
				"kernel/patches/0002-b.patch": "B",
			},
			[]string{"patches/0002-b.patch", "patches/0001-a.patch"}, "",
		},
		{"missing file", map[string]string{"kernel/series": "0001-gone.patch\n"}, nil, "0001-gone.patch"},
		{"options", map[string]string{"kernel/series": "0001-a.patch -p1\n", "kernel/0001-a.patch": "A"}, nil, "one patch file name per line"},
		{"escapes kernel/", map[string]string{"kernel/series": "../x.patch\n", "x.patch": "X"}, nil, "relative to"},
		{"absolute", map[string]string{"kernel/series": "/etc/passwd\n"}, nil, "relative to"},
		{"duplicate", map[string]string{"kernel/series": "a.patch\na.patch\n", "kernel/a.patch": "A"}, nil, "already listed on line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tc.files)
			ps, err := Load(root)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.errLike)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range ps {
				names = append(names, p.Name)
				if want := tc.files["kernel/"+p.Name]; string(p.Data) != want {
					t.Errorf("%s: Data = %q, want %q", p.Name, p.Data, want)
				}
				if p.Path != filepath.Join(root, "kernel", p.Name) {
					t.Errorf("%s: Path = %s", p.Name, p.Path)
				}
			}
			if !reflect.DeepEqual(names, tc.want) {
				t.Errorf("names = %v, want %v", names, tc.want)
			}
		})
	}
}

func TestHash(t *testing.T) {
	a := Patch{Name: "a.patch", Data: []byte("A")}
	b := Patch{Name: "b.patch", Data: []byte("B")}
	renamed := Patch{Name: "c.patch", Data: []byte("A")}
	if Hash(nil) != "" {
		t.Error("Hash(nil) != \"\"")
	}
	for _, tc := range []struct {
		name string
		x, y []Patch
		same bool
	}{
		{"same", []Patch{a, b}, []Patch{a, b}, true},
		{"order", []Patch{a, b}, []Patch{b, a}, false},
		{"name", []Patch{a}, []Patch{renamed}, false},
		{"subset", []Patch{a}, []Patch{a, b}, false},
	} {
		if got := Hash(tc.x) == Hash(tc.y); got != tc.same {
			t.Errorf("%s: equal hashes = %v, want %v", tc.name, got, tc.same)
		}
	}
	if len(Hash([]Patch{a})) != 16 {
		t.Error("Hash is not 16 hex chars")
	}
}

func TestConflictFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []string
	}{
		{"patch failed", "Applying: x\nerror: patch failed: mm/memfd.c:120\nerror: mm/memfd.c: patch does not apply\nPatch failed at 0001 x\n", []string{"mm/memfd.c"}},
		{"3way conflict", "Applying: x\nUsing index info to reconstruct a base tree...\nM\ta.txt\nFalling back to patching base and 3-way merge...\nAuto-merging a.txt\nCONFLICT (content): Merge conflict in a.txt\nCONFLICT (content): Merge conflict in kernel/liveupdate/luo_file.c\nerror: Failed to merge in the changes.\n", []string{"a.txt", "kernel/liveupdate/luo_file.c"}},
		{"not in index", "Applying: x\nerror: include/linux/new.h: does not exist in index\n", []string{"include/linux/new.h"}},
		{"no fake ancestor", "error: sha1 information is lacking or useless (b.txt).\nerror: could not build fake ancestor\n", []string{"b.txt"}},
		{"modify/delete", "CONFLICT (modify/delete): c.txt deleted in HEAD and modified in x.\n", []string{"c.txt"}},
		{"nothing", "Patch is empty.\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConflictFiles(tc.out); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ConflictFiles = %q, want %q", got, tc.want)
			}
		})
	}
}

// fixture is a three-file fake kernel tree and patches made against it with
// git format-patch.
type fixture struct {
	base    *kernelsrc.Source
	patches map[string]Patch
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), "GIT_AUTHOR_DATE=2001-01-01T00:00:00+0000", "GIT_COMMITTER_DATE=2001-01-01T00:00:00+0000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

var baseFiles = map[string]string{
	"Makefile":     "VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\n",
	"mm/memfd.c":   "line 1\nline 2\nline 3\nline 4\nline 5\n",
	"kernel/luo.c": "alpha\nbeta\ngamma\ndelta\n",
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skipf("series needs git: %v", err)
	}
	base := filepath.Join(t.TempDir(), "linux")
	writeFiles(t, base, baseFiles)
	// The patches' own history, in a scratch clone of the tree.
	work := t.TempDir()
	writeFiles(t, work, baseFiles)
	git(t, work, "init", "-q", "-b", "main")
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "base")
	patches := map[string]Patch{}
	mk := func(name, msg string, files map[string]string) {
		writeFiles(t, work, files)
		git(t, work, "add", "-A")
		git(t, work, "commit", "-q", "-m", msg)
		data := git(t, work, "format-patch", "-1", "--stdout") + "\n"
		patches[name] = Patch{Name: name, Path: filepath.Join(work, name), Data: []byte(data)}
	}
	mk("0001-memfd.patch", "mm/memfd: change line 2", map[string]string{"mm/memfd.c": "line 1\nline TWO\nline 3\nline 4\nline 5\n"})
	mk("0002-luo.patch", "luo: change gamma", map[string]string{"kernel/luo.c": "alpha\nbeta\nGAMMA\ndelta\n"})
	git(t, work, "reset", "-q", "--hard", "HEAD~2")
	mk("0003-conflict.patch", "mm/memfd: change line 2 differently", map[string]string{"mm/memfd.c": "line 1\nline deux\nline 3\nline 4\nline 5\n"})
	git(t, work, "reset", "-q", "--hard", "HEAD~1")
	mk("0004-new-file.patch", "add new header", map[string]string{"include/new.h": "#define X 1\n"})
	git(t, work, "reset", "-q", "--hard", "HEAD~1")
	writeFiles(t, work, map[string]string{"include/new.h": "#define X 0\n"})
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "-m", "unrelated history")
	mk("0005-missing.patch", "change a file the base does not have", map[string]string{"include/new.h": "#define X 2\n"})
	return fixture{
		base:    &kernelsrc.Source{Dir: base, Version: "7.3.4", Origin: "tree " + base, ID: "tree:" + base},
		patches: patches,
	}
}

func (f fixture) series(names ...string) []Patch {
	var ps []Patch
	for _, n := range names {
		ps = append(ps, f.patches[n])
	}
	return ps
}

func TestApply(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name      string
		series    []string
		wantFiles map[string]string // content after applying
		wantErr   *ApplyError       // Patch and Files compared
	}{
		{
			name:   "two clean patches",
			series: []string{"0001-memfd.patch", "0002-luo.patch"},
			wantFiles: map[string]string{
				"mm/memfd.c":   "line 1\nline TWO\nline 3\nline 4\nline 5\n",
				"kernel/luo.c": "alpha\nbeta\nGAMMA\ndelta\n",
				"Makefile":     baseFiles["Makefile"],
			},
		},
		{
			name:      "new file",
			series:    []string{"0004-new-file.patch"},
			wantFiles: map[string]string{"include/new.h": "#define X 1\n"},
		},
		{
			name:    "3-way conflict names the file",
			series:  []string{"0001-memfd.patch", "0003-conflict.patch"},
			wantErr: &ApplyError{Patch: "0003-conflict.patch", Files: []string{"mm/memfd.c"}},
		},
		{
			name:    "file missing from the base",
			series:  []string{"0002-luo.patch", "0005-missing.patch"},
			wantErr: &ApplyError{Patch: "0005-missing.patch", Files: []string{"include/new.h"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "patched")
			var log bytes.Buffer
			ps := f.series(tc.series...)
			got, err := Apply(context.Background(), f.base, ps, dst, &log)
			if tc.wantErr != nil {
				var ae *ApplyError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want *ApplyError", err)
				}
				if ae.Patch != tc.wantErr.Patch || !reflect.DeepEqual(ae.Files, tc.wantErr.Files) {
					t.Errorf("ApplyError{Patch:%q Files:%q}, want {%q %q}\noutput:\n%s", ae.Patch, ae.Files, tc.wantErr.Patch, tc.wantErr.Files, ae.Output)
				}
				msg := ae.Error()
				for _, w := range append([]string{tc.wantErr.Patch, ae.LogPath}, tc.wantErr.Files...) {
					if !strings.Contains(msg, w) {
						t.Errorf("Error() %q does not mention %q", msg, w)
					}
				}
				if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("half-made %s left behind (%v)", dst, err)
				}
				if _, err := os.Stat(ae.LogPath); err != nil {
					t.Errorf("log %s: %v", ae.LogPath, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			want := kernelsrc.Source{
				Dir:     dst,
				Version: "7.3.4",
				Origin:  f.base.Origin + " + " + map[int]string{1: "1 patch", 2: "2 patches"}[len(ps)],
				ID:      f.base.ID + "+series:" + Hash(ps),
			}
			if *got != want {
				t.Errorf("Source = %+v, want %+v", *got, want)
			}
			for p, c := range tc.wantFiles {
				b, err := os.ReadFile(filepath.Join(dst, p))
				if err != nil || string(b) != c {
					t.Errorf("%s = %q, %v; want %q", p, b, err, c)
				}
			}
			if !cache.IsDone(dst) {
				t.Error("patched copy not marked complete")
			}
		})
	}
}

func TestApplyNoPatches(t *testing.T) {
	base := &kernelsrc.Source{Dir: t.TempDir(), ID: "x"}
	dst := filepath.Join(t.TempDir(), "patched")
	got, err := Apply(context.Background(), base, nil, dst, nil)
	if err != nil || got != base {
		t.Fatalf("Apply(no patches) = %v, %v; want base itself", got, err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Apply(no patches) created %s", dst)
	}
}

func TestApplyReuseAndDeterminism(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dir := t.TempDir()
	one := f.series("0001-memfd.patch", "0002-luo.patch")
	dstA := filepath.Join(dir, "a")
	if _, err := Apply(ctx, f.base, one, dstA, nil); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(dstA, "sentinel")
	writeFiles(t, dstA, map[string]string{"sentinel": ""})

	// Same base and series: reused as is.
	var log bytes.Buffer
	if _, err := Apply(ctx, f.base, one, dstA, &log); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sentinel); err != nil || !strings.Contains(log.String(), "reusing") {
		t.Errorf("complete copy was not reused (sentinel: %v); log:\n%s", err, log.String())
	}
	// Another series: redone.
	if _, err := Apply(ctx, f.base, f.series("0001-memfd.patch"), dstA, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sentinel); err == nil {
		t.Error("copy made for another series was reused")
	}
	// A mutable base is never trusted.
	mutable := *f.base
	mutable.Mutable = true
	if _, err := Apply(ctx, &mutable, one, dstA, nil); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dstA, map[string]string{"sentinel": ""})
	if _, err := Apply(ctx, &mutable, one, dstA, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sentinel); err == nil {
		t.Error("copy of a mutable tree was reused")
	}
	// Deterministic history: another copy has the same HEAD.
	dstB := filepath.Join(dir, "b")
	if _, err := Apply(ctx, f.base, one, dstB, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := git(t, dstA, "rev-parse", "HEAD"), git(t, dstB, "rev-parse", "HEAD"); a != b {
		t.Errorf("HEADs differ between copies: %s vs %s", a, b)
	}
	if n := git(t, dstB, "rev-list", "--count", "HEAD"); n != "3" {
		t.Errorf("%s commits, want 3 (base + 2 patches)", n)
	}
}

// A new series is applied by resetting the earlier copy to its base commit:
// a file that the previous series changed and the new one does not must get
// a new mtime (newer than the object built from the patched content, or make
// keeps that object), and files no series touches keep the base's.
func TestApplyResetsAnEarlierCopy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name := range baseFiles {
		if err := os.Chtimes(filepath.Join(f.base.Dir, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "patched")
	if _, err := Apply(ctx, f.base, f.series("0001-memfd.patch", "0002-luo.patch"), dst, nil); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	var log bytes.Buffer
	if _, err := Apply(ctx, f.base, f.series("0002-luo.patch"), dst, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "reset") {
		t.Errorf("the earlier copy was not reset to its base; log:\n%s", log.String())
	}
	for _, c := range []struct {
		file  string
		fresh bool
	}{
		{"mm/memfd.c", true},   // changed by the previous series only
		{"kernel/luo.c", true}, // changed by both
		{"Makefile", false},    // changed by neither: keeps the base's mtime
	} {
		st, err := os.Stat(filepath.Join(dst, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if fresh := st.ModTime().After(before); fresh != c.fresh {
			t.Errorf("%s: mtime %v, fresh=%v, want fresh=%v", c.file, st.ModTime(), fresh, c.fresh)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "mm/memfd.c")); err != nil || string(b) != baseFiles["mm/memfd.c"] {
		t.Errorf("mm/memfd.c = %q, %v; want the base's content", b, err)
	}

	// An interrupted git am is abandoned, and a patch's new file goes.
	if _, err := Apply(ctx, f.base, f.series("0004-new-file.patch"), dst, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dst, ".git", "rebase-apply"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, f.base, f.series("0001-memfd.patch"), dst, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "include/new.h")); err == nil {
		t.Error("include/new.h, added by the previous series only, is still there")
	}

	// A copy whose git history is broken is made again from the base.
	if err := os.RemoveAll(filepath.Join(dst, ".git", "objects")); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, err := Apply(ctx, f.base, f.series("0002-luo.patch"), dst, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "copying") {
		t.Errorf("a broken copy was not made again; log:\n%s", log.String())
	}
	if b, err := os.ReadFile(filepath.Join(dst, "kernel/luo.c")); err != nil || !strings.Contains(string(b), "GAMMA") {
		t.Errorf("kernel/luo.c = %q, %v; want 0002 applied", b, err)
	}
}

func TestApplyRefusesOverlap(t *testing.T) {
	f := newFixture(t)
	for _, dst := range []string{f.base.Dir, filepath.Join(f.base.Dir, "sub"), filepath.Dir(f.base.Dir)} {
		if _, err := Apply(context.Background(), f.base, f.series("0001-memfd.patch"), dst, nil); err == nil {
			t.Errorf("Apply into %s (overlapping the base %s) succeeded", dst, f.base.Dir)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(f.base.Dir, "mm/memfd.c")); string(b) != baseFiles["mm/memfd.c"] {
		t.Error("the base tree was modified")
	}
}
