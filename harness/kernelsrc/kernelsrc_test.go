package kernelsrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const fakeMakefile = "# SPDX-License-Identifier: GPL-2.0\nVERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\nEXTRAVERSION =\nNAME = Test\n"

func TestParseMakefileVersion(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		wantErr        bool
	}{
		{"release", fakeMakefile, "7.3.4", false},
		{"rc", "VERSION = 7\nPATCHLEVEL = 4\nSUBLEVEL = 0\nEXTRAVERSION = -rc2\n", "7.4.0-rc2", false},
		{"no sublevel", "VERSION = 7\nPATCHLEVEL = 4\nSUBLEVEL =\nEXTRAVERSION =\n", "7.4", false},
		{"later assignments ignored", "VERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 1\nEXTRAVERSION =\nVERSION = 9\n", "7.3.1", false},
		{"not a kernel", "all:\n\techo hi\n", "", true},
		{"bad patchlevel", "VERSION = 7\nPATCHLEVEL = x\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMakefileVersion([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %q, %v; want %q, err=%v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestReadBase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content *string
		want    string
		errLike string
	}{
		{"plain", ptr("7.3\n"), "7.3", ""},
		{"comment and blanks", ptr("# Debian linux-source major\n\n 7.3 \n"), "7.3", ""},
		{"missing", nil, "", "kernel/BASE"},
		{"empty", ptr(""), "", "exactly one"},
		{"three parts", ptr("7.3.4\n"), "", "MAJOR.MINOR"},
		{"two lines", ptr("7.3\n7.4\n"), "", "exactly one"},
		{"word", ptr("latest\n"), "", "MAJOR.MINOR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.content != nil {
				writeTree(t, root, map[string]string{"kernel/BASE": *tc.content})
			}
			got, err := ReadBase(root)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.errLike)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestTree(t *testing.T) {
	good := map[string]string{"Makefile": fakeMakefile, "Kconfig": "mainmenu \"x\"\n", "arch/x86/Kconfig": "config X86\n\tdef_bool y\n"}
	with := func(extra map[string]string, drop ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		for _, d := range drop {
			delete(m, d)
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		files   map[string]string
		errLike string
	}{
		{"good", good, ""},
		{"no makefile", with(nil, "Makefile"), "not a Linux kernel tree"},
		{"not a kernel makefile", with(map[string]string{"Makefile": "all:\n"}), "VERSION and PATCHLEVEL"},
		{"no kconfig", with(nil, "Kconfig"), "Kconfig is missing"},
		{"no x86", with(nil, "arch/x86/Kconfig"), "arch/x86/Kconfig is missing"},
		{"configured in place", with(map[string]string{".config": "CONFIG_X=y\n"}), "mrproper"},
		{"built in place", with(map[string]string{"include/config/": ""}), "mrproper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.files)
			s, err := Tree(dir)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.errLike)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Source{Dir: dir, Version: "7.3.4", Origin: "tree " + dir, ID: "tree:" + dir, Mutable: true}
			if *s != want {
				t.Errorf("Tree = %+v, want %+v", *s, want)
			}
		})
	}
	if _, err := Tree(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("Tree of a missing directory succeeded")
	}
}
