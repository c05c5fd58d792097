package flatstore

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
func Split(cfg *Config, line []byte) ([][]byte, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	delim := []byte(cfg.Delimiter)
	var out [][]byte
	switch cfg.Escape {
	case EscapeBackslash:
		var cur []byte
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case c == '\\':
				if i+1 >= len(line) {
					return nil, ErrBadLine
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
					return nil, ErrBadLine
				}
			case c == '\n' || c == '\r':
				return nil, ErrBadLine
			case bytes.HasPrefix(line[i:], delim):
				out = append(out, nonNil(cur))
				cur = nil
				i += len(delim) - 1
			case c == delim[0]:
				// Never written unescaped inside a value.
				return nil, ErrBadLine
			default:
				cur = append(cur, c)
			}
		}
		return append(out, nonNil(cur)), nil
	case EscapeCSV:
		d := delim[0]
		i := 0
		for {
			var cur []byte
			if i < len(line) && line[i] == '"' {
				i++
				for {
					if i >= len(line) {
						return nil, ErrBadLine
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
					return nil, ErrBadLine
				}
			} else {
				for i < len(line) && line[i] != d {
					if line[i] == '"' || line[i] == '\n' || line[i] == '\r' {
						return nil, ErrBadLine
					}
					cur = append(cur, line[i])
					i++
				}
			}
			out = append(out, nonNil(cur))
			if i >= len(line) {
				return out, nil
			}
			i++ // the delimiter
		}
	}
	return append(out, bytes.Split(line, delim)...), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
