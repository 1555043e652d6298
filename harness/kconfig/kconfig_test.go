package kconfig

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, ".sh") || filepath.Base(p) == "make" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseFragment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []Option
		errLike string
	}{
		{"values", "# comment\nCONFIG_A=y\nCONFIG_B=m\n\nCONFIG_C=\"a b\"\nCONFIG_D=0x10\n# CONFIG_E is not set\n",
			[]Option{{"CONFIG_A", "y"}, {"CONFIG_B", "m"}, {"CONFIG_C", `"a b"`}, {"CONFIG_D", "0x10"}, {"CONFIG_E", "n"}}, ""},
		{"spaces around", "  CONFIG_A=y  \n", []Option{{"CONFIG_A", "y"}}, ""},
		{"empty", "", nil, ""},
		{"garbage", "CONFIG_A=y\nKEXEC=y\n", nil, ":2:"},
		{"no value", "CONFIG_A=\n", nil, "has no value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.config")
			writeFiles(t, filepath.Dir(p), map[string]string{"x.config": tc.in})
			got, err := ParseFragment(p)
			if tc.errLike != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errLike) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v, want it to name %s and mention %q", err, p, tc.errLike)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := ParseFragment(filepath.Join(t.TempDir(), "missing.config")); err == nil || !strings.Contains(err.Error(), "missing.config") {
		t.Errorf("missing fragment: err = %v", err)
	}
}

func TestParse(t *testing.T) {
	got := Parse([]byte("#\n# Linux/x86_64 7.3.4 Kernel Configuration\n#\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"x=y\"\nCONFIG_A=m\n"))
	want := map[string]string{"CONFIG_A": "m", "CONFIG_B": "n", "CONFIG_S": `"x=y"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %v, want %v", got, want)
	}
}

// synthetic is a tiny Kconfig tree exercising what Lookup must understand.
var synthetic = map[string]string{
	"Kconfig": `mainmenu "Test"
source "arch/$(SRCARCH)/Kconfig"
source "kernel/Kconfig"
if MMU
source "mm/Kconfig"
endif
`,
	"arch/x86/Kconfig": `config X86
	def_bool y
	select ARCH_SUPPORTS_LU
`,
	"arch/arm64/Kconfig": `config LIVEUPDATE
	bool "wrong arch"
	depends on ARM64_ONLY
`,
	"kernel/Kconfig": `config MMU
	def_bool y

config ARCH_SUPPORTS_LU
	bool

menu "Live update"
	depends on ARCH_SUPPORTS_LU

config LIVEUPDATE
	bool "Live Update Orchestrator"
	depends on KEXEC_HANDOVER
	depends on !DEFERRED_INIT && \
		   64BIT
	help
	  Help text that mentions
	  depends on NOT_A_DEPENDENCY
	  config NOT_AN_ENTRY

	  still help.

config KEXEC_HANDOVER
	bool "KHO"
	select MEMFD_CREATE if LIVEUPDATE
endmenu
rsource "sub/Kconfig.extra"
`,
	"kernel/sub/Kconfig.extra": `menuconfig EXTRA
	tristate "Extra"
	default n
`,
	"mm/Kconfig": `config MEMFD_CREATE
	bool "memfd_create" if EXPERT

config SECRETMEM
	def_bool y
	depends on ARCH_HAS_SET_DIRECT_MAP
config TMPFS
	bool
`,
	"fs/Kconfig.orphan": `config ORPHAN
	bool "not sourced from the top"
	depends on NOWHERE
`,
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, synthetic)
	db := Lookup(dir, []string{"LIVEUPDATE", "EXTRA", "MEMFD_CREATE", "SECRETMEM", "TMPFS", "ORPHAN", "NOT_AN_ENTRY", "NOPE"})
	for _, tc := range []struct {
		name       string
		want       []Entry
		selectedBy []string
	}{
		{"LIVEUPDATE", []Entry{{
			File: "kernel/Kconfig", Line: 10,
			DependsOn: []string{"depends on KEXEC_HANDOVER", "depends on !DEFERRED_INIT && 64BIT"},
			Enclosing: []string{`menu "Live update": depends on ARCH_SUPPORTS_LU`},
			Prompt:    true,
		}}, nil},
		{"EXTRA", []Entry{{File: "kernel/sub/Kconfig.extra", Line: 1, Prompt: true}}, nil},
		{"MEMFD_CREATE", []Entry{{
			File: "mm/Kconfig", Line: 1,
			DependsOn: []string{"prompt only if EXPERT"},
			Enclosing: []string{"if MMU"},
			Prompt:    true,
		}}, []string{"KEXEC_HANDOVER if LIVEUPDATE"}},
		{"SECRETMEM", []Entry{{File: "mm/Kconfig", Line: 4, DependsOn: []string{"depends on ARCH_HAS_SET_DIRECT_MAP"}, Enclosing: []string{"if MMU"}}}, nil},
		{"TMPFS", []Entry{{File: "mm/Kconfig", Line: 7, Enclosing: []string{"if MMU"}}}, nil},
		{"ORPHAN", []Entry{{File: "fs/Kconfig.orphan", Line: 1, DependsOn: []string{"depends on NOWHERE"}, Prompt: true}}, nil},
		{"NOT_AN_ENTRY", nil, nil},
		{"NOPE", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := db.Symbols[tc.name]
			var got []Entry
			var sel []string
			if s != nil {
				got, sel = s.Entries, s.SelectedBy
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("entries = %#v\nwant %#v", got, tc.want)
			}
			if !reflect.DeepEqual(sel, tc.selectedBy) {
				t.Errorf("selected by %q, want %q", sel, tc.selectedBy)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, synthetic)
	final := []byte("CONFIG_X86=y\nCONFIG_MMU=y\n# CONFIG_KEXEC_HANDOVER is not set\nCONFIG_EXTRA=m\nCONFIG_STR=\"abc\"\nCONFIG_NUM=0x10\n")
	for _, tc := range []struct {
		name      string
		requested []Option
		dropped   []string // names, in order
		msgLike   []string
	}{
		{"all kept", []Option{{"CONFIG_X86", "y"}, {"CONFIG_EXTRA", "m"}, {"CONFIG_STR", `"abc"`}, {"CONFIG_NUM", "0x10"}}, nil, nil},
		{"n satisfied by unset and by absent", []Option{{"CONFIG_KEXEC_HANDOVER", "n"}, {"CONFIG_ABSENT", "n"}}, nil, nil},
		{"last request wins", []Option{{"CONFIG_EXTRA", "y"}, {"CONFIG_EXTRA", "m"}}, nil, nil},
		{
			"dropped by depends", []Option{{"CONFIG_LIVEUPDATE", "y"}}, []string{"CONFIG_LIVEUPDATE"},
			[]string{
				"CONFIG_LIVEUPDATE=y requested but the final .config has it unset",
				"it depends on: depends on KEXEC_HANDOVER [=n]",
				"DEFERRED_INIT [=n]",
				`menu "Live update": depends on ARCH_SUPPORTS_LU [=n]`,
				"(defined in kernel/Kconfig:10)",
			},
		},
		{
			"prompt condition and selectors", []Option{{"CONFIG_MEMFD_CREATE", "y"}}, []string{"CONFIG_MEMFD_CREATE"},
			[]string{"prompt only if EXPERT [=n]", "if MMU [=y]", "also selected by: KEXEC_HANDOVER [=n] if LIVEUPDATE [=n]", "(defined in mm/Kconfig:1)"},
		},
		{
			"no prompt", []Option{{"CONFIG_TMPFS", "y"}}, []string{"CONFIG_TMPFS"},
			[]string{"has no prompt, so only a select sets it"},
		},
		{"other value", []Option{{"CONFIG_EXTRA", "y"}}, []string{"CONFIG_EXTRA"}, []string{"has CONFIG_EXTRA=m"}},
		{"string differs", []Option{{"CONFIG_STR", `"abd"`}}, []string{"CONFIG_STR"}, []string{`CONFIG_STR="abd" requested but the final .config has CONFIG_STR="abc"`}},
		{"not set requested but set", []Option{{"CONFIG_X86", "n"}}, []string{"CONFIG_X86"}, []string{"# CONFIG_X86 is not set requested", "has CONFIG_X86=y"}},
		{"unknown", []Option{{"CONFIG_TYPO", "y"}}, []string{"CONFIG_TYPO"}, []string{"no Kconfig file in the tree defines it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.requested, final, dir)
			if tc.dropped == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var de *DroppedError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DroppedError", err)
			}
			var names []string
			for _, d := range de.Dropped {
				names = append(names, d.Option.Name)
			}
			if !reflect.DeepEqual(names, tc.dropped) {
				t.Errorf("dropped %v, want %v", names, tc.dropped)
			}
			for _, w := range tc.msgLike {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%s", w, err)
				}
			}
		})
	}
}

func TestAnnotate(t *testing.T) {
	final := map[string]string{"CONFIG_A": "y", "CONFIG_B_2": "m"}
	for _, tc := range []struct{ in, want string }{
		{"depends on A && !B_2", "depends on A [=y] && !B_2 [=m]"},
		{"depends on C || (A=y)", "depends on C [=n] || (A [=y]=y)"},
		{`depends on CMDLINE != "x Y"`, `depends on CMDLINE [=n] != "x Y"`},
		{"if 64BIT", "if 64BIT [=n]"},
		{"depends on X86 && 0x10 > 10", "depends on X86 [=n] && 0x10 > 10"},
	} {
		if got := annotate(tc.in, final); got != tc.want {
			t.Errorf("annotate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// fakeMake stands for the kernel's make: allnoconfig writes a .config,
// olddefconfig drops CONFIG_B=y unless CONFIG_A=y, like a "depends on A".
const fakeMake = `#!/bin/sh
obj=
for a in "$@"; do
	case "$a" in
	O=*) obj=${a#O=} ;;
	allnoconfig) printf '# CONFIG_A is not set\n# CONFIG_B is not set\n' > "$obj/.config" ;;
	olddefconfig)
		if ! grep -q '^CONFIG_A=y' "$obj/.config"; then
			sed -i 's/^CONFIG_B=y$/# CONFIG_B is not set/' "$obj/.config"
		fi ;;
	fail) echo "scripts/kconfig/conf: error: boom" >&2; exit 2 ;;
	esac
done
echo "make $*"
`

// fakeMerge stands for merge_config.sh -m -O OBJ BASE FRAGMENTS...
const fakeMerge = `#!/bin/sh
shift; shift; obj=$1; shift; base=$1; shift
cat "$base" "$@" > "$obj/.config.new" && mv "$obj/.config.new" "$obj/.config"
`

func TestConfigure(t *testing.T) {
	bin := t.TempDir()
	writeFiles(t, bin, map[string]string{"make": fakeMake})
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"scripts/kconfig/merge_config.sh": fakeMerge,
		"Kconfig":                         "config A\n\tbool \"A\"\nconfig B\n\tbool \"B\"\n\tdepends on A\n",
	})
	frags := t.TempDir()
	writeFiles(t, frags, map[string]string{
		"a.config": "CONFIG_A=y\n",
		"b.config": "CONFIG_B=y\n",
	})
	for _, tc := range []struct {
		name      string
		fragments []string
		wantCfg   map[string]string
		errLike   []string
	}{
		{"both", []string{"a.config", "b.config"}, map[string]string{"CONFIG_A": "y", "CONFIG_B": "y"}, nil},
		{"dependency missing", []string{"b.config"}, nil, []string{"CONFIG_B=y requested", "depends on A [=n]", "Kconfig:3"}},
		{"missing fragment", []string{"none.config"}, nil, []string{"none.config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := filepath.Join(t.TempDir(), "obj")
			var paths []string
			for _, f := range tc.fragments {
				paths = append(paths, filepath.Join(frags, f))
			}
			var log bytes.Buffer
			cfg, err := Configure(context.Background(), src, obj, paths, &log)
			if tc.errLike != nil {
				if err == nil {
					t.Fatal("Configure succeeded, want an error")
				}
				for _, w := range tc.errLike {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			got := Parse(cfg)
			for k, v := range tc.wantCfg {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, w := range []string{"allnoconfig", "merge_config.sh -m -O " + obj, "olddefconfig", "O=" + obj, "ARCH=x86_64"} {
				if !strings.Contains(log.String(), w) {
					t.Errorf("log does not show %q:\n%s", w, log.String())
				}
			}
		})
	}
}

func TestConfigureMakeFails(t *testing.T) {
	bin := t.TempDir()
	writeFiles(t, bin, map[string]string{"make": "#!/bin/sh\necho 'Makefile:1: *** no such thing.  Stop.' >&2\nexit 2\n"})
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	_, err := Configure(context.Background(), t.TempDir(), t.TempDir(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "make allnoconfig") || !strings.Contains(err.Error(), "no such thing") {
		t.Fatalf("err = %v, want it to name the step and show make's output", err)
	}
}

// realTree finds a kernel tree extracted by kernelsrc, for the checks that
// need real Kconfig files.
func realTree(t *testing.T) string {
	t.Helper()
	roots := []string{os.Getenv("MEMFD_LUO_CACHE")}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".cache", "memfd-luo"))
	}
	for _, r := range roots {
		if r == "" {
			continue
		}
		m, _ := filepath.Glob(filepath.Join(r, "src", "*", "linux-source-*", "Kconfig"))
		if len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	t.Skip("no extracted kernel tree under <cache>/src/*/linux-source-* (run the harness once to fetch it)")
	return ""
}

func TestLookupRealTree(t *testing.T) {
	src := realTree(t)
	db := Lookup(src, []string{"LIVEUPDATE_MEMFD", "TMPFS"})
	s := db.Symbols["LIVEUPDATE_MEMFD"]
	if s == nil || len(s.Entries) == 0 {
		t.Fatalf("LIVEUPDATE_MEMFD not found in %s", src)
	}
	e := s.Entries[0]
	if e.File != "kernel/liveupdate/Kconfig" || !e.Prompt {
		t.Errorf("entry = %+v", e)
	}
	deps := strings.Join(append(e.DependsOn, e.Enclosing...), "; ")
	for _, w := range []string{"depends on LIVEUPDATE", "depends on MEMFD_CREATE", "depends on SHMEM"} {
		if !strings.Contains(deps, w) {
			t.Errorf("LIVEUPDATE_MEMFD dependencies %q lack %q", deps, w)
		}
	}
}

func TestConfigureOptional(t *testing.T) {
	bin := t.TempDir()
	writeFiles(t, bin, map[string]string{"make": fakeMake})
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"scripts/kconfig/merge_config.sh": fakeMerge,
		"Kconfig":                         "config A\n\tbool \"A\"\nconfig B\n\tbool \"B\"\n\tdepends on A\nsource \"mm/Kconfig\"\n",
		"mm/Kconfig":                      "config SERIES_TEST\n\tbool \"a test the series adds\"\n",
	})
	frags := t.TempDir()
	writeFiles(t, frags, map[string]string{
		"a.config":         "CONFIG_A=y\n",
		"series.config":    "# options of the series\nCONFIG_SERIES_TEST=y\nCONFIG_NOT_IN_THIS_TREE=y\n",
		"dropped.config":   "CONFIG_B=y\n",
		"unknown.config":   "CONFIG_NOT_IN_THIS_TREE=y\nCONFIG_ALSO_MISSING=y\n",
		"malformed.config": "CONFIG_X\n",
	})
	for _, tc := range []struct {
		name        string
		fragments   []string
		optional    []string
		wantCfg     map[string]string
		wantSkipped []string
		wantLog     []string
		errLike     []string
	}{
		{
			name: "defined applies, undefined skipped", fragments: []string{"a.config"}, optional: []string{"series.config"},
			wantCfg:     map[string]string{"CONFIG_A": "y", "CONFIG_SERIES_TEST": "y"},
			wantSkipped: []string{"CONFIG_NOT_IN_THIS_TREE"},
			wantLog:     []string{"CONFIG_NOT_IN_THIS_TREE=y from series.config skipped: no Kconfig file in this tree defines NOT_IN_THIS_TREE", "CONFIG_SERIES_TEST=y from series.config applies"},
		},
		{
			name: "all skipped", fragments: []string{"a.config"}, optional: []string{"unknown.config"},
			wantCfg:     map[string]string{"CONFIG_A": "y"},
			wantSkipped: []string{"CONFIG_NOT_IN_THIS_TREE", "CONFIG_ALSO_MISSING"},
		},
		{
			// B is defined, so it applies, and its dependency on A
			// is checked like any other option's.
			name: "defined but dropped", optional: []string{"dropped.config"},
			errLike: []string{"CONFIG_B=y requested", "depends on A [=n]"},
		},
		{name: "malformed optional fragment", optional: []string{"malformed.config"}, errLike: []string{"malformed.config:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := filepath.Join(t.TempDir(), "obj")
			abs := func(names []string) []string {
				var out []string
				for _, n := range names {
					out = append(out, filepath.Join(frags, n))
				}
				return out
			}
			var log bytes.Buffer
			c, err := ConfigureTree(context.Background(), ConfigureOptions{SrcDir: src, ObjDir: obj,
				Fragments: abs(tc.fragments), Optional: abs(tc.optional), Log: &log})
			if tc.errLike != nil {
				if err == nil {
					t.Fatal("ConfigureTree succeeded, want an error")
				}
				for _, w := range tc.errLike {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not mention %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			got := Parse(c.Config)
			for k, v := range tc.wantCfg {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if strings.Contains(k, "NOT_IN_THIS_TREE") || strings.Contains(k, "ALSO_MISSING") {
					t.Errorf("skipped option %s reached the .config", k)
				}
			}
			var skipped []string
			for _, s := range c.Skipped {
				skipped = append(skipped, s.Option.Name)
			}
			if !reflect.DeepEqual(skipped, tc.wantSkipped) {
				t.Errorf("skipped %v, want %v", skipped, tc.wantSkipped)
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(log.String(), w) {
					t.Errorf("log does not say %q:\n%s", w, log.String())
				}
			}
		})
	}
}
