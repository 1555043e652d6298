package pattern

import (
	"encoding/binary"
	"fmt"
)

// The race pattern: racers (goroutines that write into a file while the
// kernel preserves or freezes it) sweep their extent again and again, and
// write generation g of the race pattern in sweep g. Every 8-byte word
// carries its generation in its top 24 bits and, below, 40 bits that depend
// on seed, offset and generation, so any word a racer wrote can be
// recognised on its own. Generation 0 is the content the extent had before
// the racer started (the file's model).

const (
	raceGenShift = 40
	raceLowMask  = 1<<raceGenShift - 1
	// RaceMaxGen is the last generation the race pattern can encode.
	RaceMaxGen = 1<<(64-raceGenShift) - 1
)

// RaceWord returns the word of generation gen (>= 1) at the 8-aligned
// file offset off.
func RaceWord(seed uint64, off int64, gen int64) uint64 {
	return uint64(gen)<<raceGenShift | word(seed^uint64(gen)*0xd6e8feb86659fd93, uint64(off)/8)&raceLowMask
}

// RaceFill writes generation gen of the race pattern over buf, which
// starts at the 8-aligned file offset off and is a multiple of 8 bytes
// long, one 8-byte store per word in ascending order.
func RaceFill(buf []byte, seed uint64, off int64, gen int64) {
	for i := 0; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], RaceWord(seed, off+int64(i), gen))
	}
}

// RaceChecker decides whether the content of a racer's extent is one the
// racer can have left: it swept the extent in order, word by word, so
// what it leaves is generation g up to some word (the cut) and generation
// g-1 after it (g >= 1; generation 0 is the content before the racer).
// One word at the cut may be torn: its low bytes of generation g, its
// high bytes of g-1 (a copy interrupted between two bytes).
//
// Feed it the words of the extent in ascending order; words it is not
// fed (overwritten later, checked elsewhere) are unconstrained.
type RaceChecker struct {
	Seed uint64
	// Ext is the racer's extent: offset and length, 8-aligned.
	Off, Len int64
	// MaxGen, if > 0, is the last generation the racer could write.
	MaxGen int64

	gen     int64 // generation before the cut; 0 until the first word
	after   bool  // past the cut
	cut     int64 // offset of the first word after the cut
	torn    int64 // offset of the torn word, -1 if none
	words   int64
	problem string
}

// decode returns the generation of w at off, given the word of generation
// 0 there, or -1 if w is no word the racer could have written.
func (c *RaceChecker) decode(w, base uint64, off int64) int64 {
	if w == base {
		return 0
	}
	g := int64(w >> raceGenShift)
	if g >= 1 && (c.MaxGen <= 0 || g <= c.MaxGen) && RaceWord(c.Seed, off, g) == w {
		return g
	}
	return -1
}

func (c *RaceChecker) word(g int64, base uint64, off int64) uint64 {
	if g == 0 {
		return base
	}
	return RaceWord(c.Seed, off, g)
}

// splice reports whether w is a torn word: its low k bytes (1..7) of
// generation g, the others of generation g-1.
func (c *RaceChecker) splice(w, base uint64, off int64, g int64) bool {
	if g < 1 || (c.MaxGen > 0 && g > c.MaxGen) {
		return false
	}
	nw, ow := c.word(g, base, off), c.word(g-1, base, off)
	for k := 1; k < 8; k++ {
		lo := uint64(1)<<(8*k) - 1
		if w == nw&lo|ow&^lo {
			return true
		}
	}
	return false
}

// Feed checks the word w at the 8-aligned offset off, whose generation 0
// is base.
func (c *RaceChecker) Feed(w, base uint64, off int64) {
	if c.problem != "" {
		return
	}
	if c.words == 0 {
		c.torn = -1
	}
	c.words++
	d := c.decode(w, base, off)
	switch {
	case d >= 0 && c.gen == 0 && !c.after:
		// The first word: read it as the last of its generation's
		// prefix (the largest progress it allows).
		c.gen = d
		if d == 0 {
			c.gen, c.after, c.cut = 1, true, c.Off
		}
	case d >= 0 && !c.after && d == c.gen:
	case d >= 0 && !c.after && d == c.gen-1:
		c.after, c.cut = true, off
	case d >= 0 && c.after && d == c.gen-1:
	case d >= 0:
		c.problem = fmt.Sprintf("word at %#x is generation %d after generation %d%s", off, d, c.gen, c.where())
	case c.torn < 0 && !c.after && c.gen > 0 && c.splice(w, base, off, c.gen):
		c.after, c.cut, c.torn = true, off+8, off
	case c.torn < 0 && c.gen == 0 && !c.after:
		// The first word is torn: its own top bytes name g or g-1.
		g := int64(w >> raceGenShift)
		for _, cand := range []int64{g, g + 1, 1} {
			if c.splice(w, base, off, cand) {
				c.gen, c.after, c.cut, c.torn = cand, true, off+8, off
				return
			}
		}
		c.problem = fmt.Sprintf("word at %#x (%#016x) was never written by the racer (gen 0 there: %#016x)", off, w, base)
	default:
		c.problem = fmt.Sprintf("word at %#x (%#016x) was never written by the racer (generation %d there: %#016x)%s",
			off, w, max(c.gen-1, 0), c.word(max(c.gen-1, 0), base, off), c.where())
	}
}

func (c *RaceChecker) where() string {
	if c.after {
		return fmt.Sprintf(", past the cut at %#x", c.cut)
	}
	return ""
}

// RaceState is what a RaceChecker found.
type RaceState struct {
	// Words is how many words it was fed.
	Words int64
	// Gen is the generation before the cut (0 if no word was fed).
	Gen int64
	// Cut is the file offset of the first word of generation Gen-1
	// (Off+Len if none was fed): the largest the words allow.
	Cut int64
	// Progress is the most words the racer can have written:
	// (Gen-1) whole sweeps and the words up to the cut.
	Progress int64
	// Torn is the offset of a torn word at the cut, -1 if none.
	Torn int64
	// Problem describes a word the racer cannot have left; "" if none.
	Problem string
}

// State returns what the words fed so far show.
func (c *RaceChecker) State() RaceState {
	s := RaceState{Words: c.words, Gen: c.gen, Torn: c.torn, Problem: c.problem}
	if c.words == 0 {
		s.Torn = -1
		return s
	}
	s.Cut = c.Off + c.Len
	if c.after {
		s.Cut = c.cut
	}
	s.Progress = (c.gen-1)*(c.Len/8) + (s.Cut-c.Off)/8
	return s
}
