package event

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// digitsPlain reports whether no byte of a decimal integer ("-0123456789")
// is special: then integers are written without the escape.
func digitsPlain(special *[256]bool) bool {
	for _, c := range []byte("-0123456789") {
		if special[c] {
			return false
		}
	}
	return true
}

// appendInt appends the decimal of the msgpack integer at the head of b,
// decoding every integer form inline. ok is false, with dst and b as they
// were, when b does not start with a whole integer.
func appendInt(dst, b []byte) (out, rest []byte, ok bool) {
	if len(b) == 0 {
		return dst, b, false
	}
	switch c := b[0]; {
	case c <= 0x7f: // positive fixint
		return appendUint(dst, uint64(c)), b[1:], true
	case c >= 0xe0: // negative fixint
		return appendInt64(dst, int64(int8(c))), b[1:], true
	case c >= 0xcc && c <= 0xd3: // uint 8…64, int 8…64
		n := 1 << (c & 3)
		if len(b) < 1+n {
			return dst, b, false
		}
		var u uint64
		switch n {
		case 1:
			u = uint64(b[1])
		case 2:
			u = uint64(binary.BigEndian.Uint16(b[1:]))
		case 4:
			u = uint64(binary.BigEndian.Uint32(b[1:]))
		default:
			u = binary.BigEndian.Uint64(b[1:])
		}
		if c <= 0xcf {
			return appendUint(dst, u), b[1+n:], true
		}
		shift := uint(64 - 8*n) // sign-extend the n-byte value
		return appendInt64(dst, int64(u<<shift)>>shift), b[1+n:], true
	}
	return dst, b, false
}

// digitPairs holds "00" to "99": appendUint writes two digits a step.
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// appendUint appends the decimal of u. It is strconv.AppendUint(dst, u, 10)
// without its layers of calls, which cost more than the digits for the
// short numbers of events (ports, codes, durations).
func appendUint(dst []byte, u uint64) []byte {
	if u < 10 {
		return append(dst, byte('0'+u))
	}
	var buf [20]byte
	i := len(buf)
	for u >= 100 {
		r := u % 100
		u /= 100
		i -= 2
		buf[i], buf[i+1] = digitPairs[2*r], digitPairs[2*r+1]
	}
	if u >= 10 {
		i -= 2
		buf[i], buf[i+1] = digitPairs[2*u], digitPairs[2*u+1]
	} else {
		i--
		buf[i] = byte('0' + u)
	}
	return append(dst, buf[i:]...)
}

// decimalLen32 is the number of decimal digits of u (u < 1<<32), by a
// binary search of compares: small enough to be inlined, where the
// bit-length estimate corrected by a switch of powers of ten was a call,
// around which fastPairs spilled and reloaded its registers (parsed
// records, three integers each: 40 instructions a record fewer).
func decimalLen32(u uint64) int {
	if u < 1e5 {
		if u < 1e2 {
			if u < 10 {
				return 1
			}
			return 2
		}
		if u < 1e3 {
			return 3
		}
		if u < 1e4 {
			return 4
		}
		return 5
	}
	if u < 1e7 {
		if u < 1e6 {
			return 6
		}
		return 7
	}
	if u < 1e8 {
		return 8
	}
	if u < 1e9 {
		return 9
	}
	return 10
}

// appendInt64 appends the decimal of v.
func appendInt64(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(dst, uint64(v))
	}
	return appendUint(append(dst, '-'), -uint64(v))
}

// fastPairs writes the run of common pairs at b[p:] (at most n), each as
// the delimiter and its value: a fixstr key that is not the event key, and
// a fixstr or str8 value of at most shortValue bytes (escaped where it lies
// under escape opensips and opensips_exact; under the others, only one that
// needs no escape) or an integer of at most 32 bits. It stops before the
// first other pair, which the caller takes, and returns the line, the
// offset after the run and how many pairs it wrote.
//
// Why a loop of its own (measured with callgrind on
// BenchmarkFlush/form=meta/records=10000, ten fields, docs/performance.md):
//   - Go's calling convention saves no register across a call, and
//     appendPairs holds more live variables than there are registers: its
//     loop spilled and reloaded them around each of its calls
//     (appendValue, appendEscaped, cleanPrefix, appendInt, appendUint).
//     This loop calls only copyMatch (once a string) and, for a value to
//     escape, blankSpecials, and keeps the line and the chunk each as a
//     pointer and one bound.
//   - Each string is read once: a word at a time, stored into the line and
//     matched against the special bytes in the same step (cleanPrefix's
//     test, without its switch), where cleanPrefix then append read it
//     twice and called memmove.
//   - An integer is decoded and its digits written two at a time straight
//     into the line, with no scratch buffer nor copy of it.
//
// Together with the event name written straight into the line
// (AppendLineMax) they took the flush's own code from 4 593 to 3 043
// instructions a record (docs/performance.md has each step).
//
// The word loads read up to seven bytes past a value, into what follows it
// in the same buffer (b[:cap(b)]: the rest of the chunk), and the stores
// write up to seven bytes past it into the line's spare capacity, which the
// next value or the newline overwrites or leaves unused; the lanes past the
// value are masked out of the match. Both sides' room is checked once per
// value, before its first word.
func (e *Encoder) fastPairs(dst, b []byte, p, n, limit int) ([]byte, int, int) {
	// Few live variables, so that they stay in registers: the line as a
	// pointer, a length and one bound (room for a value and its seven
	// bytes past, within the limit), the chunk as a pointer and one bound
	// (vmax: a value may end there with seven bytes readable after it, and
	// a key's word read from anything before it).
	bp := unsafe.Pointer(unsafe.SliceData(b))
	vmax := min(len(b), cap(b)-9)
	dp := unsafe.Pointer(unsafe.SliceData(dst))
	l := len(dst)
	dmax := min(cap(dst), limit+8)
	// swarSet.match for one or two special bytes besides the control ones,
	// without its switch (the second pattern repeats the first when there
	// is one), and with one mask for the three tests: the high bit of a
	// lane of w-less, a-swarLo or c-swarLo, kept where w, a or c has its
	// high bit clear. swarSet.match masks each test by its own operand,
	// which costs three NOT-and-ANDs a word where this costs one. It never
	// misses a lane match flags, and flags no more because the special
	// bytes are ASCII (e.fast): a byte at or past 0x80 has the high bit
	// set in w, a and c alike, and an ASCII byte sets a test's high bit
	// only by being below less or equal to the pattern (or by a borrow
	// from a lane below that did). Measured (callgrind, flush code,
	// BenchmarkFlush records=10000): meta 2 772 -> 2 695, parsed 2 746 ->
	// 2 671 instructions a record.
	less, p0, p1 := e.scan.less, e.scan.pat[0], e.scan.pat[1]
	done := 0
	for ; done < n && p < vmax; done++ {
		c := *(*byte)(unsafe.Add(bp, p))
		if c&0xe0 != 0xa0 {
			break // not a fixstr key
		}
		kl := int(c & 0x1f)
		// The event key (compared as a masked word) is the caller's.
		if kl == e.evLen && load64(unsafe.Add(bp, p+1))&e.evMask == e.evWord {
			break
		}
		q := p + 1 + kl // the value's header
		if q+2 > vmax {
			break
		}
		h := load64(unsafe.Add(bp, q)) // the header and what follows it
		var vs, vl int
		switch {
		case h&0xe0 == 0xa0:
			vs, vl = q+1, int(h&0x1f)
		case h&0xff == 0xd9:
			vs, vl = q+2, int(h>>8&0xff)
		default:
			// An integer of at most 32 bits, written here when no digit
			// needs the escape (through appendValue, appendInt and
			// appendUint it cost about 170 instructions).
			var u uint64
			neg := false
			switch c := h & 0xff; {
			case !e.intsPlain:
				return dst[:l], p, done
			case c < 0x80: // positive fixint
				u, vs = c, q+1
			case c >= 0xe0: // negative fixint
				u, neg, vs = uint64(int64(int8(c))), true, q+1
			case c == 0xcc:
				u, vs = h>>8&0xff, q+2
			case c == 0xcd:
				u, vs = h&0xff00|h>>16&0xff, q+3
			case c == 0xce:
				u, vs = uint64(bits.ReverseBytes32(uint32(h>>8))), q+5
			case c == 0xd0:
				v := int64(int8(h >> 8))
				u, neg, vs = uint64(v), v < 0, q+2
			case c == 0xd1:
				v := int64(int16(h&0xff00 | h>>16&0xff))
				u, neg, vs = uint64(v), v < 0, q+3
			case c == 0xd2:
				v := int64(int32(bits.ReverseBytes32(uint32(h >> 8))))
				u, neg, vs = uint64(v), v < 0, q+5
			default:
				return dst[:l], p, done
			}
			if neg {
				u = -u
			}
			if vs > vmax || l+12+8 > dmax {
				return dst[:l], p, done
			}
			*(*byte)(unsafe.Add(dp, l)) = e.delim0
			l++
			if neg {
				*(*byte)(unsafe.Add(dp, l)) = '-'
				l++
			}
			nd := decimalLen32(u)
			i := l + nd
			for u >= 100 {
				r := u % 100
				u /= 100
				i -= 2
				*(*[2]byte)(unsafe.Add(dp, i)) = [2]byte{digitPairs[2*r], digitPairs[2*r+1]}
			}
			if u >= 10 {
				*(*[2]byte)(unsafe.Add(dp, i-2)) = [2]byte{digitPairs[2*u], digitPairs[2*u+1]}
			} else {
				*(*byte)(unsafe.Add(dp, i-1)) = byte('0' + u)
			}
			l += nd
			p = vs
			continue
		}
		if vl > shortValue || vs+vl > vmax || l+1+vl+8 > dmax {
			break
		}
		// The value's words: the full ones, then the last, of which only
		// the lanes of the value count (1<<64 is 0 in Go: all eight).
		var m uint64
		if vl > 0 {
			m = copyMatch(unsafe.Add(bp, vs), unsafe.Add(dp, l+1), vl, less, p0, p1)
		}
		if m != 0 {
			// Maybe a byte to escape. Escape opensips keeps the length:
			// fixed where it was copied; the others are the caller's,
			// from the pair's start.
			if !e.sameLen {
				break
			}
			e.blankSpecials(unsafe.Slice((*byte)(unsafe.Add(dp, l+1)), vl))
		}
		*(*byte)(unsafe.Add(dp, l)) = e.delim0
		l += 1 + vl
		p = vs + vl
	}
	return dst[:l], p, done
}

// copyMatch copies the n bytes (n > 0) at s to d a word at a time and
// returns the high bits of the lanes that may hold a special byte (see
// fastPairs' mask). It reads and writes up to seven bytes past them.
//
// The words are read and written with encoding/binary directly, not
// through wrappers such as load64: each level of inlining left a NOP in
// the loop (45 instructions a record fewer).
//
// A call of its own, not inlined: inside fastPairs, whose live variables
// outnumber the registers, this loop reloaded the patterns and the mask
// from the stack each word (about 33 instructions a word); alone it keeps
// everything in registers (about 25), which pays for the spills around
// the call (parsed records: 60 instructions a record fewer).
//
//go:noinline
func copyMatch(s, d unsafe.Pointer, n int, less, p0, p1 uint64) uint64 {
	var m uint64
	for ; n > 8; n -= 8 {
		w := binary.LittleEndian.Uint64((*[8]byte)(s)[:])
		binary.LittleEndian.PutUint64((*[8]byte)(d)[:], w)
		a, c := w^p0, w^p1
		m |= ((w - less) | (a - swarLo) | (c - swarLo)) &^ (w & a & c)
		s, d = unsafe.Add(s, 8), unsafe.Add(d, 8)
	}
	w := binary.LittleEndian.Uint64((*[8]byte)(s)[:])
	binary.LittleEndian.PutUint64((*[8]byte)(d)[:], w)
	a, c := w^p0, w^p1
	m |= ((w - less) | (a - swarLo) | (c - swarLo)) &^ (w & a & c) & (1<<(uint(n)*8) - 1)
	return m & swarHi
}

// blankSpecials applies escape opensips or opensips_exact to a value of a
// one-byte delimiter where it lies, as escapeInPlaceFrom does: CR and LF
// become a space, the delimiter its escape_delimiter or a space. Only the
// candidate lanes of each word are looked at, where escapeInPlaceFrom calls
// cleanPrefix from each byte it rewrites (BenchmarkFlush, one value in ten
// holding the delimiter: 64 instructions a record fewer). The memory up to
// seven bytes past v must be readable.
func (e *Encoder) blankSpecials(v []byte) {
	repl := byte(' ')
	if e.escDelim != nil {
		repl = e.escDelim[0]
	}
	for j := 0; j < len(v); j += 8 {
		m := e.scan.match(load64(unsafe.Pointer(&v[j]))) // v has 8 bytes of room past its end
		if len(v)-j < 8 {
			m &= 1<<(uint(len(v)-j)*8) - 1
		}
		for ; m != 0; m &= m - 1 {
			k := j + bits.TrailingZeros64(m)>>3
			switch c := v[k]; {
			case !e.special[c]:
			case c == '\r' || c == '\n':
				v[k] = ' '
			default: // the delimiter
				v[k] = repl
			}
		}
	}
}

// appendNameFast is appendName for a short event name read from a chunk
// (up to seven bytes after it readable): copied and matched a word at a
// time, as fastPairs does a value (with leadingEvent's own fixstr read:
// 130 instructions a record fewer than appendHead).
func (e *Encoder) appendNameFast(dst, name []byte, limit int) ([]byte, error) {
	n, l := len(name), len(dst)
	if e.fast && n > 0 && n <= shortValue && cap(name)-n >= 8 && cap(dst)-l >= n+8 && l+n <= limit {
		// copyMatch, as for a value: 29 instructions a record fewer than
		// its own loop of swarSet.match.
		m := copyMatch(unsafe.Pointer(unsafe.SliceData(name)), unsafe.Add(unsafe.Pointer(unsafe.SliceData(dst)), l), n,
			e.scan.less, e.scan.pat[0], e.scan.pat[1])
		if m == 0 || e.escape == EscapeOpenSIPSExact { // the name is raw under opensips_exact
			return dst[:l+n], nil
		}
	}
	return e.appendName(dst, name, limit)
}

// shortValue is the longest value fastPairs copies eight bytes at a time:
// past it, memmove's wide copies beat a word a step.
const shortValue = 64

// load64 reads the eight bytes at p as a little-endian word (lane k is
// byte k, whatever the machine's byte order).
func load64(p unsafe.Pointer) uint64 { return binary.LittleEndian.Uint64((*[8]byte)(p)[:]) }
