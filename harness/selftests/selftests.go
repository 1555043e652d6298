// Package selftests builds the kernel tree's own Live Update selftests
// (tools/testing/selftests/liveupdate) with the host compiler and turns
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
const cacheSchema = "memfd-luo selftests v1"

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
	// Lib are the library sources linked into every test.
	Lib []string
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
	// lib/libliveupdate.mk names the library sources; without it, every
	// C file of lib/ is linked in, as the .mk would.
	libDir := filepath.Join(t.Dir, "lib")
	var libC []string
	if mk, err := os.ReadFile(filepath.Join(libDir, "libliveupdate.mk")); err == nil {
		libC = makeVars(mk)["LIBLIVEUPDATE_C"]
	}
	if len(libC) == 0 {
		m, _ := filepath.Glob(filepath.Join(libDir, "*.c"))
		for _, p := range m {
			libC = append(libC, filepath.Base(p))
		}
	}
	for _, c := range libC {
		p := filepath.Join(libDir, c)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("selftests: library source %s: %w", c, err)
		}
		t.Lib = append(t.Lib, p)
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

// Build generates the uAPI headers of srcDir and compiles every
// Live Update selftest the tree has, statically, with the host compiler.
// Everything is written under outDir, which doubles as the cache: a
// second run with the same inputs does nothing. Tests the tree does not
// have are absent from the result; a test that does not compile is an
// error naming it, with the compiler's output.
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
	tb, err := prepareToolchain(ctx, srcDir, outDir, log)
	if err != nil {
		return nil, err
	}
	defer tb.unlock()
	outDir, include, hdrKey, ccID := tb.outDir, tb.include, tb.hdrKey, tb.ccID
	var tests []Test
	var errs []error
	for _, s := range t.Specs {
		key, err := binaryKey(t, s, hdrKey, ccID)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(outDir, "bin", s.Name+"-"+key)
		bin := filepath.Join(dir, s.Name)
		if !cache.IsDone(dir) {
			fmt.Fprintf(log, "selftests: compiling %s\n", s.Name)
			if err := compile(ctx, t, s, include, dir, log); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		tests = append(tests, Test{Name: s.Name, Binary: bin, Kexec: s.Kexec})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tests, nil
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

// cflags mirror the selftest Makefile (lib.mk, Makefile and
// lib/libliveupdate.mk) plus -static: the binaries run in an initramfs
// without a libc.
func cflags(t *tree, include string) []string {
	return []string{
		"-static",
		"-Wall", "-O2", "-Wno-unused-function",
		"-D_GNU_SOURCE=",
		"-isystem", include,
		"-I" + t.Selftests,
		"-I" + filepath.Join(t.Dir, "lib", "include"),
	}
}

// compileCommand returns the compiler arguments that build test s into
// out.
func compileCommand(t *tree, s spec, include, out string) []string {
	args := cflags(t, include)
	args = append(args, "-o", out, s.Main)
	return append(args, t.Lib...)
}

// compile builds s into dir/<name>, atomically: the directory appears
// complete or not at all.
func compile(ctx context.Context, t *tree, s spec, include, dir string, log io.Writer) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", s.Name, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+s.Name+".tmp-*")
	if err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", s.Name, err)
	}
	defer os.RemoveAll(tmp)
	args := compileCommand(t, s, include, filepath.Join(tmp, s.Name))
	cmd := exec.CommandContext(ctx, CC, args...)
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("selftests: compiling %s (%s %s): %w\n%s", s.Name, CC, strings.Join(args, " "), err, out)
	}
	if len(out) > 0 {
		fmt.Fprintf(log, "selftests: %s: compiler output:\n%s", s.Name, out)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", s.Name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", s.Name, err)
	}
	if err := cache.MarkDone(dir); err != nil {
		return fmt.Errorf("selftests: compiling %s: %w", s.Name, err)
	}
	return nil
}

// binaryKey hashes everything test s is built from: its source, the
// library (lib/ of the test directory), the kselftest headers, the
// generated uAPI headers (by their own key), the compiler and the flags.
func binaryKey(t *tree, s spec, hdrKey, ccID string) (string, error) {
	h := newHasher()
	h.add(cacheSchema, "binary", s.Name, hdrKey, ccID)
	rel := func(p string) string {
		r, err := filepath.Rel(t.Src, p)
		if err != nil {
			return p
		}
		return r
	}
	// The command with the tree's paths made relative: where the tree
	// sits does not change what is built.
	rt := &tree{Src: ".", Dir: rel(t.Dir), Selftests: rel(t.Selftests)}
	for _, l := range t.Lib {
		rt.Lib = append(rt.Lib, rel(l))
	}
	rs := s
	rs.Main = rel(s.Main)
	h.add(compileCommand(rt, rs, "<include>", "<out>")...)
	if err := h.addTree(t.Src, rel(s.Main)); err != nil {
		return "", err
	}
	if err := h.addTree(t.Src, rel(filepath.Join(t.Dir, "lib"))); err != nil {
		return "", err
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
