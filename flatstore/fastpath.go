package flatstore

import (
	"encoding/binary"
	"strconv"
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
		return strconv.AppendUint(dst, uint64(c), 10), b[1:], true
	case c >= 0xe0: // negative fixint
		return strconv.AppendInt(dst, int64(int8(c)), 10), b[1:], true
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
			return strconv.AppendUint(dst, u, 10), b[1+n:], true
		}
		shift := uint(64 - 8*n) // sign-extend the n-byte value
		return strconv.AppendInt(dst, int64(u<<shift)>>shift, 10), b[1+n:], true
	}
	return dst, b, false
}
