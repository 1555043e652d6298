package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCgroupRoot is a directory laid out like a cgroup v2 root with the
// controllers given.
func fakeCgroupRoot(t *testing.T, controllers string) string {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"cgroup.controllers": controllers + "\n", "cgroup.subtree_control": "", "cgroup.procs": ""})
	return root
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJoinCgroup(t *testing.T) {
	root := fakeCgroupRoot(t, "cpuset cpu io memory hugetlb pids")
	if err := joinCgroup(root, "/lim", []string{"hugetlb.2MB.max=4194304"}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "cgroup.subtree_control")); got != "+memory +hugetlb" {
		t.Errorf("subtree_control = %q, want +memory +hugetlb", got)
	}
	if got := readFile(t, filepath.Join(root, "lim", "hugetlb.2MB.max")); got != "4194304" {
		t.Errorf("hugetlb.2MB.max = %q", got)
	}
	if got := readFile(t, filepath.Join(root, "lim", "cgroup.procs")); got != "0" {
		t.Errorf("lim/cgroup.procs = %q, want 0 (the writer)", got)
	}
	// Back to the root: nothing created, the root's procs written.
	if err := joinCgroup(root, "/", nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "cgroup.procs")); got != "0" {
		t.Errorf("cgroup.procs = %q, want 0", got)
	}
}

func TestJoinCgroupErrors(t *testing.T) {
	for _, tc := range []struct {
		name, controllers, group string
		settings                 []string
		want                     string
	}{
		{"no hugetlb controller", "cpu memory", "g", nil, "cgroup controller hugetlb is not available"},
		{"escape", "memory hugetlb", "../x", nil, `cgroup "../x" leaves`},
		{"bad setting", "memory hugetlb", "g", []string{"hugetlb.2MB.max"}, "is not file=value"},
		{"setting with a path", "memory hugetlb", "g", []string{"../cgroup.procs=1"}, "is not file=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeCgroupRoot(t, tc.controllers)
			err := joinCgroup(root, tc.group, tc.settings)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestOwnCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"0::/lim\n":                 "/lim",
		"0::/\n":                    "/",
		"":                          "/",
		"1:name=systemd:/\n0::/a/b": "/a/b",
	} {
		if got := ownCgroup([]byte(in)); got != want {
			t.Errorf("ownCgroup(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCgroupCounters(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"hugetlb.2MB.current":      "4194304\n",
		"hugetlb.2MB.rsvd.current": "6291456\n",
		"hugetlb.2MB.max":          "max\n",
		"hugetlb.1GB.current":      "0\n",
		"memory.current":           "garbage\n",
	})
	checkCounters(t, CgroupCounters(dir), map[string]int64{
		"cgroup/hugetlb.2MB.current":      4194304,
		"cgroup/hugetlb.2MB.rsvd.current": 6291456,
		"cgroup/hugetlb.1GB.current":      0,
	})
}

func TestSetSysctl(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "vm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := setSysctl(root, "vm/nr_overcommit_hugepages", "8"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "vm", "nr_overcommit_hugepages")); got != "8" {
		t.Errorf("wrote %q, want 8", got)
	}
	for _, bad := range []string{"", "../etc/passwd", "/vm/x"} {
		if err := setSysctl(root, bad, "1"); err == nil || !strings.Contains(err.Error(), "plan error") {
			t.Errorf("setSysctl(%q) = %v, want a plan error", bad, err)
		}
	}
	if err := setSysctl(root, "vm/missing/x", "1"); err == nil {
		t.Error("writing below a missing directory succeeded")
	}
}
