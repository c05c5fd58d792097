package event

import (
	"encoding/binary"
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

// appendInt64 appends the decimal of v.
func appendInt64(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(dst, uint64(v))
	}
	return appendUint(append(dst, '-'), -uint64(v))
}
