package vm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Accel is a QEMU accelerator.
type Accel string

// Accelerators.
const (
	AccelAuto Accel = ""
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg"
)

// KVMUsable reports whether /dev/kvm answers KVM_GET_API_VERSION.
func KVMUsable() bool {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	const kvmGetAPIVersion = 0xAE00 // _IO(KVMIO, 0x00)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	return err == nil && v == 12
}

// kvmProbeBudget is how long SeaBIOS may take to reach its boot message
// under KVM for KVM to count as usable. Under TCG it takes ~0.3 s on the
// project machine; under a working KVM less. On a nested host without
// hardware support, /dev/kvm answers but the same takes ~30 s, and a kernel
// then shows no output for minutes.
const kvmProbeBudget = 5 * time.Second

// ProbeKVM checks that QEMU really runs a KVM guest with -cpu host, and
// fast: on some nested hosts /dev/kvm answers but QEMU aborts at vCPU
// reset, on others the guest crawls. It boots an empty machine and calls
// KVM usable if SeaBIOS reaches its boot message ("Booting from ..." or
// "No bootable device") within kvmProbeBudget.
func ProbeKVM(ctx context.Context, qemuBin string) (bool, string) {
	if !KVMUsable() {
		return false, "/dev/kvm is missing or not usable"
	}
	ctx, cancel := context.WithTimeout(ctx, kvmProbeBudget)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuBin, "-accel", "kvm", "-cpu", "host", "-machine", "pc",
		"-nodefaults", "-nographic", "-serial", "stdio", "-no-reboot", "-m", "128")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return false, fmt.Sprintf("KVM probe: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return false, fmt.Sprintf("KVM probe: starting %s: %v", qemuBin, err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	last := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" {
			last = line
		}
		if strings.Contains(line, "Booting from") || strings.Contains(line, "No bootable device") {
			return true, fmt.Sprintf("KVM guest reached the BIOS boot message in %s", time.Since(start).Round(time.Millisecond))
		}
	}
	if ctx.Err() != nil {
		return false, fmt.Sprintf("QEMU with -accel kvm -cpu host did not reach the BIOS boot message within %s "+
			"(nested virtualization without hardware support?)", kvmProbeBudget)
	}
	return false, fmt.Sprintf("QEMU with -accel kvm -cpu host exited before the BIOS boot message (last output: %q)", last)
}

// ResolveAccel turns AccelAuto into the accelerator a run will use and
// says why. The KVM probe result is cached in cacheFile (keyed by the
// host's boot id) when cacheFile is not empty.
func ResolveAccel(ctx context.Context, a Accel, qemuBin, cacheFile string) (Accel, string) {
	if a != AccelAuto {
		return a, "requested"
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	// "probe2": the probe measures speed now; older results are void.
	key := strings.TrimSpace(string(bootID)) + " " + qemuBin + " probe2"
	if cacheFile != "" {
		if b, err := os.ReadFile(cacheFile); err == nil {
			if k, v, ok := strings.Cut(string(b), "\n"); ok && k == key {
				acc, why, _ := strings.Cut(v, " ")
				return Accel(acc), why
			}
		}
	}
	acc, why := AccelTCG, ""
	if ok, reason := ProbeKVM(ctx, qemuBin); ok {
		acc, why = AccelKVM, reason
	} else {
		why = "TCG because " + reason
	}
	if cacheFile != "" {
		os.WriteFile(cacheFile, []byte(key+"\n"+string(acc)+" "+why), 0o644)
	}
	return acc, why
}
