package flatstore_test

// Fuzz tests. Their seed corpora (testdata/fuzz/FuzzXxx) run with every
// `go test`; to search for new inputs, run one at a time, for example:
//
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzFlush$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzLineRoundTrip$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzParseConfig$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzTemplate$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzRenderLinear$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzManifest$' -fuzztime 60s  (retention_test.go)
//
// A failing input is written under testdata/fuzz/FuzzXxx/; commit it with
// the fix so that it stays a regression test.

import (
	"bytes"
	"github.com/flatstore/flatstore/flatstore/logger"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// FuzzFlush feeds arbitrary bytes to Instance.Flush: it must never panic
// (a recovered panic would come back as RETRY, which a static file on a
// local disk never needs) nor hang, and every line it writes ends in '\n'
// with no CR or LF inside (escape opensips).
func FuzzFlush(f *testing.F) {
	rec := func(rs ...fbtest.Record) []byte { return fbtest.Records(rs...) }
	f.Add(rec(fbtest.Record{Body: fbtest.KV{"event", "E_TEST", "a", "x\ny", "b", 1}}))
	f.Add(rec(fbtest.Record{Legacy: true, TimeKind: fbtest.TimeFloat, Body: fbtest.KV{"m", fbtest.KV{"k", []any{1, nil, 1.5}}}}))
	f.Add(append(fbtest.GroupStart(fbtest.KV{"s", 1}, nil), fbtest.GroupEnd()...))
	f.Add(rec(fbtest.Record{Body: "not a map"}, fbtest.Record{Body: fbtest.KV{"event", 1}}))
	f.Add([]byte{0x92, 0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x81, 0xa1, 'a', 0xd4, 0x03, 0xff})
	f.Add([]byte{0x92, 0x01, 0x81, 0xa1, 'k', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add(fbtest.AppendRecord(nil, fbtest.Record{Body: fbtest.Raw(keyBomb(30))}))
	f.Add(fbtest.AppendRecord(nil, fbtest.Record{Body: fbtest.KV{"event", "E", "m", fbtest.KV{fbtest.KV{"k", strings.Repeat("\x01", 64<<10)}, 1}}}))

	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.log")
	cfg, err := flatstore.ParseConfig(flatstore.MapGetter{"path": path, "time_format": "rfc3339_nano", "idle_timeout": "0"})
	if err != nil {
		f.Fatal(err)
	}
	in, err := flatstore.NewInstance(flatstore.NewProcess(), cfg, "fuzz", logger.New("fuzz", logger.NewWriterSink(io.Discard, logger.LevelDebug)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(in.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		r := in.Flush(data, "fuzz.tag")
		if r != flatstore.OK && r != flatstore.Error {
			t.Fatalf("Flush = %v", r)
		}
		out, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if r == flatstore.Error && len(out) > 0 {
			t.Fatalf("ERROR but wrote %q", out)
		}
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("output does not end in a newline: %q", out)
		}
		if bytes.IndexByte(out, '\r') >= 0 {
			t.Fatalf("CR in output %q", out)
		}
	})
}

// roundTripDelims are the delimiters FuzzLineRoundTrip picks from.
var roundTripDelims = []string{",", ";", "\t", " ", "|", "a", "||", "::", "ab", "aa", "<>", "x\\", "-", ":", ".", "0", "n", "r"}

// FuzzLineRoundTrip: for any event name and values, with or without the
// record time (mode/4), escape backslash and csv split back into exactly
// the fields written, and opensips and backslash
// write exactly one '\n', at the end.
func FuzzLineRoundTrip(f *testing.F) {
	f.Add("E_TEST", "hello", "world", "", uint8(0), uint8(0), false)
	f.Add("E,1", "a,b,,c", ",", "line1\nline2", uint8(1), uint8(0), false)
	f.Add("E", `say "hi"`, `"`, "c\rr", uint8(2), uint8(0), true)
	f.Add("", "", "", "", uint8(1), uint8(6), true)
	f.Add("E", "x|", "|", "||a", uint8(1), uint8(6), false)
	f.Add("E", "a", "aa", "a\\", uint8(1), uint8(9), false)
	f.Add("E\\", "\\,", "\\\\", "x\\", uint8(1), uint8(11), false)
	f.Add("E", "a\tb", "\t", "", uint8(2), uint8(2), false)
	f.Add("E", "hé€", "\x00", "\xff", uint8(3), uint8(0), false)
	f.Add("E", "a", "b", "c", uint8(5), uint8(0), false) // backslash, rfc3339_nano
	f.Add("E", "a", "", "c", uint8(10), uint8(0), true)  // csv, unix
	f.Add("E", "a.", ".", "", uint8(9), uint8(4), false) // backslash, unix, delimiter '|'

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, event, a, b, c string, mode, delim uint8, suppress bool) {
		escape := []string{"opensips", "backslash", "csv", "none"}[mode%4]
		timeFormat := []string{"none", "rfc3339_nano", "unix"}[mode/4%3]
		timeText := []string{"", "2023-11-14T22:13:20.123456789Z", "1700000000"}[mode/4%3]
		d := roundTripDelims[int(delim)%len(roundTripDelims)]
		if escape == "csv" && len(d) != 1 {
			d = ","
		}
		if escape == "csv" && d == "a" {
			d = "|"
		}
		if escape == "backslash" && (strings.HasPrefix(d, "\\") || d[0] == 'n' || d[0] == 'r') {
			d = "," // refused by ParseConfig: their escapes would read as \\, \n, \r
		}
		sup := "false"
		if suppress {
			sup = "true"
		}
		cfg, err := flatstore.ParseConfig(flatstore.MapGetter{
			"path": dir + "/e.log", "escape": escape, "delimiter": d, "suppress_event_name": sup,
			"time_format": timeFormat,
		})
		if err != nil {
			t.Fatal(err)
		}
		body := fbtest.AppendKV(nil, fbtest.KV{"event", event, "a", a, "b", b, "c", c})
		line, rest, _, err := flatstore.NewEncoder(cfg).AppendLine(nil, t0, body, []byte("tag"))
		if err != nil || len(rest) != 0 {
			t.Fatalf("AppendLine: %v (%d left)", err, len(rest))
		}
		if escape == "opensips" || escape == "backslash" {
			if bytes.IndexByte(line, '\n') != len(line)-1 || bytes.IndexByte(line, '\r') >= 0 {
				t.Fatalf("%s: %q is not one line", escape, line)
			}
		}
		if escape != "backslash" && escape != "csv" {
			return
		}
		want := []string{event, a, b, c}
		if timeText != "" {
			want = []string{event, timeText, a, b, c}
		}
		if suppress {
			want = want[1:]
		}
		fields, err := flatstore.Split(cfg, line)
		if err != nil {
			t.Fatalf("%s %q: Split(%q): %v", escape, d, line, err)
		}
		if len(fields) != len(want) {
			t.Fatalf("%s %q: Split(%q) = %q, want %q", escape, d, line, fields, want)
		}
		for i := range want {
			if string(fields[i]) != want[i] {
				t.Fatalf("%s %q: Split(%q) = %q, want %q", escape, d, line, fields, want)
			}
		}
	})
}

// FuzzParseConfig: ParseConfig never panics, each line of an error names a
// key, and a config it accepts can encode a record.
func FuzzParseConfig(f *testing.F) {
	keys := flatstore.KnownKeys()
	f.Add(uint8(0), "", uint8(1), "", "e.log")
	f.Add(uint8(3), "||", uint8(5), "##", "e.log")
	f.Add(uint8(3), ",", uint8(5), "##", "")
	f.Add(uint8(9), "64x", uint8(11), "0", "sub/e.log")
	f.Add(uint8(4), "csv", uint8(3), "\"", "$TAG/$EVENT.log")
	f.Add(uint8(8), "auto", uint8(2), "a,,b", "$k['x'.log")
	f.Add(uint8(18), ".%Q", uint8(19), "0.0.0.0:1", "$TAG[9999999999999999999].log")
	f.Add(uint8(17), "9999999999999g", uint8(15), "1.5s", "flatstore:")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, k1 uint8, v1 string, k2 uint8, v2 string, path string) {
		g := flatstore.MapGetter{"path": dir + "/" + path}
		g[keys[int(k1)%len(keys)]] = v1
		g[keys[int(k2)%len(keys)]] = v2
		cfg, err := flatstore.ParseConfig(g)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				ok := strings.HasPrefix(line, `"escape_delimiter" length`)
				for _, k := range keys {
					ok = ok || strings.HasPrefix(line, k+` "`)
				}
				if !ok {
					t.Fatalf("error line %q names no key (config %q)", line, g)
				}
			}
			return
		}
		if cfg.Delimiter == "" || cfg.Path == "" || cfg.Template == nil {
			t.Fatalf("accepted config %+v lacks a delimiter or a path", cfg)
		}
		body := fbtest.AppendKV(nil, fbtest.KV{"event", "E", "a", "x,y\n", "b", 1})
		line, _, _, err := flatstore.NewEncoder(cfg).AppendLine(nil, t0, body, []byte("t"))
		if err != nil || len(line) == 0 || line[len(line)-1] != '\n' {
			t.Fatalf("AppendLine = %q, %v", line, err)
		}
		flatstore.HeaderLine(cfg)
		cfg.Template.Render(nil, []byte("t"), []byte("E"), body)
	})
}

// templateSubs are the substitutions FuzzTemplate places in a path.
var templateSubs = []string{"$TAG", "$TAG[1]", "$EVENT", "$k", "$m['s']", "$call-id", "$k['x']"}

// FuzzTemplate: whatever the tag, event and record values, a rendered path
// has the template's components, none of them "." or "..", inside
// StaticDir.
func FuzzTemplate(f *testing.F) {
	f.Add("", uint8(0), ".", uint8(3), "", "../../etc/x", "a/../../b", "..", []byte{0x80})
	f.Add("x", uint8(1), "", uint8(4), ".log", "a..b.c", ".", "/", []byte{0x81, 0xa1, 'k', 0xc1})
	f.Add(".", uint8(2), ".", uint8(5), ".", "", "", "", []byte{})
	f.Add("..", uint8(6), "..", uint8(0), "..", "..", "...", "\x00", []byte{0xde, 0xff})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, a string, s1 uint8, b string, s2 uint8, c, tag, val, event string, garbage []byte) {
		clean := func(s string) string { return strings.NewReplacer("/", "", "$", "", "\x00", "", "[", "").Replace(s) }
		tmpl := dir + "/" + clean(a) + templateSubs[int(s1)%len(templateSubs)] + clean(b) +
			"/" + templateSubs[int(s2)%len(templateSubs)] + clean(c)
		tp, err := flatstore.ParseTemplate(tmpl)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tmpl, err)
		}
		if tp.StaticDir() != dir {
			t.Fatalf("ParseTemplate(%q).StaticDir() = %q, want %q", tmpl, tp.StaticDir(), dir)
		}
		body := fbtest.AppendKV(nil, fbtest.KV{"k", val, "m", fbtest.KV{"s", val}, "call-id", val})
		got := string(tp.Render(nil, []byte(tag), []byte(event), body))
		if filepath.Clean(got) != got {
			t.Fatalf("%q rendered %q, which is not clean", tmpl, got)
		}
		rel, ok := strings.CutPrefix(got, dir+"/")
		if !ok || strings.Count(rel, "/") != 1 {
			t.Fatalf("%q rendered %q: not two components inside %q", tmpl, got, dir)
		}
		for _, comp := range strings.Split(rel, "/") {
			if comp == "" || comp == "." || comp == ".." || strings.IndexByte(comp, 0) >= 0 {
				t.Fatalf("%q rendered %q: bad component %q", tmpl, got, comp)
			}
		}
		// Arbitrary bytes as the body, and arbitrary templates: no panic.
		tp.Render(nil, []byte(tag), []byte(event), garbage)
		if tp2, err := flatstore.ParseTemplate(a + b + c); err == nil {
			tp2.Render(nil, []byte(tag), []byte(event), garbage)
		}
	})
}

// keyBomb is a record body of about 3×depth bytes whose map keys are maps,
// nested depth deep: {"event":"E_BOMB","k":{{{…{"a":nil}…}:nil}:nil}}.
// Rendering each level's key again inside the next doubled it per level:
// at depth 30 it took gigabytes.
func keyBomb(depth int) []byte {
	inner := []byte{0x81, 0xa1, 'a', 0xc0}
	for i := 0; i < depth; i++ {
		inner = append(append([]byte{0x81}, inner...), 0xc0)
	}
	body := fbtest.AppendKV(nil, fbtest.KV{"event", "E_BOMB"})
	body[0]++ // one more pair: "k" and the bomb
	body = append(body, 0xa1, 'k')
	return append(body, inner...)
}

// renderFactor bounds how many bytes a line may hold per byte of the record
// it renders. The worst byte is a control byte in a string inside a map
// used as a key: \u00XX in JSON (6 bytes), its backslash escaped once more
// as part of the key's string (7), then each backslash doubled by escape
// backslash (9). Structure costs less ("false," for one byte). A line
// longer than renderFactor×input+renderSlack means rendering amplifies.
const (
	renderFactor = 12
	renderSlack  = 128 // the tag as event name, a time parameter, the newline
)

// FuzzRenderLinear: whatever the record, its line is at most renderFactor
// bytes per byte of the record (plus a constant), in every escape mode and
// with a multi-byte delimiter. A rendering that grows faster than the
// record (the key bomb doubled per level) fails here, not only a panic.
func FuzzRenderLinear(f *testing.F) {
	f.Add(keyBomb(30), uint8(0))
	f.Add(keyBomb(10), uint8(1))
	f.Add(keyBomb(200), uint8(2))
	f.Add(fbtest.AppendKV(nil, fbtest.KV{"event", "E", "m", fbtest.KV{fbtest.KV{"\x01\"", []any{false, nil}}, 1}}), uint8(3))
	f.Add(fbtest.AppendKV(nil, fbtest.KV{"e", []any{false, false, nil, true, 0, -1}}), uint8(5))
	f.Add(fbtest.AppendKV(nil, fbtest.KV{"s", "\x00\x01\x02\"\\,||\r\n"}), uint8(7))
	// Control bytes inside a map used as a key: nine bytes a byte under
	// escape backslash (mode 4), the JSON made a string and escaped where
	// it lies; csv (mode 6) quotes it there.
	escKey := fbtest.AppendKV(nil, fbtest.KV{"event", "E", "m", fbtest.KV{fbtest.KV{"k", strings.Repeat("\x01", 4096) + "\",\n"}, []any{false, "\""}}})
	f.Add(escKey, uint8(4))
	f.Add(escKey, uint8(5))
	f.Add(escKey, uint8(6))
	dir := f.TempDir()
	var encs []*flatstore.Encoder
	for _, esc := range []string{"opensips", "none", "backslash", "csv"} {
		for _, d := range []string{",", "||"} {
			if esc == "csv" && d != "," {
				d = ";"
			}
			cfg, err := flatstore.ParseConfig(flatstore.MapGetter{"path": dir + "/e.log", "escape": esc,
				"delimiter": d, "time_format": "rfc3339_nano"})
			if err != nil {
				f.Fatal(err)
			}
			encs = append(encs, flatstore.NewEncoder(cfg))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		enc := encs[int(mode)%len(encs)]
		line, rest, _, err := enc.AppendLine(nil, t0, body, []byte("tag"))
		if err != nil {
			// A small record is never too large: that would be amplification
			// stopped by the line limit.
			if strings.HasSuffix(err.Error(), flatstore.DropTooLarge) && renderFactor*len(body)+renderSlack < flatstore.MaxLineBytes {
				t.Fatalf("a record of %d bytes was too large to render", len(body))
			}
			return // skipped records write nothing
		}
		used := len(body) - len(rest)
		if max := renderFactor*used + renderSlack; len(line) > max {
			t.Fatalf("a record of %d bytes rendered %d bytes (more than %d×%d+%d): %q",
				used, len(line), renderFactor, used, renderSlack, line)
		}
	})
}

// opensipsRef is escape opensips written the plainest way, a byte at a
// time: CR and LF become a space; with escDelim, each whole delimiter
// becomes escDelim and a lone first byte of it stays; without, every first
// byte of the delimiter becomes a space.
func opensipsRef(v, delim, escDelim string) string {
	var out []byte
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\r' || c == '\n':
			out = append(out, ' ')
		case c != delim[0]:
			out = append(out, c)
		case escDelim == "":
			out = append(out, ' ')
		case strings.HasPrefix(v[i:], delim):
			out = append(out, escDelim...)
			i += len(delim) - 1
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// FuzzEscapeOpenSIPS: the encoder's escape opensips (clean runs found
// eight bytes at a time and copied whole) writes what the plain reference
// does, for every delimiter and escape_delimiter.
func FuzzEscapeOpenSIPS(f *testing.F) {
	f.Add("a,b,,c", uint8(0), false)
	f.Add("line1\nline2\r\n,", uint8(0), true)
	f.Add("x||y|z|", uint8(4), true)
	f.Add(strings.Repeat("abcdefg,", 9)+"\n", uint8(1), false)
	f.Add("::a:", uint8(3), true)
	delims := []struct{ d, esc string }{{",", ";"}, {"|", "/"}, {"\t", " "}, {"::", "__"}, {"||", "!!"}, {"ab", "xy"}}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, v string, which uint8, withEsc bool) {
		d := delims[int(which)%len(delims)]
		esc := ""
		if withEsc {
			esc = d.esc
		}
		cfg, err := flatstore.ParseConfig(flatstore.MapGetter{
			"path": dir + "/e.log", "delimiter": d.d, "escape_delimiter": esc, "suppress_event_name": "true",
		})
		if err != nil {
			t.Fatal(err)
		}
		line, _, _, err := flatstore.NewEncoder(cfg).AppendLine(nil, t0, fbtest.AppendKV(nil, fbtest.KV{"v", v}), []byte("tag"))
		if err != nil {
			if len(v) > flatstore.MaxLineBytes-1 {
				return
			}
			t.Fatalf("AppendLine(%q): %v", v, err)
		}
		if got, want := string(line), opensipsRef(v, d.d, esc)+"\n"; got != want {
			t.Fatalf("delimiter %q escape_delimiter %q: value %q\n got %q\nwant %q", d.d, esc, v, got, want)
		}
	})
}

// FuzzOwnership: whatever tag and values a record carries, a template
// output never writes into the configured file of the output beside it in
// the same directory, nor into its rotated names, nor anywhere outside its
// directory: audit.log keeps exactly its bytes, and the sibling directory
// stays empty.
func FuzzOwnership(f *testing.F) {
	for _, s := range []string{"audit.log", "audit.log.1", "audit.log.20261206-000000", "audit.log.gz", ".flatstore",
		".audit.log.flatstore", "../outside/x", "..", ".", "/etc/passwd", "audit.log/..", "ok"} {
		f.Add(s, s)
	}
	root := f.TempDir()
	dir, outside := filepath.Join(root, "logs"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	audit := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(audit, []byte("PRE\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	proc := flatstore.NewProcess()
	log := logger.New("fuzz", logger.NewWriterSink(io.Discard, logger.LevelDebug))
	newOut := func(kv ...string) *flatstore.Instance {
		g := flatstore.MapGetter{"control_listen": "off", "idle_timeout": "0", "rotate_max_files": "2", "rotate_count": "1000000"}
		for i := 0; i+1 < len(kv); i += 2 {
			g[kv[i]] = kv[i+1]
		}
		cfg, err := flatstore.ParseConfig(g)
		if err != nil {
			f.Fatal(err)
		}
		in, err := flatstore.NewInstance(proc, cfg, "fuzz", log)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(in.Close)
		return in
	}
	newOut("path", audit)
	tmpl := newOut("path", filepath.Join(dir, "$TAG"), "max_dynamic_files", "0")
	f.Fuzz(func(t *testing.T, tag, value string) {
		data := fbtest.Records(fbtest.Record{Body: fbtest.KV{"event", "FORGED", "v", value, "n", `{"path":"x","rotated":[{"name":"../outside/x"}]}`}})
		tmpl.Flush(data, tag)
		if got, err := os.ReadFile(audit); err != nil || string(got) != "PRE\n" {
			t.Fatalf("tag %q: audit.log holds %q (%v), want its own bytes", tag, got, err)
		}
		if ents, err := os.ReadDir(outside); err != nil || len(ents) != 0 {
			t.Fatalf("tag %q: %d files appeared outside the directory (%v)", tag, len(ents), err)
		}
	})
}
