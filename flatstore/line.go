package flatstore

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// Limits that keep hostile records from costing unbounded time or memory.
// Both are enforced while the line grows, never after it was built.
const (
	// MaxDepth is the deepest nesting of maps and arrays rendered as JSON;
	// a deeper record is skipped (reason too_deep).
	MaxDepth = 256
	// MaxLineBytes is the longest line written; a record whose line would be
	// longer is skipped (reason too_large).
	MaxLineBytes = 64 << 20
)

// Encoder turns records into event lines (README: What it writes, Escape modes). An Encoder holds
// reusable buffers: use one per goroutine.
type Encoder struct {
	delim     []byte
	escDelim  []byte
	escape    Escape
	special   [256]bool // bytes that start an escape in values
	scan      swarSet   // special, eight bytes at a time (scan.go)
	intsPlain bool      // integers need no escape (fastpath.go)
	suppress  bool
	eventKey  []byte
	paramsKey []byte // nil: the record's own keys are the parameters
	params    [][]byte
	timeFmt   TimeFormat
	spans     [][]byte // params mode: each param's msgpack value, nil when absent
	values    []byte   // the rendered parameters of the current line
}

// NewEncoder returns an encoder for cfg.
func NewEncoder(cfg *Config) *Encoder {
	e := &Encoder{
		delim:    []byte(cfg.Delimiter),
		escape:   cfg.Escape,
		suppress: cfg.SuppressEventName,
		eventKey: []byte(cfg.EventKey),
		timeFmt:  cfg.TimeFormat,
	}
	if cfg.EscapeDelimiter != "" {
		e.escDelim = []byte(cfg.EscapeDelimiter)
	}
	if cfg.ParamsKey != "" {
		e.paramsKey = []byte(cfg.ParamsKey)
	}
	for _, p := range cfg.Params {
		e.params = append(e.params, []byte(p))
	}
	e.spans = make([][]byte, len(e.params))
	switch e.escape {
	case EscapeOpenSIPS:
		e.special['\r'], e.special['\n'], e.special[e.delim[0]] = true, true, true
	case EscapeBackslash:
		e.special['\r'], e.special['\n'], e.special['\\'], e.special[e.delim[0]] = true, true, true, true
	case EscapeCSV:
		e.special['\r'], e.special['\n'], e.special['"'], e.special[e.delim[0]] = true, true, true, true
	case EscapeOpenSIPSExact:
		e.special[e.delim[0]] = true
	}
	e.scan = newSwarSet(&e.special)
	e.intsPlain = digitsPlain(&e.special)
	return e
}

// Columns names the fields of a line that cfg writes: "event" (unless
// suppress_event_name), "time" (with a time_format), then the params, if
// named.
func Columns(cfg *Config) []string {
	var cols []string
	if !cfg.SuppressEventName {
		cols = append(cols, "event")
	}
	if cfg.TimeFormat != TimeNone {
		cols = append(cols, "time")
	}
	return append(cols, cfg.Params...)
}

// HeaderLine returns the header for cfg (without its newline): the literal
// text, or for "auto" the column names joined by the delimiter.
func HeaderLine(cfg *Config) []byte {
	switch cfg.Header {
	case "":
		return nil
	case "auto":
		e := NewEncoder(cfg)
		var out []byte
		for i, c := range Columns(cfg) {
			if i > 0 {
				out = append(out, e.delim...)
			}
			out, _ = e.appendEscaped(out, []byte(c), math.MaxInt)
		}
		return out
	}
	return []byte(cfg.Header)
}

// AppendLine appends the line for one record to dst. body starts with the
// record's msgpack map; rest is what follows the map; event is the event
// name (raw): the body's event_key string value, else tag. On error dst is
// returned unchanged and the record must be skipped (a dropError other than
// errTruncated) or the walk stopped (errTruncated).
func (e *Encoder) AppendLine(dst []byte, t EventTime, body, tag []byte) (out, rest, event []byte, err error) {
	return e.appendLine(dst, t, body, tag, MaxLineBytes)
}

// appendLine is AppendLine with the line bounded to max bytes (at most
// MaxLineBytes; errTooLarge beyond). The encoder renders every part of a
// line where it lies in dst, so the line is all the memory it takes, bar
// the values' side buffer (about bigValue) and a bigSlack of room.
func (e *Encoder) appendLine(dst []byte, t EventTime, body, tag []byte, max int) (out, rest, event []byte, err error) {
	start := len(dst)
	limit := start + min(max, MaxLineBytes)
	n, b, ok := readMapHeader(body)
	if !ok {
		return dst, body, nil, errTruncated
	}
	name := tag
	switch {
	case e.paramsKey != nil:
		// The parameters are the value under params_key; the record's
		// other keys name the event or are ignored.
		var pv []byte
		if name, pv, b, err = e.findEnvelope(b, n, tag); err != nil {
			return dst, body, nil, err
		}
		dst, err = e.appendHead(dst, start, name, t, limit)
		if err == nil && pv != nil {
			dst, err = e.appendParamsValue(dst, start, pv, limit)
		}
	case len(e.params) > 0:
		// One pass finds the event name and each parameter's value; the
		// line is then written straight into dst.
		if name, b, err = e.findParams(b, n, tag, true); err != nil {
			return dst, body, nil, err
		}
		dst, err = e.appendHead(dst, start, name, t, limit)
		if err == nil {
			dst, err = e.appendSpans(dst, start, limit)
		}
	case e.suppress:
		// No name to write first: the values go straight into dst.
		dst, _ = e.appendTimeParam(dst, start, t, limit)
		dst, b, name, err = e.appendPairs(dst, start, b, n, true, tag, limit)
	default:
		// The event key may come anywhere in the map: the values wait in
		// a side buffer until the name is known. A record whose values
		// pass bigValue is not copied twice: its name is found first, then
		// the values go straight into dst.
		vals, _ := e.appendTimeParam(e.values[:0], -1, t, bigValue)
		var r []byte
		vals, r, name, err = e.appendPairs(vals, -1, b, n, true, tag, bigValue)
		e.values = vals
		if err == nil {
			if dst, err = e.appendName(dst, name, limit-len(vals)); err == nil {
				dst = append(dst, vals...)
			}
			b = r
			break
		}
		if err != errTooLarge {
			return dst, body, nil, err
		}
		name = e.eventName(b, n, tag)
		if dst, err = e.appendHead(dst, start, name, t, limit); err == nil {
			dst, b, _, err = e.appendPairs(dst, start, b, n, true, tag, limit)
		}
	}
	if err != nil {
		return dst[:start], body, nil, err
	}
	return e.endLine(dst, start, name, b, limit)
}

// appendHead appends the event name (unless suppress_event_name) and the
// record time, when time_format asks for it, of the line that starts at
// dst[start].
func (e *Encoder) appendHead(dst []byte, start int, name []byte, t EventTime, limit int) ([]byte, error) {
	if !e.suppress {
		var err error
		if dst, err = e.appendName(dst, name, limit); err != nil {
			return dst, err
		}
	}
	return e.appendTimeParam(dst, start, t, limit)
}

// appendName appends the event name, escaped as values are (raw under
// opensips_exact, as OpenSIPS writes it).
func (e *Encoder) appendName(dst, name []byte, limit int) ([]byte, error) {
	if e.escape == EscapeOpenSIPSExact {
		if len(dst)+len(name) > limit {
			return dst, errTooLarge
		}
		return append(dst, name...), nil
	}
	return e.appendEscaped(dst, name, limit)
}

// sep appends the delimiter that goes before a parameter of the line that
// starts at dst[start] (start < 0: a side buffer, never at a line's start).
// There is none before the first thing of a line without an event name;
// under opensips_exact, as in OpenSIPS, none while the line is still empty.
func (e *Encoder) sep(dst []byte, start int, first bool) []byte {
	if e.suppress && start >= 0 {
		if e.escape == EscapeOpenSIPSExact {
			if len(dst) == start {
				return dst
			}
		} else if first && len(dst) == start {
			return dst
		}
	}
	return e.appendDelim(dst)
}

// appendPairs appends a parameter for each of the n key/value pairs at the
// head of b; with skipEvent, the pairs of the event key are not parameters.
// It returns the event name found (the first event key holding a string),
// or name when there is none.
func (e *Encoder) appendPairs(dst []byte, start int, b []byte, n uint32, skipEvent bool, name []byte, limit int) (out, rest, event []byte, err error) {
	found, first := false, true
	for i := uint32(0); i < n; i++ {
		var k, after []byte
		isString := true
		if len(b) > 0 && b[0]&0xe0 == 0xa0 { // a fixstr key, the commonest, read here
			kn := 1 + int(b[0]&0x1f)
			if len(b) < kn {
				return dst, b, name, errTruncated
			}
			k, after = b[1:kn], b[kn:]
		} else {
			k, after, isString = readStr(b)
		}
		if !isString {
			// A non-string key is no event key: skip the key, keep its value.
			if after, err = msgp.Skip(b); err != nil {
				return dst, b, name, errTruncated
			}
		}
		if skipEvent && isString && bytes.Equal(k, e.eventKey) {
			if v, r, ok := readStr(after); ok && isStr(after[0]) {
				if !found {
					name, found = v, true
				}
				b = r
				continue
			}
			if b, err = msgp.Skip(after); err != nil {
				return dst, b, name, errTruncated
			}
			continue
		}
		dst = e.sep(dst, start, first)
		first = false
		if len(after) > 0 && after[0]&0xe0 == 0xa0 { // a fixstr value, the commonest, read here
			vn := 1 + int(after[0]&0x1f)
			if len(after) < vn {
				return dst, b, name, errTruncated
			}
			if dst, err = e.appendEscaped(dst, after[1:vn], limit); err != nil {
				return dst, b, name, err
			}
			b = after[vn:]
			continue
		}
		if dst, b, err = e.appendValue(dst, after, limit); err != nil {
			return dst, b, name, err
		}
	}
	return dst, b, name, nil
}

// appendSpans appends the parameters findParams found, in params order; an
// absent one is an empty field.
func (e *Encoder) appendSpans(dst []byte, start, limit int) ([]byte, error) {
	for i, v := range e.spans {
		dst = e.sep(dst, start, i == 0)
		if v == nil {
			continue
		}
		var err error
		if dst, _, err = e.appendValue(dst, v, limit); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// findEnvelope walks the n pairs of a record at the head of b for its
// event name (the first event key holding a string, else tag) and the value
// under params_key (nil when absent or nil), and returns what follows the
// map.
func (e *Encoder) findEnvelope(b []byte, n uint32, tag []byte) (name, params, rest []byte, err error) {
	name = tag
	found := false
	for i := uint32(0); i < n; i++ {
		k, isString, v, r, ok := readPair(b)
		if !ok {
			return name, nil, b, errTruncated
		}
		switch {
		case !found && e.isEvent(k, isString, v):
			name, _, _ = readStr(v)
			found = true
		case isString && params == nil && bytes.Equal(k, e.paramsKey) && v[0] != 0xc0:
			params = v
		}
		b = r
	}
	return name, params, b, nil
}

// appendParamsValue appends the parameters held by the value under
// params_key: a map's values in order (or, with params, those it names),
// an array's elements in order, or a single other value.
func (e *Encoder) appendParamsValue(dst []byte, start int, v []byte, limit int) ([]byte, error) {
	var err error
	switch msgp.NextType(v) {
	case msgp.MapType:
		n, b, ok := readMapHeader(v)
		if !ok {
			return dst, errTruncated
		}
		if len(e.params) > 0 {
			if _, _, err = e.findParams(b, n, nil, false); err != nil {
				return dst, err
			}
			return e.appendSpans(dst, start, limit)
		}
		dst, _, _, err = e.appendPairs(dst, start, b, n, false, nil, limit)
		return dst, err
	case msgp.ArrayType:
		n, b, ok := readArrayHeader(v)
		if !ok {
			return dst, errTruncated
		}
		for i := uint32(0); i < n; i++ {
			dst = e.sep(dst, start, i == 0)
			if dst, b, err = e.appendValue(dst, b, limit); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	dst = e.sep(dst, start, true)
	dst, _, err = e.appendValue(dst, v, limit)
	return dst, err
}

// eventName returns the first event key's string value among the n pairs
// at the head of b, or tag.
func (e *Encoder) eventName(b []byte, n uint32, tag []byte) []byte {
	for i := uint32(0); i < n; i++ {
		k, isString, v, r, ok := readPair(b)
		if !ok {
			return tag
		}
		if e.isEvent(k, isString, v) {
			name, _, _ := readStr(v)
			return name
		}
		b = r
	}
	return tag
}

// isEvent reports whether a pair names the event: the event key, holding
// a string.
func (e *Encoder) isEvent(k []byte, isString bool, v []byte) bool {
	return isString && bytes.Equal(k, e.eventKey) && len(v) > 0 && isStr(v[0])
}

// findParams walks the n pairs at the head of b once, keeping each
// parameter's msgpack value in e.spans, and returns the event name (with
// event, the first event key holding a string; else tag) and what follows
// the map.
func (e *Encoder) findParams(b []byte, n uint32, tag []byte, event bool) (name, rest []byte, err error) {
	name = tag
	found := !event
	for i := range e.spans {
		e.spans[i] = nil
	}
	for i := uint32(0); i < n; i++ {
		k, isString, v, r, ok := readPair(b)
		if !ok {
			return name, b, errTruncated
		}
		if !found && e.isEvent(k, isString, v) {
			name, _, _ = readStr(v)
			found = true
		}
		if isString {
			for j, p := range e.params {
				// The first occurrence of a key wins; a key listed twice
				// in params is written twice.
				if e.spans[j] == nil && bytes.Equal(k, p) {
					e.spans[j] = v
				}
			}
		}
		b = r
	}
	return name, b, nil
}

// appendTimeParam appends the record time as the first parameter of the
// line that starts at dst[start], when time_format asks for it.
func (e *Encoder) appendTimeParam(dst []byte, start int, t EventTime, limit int) ([]byte, error) {
	if e.timeFmt == TimeNone {
		return dst, nil
	}
	dst = e.sep(dst, start, true)
	// Escaped like any value: a delimiter such as '-' or ':' occurs in the
	// formatted time.
	var nb [48]byte
	return e.appendEscaped(dst, e.appendTime(nb[:0], t), limit)
}

func (e *Encoder) appendDelim(dst []byte) []byte {
	if len(e.delim) == 1 {
		return append(dst, e.delim[0])
	}
	return append(dst, e.delim...)
}

// endLine ends the line that starts at dst[start] and checks its length.
func (e *Encoder) endLine(dst []byte, start int, name, rest []byte, limit int) ([]byte, []byte, []byte, error) {
	if len(dst)+1 > limit {
		return dst[:start], rest, nil, errTooLarge
	}
	return append(dst, '\n'), rest, name, nil
}

// appendValue renders the msgpack value at the head of b, escaped, unless
// the line would pass limit bytes of dst.
func (e *Encoder) appendValue(dst, b []byte, limit int) ([]byte, []byte, error) {
	if len(b) == 0 {
		return dst, b, errTruncated
	}
	c := b[0]
	switch {
	case c&0xe0 == 0xa0: // fixstr
		n := int(c & 0x1f)
		if len(b) < 1+n {
			return dst, b, errTruncated
		}
		out, err := e.appendEscaped(dst, b[1:1+n], limit)
		return out, b[1+n:], err
	case c == 0xd9 && len(b) > 1: // str8
		n := int(b[1])
		if len(b) < 2+n {
			return dst, b, errTruncated
		}
		out, err := e.appendEscaped(dst, b[2:2+n], limit)
		return out, b[2+n:], err
	case c <= 0x7f: // positive fixint
		if c < 10 && !e.special['0'+c] {
			return append(dst, '0'+c), b[1:], nil
		}
	}
	if e.intsPlain {
		if out, rest, ok := appendInt(dst, b); ok {
			return out, rest, nil
		}
	}
	switch msgp.NextType(b) {
	case msgp.StrType, msgp.BinType:
		s, rest, ok := readStr(b)
		if !ok {
			return dst, b, errTruncated
		}
		out, err := e.appendEscaped(dst, s, limit)
		return out, rest, err
	case msgp.MapType, msgp.ArrayType:
		// The JSON is written straight into the line and escaped where it
		// lies: no copy of it is ever made, and no room is taken for it
		// before each part is known to fit (a large string takes its room
		// at once in appendJSONString).
		mark := len(dst)
		out, rest, err := e.appendJSON(dst, b, 0, false, limit)
		if err == nil {
			out, err = e.escapeJSON(out, mark, limit)
		}
		if err != nil {
			return out[:mark], b, err
		}
		return out, rest, nil
	}
	var nb [64]byte
	s, rest, err := appendScalar(nb[:0], b)
	if err != nil {
		return dst, b, err
	}
	out, err := e.appendEscaped(dst, s, limit)
	return out, rest, err
}

func (e *Encoder) appendTime(dst []byte, t EventTime) []byte {
	// An EventTime's nanoseconds field is 32 bits: it may hold whole seconds.
	if t.Nsec < 0 || t.Nsec >= 1e9 {
		t.Sec, t.Nsec = t.Sec+t.Nsec/1e9, t.Nsec%1e9
		if t.Nsec < 0 {
			t.Sec, t.Nsec = t.Sec-1, t.Nsec+1e9
		}
	}
	switch e.timeFmt {
	case TimeUnix:
		return strconv.AppendInt(dst, t.Sec, 10)
	case TimeUnixMs:
		return strconv.AppendInt(dst, t.Sec*1e3+t.Nsec/1e6, 10)
	case TimeUnixNs:
		return strconv.AppendInt(dst, t.Sec*1e9+t.Nsec, 10)
	case TimeRFC3339:
		return time.Unix(t.Sec, 0).UTC().AppendFormat(dst, time.RFC3339)
	case TimeRFC3339Nano:
		return appendRFC3339Nano(dst, t)
	}
	return dst
}

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
		return dst, b, errTooDeep
	}
	if len(dst) > max {
		return dst, b, errTooLarge
	}
	if len(b) == 0 {
		return dst, b, errTruncated
	}
	switch msgp.NextType(b) {
	case msgp.MapType:
		n, rest, ok := readMapHeader(b)
		if !ok {
			return dst, b, errTruncated
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
			return dst, b, errTruncated
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
			return dst, b, errTruncated
		}
		if !jsonStringFits(dst, v, max) {
			return dst, b, errTooLarge
		}
		return appendJSONString(dst, v), rest, nil
	case msgp.Float64Type, msgp.Float32Type:
		f, bits, rest, err := readFloat(b)
		if err != nil {
			return dst, b, errTruncated
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), rest, nil // JSON has no NaN or infinity
		}
		return appendFloat(dst, f, bits), rest, nil
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		// A JSON string of appendScalar's text (a time, or hex: nothing
		// to escape); the hex of a large payload must fit first.
		if _, data, _, err := readExt(b); err == nil && len(dst)+2*len(data) > max {
			return dst, b, errTooLarge
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
			return dst, b, errTooLarge
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
// bytes (then errTooLarge, before any room is taken): the room is taken
// once and the text moved to its end from its last byte to its first.
func quoteJSONInPlace(dst []byte, mark, max int) ([]byte, error) {
	n := jsonStringLen(dst[mark:])
	if mark+n > max {
		return dst, errTooLarge
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
const bigValue = 64 << 10

// bigSlack is what is reserved beyond a large value: the delimiters and
// short values that may follow it on the line, and the newline.
const bigSlack = 4 << 10

// appendEscaped appends a value with the configured escape applied, unless
// the line would pass limit bytes of dst: then errTooLarge, with dst
// unchanged or, when only the escape made it too long, holding the escaped
// value (the caller cuts the line back).
func (e *Encoder) appendEscaped(dst, s []byte, limit int) ([]byte, error) {
	if len(dst)+len(s) > limit {
		return dst, errTooLarge
	}
	i := e.scan.cleanPrefix(&e.special, s)
	if len(s) >= bigValue {
		// Room for the value and the end of the line, reserved once.
		n := len(s)
		if i < len(s) && e.escape != EscapeNone {
			n = e.escapedLen(s, i)
		}
		if len(dst)+n > limit {
			return dst, errTooLarge
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
		return dst, errTooLarge // the caller cuts the line back
	}
	return dst, nil
}

// escapeJSON applies the configured escape to the JSON at dst[mark:]
// where it lies, unless the line would pass limit bytes of dst (then
// errTooLarge, before any room is taken). Escape opensips replaces bytes
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
		return dst, errTooLarge
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
