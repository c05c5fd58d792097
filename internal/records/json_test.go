package records

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONToMsgpack: the bytes Fluent Bit's JSON packer (msgpack-c) makes:
// maps in key order with duplicates kept, non-negative integers unsigned,
// negative ones signed, floats and out-of-range integers float64.
func TestJSONToMsgpack(t *testing.T) {
	cases := []struct{ json, hex string }{
		{`{"b":1,"a":[true,false,null],"s":"x"}`, "83a16201a16193c3c2c0a173a178"},
		{`{"a":1,"a":2}`, "82a16101a16102"},
		{`{}`, "80"},
		{`[]`, "90"},
		{`0`, "00"},
		{`-0`, "00"},
		{`127`, "7f"},
		{`128`, "cc80"},
		{`255`, "ccff"},
		{`256`, "cd0100"},
		{`65535`, "cdffff"},
		{`65536`, "ce00010000"},
		{`2147483647`, "ce7fffffff"},
		{`4294967296`, "cf0000000100000000"},
		{`9223372036854775807`, "cf7fffffffffffffff"},
		{`9223372036854775808`, "cf8000000000000000"},
		{`18446744073709551615`, "cfffffffffffffffff"},
		{`18446744073709551616`, "cb43f0000000000000"},
		{`-1`, "ff"},
		{`-32`, "e0"},
		{`-33`, "d0df"},
		{`-128`, "d080"},
		{`-129`, "d1ff7f"},
		{`-32768`, "d18000"},
		{`-32769`, "d2ffff7fff"},
		{`-2147483648`, "d280000000"},
		{`-2147483649`, "d3ffffffff7fffffff"},
		{`-9223372036854775808`, "d38000000000000000"},
		{`-9223372036854775809`, "cbc3e0000000000000"},
		{`1.5`, "cb3ff8000000000000"},
		{`1e2`, "cb4059000000000000"},
		{`1E+2`, "cb4059000000000000"},
		{`1e-2`, "cb3f847ae147ae147b"},
		{`1.0`, "cb3ff0000000000000"},
		{`1e400`, "cb7ff0000000000000"},
		{`-1e400`, "cbfff0000000000000"},
		{`"a\nb\u00e9\ud83d\ude00\"\\\/"`, "ac" + hex.EncodeToString([]byte("a\nbé😀\"\\/"))},
		{`"` + strings.Repeat("s", 32) + `"`, "d920" + strings.Repeat("73", 32)},
		{`"` + strings.Repeat("s", 256) + `"`, "da0100" + strings.Repeat("73", 256)},
		{` {"k" : [ 1 , "v" ] } `, "81a16b9201a176"},
	}
	for _, c := range cases {
		got, err := JSONToMsgpack([]byte(c.json))
		if err != nil {
			t.Errorf("%s: %v", c.json, err)
			continue
		}
		if hex.EncodeToString(got) != c.hex {
			t.Errorf("%s: got %x, want %s", c.json, got, c.hex)
		}
	}
	for _, bad := range []string{``, `{`, `{"a":}`, `[1,]`, `{"a":1}{"b":2}`, `1 2`, `nul`} {
		if b, err := JSONToMsgpack([]byte(bad)); err == nil {
			t.Errorf("%q: got %x, want an error", bad, b)
		}
	}
}

func TestJSONRecordBody(t *testing.T) {
	if got := JSONRecordBody([]byte(`{"a":1}`)); !bytes.Equal(got, []byte{0x81, 0xa1, 'a', 1}) {
		t.Errorf("got %x", []byte(got))
	}
	for _, bad := range []string{`[1]`, `"s"`, `{`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("JSONRecordBody(%s) did not panic", bad)
				}
			}()
			JSONRecordBody([]byte(bad))
		}()
	}
}

// TestAppendJSONStrings: what AppendJSON quotes reads back as the string, with
// invalid UTF-8 as U+FFFD.
func TestAppendJSONStrings(t *testing.T) {
	for _, s := range []string{"", "plain", `say "hi"`, `back\slash`, "a\nb\rc\td", "\x00\x1f", "é€日本", "bad \xff byte"} {
		b := AppendJSON(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q → %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("%q → %s → %q", s, b, got)
		}
	}
}
