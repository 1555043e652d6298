// Package kernels turns a kernel specification ("patched", "stock", a
// user tree, a prebuilt bzImage) into a booted-ready bootable.Kernel:
// fetching the base source, applying the series, configuring and building
// through the content-hash cache.
package kernels

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/bootable"
	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kbuild"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/series"
)

// Spec names a kernel:
//
//	patched        the pinned Debian base plus kernel/series (default)
//	stock          the pinned Debian base alone
//	tree:DIR       a developer's own tree, built out of tree
//	bzimage:PATH   a prebuilt bzImage (no build)
//	debian:X.Y     Debian's newest linux-source-X.Y of the release
//	               suites (ReleaseSuites()), stock
//	debian:X.Y.Z   the newest Debian revision of upstream X.Y.Z, stock
type Spec string

// ReleaseSuites returns the Debian suites a debian: spec is looked up in.
func ReleaseSuites() []string { return []string{"trixie-backports", "sid"} }

// releaseListsMaxAge is how long the apt lists of ReleaseSuites are
// reused without an update: sid's lists are large, and a qualification
// run resolves the same spec many times.
const releaseListsMaxAge = 6 * time.Hour

var debianRE = regexp.MustCompile(`^([0-9]+\.[0-9]+)(\.[0-9]+)?$`)

// Valid reports whether s is a kernel spec this package understands.
func (s Spec) Valid() error {
	switch {
	case s == "patched", s == "stock":
		return nil
	case strings.HasPrefix(string(s), "tree:") && len(s) > len("tree:"),
		strings.HasPrefix(string(s), "bzimage:") && len(s) > len("bzimage:"):
		return nil
	case strings.HasPrefix(string(s), "debian:"):
		_, _, err := s.debianRelease()
		return err
	}
	return fmt.Errorf("unknown kernel %q: want patched, stock, tree:DIR, bzimage:PATH, debian:X.Y or debian:X.Y.Z", string(s))
}

// debianRelease splits debian:X.Y[.Z] into the major ("X.Y") and the
// upstream release ("X.Y.Z", or "" for the newest).
func (s Spec) debianRelease() (major, upstream string, err error) {
	v := strings.TrimPrefix(string(s), "debian:")
	m := debianRE.FindStringSubmatch(v)
	if m == nil {
		return "", "", fmt.Errorf("kernel %q: a Debian kernel is debian:X.Y (newest X.Y.z) or debian:X.Y.Z, such as debian:7.2 or debian:7.2.12", string(s))
	}
	if m[2] != "" {
		upstream = v
	}
	return m[1], upstream, nil
}

// Name returns the label used in reports and initramfs paths.
func (s Spec) Name() string {
	switch {
	case strings.HasPrefix(string(s), "debian:"):
		return "debian-" + strings.TrimPrefix(string(s), "debian:")
	case strings.HasPrefix(string(s), "tree:"):
		return "tree"
	case strings.HasPrefix(string(s), "bzimage:"):
		return "bzimage"
	}
	return string(s)
}

// Options configure kernel preparation.
type Options struct {
	// RepoRoot holds kernel/ and configs/.
	RepoRoot string
	CacheDir string
	// Fragments override configs/*.config and the flavour's fragments.
	Fragments []string
	Progress  io.Writer
	Jobs      int
	// Flavour is the build flavour (default normal): its fragments go
	// on top of configs/*.config and it boots with its command line.
	Flavour flavour.Flavour
}

// Fragments returns the config fragments of the repository.
func Fragments(repoRoot string) ([]string, error) {
	fs, err := filepath.Glob(filepath.Join(repoRoot, "configs", "*.config"))
	if err != nil || len(fs) == 0 {
		return nil, fmt.Errorf("no config fragments in %s/configs", repoRoot)
	}
	return fs, nil
}

// FlavourFragments returns the fragments of flavour f: configs/*.config
// and the flavour's own fragment (required), and the flavour's series
// fragment when the repository has one (optional: its options apply only
// where the tree defines them).
func FlavourFragments(repoRoot string, f flavour.Flavour) (required, optional []string, err error) {
	required, err = Fragments(repoRoot)
	if err != nil {
		return nil, nil, err
	}
	if name := f.Fragment(); name != "" {
		p := filepath.Join(repoRoot, "configs", name)
		if _, err := os.Stat(p); err != nil {
			return nil, nil, fmt.Errorf("the %s flavour's config fragment: %w", f, err)
		}
		required = append(required, p)
	}
	if name := f.SeriesFragment(); name != "" {
		p := filepath.Join(repoRoot, "configs", name)
		if _, err := os.Stat(p); err == nil {
			optional = append(optional, p)
		} else if !os.IsNotExist(err) {
			return nil, nil, fmt.Errorf("the %s flavour's series fragment: %w", f, err)
		}
	}
	return required, optional, nil
}

// Prepare makes spec bootable, building it if the cache does not have it.
func Prepare(ctx context.Context, spec Spec, o Options) (bootable.Kernel, *kbuild.Kernel, error) {
	if p, ok := strings.CutPrefix(string(spec), "bzimage:"); ok {
		if !o.Flavour.IsNormal() {
			return bootable.Kernel{}, nil, fmt.Errorf("prebuilt kernel %s: the %s flavour is a build configuration, and a prebuilt bzImage has its own; "+
				"build the kernel with it instead (patched, stock or -tree DIR with -flavour %s)", p, o.Flavour, o.Flavour)
		}
		if _, err := os.Stat(p); err != nil {
			return bootable.Kernel{}, nil, fmt.Errorf("prebuilt kernel: %w", err)
		}
		return bootable.Kernel{Name: spec.Name(), BzImage: p, Release: "prebuilt " + p}, nil, nil
	}
	if o.CacheDir == "" {
		d, err := cache.Dir()
		if err != nil {
			return bootable.Kernel{}, nil, fmt.Errorf("finding the cache directory: %w", err)
		}
		o.CacheDir = d
	}
	frags, optional := o.Fragments, []string(nil)
	if len(frags) == 0 {
		var err error
		if frags, optional, err = FlavourFragments(o.RepoRoot, o.Flavour); err != nil {
			return bootable.Kernel{}, nil, err
		}
	}
	var src *kernelsrc.Source
	var extra []byte
	var seed *kbuild.Seed
	switch {
	case strings.HasPrefix(string(spec), "tree:"):
		var err error
		src, err = kernelsrc.Tree(strings.TrimPrefix(string(spec), "tree:"))
		if err != nil {
			return bootable.Kernel{}, nil, err
		}
	case spec == "stock" || spec == "patched":
		major, err := kernelsrc.ReadBase(o.RepoRoot)
		if err != nil {
			return bootable.Kernel{}, nil, err
		}
		base, err := kernelsrc.Debian(ctx, kernelsrc.DebianOptions{Major: major, CacheDir: o.CacheDir, Log: o.Progress})
		if err != nil {
			return bootable.Kernel{}, nil, err
		}
		src = base
		patchedDir, patchedID := patchedTree(o.CacheDir, base)
		seed = sibling(spec, o.CacheDir, base, o.Flavour)
		if spec == "patched" {
			ps, err := series.Load(o.RepoRoot)
			if err != nil {
				return bootable.Kernel{}, nil, err
			}
			h := series.Hash(ps)
			extra = []byte(h)
			// A changed series is re-applied in the same tree
			// (patchedTree), which keeps the base's mtimes, so only
			// what the patches touch rebuilds.
			if src, err = series.Apply(ctx, base, ps, patchedDir, o.Progress); err != nil {
				return bootable.Kernel{}, nil, err
			}
			if len(ps) > 0 {
				patched := *src
				patched.ID = patchedID
				src = &patched
			}
		}
	case strings.HasPrefix(string(spec), "debian:"):
		// Another Debian release, always stock: the series applies to
		// its pinned base only.
		major, upstream, err := spec.debianRelease()
		if err != nil {
			return bootable.Kernel{}, nil, err
		}
		src, err = kernelsrc.Debian(ctx, kernelsrc.DebianOptions{
			Major: major, Upstream: upstream, Suites: ReleaseSuites(), ListsMaxAge: releaseListsMaxAge,
			CacheDir: o.CacheDir, Log: o.Progress,
		})
		if err != nil {
			return bootable.Kernel{}, nil, err
		}
	default:
		return bootable.Kernel{}, nil, spec.Valid()
	}
	k, err := kbuild.Build(ctx, kbuild.Options{
		Source: src, Fragments: frags, Optional: optional, CacheDir: o.CacheDir, Name: spec.Name(),
		Jobs: o.Jobs, Progress: o.Progress, Extra: extra, Flavour: o.Flavour, Seed: seed,
	})
	if err != nil {
		return bootable.Kernel{}, nil, err
	}
	return bootable.Kernel{Name: spec.Name(), BzImage: k.BzImage, Release: k.Release, SrcDir: src.Dir,
		Flavour: o.Flavour, Config: k.Config}, k, nil
}

// patchedTree returns where the patched tree of base lives and the Source.ID
// its build uses. One patched tree and one object directory per base: a
// changed series is re-applied in the same tree, and the series hash goes
// into the artefact key (kbuild.Options.Extra) instead of the ID.
func patchedTree(cacheDir string, base *kernelsrc.Source) (dir, id string) {
	return filepath.Join(cacheDir, "trees", cache.Key([]byte(base.ID))+"-series"), base.ID + "+series"
}

// sibling returns the seed for building spec ("stock" or "patched") of
// base in flavour f: the other one of the pair, whose tree differs only in
// the files the series touches. kbuild uses it only for a cold object
// directory, and only if the sibling's build completed on its tree as it
// is now.
func sibling(spec Spec, cacheDir string, base *kernelsrc.Source, f flavour.Flavour) *kbuild.Seed {
	if spec == "patched" {
		return &kbuild.Seed{SrcDir: base.Dir, ObjDir: kbuild.ObjDir(cacheDir, base.ID, f)}
	}
	dir, id := patchedTree(cacheDir, base)
	return &kbuild.Seed{SrcDir: dir, ObjDir: kbuild.ObjDir(cacheDir, id, f)}
}
