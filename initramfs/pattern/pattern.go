// Package pattern generates the seeded content memfd-luo writes into
// memfds and verifies it page by page. Generating the expected bytes again
// is much cheaper than hashing under TCG, and a mismatch can name the pages
// that differ.
package pattern

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
)

// PageSize is the granularity mismatches are reported at.
const PageSize = 4096

// word returns the 8-byte pattern word number w of seed (splitmix64).
func word(seed, w uint64) uint64 {
	z := seed + (w+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Fill writes the pattern of seed for file offsets [off, off+len(buf)).
// The byte at a file offset depends only on seed and the offset.
func Fill(buf []byte, seed uint64, off int64) {
	i := 0
	// leading bytes up to an 8-byte boundary
	for i < len(buf) && (off+int64(i))%8 != 0 {
		o := uint64(off + int64(i))
		buf[i] = byte(word(seed, o/8) >> (8 * (o % 8)))
		i++
	}
	w := uint64(off+int64(i)) / 8
	for ; i+8 <= len(buf); i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], word(seed, w))
		w++
	}
	for ; i < len(buf); i++ {
		o := uint64(off + int64(i))
		buf[i] = byte(word(seed, o/8) >> (8 * (o % 8)))
	}
}

// Layer is a range of a file written with one seed.
type Layer struct {
	Off, Len int64
	Seed     uint64
}

// Model is the expected content of a file: zeros, overlaid by layers in
// order (a later layer wins).
type Model struct {
	Size   int64
	Layers []Layer
}

// Expected fills buf with the expected content at [off, off+len(buf)).
func (m *Model) Expected(buf []byte, off int64) {
	clear(buf)
	end := off + int64(len(buf))
	for _, l := range m.Layers {
		lo, hi := max(off, l.Off), min(end, l.Off+l.Len)
		if lo >= hi {
			continue
		}
		Fill(buf[lo-off:hi-off], l.Seed, lo)
	}
}

// Mismatch describes one page whose content differs.
type Mismatch struct {
	// Page is the file offset of the page.
	Page int64
	// First is the file offset of the first differing byte.
	First int64
	// Bytes is how many bytes of the page differ.
	Bytes int
	// Want and Got are the bytes at First.
	Want, Got byte
}

func (m Mismatch) String() string {
	return fmt.Sprintf("page %#x: %d bytes differ, first at %#x (want %#02x got %#02x)", m.Page, m.Bytes, m.First, m.Want, m.Got)
}

// Compare compares got with want, both starting at file offset base, and
// returns the differing pages (at most limit; limit <= 0 means all) and the
// total number of differing pages.
func Compare(got, want []byte, base int64, limit int) ([]Mismatch, int) {
	var out []Mismatch
	total := 0
	n := min(len(got), len(want))
	for p := 0; p < n; {
		// page boundaries are file-offset aligned
		end := min(n, p+int(PageSize-(base+int64(p))%PageSize))
		if string(got[p:end]) != string(want[p:end]) {
			total++
			if limit <= 0 || len(out) < limit {
				m := Mismatch{Page: (base + int64(p)) &^ (PageSize - 1)}
				for i := p; i < end; i++ {
					if got[i] != want[i] {
						if m.Bytes == 0 {
							m.First, m.Want, m.Got = base+int64(i), want[i], got[i]
						}
						m.Bytes++
					}
				}
				out = append(out, m)
			}
		}
		p = end
	}
	return out, total
}

// Summary formats mismatches for a report line.
func Summary(ms []Mismatch, total int) string {
	if total == 0 {
		return "content matches"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d page(s) differ", total)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Page < ms[j].Page })
	for i, m := range ms {
		if i == 4 {
			fmt.Fprintf(&b, "; ...")
			break
		}
		fmt.Fprintf(&b, "; %s", m)
	}
	return b.String()
}
