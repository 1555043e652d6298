package kernels

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kbuild"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
)

func TestFlavourFragments(t *testing.T) {
	repo := func(t *testing.T, files ...string) string {
		t.Helper()
		root := t.TempDir()
		for _, f := range files {
			p := filepath.Join(root, "configs", f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("CONFIG_X=y\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	for _, tc := range []struct {
		name          string
		files         []string
		flavour       flavour.Flavour
		wantRequired  []string
		wantOptional  []string
		wantErrSubstr string
	}{
		{"normal ignores the flavours", []string{"a.config", "b.config", "flavours/debug.config", "flavours/debug-series.config"}, flavour.Normal,
			[]string{"a.config", "b.config"}, nil, ""},
		{"zero value is normal", []string{"a.config", "flavours/debug.config"}, "", []string{"a.config"}, nil, ""},
		{"debug adds its fragment and the optional series fragment", []string{"a.config", "flavours/debug.config", "flavours/debug-series.config"}, flavour.Debug,
			[]string{"a.config", "flavours/debug.config"}, []string{"flavours/debug-series.config"}, ""},
		{"debug without a series fragment", []string{"a.config", "flavours/debug.config"}, flavour.Debug,
			[]string{"a.config", "flavours/debug.config"}, nil, ""},
		{"debug fragment missing", []string{"a.config"}, flavour.Debug, nil, nil, "debug flavour's config fragment"},
		{"no base fragments", []string{"flavours/debug.config"}, flavour.Debug, nil, nil, "no config fragments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := repo(t, tc.files...)
			req, opt, err := FlavourFragments(root, tc.flavour)
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rel := func(ps []string) []string {
				var out []string
				for _, p := range ps {
					r, _ := filepath.Rel(filepath.Join(root, "configs"), p)
					out = append(out, r)
				}
				return out
			}
			if got := rel(req); !reflect.DeepEqual(got, tc.wantRequired) {
				t.Errorf("required %v, want %v", got, tc.wantRequired)
			}
			if got := rel(opt); !reflect.DeepEqual(got, tc.wantOptional) {
				t.Errorf("optional %v, want %v", got, tc.wantOptional)
			}
		})
	}
}

func TestPrepareRefusesAFlavouredPrebuiltKernel(t *testing.T) {
	img := filepath.Join(t.TempDir(), "bzImage")
	if err := os.WriteFile(img, []byte("MZ"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flavour flavour.Flavour
		wantErr bool
	}{
		{flavour.Normal, false},
		{flavour.Debug, true},
	} {
		t.Run(tc.flavour.String(), func(t *testing.T) {
			k, _, err := Prepare(context.Background(), Spec("bzimage:"+img), Options{Flavour: tc.flavour})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "prebuilt") || !strings.Contains(err.Error(), "-flavour debug") {
					t.Fatalf("err = %v, want a refusal naming the prebuilt image and the flag", err)
				}
				return
			}
			if err != nil || k.BzImage != img {
				t.Fatalf("Prepare = %+v, %v", k, err)
			}
		})
	}
}

// stock and patched seed each other's cold object directory: each one's
// seed is the tree and object directory the other one builds in, in the
// same flavour.
func TestSibling(t *testing.T) {
	cacheDir := "/cache"
	base := &kernelsrc.Source{Dir: "/cache/src/7.3.4-1/linux-source-7.3", ID: "debian:linux-source-7.3=7.3.4-1"}
	patchedDir, patchedID := patchedTree(cacheDir, base)
	for _, f := range []flavour.Flavour{flavour.Normal, flavour.Debug} {
		builds := map[Spec]kbuild.Seed{ // where each one builds
			"stock":   {SrcDir: base.Dir, ObjDir: kbuild.ObjDir(cacheDir, base.ID, f)},
			"patched": {SrcDir: patchedDir, ObjDir: kbuild.ObjDir(cacheDir, patchedID, f)},
		}
		for spec, other := range map[Spec]Spec{"stock": "patched", "patched": "stock"} {
			t.Run(f.String()+"/"+string(spec), func(t *testing.T) {
				got := sibling(spec, cacheDir, base, f)
				if got == nil || *got != builds[other] {
					t.Errorf("seed = %+v, want %s's build %+v", got, other, builds[other])
				}
				if got != nil && got.ObjDir == builds[spec].ObjDir {
					t.Errorf("%s would seed from its own object directory %s", spec, got.ObjDir)
				}
				if !f.IsNormal() && got != nil && !strings.HasSuffix(got.ObjDir, "-"+f.String()) {
					t.Errorf("seed %s is not of the %s flavour", got.ObjDir, f)
				}
			})
		}
	}
}

func TestSpec(t *testing.T) {
	tests := []struct {
		spec  Spec
		name  string
		valid bool
	}{
		{"patched", "patched", true},
		{"stock", "stock", true},
		{"tree:/src/linux", "tree", true},
		{"bzimage:/tmp/bzImage", "bzimage", true},
		{"debian:7.2", "debian-7.2", true},
		{"debian:7.2.12", "debian-7.2.12", true},
		{"debian:7", "debian-7", false},
		{"debian:7.2.12.1", "debian-7.2.12.1", false},
		{"debian:latest", "debian-latest", false},
		{"tree:", "tree", false},
		{"stokc", "stokc", false},
	}
	for _, tc := range tests {
		if got := tc.spec.Name(); got != tc.name {
			t.Errorf("%q.Name() = %q, want %q", tc.spec, got, tc.name)
		}
		err := tc.spec.Valid()
		if (err == nil) != tc.valid {
			t.Errorf("%q.Valid() = %v, want valid %v", tc.spec, err, tc.valid)
		}
		if err != nil && !strings.Contains(err.Error(), string(tc.spec)) {
			t.Errorf("%q.Valid() = %v: does not name the spec", tc.spec, err)
		}
	}
}
