package agent

import (
	"strings"
	"testing"
)

func TestReadScratch(t *testing.T) {
	for _, tc := range []struct {
		name, phys, lens string
		want             []physRange
		err              string
		prefix           string
	}{
		{"two areas", "0x1000000\n0x40000000\n", "0x2000000\n0x10000000\n",
			[]physRange{{0x1000000, 0x3000000}, {0x40000000, 0x50000000}}, "", ""},
		{"7.4 names", "0x1000000\n0x40000000\n", "0x2000000\n0x10000000\n",
			[]physRange{{0x1000000, 0x3000000}, {0x40000000, 0x50000000}}, "", "bootmem"},
		{"lengths missing", "0x1000000\n", "", nil, "1 addresses and 0 lengths", ""},
		{"garbage", "0x1000000\n", "lots\n", nil, `"lots" is not a number`, ""},
		{"no files", "", "", nil, "CONFIG_KEXEC_HANDOVER_DEBUGFS", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.name != "no files" {
				p := tc.prefix
				if p == "" {
					p = "scratch"
				}
				writeTree(t, dir, map[string]string{p + "_phys": tc.phys, p + "_len": tc.lens})
			}
			got, err := readScratch(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("area %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
			if !inRanges(got, 0x2fff000) || inRanges(got, 0x3000000) || inRanges(got, 0xfff000) {
				t.Errorf("inRanges gets the bounds of %v wrong", got)
			}
		})
	}
}

func TestPagemapPFN(t *testing.T) {
	for _, tc := range []struct {
		entry   uint64
		pfn     uint64
		present bool
	}{
		{1<<63 | 0x12345, 0x12345, true},
		{1<<63 | 1<<55 | 1<<61 | 0x42, 0x42, true}, // soft-dirty and file-page bits are not the frame
		{0x12345, 0x12345, false},
		{1<<62 | 7, 7, false}, // swapped: not present
	} {
		pfn, present := pagemapPFN(tc.entry)
		if pfn != tc.pfn || present != tc.present {
			t.Errorf("pagemapPFN(%#x) = %#x, %v; want %#x, %v", tc.entry, pfn, present, tc.pfn, tc.present)
		}
	}
}
