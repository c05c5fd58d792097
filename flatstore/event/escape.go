package event

import (
	"bytes"
	"slices"
)

const bigValue = 64 << 10

// bigSlack is what is reserved beyond a large value: the delimiters and
// short values that may follow it on the line, and the newline.
const bigSlack = 4 << 10

// appendEscaped appends a value with the configured escape applied, unless
// the line would pass limit bytes of dst: then ErrTooLarge, with dst
// unchanged or, when only the escape made it too long, holding the escaped
// value (the caller cuts the line back).
func (e *Encoder) appendEscaped(dst, s []byte, limit int) ([]byte, error) {
	if len(dst)+len(s) > limit {
		return dst, ErrTooLarge
	}
	i := e.scan.cleanPrefix(&e.special, s)
	if len(s) >= bigValue {
		// Room for the value and the end of the line, reserved once.
		n := len(s)
		if i < len(s) && e.escape != EscapeNone {
			n = e.escapedLen(s, i)
		}
		if len(dst)+n > limit {
			return dst, ErrTooLarge
		}
		dst = slices.Grow(dst, n+bigSlack)
	}
	if i == len(s) || e.escape == EscapeNone {
		return append(dst, s...), nil
	}
	switch e.escape {
	case EscapeOpenSIPS, EscapeOpenSIPSExact:
		// Its replacements keep the length: copied whole, escaped there.
		mark := len(dst)
		dst = append(dst, s...)
		e.escapeInPlaceFrom(dst[mark:], i)
	// Each clean run is copied whole; the byte after it is rewritten, and
	// the next run found from there.
	case EscapeBackslash:
		for {
			dst = append(dst, s[:i]...)
			if i == len(s) {
				break
			}
			c := s[i]
			s = s[i+1:]
			switch c {
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			default: // the delimiter's first byte
				// Escaping each such byte, not only whole delimiters, keeps
				// multi-byte delimiters reversible: a value ending in "|"
				// followed by the delimiter "||" would read as "||" + "|".
				dst = append(dst, '\\', c)
			}
			i = e.scan.cleanPrefix(&e.special, s)
		}
	case EscapeCSV:
		// Quoted, each quote doubled: the runs between quotes copied whole.
		dst = append(dst, '"')
		for {
			j := bytes.IndexByte(s, '"')
			if j < 0 {
				break
			}
			dst = append(dst, s[:j+1]...)
			dst = append(dst, '"')
			s = s[j+1:]
		}
		dst = append(dst, s...)
		dst = append(dst, '"')
	}
	if len(dst) > limit {
		return dst, ErrTooLarge // the caller cuts the line back
	}
	return dst, nil
}

// escapeJSON applies the configured escape to the JSON at dst[mark:]
// where it lies, unless the line would pass limit bytes of dst (then
// ErrTooLarge, before any room is taken). Escape opensips replaces bytes
// by bytes of the same length; backslash and csv make the value longer:
// its escaped length is counted first, the room taken once, and the value
// moved back to the end of it from its last byte to its first, each byte
// escaped on the way, so that no copy of the JSON is ever needed.
func (e *Encoder) escapeJSON(dst []byte, mark, limit int) ([]byte, error) {
	s := dst[mark:]
	i := e.scan.cleanPrefix(&e.special, s)
	if i == len(s) || e.escape == EscapeNone {
		return dst, nil
	}
	switch e.escape {
	case EscapeOpenSIPS, EscapeOpenSIPSExact:
		e.escapeInPlaceFrom(s, i)
		return dst, nil
	}
	n := e.escapedLen(s, i)
	if mark+n > limit {
		return dst, ErrTooLarge
	}
	end := len(dst)
	dst = slices.Grow(dst, n-len(s))[:mark+n]
	w := len(dst)
	if e.escape == EscapeBackslash {
		// Each special byte becomes two; once no special byte is left
		// before r, the rest is in place already (w == r+1).
		for r := end - 1; w > r+1; r-- {
			c := dst[r]
			if !e.special[c] {
				w--
				dst[w] = c
				continue
			}
			switch c {
			case '\n':
				c = 'n'
			case '\r':
				c = 'r'
			}
			w -= 2
			dst[w], dst[w+1] = '\\', c
		}
		return dst, nil
	}
	// csv: quoted, each quote doubled; the runs between quotes moved whole.
	w--
	dst[w] = '"'
	for r := end; ; {
		j := mark + bytes.LastIndexByte(dst[mark:r], '"')
		w -= r - (j + 1)
		copy(dst[w:], dst[j+1:r])
		if j < mark {
			break
		}
		w -= 2
		dst[w], dst[w+1] = '"', '"'
		r = j
	}
	dst[mark] = '"'
	return dst, nil
}

// escapeInPlaceFrom is escapeInPlace knowing that s[:i] needs no escape:
// CR and LF become a space; the delimiter's first byte a space, or, with
// escape_delimiter, a whole delimiter becomes it and a lone first byte
// stays. From each rewritten byte the next one is found by cleanPrefix.
func (e *Encoder) escapeInPlaceFrom(s []byte, i int) {
	for i < len(s) {
		switch c := s[i]; {
		case c == '\r' || c == '\n' || e.escDelim == nil:
			s[i] = ' '
			i++
		case bytes.HasPrefix(s[i:], e.delim):
			copy(s[i:], e.escDelim)
			i += len(e.delim)
		default:
			i++
		}
		i += e.scan.cleanPrefix(&e.special, s[i:])
	}
}

// escapedLen is the length of s once escaped; the bytes before clean need
// no escape.
func (e *Encoder) escapedLen(s []byte, clean int) int {
	n := len(s)
	switch e.escape {
	case EscapeBackslash:
		for _, c := range s[clean:] {
			if e.special[c] {
				n++
			}
		}
	case EscapeCSV:
		n += 2 + bytes.Count(s[clean:], []byte{'"'})
	}
	return n
}
