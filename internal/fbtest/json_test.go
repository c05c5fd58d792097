package fbtest

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

// TestWireCasesAsRecorded: the wire bytes stand in event_stream.json as
// OpenSIPS sent them: compact, the envelope's keys in OpenSIPS's order,
// params absent, an object or an array. A reformatted file fails here.
func TestWireCasesAsRecorded(t *testing.T) {
	names := map[string]bool{}
	for _, c := range LoadWireCases(t) {
		if names[c.Name] {
			t.Errorf("%s: two cases of that name", c.Name)
		}
		names[c.Name] = true
		var compact bytes.Buffer
		if err := json.Compact(&compact, c.Wire); err != nil || !bytes.Equal(compact.Bytes(), c.Wire) {
			t.Errorf("%s: wire %s is not compact JSON (%v)", c.Name, c.Wire, err)
		}
		var keys []string
		dec := json.NewDecoder(bytes.NewReader(c.Wire))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Errorf("%s: wire %s is not an object", c.Name, c.Wire)
			continue
		}
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if k == "params" && v[0] != '{' && v[0] != '[' {
				t.Errorf("%s: params %s is neither an object nor an array", c.Name, v)
			}
		}
		if k := strings.Join(keys, ","); k != "jsonrpc,method,params" && k != "jsonrpc,method" {
			t.Errorf("%s: keys %s, want jsonrpc,method[,params]", c.Name, k)
		}
		if !strings.HasPrefix(string(c.Wire), `{"jsonrpc":"2.0","method":"E_`) {
			t.Errorf("%s: wire %s", c.Name, c.Wire)
		}
		if !strings.HasSuffix(c.OpenSIPS, "\n") || !strings.HasSuffix(c.Flatstore(), "\n") ||
			strings.Count(c.Flatstore(), "\n") != 1 || strings.Contains(c.Flatstore(), "\r") {
			t.Errorf("%s: %q / %q: the flatstore column is one line, and both end with LF", c.Name, c.OpenSIPS, c.Flatstore())
		}
	}
}

// TestOracleRows: every row is complete and its parameters convert.
func TestOracleRows(t *testing.T) {
	o := LoadOracle(t)
	names := map[string]bool{}
	for _, c := range append(o.Values, o.Settings...) {
		if names[c.Name] {
			t.Errorf("%s: two rows of that name", c.Name)
		}
		names[c.Name] = true
		switch {
		case c.StartError != "":
			if c.OpenSIPS != "" || c.Default != nil || c.Exact != nil || len(c.Params) != 0 {
				t.Errorf("%s: a start-up failure has no bytes and no parameters", c.Name)
			}
		case !strings.HasSuffix(c.OpenSIPS, "\n") || !strings.HasSuffix(c.Flatstore(), "\n"):
			t.Errorf("%s: every line ends with LF: %q, %q", c.Name, c.OpenSIPS, c.Flatstore())
		}
		if c.Default != nil && *c.Default == c.OpenSIPS || c.Exact != nil && *c.Exact == c.OpenSIPS {
			t.Errorf("%s: a flatstore column equal to opensips is written only by leaving it out", c.Name)
		}
		if _, err := c.Body(); err != nil {
			t.Error(err)
		}
	}
	for _, c := range o.Values {
		if len(c.Settings) != 0 {
			t.Errorf("%s: a values row has the default settings", c.Name)
		}
	}
	for _, c := range o.Settings {
		if len(c.Settings) == 0 {
			t.Errorf("%s: a settings row without settings", c.Name)
		}
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
