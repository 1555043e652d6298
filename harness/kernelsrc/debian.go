package kernelsrc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

// DefaultSuite is the Debian suite the kernel source package comes from.
const DefaultSuite = "trixie-backports"

// DefaultKeyring verifies the Debian archive.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// DebianOptions says which Debian kernel source to fetch and where to keep it.
type DebianOptions struct {
	Major string // e.g. "7.3" (from kernel/BASE)
	// Upstream, when set, asks for one upstream release of Major, such
	// as "7.2.12": the newest Debian revision of it the suites offer.
	Upstream string
	Suite    string // default "trixie-backports"
	// Suites, when set, replaces Suite: apt reads them all and the
	// newest version of the package (of Upstream, if set) wins, where
	// one suite alone takes apt's candidate.
	Suites []string
	// ListsMaxAge lets apt lists younger than this be reused without an
	// update (0: update on every call).
	ListsMaxAge time.Duration
	CacheDir    string    // harness/cache.Dir(); default: cache.Dir()
	Mirror      string    // override; default: taken from the machine's apt configuration at run time
	Log         io.Writer // progress lines
	Keyring     string    // archive keyring; default DefaultKeyring
}

// record is what src/<version>/source.json holds about an extraction.
type record struct {
	Package   string    `json:"package"`
	Version   string    `json:"version"`
	Suite     string    `json:"suite"`
	Mirror    string    `json:"mirror"`
	Extracted time.Time `json:"extracted"`
}

const recordName = "source.json"

// Debian returns Debian's linux-source-<Major> from <Suite>, downloaded with
// apt-get into a private apt state under CacheDir/apt (the machine's apt
// sources, lists and installed packages are never touched, nothing is
// installed) and extracted once into CacheDir/src/<package version>/. When
// apt cannot reach the mirror but an extraction is already complete, that
// extraction is used and the fact is logged.
func Debian(ctx context.Context, o DebianOptions) (*Source, error) {
	if !baseRE.MatchString(o.Major) {
		return nil, fmt.Errorf("kernelsrc: Debian kernel source: major version %q is not MAJOR.MINOR such as \"7.3\" (it comes from kernel/BASE)", o.Major)
	}
	if o.Suite == "" {
		o.Suite = DefaultSuite
	}
	if len(o.Suites) == 0 {
		o.Suites = []string{o.Suite}
	}
	if o.Upstream != "" && !strings.HasPrefix(o.Upstream, o.Major+".") {
		return nil, fmt.Errorf("kernelsrc: Debian kernel source: release %q is not a release of %s", o.Upstream, o.Major)
	}
	if o.Keyring == "" {
		o.Keyring = DefaultKeyring
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.CacheDir == "" {
		d, err := cache.Dir()
		if err != nil {
			return nil, err
		}
		o.CacheDir = d
	}
	// apt-get download runs in another directory: paths must be absolute.
	abs, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("kernelsrc: %w", err)
	}
	o.CacheDir = abs
	pkg := "linux-source-" + o.Major
	srcRoot := filepath.Join(o.CacheDir, "src")
	a := &apt{dir: filepath.Join(o.CacheDir, aptStateName(o.Suites)), root: os.Geteuid() == 0}
	a.logPath = filepath.Join(a.dir, "apt.log")

	unlock, err := cache.Lock(ctx, filepath.Join(o.CacheDir, "apt.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	version, err := resolve(ctx, a, &o, pkg)
	if err != nil {
		var off *offlineError
		if !errors.As(err, &off) {
			return nil, err
		}
		// apt could not tell us the current version: fall back on an
		// extraction made earlier, preferring the version apt's old lists
		// still name.
		dir, rec, ok := pickExtraction(srcRoot, pkg, off.staleCandidate, o.Upstream)
		if !ok {
			return nil, err
		}
		fmt.Fprintf(o.Log, "%v\n", err)
		fmt.Fprintf(o.Log, "kernelsrc: using the extraction made earlier instead: %s %s in %s\n", pkg, rec.Version, dir)
		return debianSource(dir, rec)
	}

	dir := filepath.Join(srcRoot, dirName(version))
	if rec, ok := readDone(dir); ok && rec.Package == pkg {
		fmt.Fprintf(o.Log, "kernelsrc: %s %s already extracted in %s\n", pkg, version, dir)
		return debianSource(dir, rec)
	}

	fmt.Fprintf(o.Log, "kernelsrc: downloading %s %s (a few seconds)\n", pkg, version)
	deb, err := a.download(ctx, pkg, version)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "kernelsrc: extracting %s into %s (about 15 s)\n", filepath.Base(deb), dir)
	rec := record{Package: pkg, Version: version, Suite: strings.Join(o.Suites, ","), Mirror: o.Mirror, Extracted: time.Now().UTC()}
	if err := extract(ctx, a, deb, srcRoot, dir, rec); err != nil {
		return nil, err
	}
	return debianSource(dir, rec)
}

// dirName is the directory name of an extraction of version: the kernel
// refuses to build from a path containing ':', which epochs would bring.
func dirName(version string) string {
	return strings.ReplaceAll(version, ":", "_")
}

// offlineError is an apt failure after which an earlier extraction may do.
type offlineError struct {
	err            error
	staleCandidate string // version apt's old lists name, if any
}

func (e *offlineError) Error() string { return e.err.Error() }
func (e *offlineError) Unwrap() error { return e.err }

// aptStateName is the directory of the private apt state for suites:
// "apt" for the base's suite alone (as before several suites were
// possible), a directory of their own for other sets, so that switching
// between them does not throw away each other's lists.
func aptStateName(suites []string) string {
	if len(suites) == 1 && suites[0] == DefaultSuite {
		return "apt"
	}
	return "apt-" + strings.Join(suites, "+")
}

// resolve refreshes the private apt lists and returns the version of pkg
// to fetch, filling o.Mirror if it was empty.
func resolve(ctx context.Context, a *apt, o *DebianOptions, pkg string) (string, error) {
	suites := strings.Join(o.Suites, " ")
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", &offlineError{err: fmt.Errorf("kernelsrc: apt-get is needed to fetch Debian's %s and was not found (%v); install apt, or build a kernel tree of your own instead", pkg, err)}
	}
	if _, err := os.Stat(o.Keyring); err != nil {
		return "", &offlineError{err: fmt.Errorf("kernelsrc: the Debian archive keyring %s is missing (%v); install the debian-archive-keyring package and rerun", o.Keyring, err)}
	}
	if o.Mirror == "" {
		m, err := MirrorFromApt(ctx)
		if err != nil {
			return "", &offlineError{err: err}
		}
		o.Mirror = m
	}
	sources := sourcesList(o.Mirror, o.Suites, o.Keyring)
	if err := a.setup(sources); err != nil {
		return "", err
	}
	if when, ok := a.fresh(sources, o.ListsMaxAge); ok {
		fmt.Fprintf(o.Log, "kernelsrc: apt lists of %s %s from %s reused (younger than %s; private state in %s)\n",
			o.Mirror, suites, when.UTC().Format("15:04"), o.ListsMaxAge, a.dir)
	} else {
		fmt.Fprintf(o.Log, "kernelsrc: apt-get update of %s %s (private state in %s)\n", o.Mirror, suites, a.dir)
		if out, err := a.output(ctx, "", "apt-get", "update"); err != nil {
			stale, _ := a.pick(ctx, pkg, o)
			reason := ""
			if e := firstAptError(out); e != "" {
				reason = ": " + e
			}
			return "", &offlineError{
				err:            fmt.Errorf("kernelsrc: apt-get update failed for %s %s%s; is the mirror reachable? (%w; log: %s)", o.Mirror, suites, reason, err, a.logPath),
				staleCandidate: stale,
			}
		}
		a.markFresh(sources)
	}
	v, err := a.pick(ctx, pkg, o)
	if err != nil {
		return "", err
	}
	if v == "" {
		what := pkg
		if o.Upstream != "" {
			what = pkg + " of release " + o.Upstream
		}
		return "", fmt.Errorf("kernelsrc: package %s is not in %s %s (apt lists no such version; log: %s); check the version (kernel/BASE, or the debian: spec) and the suites", what, o.Mirror, suites, a.logPath)
	}
	fmt.Fprintf(o.Log, "kernelsrc: %s version %s\n", pkg, v)
	return v, nil
}

// pick returns the version of pkg to fetch: apt's candidate for one suite
// and no release asked for (the base's behaviour), else the newest
// version the suites list, of release o.Upstream if set; "" if none.
func (a *apt) pick(ctx context.Context, pkg string, o *DebianOptions) (string, error) {
	if len(o.Suites) == 1 && o.Upstream == "" {
		return a.candidate(ctx, pkg)
	}
	out, err := a.output(ctx, "", "apt-cache", "madison", pkg)
	if err != nil {
		return "", fmt.Errorf("kernelsrc: asking apt for the versions of %s: %w (log: %s)", pkg, err, a.logPath)
	}
	return NewestVersion(parseMadison(out, pkg), o.Upstream), nil
}

// parseMadison returns the versions of pkg in apt-cache madison output
// ("pkg | version | mirror suite/component arch Packages").
func parseMadison(out, pkg string) []string {
	var vs []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != pkg {
			continue
		}
		if v := strings.TrimSpace(f[1]); v != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return vs
}

// NewestVersion returns the highest of the Debian versions vs, counting
// only those of upstream release upstream when it is not empty; "" if
// none qualifies.
func NewestVersion(vs []string, upstream string) string {
	best := ""
	for _, v := range vs {
		if upstream != "" && UpstreamOf(v) != upstream {
			continue
		}
		if best == "" || CompareVersions(v, best) > 0 {
			best = v
		}
	}
	return best
}

func debianSource(dir string, rec record) (*Source, error) {
	tree := filepath.Join(dir, rec.Package)
	v, err := MakefileVersion(tree)
	if err != nil {
		return nil, fmt.Errorf("kernelsrc: extracted %s %s in %s looks broken (%w); delete %s and rerun", rec.Package, rec.Version, tree, err, dir)
	}
	return &Source{
		Dir:     tree,
		Version: v,
		Origin:  "Debian " + rec.Package + " " + rec.Version,
		ID:      "debian:" + rec.Package + "=" + rec.Version,
	}, nil
}

// readDone returns the record of a complete extraction in dir.
func readDone(dir string) (record, bool) {
	var rec record
	if !cache.IsDone(dir) {
		return rec, false
	}
	b, err := os.ReadFile(filepath.Join(dir, recordName))
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Package == "" {
		return rec, false
	}
	if st, err := os.Stat(filepath.Join(dir, rec.Package)); err != nil || !st.IsDir() {
		return rec, false
	}
	return rec, true
}

// pickExtraction finds a complete extraction of pkg under srcRoot (of
// upstream release upstream, if set): the one of version prefer if
// present, else the most recently extracted.
func pickExtraction(srcRoot, pkg, prefer, upstream string) (string, record, bool) {
	ents, _ := os.ReadDir(srcRoot)
	type found struct {
		dir string
		rec record
	}
	var all []found
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(srcRoot, e.Name())
		if rec, ok := readDone(dir); ok && rec.Package == pkg && (upstream == "" || UpstreamOf(rec.Version) == upstream) {
			if prefer != "" && rec.Version == prefer {
				return dir, rec, true
			}
			all = append(all, found{dir, rec})
		}
	}
	if len(all) == 0 {
		return "", record{}, false
	}
	sort.Slice(all, func(i, j int) bool { return all[i].rec.Extracted.After(all[j].rec.Extracted) })
	return all[0].dir, all[0].rec, true
}

// apt runs apt-get and apt-cache on a private state directory.
type apt struct {
	dir     string // CacheDir/apt
	logPath string
	root    bool
}

func (a *apt) opts() []string {
	d := a.dir
	o := []string{
		"-o", "Dir::State=" + d + "/state",
		"-o", "Dir::State::lists=" + d + "/lists",
		"-o", "Dir::State::status=" + d + "/status",
		"-o", "Dir::Cache=" + d + "/cache",
		"-o", "Dir::Etc::sourcelist=" + d + "/etc/sources.list",
		"-o", "Dir::Etc::sourceparts=" + d + "/etc/sources.list.d",
		"-o", "Dir::Etc::preferences=" + d + "/etc/preferences",
		"-o", "Dir::Etc::preferencesparts=" + d + "/etc/preferences.d",
		"-o", "Debug::NoLocking=1",
		// Make a failed download an error rather than a warning.
		"-o", "APT::Update::Error-Mode=any",
	}
	if a.root {
		// The _apt sandbox user could not write into a root-owned cache.
		o = append(o, "-o", "APT::Sandbox::User=root")
	}
	return o
}

func sourcesList(mirror string, suites []string, keyring string) string {
	var b strings.Builder
	for _, s := range suites {
		fmt.Fprintf(&b, "deb [signed-by=%s] %s %s main\n", keyring, mirror, s)
	}
	return b.String()
}

// freshName marks, in the lists directory, the sources of the last
// successful update.
const freshName = "memfd-luo-updated"

// fresh reports whether the lists were updated from sources less than
// maxAge ago, and when.
func (a *apt) fresh(sources string, maxAge time.Duration) (time.Time, bool) {
	if maxAge <= 0 {
		return time.Time{}, false
	}
	p := filepath.Join(a.dir, "lists", freshName)
	st, err := os.Stat(p)
	if err != nil || time.Since(st.ModTime()) > maxAge {
		return time.Time{}, false
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != sources {
		return time.Time{}, false
	}
	return st.ModTime(), true
}

func (a *apt) markFresh(sources string) {
	// Best effort: without the mark, the next call updates again.
	_ = cache.WriteFileAtomic(filepath.Join(a.dir, "lists", freshName), []byte(sources))
}

func (a *apt) setup(sources string) error {
	for _, d := range []string{"lists/partial", "state", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d", "debs"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return fmt.Errorf("kernelsrc: creating private apt state: %w", err)
		}
	}
	status := filepath.Join(a.dir, "status")
	if _, err := os.Stat(status); err != nil {
		if err := cache.WriteFileAtomic(status, nil); err != nil {
			return fmt.Errorf("kernelsrc: creating private apt state: %w", err)
		}
	}
	if err := cache.WriteFileAtomic(filepath.Join(a.dir, "etc", "sources.list"), []byte(sources)); err != nil {
		return fmt.Errorf("kernelsrc: writing private apt sources: %w", err)
	}
	// A fresh log for every run; failures point at it.
	if err := os.WriteFile(a.logPath, nil, 0o644); err != nil {
		return fmt.Errorf("kernelsrc: creating apt log: %w", err)
	}
	return nil
}

func aptEnv() []string {
	return append(os.Environ(), "LC_ALL=C", "LANGUAGE=", "DEBIAN_FRONTEND=noninteractive")
}

// run runs tool with the private apt options, appending its output to the log.
func (a *apt) run(ctx context.Context, dir, tool string, args ...string) error {
	_, err := a.output(ctx, dir, tool, args...)
	return err
}

func (a *apt) output(ctx context.Context, dir, tool string, args ...string) (string, error) {
	full := append(a.opts(), args...)
	cmd := exec.CommandContext(ctx, tool, full...)
	cmd.Dir = dir
	cmd.Env = aptEnv()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	a.appendLog(fmt.Sprintf("$ %s %s\n%s", tool, strings.Join(full, " "), out))
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", tool, strings.Join(args, " "), err)
	}
	return string(out), nil
}

func (a *apt) appendLog(s string) {
	f, err := os.OpenFile(a.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	io.WriteString(f, s)
	if !strings.HasSuffix(s, "\n") {
		io.WriteString(f, "\n")
	}
}

// candidate returns apt's candidate version of pkg, "" if there is none.
func (a *apt) candidate(ctx context.Context, pkg string) (string, error) {
	out, err := a.output(ctx, "", "apt-cache", "policy", pkg)
	if err != nil {
		return "", fmt.Errorf("kernelsrc: asking apt for the version of %s: %w (log: %s)", pkg, err, a.logPath)
	}
	return parseCandidate(out), nil
}

// firstAptError returns the first "E: " line of apt output, without the "E: ".
func firstAptError(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(l), "E: "); ok {
			return strings.Join(strings.Fields(e), " ")
		}
	}
	return ""
}

// parseCandidate reads the "Candidate:" line of apt-cache policy output.
func parseCandidate(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "(none)" {
				return ""
			}
			return v
		}
	}
	return ""
}

// download fetches pkg=version into CacheDir/apt/debs and returns the .deb.
// apt-get reuses a file already there when its checksum matches.
func (a *apt) download(ctx context.Context, pkg, version string) (string, error) {
	debs := filepath.Join(a.dir, "debs")
	if err := a.run(ctx, debs, "apt-get", "download", pkg+"="+version); err != nil {
		return "", fmt.Errorf("kernelsrc: downloading %s %s: %w (log: %s)", pkg, version, err, a.logPath)
	}
	deb, err := findDeb(debs, pkg, version)
	if err != nil {
		return "", fmt.Errorf("kernelsrc: downloading %s %s: %w (log: %s)", pkg, version, err, a.logPath)
	}
	return deb, nil
}

// findDeb finds pkg_<version>_<arch>.deb in dir; apt escapes ':' in versions.
func findDeb(dir, pkg, version string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), pkg+"_")
		if !ok || !strings.HasSuffix(rest, ".deb") {
			continue
		}
		v, _, ok := strings.Cut(strings.TrimSuffix(rest, ".deb"), "_")
		if !ok {
			continue
		}
		if uv, err := url.PathUnescape(v); err == nil && uv == version {
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("apt-get download left no %s_%s_*.deb in %s", pkg, version, dir)
}

// extract unpacks usr/src/<pkg>.tar.xz of deb into dir/<pkg>, via a
// temporary directory renamed into place and marked complete only at the end.
func extract(ctx context.Context, a *apt, deb, srcRoot, dir string, rec record) error {
	fail := func(err error) error {
		return fmt.Errorf("kernelsrc: extracting %s: %w (log: %s); rerun to retry", filepath.Base(deb), err, a.logPath)
	}
	if err := os.MkdirAll(srcRoot, 0o755); err != nil {
		return fail(err)
	}
	// Leftovers of interrupted runs (we hold the lock, so none is live).
	if old, _ := filepath.Glob(filepath.Join(srcRoot, ".extract-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(srcRoot, ".extract-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	member := "./usr/src/" + rec.Package + ".tar.xz"
	if err := a.pipe(ctx,
		[]string{"dpkg-deb", "--fsys-tarfile", deb},
		[]string{"tar", "-x", "-C", tmp, member}); err != nil {
		return fail(fmt.Errorf("taking %s out of the package: %w", member, err))
	}
	tarball := filepath.Join(tmp, member)
	if err := a.pipe(ctx, []string{"tar", "-x", "-f", tarball, "-C", tmp}); err != nil {
		return fail(fmt.Errorf("unpacking %s: %w", filepath.Base(tarball), err))
	}
	if err := os.RemoveAll(filepath.Join(tmp, "usr")); err != nil {
		return fail(err)
	}
	if st, err := os.Stat(filepath.Join(tmp, rec.Package)); err != nil || !st.IsDir() {
		return fail(fmt.Errorf("the tarball has no top directory %s/", rec.Package))
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := cache.WriteFileAtomic(filepath.Join(tmp, recordName), append(b, '\n')); err != nil {
		return fail(err)
	}
	if err := os.RemoveAll(dir); err != nil { // an incomplete earlier attempt
		return fail(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fail(err)
	}
	if err := cache.MarkDone(dir); err != nil {
		return fail(err)
	}
	return nil
}

// pipe runs the commands connected stdout to stdin, stderr to the log.
func (a *apt) pipe(ctx context.Context, cmds ...[]string) error {
	log, err := os.OpenFile(a.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	var line []string
	for _, c := range cmds {
		line = append(line, strings.Join(c, " "))
	}
	fmt.Fprintf(log, "$ %s\n", strings.Join(line, " | "))

	procs := make([]*exec.Cmd, len(cmds))
	var closers []io.Closer
	for i, c := range cmds {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Stderr = log
		cmd.Env = aptEnv()
		procs[i] = cmd
	}
	for i := 0; i+1 < len(procs); i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		procs[i].Stdout = w
		procs[i+1].Stdin = r
		closers = append(closers, r, w)
	}
	if procs[len(procs)-1].Stdout == nil {
		procs[len(procs)-1].Stdout = log
	}
	for i, p := range procs {
		if err := p.Start(); err != nil {
			for _, q := range procs[:i] {
				q.Process.Kill()
				q.Wait()
			}
			for _, c := range closers {
				c.Close()
			}
			return fmt.Errorf("starting %s: %w", cmds[i][0], err)
		}
	}
	for _, c := range closers { // the children hold their own copies
		c.Close()
	}
	var errs []error
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", cmds[i][0], err))
		}
	}
	return errors.Join(errs...)
}
