package pattern

import (
	"encoding/binary"
	"strings"
	"testing"
)

// raceExtent simulates a racer over n words at off: base content of seed
// 5, then progress words written in sweep order (generation 1 first);
// tornBytes > 0 writes only the low tornBytes bytes of the next word.
func raceExtent(off int64, n, progress int64, tornBytes int, seed uint64) (got, base []uint64) {
	base = make([]uint64, n)
	b := make([]byte, n*8)
	Fill(b, 5, off)
	for i := range base {
		base[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	got = append([]uint64(nil), base...)
	for p := int64(0); p < progress; p++ {
		i := p % n
		got[i] = RaceWord(seed, off+8*i, p/n+1)
	}
	if tornBytes > 0 {
		i := progress % n
		nw := RaceWord(seed, off+8*i, progress/n+1)
		lo := uint64(1)<<(8*tornBytes) - 1
		got[i] = nw&lo | got[i]&^lo
	}
	return got, base
}

func check(c *RaceChecker, got, base []uint64, skip func(i int) bool) RaceState {
	for i := range got {
		if skip != nil && skip(i) {
			continue
		}
		c.Feed(got[i], base[i], c.Off+8*int64(i))
	}
	return c.State()
}

func TestRaceCheckerAcceptsEveryPrefix(t *testing.T) {
	const off, n = 4096, 64
	for progress := int64(0); progress <= 3*n; progress++ {
		for torn := 0; torn < 8; torn++ {
			got, base := raceExtent(off, n, progress, torn, 77)
			c := &RaceChecker{Seed: 77, Off: off, Len: n * 8}
			s := check(c, got, base, nil)
			if s.Problem != "" {
				t.Fatalf("progress %d torn %d: %s", progress, torn, s.Problem)
			}
			want := progress
			i := progress % n
			old := base[i]
			if progress >= n {
				old = RaceWord(77, off+8*i, progress/n)
			}
			if torn > 0 && got[i] != old {
				want++ // a torn word counts as written (unless its new bytes equal the old ones)
			}
			// The largest progress the content allows: a whole
			// sweep reads as the end of that sweep.
			if s.Progress != want && !(want%n == 0 && want > 0 && s.Progress == want) {
				t.Fatalf("progress %d torn %d: checker says %d (%+v)", progress, torn, s.Progress, s)
			}
		}
	}
}

func TestRaceCheckerRejects(t *testing.T) {
	const off, n = 0, 32
	tests := []struct {
		name    string
		mutate  func(got, base []uint64)
		mention string
	}{
		{"lost word in the prefix (hole where the racer wrote)", func(got, base []uint64) { got[3] = base[3] }, "generation 0 after generation 2"},
		{"newer word after the cut", func(got, base []uint64) { got[20] = RaceWord(9, 8*20, 2) }, "generation 2 after generation 2, past the cut"},
		{"foreign value", func(got, base []uint64) { got[5] = 0xdeadbeef }, "never written"},
		{"zeroed word", func(got, base []uint64) { got[25] = 0 }, "never written"},
		{"generation from the future", func(got, base []uint64) { got[0] = RaceWord(9, 0, 3) }, "after generation 3"},
		{"two torn words", func(got, base []uint64) {
			got[10] = got[10]&0xff | base[10]&^0xff
			got[11] = got[11]&0xff | base[11]&^0xff
		}, "never written"},
		{"wrong offset", func(got, base []uint64) { got[7] = RaceWord(9, 8*8, 2) }, "never written"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, base := raceExtent(off, n, n+16, 0, 9) // gen 2 up to word 16
			tc.mutate(got, base)
			s := check(&RaceChecker{Seed: 9, Off: off, Len: n * 8}, got, base, nil)
			if !strings.Contains(s.Problem, tc.mention) {
				t.Errorf("problem %q does not mention %q", s.Problem, tc.mention)
			}
		})
	}
}

func TestRaceCheckerMaxGenAndSkips(t *testing.T) {
	const n = 16
	got, base := raceExtent(0, n, 2*n+3, 0, 4)
	if s := check(&RaceChecker{Seed: 4, Len: n * 8, MaxGen: 2}, got, base, nil); !strings.Contains(s.Problem, "never written") {
		t.Errorf("a third sweep of a two-sweep racer passed: %+v", s)
	}
	// Words not fed are unconstrained; the cut is the first word of
	// the older generation that was fed.
	s := check(&RaceChecker{Seed: 4, Len: n * 8}, got, base, func(i int) bool { return i >= 2 && i < 6 })
	if s.Problem != "" || s.Gen != 3 || s.Cut != 6*8 || s.Words != n-4 {
		t.Errorf("with words 2-5 skipped: %+v", s)
	}
	if s := check(&RaceChecker{Seed: 4, Len: n * 8}, got, base, func(int) bool { return true }); s.Words != 0 || s.Progress != 0 || s.Problem != "" {
		t.Errorf("nothing fed: %+v", s)
	}
}

func TestRaceWordCarriesGeneration(t *testing.T) {
	for _, g := range []int64{1, 2, 255, 256, RaceMaxGen} {
		w := RaceWord(1, 4096, g)
		if int64(w>>40) != g {
			t.Errorf("RaceWord gen %d has top bits %d", g, w>>40)
		}
	}
	buf := make([]byte, 24)
	RaceFill(buf, 3, 8, 2)
	if binary.LittleEndian.Uint64(buf[8:]) != RaceWord(3, 16, 2) {
		t.Error("RaceFill does not follow RaceWord")
	}
}
