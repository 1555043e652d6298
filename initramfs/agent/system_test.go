package agent

import (
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
	if len(got) != len(want) {
		t.Fatalf("ParseVmstat = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}
