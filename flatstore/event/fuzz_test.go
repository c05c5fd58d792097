package event_test

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/records"
)

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
	f.Fuzz(func(t *testing.T, ev, a, b, c string, mode, delim uint8, suppress bool) {
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
		body := records.AppendKV(nil, records.KV{"event", ev, "a", a, "b", b, "c", c})
		line, rest, _, err := event.NewEncoder(cfg.Options).AppendLine(nil, t0, body, []byte("tag"))
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
		want := []string{ev, a, b, c}
		if timeText != "" {
			want = []string{ev, timeText, a, b, c}
		}
		if suppress {
			want = want[1:]
		}
		fields, err := event.Split(cfg.Options, line)
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

// FuzzTemplate: whatever the tag, event, record values and record time, a
// rendered path has the template's components, none of them "." or "..",
// inside StaticDir.
func FuzzTemplate(f *testing.F) {
	f.Add("", uint8(0), ".", uint8(3), "", "../../etc/x", "a/../../b", "..", []byte{0x80})
	f.Add("x", uint8(1), "", uint8(4), ".log", "a..b.c", ".", "/", []byte{0x81, 0xa1, 'k', 0xc1})
	f.Add(".", uint8(2), ".", uint8(5), ".", "", "", "", []byte{})
	f.Add("..", uint8(6), "..", uint8(0), "..", "..", "...", "\x00", []byte{0xde, 0xff})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, a string, s1 uint8, b string, s2 uint8, c, tag, val, ev string, garbage []byte) {
		clean := func(s string) string {
			return strings.NewReplacer("/", "", "$", "", "\x00", "", "[", "", "%", "").Replace(s)
		}
		tmpl := dir + "/" + clean(a) + templateSubs[int(s1)%len(templateSubs)] + clean(b) +
			"/" + templateSubs[int(s2)%len(templateSubs)] + clean(c)
		tp, err := event.ParseTemplate(tmpl, time.FixedZone("", -3*3600-1800))
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tmpl, err)
		}
		if tp.StaticDir() != dir {
			t.Fatalf("ParseTemplate(%q).StaticDir() = %q, want %q", tmpl, tp.StaticDir(), dir)
		}
		body := records.AppendKV(nil, records.KV{"k", val, "m", records.KV{"s", val}, "call-id", val})
		var at event.Time // any time, the first bytes of garbage
		if len(garbage) >= 8 {
			at.Sec = int64(binary.BigEndian.Uint64(garbage))
		}
		got := string(tp.Render(nil, []byte(tag), []byte(ev), body, at, nil))
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
		tp.Render(nil, []byte(tag), []byte(ev), garbage, event.Time{}, nil)
		if tp2, err := event.ParseTemplate(a+b+c, nil); err == nil {
			tp2.Render(nil, []byte(tag), []byte(ev), garbage, event.Time{}, nil)
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
		line, _, _, err := event.NewEncoder(cfg.Options).AppendLine(nil, t0, records.AppendKV(nil, records.KV{"v", v}), []byte("tag"))
		if err != nil {
			if len(v) > event.MaxLineBytes-1 {
				return
			}
			t.Fatalf("AppendLine(%q): %v", v, err)
		}
		if got, want := string(line), opensipsRef(v, d.d, esc)+"\n"; got != want {
			t.Fatalf("delimiter %q escape_delimiter %q: value %q\n got %q\nwant %q", d.d, esc, v, got, want)
		}
	})
}

// roundTripDelims are the delimiters FuzzLineRoundTrip picks from.
var roundTripDelims = []string{",", ";", "\t", " ", "|", "a", "||", "::", "ab", "aa", "<>", "x\\", "-", ":", ".", "0", "n", "r"}

// templateSubs are the substitutions FuzzTemplate places in a path.
var templateSubs = []string{"$TAG", "$TAG[1]", "$EVENT", "$k", "$m['s']", "$call-id", "$k['x']",
	"%Y-%m-%d", "%F_%T%z", "%s", "%e%b%j%%%y%H%M%S"}
