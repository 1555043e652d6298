package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

// InitrdPath is where the kernel exposes the retained initramfs
// (retain_initrd on the command line); the agent kexecs with it.
const InitrdPath = "/sys/firmware/initrd"

// Machine is the real System of a guest.
type Machine struct{}

// MountBasics mounts what PID 1 of an initramfs needs: devtmpfs (for
// /dev/liveupdate), proc, sysfs, debugfs and a tmpfs on /tmp.
func MountBasics() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && err != unix.EBUSY {
			if m.fs == "debugfs" {
				continue // optional
			}
			return fmt.Errorf("mounting %s on %s: %w", m.fs, m.dst, err)
		}
	}
	return nil
}

// Cmdline returns /proc/cmdline.
func Cmdline() (string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	return strings.TrimSpace(string(b)), err
}

// Stage returns the stage number from the command line (0 if absent).
func Stage(cmdline string) (int, error) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, plan.StageParam+"="); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("bad %s=%q on the command line", plan.StageParam, v)
			}
			return n, nil
		}
	}
	return 0, nil
}

// PrevCapsParam carries the capabilities of the kernel that preserved
// the files to the kernel that retrieves them: whether holes were filled
// is the preserving kernel's doing. They appear as "prev:<cap>".
const PrevCapsParam = "luo_prevcaps"

// NextCmdline returns cmdline with the stage parameter set to stage and
// the current kernel's capabilities (caps, may be nil) passed on.
func NextCmdline(cmdline string, stage int, caps map[string]bool) string {
	var out []string
	for _, f := range strings.Fields(cmdline) {
		if !strings.HasPrefix(f, plan.StageParam+"=") && !strings.HasPrefix(f, PrevCapsParam+"=") {
			out = append(out, f)
		}
	}
	out = append(out, fmt.Sprintf("%s=%d", plan.StageParam, stage))
	var names []string
	for c, ok := range caps {
		if ok && !strings.HasPrefix(c, "prev:") && !strings.ContainsAny(c, " ,") {
			names = append(names, c)
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		out = append(out, PrevCapsParam+"="+strings.Join(names, ","))
	}
	return strings.Join(out, " ")
}

// PrevCaps returns the capabilities the previous kernel passed on, as
// "prev:<cap>" names.
func PrevCaps(cmdline string) map[string]bool {
	caps := map[string]bool{}
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, PrevCapsParam+"="); ok {
			for _, c := range strings.Split(v, ",") {
				if c != "" {
					caps["prev:"+c] = true
				}
			}
		}
	}
	return caps
}

// Kexec implements System.
func (Machine) Kexec(kernel, cmdline string) error {
	kfd, err := unix.Open(kernel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening kernel %s: %w", kernel, err)
	}
	defer unix.Close(kfd)
	ifd, err := unix.Open(InitrdPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s (is retain_initrd on the command line?): %w", InitrdPath, err)
	}
	defer unix.Close(ifd)
	if err := unix.KexecFileLoad(kfd, ifd, cmdline, 0); err != nil {
		return fmt.Errorf("kexec_file_load(%s): %w", kernel, err)
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return fmt.Errorf("reboot(LINUX_REBOOT_CMD_KEXEC): %w", err)
	}
	return fmt.Errorf("reboot(LINUX_REBOOT_CMD_KEXEC) returned")
}

// Meminfo implements System: /proc/meminfo, the hugetlb pool's counters
// per huge page size and per node from sysfs (HugepageCounters), and,
// when the agent is in a cgroup of its own, that group's charges
// (CgroupCounters).
func (Machine) Meminfo() (map[string]int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	mi := ParseMeminfo(b)
	for k, v := range HugepageCounters("/sys") {
		mi[k] = v
	}
	// In a group of its own (OpCgroup), what the group is charged for.
	if self, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		if g := ownCgroup(self); g != "/" {
			for k, v := range CgroupCounters(filepath.Join(CgroupRoot, g)) {
				mi[k] = v
			}
		}
	}
	return mi, nil
}

// HugepageCounters reads the hugetlb pool's counters under the sysfs root
// sys, keyed by their path below it without the common prefix:
//
//	hugepages-2048kB/nr_hugepages        (kernel/mm/hugepages/...)
//	node0/hugepages-2048kB/free_hugepages (devices/system/node/...)
//
// for nr_, free_, resv_ and surplus_hugepages (the nodes have no resv_).
// Counters that cannot be read are left out.
func HugepageCounters(sys string) map[string]int64 {
	out := map[string]int64{}
	read := func(dir, prefix string) {
		sizes, _ := filepath.Glob(filepath.Join(dir, "hugepages-*"))
		for _, sd := range sizes {
			for _, c := range []string{"nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages"} {
				b, err := os.ReadFile(filepath.Join(sd, c))
				if err != nil {
					continue
				}
				if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
					out[prefix+filepath.Base(sd)+"/"+c] = n
				}
			}
		}
	}
	read(filepath.Join(sys, "kernel/mm/hugepages"), "")
	nodes, _ := filepath.Glob(filepath.Join(sys, "devices/system/node/node[0-9]*"))
	for _, nd := range nodes {
		read(filepath.Join(nd, "hugepages"), filepath.Base(nd)+"/")
	}
	return out
}

// ParseMeminfo parses /proc/meminfo; values are in kB (counts for the
// HugePages_ fields).
func ParseMeminfo(b []byte) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		if n, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// readVmstat returns /proc/vmstat, empty if it cannot be read.
func readVmstat() map[string]int64 {
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return map[string]int64{}
	}
	return ParseVmstat(b)
}

// ParseVmstat parses /proc/vmstat ("name value" per line).
func ParseVmstat(b []byte) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 2 {
			continue
		}
		if n, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
			out[fs[0]] = n
		}
	}
	return out
}

// PowerOff turns the machine off; PID 1 must never exit.
func PowerOff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// If power-off is not possible, halting still ends the VM under
	// -no-reboot only through a panic; sleep forever instead and let
	// the host's timeout speak.
	select {}
}

// DetectCaps returns what the running kernel offers, as capability names
// the plan's expectations are keyed by:
//
//	liveupdate         /dev/liveupdate exists
//	memfd_luo:<token>  a feature token the kernel declares in
//	                   /sys/module/memfd_luo/parameters/features
//	abi-knob, abi:<v>  memfd_luo.abi= exists and its value
//	hugetlb-pool       a hugetlb pool is configured
//	numa               the kernel has NUMA nodes in sysfs (per-node counters)
//	thp-shmem-always   shmem THP is enabled for every mapping
//	corrupt-hook       the memfd_luo corruption test hook is there
//	swap               the kernel has swap (/proc/swaps)
//	zram               a zram device can be set up (zram0 or zram-control)
func DetectCaps() map[string]bool {
	caps := map[string]bool{}
	if _, err := os.Stat("/dev/liveupdate"); err == nil {
		caps["liveupdate"] = true
	}
	if b, err := os.ReadFile("/sys/module/memfd_luo/parameters/features"); err == nil {
		for _, t := range strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
			caps[t] = true
		}
	}
	if b, err := os.ReadFile("/sys/module/memfd_luo/parameters/abi"); err == nil {
		caps["abi-knob"] = true
		caps["abi:"+strings.TrimSpace(string(b))] = true
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if ParseMeminfo(b)["HugePages_Total"] > 0 {
			caps["hugetlb-pool"] = true
		}
	}
	if _, err := os.Stat("/sys/devices/system/node/node0"); err == nil {
		caps["numa"] = true
	}
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/shmem_enabled"); err == nil && strings.Contains(string(b), "[always]") {
		caps["thp-shmem-always"] = true
	}
	if _, err := os.Stat(plan.CorruptHookPath); err == nil {
		caps["corrupt-hook"] = true
	}
	if _, err := os.Stat("/proc/swaps"); err == nil {
		caps["swap"] = true
	}
	for _, p := range []string{"/sys/block/zram0", "/sys/class/zram-control"} {
		if _, err := os.Stat(p); err == nil {
			caps["zram"] = true
		}
	}
	return caps
}

// KernelIdentity returns "release version" of the running kernel.
func KernelIdentity() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
}

// setModuleParam writes data to /sys/module/<param>, where param is
// "module/name" (e.g. "memfd_luo/abi"). A missing parameter fails with
// ENOENT, a value the kernel refuses with its errno (EINVAL).
func setModuleParam(param, data string) error {
	mod, name, ok := strings.Cut(param, "/")
	if !ok || mod == "" || name == "" || strings.ContainsAny(name, "/") || strings.Contains(param, "..") {
		return fmt.Errorf("plan error: module parameter %q is not \"module/name\"", param)
	}
	path := filepath.Join("/sys/module", mod, "parameters", name)
	if err := os.WriteFile(path, []byte(data), 0); err != nil {
		return fmt.Errorf("writing %q to %s: %w", data, path, err)
	}
	return nil
}

// setSysctl writes data to the sysctl name ("vm/nr_overcommit_hugepages")
// under procSys (/proc/sys).
func setSysctl(procSys, name, data string) error {
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return fmt.Errorf("plan error: sysctl %q is not a path below /proc/sys", name)
	}
	path := filepath.Join(procSys, name)
	if err := os.WriteFile(path, []byte(data), 0); err != nil {
		return fmt.Errorf("writing %q to %s: %w", data, path, err)
	}
	return nil
}
