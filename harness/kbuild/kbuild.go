// Package kbuild builds a kernel bzImage out of tree and keeps the result in
// the cache, keyed by the source tree's identity, extra inputs and the final
// .config, so an unchanged kernel is never rebuilt.
//
// Cache layout under Options.CacheDir:
//
//	obj/<cache.Key(Source.ID)>[-<flavour>]/     object directory, one per tree and flavour
//	obj/<cache.Key(Source.ID)>[-<flavour>]/.luotest-objdir.json
//	                                            stamp: make bzImage completed here (objseed)
//	obj/<cache.Key(Source.ID)>[-<flavour>].log  log of the latest build in it
//	obj/<cache.Key(Source.ID)>[-<flavour>].lock held while building in it
//	obj/<cache.Key(Source.ID)>[-<flavour>].steps.json
//	                                            steps and time of its latest compiles,
//	                                            to estimate later ones (estimate.go)
//	kernels/<key>/{bzImage,config,build.log,kernel.json}
//
// where key = cache.Key(Source.ID, Extra, final .config[, flavour]). The
// normal flavour has no suffix and no flavour part in its key, so caches
// made before flavours existed stay valid; every other flavour has both,
// so switching flavour never rebuilds the other one's objects.
//
// An object directory that does not exist yet (or never finished a build)
// can be seeded from a sibling's (Options.Seed: the stock kernel for the
// patched one and back, same flavour): when the sibling's is stamped and
// its tree unchanged since, objseed copies it, rewrites its paths and
// deletes the targets that depend on the files the two trees differ in,
// so make rebuilds only those instead of the whole kernel.
package kbuild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
	"github.com/memfd-luo/memfd-luo/harness/flavour"
	"github.com/memfd-luo/memfd-luo/harness/kconfig"
	"github.com/memfd-luo/memfd-luo/harness/kernelsrc"
	"github.com/memfd-luo/memfd-luo/harness/objseed"
)

// Options says what to build.
type Options struct {
	Source    *kernelsrc.Source // tree to build (already patched)
	Fragments []string          // config fragments
	CacheDir  string            // default: cache.Dir()
	Name      string            // label for messages, e.g. "stock", "patched", "tree"
	Jobs      int               // 0 => runtime.NumCPU()
	Progress  io.Writer         // phase lines + a progress line per interval; each line is one Write
	Extra     []byte            // extra bytes mixed into the cache key (e.g. series hash)
	// Flavour is the kernel flavour; it picks the object directory and
	// is part of the cache key (see the package comment).
	Flavour flavour.Flavour
	// Optional fragments apply only where the tree defines their
	// options (kconfig.ConfigureOptions.Optional).
	Optional []string
	Every    time.Duration // progress interval; 0 => 10s
	// Seed is a sibling build whose object directory may seed this
	// one's when it has none yet (see Seed); nil for none.
	Seed *Seed
}

// Kernel is a built (or cached) kernel.
type Kernel struct {
	BzImage string `json:"bzImage"` // path to the cached bzImage
	Config  string `json:"config"`  // path to the final .config
	Release string `json:"release"` // `make -s kernelrelease`
	Origin  string `json:"origin"`  // Source.Origin
	Flavour string `json:"flavour"` // flavour.Flavour
	// Skipped are the optional options the tree does not define.
	Skipped []string      `json:"skipped_options,omitempty"`
	Key     string        `json:"key"`     // cache key
	Cached  bool          `json:"-"`       // true when no build ran
	Elapsed time.Duration `json:"elapsed"` // of this call (of the build, in kernel.json)
	LogPath string        `json:"log"`     // build log
}

// BuildError is a failed configure or compile step.
type BuildError struct {
	Name    string   // Options.Name
	Phase   string   // "configure", "compile", "kernelrelease", "store"
	LogPath string   // full log
	Tail    []string // the most telling lines of compiler output
	Command string   // the command that failed, to rerun it by hand
	Err     error    // underlying error
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kbuild %s: %s failed", e.Name, e.Phase)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if len(e.Tail) > 0 {
		b.WriteString("\ncompiler output:")
		for _, l := range e.Tail {
			b.WriteString("\n  " + l)
		}
	}
	if e.LogPath != "" {
		fmt.Fprintf(&b, "\nfull log: %s", e.LogPath)
	}
	if e.Command != "" {
		fmt.Fprintf(&b, "\nto rerun that step by hand: %s", e.Command)
	}
	return b.String()
}

func (e *BuildError) Unwrap() error { return e.Err }

// Build configures Source with allnoconfig plus Fragments in its object
// directory and returns the cached kernel for that exact tree, Extra and
// .config if there is one; otherwise it builds bzImage and stores it. A
// Mutable source (a user tree) is always rebuilt (make is incremental), since
// its content may have changed under the same identity.
func Build(ctx context.Context, o Options) (*Kernel, error) {
	start := time.Now()
	if o.Source == nil || o.Source.Dir == "" {
		return nil, errors.New("kbuild: no source tree to build")
	}
	if o.CacheDir == "" {
		d, err := cache.Dir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	if o.Name == "" {
		o.Name = "kernel"
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	pr := newProgress(o.Progress, o.Name)
	// make -C changes directory: every path handed to it must be absolute.
	src, err := filepath.Abs(o.Source.Dir)
	if err != nil {
		return nil, fmt.Errorf("kbuild %s: %w", o.Name, err)
	}
	if o.CacheDir, err = filepath.Abs(o.CacheDir); err != nil {
		return nil, fmt.Errorf("kbuild %s: %w", o.Name, err)
	}
	obj := ObjDir(o.CacheDir, o.Source.ID, o.Flavour)
	if err := os.MkdirAll(filepath.Dir(obj), 0o755); err != nil {
		return nil, fmt.Errorf("kbuild %s: creating the object directories' parent: %w", o.Name, err)
	}
	unlock, err := cache.Lock(ctx, obj+".lock")
	if err != nil {
		return nil, fmt.Errorf("kbuild %s: %w", o.Name, err)
	}
	defer unlock()

	logPath := obj + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("kbuild %s: creating build log: %w", o.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# kbuild %s: %s (%s), flavour %s, in %s\n", o.Name, o.Source.Origin, src, o.Flavour, obj)
	planned, kind := 0, kindSeeded
	if res := seed(ctx, o, src, obj, logf, pr); res != nil {
		planned = len(res.Invalidated) + len(res.Removed)
	} else {
		kind = kindOf(obj)
	}
	if err := os.MkdirAll(obj, 0o755); err != nil {
		return nil, fmt.Errorf("kbuild %s: creating object directory: %w", o.Name, err)
	}

	what := fmt.Sprintf("allnoconfig + %d fragment(s)", len(o.Fragments))
	if len(o.Optional) > 0 {
		what += fmt.Sprintf(" + %d optional", len(o.Optional))
	}
	pr.printf("configuring %s (flavour %s): %s in %s", o.Source.Origin, o.Flavour, what, obj)
	configured, err := kconfig.ConfigureTree(ctx, kconfig.ConfigureOptions{SrcDir: src, ObjDir: obj,
		Fragments: o.Fragments, Optional: o.Optional, Log: logf})
	var skipped []string
	if configured != nil {
		for _, s := range configured.Skipped {
			skipped = append(skipped, s.Option.String())
			pr.printf("%s", s)
		}
	}
	if err != nil {
		be := &BuildError{Name: o.Name, Phase: "configure", LogPath: logPath, Err: err,
			Command: strings.Join(append(kconfig.MakeArgs(src, obj), "olddefconfig"), " ")}
		var de *kconfig.DroppedError
		if !errors.As(err, &de) && ctx.Err() == nil {
			be.Tail = tailFrom(logPath, 0, tailLines)
		}
		return nil, be
	}
	config := configured.Config
	keyParts := [][]byte{[]byte(o.Source.ID), o.Extra, config}
	if !o.Flavour.IsNormal() {
		keyParts = append(keyParts, []byte(o.Flavour.String()))
	}
	key := cache.Key(keyParts...)
	kernels := filepath.Join(o.CacheDir, "kernels")
	art := filepath.Join(kernels, key)
	if !o.Source.Mutable {
		if k, ok := loadCached(art); ok {
			k.Cached = true
			k.Elapsed = time.Since(start)
			k.Skipped = skipped
			k.Flavour = o.Flavour.String()
			pr.printf("cached kernel %s (%s) %s", key, k.Release, k.BzImage)
			return k, nil
		}
	}

	makeCmd := append(kconfig.MakeArgs(src, obj), "-j"+strconv.Itoa(o.Jobs), "bzImage")
	// make is about to change the objects: until it succeeds, obj is no
	// completed build (configure above only rewrote .config, which every
	// build, seeded or not, rewrites again).
	if err := objseed.RemoveStamp(obj); err != nil {
		return nil, &BuildError{Name: o.Name, Phase: "compile", LogPath: logPath, Command: strings.Join(makeCmd, " "), Err: err}
	}
	// The tree's state as this build sees it, for the stamp. A Mutable
	// tree is never a seed and gets none.
	var fingerprint string
	if !o.Source.Mutable {
		if fingerprint, err = objseed.Fingerprint(ctx, src); err != nil {
			fmt.Fprintf(logf, "# %s will not be stamped as a seed: %v\n", obj, err)
		}
	}
	want := stepRecord{Kind: kind, ConfigHash: cache.Key(config), SourceID: o.Source.ID, Flavour: o.Flavour.String(),
		Jobs: o.Jobs, Planned: planned}
	est := estimateFor(obj, kind, planned, want, logf)
	fmt.Fprintf(logf, "# %s build; estimate: %s\n", kind, est)
	compileStart, _ := logf.Seek(0, io.SeekCurrent)
	pr.printf("compiling bzImage with -j%d (log: %s)", o.Jobs, logPath)
	if est.steps > 0 {
		pr.printf("%s build, expecting %s", kind, est)
	}
	steps, compileTime, err := runMake(ctx, makeCmd, logf, pr, o.Every, est)
	if err != nil {
		logf.Sync()
		be := &BuildError{Name: o.Name, Phase: "compile", LogPath: logPath, Command: strings.Join(makeCmd, " "), Err: err}
		if ctx.Err() == nil {
			be.Tail = tailFrom(logPath, compileStart, tailLines)
		}
		return nil, be
	}
	if fingerprint != "" {
		stamp(o, src, obj, fingerprint, logf)
	}
	fmt.Fprintf(logf, "# compiled in %s: %d steps (%s build, estimated %d)\n", compileTime.Round(time.Second), steps, kind, est.steps)
	if kind != kindResumed {
		want.Steps, want.CompileSeconds, want.Finished = steps, compileTime.Seconds(), time.Now().UTC()
		if err := writeRecord(obj, want); err != nil {
			fmt.Fprintf(logf, "# later builds will lack this one's estimate: %v\n", err)
		}
	}

	relCmd := append(kconfig.MakeArgs(src, obj), "-s", "kernelrelease")
	release, err := output(ctx, relCmd, logf)
	if err != nil {
		return nil, &BuildError{Name: o.Name, Phase: "kernelrelease", LogPath: logPath, Command: strings.Join(relCmd, " "), Err: err}
	}
	buildTime := time.Since(start)
	fmt.Fprintf(logf, "# built %s in %s\n", release, buildTime.Round(time.Second))
	logf.Sync()

	k := &Kernel{
		BzImage: filepath.Join(art, "bzImage"),
		Config:  filepath.Join(art, "config"),
		Release: release,
		Origin:  o.Source.Origin,
		Flavour: o.Flavour.String(),
		Skipped: skipped,
		Key:     key,
		Elapsed: buildTime,
		LogPath: filepath.Join(art, "build.log"),
	}
	if err := store(kernels, art, filepath.Join(obj, "arch", "x86", "boot", "bzImage"), config, logPath, k); err != nil {
		return nil, &BuildError{Name: o.Name, Phase: "store", LogPath: logPath, Err: err}
	}
	pr.printf("built %s in %s (%d steps): %s", release, buildTime.Round(time.Second), steps, k.BzImage)
	return k, nil
}

// loadCached returns the kernel stored complete in art.
func loadCached(art string) (*Kernel, bool) {
	if !cache.IsDone(art) {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(art, "kernel.json"))
	if err != nil {
		return nil, false
	}
	var k Kernel
	if json.Unmarshal(b, &k) != nil {
		return nil, false
	}
	// Paths follow the cache directory, wherever it is now.
	k.BzImage = filepath.Join(art, "bzImage")
	k.Config = filepath.Join(art, "config")
	k.LogPath = filepath.Join(art, "build.log")
	k.Key = filepath.Base(art)
	if _, err := os.Stat(k.BzImage); err != nil {
		return nil, false
	}
	return &k, true
}

// store writes the artefacts into a temporary directory and renames it to
// art, marking it complete last.
func store(kernels, art, bzImage string, config []byte, logPath string, k *Kernel) error {
	if err := os.MkdirAll(kernels, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(kernels, ".tmp-"+filepath.Base(art)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := copyFile(bzImage, filepath.Join(tmp, "bzImage")); err != nil {
		return fmt.Errorf("copying bzImage: %w", err)
	}
	if err := copyFile(logPath, filepath.Join(tmp, "build.log")); err != nil {
		return fmt.Errorf("copying the build log: %w", err)
	}
	if err := cache.WriteFileAtomic(filepath.Join(tmp, "config"), config); err != nil {
		return err
	}
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	if err := cache.WriteFileAtomic(filepath.Join(tmp, "kernel.json"), append(b, '\n')); err != nil {
		return err
	}
	if err := os.RemoveAll(art); err != nil {
		return err
	}
	if err := os.Rename(tmp, art); err != nil {
		return err
	}
	return cache.MarkDone(art)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func command(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = kconfig.MakeEnv()
	// make passes SIGTERM on to the jobs it runs; SIGKILL would orphan them.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	return cmd
}

// runMake runs argv with its output to log, counting kbuild steps for the
// progress lines printed every interval, which measure them against est.
// It returns the number of steps and how long make ran.
func runMake(ctx context.Context, argv []string, log io.Writer, pr *progress, every time.Duration, est estimate) (int, time.Duration, error) {
	fmt.Fprintf(log, "$ %s\n", strings.Join(argv, " "))
	c := &counter{}
	cmd := command(ctx, argv)
	w := io.MultiWriter(log, c)
	cmd.Stdout, cmd.Stderr = w, w
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("starting make: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			n, _ := c.snapshot()
			if err != nil && ctx.Err() != nil {
				return n, time.Since(start), fmt.Errorf("make stopped: %w", ctx.Err())
			}
			return n, time.Since(start), err
		case <-t.C:
			n, last := c.snapshot()
			if last == "" {
				last = "(none yet)"
			}
			elapsed := time.Since(start)
			pr.printf("compile %s, %s, last: %s", elapsed.Round(time.Second), est.status(elapsed, n), last)
		}
	}
}

// output runs argv and returns its last line of standard output; standard
// error goes to log.
func output(ctx context.Context, argv []string, log io.Writer) (string, error) {
	fmt.Fprintf(log, "$ %s\n", strings.Join(argv, " "))
	cmd := command(ctx, argv)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	log.Write(out.Bytes())
	lines := strings.Fields(out.String())
	if len(lines) == 0 {
		return "", fmt.Errorf("%s printed nothing", strings.Join(argv, " "))
	}
	return lines[len(lines)-1], nil
}
