package event_test

import (
	"bytes"
	"maps"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

var t0 = event.Time{Sec: 1700000000, Nsec: 123456789}

// The OpenSIPS vectors (flatstore/testdata/opensips/oracle.json, read by
// fbtest.LoadOracle): a record holding an event's parameters in order gives
// the table's flatstore bytes, and with escape opensips_exact OpenSIPS's own.

// oracleBody is the record of one oracle row.
func oracleBody(t testing.TB, c fbtest.OracleCase) records.KV {
	t.Helper()
	body, err := c.Body()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// settingsKV flattens a row's settings, plus kv, into key, value pairs.
func settingsKV(settings map[string]string, kv ...string) []string {
	for k, v := range settings {
		kv = append(kv, k, v)
	}
	return kv
}

// TestOracleValues: the oracle's first table, default settings.
func TestOracleValues(t *testing.T) {
	cfg := config(t)
	for _, c := range fbtest.LoadOracle(t).Values {
		t.Run(c.Name, func(t *testing.T) {
			if got, want := encode(t, cfg, t0, oracleBody(t, c)), c.Flatstore(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// spellings returns the other ways of writing value for key that flatstore
// takes as the same setting (aliases, boolean words, the escape \t).
func spellings(key, value string) []string {
	switch key {
	case "delimiter", "escape_delimiter":
		alias := map[string][]string{
			";": {"semicolon"}, "|": {"pipe"}, ",": {"comma"}, " ": {"space"},
			`\t`: {"tab", "\t"}, "\t": {"tab", `\t`},
		}
		return alias[value]
	case "suppress_event_name":
		switch value {
		case "1", "true", "on", "yes":
			return []string{"true", "on", "yes", "TRUE"}
		}
	}
	return nil
}

// TestOracleSettings: the oracle's second table, other settings, each also
// with every other spelling of its values; and the settings OpenSIPS
// refuses to start with.
func TestOracleSettings(t *testing.T) {
	for _, c := range fbtest.LoadOracle(t).Settings {
		t.Run(c.Name, func(t *testing.T) {
			if c.StartError != "" {
				_, err := flatstore.ParseConfig(flatstore.MapGetter(withPath(t, c.Settings)))
				if err == nil || !strings.Contains(err.Error(), c.StartError) {
					t.Fatalf("err = %v, want it to hold %s", err, c.StartError)
				}
				return
			}
			body := oracleBody(t, c)
			check := func(settings map[string]string) {
				t.Helper()
				cfg := config(t, settingsKV(settings)...)
				if got, want := encode(t, cfg, t0, body), c.Flatstore(); got != want {
					t.Errorf("%v: got %q, want %q", settings, got, want)
				}
			}
			check(c.Settings)
			for k, v := range c.Settings {
				for _, alt := range spellings(k, v) {
					m := maps.Clone(c.Settings)
					m[k] = alt
					check(m)
				}
			}
		})
	}
}

// TestOracleExact: with escape opensips_exact every vector gives OpenSIPS's
// bytes (but for the integers flatstore never clamps), or the configuration
// is refused where the table says so.
func TestOracleExact(t *testing.T) {
	o := fbtest.LoadOracle(t)
	for _, c := range append(o.Values, o.Settings...) {
		if c.StartError != "" {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			kv := settingsKV(c.Settings, "escape", "opensips_exact")
			if c.ExactRefused != "" {
				_, err := flatstore.ParseConfig(flatstore.MapGetter(withPath(t, c.Settings, kv...)))
				if err == nil || !strings.Contains(err.Error(), c.ExactRefused) {
					t.Fatalf("err = %v, want it to hold %s", err, c.ExactRefused)
				}
				return
			}
			if got, want := encode(t, config(t, kv...), t0, oracleBody(t, c)), c.FlatstoreExact(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// withPath returns settings and kv as a configuration with a path.
func withPath(t testing.TB, settings map[string]string, kv ...string) map[string]string {
	m := map[string]string{"path": filepath.Join(t.TempDir(), "e.log")}
	maps.Copy(m, settings)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestMultiByteDelimiter: with a delimiter of several bytes, each byte equal
// to its first becomes a space, and escape_delimiter replaces the whole
// delimiter (flatstore's own: OpenSIPS never applies escape_delimiter).
func TestMultiByteDelimiter(t *testing.T) {
	cases := []struct {
		kv   []string
		vals []any
		want string
	}{
		{[]string{"delimiter", "||", "escape_delimiter", "##"}, []any{"a||b|c", "|||"}, "E_TEST||a##b|c||##|\n"},
		{[]string{"delimiter", "||"}, []any{"a||b|c"}, "E_TEST||a  b c\n"},
	}
	for _, c := range cases {
		if got := encode(t, config(t, c.kv...), t0, params("E_TEST", c.vals...)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.kv, got, c.want)
		}
	}
}

// TestKeyOrder: parameters follow the record's order, never Go map order.
func TestKeyOrder(t *testing.T) {
	cfg := config(t)
	if got, want := encode(t, cfg, t0, records.KV{"event", "E_X", "b", 1, "a", 2, "c", 3}), "E_X,1,2,3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// 50 keys in a fixed shuffled order: a map-order bug would show here.
	perm := []int{17, 3, 42, 8, 29, 0, 36, 11, 48, 21, 5, 33, 14, 26, 39, 1, 45, 19, 7, 31,
		24, 12, 49, 2, 38, 16, 27, 9, 44, 22, 35, 4, 13, 30, 47, 18, 6, 40, 25, 10,
		34, 20, 46, 15, 28, 37, 23, 41, 32, 43}
	body := records.KV{}
	want := "tag.x"
	for i, k := range perm {
		if i == 25 {
			body = append(body, "event", 12345) // not a string: the tag names the event
		}
		body = append(body, "k"+strconv.Itoa(k), k)
		want += "," + strconv.Itoa(k)
	}
	want += "\n"
	for i := 0; i < 20; i++ {
		if got := encode(t, cfg, t0, body); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestEventName(t *testing.T) {
	cases := []struct {
		name string
		kv   []string
		body records.KV
		want string
	}{
		{"event key", nil, records.KV{"a", 1, "event", "E_A", "b", 2}, "E_A,1,2\n"},
		{"no event key: tag", nil, records.KV{"a", 1}, "tag.x,1\n"},
		{"int event: tag, not repeated", nil, records.KV{"event", 5, "a", 1}, "tag.x,1\n"},
		{"nil event: tag", nil, records.KV{"event", nil, "a", 1}, "tag.x,1\n"},
		{"binary event: tag", nil, records.KV{"event", []byte("E_BIN"), "a", 1}, "tag.x,1\n"},
		{"map event: tag", nil, records.KV{"event", records.KV{"x", 1}, "a", 1}, "tag.x,1\n"},
		{"other event_key", []string{"event_key", "name"}, records.KV{"event", "E", "name", "N"}, "N,E\n"},
		{"event name escaped", nil, records.KV{"event", "E,1\n"}, "E 1 \n"},
		{"non-string key kept", nil, records.KV{"event", "E", 7, "seven", nil, "nil"}, "E,seven,nil\n"},
		{"params order", []string{"params", "c, a ,b"}, records.KV{"a", 1, "event", "E", "b", 2, "c", 3}, "E,3,1,2\n"},
		{"params absent key", []string{"params", "a,missing,b"}, records.KV{"b", 2, "a", 1}, "tag.x,1,,2\n"},
		{"params event key not a param", []string{"params", "a"}, records.KV{"event", "E", "a", 1}, "E,1\n"},
		{"params int event", []string{"params", "a"}, records.KV{"event", 9, "a", 1}, "tag.x,1\n"},
		{"params all absent", []string{"params", "x,y"}, records.KV{"event", "E"}, "E,,\n"},
		{"params repeated", []string{"params", "a,b,a"}, records.KV{"a", 1, "b", 2}, "tag.x,1,2,1\n"},
		{"params first duplicate wins", []string{"params", "a"}, records.KV{"a", 1, "a", 2}, "tag.x,1\n"},
		{"params nested", []string{"params", "m"}, records.KV{"m", records.KV{"z", 1, "a", 2}}, "tag.x,{\"z\":1 \"a\":2}\n"},
		{"params suppress", []string{"params", "a,b", "suppress_event_name", "true"}, records.KV{"event", "E", "b", "B"}, ",B\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(t, c.kv...)
			if got := encode(t, cfg, t0, c.body); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestValueTypes(t *testing.T) {
	ts := time.Unix(1700000000, 123456789)
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"int64 min", int64(math.MinInt64), "-9223372036854775808"},
		{"int64 max", int64(math.MaxInt64), "9223372036854775807"},
		{"uint64 max", uint64(math.MaxUint64), "18446744073709551615"},
		{"small ints", records.Raw{0x00}, "0"},
		{"fixint 9", records.Raw{0x09}, "9"},
		{"fixint 127", records.Raw{0x7f}, "127"},
		{"negative fixint", records.Raw{0xff}, "-1"},
		{"int8", records.Raw{0xd0, 0x80}, "-128"},
		{"uint8", records.Raw{0xcc, 0xff}, "255"},
		{"uint16", records.Raw{0xcd, 0xff, 0xff}, "65535"},
		{"1.5", 1.5, "1.5"},
		{"1e21", 1e21, "1e+21"},
		{"1e20", 1e20, "100000000000000000000"},
		{"-0.1", -0.1, "-0.1"},
		{"1e-7", 1e-7, "1e-7"},
		{"1e-6", 1e-6, "0.000001"},
		{"1.5e-8", 1.5e-8, "1.5e-8"},
		{"1e-100", 1e-100, "1e-100"},
		{"0.0", 0.0, "0"},
		{"-0.0", math.Copysign(0, -1), "-0"},
		{"float32 0.1", float32(0.1), "0.1"},
		{"float32 1e-7", float32(1e-7), "1e-7"},
		{"NaN", math.NaN(), "NaN"},
		{"+Inf", math.Inf(1), "+Inf"},
		{"-Inf", math.Inf(-1), "-Inf"},
		{"float32 Inf", float32(math.Inf(-1)), "-Inf"},
		{"true", true, "true"},
		{"false", false, "false"},
		{"nil", nil, "null"},
		{"binary", []byte("bin\x00ary"), "bin\x00ary"},
		{"empty binary", []byte{}, ""},
		{"str8", strings.Repeat("s", 40), strings.Repeat("s", 40)},
		{"str16", strings.Repeat("t", 300), strings.Repeat("t", 300)},
		{"nested map", records.KV{"z", 1, "a", records.KV{"y", "x", "b", []any{true, nil, 1.5}}}, `{"z":1,"a":{"y":"x","b":[true,null,1.5]}}`},
		{"empty map", records.KV{}, "{}"},
		{"empty array", []any{}, "[]"},
		{"json escapes", []any{"q\"b\\n\nt\x01", "é"}, `["q\"b\\n\nt\u0001","é"]`},
		{"json NaN is null", []any{math.NaN(), math.Inf(1), -2.5}, "[null,null,-2.5]"},
		{"json non-string keys", records.KV{1, "a", nil, "b", true, "c"}, `{"1":"a","null":"b","true":"c"}`},
		{"json binary", []any{[]byte("x")}, `["x"]`},
		{"json int64 min", []any{int64(math.MinInt64), uint64(math.MaxUint64)}, "[-9223372036854775808,18446744073709551615]"},
		{"json time", []any{ts}, `["2023-11-14T22:13:20.123456789Z"]`},
		{"EventTime ext 0", ts, "2023-11-14T22:13:20.123456789Z"},
		{"timestamp ext -1, 32 bit", records.Raw{0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00}, "2023-11-14T22:13:20.000000000Z"},
		{"timestamp ext -1, 64 bit", records.Raw(ts64(1700000000, 123456789)), "2023-11-14T22:13:20.123456789Z"},
		{"timestamp ext -1, 96 bit", records.Raw(ts96(-1, 5)), "1969-12-31T23:59:59.000000005Z"},
		{"other ext: hex", records.Raw{0xd5, 0x07, 0xab, 0xcd}, "abcd"},
		{"ext8: hex", records.Raw{0xc7, 0x03, 0x10, 0x01, 0x02, 0x03}, "010203"},
		{"ext 3 (complex64 in msgp): hex", records.Raw{0xd7, 0x03, 1, 2, 3, 4, 5, 6, 7, 8}, "0102030405060708"},
		{"ext 4 (complex128 in msgp): hex", records.Raw{0xd8, 0x04, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "000102030405060708090a0b0c0d0e0f"},
		{"ext 3 in json", []any{records.Raw{0xd4, 0x03, 0xff}}, `["ff"]`},
		{"ext 0 not 8 bytes: hex", records.Raw{0xd6, 0x00, 1, 2, 3, 4}, "01020304"},
	}
	cfg := config(t, "escape", "none")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := "E,a," + c.want + ",z\n"
			if got := encode(t, cfg, t0, records.KV{"event", "E", "p0", "a", "p1", c.v, "p2", "z"}); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func ts64(sec uint64, nsec uint64) []byte {
	v := nsec<<34 | sec
	b := []byte{0xd7, 0xff}
	for i := 7; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func ts96(sec int64, nsec uint32) []byte {
	b := []byte{0xc7, 12, 0xff, byte(nsec >> 24), byte(nsec >> 16), byte(nsec >> 8), byte(nsec)}
	for i := 7; i >= 0; i-- {
		b = append(b, byte(uint64(sec)>>(8*i)))
	}
	return b
}

func TestNestedUnderOpenSIPS(t *testing.T) {
	cfg := config(t)
	got := encode(t, cfg, t0, records.KV{"event", "E", "m", records.KV{"a,b", "c\nd", "l", []any{1, 2}}})
	// JSON escapes the LF; the commas become spaces.
	if want := "E,{\"a b\":\"c\\nd\" \"l\":[1 2]}\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTimeFormat(t *testing.T) {
	cases := []struct {
		format string
		et     event.Time
		want   string
	}{
		{"none", t0, "E,a\n"},
		{"unix", t0, "E,1700000000,a\n"},
		{"unix_ms", t0, "E,1700000000123,a\n"},
		{"unix_ns", t0, "E,1700000000123456789,a\n"},
		{"rfc3339", t0, "E,2023-11-14T22:13:20Z,a\n"},
		{"rfc3339_nano", t0, "E,2023-11-14T22:13:20.123456789Z,a\n"},
		{"RFC3339_NANO", event.Time{Sec: 0}, "E,1970-01-01T00:00:00.000000000Z,a\n"},
		// An EventTime whose nanoseconds field holds a whole second or more.
		{"rfc3339", event.Time{Sec: 1700000000, Nsec: 1_500_000_000}, "E,2023-11-14T22:13:21Z,a\n"},
		{"unix", event.Time{Sec: 1700000000, Nsec: 1_500_000_000}, "E,1700000001,a\n"},
		{"unix_ms", event.Time{Sec: 1700000000, Nsec: 1_500_000_000}, "E,1700000001500,a\n"},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			cfg := config(t, "time_format", c.format)
			if got := encode(t, cfg, c.et, records.KV{"event", "E", "p", "a"}); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	cfg := config(t, "time_format", "unix", "suppress_event_name", "true")
	if got, want := encode(t, cfg, t0, records.KV{"event", "E"}), "1700000000\n"; got != want {
		t.Errorf("suppress + time: got %q, want %q", got, want)
	}
}

// TestEscapeModes covers each escape mode on the same values.
func TestEscapeModes(t *testing.T) {
	type tc struct {
		vals []any
		want string
	}
	modes := []struct {
		kv    []string
		cases []tc
	}{
		{[]string{"escape", "opensips"}, []tc{
			{[]any{"a,b", "c\r\nd", `e\"f`}, "E,a b,c  d,e\\\"f\n"},
		}},
		{[]string{"escape", "none"}, []tc{
			{[]any{"a,b", "c\r\nd", `e\"f`}, "E,a,b,c\r\nd,e\\\"f\n"},
		}},
		{[]string{"escape", "backslash"}, []tc{
			{[]any{"a,b", "c\r\nd", `e\"f`, `\`, ",", ""}, "E,a\\,b,c\\r\\nd,e\\\\\"f,\\\\,\\,,\n"},
			{[]any{"tab\there"}, "E,tab\there\n"},
		}},
		{[]string{"escape", "backslash", "delimiter", "tab"}, []tc{
			{[]any{"a\tb", "c,d"}, "E\ta\\\tb\tc,d\n"},
		}},
		{[]string{"escape", "backslash", "delimiter", "||"}, []tc{
			// Every byte equal to the delimiter's first byte is escaped, so that
			// a value ending in '|' cannot merge with the delimiter.
			{[]any{"a||b", "|", "x|"}, "E||a\\|\\|b||\\|||x\\|\n"},
		}},
		{[]string{"escape", "csv"}, []tc{
			{[]any{"a,b", "c\r\nd", `e"f`, "plain", "", `"`}, "E,\"a,b\",\"c\r\nd\",\"e\"\"f\",plain,,\"\"\"\"\n"},
		}},
		{[]string{"escape", "csv", "delimiter", ";"}, []tc{
			{[]any{"a,b", "a;b"}, "E;a,b;\"a;b\"\n"},
		}},
		{[]string{"escape", "csv", "delimiter", "tab"}, []tc{
			{[]any{"a b", "a\tb"}, "E\ta b\t\"a\tb\"\n"},
		}},
	}
	for _, m := range modes {
		cfg := config(t, m.kv...)
		for _, c := range m.cases {
			t.Run(strings.Join(m.kv, "="), func(t *testing.T) {
				got := encode(t, cfg, t0, params("E", c.vals...))
				if got != c.want {
					t.Fatalf("got %q, want %q", got, c.want)
				}
				if cfg.Escape == event.EscapeOpenSIPS || cfg.Escape == event.EscapeBackslash {
					if strings.Count(got, "\n") != 1 || strings.Contains(got, "\r") {
						t.Errorf("%q: not exactly one line", got)
					}
				}
				if cfg.Escape == event.EscapeBackslash || cfg.Escape == event.EscapeCSV {
					fields, err := event.Split(cfg.Options, []byte(got))
					if err != nil {
						t.Fatalf("Split(%q): %v", got, err)
					}
					want := []string{"E"}
					for _, v := range c.vals {
						want = append(want, v.(string))
					}
					if len(fields) != len(want) {
						t.Fatalf("Split(%q) = %q, want %q", got, fields, want)
					}
					for i := range want {
						if string(fields[i]) != want[i] {
							t.Fatalf("Split(%q) = %q, want %q", got, fields, want)
						}
					}
				}
			})
		}
	}
}

func TestSplitMalformed(t *testing.T) {
	bs := config(t, "escape", "backslash")
	csv := config(t, "escape", "csv")
	for _, c := range []struct {
		cfg  *flatstore.Config
		line string
	}{
		{bs, "E,a\\"},
		{bs, "E,a\\x"},
		{bs, "E,a\rb"},
		{csv, `E,"a`},
		{csv, `E,"a"b`},
		{csv, `E,a"b`},
		{csv, "E,a\rb"},
	} {
		if f, err := event.Split(c.cfg.Options, []byte(c.line)); err == nil {
			t.Errorf("Split(%s, %q) = %q, want an error", c.cfg.Escape, c.line, f)
		}
	}
}

func TestHeaderLine(t *testing.T) {
	cases := []struct {
		kv   []string
		want string
	}{
		{nil, ""},
		{[]string{"header", "event,caller,callee"}, "event,caller,callee"},
		{[]string{"header", "auto", "params", "caller, callee"}, "event,caller,callee"},
		{[]string{"header", "auto", "params", "a", "delimiter", "tab", "time_format", "unix"}, "event\ttime\ta"},
		{[]string{"header", "auto", "params", "a", "suppress_event_name", "true"}, "a"},
		{[]string{"header", "auto", "params", "a,b", "escape", "csv", "delimiter", ";"}, "event;a;b"},
	}
	for _, c := range cases {
		if got := string(event.HeaderLine(config(t, c.kv...).Options)); got != c.want {
			t.Errorf("HeaderLine(%q) = %q, want %q", c.kv, got, c.want)
		}
	}
}

// TestAppendLineAppends: AppendLine appends to dst and leaves what follows
// the map in rest; a truncated body leaves dst as it was.
func TestAppendLineAppends(t *testing.T) {
	cfg := config(t)
	enc := event.NewEncoder(cfg.Options)
	body := records.AppendKV(nil, records.KV{"event", "E", "a", "x"})
	body = append(body, 0xc0, 0x01)
	out, rest, _, err := enc.AppendLine([]byte("prev\n"), t0, body, []byte("t"))
	if err != nil || string(out) != "prev\nE,x\n" || !bytes.Equal(rest, []byte{0xc0, 0x01}) {
		t.Fatalf("got %q, %x, %v", out, rest, err)
	}
	for n := 0; n < len(body)-2; n++ {
		out, _, _, err := enc.AppendLine([]byte("prev\n"), t0, body[:n], []byte("t"))
		if err == nil || string(out) != "prev\n" {
			t.Fatalf("truncated at %d: got %q, %v", n, out, err)
		}
	}
}

func TestJSONContainerKeys(t *testing.T) {
	cfg := config(t, "escape", "none")
	got := encode(t, cfg, t0, records.KV{"event", "E", "m", records.KV{records.KV{"k", []any{1, "x"}}, 2, []any{}, 3, "z", 4}})
	if want := `E,{"{\"k\":[1,\"x\"]}":2,"[]":3,"z":4}` + "\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestTimeEscaped: the record time is a value like any other; a delimiter
// that occurs in it is escaped.
func TestTimeEscaped(t *testing.T) {
	cases := []struct {
		kv   []string
		want string
	}{
		{[]string{"time_format", "rfc3339", "delimiter", "-"}, "E-2023 11 14T22:13:20Z-a\n"},
		{[]string{"time_format", "rfc3339", "delimiter", ":", "escape", "csv"}, "E:\"2023-11-14T22:13:20Z\":a\n"},
		{[]string{"time_format", "rfc3339_nano", "delimiter", ".", "escape", "backslash"}, "E.2023-11-14T22:13:20\\.123456789Z.a\n"},
		{[]string{"time_format", "unix", "delimiter", "0", "escape", "backslash"}, "E017\\0\\0\\0\\0\\0\\0\\0\\00a\n"},
	}
	for _, c := range cases {
		cfg := config(t, c.kv...)
		got := encode(t, cfg, t0, records.KV{"event", "E", "p", "a"})
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.kv, got, c.want)
			continue
		}
		if cfg.Escape == event.EscapeCSV || cfg.Escape == event.EscapeBackslash {
			if f, err := event.Split(cfg.Options, []byte(got)); err != nil || len(f) != 3 || string(f[2]) != "a" {
				t.Errorf("%q: Split(%q) = %q, %v", c.kv, got, f, err)
			}
		}
	}
}

// TestParamsKey: with params_key the parameters are the value under that
// key — a map's values in order, an array's elements, one other value, or
// none when absent or null — and the record's other keys are ignored, even
// when the parameters are named like the envelope (method, jsonrpc, params,
// id). params selects from a map by name; an array is written whole.
func TestParamsKey(t *testing.T) {
	cfg := config(t, "event_key", "method", "params_key", "params")
	sel := config(t, "event_key", "method", "params_key", "params", "params", "b, a, missing")
	cases := []struct {
		cfg  *flatstore.Config
		body records.KV
		want string
	}{
		// The recorded notifications (no params, an array, an object whose
		// keys are named like the envelope) are TestSidecarVectors'.
		{cfg, records.KV{"method", "E_T", "params", nil, "other", "ignored"}, "E_T\n"},
		{cfg, records.KV{"method", "E_T", "params", "one"}, "E_T,one\n"},
		{cfg, records.KV{"params", []any{1, records.KV{"k", "v,w"}}, "method", "E_LATE"}, `E_LATE,1,{"k":"v w"}` + "\n"},
		{cfg, records.KV{"params", []any{}}, "tag.x\n"},
		{sel, records.KV{"method", "E_S", "params", records.KV{"a", 1, "b", 2, "c", 3}}, "E_S,2,1,\n"},
		{sel, records.KV{"method", "E_S", "params", []any{"x", "y"}}, "E_S,x,y\n"},
	}
	for _, c := range cases {
		if got := encode(t, c.cfg, t0, c.body); got != c.want {
			t.Errorf("%v: got %q, want %q", c.body, got, c.want)
		}
	}
}

// TestOpenSIPSExact: escape opensips_exact writes OpenSIPS ≥ 3.6's bytes:
// the delimiter's first byte becomes a space, CR and LF stay raw, the event
// name is written as it is, and without an event name the delimiters of
// leading empty values are left out. The recorded vectors are in
// TestOracleExact (and TestSidecarVectors); these are the cases around them.
func TestOpenSIPSExact(t *testing.T) {
	exact := config(t, "escape", "opensips_exact")
	sup := config(t, "escape", "opensips_exact", "suppress_event_name", "true")
	cases := []struct {
		cfg  *flatstore.Config
		body records.KV
		want string
	}{
		{exact, params("E,X", "v"), "E,X,v\n"},
		{exact, params("E\nX", "v\r"), "E\nX,v\r\n"},
		{sup, params("E", "a", "", "b"), "a,,b\n"},
		{sup, params("E", "", "", ""), "\n"},
	}
	for _, c := range cases {
		if got := encode(t, c.cfg, t0, c.body); got != c.want {
			t.Errorf("%q: got %q, want %q", c.body, got, c.want)
		}
	}
	if _, err := flatstore.ParseConfig(flatstore.MapGetter{"path": t.TempDir() + "/e.log", "escape": "opensips_exact", "escape_delimiter": "|"}); err == nil {
		t.Error("escape_delimiter was accepted with opensips_exact (OpenSIPS never applies it)")
	}
}

// TestNestedJSONEscapes: nested JSON escapes as OpenSIPS's cJSON does:
// \b and \f by name, other control bytes as \u00XX, UTF-8 and DEL raw.
func TestNestedJSONEscapes(t *testing.T) {
	cfg := config(t, "escape", "none")
	got := encode(t, cfg, t0, records.KV{"event", "E", "m", records.KV{"s", "a\bb\fc\x01d\x7fé\"\\/"}})
	if want := `E,{"s":"a\bb\fc\u0001d` + "\x7f" + `é\"\\/"}` + "\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestEventNameLargeRecord: a record whose values pass the side buffer
// (64 KiB) is written name first after a second look for the event key;
// the line is the same as for a small record, wherever the key is.
func TestEventNameLargeRecord(t *testing.T) {
	big := strings.Repeat("v", 70<<10) + ",\n" + strings.Repeat("w", 10)
	esc := strings.Repeat("v", 70<<10) + "  " + strings.Repeat("w", 10)
	cases := []struct {
		name string
		body records.KV
		want string
	}{
		{"event first", records.KV{"event", "E", "a", big, "b", 2}, "E," + esc + ",2\n"},
		{"event last", records.KV{"a", big, "b", 2, "event", "E"}, "E," + esc + ",2\n"},
		{"event absent", records.KV{"a", 1, "b", big}, "tag.x,1," + esc + "\n"},
		{"first string event wins", records.KV{"event", 5, "a", big, "event", "E1", "event", "E2"}, "E1," + esc + "\n"},
		{"two big values", records.KV{"a", big, "b", big, "event", "E"}, "E," + esc + "," + esc + "\n"},
	}
	cfg := config(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := encode(t, cfg, t0, c.body); got != c.want {
				t.Errorf("got %d bytes %.40q…, want %d bytes %.40q…", len(got), got, len(c.want), c.want)
			}
		})
	}
}

// TestNestedLargeAside: under the escapes that change lengths the JSON of a
// map is rendered aside first; one past 64 KiB is rendered again into room
// reserved once. Either way the line is the same.
func TestNestedLargeAside(t *testing.T) {
	for _, n := range []int{10, 70 << 10} {
		v := strings.Repeat("a", n)
		body := records.KV{"event", "E", "m", records.KV{"k", v + ",x"}}
		if got, want := encode(t, config(t, "escape", "backslash"), t0, body), `E,{"k":"`+v+`\,x"}`+"\n"; got != want {
			t.Errorf("backslash, %d bytes: got %d bytes %.60q…, want %d", n, len(got), got, len(want))
		}
		if got, want := encode(t, config(t, "escape", "csv"), t0, body), `E,"{""k"":""`+v+`,x""}"`+"\n"; got != want {
			t.Errorf("csv, %d bytes: got %d bytes %.60q…, want %d", n, len(got), got, len(want))
		}
	}
}

// TestJSONEscapedInPlace: a map or array is escaped where it lies in the
// line (escape backslash and csv make it longer, from its last byte to its
// first), and a map used as a key is made a string there: the line is the
// JSON that escape none writes, escaped as a string value would be.
func TestJSONEscapedInPlace(t *testing.T) {
	values := []any{
		records.KV{"a", "x,y", "b", []any{1, "q\"", nil, false}},
		records.KV{records.KV{"k\x01\\", "v\n\r,"}, []any{"|", "||"}},
		[]any{strings.Repeat("a,\"\\\n", 20000), records.KV{records.KV{"k", strings.Repeat("\x02\"", 9000)}, 1}},
		records.KV{records.KV{records.KV{"deep", "\t"}, 1}, records.KV{"in", "\b\f"}},
		[]any{},
	}
	backslash := func(s, d string) string {
		r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, d[:1], `\`+d[:1])
		return r.Replace(s)
	}
	csv := func(s string) string {
		if !strings.ContainsAny(s, ",\"\r\n") {
			return s
		}
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	for i, v := range values {
		for _, d := range []string{",", "||"} {
			body := params("E", v)
			raw := encode(t, config(t, "escape", "none", "delimiter", d), t0, body)
			json := strings.TrimSuffix(strings.TrimPrefix(raw, "E"+d), "\n")
			if want := `{"{\"k\\u0001\\\\\":\"v\\n\\r,\"}":["|","||"]}`; i == 1 && json != want {
				t.Errorf("a map used as a key: %q, want %q", json, want)
			}
			if got, want := encode(t, config(t, "escape", "backslash", "delimiter", d), t0, body), "E"+d+backslash(json, d)+"\n"; got != want {
				t.Errorf("value %d, delimiter %q, backslash:\n got %.300q\nwant %.300q", i, d, got, want)
			}
			if d != "," {
				continue
			}
			if got, want := encode(t, config(t, "escape", "csv"), t0, body), "E,"+csv(json)+"\n"; got != want {
				t.Errorf("value %d, csv:\n got %.300q\nwant %.300q", i, got, want)
			}
		}
	}
}
