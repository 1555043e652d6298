package treediff

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	old = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	now = time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
)

// file is one file of a test tree: content, or "->target" for a symlink.
type file struct {
	content string
	mtime   time.Time
}

func build(t *testing.T, files map[string]file) string {
	t.Helper()
	dir := t.TempDir()
	for p, f := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(f.content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// base is the tree every case starts from on both sides.
var base = map[string]file{
	"Makefile":              {"all:\n", old},
	"mm/memfd.c":            {"int memfd;\n", old},
	"include/linux/memfd.h": {"#define MEMFD 1\n", old},
	"kernel/fork.c":         {"int fork;\n", old},
	"source":                {"->.", old},
}

func with(m map[string]file, changes map[string]*file) map[string]file {
	out := map[string]file{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	return out
}

func TestDiff(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b map[string]*file // changes to base on each side
		skip []string
		want []string
	}{
		{name: "identical copies", want: nil},
		{name: "only in a", a: map[string]*file{"mm/old.c": {"x", old}}, want: []string{"mm/old.c"}},
		{name: "only in b", b: map[string]*file{"mm/memfd_luo.c": {"new", now}}, want: []string{"mm/memfd_luo.c"}},
		{name: "deleted in b", b: map[string]*file{"kernel/fork.c": nil}, want: []string{"kernel/fork.c"}},
		{name: "size differs, same mtime", b: map[string]*file{"mm/memfd.c": {"int memfd; int luo;\n", old}}, want: []string{"mm/memfd.c"}},
		{name: "mtime differs, equal content", b: map[string]*file{"mm/memfd.c": {"int memfd;\n", now}}, want: nil},
		{name: "same size, other content and mtime", b: map[string]*file{"include/linux/memfd.h": {"#define MEMFD 2\n", now}}, want: []string{"include/linux/memfd.h"}},
		{
			name: "several, sorted",
			a:    map[string]*file{"z.c": {"z", old}},
			b:    map[string]*file{"include/linux/memfd.h": {"#define MEMFD 2\n", now}, "mm/memfd.c": {"int memfd;\n", now}, "a.c": {"a", now}},
			want: []string{"a.c", "include/linux/memfd.h", "z.c"},
		},
		{name: "symlink to elsewhere", b: map[string]*file{"source": {"->..", old}}, want: []string{"source"}},
		{name: "symlink instead of file", b: map[string]*file{"Makefile": {"->Makefile.real", old}}, want: []string{"Makefile"}},
		{name: ".git is ignored", b: map[string]*file{".git/HEAD": {"ref: refs/heads/base\n", now}}, want: nil},
		{name: "skipped names", b: map[string]*file{".memfd-luo-done": {"", now}}, skip: []string{".memfd-luo-done"}, want: nil},
		{name: "skipped names count when not skipped", b: map[string]*file{".memfd-luo-done": {"", now}}, want: []string{".memfd-luo-done"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, err := Scan(ctx, build(t, with(base, tc.a)), tc.skip...)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Scan(ctx, build(t, with(base, tc.b)), tc.skip...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Diff(ctx, a, b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Diff = %q, want %q", got, tc.want)
			}
			back, err := Diff(ctx, b, a)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tc.want) {
				t.Errorf("Diff the other way = %q, want %q", back, tc.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	ctx := context.Background()
	fp := func(files map[string]file) string {
		t.Helper()
		tr, err := Scan(ctx, build(t, files))
		if err != nil {
			t.Fatal(err)
		}
		return tr.Fingerprint()
	}
	orig := fp(base)
	if again := fp(base); again != orig {
		t.Errorf("the same files elsewhere: fingerprint %s, want %s", again, orig)
	}
	for name, change := range map[string]map[string]*file{
		"mtime":        {"mm/memfd.c": {"int memfd;\n", now}},
		"size":         {"mm/memfd.c": {"int memfd; \n", old}},
		"new file":     {"mm/new.c": {"", old}},
		"removed file": {"mm/memfd.c": nil},
		"symlink":      {"source": {"->..", old}},
	} {
		if got := fp(with(base, change)); got == orig {
			t.Errorf("%s changed, fingerprint did not", name)
		}
	}
	if got := fp(with(base, map[string]*file{".git/index": {"x", now}})); got != orig {
		t.Error(".git changed the fingerprint")
	}
}

func TestDiffCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Scan(ctx, build(t, base))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Scan(ctx, build(t, with(base, map[string]*file{"mm/memfd.c": {"int memfx;\n", now}})))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := Diff(ctx, a, b); err == nil {
		t.Error("Diff with a cancelled context compared files")
	}
}
