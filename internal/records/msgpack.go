// Package records builds Fluent Bit's msgpack records and chunks (and
// reads JSON into them) for the tests, the demo and the benchmarks. It
// imports no testing: a command may use it.
package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// KV is an ordered map: keys and values alternate (KV{"event", "E_TEST",
// "caller", "alice"}). It encodes as a msgpack map holding the pairs in the
// order written. Keys are usually strings but may be any value AppendValue
// accepts, so tests can build maps with odd keys.
type KV []any

// Raw is a value written verbatim: its bytes are appended as they are, which
// lets a test place truncated or invalid msgpack anywhere in a record.
type Raw []byte

// TimeKind selects how a record's time is encoded.
type TimeKind int

// The time encodings Fluent Bit produces.
const (
	EventTime TimeKind = iota // ext type 0: seconds and nanoseconds, big endian (the default)
	TimeInt                   // an integer of seconds
	TimeFloat                 // a float64 of seconds
)

// Record is one Fluent Bit log record.
//
// The zero Time encodes as the epoch (seconds 0). Meta nil encodes as an empty
// map. Body is usually a KV but may be any value, so tests can build records
// whose body is not a map. Legacy selects the old form [time, body] instead of
// [[time, meta], body].
type Record struct {
	Time     time.Time
	TimeKind TimeKind
	Meta     KV
	Body     any
	Legacy   bool
}

// eventTime is Fluent Bit's EventTime, msgpack ext type 0 of 8 bytes.
type eventTime struct{ sec, nsec uint32 }

func (e *eventTime) ExtensionType() int8 { return 0 }
func (e *eventTime) Len() int            { return 8 }
func (e *eventTime) MarshalBinaryTo(b []byte) error {
	binary.BigEndian.PutUint32(b[0:4], e.sec)
	binary.BigEndian.PutUint32(b[4:8], e.nsec)
	return nil
}
func (e *eventTime) UnmarshalBinary(b []byte) error {
	if len(b) != 8 {
		return fmt.Errorf("event time: %d bytes, want 8", len(b))
	}
	e.sec = binary.BigEndian.Uint32(b[0:4])
	e.nsec = binary.BigEndian.Uint32(b[4:8])
	return nil
}

// AppendEventTime appends an EventTime ext (type 0, 8 bytes) with the given
// seconds and nanoseconds fields.
func AppendEventTime(dst []byte, sec, nsec uint32) []byte {
	out, err := msgp.AppendExtension(dst, &eventTime{sec: sec, nsec: nsec})
	if err != nil { // cannot happen: MarshalBinaryTo never fails
		panic(err)
	}
	return out
}

// ReadEventTime reads an EventTime ext written by AppendEventTime.
func ReadEventTime(b []byte) (sec, nsec uint32, rest []byte, err error) {
	var e eventTime
	rest, err = msgp.ReadExtensionBytes(b, &e)
	return e.sec, e.nsec, rest, err
}

func unixSec(t time.Time) (int64, int64) {
	if t.IsZero() {
		return 0, 0
	}
	return t.Unix(), int64(t.Nanosecond())
}

// AppendTimeValue appends t as a record time of the given kind.
func AppendTimeValue(dst []byte, t time.Time, kind TimeKind) []byte {
	sec, nsec := unixSec(t)
	switch kind {
	case TimeInt:
		return msgp.AppendInt64(dst, sec)
	case TimeFloat:
		return msgp.AppendFloat64(dst, float64(sec)+float64(nsec)/1e9)
	default:
		return AppendEventTime(dst, uint32(sec), uint32(nsec))
	}
}

// AppendValue appends v as msgpack. Accepted: nil, bool, string, []byte (bin),
// every int and uint type, float32, float64, time.Time (EventTime ext 0), KV,
// []any, []string, map[string]any (keys sorted), Raw. Anything else panics: a
// test that builds a value the harness cannot encode is a bug in the test.
func AppendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return msgp.AppendNil(dst)
	case bool:
		return msgp.AppendBool(dst, x)
	case string:
		return msgp.AppendString(dst, x)
	case []byte:
		return msgp.AppendBytes(dst, x)
	case Raw:
		return append(dst, x...)
	case int:
		return msgp.AppendInt64(dst, int64(x))
	case int8:
		return msgp.AppendInt64(dst, int64(x))
	case int16:
		return msgp.AppendInt64(dst, int64(x))
	case int32:
		return msgp.AppendInt64(dst, int64(x))
	case int64:
		return msgp.AppendInt64(dst, x)
	case uint:
		return msgp.AppendUint64(dst, uint64(x))
	case uint8:
		return msgp.AppendUint64(dst, uint64(x))
	case uint16:
		return msgp.AppendUint64(dst, uint64(x))
	case uint32:
		return msgp.AppendUint64(dst, uint64(x))
	case uint64:
		return msgp.AppendUint64(dst, x)
	case float32:
		return msgp.AppendFloat32(dst, x)
	case float64:
		return msgp.AppendFloat64(dst, x)
	case time.Time:
		sec, nsec := unixSec(x)
		return AppendEventTime(dst, uint32(sec), uint32(nsec))
	case KV:
		return AppendKV(dst, x)
	case []any:
		dst = msgp.AppendArrayHeader(dst, uint32(len(x)))
		for _, e := range x {
			dst = AppendValue(dst, e)
		}
		return dst
	case []string:
		dst = msgp.AppendArrayHeader(dst, uint32(len(x)))
		for _, e := range x {
			dst = msgp.AppendString(dst, e)
		}
		return dst
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = msgp.AppendMapHeader(dst, uint32(len(keys)))
		for _, k := range keys {
			dst = msgp.AppendString(dst, k)
			dst = AppendValue(dst, x[k])
		}
		return dst
	default:
		panic(fmt.Sprintf("records: cannot encode %T", v))
	}
}

// AppendKV appends kv as a msgpack map in its own order. It panics when kv
// has an odd length.
func AppendKV(dst []byte, kv KV) []byte {
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("records: KV with odd length %d", len(kv)))
	}
	dst = msgp.AppendMapHeader(dst, uint32(len(kv)/2))
	for _, e := range kv {
		dst = AppendValue(dst, e)
	}
	return dst
}

// AppendRecord appends r as Fluent Bit encodes a record: [[time, meta], body]
// (bytes 92 92 d7 00 ... for EventTime) or, with Legacy, [time, body].
func AppendRecord(dst []byte, r Record) []byte {
	dst = msgp.AppendArrayHeader(dst, 2)
	if r.Legacy {
		dst = AppendTimeValue(dst, r.Time, r.TimeKind)
	} else {
		dst = msgp.AppendArrayHeader(dst, 2)
		dst = AppendTimeValue(dst, r.Time, r.TimeKind)
		dst = AppendKV(dst, r.Meta)
	}
	return AppendValue(dst, r.Body)
}

// Records encodes records one after the other, as a flush buffer holds them.
func Records(rs ...Record) []byte {
	var b []byte
	for _, r := range rs {
		b = AppendRecord(b, r)
	}
	return b
}

// Group marker seconds (Fluent Bit's FLB_LOG_EVENT_GROUP_START/END).
const (
	GroupStartSeconds = 0xFFFFFFFF // seconds field of a group start marker (-1)
	GroupEndSeconds   = 0xFFFFFFFE // seconds field of a group end marker (-2)
)

// GroupStart returns a group start marker record: [[ext0(-1, 0), meta], body].
func GroupStart(meta, body KV) []byte {
	return appendMarker(nil, GroupStartSeconds, meta, body)
}

// GroupEnd returns a group end marker record: [[ext0(-2, 0), {}], {}].
func GroupEnd() []byte {
	return appendMarker(nil, GroupEndSeconds, nil, nil)
}

func appendMarker(dst []byte, sec uint32, meta, body KV) []byte {
	dst = msgp.AppendArrayHeader(dst, 2)
	dst = msgp.AppendArrayHeader(dst, 2)
	dst = AppendEventTime(dst, sec, 0)
	dst = AppendKV(dst, meta)
	return AppendKV(dst, body)
}

// Frames encodes chunks for the host's -in-chunks: each as a big-endian u32
// length followed by its bytes.
func Frames(chunks ...[]byte) []byte {
	var b []byte
	for _, c := range chunks {
		if uint64(len(c)) > math.MaxUint32 {
			panic("records: chunk larger than 4 GiB")
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
		b = append(b, c...)
	}
	return b
}

// CountRecords counts the complete msgpack objects at the start of b, the way
// the host counts records in a chunk. It returns the count and an error when
// trailing bytes do not parse.
func CountRecords(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		rest, err := msgp.Skip(b)
		if err != nil {
			return n, err
		}
		if len(rest) == len(b) {
			return n, errors.New("records: no progress")
		}
		b = rest
		n++
	}
	return n, nil
}

// SIPEvent is a typical SIP event of ten fields, the record the
// allocation tests and benchmarks of the encoder and the flush use.
func SIPEvent() KV {
	return KV{
		"event", "E_SIP_REPLY", "method", "INVITE", "from", "sip:alice@a.example;tag=1928301774",
		"to", "sip:bob@b.example", "call-id", "a84b4c76e66710@pc33.a.example", "cseq", 314159,
		"status", 200, "reason", "OK", "duration", 12.5, "answered", true,
	}
}
