package event

import (
	"encoding/binary"
	"math/bits"
)

// swarSet finds the first byte of a value that needs escaping eight bytes at
// a time (SIMD within a register). Every escape mode escapes CR and LF,
// the delimiter's first byte and, for backslash and csv, the backslash or
// quote. The control bytes among them are found with one "byte less than
// n" test (which may also stop at another control byte, such as a tab: the
// byte table confirms each candidate), the others with one "byte equal to"
// test each.
type swarSet struct {
	less      uint64    // n in all eight lanes: finds the bytes below n (0: none)
	pat       [3]uint64 // each other special byte in all eight lanes
	n         int       // how many of pat are in use
	none      bool      // no byte is special
	tableOnly bool      // more special bytes than the tests above cover
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// newSwarSet builds the set from the byte table.
func newSwarSet(special *[256]bool) swarSet {
	var s swarSet
	maxCtl := -1
	for c := 0; c < 256; c++ {
		if !special[c] {
			continue
		}
		if c < 0x20 {
			maxCtl = c
			continue
		}
		if s.n == len(s.pat) {
			return swarSet{tableOnly: true}
		}
		s.pat[s.n] = swarLo * uint64(c)
		s.n++
	}
	if maxCtl >= 0 {
		s.less = swarLo * uint64(maxCtl+1)
	} else if s.n == 0 {
		s.none = true
	}
	return s
}

// match sets the high bit of every lane of x that may hold a special byte:
// every lane that does, and perhaps others (a control byte that is not
// special, or a lane above a match, where the subtraction borrowed).
func (s *swarSet) match(x uint64) uint64 {
	m := (x - s.less) &^ x & swarHi
	switch s.n {
	case 3:
		a := x ^ s.pat[2]
		m |= (a - swarLo) &^ a & swarHi
		fallthrough
	case 2:
		a := x ^ s.pat[1]
		m |= (a - swarLo) &^ a & swarHi
		fallthrough
	case 1:
		a := x ^ s.pat[0]
		m |= (a - swarLo) &^ a & swarHi
	}
	return m
}

// first returns the position in v of the first candidate lane of m (lane k
// is v[base+k]) whose byte is special, or -1.
func first(table *[256]bool, v []byte, base int, m uint64) int {
	for m != 0 {
		p := base + bits.TrailingZeros64(m)>>3
		if table[v[p]] {
			return p
		}
		m &= m - 1
	}
	return -1
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
			if p := first(table, v, i, m); p >= 0 {
				return p
			}
		}
	}
	if i == len(v) {
		return i
	}
	// The last eight bytes, overlapping what was checked: only the lanes
	// past i count.
	j := len(v) - 8
	m := s.match(binary.LittleEndian.Uint64(v[j:])) &^ (1<<(uint(i-j)*8) - 1)
	if p := first(table, v, j, m); p >= 0 {
		return p
	}
	return len(v)
}
