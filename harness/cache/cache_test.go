package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDirFrom(t *testing.T) {
	home := func() (string, error) { return "/home/u", nil }
	noHome := func() (string, error) { return "", errors.New("no $HOME") }
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		home    func() (string, error)
		want    string
		wantErr bool
	}{
		{"override", map[string]string{EnvDir: "/c", "XDG_CACHE_HOME": "/x"}, home, "/c", false},
		{"override relative is made absolute", map[string]string{EnvDir: "rel"}, home, filepath.Join(cwd, "rel"), false},
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/x"}, home, "/x/memfd-luo", false},
		{"home", nil, home, "/home/u/.cache/memfd-luo", false},
		{"no home", nil, noHome, "", true},
		{"override without home", map[string]string{EnvDir: "/c"}, noHome, "/c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dirFrom(func(k string) string { return tc.env[k] }, tc.home)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("dir = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDirCreates(t *testing.T) {
	want := filepath.Join(t.TempDir(), "a", "b")
	t.Setenv(EnvDir, want)
	got, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}
	if st, err := os.Stat(want); err != nil || !st.IsDir() {
		t.Errorf("Dir() did not create %s: %v", want, err)
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b [][]byte
		same bool
	}{
		{"equal", [][]byte{[]byte("x"), []byte("y")}, [][]byte{[]byte("x"), []byte("y")}, true},
		{"boundaries matter", [][]byte{[]byte("ab"), []byte("c")}, [][]byte{[]byte("a"), []byte("bc")}, false},
		{"empty part counts", [][]byte{[]byte("a")}, [][]byte{[]byte("a"), nil}, false},
		{"order matters", [][]byte{[]byte("a"), []byte("b")}, [][]byte{[]byte("b"), []byte("a")}, false},
		{"nil equals empty", [][]byte{nil}, [][]byte{{}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ka, kb := Key(tc.a...), Key(tc.b...)
			if len(ka) != 16 {
				t.Errorf("len(Key) = %d, want 16", len(ka))
			}
			if (ka == kb) != tc.same {
				t.Errorf("Key(a)=%s Key(b)=%s, want same=%v", ka, kb, tc.same)
			}
		})
	}
	// Pinned so that cache keys do not change by accident between releases.
	if got, want := Key([]byte("memfd-luo")), "5232d135cf9e304e"; got != want {
		t.Errorf("Key(memfd-luo) = %s, want %s", got, want)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, data := range []string{"one", "two, longer", ""} {
		if err := WriteFileAtomic(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), nil); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestMarkers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mark      func(dir string) error
		wantDone  bool
		wantStamp string
	}{
		{"unmarked", func(string) error { return nil }, false, ""},
		{"marked", MarkDone, true, ""},
		{"stamped", func(d string) error { return MarkDoneWith(d, "abc") }, true, "abc"},
		{"unmarked again", func(d string) error {
			if err := MarkDone(d); err != nil {
				return err
			}
			return Unmark(d)
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := tc.mark(d); err != nil {
				t.Fatal(err)
			}
			if got := IsDone(d); got != tc.wantDone {
				t.Errorf("IsDone = %v, want %v", got, tc.wantDone)
			}
			stamp, ok := DoneStamp(d)
			if ok != tc.wantDone || stamp != tc.wantStamp {
				t.Errorf("DoneStamp = %q,%v; want %q,%v", stamp, ok, tc.wantStamp, tc.wantDone)
			}
		})
	}
	if err := MarkDone(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("MarkDone of a missing directory succeeded")
	}
	if err := Unmark(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("Unmark of a missing directory: %v", err)
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "x.lock")
	unlock, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: err = %v, want deadline exceeded", err)
	}
	unlock()
	unlock2, err := Lock(context.Background(), p)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
