package event

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"
	"unsafe"

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
	// fast: fastPairs may write pairs (a one-byte delimiter, a special
	// set the SWAR tests cover); evWord, evMask: the event key as a word
	// (evLen ≤ 8), evLen its length.
	fast, sameLen  bool // sameLen: escape opensips or opensips_exact
	delim0         byte // delim[0] when fast: one load a pair, no bounds check (39 instructions a record fewer)
	evWord, evMask uint64
	evLen          int
	suppress       bool
	eventKey       []byte
	paramsKey      []byte // nil: the record's own keys are the parameters
	// nilEmpty: a nil parameter is an empty field, not "null" — under
	// escape opensips_exact with params_key, where a nil is what
	// event_stream and event_datagram send for a parameter the event left
	// unset and event_flatstore writes nothing for.
	nilEmpty bool
	// byEvent: event_params_file, the columns of the events it names
	// (with params_key); params is then the list of the record at hand,
	// defParams the configured one, and spans a prefix of spansBuf.
	byEvent   map[string][][]byte
	defParams [][]byte
	spansBuf  [][]byte
	params    [][]byte
	timeFmt   TimeFormat
	spans     [][]byte // params mode: each param's msgpack value, nil when absent
	values    []byte   // the rendered parameters of the current line
}

// NewEncoder returns an encoder for opt.
func NewEncoder(opt Options) *Encoder {
	e := &Encoder{
		delim:    []byte(opt.Delimiter),
		escape:   opt.Escape,
		suppress: opt.SuppressEventName,
		eventKey: []byte(opt.EventKey),
		timeFmt:  opt.TimeFormat,
	}
	if opt.EscapeDelimiter != "" {
		e.escDelim = []byte(opt.EscapeDelimiter)
	}
	if opt.ParamsKey != "" {
		e.paramsKey = []byte(opt.ParamsKey)
		e.nilEmpty = opt.Escape == EscapeOpenSIPSExact
	}
	for _, p := range opt.Params {
		e.params = append(e.params, []byte(p))
	}
	e.defParams = e.params
	most := len(e.params)
	if e.paramsKey != nil && len(opt.EventParams) > 0 {
		e.byEvent = map[string][][]byte{}
		for ev, ps := range opt.EventParams {
			var l [][]byte
			for _, p := range ps {
				l = append(l, []byte(p))
			}
			e.byEvent[ev] = l
			most = max(most, len(l))
		}
	}
	e.spansBuf = make([][]byte, most)
	e.spans = e.spansBuf[:len(e.params)]
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
	e.evLen = len(e.eventKey)
	e.sameLen = e.escape == EscapeOpenSIPS || e.escape == EscapeOpenSIPSExact
	// fastPairs' one-mask test is exact only for ASCII special bytes (a
	// delimiter of one byte at or past 0x80 takes the general walk).
	e.fast = len(e.delim) == 1 && !e.scan.tableOnly && e.evLen <= 8 && (e.scan.n == 1 || e.scan.n == 2) &&
		(e.scan.pat[0]|e.scan.pat[1])&swarHi == 0
	if e.scan.n == 1 {
		e.scan.pat[1] = e.scan.pat[0] // fastPairs tests two patterns
	}
	if e.fast {
		e.delim0 = e.delim[0]
		var w [8]byte
		copy(w[:], e.eventKey)
		e.evWord = binary.LittleEndian.Uint64(w[:])
		e.evMask = 1<<(uint(e.evLen)*8) - 1
		if e.evLen == 8 {
			e.evMask = ^uint64(0)
		}
	}
	return e
}

// Shrink drops the encoder's side buffer when it grew past max bytes (a
// rare huge value), so that an encoder kept for the next flush does not
// keep that memory.
func (e *Encoder) Shrink(max int) {
	if cap(e.values) > max {
		e.values = nil
	}
}

// AppendLine appends the line for one record to dst. body starts with the
// record's msgpack map; rest is what follows the map; event is the event
// name (raw): the body's event_key string value, else tag. On error dst is
// returned unchanged and the record must be skipped (a DropError other than
// ErrTruncated) or the walk stopped (ErrTruncated).
func (e *Encoder) AppendLine(dst []byte, t Time, body, tag []byte) (out, rest, event []byte, err error) {
	return e.AppendLineMax(dst, t, body, tag, MaxLineBytes)
}

// AppendLineMax is AppendLine with the line bounded to max bytes (at most
// MaxLineBytes; ErrTooLarge beyond). The encoder renders every part of a
// line where it lies in dst, so the line is all the memory it takes, bar
// the values' side buffer (about bigValue) and a bigSlack of room.
//
// Short values are copied eight bytes at a time (fastPairs): the encoder
// may read up to seven bytes past a value within body's capacity, and
// write up to seven bytes past the line's end within dst's capacity, spare
// room it leaves for the caller to overwrite as append's.
func (e *Encoder) AppendLineMax(dst []byte, t Time, body, tag []byte, max int) (out, rest, event []byte, err error) {
	start := len(dst)
	limit := start + min(max, MaxLineBytes)
	// A fixmap read here, and the time parameter's call made only when
	// the line has one: calls whose arguments are shuffled through the
	// stack, once a record (BenchmarkFlush form=parsed: 43 instructions a
	// record fewer).
	var n uint32
	var b []byte
	if len(body) > 0 && body[0]&0xf0 == 0x80 {
		n, b = uint32(body[0]&0x0f), body[1:]
	} else if len(body) >= 5 && body[0] == 0xdf {
		// A map32, as Fluent Bit 5's log event encoder writes every
		// body: through msgp.ReadMapHeaderBytes it cost 64 instructions
		// a record more.
		n, b = binary.BigEndian.Uint32(body[1:]), body[5:]
	} else {
		var ok bool
		if n, b, ok = readMapHeader(body); !ok {
			return dst, body, nil, ErrTruncated
		}
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
		listed := false
		if e.byEvent != nil {
			e.params, listed = e.byEvent[string(name)]
			if !listed {
				e.params = e.defParams
			}
			e.spans = e.spansBuf[:len(e.params)]
		}
		dst, err = e.appendHead(dst, start, name, t, limit)
		if err == nil && pv == nil && listed {
			// No parameters on the wire: the listed columns, empty.
			clear(e.spans)
			dst, err = e.appendSpans(dst, start, limit)
		}
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
		dst, b, name, err = e.appendPairs(dst, start, b, n, true, tag, false, limit)
	default:
		// The event key comes first in most records (OpenSIPS sends it
		// first): then the line is written straight into dst, with no
		// side buffer and no copy of the values (BenchmarkFlush: 170
		// instructions a record fewer). Any error takes the general way
		// below, from the start, so that a record that fails fails as it
		// always did.
		if ev, r, ok := e.leadingEvent(b); ok {
			out, err := e.appendNameFast(dst, ev, limit)
			if err == nil && e.timeFmt != TimeNone {
				out, err = e.appendTimeParam(out, start, t, limit)
			}
			if err == nil {
				// The pairs through fastPairs straight from here, and
				// appendPairs' walk (which would begin with the same call)
				// only from the first pair fastPairs leaves: most records
				// leave none (BenchmarkFlush form=parsed: 75 instructions a
				// record fewer).
				rest, left := r, n-1
				if e.fast {
					var p, done int
					out, p, done = e.fastPairs(out, r, 0, int(left), limit)
					rest, left = r[p:], left-uint32(done)
				}
				if left > 0 {
					out, rest, _, err = e.appendPairs(out, start, rest, left, true, ev, true, limit)
				}
				// The newline's room too: a line that does not fit fails
				// the general way, as it always did.
				if err == nil && len(out) < limit {
					dst, b, name = out, rest, ev
					break
				}
			}
			dst = dst[:start]
		}
		// The event key may come anywhere in the map: the values wait in
		// a side buffer until the name is known. A record whose values
		// pass bigValue is not copied twice: its name is found first, then
		// the values go straight into dst.
		vals, _ := e.appendTimeParam(e.values[:0], -1, t, bigValue)
		var r []byte
		vals, r, name, err = e.appendPairs(vals, -1, b, n, true, tag, false, bigValue)
		e.values = vals
		if err == nil {
			if dst, err = e.appendName(dst, name, limit-len(vals)); err == nil {
				dst = append(dst, vals...)
			}
			b = r
			break
		}
		if err != ErrTooLarge {
			return dst, body, nil, err
		}
		name = e.eventName(b, n, tag)
		if dst, err = e.appendHead(dst, start, name, t, limit); err == nil {
			dst, b, _, err = e.appendPairs(dst, start, b, n, true, tag, false, limit)
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
func (e *Encoder) appendHead(dst []byte, start int, name []byte, t Time, limit int) ([]byte, error) {
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
			return dst, ErrTooLarge
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
func (e *Encoder) appendPairs(dst []byte, start int, b []byte, n uint32, skipEvent bool, name []byte, found bool, limit int) (out, rest, event []byte, err error) {
	first := true
	// The delimiter goes before every parameter but, in a line without
	// event name, the first: decided once here rather than in sep for
	// each pair.
	alwaysSep := !e.suppress || start < 0
	// The walk keeps an offset into b: fastPairs takes and returns one.
	p := 0
	fast := alwaysSep && e.fast
	for i := uint32(0); i < n; i++ {
		if fast {
			// The run of common pairs from here, in one call (fastPairs);
			// the pair it stops at, if any, is taken below.
			var done int
			if dst, p, done = e.fastPairs(dst, b, p, int(n-i), limit); done > 0 {
				if i += uint32(done); i == n {
					break
				}
			}
		}
		var k []byte
		isString := true
		if p >= len(b) {
			return dst, b[p:], name, ErrTruncated
		}
		if c := b[p]; c&0xe0 == 0xa0 { // a fixstr key, the commonest, read here
			kn := p + 1 + int(c&0x1f)
			if kn > len(b) {
				return dst, b[p:], name, ErrTruncated
			}
			k, p = b[p+1:kn], kn
		} else {
			var after []byte
			if k, after, isString = readStr(b[p:]); !isString {
				// A non-string key is no event key: skip the key, keep its value.
				if after, err = msgp.Skip(b[p:]); err != nil {
					return dst, b[p:], name, ErrTruncated
				}
			}
			p = len(b) - len(after)
		}
		if skipEvent && isString && len(k) == len(e.eventKey) && string(k) == string(e.eventKey) {
			after := b[p:]
			if v, r, ok := readStr(after); ok && isStr(after[0]) {
				if !found {
					name, found = v, true
				}
				p = len(b) - len(r)
				continue
			}
			r, err := msgp.Skip(after)
			if err != nil {
				return dst, r, name, ErrTruncated
			}
			p = len(b) - len(r)
			continue
		}
		if alwaysSep {
			dst = e.appendDelim(dst)
		} else {
			dst = e.sep(dst, start, first)
		}
		first = false
		if p < len(b) && (b[p]&0xe0 == 0xa0 || b[p] == 0xd9) {
			// A string fastPairs left (a long one, or one to escape).
			v, r, ok := readStr(b[p:])
			if !ok {
				return dst, b[p:], name, ErrTruncated
			}
			if dst, err = e.appendEscaped(dst, v, limit); err != nil {
				return dst, r, name, err
			}
			p = len(b) - len(r)
			continue
		}
		var r []byte
		if dst, r, err = e.appendValue(dst, b[p:], limit); err != nil {
			return dst, r, name, err
		}
		p = len(b) - len(r)
	}
	return dst, b[p:], name, nil
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
			return name, nil, b, ErrTruncated
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
			return dst, ErrTruncated
		}
		if len(e.params) > 0 {
			if _, _, err = e.findParams(b, n, nil, false); err != nil {
				return dst, err
			}
			return e.appendSpans(dst, start, limit)
		}
		dst, _, _, err = e.appendPairs(dst, start, b, n, false, nil, false, limit)
		return dst, err
	case msgp.ArrayType:
		n, b, ok := readArrayHeader(v)
		if !ok {
			return dst, ErrTruncated
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

// leadingEvent returns the event name when the first pair at the head of
// b is the event key holding a string, and what follows that pair.
func (e *Encoder) leadingEvent(b []byte) (name, rest []byte, ok bool) {
	// A fixstr key and value, read here: readStr is a call.
	if len(b) > 0 && b[0]&0xe0 == 0xa0 {
		if kn := 1 + int(b[0]&0x1f); kn < len(b) && b[kn]&0xe0 == 0xa0 {
			// The key compared as one masked word, as fastPairs does,
			// where eight bytes are readable (the rest of the chunk):
			// string equality was a call to memequal (30 instructions a
			// record fewer).
			var isKey bool
			if e.fast && cap(b) >= 9 {
				isKey = kn-1 == e.evLen && load64(unsafe.Pointer(&b[1]))&e.evMask == e.evWord
			} else {
				isKey = string(b[1:kn]) == string(e.eventKey)
			}
			if vn := kn + 1 + int(b[kn]&0x1f); isKey && vn <= len(b) {
				return b[kn+1 : vn], b[vn:], true
			}
		}
	}
	k, after, isString := readStr(b)
	if !isString || !bytes.Equal(k, e.eventKey) || len(after) == 0 || !isStr(after[0]) {
		return nil, b, false
	}
	return readStr(after)
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
			return name, b, ErrTruncated
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
func (e *Encoder) appendTimeParam(dst []byte, start int, t Time, limit int) ([]byte, error) {
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
		return dst[:start], rest, nil, ErrTooLarge
	}
	return append(dst, '\n'), rest, name, nil
}

// appendValue renders the msgpack value at the head of b, escaped, unless
// the line would pass limit bytes of dst.
func (e *Encoder) appendValue(dst, b []byte, limit int) ([]byte, []byte, error) {
	if len(b) == 0 {
		return dst, b, ErrTruncated
	}
	c := b[0]
	switch {
	case c&0xe0 == 0xa0: // fixstr
		n := int(c & 0x1f)
		if len(b) < 1+n {
			return dst, b, ErrTruncated
		}
		out, err := e.appendEscaped(dst, b[1:1+n], limit)
		return out, b[1+n:], err
	case c == 0xd9 && len(b) > 1: // str8
		n := int(b[1])
		if len(b) < 2+n {
			return dst, b, ErrTruncated
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
			return dst, b, ErrTruncated
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
	if b[0] == 0xc0 && e.nilEmpty {
		return dst, b[1:], nil // a parameter OpenSIPS left unset: an empty field
	}
	var nb [64]byte
	s, rest, err := appendScalar(nb[:0], b)
	if err != nil {
		return dst, b, err
	}
	out, err := e.appendEscaped(dst, s, limit)
	return out, rest, err
}

func (e *Encoder) appendTime(dst []byte, t Time) []byte {
	// An Time's nanoseconds field is 32 bits: it may hold whole seconds.
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
