package records

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestAppendRecordDefaultForm(t *testing.T) {
	ts := time.Unix(1700000000, 123456789)
	b := AppendRecord(nil, Record{Time: ts, Body: KV{"event", "E_TEST", "z", "1", "a", int64(-5)}})
	// Fluent Bit ≥ 2.1: 92 92 d7 00 <sec> <nsec> <meta> <body>
	want := []byte{0x92, 0x92, 0xd7, 0x00}
	want = binary.BigEndian.AppendUint32(want, 1700000000)
	want = binary.BigEndian.AppendUint32(want, 123456789)
	want = append(want, 0x80) // empty meta
	if !bytes.HasPrefix(b, want) {
		t.Fatalf("prefix % x, want % x", b[:len(want)], want)
	}

	n, rest, err := msgp.ReadArrayHeaderBytes(b)
	mustNoErr(t, err)
	if n != 2 {
		t.Fatalf("outer array %d", n)
	}
	n, rest, err = msgp.ReadArrayHeaderBytes(rest)
	mustNoErr(t, err)
	if n != 2 {
		t.Fatalf("header array %d", n)
	}
	sec, nsec, rest, err := ReadEventTime(rest)
	mustNoErr(t, err)
	if sec != 1700000000 || nsec != 123456789 {
		t.Fatalf("time %d.%d", sec, nsec)
	}
	m, rest, err := msgp.ReadMapHeaderBytes(rest)
	mustNoErr(t, err)
	if m != 0 {
		t.Fatalf("meta has %d entries", m)
	}
	m, rest, err = msgp.ReadMapHeaderBytes(rest)
	mustNoErr(t, err)
	if m != 3 {
		t.Fatalf("body has %d entries", m)
	}
	var keys []string
	for i := 0; i < 3; i++ {
		var k string
		k, rest, err = msgp.ReadStringBytes(rest)
		mustNoErr(t, err)
		keys = append(keys, k)
		rest, err = msgp.Skip(rest)
		mustNoErr(t, err)
	}
	if got := keys[0] + keys[1] + keys[2]; got != "eventza" {
		t.Fatalf("key order %v, want record order event z a", keys)
	}
	if len(rest) != 0 {
		t.Fatalf("%d trailing bytes", len(rest))
	}
}

func TestAppendRecordTimeKindsAndLegacy(t *testing.T) {
	ts := time.Unix(42, 500000000)
	b := AppendRecord(nil, Record{Time: ts, TimeKind: TimeInt, Legacy: true, Body: KV{}})
	if !bytes.Equal(b, []byte{0x92, 42, 0x80}) {
		t.Fatalf("legacy int record % x", b)
	}
	b = AppendRecord(nil, Record{Time: ts, TimeKind: TimeFloat, Legacy: true, Body: KV{}})
	n, rest, err := msgp.ReadArrayHeaderBytes(b)
	mustNoErr(t, err)
	f, rest, err := msgp.ReadFloat64Bytes(rest)
	mustNoErr(t, err)
	if n != 2 || f != 42.5 {
		t.Fatalf("float time %v (n=%d)", f, n)
	}
	if !bytes.Equal(rest, []byte{0x80}) {
		t.Fatalf("body % x", rest)
	}
	// zero time is the epoch
	b = AppendRecord(nil, Record{Body: KV{}})
	if !bytes.Equal(b, []byte{0x92, 0x92, 0xd7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80}) {
		t.Fatalf("zero time record % x", b)
	}
	// metadata is written
	b = AppendRecord(nil, Record{Meta: KV{"m", 1}, Body: "not a map"})
	_, rest, _ = msgp.ReadArrayHeaderBytes(b)
	_, rest, _ = msgp.ReadArrayHeaderBytes(rest)
	rest, _ = msgp.Skip(rest)
	meta, rest, err := msgp.ReadMapStrIntfBytes(rest, nil)
	mustNoErr(t, err)
	if meta["m"] != int64(1) {
		t.Fatalf("meta %v", meta)
	}
	s, rest, err := msgp.ReadStringBytes(rest)
	mustNoErr(t, err)
	if s != "not a map" || len(rest) != 0 {
		t.Fatalf("body %q rest % x", s, rest)
	}
}

func TestAppendValueTypes(t *testing.T) {
	ts := time.Unix(1, 2)
	vals := []any{
		"s", []byte{1, 2}, int64(-3000000000), uint64(math.MaxUint64), 1.5, float32(2.5),
		true, false, nil, KV{"k", "v"}, []any{int64(1), "a"}, ts, 7, uint8(8), []string{"x"},
		map[string]any{"b": int64(2), "a": int64(1)},
	}
	var b []byte
	for _, v := range vals {
		b = AppendValue(b, v)
	}
	rest := b
	var err error
	var s string
	s, rest, err = msgp.ReadStringBytes(rest)
	mustNoErr(t, err)
	if s != "s" {
		t.Fatal(s)
	}
	if msgp.NextType(rest) != msgp.BinType {
		t.Fatalf("[]byte not bin: %v", msgp.NextType(rest))
	}
	var bin []byte
	bin, rest, err = msgp.ReadBytesBytes(rest, nil)
	mustNoErr(t, err)
	if !bytes.Equal(bin, []byte{1, 2}) {
		t.Fatal(bin)
	}
	var i int64
	i, rest, err = msgp.ReadInt64Bytes(rest)
	mustNoErr(t, err)
	if i != -3000000000 {
		t.Fatal(i)
	}
	var u uint64
	u, rest, err = msgp.ReadUint64Bytes(rest)
	mustNoErr(t, err)
	if u != math.MaxUint64 {
		t.Fatal(u)
	}
	var f float64
	f, rest, err = msgp.ReadFloat64Bytes(rest)
	mustNoErr(t, err)
	if f != 1.5 {
		t.Fatal(f)
	}
	if msgp.NextType(rest) != msgp.Float32Type {
		t.Fatal("float32 not float32")
	}
	var f32 float32
	f32, rest, err = msgp.ReadFloat32Bytes(rest)
	mustNoErr(t, err)
	if f32 != 2.5 {
		t.Fatal(f32)
	}
	var bo bool
	bo, rest, err = msgp.ReadBoolBytes(rest)
	mustNoErr(t, err)
	if !bo {
		t.Fatal("true")
	}
	bo, rest, err = msgp.ReadBoolBytes(rest)
	mustNoErr(t, err)
	if bo {
		t.Fatal("false")
	}
	rest, err = msgp.ReadNilBytes(rest)
	mustNoErr(t, err)
	var m map[string]any
	m, rest, err = msgp.ReadMapStrIntfBytes(rest, nil)
	mustNoErr(t, err)
	if len(m) != 1 || m["k"] != "v" {
		t.Fatal(m)
	}
	var arr any
	arr, rest, err = msgp.ReadIntfBytes(rest)
	mustNoErr(t, err)
	if a, ok := arr.([]any); !ok || len(a) != 2 || a[0] != int64(1) || a[1] != "a" {
		t.Fatalf("%#v", arr)
	}
	var sec, nsec uint32
	sec, nsec, rest, err = ReadEventTime(rest)
	mustNoErr(t, err)
	if sec != 1 || nsec != 2 {
		t.Fatal(sec, nsec)
	}
	i, rest, err = msgp.ReadInt64Bytes(rest)
	mustNoErr(t, err)
	if i != 7 {
		t.Fatal(i)
	}
	u, rest, err = msgp.ReadUint64Bytes(rest)
	mustNoErr(t, err)
	if u != 8 {
		t.Fatal(u)
	}
	arr, rest, err = msgp.ReadIntfBytes(rest)
	mustNoErr(t, err)
	if a, ok := arr.([]any); !ok || len(a) != 1 || a[0] != "x" {
		t.Fatalf("%#v", arr)
	}
	// map[string]any: keys sorted
	var n uint32
	n, rest, err = msgp.ReadMapHeaderBytes(rest)
	mustNoErr(t, err)
	s, rest, err = msgp.ReadStringBytes(rest)
	mustNoErr(t, err)
	if n != 2 || s != "a" {
		t.Fatalf("map n=%d first key %q", n, s)
	}
	rest, _ = msgp.Skip(rest)
	rest, _ = msgp.Skip(rest)
	rest, _ = msgp.Skip(rest)
	if len(rest) != 0 {
		t.Fatalf("%d trailing bytes", len(rest))
	}
}

func TestRawIsVerbatim(t *testing.T) {
	b := AppendValue(nil, KV{"k", Raw{0xc1, 0xff}})
	if !bytes.Equal(b, []byte{0x81, 0xa1, 'k', 0xc1, 0xff}) {
		t.Fatalf("% x", b)
	}
}

func TestOddKVPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an odd KV")
		}
	}()
	//lint:ignore SA5012 the odd length is what this test is about
	AppendKV(nil, KV{"lonely"})
}

func TestUnknownTypePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a struct value")
		}
	}()
	AppendValue(nil, struct{}{})
}

func TestGroupMarkers(t *testing.T) {
	for _, c := range []struct {
		b   []byte
		sec uint32
	}{{GroupStart(KV{"g", 1}, KV{"a", "b"}), 0xFFFFFFFF}, {GroupEnd(), 0xFFFFFFFE}} {
		_, rest, err := msgp.ReadArrayHeaderBytes(c.b)
		mustNoErr(t, err)
		_, rest, err = msgp.ReadArrayHeaderBytes(rest)
		mustNoErr(t, err)
		sec, nsec, rest, err := ReadEventTime(rest)
		mustNoErr(t, err)
		if sec != c.sec || nsec != 0 {
			t.Fatalf("marker seconds %#x, want %#x", sec, c.sec)
		}
		rest, err = msgp.Skip(rest)
		mustNoErr(t, err)
		rest, err = msgp.Skip(rest)
		mustNoErr(t, err)
		if len(rest) != 0 {
			t.Fatal("trailing bytes")
		}
	}
}

func TestFramesAndCount(t *testing.T) {
	a := Records(Record{Body: KV{"a", 1}}, Record{Body: KV{"b", 2}})
	b := []byte{0xc1}
	f := Frames(a, b, nil)
	want := binary.BigEndian.AppendUint32(nil, uint32(len(a)))
	want = append(want, a...)
	want = append(want, 0, 0, 0, 1, 0xc1, 0, 0, 0, 0)
	if !bytes.Equal(f, want) {
		t.Fatalf("frames % x\nwant   % x", f, want)
	}
	if n, err := CountRecords(a); n != 2 || err != nil {
		t.Fatalf("count %d %v", n, err)
	}
	if n, err := CountRecords(append(a, 0x92)); n != 2 || err == nil {
		t.Fatalf("count with a truncated tail %d %v", n, err)
	}
}
