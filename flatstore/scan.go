package flatstore

import (
	"encoding/binary"
	"math/bits"
)

// swarSet finds the first byte of a value that needs escaping eight bytes at
// a time (SIMD within a register). Every escape mode has at most four such
// bytes: CR, LF, the delimiter's first byte and, for backslash and csv, the
// quote or backslash.
type swarSet struct {
	pat       [4]uint64 // each special byte repeated in all eight lanes
	none      bool      // no byte is special
	tableOnly bool      // more than four special bytes: the table alone
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// newSwarSet builds the set from the byte table; a table with more than
// four special bytes keeps to the table alone.
func newSwarSet(special *[256]bool) swarSet {
	var s swarSet
	n := 0
	for c := 0; c < 256; c++ {
		if !special[c] {
			continue
		}
		if n == len(s.pat) {
			return swarSet{tableOnly: true}
		}
		s.pat[n] = swarLo * uint64(c)
		n++
	}
	if n == 0 {
		return swarSet{none: true}
	}
	for i := n; i < len(s.pat); i++ {
		s.pat[i] = s.pat[0] // repeat one: four compares, no branch on n
	}
	return s
}

// match has, for the first of the eight bytes of x equal to one of the
// set's bytes, the high bit of its lane set; bits above the first match may
// be false positives, so only the lowest set bit is meaningful.
func (s *swarSet) match(x uint64) uint64 {
	a, b, c, d := x^s.pat[0], x^s.pat[1], x^s.pat[2], x^s.pat[3]
	return ((a - swarLo) &^ a & swarHi) | ((b - swarLo) &^ b & swarHi) |
		((c - swarLo) &^ c & swarHi) | ((d - swarLo) &^ d & swarHi)
}

// cleanPrefix returns how many bytes at the head of v need no escape;
// table is the byte table the set was built from.
func (s *swarSet) cleanPrefix(table *[256]bool, v []byte) int {
	if s.none {
		return len(v)
	}
	if len(v) < 8 || s.tableOnly {
		i := 0
		for i < len(v) && !table[v[i]] {
			i++
		}
		return i
	}
	i := 0
	for ; i+8 <= len(v); i += 8 {
		if m := s.match(binary.LittleEndian.Uint64(v[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i == len(v) {
		return i
	}
	// The last eight bytes, overlapping what was checked: a match can only
	// be past i.
	j := len(v) - 8
	if m := s.match(binary.LittleEndian.Uint64(v[j:])); m != 0 {
		return j + bits.TrailingZeros64(m)>>3
	}
	return len(v)
}
