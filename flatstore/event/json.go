package event

import (
	"math"
	"slices"

	"github.com/tinylib/msgp/msgp"
)

// appendJSON appends the msgpack value at the head of b as compact JSON,
// map keys in record order, unless dst would grow past max bytes.
//
// JSON keys are strings, so a map or array used as a map key is written as
// the string of its text. In that text (inKey) a map or array key is
// written as its own text, unquoted: every byte of a key is escaped once,
// however deep keys nest, so the rendering stays linear in the record's
// size (quoting each level inside the next would double it per level).
func (e *Encoder) appendJSON(dst, b []byte, depth int, inKey bool, max int) ([]byte, []byte, error) {
	if depth >= MaxDepth {
		return dst, b, ErrTooDeep
	}
	if len(dst) > max {
		return dst, b, ErrTooLarge
	}
	if len(b) == 0 {
		return dst, b, ErrTruncated
	}
	switch msgp.NextType(b) {
	case msgp.MapType:
		n, rest, ok := readMapHeader(b)
		if !ok {
			return dst, b, ErrTruncated
		}
		b = rest
		dst = append(dst, '{')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, b, err = e.appendJSONKey(dst, b, depth, inKey, max); err != nil {
				return dst, b, err
			}
			dst = append(dst, ':')
			if dst, b, err = e.appendJSON(dst, b, depth+1, inKey, max); err != nil {
				return dst, b, err
			}
		}
		return append(dst, '}'), b, nil
	case msgp.ArrayType:
		n, rest, ok := readArrayHeader(b)
		if !ok {
			return dst, b, ErrTruncated
		}
		b = rest
		dst = append(dst, '[')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, b, err = e.appendJSON(dst, b, depth+1, inKey, max); err != nil {
				return dst, b, err
			}
		}
		return append(dst, ']'), b, nil
	case msgp.StrType, msgp.BinType:
		v, rest, ok := readStr(b)
		if !ok {
			return dst, b, ErrTruncated
		}
		if !jsonStringFits(dst, v, max) {
			return dst, b, ErrTooLarge
		}
		return appendJSONString(dst, v), rest, nil
	case msgp.Float64Type, msgp.Float32Type:
		f, bits, rest, err := readFloat(b)
		if err != nil {
			return dst, b, ErrTruncated
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), rest, nil // JSON has no NaN or infinity
		}
		return appendFloat(dst, f, bits), rest, nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		// A JSON string of appendScalar's text (a time, or hex: nothing
		// to escape); the hex of a large payload must fit first.
		if _, data, _, err := readExt(b); err == nil && len(dst)+2*len(data) > max {
			return dst, b, ErrTooLarge
		}
		out, rest, err := appendScalar(append(dst, '"'), b)
		if err != nil {
			return dst, b, err
		}
		return append(out, '"'), rest, nil
	}
	return appendScalar(dst, b)
}

// appendJSONKey appends the map key at the head of b and returns what
// follows it (its value).
func (e *Encoder) appendJSONKey(dst, b []byte, depth int, inKey bool, max int) ([]byte, []byte, error) {
	if k, rest, ok := readStr(b); ok {
		if !jsonStringFits(dst, k, max) {
			return dst, b, ErrTooLarge
		}
		return appendJSONString(dst, k), rest, nil
	}
	switch t := msgp.NextType(b); {
	case t == msgp.MapType || t == msgp.ArrayType:
		if inKey {
			// Inside a key's text: the text of this key, unquoted.
			return e.appendJSON(dst, b, depth+1, true, max)
		}
		// The key's text is written where it lies, then made a JSON
		// string there, within max.
		mark := len(dst)
		out, rest, err := e.appendJSON(dst, b, depth+1, true, max)
		if err == nil {
			out, err = quoteJSONInPlace(out, mark, max)
		}
		if err != nil {
			return out[:mark], b, err
		}
		return out, rest, nil
	default:
		// appendScalar's text holds nothing JSON escapes: quoted as it is.
		out, rest, err := appendScalar(append(dst, '"'), b)
		if err != nil {
			return dst, b, err
		}
		return append(out, '"'), rest, nil
	}
}

// appendJSONString appends s as a JSON string, escaped as OpenSIPS's cJSON
// escapes it: the quote, the backslash, \b \f \n \r \t, other control bytes
// as \u00XX; every other byte (UTF-8, DEL, '/') as it is.
func appendJSONString(dst, s []byte) []byte {
	dst = slices.Grow(dst, len(s)+2)
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hexDigits = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonStringFits reports whether s, written as a JSON string, leaves dst
// within max bytes. Its escapes are counted only when the worst case (six
// bytes for a control byte) might not fit.
func jsonStringFits(dst, s []byte, max int) bool {
	room := max - len(dst) - 2
	if len(s) > room {
		return false
	}
	return len(s) <= room/6 || len(dst)+jsonStringLen(s) <= max
}

// jsonStringLen is the length of s written by appendJSONString.
func jsonStringLen(s []byte) int {
	n := len(s) + 2
	for _, c := range s {
		switch {
		case c >= 0x20 && c != '"' && c != '\\':
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			n++
		default:
			n += 5
		}
	}
	return n
}

// quoteJSONInPlace makes the text at dst[mark:] the JSON string that
// appendJSONString writes for it, where it lies, unless dst would pass max
// bytes (then ErrTooLarge, before any room is taken): the room is taken
// once and the text moved to its end from its last byte to its first.
func quoteJSONInPlace(dst []byte, mark, max int) ([]byte, error) {
	n := jsonStringLen(dst[mark:])
	if mark+n > max {
		return dst, ErrTooLarge
	}
	end := len(dst)
	dst = slices.Grow(dst, n-(end-mark))[:mark+n]
	w := len(dst) - 1
	dst[w] = '"'
	for r := end - 1; r >= mark; r-- {
		c := dst[r]
		if c >= 0x20 && c != '"' && c != '\\' {
			w--
			dst[w] = c
			continue
		}
		var x byte
		switch c {
		case '"', '\\':
			x = c
		case '\b':
			x = 'b'
		case '\f':
			x = 'f'
		case '\n':
			x = 'n'
		case '\r':
			x = 'r'
		case '\t':
			x = 't'
		default:
			const hexDigits = "0123456789abcdef"
			w -= 6
			dst[w], dst[w+1], dst[w+2], dst[w+3], dst[w+4], dst[w+5] = '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf]
			continue
		}
		w -= 2
		dst[w], dst[w+1] = '\\', x
	}
	dst[mark] = '"'
	return dst, nil
}

// bigValue is the size from which a value's room in the line is reserved
// at once, so that a large value is copied once and the line buffer does
// not grow by doubling past it.
