package agent

import (
	"encoding/binary"
	"testing"

	"github.com/memfd-luo/memfd-luo/initramfs/plan"
)

func TestSwapHeader(t *testing.T) {
	h, err := SwapHeader(4096, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4096 {
		t.Fatalf("header of %d bytes", len(h))
	}
	if got := string(h[4096-10:]); got != "SWAPSPACE2" {
		t.Errorf("magic %q", got)
	}
	// union swap_header's info: version, last_page, nr_badpages after
	// 1024 bytes of boot space.
	if v := binary.LittleEndian.Uint32(h[1024:]); v != 1 {
		t.Errorf("version %d", v)
	}
	if v := binary.LittleEndian.Uint32(h[1028:]); v != 16383 {
		t.Errorf("last_page %d, want 16383", v)
	}
	if v := binary.LittleEndian.Uint32(h[1032:]); v != 0 {
		t.Errorf("nr_badpages %d", v)
	}
	for i, b := range h[:1024] {
		if b != 0 {
			t.Fatalf("boot space byte %d is %#x", i, b)
		}
	}
	if _, err := SwapHeader(4096, 9*4096); err == nil {
		t.Error("a 9-page swap area")
	}
	if _, err := SwapHeader(3000, 1<<20); err == nil {
		t.Error("page size 3000")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "64M": 64 << 20, "1g": 1 << 30, "8K": 8192} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "0", "12X"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestParseSmaps(t *testing.T) {
	const smaps = `55d0c0000000-55d0c0021000 r--p 00000000 00:02 7 /init
Size:                132 kB
Rss:                 132 kB
Swap:                  0 kB
VmFlags: rd mr mw me
7f0000000000-7f0001000000 r--s 00000000 00:01 1030 /memfd:a (deleted)
Size:              16384 kB
Rss:                 120 kB
Swap:              16264 kB
SwapPss:               0 kB
VmFlags: rd sh mr mw me ms
7f0001000000-7f0001001000 rw-p 00000000 00:00 0
Rss:                   4 kB
Swap:                  4 kB
`
	got := ParseSmaps([]byte(smaps), 0x7f0000000000)
	if got["Rss"] != 120 || got["Swap"] != 16264 || got["Size"] != 16384 {
		t.Errorf("ParseSmaps = %v", got)
	}
	if got := ParseSmaps([]byte(smaps), 0x1234); len(got) != 0 {
		t.Errorf("no such mapping: %v", got)
	}
}

// pageout looks for the data with SEEK_DATA/SEEK_HOLE, which move the file
// position: the position must survive it (the host may have no swap: the
// step only reports).
func TestPageoutKeepsPosition(t *testing.T) {
	f := plan.File{Name: "p", Flags: plan.MFDAllowSeal, Size: 1 << 20, Seed: 8, Pos: 12345,
		Extents: []plan.Extent{{Off: 0, Len: 64 << 10}, {Off: 512 << 10, Len: 64 << 10}}}
	evs := run(t, []plan.File{f}, []plan.Step{
		{Op: plan.OpCreateMemfd, File: "p"},
		{Op: plan.OpPageout, File: "p"},
		{Op: plan.OpVerify, File: "p"},
	})
	for _, ev := range evs {
		if !ev.Pass {
			t.Errorf("step %d %s: %s", ev.Step, ev.Op, ev.Detail)
		}
	}
	if got := evs[1].Values["pages"]; got != 32 {
		t.Errorf("pageout found %d data pages, want 32 (holes are not touched)", got)
	}
}
