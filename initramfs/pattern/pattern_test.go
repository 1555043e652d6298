package pattern

import (
	"strings"
	"testing"
)

func TestFillDependsOnlyOnOffset(t *testing.T) {
	whole := make([]byte, 3*PageSize+13)
	Fill(whole, 42, 5)
	for _, split := range []int{1, 7, 8, 100, PageSize, 2*PageSize + 3} {
		part := make([]byte, len(whole))
		Fill(part[:split], 42, 5)
		Fill(part[split:], 42, 5+int64(split))
		if string(part) != string(whole) {
			t.Errorf("split at %d: content differs from one-shot fill", split)
		}
	}
}

func TestFillSeedsDiffer(t *testing.T) {
	a, b := make([]byte, PageSize), make([]byte, PageSize)
	Fill(a, 1, 0)
	Fill(b, 2, 0)
	if string(a) == string(b) {
		t.Fatal("seeds 1 and 2 give the same page")
	}
	if string(a) == string(make([]byte, PageSize)) {
		t.Fatal("pattern is all zero")
	}
}

func TestModelLayersAndHoles(t *testing.T) {
	m := Model{Size: 4 * PageSize, Layers: []Layer{
		{Off: 0, Len: 2 * PageSize, Seed: 1},
		{Off: PageSize, Len: 10, Seed: 9}, // overwrite inside the first layer
	}}
	buf := make([]byte, m.Size)
	m.Expected(buf, 0)
	want1 := make([]byte, PageSize)
	Fill(want1, 1, 0)
	if string(buf[:PageSize]) != string(want1) {
		t.Error("page 0 is not seed 1")
	}
	w9 := make([]byte, 10)
	Fill(w9, 9, PageSize)
	if string(buf[PageSize:PageSize+10]) != string(w9) {
		t.Error("later layer does not win")
	}
	if string(buf[2*PageSize:]) != string(make([]byte, 2*PageSize)) {
		t.Error("hole beyond the layers is not zero")
	}
}

func TestCompareFindsFlippedByte(t *testing.T) {
	tests := []struct {
		name      string
		base      int64
		flips     []int
		wantPages []int64
	}{
		{"identical", 0, nil, nil},
		{"one byte", 0, []int{5000}, []int64{4096}},
		{"two pages", 0, []int{0, 3 * PageSize}, []int64{0, 3 * PageSize}},
		{"unaligned base", 100, []int{PageSize - 100}, []int64{PageSize}},
		{"same page twice", 0, []int{10, 20}, []int64{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := make([]byte, 4*PageSize)
			Fill(want, 7, tc.base)
			got := append([]byte(nil), want...)
			for _, f := range tc.flips {
				got[f] ^= 0xff
			}
			ms, total := Compare(got, want, tc.base, 0)
			if total != len(tc.wantPages) || len(ms) != len(tc.wantPages) {
				t.Fatalf("got %d mismatching pages (%v), want %v", total, ms, tc.wantPages)
			}
			for i, m := range ms {
				if m.Page != tc.wantPages[i] {
					t.Errorf("mismatch %d at page %#x, want %#x", i, m.Page, tc.wantPages[i])
				}
			}
			if len(tc.flips) > 0 {
				first := tc.base + int64(tc.flips[0])
				if ms[0].First != first || ms[0].Want^ms[0].Got != 0xff {
					t.Errorf("first mismatch %+v, want offset %#x with flipped bits", ms[0], first)
				}
				if !strings.Contains(Summary(ms, total), "differ") {
					t.Errorf("summary %q does not report the difference", Summary(ms, total))
				}
			}
		})
	}
}

func TestCompareLimit(t *testing.T) {
	want := make([]byte, 8*PageSize)
	got := make([]byte, len(want))
	for i := range got {
		got[i] = 1
	}
	ms, total := Compare(got, want, 0, 3)
	if len(ms) != 3 || total != 8 {
		t.Fatalf("limit 3: got %d listed, %d total; want 3, 8", len(ms), total)
	}
}
