package event

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flatstore/flatstore/flatstore/strftime"
)

// A Template is a path with substitutions, in Fluent Bit's record accessor
// style: $TAG, $TAG[n] (the n-th dot-separated part of the tag), $EVENT,
// $key and $key['sub']['subsub'] (record values). A key name is letters,
// digits and '_', with '-' allowed between two of those ($call-id); $TAG and
// $EVENT end before a '-' ($TAG-events.log). A '$' not followed by a name is
// a literal '$'.
//
// It may also hold strftime conversions of the record's own time (package
// strftime: %Y %m %d %H %M %S %y %j %s %F %T %b %e %z), rendered in the
// template's time zone, as in /var/log/events/%Y-%m-%d/$EVENT.log; %% is a
// literal '%', and any other '%' is refused, so that no path that held a
// '%' before conversions existed changes meaning without a word. A
// conversion renders digits, letters, '-', ':', '+' and ' ' only: never a
// '/', a '.' nor nothing.
//
// A substituted value can never leave the directory: '/', NUL and every
// other control character (below 0x20, and 0x7f) become '_', ".." becomes
// "__", and an absent key, an empty or non-scalar value or a $TAG[n] past
// the end render as "_". Every rendered path therefore has the same number
// of components as the template, and a name never carries a newline into
// a log line. The rendered part is then opened beneath the static
// directory (package filestore: Opening a file), so no symlink leads out of
// it either. The static directory ends before the first component that
// holds a substitution or a conversion.
type Template struct {
	raw       string
	segs      []segment
	staticDir string
	dynDir    bool
	timed     bool           // holds a strftime conversion
	loc       *time.Location // the conversions' time zone
}

type segKind uint8

const (
	segLit segKind = iota
	segTag
	segTagPart
	segEvent
	segKey
	segTime // a strftime conversion of the record's time
)

type segment struct {
	kind segKind
	lit  string
	part int
	conv byte     // segTime: the letter after '%'
	keys []string // segKey: the key then its sub-keys
}

// ParseTemplate parses a path; a path without '$' substitutions and
// strftime conversions is static. loc is the conversions' time zone (nil:
// UTC).
func ParseTemplate(path string, loc *time.Location) (*Template, error) {
	if loc == nil {
		loc = time.UTC
	}
	t := &Template{raw: path, loc: loc}
	first := -1       // where the first substitution starts
	var static string // the literal text before it, %% read as %
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
		if c == '%' {
			if i+1 >= len(path) {
				return nil, errors.New("ends with a lone %: write %% for a literal %")
			}
			conv := path[i+1]
			if conv == '%' {
				lit.WriteByte('%')
				i += 2
				continue
			}
			if conv == '/' || !strftime.IsConversion(conv) {
				return nil, strftime.ErrUnsupported(conv)
			}
			if first < 0 {
				first, static = i, lit.String()
			}
			flush()
			t.segs = append(t.segs, segment{kind: segTime, conv: conv})
			t.timed = true
			i += 2
			continue
		}
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
		if first < 0 {
			first, static = i, lit.String()
		}
		flush()
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
		t.staticDir = filepath.Dir(t.segs[0].lit)
		return t, nil
	}
	t.staticDir = filepath.Dir(static + "x")
	if k := strings.LastIndexByte(static, '/'); k < 0 || (static[:k] != t.staticDir && static[:k+1] != t.staticDir) {
		return nil, fmt.Errorf("the directory before the first substitution must be written clean, as %q (no //, . or ..)", t.staticDir)
	}
	t.dynDir = strings.Contains(path[first:], "/")
	// The rest is resolved beneath the static directory one component at
	// a time: it cannot go up nor hold an empty component. ('%%' is one
	// character in a name, so the components of the path as written are
	// those of every rendered path.)
	comps := strings.Split(path, "/")
	for _, c := range comps[strings.Count(path[:first], "/"):] {
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

// StaticPath is the file of a static template: the path as written, with
// %% read as %.
func (t *Template) StaticPath() string {
	if !t.Static() {
		return ""
	}
	return t.segs[0].lit
}

// Timed reports whether the template holds a strftime conversion: its
// paths depend on each record's time.
func (t *Template) Timed() bool { return t.timed }

// StaticDir is the longest directory that holds no substitution: every
// rendered path lies inside it.
func (t *Template) StaticDir() string { return t.staticDir }

// DynamicDir reports whether a substitution stands in a directory component.
func (t *Template) DynamicDir() bool { return t.dynDir }

// String returns the template as written.
func (t *Template) String() string { return t.raw }

// PerRecord reports whether the rendered path depends on the record ($EVENT,
// a $key or its time), not only on the tag: otherwise every record of a
// chunk goes to one path.
func (t *Template) PerRecord() bool {
	for _, s := range t.segs {
		if s.kind == segEvent || s.kind == segKey || s.kind == segTime {
			return true
		}
	}
	return false
}

// A TimeCache keeps the date and clock of the last second a template
// rendered, so that the records of one second (most of a chunk's) work
// them out once. The zero value is empty; one goroutine uses it at a time.
type TimeCache struct {
	ok  bool
	sec int64
	loc *time.Location
	f   strftime.Fields
}

// Render appends the path for one record to dst. body is the record's
// msgpack map (may be nil), at its time (the conversions' instant); c, when
// not nil, keeps the conversions' fields for the next record of the same
// second.
func (t *Template) Render(dst []byte, tag, event, body []byte, at Time, c *TimeCache) []byte {
	return t.render(dst, tag, event, body, at, c, false)
}

// RenderUntimed appends the path for one record with each strftime
// conversion left as written (%Y): the same for every record time. It
// names the files a template writes apart from their time
// (max_dynamic_files).
func (t *Template) RenderUntimed(dst []byte, tag, event, body []byte) []byte {
	return t.render(dst, tag, event, body, Time{}, nil, true)
}

func (t *Template) render(dst []byte, tag, event, body []byte, at Time, c *TimeCache, untimed bool) []byte {
	var tf strftime.Fields
	haveTime := false
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
		case segTime:
			if untimed {
				dst = append(dst, '%', s.conv)
				continue
			}
			if !haveTime {
				// Every conversion is of whole seconds.
				switch {
				case c == nil:
					tf = strftime.FieldsOf(time.Unix(at.Sec, 0).In(t.loc))
				case c.ok && c.sec == at.Sec && c.loc == t.loc:
					tf = c.f
				default:
					tf = strftime.FieldsOf(time.Unix(at.Sec, 0).In(t.loc))
					*c = TimeCache{ok: true, sec: at.Sec, loc: t.loc, f: tf}
				}
				haveTime = true
			}
			dst = tf.AppendConv(dst, s.conv)
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
