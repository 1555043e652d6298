package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// InTreeDir is the kernel tree's own Live Update selftest directory.
const InTreeDir = "tools/testing/selftests/liveupdate"

// InTreeMemory and InTreeCPUs are what vmtest.sh gives its VM.
const (
	InTreeMemory = "1G"
	InTreeCPUs   = "2"
)

// InTree runs the kernel tree's vmtest.sh flow against a prebuilt kernel:
// the same compiler invocations, cpio lists and QEMU command line, minus
// the kernel build (the kernel is the harness's cached one, so both sides
// start from the same bzImage). Nothing is written into SrcDir.
type InTree struct {
	// SrcDir is the kernel source tree the kernel was built from.
	SrcDir string
	// BzImage is the kernel to boot (and kexec into).
	BzImage string
	// Work is a scratch directory (under the cache).
	Work string
	// Test is the test program (default luo_kexec_simple).
	Test string
	// CC is the C compiler (default gcc); QEMU the emulator (default
	// qemu-system-x86_64).
	CC, QEMU string
	Log      io.Writer
}

func (t *InTree) defaults() {
	if t.Test == "" {
		t.Test = "luo_kexec_simple"
	}
	if t.CC == "" {
		t.CC = "gcc"
	}
	if t.QEMU == "" {
		t.QEMU = "qemu-system-x86_64"
	}
	if t.Log == nil {
		t.Log = io.Discard
	}
}

// WorkDir returns a scratch directory for srcDir under cacheDir.
func WorkDir(cacheDir, srcDir string) string {
	h := sha256.Sum256([]byte(srcDir))
	return filepath.Join(cacheDir, "bench", "vmtest", hex.EncodeToString(h[:])[:16])
}

func (t *InTree) testDir() string { return filepath.Join(t.SrcDir, InTreeDir) }
func (t *InTree) headers() string { return filepath.Join(t.Work, "obj", "usr", "include") }
func (t *InTree) genCPIO() string { return filepath.Join(t.Work, "gen_init_cpio") }

// Prepare does what vmtest.sh gets from its kernel build: the uAPI
// headers (`make headers`, what headers_install installs) and
// usr/gen_init_cpio. Both are kept in Work; it returns how long it took.
func (t *InTree) Prepare(ctx context.Context) (time.Duration, error) {
	t.defaults()
	start := time.Now()
	if _, err := os.Stat(filepath.Join(t.testDir(), "vmtest.sh")); err != nil {
		return 0, fmt.Errorf("in-tree flow: %s has no vmtest.sh: %w", t.testDir(), err)
	}
	if err := os.MkdirAll(t.Work, 0o755); err != nil {
		return 0, fmt.Errorf("in-tree flow: %w", err)
	}
	if _, err := os.Stat(filepath.Join(t.headers(), "linux", "liveupdate.h")); err != nil {
		args := []string{"-s", "-C", t.SrcDir, "O=" + filepath.Join(t.Work, "obj"), "-j" + strconv.Itoa(runtime.NumCPU()), "headers"}
		fmt.Fprintf(t.Log, "in-tree flow: make %s\n", strings.Join(args, " "))
		if err := run(ctx, nil, "make", args...); err != nil {
			return 0, fmt.Errorf("in-tree flow: generating uAPI headers: %w", err)
		}
	}
	if _, err := os.Stat(t.genCPIO()); err != nil {
		if err := run(ctx, nil, t.CC, "-O2", "-o", t.genCPIO(), filepath.Join(t.SrcDir, "usr", "gen_init_cpio.c")); err != nil {
			return 0, fmt.Errorf("in-tree flow: building gen_init_cpio: %w", err)
		}
	}
	return time.Since(start), nil
}

// InTreeRun is one run of the flow.
type InTreeRun struct {
	Prep, QEMU time.Duration
	// Command is the QEMU command line.
	Command string
	Serial  string
	Passed  bool
	// Reason says why the run did not pass.
	Reason string
}

// Run builds the initrd the way vmtest.sh's mkinitrd does, in a fresh
// workspace ws, and boots it the way run_qemu does (TCG first: the script
// passes -accel tcg before kvm). timeout bounds QEMU (vmtest.sh: 30 s).
func (t *InTree) Run(ctx context.Context, ws string, timeout time.Duration) (*InTreeRun, error) {
	t.defaults()
	if err := os.RemoveAll(ws); err != nil {
		return nil, fmt.Errorf("in-tree flow: %w", err)
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return nil, fmt.Errorf("in-tree flow: %w", err)
	}
	r := &InTreeRun{Serial: filepath.Join(ws, "qemu.serial")}
	start := time.Now()
	td := t.testDir()
	nolibc := filepath.Join(t.SrcDir, "tools", "include", "nolibc")
	if err := run(ctx, nil, t.CC, "-static", "-O2", "-nostdinc", "-nostdlib",
		"-I", t.headers(), "-I", nolibc, "-I", filepath.Join(td, "lib", "include"),
		"-o", filepath.Join(ws, "test_binary"),
		filepath.Join(td, t.Test+".c"), filepath.Join(td, "lib", "lu_utils.c")); err != nil {
		return nil, fmt.Errorf("in-tree flow: compiling %s: %w", t.Test, err)
	}
	if err := run(ctx, nil, t.CC, "-s", "-static", "-Os", "-nostdinc", "-nostdlib",
		"-fno-asynchronous-unwind-tables", "-fno-ident", "-fno-stack-protector",
		"-I", t.headers(), "-I", nolibc,
		"-o", filepath.Join(ws, "init"), filepath.Join(td, "init.c")); err != nil {
		return nil, fmt.Errorf("in-tree flow: compiling init.c: %w", err)
	}
	inner := fmt.Sprintf(`dir /dev 0755 0 0
dir /proc 0755 0 0
dir /debugfs 0755 0 0
nod /dev/console 0600 0 0 c 5 1
file /init %[1]s/init 0755 0 0
file /test_binary %[1]s/test_binary 0755 0 0
`, ws)
	outer := fmt.Sprintf(`dir /dev 0755 0 0
dir /proc 0755 0 0
dir /debugfs 0755 0 0
nod /dev/console 0600 0 0 c 5 1
file /init %[1]s/init 0755 0 0
file /kernel %[2]s 0644 0 0
file /test_binary %[1]s/test_binary 0755 0 0
file /initrd.img %[1]s/inner_initrd.cpio 0644 0 0
`, ws, t.BzImage)
	initrd := filepath.Join(ws, "initrd.cpio")
	for _, c := range []struct{ list, text, out string }{
		{"cpio_list_inner", inner, "inner_initrd.cpio"},
		{"cpio_list", outer, "initrd.cpio"},
	} {
		list := filepath.Join(ws, c.list)
		if err := os.WriteFile(list, []byte(c.text), 0o644); err != nil {
			return nil, fmt.Errorf("in-tree flow: %w", err)
		}
		f, err := os.Create(filepath.Join(ws, c.out))
		if err != nil {
			return nil, fmt.Errorf("in-tree flow: %w", err)
		}
		err = run(ctx, f, t.genCPIO(), list)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("in-tree flow: gen_init_cpio %s: %w", c.list, err)
		}
	}
	r.Prep = time.Since(start)

	args := []string{"-m", InTreeMemory, "-smp", InTreeCPUs, "-no-reboot", "-nographic", "-nodefaults",
		"-accel", "tcg", "-accel", "hvf", "-accel", "kvm",
		"-serial", "file:" + r.Serial,
		"-append", "console=ttyS0 liveupdate=on panic=-1",
		"-kernel", t.BzImage, "-initrd", initrd}
	// The command as vmtest.sh spells it, without this run's paths.
	r.Command = commandLine(t.QEMU, args, map[string]string{ws: "$workspace", t.BzImage: "$kernel"})
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	qstart := time.Now()
	err := run(qctx, nil, t.QEMU, args...)
	r.QEMU = time.Since(qstart)
	if ctx.Err() != nil {
		return r, fmt.Errorf("in-tree flow: %w", ctx.Err())
	}
	serial, rerr := os.ReadFile(r.Serial)
	switch {
	case qctx.Err() != nil:
		r.Reason = fmt.Sprintf("QEMU did not exit within %s", timeout)
	case rerr != nil:
		r.Reason = fmt.Sprintf("no serial log: %v", rerr)
	case !bytes.Contains(serial, []byte("TEST PASSED")):
		r.Reason = "no \"TEST PASSED\" on the serial console (vmtest.sh: Liveupdate failed)"
		if err != nil {
			r.Reason += fmt.Sprintf("; QEMU: %v", err)
		}
	default:
		r.Passed = true
	}
	return r, nil
}

// commandLine renders a command for the reader: quoted where needed,
// with the paths in subst replaced by their names.
func commandLine(name string, args []string, subst map[string]string) string {
	out := []string{name}
	for _, a := range args {
		for path, v := range subst {
			a = strings.ReplaceAll(a, path, v)
		}
		if strings.ContainsAny(a, " \t") {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// run runs a command; its standard output goes to stdout when given, and
// the combined output is quoted in the error.
func run(ctx context.Context, stdout io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stderr = &out
	cmd.Stdout = &out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		if msg != "" {
			return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, msg)
		}
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
