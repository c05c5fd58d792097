package event

import (
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// A msgpack value that is not a string nor a container, as text (README: What it writes):
// integers in full 64 bits, floats as the shortest decimal that reads back,
// true/false, null, timestamps as RFC 3339 with nanoseconds, other
// extensions as the hex of their payload. The line encoder (encode.go) and
// path templates (template.go) both write values this way.

// appendScalar renders a non-string, non-container value without escaping:
// integers in full 64 bits, floats as the shortest decimal that reads back,
// true/false, null, timestamps as RFC 3339 with nanoseconds, other
// extensions as the hex of their payload.
func appendScalar(dst, b []byte) ([]byte, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.IntType:
		i, rest, err := msgp.ReadInt64Bytes(b)
		if err != nil {
			return dst, b, ErrTruncated
		}
		return strconv.AppendInt(dst, i, 10), rest, nil
	case msgp.UintType:
		u, rest, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return dst, b, ErrTruncated
		}
		return strconv.AppendUint(dst, u, 10), rest, nil
	case msgp.Float64Type, msgp.Float32Type:
		f, bits, rest, err := readFloat(b)
		if err != nil {
			return dst, b, ErrTruncated
		}
		return appendFloat(dst, f, bits), rest, nil
	case msgp.BoolType:
		v, rest, err := msgp.ReadBoolBytes(b)
		if err != nil {
			return dst, b, ErrTruncated
		}
		return strconv.AppendBool(dst, v), rest, nil
	case msgp.NilType:
		return append(dst, "null"...), b[1:], nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		// msgp names ext 3, 4 and 5 after its own Go types; to us they are
		// extensions like any other.
		typ, data, rest, err := readExt(b)
		if err != nil {
			return dst, b, ErrTruncated
		}
		if t, ok := extTime(typ, data); ok {
			return appendRFC3339Nano(dst, t), rest, nil
		}
		return hex.AppendEncode(dst, data), rest, nil
	}
	// Not msgpack (a reserved byte such as 0xc1).
	return dst, b, ErrTruncated
}

// readFloat reads a float32 or float64, with its width in bits.
func readFloat(b []byte) (f float64, bits int, rest []byte, err error) {
	if msgp.NextType(b) == msgp.Float32Type {
		f32, rest, err := msgp.ReadFloat32Bytes(b)
		return float64(f32), 32, rest, err
	}
	f, rest, err = msgp.ReadFloat64Bytes(b)
	return f, 64, rest, err
}

// readExt reads any extension without copying: its type and payload.
func readExt(b []byte) (typ int8, data, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, b, msgp.ErrShortBytes
	}
	var n, hdr int
	switch b[0] {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n, hdr = 1<<(b[0]-0xd4), 1
	case 0xc7:
		n, hdr = int(b[1]), 2
	case 0xc8:
		if len(b) < 3 {
			return 0, nil, b, msgp.ErrShortBytes
		}
		n, hdr = int(b[1])<<8|int(b[2]), 3
	case 0xc9:
		if len(b) < 5 {
			return 0, nil, b, msgp.ErrShortBytes
		}
		n, hdr = int(uint32(b[1])<<24|uint32(b[2])<<16|uint32(b[3])<<8|uint32(b[4])), 5
	default:
		return 0, nil, b, msgp.TypeError{Encoded: msgp.NextType(b), Method: msgp.ExtensionType}
	}
	if len(b) < hdr+1+n {
		return 0, nil, b, msgp.ErrShortBytes
	}
	return int8(b[hdr]), b[hdr+1 : hdr+1+n], b[hdr+1+n:], nil
}

// extTime decodes Fluent Bit's Time (ext 0, 8 bytes) and the msgpack
// timestamp (ext -1, 4, 8 or 12 bytes).
func extTime(typ int8, d []byte) (Time, bool) {
	switch {
	case typ == 0 && len(d) == 8:
		return eventTime(d), true
	case typ == -1 && len(d) == 4:
		return Time{Sec: int64(uint32(d[0])<<24 | uint32(d[1])<<16 | uint32(d[2])<<8 | uint32(d[3]))}, true
	case typ == -1 && len(d) == 8:
		v := uint64(d[0])<<56 | uint64(d[1])<<48 | uint64(d[2])<<40 | uint64(d[3])<<32 |
			uint64(d[4])<<24 | uint64(d[5])<<16 | uint64(d[6])<<8 | uint64(d[7])
		return Time{Sec: int64(v & (1<<34 - 1)), Nsec: int64(v >> 34)}, true
	case typ == -1 && len(d) == 12:
		ns := int64(uint32(d[0])<<24 | uint32(d[1])<<16 | uint32(d[2])<<8 | uint32(d[3]))
		var s uint64
		for _, c := range d[4:] {
			s = s<<8 | uint64(c)
		}
		return Time{Sec: int64(s), Nsec: ns}, true
	}
	return Time{}, false
}

const rfc3339Nano = "2006-01-02T15:04:05.000000000Z07:00"

func appendRFC3339Nano(dst []byte, t Time) []byte {
	return time.Unix(t.Sec, t.Nsec).UTC().AppendFormat(dst, rfc3339Nano)
}

// appendFloat writes the shortest decimal that reads back to f, in plain
// notation between 1e-6 and 1e21 and in exponent notation outside (as
// JavaScript and encoding/json do). NaN and infinities are written as NaN,
// +Inf and -Inf.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' { // e-07 → e-7
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// scalarText appends the text of a string, binary, number or bool at the
// head of b to dst.
func scalarText(dst, b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	if s, _, ok := readStr(b); ok {
		return s, true
	}
	switch msgp.NextType(b) {
	case msgp.IntType, msgp.UintType, msgp.Float64Type, msgp.Float32Type, msgp.BoolType:
		out, _, err := appendScalar(dst, b)
		return out, err == nil
	}
	return nil, false
}
