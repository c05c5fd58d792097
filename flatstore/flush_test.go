package flatstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/records"
)

var recTime = time.Unix(1700000000, 500000000)

// TestFlushRecordForms: both record forms and the three time encodings give
// the same line, with the record's time.
func TestFlushRecordForms(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		for _, kind := range []records.TimeKind{records.EventTime, records.TimeInt, records.TimeFloat} {
			in, path := newInstance(t, "time_format", "unix_ms")
			data := records.Records(records.Record{
				Time: recTime, TimeKind: kind, Legacy: legacy,
				Meta: records.KV{"m", 1},
				Body: records.KV{"event", "E", "a", "x"},
			})
			if r := in.Flush(data, "tag"); r != flatstore.OK {
				t.Fatalf("legacy=%v kind=%v: Flush = %v", legacy, kind, r)
			}
			want := "E,1700000000500,x\n"
			if kind == records.TimeInt {
				want = "E,1700000000000,x\n"
			}
			if got := readFile(t, path); got != want {
				t.Errorf("legacy=%v kind=%v: file %q, want %q", legacy, kind, got, want)
			}
		}
	}
}

func TestFlushTimes(t *testing.T) {
	cases := []struct {
		name string
		time records.Raw
		want string
	}{
		{"fixint", records.Raw{0x05}, "5000000000"},
		{"negative", records.Raw{0xff}, "-1000000000"},
		{"uint32", records.Raw{0xce, 0x65, 0x53, 0xf1, 0x00}, "1700000000000000000"},
		{"float32", records.Raw{0xca, 0x3f, 0xc0, 0, 0}, "1500000000"},
		{"float64 negative", records.Raw{0xcb, 0xbf, 0xe0, 0, 0, 0, 0, 0, 0}, "-500000000"},
		// 1.9999999999 rounds to 2 s, not 1 s + 1e9 ns.
		{"float64 rounding up", records.Raw{0xcb, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xe5, 0x0c, 0xe4}, "2000000000"},
		{"ext8 form of EventTime", records.Raw{0xc7, 8, 0, 0, 0, 0, 1, 0, 0, 0, 2}, "1000000002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, path := newInstance(t, "time_format", "unix_ns")
			data := records.AppendValue(nil, []any{c.time, records.KV{"event", "E"}})
			if r := in.Flush(data, "tag"); r != flatstore.OK {
				t.Fatalf("Flush = %v", r)
			}
			if got, want := readFile(t, path), "E,"+c.want+"\n"; got != want {
				t.Errorf("file %q, want %q", got, want)
			}
		})
	}
}

func TestFlushTimeRFC3339(t *testing.T) {
	in, path := newInstance(t, "time_format", "rfc3339")
	// 1.9999999999 as a float time: RFC 3339 must say 00:00:02.
	data := records.AppendValue(nil, []any{records.Raw{0xcb, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xe5, 0x0c, 0xe4}, records.KV{"event", "E"}})
	if r := in.Flush(data, "tag"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got, want := readFile(t, path), "E,1970-01-01T00:00:02Z\n"; got != want {
		t.Errorf("file %q, want %q", got, want)
	}
}

// TestFlushGroupMarkers: group start/end markers carry no event and are not
// counted as dropped.
func TestFlushGroupMarkers(t *testing.T) {
	in, path := newInstance(t)
	var data []byte
	data = append(data, records.GroupStart(records.KV{"schema", 1}, records.KV{"resource", "x"})...)
	data = append(data, records.Records(
		records.Record{Time: recTime, Body: records.KV{"event", "E1", "a", 1}},
		records.Record{Time: recTime, Body: records.KV{"event", "E2", "a", 2}},
	)...)
	data = append(data, records.GroupEnd()...)
	if r := in.Flush(data, "tag"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got, want := readFile(t, path), "E1,1\nE2,2\n"; got != want {
		t.Errorf("file %q, want %q", got, want)
	}
	if n := in.Dropped(); n != 0 {
		t.Errorf("Dropped = %d, want 0", n)
	}
	// A chunk of markers alone: nothing to write, nothing dropped, OK.
	if r := in.Flush(append(records.GroupStart(nil, nil), records.GroupEnd()...), "tag"); r != flatstore.OK {
		t.Errorf("markers only: Flush = %v, want OK", r)
	}
	if n := in.Dropped(); n != 0 {
		t.Errorf("Dropped = %d, want 0", n)
	}
}

// TestFlushBadRecords: records that are not [time, map] are skipped and
// counted, the rest written; a chunk with no msgpack at all is an error.
func TestFlushBadRecords(t *testing.T) {
	good := func(ev string) []byte {
		return records.AppendRecord(nil, records.Record{Time: recTime, Body: records.KV{"event", ev}})
	}
	deep := records.Raw(strings.Repeat("\x91", event.MaxDepth+10) + "\x01")
	cases := []struct {
		name    string
		bad     []byte
		dropped uint64
	}{
		{"body not a map", records.Records(records.Record{Time: recTime, Body: "str"}), 1},
		{"body an array", records.Records(records.Record{Time: recTime, Body: []any{1}}), 1},
		{"legacy body not a map", records.Records(records.Record{Time: recTime, Legacy: true, Body: 1}), 1},
		{"not an array", records.AppendValue(nil, "hello"), 1},
		{"array of 3", records.AppendValue(nil, []any{1, records.KV{}, 3}), 1},
		{"time a string", records.AppendValue(nil, []any{"now", records.KV{"event", "X"}}), 1},
		{"time nil", records.AppendValue(nil, []any{nil, records.KV{"event", "X"}}), 1},
		{"time NaN", records.AppendValue(nil, []any{records.Raw{0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, records.KV{"event", "X"}}), 1},
		{"time uint64 max", records.AppendValue(nil, []any{uint64(1 << 63), records.KV{"event", "X"}}), 1},
		{"too deep", records.Records(records.Record{Time: recTime, Body: records.KV{"event", "X", "d", deep}}), 1},
		{"map key is a map", records.Records(records.Record{Time: recTime, Body: records.KV{"event", "X", "m", records.KV{records.KV{"k", 1}, 2}}}), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, path := newInstance(t)
			data := append(good("A"), c.bad...)
			data = append(data, good("B")...)
			if r := in.Flush(data, "tag"); r != flatstore.OK {
				t.Fatalf("Flush = %v", r)
			}
			got := readFile(t, path)
			if !strings.HasPrefix(got, "A\n") || !strings.HasSuffix(got, "B\n") {
				t.Errorf("file %q: want A first and B last", got)
			}
			if n := in.Dropped(); n != c.dropped {
				t.Errorf("Dropped = %d, want %d (file %q)", n, c.dropped, got)
			}
		})
	}
}

func TestFlushNothingDecodes(t *testing.T) {
	for _, data := range [][]byte{{0xc1}, {0x92}, {0x92, 0x92, 0xd7, 0x00}, []byte("\xdc\xff\xff")} {
		in, path := newInstance(t)
		if r := in.Flush(data, "tag"); r != flatstore.Error {
			t.Errorf("Flush(%x) = %v, want ERROR", data, r)
		}
		if got := readFile(t, path); got != "" {
			t.Errorf("Flush(%x) wrote %q", data, got)
		}
	}
}

// TestFlushTruncatedTail: a chunk cut inside its last record keeps the
// records before it.
func TestFlushTruncatedTail(t *testing.T) {
	in, path := newInstance(t)
	data := records.Records(
		records.Record{Time: recTime, Body: records.KV{"event", "A"}},
		records.Record{Time: recTime, Body: records.KV{"event", "B", "x", "long value"}},
	)
	if r := in.Flush(data[:len(data)-3], "tag"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got := readFile(t, path); got != "A\n" {
		t.Errorf("file %q, want %q", got, "A\n")
	}
	if in.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", in.Dropped())
	}
}
