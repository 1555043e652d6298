package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CgroupRoot is where the agent mounts cgroup v2 for OpCgroup.
const CgroupRoot = "/sys/fs/cgroup"

// cgroupControllers are enabled for the groups OpCgroup creates.
var cgroupControllers = []string{"memory", "hugetlb"}

// mountCgroup2 mounts cgroup v2 at root unless it is there already, with
// memory_hugetlb_accounting, so that the memory controller counts hugetlb
// pages as a hugetlb allocation in the kernel charges them (where the
// kernel knows the option; without it the mount is retried plain).
func mountCgroup2(root string) error {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", root, err)
	}
	err := unix.Mount("cgroup2", root, "cgroup2", 0, "memory_hugetlb_accounting")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("cgroup2", root, "cgroup2", 0, "")
	}
	if err != nil {
		return fmt.Errorf("mounting cgroup2 on %s: %w", root, err)
	}
	return nil
}

// joinCgroup runs an OpCgroup below root (cgroup v2, mounted already):
// it enables the memory and hugetlb controllers for the root's children,
// creates group, writes each "file=value" of settings into it and moves
// the agent's process into it. Group "" or "/" moves it back to the root.
func joinCgroup(root, group string, settings []string) error {
	group = strings.Trim(group, "/")
	dir := root
	if group != "" {
		if strings.Contains(group, "..") {
			return fmt.Errorf("plan error: cgroup %q leaves %s", group, root)
		}
		avail, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("reading the controllers of %s: %w", root, err)
		}
		var enable []string
		for _, c := range cgroupControllers {
			if !strings.Contains(" "+strings.TrimSpace(string(avail))+" ", " "+c+" ") {
				return fmt.Errorf("cgroup controller %s is not available (kernel config?): %s has %q", c, root, strings.TrimSpace(string(avail)))
			}
			enable = append(enable, "+"+c)
		}
		if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0); err != nil {
			return fmt.Errorf("enabling %v for the children of %s: %w", enable, root, err)
		}
		dir = filepath.Join(root, group)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
	}
	for _, kv := range settings {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.Contains(k, "/") {
			return fmt.Errorf("plan error: cgroup setting %q is not file=value", kv)
		}
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0); err != nil {
			return fmt.Errorf("writing %q to %s: %w", v, filepath.Join(dir, k), err)
		}
	}
	// "0" is the writing process, with all its threads.
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte("0"), 0); err != nil {
		return fmt.Errorf("moving the agent into %s: %w", dir, err)
	}
	return nil
}

// ownCgroup returns the agent's cgroup v2 path ("/" for the root) from
// /proc/self/cgroup's content b.
func ownCgroup(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	return "/"
}

// CgroupCounters reads the counters of the cgroup dir that say what it is
// charged for, keyed "cgroup/<file>": memory.current and, per huge page
// size, hugetlb.<size>.current and hugetlb.<size>.rsvd.current (bytes).
// Counters that cannot be read are left out.
func CgroupCounters(dir string) map[string]int64 {
	out := map[string]int64{}
	files, _ := filepath.Glob(filepath.Join(dir, "hugetlb.*.current"))
	files = append(files, filepath.Join(dir, "memory.current"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			out["cgroup/"+filepath.Base(f)] = n
		}
	}
	return out
}
