package event

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// A Template is a path with substitutions, in Fluent Bit's record accessor
// style: $TAG, $TAG[n] (the n-th dot-separated part of the tag), $EVENT,
// $key and $key['sub']['subsub'] (record values). A key name is letters,
// digits and '_', with '-' allowed between two of those ($call-id); $TAG and
// $EVENT end before a '-' ($TAG-events.log). A '$' not followed by a name is
// a literal '$'.
//
// A substituted value can never leave the directory: '/', NUL and every
// other control character (below 0x20, and 0x7f) become '_', ".." becomes
// "__", and an absent key, an empty or non-scalar value or a $TAG[n] past
// the end render as "_". Every rendered path therefore has the same number
// of components as the template, and a name never carries a newline into
// a log line. The rendered part is then opened beneath the static
// directory (package filestore: Opening a file), so no symlink leads out of
// it either.
type Template struct {
	raw       string
	segs      []segment
	staticDir string
	dynDir    bool
}

type segKind uint8

const (
	segLit segKind = iota
	segTag
	segTagPart
	segEvent
	segKey
)

type segment struct {
	kind segKind
	lit  string
	part int
	keys []string // segKey: the key then its sub-keys
}

// ParseTemplate parses a path; a path without '$' substitutions is static.
func ParseTemplate(path string) (*Template, error) {
	t := &Template{raw: path}
	first := -1 // where the first substitution starts
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.segs = append(t.segs, segment{kind: segLit, lit: lit.String()})
			lit.Reset()
		}
	}
	if strings.IndexByte(path, 0) >= 0 {
		return nil, errors.New("must not contain a NUL byte")
	}
	for i := 0; i < len(path); {
		c := path[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		j := identEnd(path, i+1)
		ident := path[i+1 : j]
		if ident == "" {
			lit.WriteByte(c)
			i++
			continue
		}
		flush()
		if first < 0 {
			first = i
		}
		switch ident {
		case "TAG":
			if j < len(path) && path[j] == '[' {
				end := strings.IndexByte(path[j:], ']')
				if end < 0 {
					return nil, fmt.Errorf("$TAG[ without a closing ]")
				}
				n, err := strconv.Atoi(path[j+1 : j+end])
				if err != nil || n < 0 {
					return nil, fmt.Errorf("$TAG[%s]: the index must be a number, 0 or more", strings.Trim(strconv.Quote(path[j+1:j+end]), `"`))
				}
				t.segs = append(t.segs, segment{kind: segTagPart, part: n})
				j += end + 1
			} else {
				t.segs = append(t.segs, segment{kind: segTag})
			}
		case "EVENT":
			t.segs = append(t.segs, segment{kind: segEvent})
		default:
			s := segment{kind: segKey, keys: []string{ident}}
			for j < len(path) && path[j] == '[' {
				if j+1 >= len(path) || (path[j+1] != '\'' && path[j+1] != '"') {
					return nil, fmt.Errorf("$%s[: expected ['sub'] or [\"sub\"]", ident)
				}
				q := path[j+1]
				end := strings.IndexByte(path[j+2:], q)
				if end < 0 || j+2+end+1 >= len(path) || path[j+2+end+1] != ']' {
					return nil, fmt.Errorf("$%s: unterminated ['sub'] accessor", ident)
				}
				s.keys = append(s.keys, path[j+2:j+2+end])
				j += 2 + end + 2
			}
			t.segs = append(t.segs, s)
		}
		i = j
	}
	flush()
	if len(t.segs) == 0 {
		return nil, errors.New("empty path")
	}
	// The directory part that holds no substitution.
	if t.Static() {
		t.staticDir = filepath.Dir(path)
		return t, nil
	}
	t.staticDir = filepath.Dir(path[:first] + "x")
	t.dynDir = strings.Contains(path[first:], "/")
	// The rest is resolved beneath the static directory one component at
	// a time: it cannot go up nor hold an empty component.
	rest := strings.TrimPrefix(path, t.staticDir)
	for _, c := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
		if c == "" || c == "." || c == ".." {
			return nil, fmt.Errorf("%q after a substitution: each component below %q must be a name", c, t.staticDir)
		}
	}
	return t, nil
}

// identEnd returns where the name that starts at path[i] ends. A name is
// letters, digits and '_', and '-' between two of those, so that record keys
// such as call-id work while $n-$m and $user-x.log read as expected; $TAG and
// $EVENT never take a '-' ($TAG-events.log is the tag then "-events.log").
func identEnd(path string, i int) int {
	j := i
	for j < len(path) {
		c := path[j]
		if c == '-' && j > i && j+1 < len(path) && isNameByte(path[j+1]) {
			if name := path[i:j]; name == "TAG" || name == "EVENT" {
				return j
			}
			j++
			continue
		}
		if !isNameByte(c) {
			break
		}
		j++
	}
	return j
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Static reports whether the template has no substitution.
func (t *Template) Static() bool { return len(t.segs) == 1 && t.segs[0].kind == segLit }

// StaticDir is the longest directory that holds no substitution: every
// rendered path lies inside it.
func (t *Template) StaticDir() string { return t.staticDir }

// DynamicDir reports whether a substitution stands in a directory component.
func (t *Template) DynamicDir() bool { return t.dynDir }

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// PerRecord reports whether the rendered path depends on the record ($EVENT
// or a $key), not only on the tag: otherwise every record of a chunk goes
// to one path.
func (t *Template) PerRecord() bool {
	for _, s := range t.segs {
		if s.kind == segEvent || s.kind == segKey {
			return true
		}
	}
	return false
}

// Render appends the path for one record to dst. body is the record's
// msgpack map (may be nil).
func (t *Template) Render(dst []byte, tag, event, body []byte) []byte {
	for _, s := range t.segs {
		switch s.kind {
		case segLit:
			dst = append(dst, s.lit...)
		case segTag:
			dst = appendSafe(dst, tag)
		case segTagPart:
			dst = appendSafe(dst, tagPart(tag, s.part))
		case segEvent:
			dst = appendSafe(dst, event)
		case segKey:
			var scratch [32]byte
			dst = appendSafe(dst, lookupScalar(scratch[:0], body, s.keys))
		}
	}
	return dst
}

func tagPart(tag []byte, n int) []byte {
	for i := 0; ; i++ {
		p, rest, found := bytes.Cut(tag, []byte{'.'})
		if i == n {
			return p
		}
		if !found {
			return nil
		}
		tag = rest
	}
}

// appendSafe appends a substituted value so that it stays one path
// component inside the directory.
func appendSafe(dst, v []byte) []byte {
	if len(v) == 0 || (len(v) == 1 && v[0] == '.') {
		return append(dst, '_')
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '/' || c < 0x20 || c == 0x7f:
			c = '_'
		case c == '.' && i+1 < len(v) && v[i+1] == '.':
			dst = append(dst, '_', '_')
			i++
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// lookupScalar finds keys (a key then sub-keys) in the msgpack map body and
// appends its value as text to scratch when it is a string, binary, number
// or bool; otherwise it returns nil.
func lookupScalar(scratch, body []byte, keys []string) []byte {
	v := body
	for _, k := range keys {
		var ok bool
		v, ok = mapGet(v, k)
		if !ok {
			return nil
		}
	}
	s, ok := scalarText(scratch, v)
	if !ok {
		return nil
	}
	return s
}
