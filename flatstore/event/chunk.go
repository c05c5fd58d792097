package event

import (
	"encoding/binary"
	"math"

	"github.com/tinylib/msgp/msgp"
)

// Time is a record's time: seconds and nanoseconds since the epoch.
type Time struct {
	Sec  int64
	Nsec int64
}

// Status says what a Decoder found at the head of the buffer.
type Status uint8

const (
	StatusRecord Status = iota // a record: time and body are set
	StatusGroup                // a group start/end marker: no event
	StatusBad                  // a whole msgpack object that is not a record; reason is set
	StatusFatal                // the buffer cannot be walked further (truncated or not msgpack)
	StatusEnd                  // no more bytes
)

// Decoder walks a flush buffer (a Fluent Bit chunk: msgpack records one
// after the other) in place. It never copies and never allocates: it hands
// out sub-slices of the buffer.
type Decoder struct {
	buf []byte
	off int
}

// NewDecoder returns a Decoder at the start of buf.
func NewDecoder(buf []byte) Decoder { return Decoder{buf: buf} }

// Next reads the head of the next record. On StatusRecord, body is the rest of the
// buffer starting at the record's body (a map): the caller walks the body
// and calls Advance with the bytes that remain after it. On StatusGroup and
// StatusBad the Decoder has already moved past the object.
func (d *Decoder) Next() (st Status, t Time, body []byte, reason string) {
	b := d.buf[d.off:]
	if len(b) == 0 {
		return StatusEnd, t, nil, ""
	}
	// The commonest record read in one test: [[event time (fixext8, type
	// 0), {}], map], the empty metadata a fixmap or, as Fluent Bit 5's log
	// event encoder writes it, a map32 of no entries. The general walk
	// below reads it in four calls, and the map32 through msgp.Skip
	// (BenchmarkFlush form=parsed: 2 459 -> 2 292 instructions a record;
	// 92 fewer for a fixmap).
	if len(b) >= 14 && binary.LittleEndian.Uint32(b) == 0x00d79292 {
		if sec := binary.BigEndian.Uint32(b[4:]); sec < 0xFFFFFFFE { // not a group marker
			k := 0
			switch {
			case b[12] == 0x80:
				k = 13
			case b[12] == 0xdf && len(b) >= 18 && binary.LittleEndian.Uint32(b[13:]) == 0:
				k = 17
			}
			if k > 0 && isMap(b[k]) {
				return StatusRecord, Time{Sec: int64(sec), Nsec: int64(binary.BigEndian.Uint32(b[8:]))}, b[k:], ""
			}
		}
	}
	start := b
	n, b, ok := readArrayHeader(b)
	if !ok || n != 2 {
		return d.skipBad(start, DropNotRecord)
	}
	// [[time, metadata], body] or [time, body]
	if len(b) > 0 && b[0] == 0x92 {
		b = b[1:]
		var ok bool
		var grp bool
		t, grp, b, ok = readTime(b)
		if !ok {
			return d.skipBad(start, DropBadTime)
		}
		if len(b) > 0 && b[0] == 0x80 {
			b = b[1:] // empty metadata, the commonest: msgp.Skip costs about 60 instructions
		} else {
			rest, err := msgp.Skip(b) // metadata
			if err != nil {
				return d.fatal()
			}
			b = rest
		}
		if grp {
			return d.skipGroup(start)
		}
	} else {
		var ok, grp bool
		t, grp, b, ok = readTime(b)
		if !ok {
			return d.skipBad(start, DropBadTime)
		}
		if grp {
			return d.skipGroup(start)
		}
	}
	if len(b) == 0 {
		return d.fatal()
	}
	if !isMap(b[0]) {
		return d.skipBad(start, DropNotMap)
	}
	return StatusRecord, t, b, ""
}

// advance moves past a record whose body was walked; rest is what follows it.
func (d *Decoder) Advance(rest []byte) { d.off = len(d.buf) - len(rest) }

func (d *Decoder) skipBad(start []byte, reason string) (Status, Time, []byte, string) {
	rest, err := msgp.Skip(start)
	if err != nil {
		return d.fatal()
	}
	d.Advance(rest)
	return StatusBad, Time{}, nil, reason
}

func (d *Decoder) skipGroup(start []byte) (Status, Time, []byte, string) {
	rest, err := msgp.Skip(start)
	if err != nil {
		return d.fatal()
	}
	d.Advance(rest)
	return StatusGroup, Time{}, nil, ""
}

func (d *Decoder) fatal() (Status, Time, []byte, string) {
	d.off = len(d.buf)
	return StatusFatal, Time{}, nil, DropTruncated
}

func isMap(c byte) bool { return c&0xf0 == 0x80 || c == 0xde || c == 0xdf }

// readArrayHeader reads an array header, inlining the fixarray form.
func readArrayHeader(b []byte) (uint32, []byte, bool) {
	if len(b) > 0 && b[0]&0xf0 == 0x90 {
		return uint32(b[0] & 0x0f), b[1:], true
	}
	n, rest, err := msgp.ReadArrayHeaderBytes(b)
	return n, rest, err == nil
}

// readMapHeader reads a map header, inlining the fixmap form.
func readMapHeader(b []byte) (uint32, []byte, bool) {
	if len(b) > 0 && b[0]&0xf0 == 0x80 {
		return uint32(b[0] & 0x0f), b[1:], true
	}
	n, rest, err := msgp.ReadMapHeaderBytes(b)
	return n, rest, err == nil
}

// readStr reads a string (or binary) without copying, inlining fixstr.
func readStr(b []byte) (s, rest []byte, ok bool) {
	if len(b) > 0 && b[0]&0xe0 == 0xa0 {
		n := int(b[0] & 0x1f)
		if len(b) < 1+n {
			return nil, b, false
		}
		return b[1 : 1+n], b[1+n:], true
	}
	if len(b) > 1 && b[0] == 0xd9 { // str8
		n := int(b[1])
		if len(b) < 2+n {
			return nil, b, false
		}
		return b[2 : 2+n], b[2+n:], true
	}
	switch msgp.NextType(b) {
	case msgp.StrType:
		s, rest, err := msgp.ReadStringZC(b)
		return s, rest, err == nil
	case msgp.BinType:
		s, rest, err := msgp.ReadBytesZC(b)
		return s, rest, err == nil
	}
	return nil, b, false
}

func isStr(c byte) bool {
	return c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb
}

// readTime reads a record time: ext 0 (Time), an integer or a float.
// grp is true for Fluent Bit's group start/end markers.
func readTime(b []byte) (t Time, grp bool, rest []byte, ok bool) {
	if len(b) == 0 {
		return t, false, b, false
	}
	switch c := b[0]; {
	case c == 0xd7 && len(b) >= 10 && b[1] == 0: // fixext8, type 0
		return eventTime(b[2:10]), isGroupMarker(b[2:6]), b[10:], true
	case c == 0xc7 && len(b) >= 11 && b[1] == 8 && b[2] == 0: // ext8, len 8, type 0
		return eventTime(b[3:11]), isGroupMarker(b[3:7]), b[11:], true
	case c <= 0x7f:
		return Time{Sec: int64(c)}, false, b[1:], true
	}
	switch msgp.NextType(b) {
	case msgp.IntType:
		i, rest, err := msgp.ReadInt64Bytes(b)
		return Time{Sec: i}, false, rest, err == nil
	case msgp.UintType:
		u, rest, err := msgp.ReadUint64Bytes(b)
		if u > math.MaxInt64 {
			return t, false, b, false
		}
		return Time{Sec: int64(u)}, false, rest, err == nil
	case msgp.Float64Type, msgp.Float32Type:
		f, rest, err := msgp.ReadFloat64Bytes(b)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
			return t, false, b, false
		}
		sec, frac := math.Modf(f)
		ns := int64(math.Round(frac * 1e9))
		if ns < 0 {
			sec, ns = sec-1, ns+1e9
		}
		return Time{Sec: int64(sec), Nsec: ns}, false, rest, true
	}
	return t, false, b, false
}

func eventTime(b []byte) Time {
	return Time{
		Sec:  int64(binary.BigEndian.Uint32(b[0:4])),
		Nsec: int64(binary.BigEndian.Uint32(b[4:8])),
	}
}

func isGroupMarker(sec []byte) bool {
	s := binary.BigEndian.Uint32(sec)
	return s == 0xFFFFFFFF || s == 0xFFFFFFFE
}

// mapGet returns the value for key in the msgpack map at the head of b.
func mapGet(b []byte, key string) ([]byte, bool) {
	n, b, ok := readMapHeader(b)
	if !ok {
		return nil, false
	}
	for i := uint32(0); i < n; i++ {
		k, isString, v, rest, ok := readPair(b)
		if !ok {
			return nil, false
		}
		if isString && string(k) == key {
			return v, true
		}
		b = rest
	}
	return nil, false
}

// readPair reads the key/value pair of a map at the head of b: the key's
// bytes when it is a string (isString), the value's msgpack bytes, and what
// follows the pair. ok is false when b does not hold a whole pair.
func readPair(b []byte) (k []byte, isString bool, v, rest []byte, ok bool) {
	k, after, isString := readStr(b)
	if !isString {
		var err error
		if after, err = msgp.Skip(b); err != nil {
			return nil, false, nil, b, false
		}
	}
	end, err := msgp.Skip(after)
	if err != nil {
		return nil, false, nil, b, false
	}
	return k, isString, after[:len(after)-len(end)], end, true
}

// SkipValue returns what follows the msgpack value at the head of b.
func SkipValue(b []byte) ([]byte, error) { return msgp.Skip(b) }
