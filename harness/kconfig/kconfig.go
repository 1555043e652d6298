// Package kconfig configures a kernel tree out of tree from allnoconfig plus
// the project's config fragments, and checks that every option the fragments
// ask for survived into the final .config, explaining from the Kconfig files
// why one did not.
package kconfig

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Option is one CONFIG_ assignment.
type Option struct{ Name, Value string } // Name "CONFIG_FOO"; Value "y","m","n" ("# CONFIG_FOO is not set" => "n"), or string/number as written

func (o Option) String() string {
	if o.Value == "n" {
		return "# " + o.Name + " is not set"
	}
	return o.Name + "=" + o.Value
}

var (
	setRE   = regexp.MustCompile(`^(CONFIG_[A-Za-z0-9_]+)=(.*)$`)
	unsetRE = regexp.MustCompile(`^#\s*(CONFIG_[A-Za-z0-9_]+) is not set\s*$`)
)

// parseLine reads one .config line; ok is false for comments and blanks.
func parseLine(line string) (o Option, ok bool) {
	line = strings.TrimSpace(line)
	if m := setRE.FindStringSubmatch(line); m != nil {
		return Option{m[1], strings.TrimSpace(m[2])}, true
	}
	if m := unsetRE.FindStringSubmatch(line); m != nil {
		return Option{m[1], "n"}, true
	}
	return Option{}, false
}

// ParseFragment reads a config fragment: CONFIG_X=value and
// "# CONFIG_X is not set" lines, other comments and blank lines ignored. Any
// other line is an error naming the file and line.
func ParseFragment(path string) ([]Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kconfig: reading config fragment: %w", err)
	}
	var opts []Option
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if o, ok := parseLine(line); ok {
			if o.Value == "" {
				return nil, fmt.Errorf("kconfig: %s:%d: %s has no value (write %s=y, or \"# %s is not set\")", path, n, o.Name, o.Name, o.Name)
			}
			opts = append(opts, o)
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return nil, fmt.Errorf("kconfig: %s:%d: %q is not CONFIG_NAME=value, \"# CONFIG_NAME is not set\" or a # comment", path, n, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kconfig: reading %s: %w", path, err)
	}
	return opts, nil
}

// Parse reads a .config into name -> value; "is not set" lines give "n".
func Parse(config []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(config))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if o, ok := parseLine(sc.Text()); ok {
			m[o.Name] = o.Value
		}
	}
	return m
}

// Configure makes objDir/.config for the tree at srcDir, out of tree:
// allnoconfig, the fragments merged in order (later ones win), then
// olddefconfig. It fails with a *DroppedError if an option a fragment sets
// did not survive. Command output goes to log. It returns the final .config.
func Configure(ctx context.Context, srcDir, objDir string, fragments []string, log io.Writer) ([]byte, error) {
	c, err := ConfigureTree(ctx, ConfigureOptions{SrcDir: srcDir, ObjDir: objDir, Fragments: fragments, Log: log})
	if c == nil {
		return nil, err
	}
	return c.Config, err
}

// ConfigureOptions say how to configure a tree.
type ConfigureOptions struct {
	SrcDir string
	ObjDir string
	// Fragments are merged in order (later ones win); every option they
	// set must survive into the final .config.
	Fragments []string
	// Optional fragments are merged after Fragments, but each of their
	// options only when a Kconfig file of the tree defines its symbol
	// (options a patch series adds, absent from other trees); the rest
	// are skipped and listed in Configured.Skipped. The options that are
	// defined must survive like any other.
	Optional []string
	// Log receives command output and what was skipped.
	Log io.Writer
}

// Skipped is an option of an optional fragment that the tree does not
// define.
type Skipped struct {
	Option   Option
	Fragment string // path of the fragment it came from
}

func (s Skipped) String() string {
	return fmt.Sprintf("%s from %s skipped: no Kconfig file in this tree defines %s",
		s.Option, filepath.Base(s.Fragment), strings.TrimPrefix(s.Option.Name, "CONFIG_"))
}

// Configured is what ConfigureTree made.
type Configured struct {
	// Config is the final .config.
	Config []byte
	// Skipped are the optional options the tree does not define.
	Skipped []Skipped
}

// ConfigureTree makes ObjDir/.config for the tree at SrcDir, out of tree:
// allnoconfig, the fragments merged in order (later ones win), the
// optional fragments' options that the tree defines, then olddefconfig. It
// fails with a *DroppedError if a merged option did not survive; the
// Configured it returns then still holds the final .config.
func ConfigureTree(ctx context.Context, o ConfigureOptions) (*Configured, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	src, err := filepath.Abs(o.SrcDir)
	if err != nil {
		return nil, fmt.Errorf("kconfig: finding the source tree: %w", err)
	}
	obj, err := filepath.Abs(o.ObjDir)
	if err != nil {
		return nil, fmt.Errorf("kconfig: finding the object directory: %w", err)
	}
	var requested []Option
	var frags []string
	for _, f := range o.Fragments {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("kconfig: finding config fragment %s: %w", f, err)
		}
		opts, err := ParseFragment(abs)
		if err != nil {
			return nil, err
		}
		requested = append(requested, opts...)
		frags = append(frags, abs)
	}
	if err := os.MkdirAll(obj, 0o755); err != nil {
		return nil, fmt.Errorf("kconfig: creating object directory: %w", err)
	}
	res := &Configured{}
	for _, f := range o.Optional {
		kept, skipped, err := filterDefined(src, f)
		if err != nil {
			return nil, err
		}
		res.Skipped = append(res.Skipped, skipped...)
		for _, s := range skipped {
			fmt.Fprintf(log, "# %s\n", s)
		}
		if len(kept) == 0 {
			continue
		}
		// The fragment as merged: only the options the tree defines.
		path := filepath.Join(obj, ".luotest-optional-"+filepath.Base(f))
		var b strings.Builder
		fmt.Fprintf(&b, "# the options of %s that this tree defines\n", f)
		for _, opt := range kept {
			b.WriteString(opt.String() + "\n")
			fmt.Fprintf(log, "# %s from %s applies: the tree defines it\n", opt, filepath.Base(f))
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("kconfig: writing the applicable part of %s: %w", f, err)
		}
		requested = append(requested, kept...)
		frags = append(frags, path)
	}
	merge := filepath.Join(src, "scripts", "kconfig", "merge_config.sh")
	steps := []struct {
		what string
		argv []string
	}{
		{"make allnoconfig", append(MakeArgs(src, obj), "allnoconfig")},
		{"merging the config fragments", append([]string{"sh", merge, "-m", "-O", obj, filepath.Join(obj, ".config")}, frags...)},
		{"make olddefconfig", append(MakeArgs(src, obj), "olddefconfig")},
	}
	for _, s := range steps {
		if err := run(ctx, obj, log, s.argv); err != nil {
			return nil, fmt.Errorf("kconfig: %s for %s: %w", s.what, src, err)
		}
	}
	final, err := os.ReadFile(filepath.Join(obj, ".config"))
	if err != nil {
		return nil, fmt.Errorf("kconfig: reading the final .config: %w", err)
	}
	res.Config = final
	if err := Check(requested, final, src); err != nil {
		return res, err
	}
	return res, nil
}

// filterDefined splits the options of an optional fragment into those
// whose symbol a Kconfig file of the tree at src defines and those it
// does not.
func filterDefined(src, fragment string) (kept []Option, skipped []Skipped, err error) {
	abs, err := filepath.Abs(fragment)
	if err != nil {
		return nil, nil, fmt.Errorf("kconfig: finding config fragment %s: %w", fragment, err)
	}
	opts, err := ParseFragment(abs)
	if err != nil {
		return nil, nil, err
	}
	if len(opts) == 0 {
		return nil, nil, nil
	}
	var names []string
	for _, opt := range opts {
		names = append(names, opt.Name)
	}
	db := Lookup(src, names)
	for _, opt := range opts {
		if s := db.Symbols[strings.TrimPrefix(opt.Name, "CONFIG_")]; s != nil && len(s.Entries) > 0 {
			kept = append(kept, opt)
			continue
		}
		skipped = append(skipped, Skipped{Option: opt, Fragment: abs})
	}
	return kept, skipped, nil
}

// MakeArgs is the start of every kernel make command line: out of tree, for
// x86_64.
func MakeArgs(srcDir, objDir string) []string {
	return []string{"make", "-C", srcDir, "O=" + objDir, "ARCH=x86_64"}
}

// MakeEnv is the environment for kernel make commands: the caller's, minus
// variables that would redirect or reshape the build (an outer make's flags,
// KCONFIG_CONFIG, KBUILD_OUTPUT, ARCH...), in the C locale.
func MakeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "MAKEFLAGS" || name == "MFLAGS" || name == "MAKELEVEL" || name == "MAKEFILES" || name == "GNUMAKEFLAGS",
			name == "ARCH" || name == "SRCARCH" || name == "CROSS_COMPILE" || name == "O",
			name == "KBUILD_OUTPUT" || name == "KBUILD_EXTMOD",
			strings.HasPrefix(name, "KCONFIG_"),
			name == "LANG" || name == "LANGUAGE" || strings.HasPrefix(name, "LC_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// run runs argv in dir with its output to log; a failure carries the last
// lines of that output.
func run(ctx context.Context, dir string, log io.Writer, argv []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = MakeEnv()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	w := io.MultiWriter(log, &out)
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(log, "$ %s\n", strings.Join(argv, " "))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", argv[0], ctx.Err())
		}
		return fmt.Errorf("%s: %w; last output:\n%s", strings.Join(argv, " "), err, lastLines(out.String(), 10))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
