package event

import (
	"bytes"
	"errors"
)

// ErrBadLine is returned by Split for a line that its escape mode could not
// have written.
var ErrBadLine = errors.New("flatstore: malformed line")

// Split parses one line written with escape backslash or csv back into its
// fields (the event name first unless suppress_event_name; the trailing
// newline, if any, is removed first). For other modes it splits on the
// delimiter, which is not reversible.
//
// With escape backslash a value's backslash, LF and CR are written as \\,
// \n and \r, and every byte equal to the delimiter's first byte as a
// backslash and that byte (for a one-byte delimiter: backslash, delimiter).
func Split(opt Options, line []byte) ([][]byte, error) {
	var out [][]byte
	err := SplitFunc(opt, line, func(f []byte) bool {
		out = append(out, append([]byte{}, f...))
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SplitFunc calls fn with each field of line, in order, as Split returns
// them, and stops when fn returns false; it holds no field but the one it
// hands over, so that a line of millions of fields costs no more memory
// than its longest field. A field is valid only during the call. For a
// line that its escape mode could not have written it returns ErrBadLine,
// possibly after fn has seen the fields before the fault.
func SplitFunc(opt Options, line []byte, fn func(field []byte) bool) error {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	delim := []byte(opt.Delimiter)
	switch opt.Escape {
	case EscapeBackslash:
		return splitBackslash(line, delim, fn)
	case EscapeCSV:
		return splitCSV(line, delim[0], fn)
	}
	splitPlain(line, delim, fn)
	return nil
}

// splitBackslash reads the fields of a line written with escape backslash.
func splitBackslash(line, delim []byte, fn func(field []byte) bool) error {
	var cur []byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			if i+1 >= len(line) {
				return ErrBadLine
			}
			switch n := line[i+1]; {
			case n == '\\':
				cur = append(cur, '\\')
				i++
			case n == 'n':
				cur = append(cur, '\n')
				i++
			case n == 'r':
				cur = append(cur, '\r')
				i++
			case n == delim[0]:
				cur = append(cur, n)
				i++
			default:
				return ErrBadLine
			}
		case c == '\n' || c == '\r':
			return ErrBadLine
		case bytes.HasPrefix(line[i:], delim):
			if !fn(cur) {
				return nil
			}
			cur = cur[:0]
			i += len(delim) - 1
		case c == delim[0]:
			// Never written unescaped inside a value.
			return ErrBadLine
		default:
			cur = append(cur, c)
		}
	}
	fn(cur)
	return nil
}

// splitCSV reads the fields of a line written with escape csv (RFC 4180,
// a one-byte delimiter d).
func splitCSV(line []byte, d byte, fn func(field []byte) bool) error {
	var cur []byte
	i := 0
	for {
		cur = cur[:0]
		if i < len(line) && line[i] == '"' {
			i++
			for {
				if i >= len(line) {
					return ErrBadLine
				}
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						cur = append(cur, '"')
						i += 2
						continue
					}
					i++
					break
				}
				cur = append(cur, line[i])
				i++
			}
			if i < len(line) && line[i] != d {
				return ErrBadLine
			}
		} else {
			for i < len(line) && line[i] != d {
				if line[i] == '"' || line[i] == '\n' || line[i] == '\r' {
					return ErrBadLine
				}
				cur = append(cur, line[i])
				i++
			}
		}
		if !fn(cur) || i >= len(line) {
			return nil
		}
		i++ // the delimiter
	}
}

// splitPlain splits a line of the other modes on the delimiter.
func splitPlain(line, delim []byte, fn func(field []byte) bool) {
	for {
		j := bytes.Index(line, delim)
		if j < 0 {
			fn(line)
			return
		}
		if !fn(line[:j]) {
			return
		}
		line = line[j+len(delim):]
	}
}
