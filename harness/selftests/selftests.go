// Package selftests builds the kernel tree's own Live Update selftests
// (tools/testing/selftests/liveupdate) with the tree's own Makefile and
// the host compiler and turns
// each of them into a scenario our guest agent runs: the kexec tests as
// "stage 1, kexec, stage 2" exactly as the in-tree vmtest.sh/init.c flow
// does it, the others once. Their KTAP output comes back in the exec
// steps' events and is parsed into per-case results (see Results).
//
// Nothing is ever written into the source tree: the uAPI headers are
// generated in a scratch O= directory under the output directory and the
// binaries are compiled there too, cached by a hash of their inputs.
package selftests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/memfd-luo/memfd-luo/harness/cache"
)

// TestDir is where the Live Update selftests live in a kernel tree.
const TestDir = "tools/testing/selftests/liveupdate"

// CC is the host C compiler the selftests are built with.
const CC = "gcc"

// cacheSchema changes whenever the layout or the meaning of a cache entry
// changes, so that old entries are not trusted.
const cacheSchema = "memfd-luo selftests v2"

// Test is one selftest binary, built and ready to be put in an image.
type Test struct {
	// Name is the program name, e.g. "luo_kexec_simple".
	Name string
	// Binary is the static host-built executable.
	Binary string
	// Kexec says the test is staged across a kexec: it is run with
	// "-s 1" before and "-s 2" after (lib/lu_utils.c:luo_test).
	Kexec bool
	// StageFlag is the option that passes the stage ("-s" for the
	// in-tree tests, the default; "--stage" for memfd-luo's own).
	StageFlag string
	// Project marks memfd-luo's own selftests (selftests/*.c).
	Project bool
	// BuildError, when set, says why the test could not be built; it
	// has no Binary and its scenario is skipped with this reason.
	BuildError string
	// BuildLog is the build output of a test that failed, if kept.
	BuildLog string
}

// spec is a test found in a source tree, before it is built.
type spec struct {
	Name  string
	Kexec bool
	// Main is the test's own source file.
	Main string
}

// tree is what the build needs to know about a source tree's selftests.
type tree struct {
	// Src is the kernel source tree.
	Src string
	// Dir is Src/TestDir; Selftests is Src/tools/testing/selftests.
	Dir, Selftests string
	Specs          []spec
}

// discover reads the selftest Makefile of srcDir. A tree without the
// selftest directory yields no specs and no error.
func discover(srcDir string) (*tree, error) {
	t := &tree{
		Src:       srcDir,
		Dir:       filepath.Join(srcDir, TestDir),
		Selftests: filepath.Join(srcDir, "tools/testing/selftests"),
	}
	mk, err := os.ReadFile(filepath.Join(t.Dir, "Makefile"))
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("selftests: reading the Makefile: %w", err)
	}
	vars := makeVars(mk)
	seen := map[string]bool{}
	for _, v := range []string{"TEST_GEN_PROGS", "TEST_GEN_PROGS_EXTENDED"} {
		for _, name := range vars[v] {
			if seen[name] || strings.ContainsAny(name, "$()/") {
				continue
			}
			seen[name] = true
			main := filepath.Join(t.Dir, name+".c")
			src, err := os.ReadFile(main)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("selftests: reading %s: %w", main, err)
			}
			t.Specs = append(t.Specs, spec{Name: name, Kexec: isStaged(src), Main: main})
		}
	}
	return t, nil
}

// isStaged reports whether a test's source uses the library's stage
// driver, luo_test(), which takes "-s 1|2" and checks the stage against
// the presence of its state session.
func isStaged(src []byte) bool {
	return bytes.Contains(src, []byte("luo_test("))
}

// makeVars collects the words assigned (=, :=, ?=, +=) to each variable
// of a Makefile, joining continued lines. References to other variables
// are kept as they are; callers drop what they do not understand.
func makeVars(mk []byte) map[string][]string {
	vars := map[string][]string{}
	text := strings.ReplaceAll(string(mk), "\\\n", " ")
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line == "" || line[0] == '\t' {
			continue
		}
		i := strings.IndexByte(line, '=')
		if i <= 0 {
			continue
		}
		name, op := line[:i], "="
		if c := name[len(name)-1]; c == ':' || c == '+' || c == '?' {
			name, op = name[:len(name)-1], string(c)+"="
		}
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, " \t$():") {
			continue
		}
		words := strings.Fields(line[i+1:])
		if op == "+=" {
			vars[name] = append(vars[name], words...)
		} else if op != "?=" || vars[name] == nil {
			vars[name] = words
		}
	}
	return vars
}

// Build generates the uAPI headers of srcDir and builds every Live Update
// selftest the tree has the way the tree builds them: with its own
// Makefile (and lib.mk), statically (USERLDFLAGS=-static), in a scratch
// mirror of the tree (see farm), so that nothing is written into the
// source. Everything lands under outDir, which doubles as the cache: a
// second run with the same inputs does nothing. A test that cannot be
// built comes back with BuildError and BuildLog set, to be reported as
// skipped with that reason rather than dropped; only a tree whose
// selftest Makefile cannot be read is an error.
func Build(ctx context.Context, srcDir, outDir string, log io.Writer) ([]Test, error) {
	if log == nil {
		log = io.Discard
	}
	t, err := discover(srcDir)
	if err != nil {
		return nil, err
	}
	if len(t.Specs) == 0 {
		fmt.Fprintf(log, "selftests: %s has no %s selftests\n", srcDir, TestDir)
		return nil, nil
	}
	unbuilt := func(reason string) []Test {
		var out []Test
		for _, s := range t.Specs {
			out = append(out, Test{Name: s.Name, Kexec: s.Kexec, BuildError: reason})
		}
		return out
	}
	tb, err := prepareToolchain(ctx, srcDir, outDir, log)
	if err != nil {
		return unbuilt(firstLine(err.Error())), nil
	}
	defer tb.unlock()
	key, err := treeKey(t, tb.hdrKey, tb.ccID)
	if err != nil {
		return unbuilt(err.Error()), nil
	}
	var tests []Test
	var todo []spec
	for _, s := range t.Specs {
		dir := filepath.Join(tb.outDir, "bin", s.Name+"-"+key)
		if cache.IsDone(dir) {
			tests = append(tests, Test{Name: s.Name, Binary: filepath.Join(dir, s.Name), Kexec: s.Kexec})
			continue
		}
		todo = append(todo, s)
	}
	if len(todo) > 0 {
		tests = append(tests, makeTests(ctx, t, todo, tb, key, log)...)
	}
	slices.SortStableFunc(tests, func(a, b Test) int {
		return slices.IndexFunc(t.Specs, func(s spec) bool { return s.Name == a.Name }) -
			slices.IndexFunc(t.Specs, func(s spec) bool { return s.Name == b.Name })
	})
	return tests, nil
}

// makeCommand is the make command line that builds test name of the
// selftest directory dir (in the scratch mirror) into out, with the
// tree's own Makefile: only the output directory, the uAPI headers and
// static linking come from us.
func makeCommand(dir, out, include, name string) []string {
	return []string{"-C", dir, "OUTPUT=" + out, "KHDR_INCLUDES=-isystem " + include, "USERLDFLAGS=-static", out + "/" + name}
}

// makeTests builds specs with the tree's Makefile in one scratch mirror
// (so the library objects are built once) and moves each binary into
// the cache. A test that fails gets its make output in
// outDir/logs/<name>-<key>.log.
func makeTests(ctx context.Context, t *tree, specs []spec, tb *toolchain, key string, log io.Writer) []Test {
	var tests []Test
	fail := func(s spec, reason, output string) {
		lp := keepBuildLog(tb.outDir, s.Name+"-"+key, output)
		fmt.Fprintf(log, "selftests: %s cannot be built: %s (log: %s)\n", s.Name, reason, lp)
		tests = append(tests, Test{Name: s.Name, Kexec: s.Kexec, BuildError: reason, BuildLog: lp})
	}
	scratch, err := os.MkdirTemp(tb.outDir, ".build-"+key+"-*")
	if err != nil {
		for _, s := range specs {
			fail(s, fmt.Sprintf("creating a scratch directory: %v", err), "")
		}
		return tests
	}
	defer os.RemoveAll(scratch)
	rel, _ := filepath.Rel(t.Src, t.Dir)
	mirror := filepath.Join(scratch, "tree")
	if err := farm(t.Src, mirror, rel); err != nil {
		for _, s := range specs {
			fail(s, err.Error(), "")
		}
		return tests
	}
	out := filepath.Join(scratch, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		for _, s := range specs {
			fail(s, fmt.Sprintf("creating the output directory: %v", err), "")
		}
		return tests
	}
	for _, s := range specs {
		fmt.Fprintf(log, "selftests: building %s with %s/Makefile\n", s.Name, TestDir)
		args := makeCommand(filepath.Join(mirror, rel), out, tb.include, s.Name)
		cmd := exec.CommandContext(ctx, "make", args...)
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		text := func() string { return "$ make " + strings.Join(args, " ") + "\n" + output.String() }
		if err := cmd.Run(); err != nil {
			fail(s, fmt.Sprintf("make %s: %v: %s", s.Name, err, buildErrorLine(output.String())), text())
			continue
		}
		bin := filepath.Join(out, s.Name)
		if err := checkStatic(bin); err != nil {
			fail(s, err.Error(), text())
			continue
		}
		dir := filepath.Join(tb.outDir, "bin", s.Name+"-"+key)
		if err := install(bin, dir); err != nil {
			fail(s, err.Error(), text())
			continue
		}
		tests = append(tests, Test{Name: s.Name, Binary: filepath.Join(dir, s.Name), Kexec: s.Kexec})
	}
	return tests
}

// keepBuildLog writes the output of a failed build to
// outDir/logs/<base>.log and returns its path, or "" when there is no
// output or it could not be written.
func keepBuildLog(outDir, base, output string) string {
	if output == "" {
		return ""
	}
	p := filepath.Join(outDir, "logs", base+".log")
	if os.MkdirAll(filepath.Dir(p), 0o755) != nil || os.WriteFile(p, []byte(output), 0o644) != nil {
		return ""
	}
	return p
}

// farm makes dst a mirror of src in which make can run in dst/rel and
// write its objects there: every directory on the path to rel, and rel
// itself, is a real directory; everything else is a symbolic link into
// src. The selftest Makefiles write objects next to their sources and
// reach the rest of the tree by relative paths (top_srcdir), which the
// mirror keeps.
func farm(src, dst, rel string) error {
	parts := strings.Split(filepath.Clean(rel), string(filepath.Separator))
	cur := ""
	for i := 0; i <= len(parts); i++ {
		if err := os.MkdirAll(filepath.Join(dst, cur), 0o755); err != nil {
			return fmt.Errorf("selftests: mirroring the tree: %w", err)
		}
		ents, err := os.ReadDir(filepath.Join(src, cur))
		if err != nil {
			return fmt.Errorf("selftests: mirroring the tree: %w", err)
		}
		next := ""
		if i < len(parts) {
			next = parts[i]
		}
		for _, e := range ents {
			if e.Name() == next {
				continue
			}
			if err := os.Symlink(filepath.Join(src, cur, e.Name()), filepath.Join(dst, cur, e.Name())); err != nil {
				return fmt.Errorf("selftests: mirroring the tree: %w", err)
			}
		}
		if i < len(parts) {
			cur = filepath.Join(cur, parts[i])
		}
	}
	return nil
}

// checkStatic makes sure bin needs no dynamic loader: the initramfs has
// no libc.
func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("the built %s is not a readable ELF file: %w", filepath.Base(bin), err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s was linked dynamically although make was given USERLDFLAGS=-static (does the tree's lib.mk honour it?)", filepath.Base(bin))
		}
	}
	return nil
}

// install moves bin into dir (replaced atomically) and marks dir done.
func install(bin, dir string) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("selftests: installing %s: %w", filepath.Base(bin), err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("selftests: installing %s: %w", filepath.Base(bin), err)
	}
	if err := os.Rename(bin, filepath.Join(tmp, filepath.Base(bin))); err != nil {
		return fmt.Errorf("selftests: installing %s: %w", filepath.Base(bin), err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("selftests: installing %s: %w", filepath.Base(bin), err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("selftests: installing %s: %w", filepath.Base(bin), err)
	}
	return cache.MarkDone(dir)
}

// buildErrorLine picks the line of make output that says what went
// wrong: the first compiler or linker error, else the last line.
func buildErrorLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "collect2:") || strings.HasPrefix(l, "make") {
			continue
		}
		if strings.Contains(l, "error:") || strings.Contains(l, "undefined reference") || strings.Contains(l, "cannot find") {
			return strings.TrimSpace(l)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "No rule to make target") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// headerInputs are the paths of a tree (files or directories, relative)
// whose content decides the generated uAPI headers.
var headerInputs = []string{
	"Makefile",
	"include/uapi",
	"arch/x86/include/uapi",
	"arch/x86/entry/syscalls",
	"arch/x86/Makefile",
	"scripts/Makefile.headersinst",
	"scripts/Makefile.asm-headers",
	"scripts/headers_install.sh",
	"scripts/unifdef.c",
	"scripts/syscallhdr.sh",
	"scripts/syscalltbl.sh",
}

// headersKey hashes what the uAPI headers of srcDir are generated from.
func headersKey(srcDir string) (string, error) {
	h := newHasher()
	h.add(cacheSchema, "headers", runtime.GOARCH)
	for _, in := range headerInputs {
		if err := h.addTree(srcDir, in); err != nil {
			return "", err
		}
	}
	return h.key(), nil
}

// installHeaders generates the uAPI headers of srcDir in dir (a scratch
// O= build directory, dir/obj) unless dir is already complete, and
// returns the include directory. It runs `make headers`, which is what
// headers_install does minus the final rsync into INSTALL_HDR_PATH (and
// rsync need not be installed): the result is O/usr/include, the very
// directory lib.mk's KHDR_INCLUDES points at.
func installHeaders(ctx context.Context, srcDir, dir, key string, log io.Writer) (string, error) {
	include := filepath.Join(dir, "obj", "usr", "include")
	if stamp, ok := cache.DoneStamp(dir); ok && stamp == key {
		return include, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("selftests: clearing %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("selftests: creating %s: %w", dir, err)
	}
	args := headersCommand(srcDir, filepath.Join(dir, "obj"), runtime.NumCPU())
	fmt.Fprintf(log, "selftests: generating uAPI headers: make %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("selftests: generating uAPI headers (make %s): %w\n%s", strings.Join(args, " "), err, tail(out.String(), 4096))
	}
	if _, err := os.Stat(filepath.Join(include, "linux", "liveupdate.h")); err != nil {
		return "", fmt.Errorf("selftests: the generated headers lack linux/liveupdate.h: %w", err)
	}
	if err := cache.MarkDoneWith(dir, key); err != nil {
		return "", fmt.Errorf("selftests: %w", err)
	}
	return include, nil
}

// headersCommand is the make command line that generates the uAPI
// headers of srcDir in the build directory obj.
func headersCommand(srcDir, obj string, jobs int) []string {
	return []string{"-s", "-C", srcDir, "O=" + obj, "-j" + strconv.Itoa(max(jobs, 1)), "headers"}
}

// compilerID identifies the host compiler, for the cache key.
func compilerID(ctx context.Context) (string, error) {
	path, err := exec.LookPath(CC)
	if err != nil {
		return "", fmt.Errorf("selftests: the host C compiler: %w", err)
	}
	b, err := exec.CommandContext(ctx, path, "-dumpfullversion", "-dumpmachine").Output()
	if err != nil {
		return "", fmt.Errorf("selftests: asking %s for its version: %w", path, err)
	}
	return path + " " + strings.Join(strings.Fields(string(b)), " "), nil
}

// treeKey hashes everything the tree's selftests are built from: the
// selftest directory (sources, library, Makefiles), the kselftest
// headers and lib.mk, what lib.mk includes from the top of the tree, the
// generated uAPI headers (by their own key), the compiler and the make
// command.
func treeKey(t *tree, hdrKey, ccID string) (string, error) {
	h := newHasher()
	h.add(cacheSchema, "make", hdrKey, ccID)
	h.add(makeCommand("<dir>", "<out>", "<include>", "<test>")...)
	rel := func(p string) string {
		r, err := filepath.Rel(t.Src, p)
		if err != nil {
			return p
		}
		return r
	}
	for _, p := range []string{t.Dir, filepath.Join(t.Selftests, "lib.mk"), filepath.Join(t.Src, "scripts", "subarch.include")} {
		if err := h.addTree(t.Src, rel(p)); err != nil {
			return "", err
		}
	}
	hs, _ := filepath.Glob(filepath.Join(t.Selftests, "*.h"))
	for _, p := range hs {
		if err := h.addTree(t.Src, rel(p)); err != nil {
			return "", err
		}
	}
	return h.key(), nil
}

// hasher builds a cache key from strings and file trees; every part is
// length-prefixed, so concatenations cannot collide.
type hasher struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newHasher() *hasher { return &hasher{h: sha256.New()} }

func (h *hasher) add(parts ...string) {
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.h.Write(n[:])
		io.WriteString(h.h, p)
	}
}

// addTree hashes the relative path rel under root: a file's name and
// content, or every regular file of a directory in lexical order. A
// missing path is hashed as missing.
func (h *hasher) addTree(root, rel string) error {
	base := filepath.Join(root, rel)
	if _, err := os.Lstat(base); errors.Is(err, fs.ErrNotExist) {
		h.add("missing", rel)
		return nil
	}
	var files []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("selftests: hashing %s: %w", base, err)
	}
	slices.Sort(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("selftests: hashing %s: %w", p, err)
		}
		r, _ := filepath.Rel(root, p)
		h.add("file", filepath.ToSlash(r), string(b))
	}
	return nil
}

func (h *hasher) key() string { return hex.EncodeToString(h.h.Sum(nil))[:16] }

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]\n" + s[len(s)-n:]
}

// toolchain is what compiling a test against a tree needs: the tree's
// generated uAPI headers and the compiler's identity, under a lock on the
// output directory.
type toolchain struct {
	outDir, include, hdrKey, ccID string
	unlock                        func()
}

func prepareToolchain(ctx context.Context, srcDir, outDir string, log io.Writer) (*toolchain, error) {
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return nil, fmt.Errorf("selftests: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("selftests: creating %s: %w", outDir, err)
	}
	unlock, err := cache.Lock(ctx, filepath.Join(outDir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("selftests: %w", err)
	}
	tb := &toolchain{outDir: outDir, unlock: unlock}
	if tb.hdrKey, err = headersKey(srcDir); err == nil {
		if tb.include, err = installHeaders(ctx, srcDir, filepath.Join(outDir, "headers", tb.hdrKey), tb.hdrKey, log); err == nil {
			tb.ccID, err = compilerID(ctx)
		}
	}
	if err != nil {
		unlock()
		return nil, err
	}
	return tb, nil
}
