package kbuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/objseed"
)

// Seed is a sibling build that may seed a cold object directory: a tree of
// the same base, a few files apart (the stock and the patched kernel), in
// the same flavour. Build uses it only when its own object directory is
// missing or never finished a build (objseed.Fresh), the source is not
// Mutable, and the sibling's object directory carries the stamp of a
// completed build of SrcDir in its present state (see objseed).
type Seed struct {
	SrcDir string // the sibling's source tree
	ObjDir string // its object directory: ObjDir(cache, its Source.ID, the same flavour)
}

// ObjDir returns the object directory Build uses under cacheDir for the
// source whose Source.ID is sourceID, in flavour f.
func ObjDir(cacheDir, sourceID string, f flavour.Flavour) string {
	key := cache.Key([]byte(sourceID))
	if !f.IsNormal() {
		key += "-" + f.String()
	}
	return filepath.Join(cacheDir, "obj", key)
}

// seedLockWait bounds the wait for the seed's lock: a sibling busy for
// longer is being rebuilt, and has no stamp while it is.
const seedLockWait = 2 * time.Minute

// seed fills obj, which the caller has locked, from o.Seed when that is
// allowed and possible. It never fails the build: why it did not seed goes
// to the log, and to the progress lines too when the seed had a stamp;
// the build then goes on cold (objseed.Seed leaves no half-made directory
// behind). It returns what seeding did, or nil when it did not seed.
func seed(ctx context.Context, o Options, src, obj string, log io.Writer, pr *progress) *objseed.Result {
	s := o.Seed
	if s == nil || o.Source.Mutable || !objseed.Fresh(obj) {
		return nil
	}
	seedObj, err := filepath.Abs(s.ObjDir)
	if err != nil {
		fmt.Fprintf(log, "# not seeding from %s: %v\n", s.ObjDir, err)
		return nil
	}
	seedSrc, err := filepath.Abs(s.SrcDir)
	if err != nil {
		fmt.Fprintf(log, "# not seeding from %s: %v\n", seedObj, err)
		return nil
	}
	if seedObj == obj {
		return nil
	}
	// Cheap check before waiting for the sibling's lock; Seed checks
	// again under it.
	if _, err := objseed.ReadStamp(seedObj); err != nil {
		fmt.Fprintf(log, "# not seeding from %s: no completed build there (%v)\n", seedObj, err)
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, seedLockWait)
	unlock, err := cache.Lock(lctx, seedObj+".lock")
	cancel()
	if err != nil {
		fmt.Fprintf(log, "# not seeding from %s: %v\n", seedObj, err)
		if ctx.Err() == nil {
			pr.printf("not seeding obj dir from %s, building cold: %v", seedObj, err)
		}
		return nil
	}
	defer unlock()
	start := time.Now()
	res, err := objseed.Seed(ctx, objseed.Options{SeedObj: seedObj, SeedSrc: seedSrc, Obj: obj, Src: src,
		Flavour: o.Flavour.String(), Log: log})
	if err != nil {
		fmt.Fprintf(log, "# not seeding from %s, building cold: %v\n", seedObj, err)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, objseed.ErrUnusable): // stamped, yet refused: say why
			pr.printf("not seeding obj dir from %s, building cold: %v", seedObj, err)
		default:
			pr.printf("seeding obj dir from %s failed, building cold: %v", seedObj, err)
		}
		return nil
	}
	fmt.Fprintf(log, "# seeded %s from %s in %s: %d files differ, %d targets to rebuild\n",
		obj, seedObj, time.Since(start).Round(time.Millisecond), len(res.Differ), len(res.Invalidated))
	pr.printf("seeding obj dir from %s: %s, %s to rebuild", seedObj,
		plural(len(res.Differ), "file differs", "files differ"), plural(len(res.Invalidated), "target", "targets"))
	return res
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// stamp marks obj as a completed build of src in the tree state
// fingerprint, so that it may seed a sibling. A failure only costs that.
func stamp(o Options, src, obj, fingerprint string, log io.Writer) {
	st, err := objseed.NewStamp(src, obj, o.Flavour.String(), fingerprint)
	if err == nil {
		err = objseed.WriteStamp(obj, st)
	}
	if err != nil {
		fmt.Fprintf(log, "# %s not stamped as a seed: %v\n", obj, err)
	}
}
