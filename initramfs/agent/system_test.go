package agent

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNextCmdlinePassesCapsOn(t *testing.T) {
	tests := []struct {
		name, cmdline string
		stage         int
		caps          map[string]bool
		want          string
	}{
		{"first hop", "console=ttyS0 liveupdate=on", 1, map[string]bool{"sparse": true, "liveupdate": true},
			"console=ttyS0 liveupdate=on luo_stage=1 luo_prevcaps=liveupdate,sparse"},
		{"replaces old values", "a luo_stage=1 luo_prevcaps=sparse b", 2, map[string]bool{"noexec-fix": true, "prev:sparse": true},
			"a b luo_stage=2 luo_prevcaps=noexec-fix"},
		{"no caps", "a", 1, nil, "a luo_stage=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NextCmdline(tc.cmdline, tc.stage, tc.caps)
			if got != tc.want {
				t.Errorf("NextCmdline = %q, want %q", got, tc.want)
			}
			prev := PrevCaps(got)
			for c, ok := range tc.caps {
				if ok && !strings.HasPrefix(c, "prev:") && !prev["prev:"+c] {
					t.Errorf("PrevCaps(%q) lacks prev:%s", got, c)
				}
			}
		})
	}
}

func TestParseVmstat(t *testing.T) {
	got := ParseVmstat([]byte("nr_free_pages 12345\npgmigrate_success 17\nbogus\npgmigrate_fail x\nnr_free_cma 0\n"))
	want := map[string]int64{"nr_free_pages": 12345, "pgmigrate_success": 17, "nr_free_cma": 0}
	checkCounters(t, got, want)
}

func TestHugepageCounters(t *testing.T) {
	sys := t.TempDir()
	files := map[string]string{
		"kernel/mm/hugepages/hugepages-2048kB/nr_hugepages":                      "16\n",
		"kernel/mm/hugepages/hugepages-2048kB/free_hugepages":                    "14\n",
		"kernel/mm/hugepages/hugepages-2048kB/resv_hugepages":                    "0\n",
		"kernel/mm/hugepages/hugepages-2048kB/surplus_hugepages":                 "2\n",
		"kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages":                   "1\n",
		"kernel/mm/hugepages/hugepages-1048576kB/demote":                         "0\n",
		"devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages":      "16\n",
		"devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages":    "garbage\n",
		"devices/system/node/node1/hugepages/hugepages-2048kB/surplus_hugepages": "3\n",
		"devices/system/node/possible":                                           "0-1\n",
	}
	writeTree(t, sys, files)
	got := HugepageCounters(sys)
	want := map[string]int64{
		"hugepages-2048kB/nr_hugepages":            16,
		"hugepages-2048kB/free_hugepages":          14,
		"hugepages-2048kB/resv_hugepages":          0,
		"hugepages-2048kB/surplus_hugepages":       2,
		"hugepages-1048576kB/nr_hugepages":         1,
		"node0/hugepages-2048kB/nr_hugepages":      16,
		"node1/hugepages-2048kB/surplus_hugepages": 3,
	}
	checkCounters(t, got, want)
	if n := len(HugepageCounters(filepath.Join(sys, "missing"))); n != 0 {
		t.Errorf("a missing sysfs gave %d counters, want 0", n)
	}
}
