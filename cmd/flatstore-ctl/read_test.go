package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// read runs flatstore-ctl read in-process with stdin.
func read(t testing.TB, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"read"}, args...), stdin, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// member is one name and value of a JSON object, in order.
type member struct {
	name  string
	value any // string, or []string for "params"
}

// decodeObject reads one JSON object keeping its members' order; every
// value must be a string, or an array of strings.
func decodeObject(line string) ([]member, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %q", line)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			out = append(out, member{name, s})
			continue
		}
		var a []string
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("member %q is neither a string nor an array of strings: %s", name, raw)
		}
		if a == nil {
			a = []string{}
		}
		out = append(out, member{name, a})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more after the object: %q", line)
	}
	return out, nil
}

func outputLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// writerConfig is the core's Config for settings (as the plugin parses
// its keys), writing to a file in a temp dir.
func writerConfig(t testing.TB, settings map[string]string) *flatstore.Config {
	t.Helper()
	g := flatstore.MapGetter{"path": filepath.Join(t.TempDir(), "w.log"), "control_listen": "off"}
	for k, v := range settings {
		g[k] = v
	}
	cfg, err := flatstore.ParseConfig(g)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// wantEvent is what one record should read back as.
type wantEvent struct {
	name   string
	time   event.Time
	values []string // in params order
}

// encode writes evs as the plugin writes them: records built with fbtest's
// builders, lines made by the core's encoder. A value "\x00absent" leaves
// its key out of the record (read back as "").
func encode(t testing.TB, cfg *flatstore.Config, keys []string, evs []wantEvent) []byte {
	t.Helper()
	enc := event.NewEncoder(cfg.Options)
	var out []byte
	for _, ev := range evs {
		kv := records.KV{"event", ev.name}
		for i, k := range keys {
			if ev.values[i] != "\x00absent" {
				kv = append(kv, k, ev.values[i])
			}
		}
		var err error
		if out, _, _, err = enc.AppendLine(out, ev.time, records.AppendKV(nil, kv), []byte("the.tag")); err != nil {
			t.Fatalf("AppendLine(%q): %v", kv, err)
		}
	}
	return out
}

// hostilePieces are the bytes values are made of.
var hostilePieces = []string{
	",", `"`, `\`, "\r", "\n", "\r\n", "\t", "é", "€", "日本", "😀", " ", "a", "xyz",
	`\n`, `\,`, `""`, `"a,b"`, "|", "||", "::", ";", "\x00", "\x7f", "=", "0", "-1.5",
}

func hostileValue(rng *rand.Rand) string {
	var b strings.Builder
	for n := rng.IntN(6); n > 0; n-- {
		b.WriteString(hostilePieces[rng.IntN(len(hostilePieces))])
	}
	return b.String()
}

// hostileEvents returns n events whose names and values are full of
// delimiters, quotes, backslashes, CR/LF, tabs, UTF-8 and empty values.
func hostileEvents(n, params int, seed uint64, absent bool) []wantEvent {
	rng := rand.New(rand.NewPCG(seed, 0))
	evs := make([]wantEvent, n)
	for i := range evs {
		name := "E_CALL_END"
		if rng.IntN(4) == 0 {
			name = hostileValue(rng)
		}
		vals := make([]string, params)
		for j := range vals {
			vals[j] = hostileValue(rng)
			if absent && rng.IntN(20) == 0 {
				vals[j] = "\x00absent"
			}
		}
		evs[i] = wantEvent{name: name, time: event.Time{Sec: 1700000000 + int64(i), Nsec: int64(i) * 7919}, values: vals}
	}
	return evs
}

// wantObject is the JSON object read prints for ev.
func wantObject(cfg *flatstore.Config, ev wantEvent, names []string) []member {
	var m []member
	if !cfg.SuppressEventName {
		m = append(m, member{"event", ev.name})
	}
	if cfg.TimeFormat != event.TimeNone {
		m = append(m, member{"time", timeText(cfg.TimeFormat, ev.time)})
	}
	vals := make([]string, len(ev.values))
	for i, v := range ev.values {
		if v != "\x00absent" {
			vals[i] = v
		}
	}
	if names == nil {
		return append(m, member{"params", vals})
	}
	for i, n := range names {
		m = append(m, member{n, vals[i]})
	}
	return m
}

// timeText is the record time as time_format writes it.
func timeText(f event.TimeFormat, t event.Time) string {
	tt := time.Unix(t.Sec, t.Nsec).UTC()
	switch f {
	case event.TimeUnix:
		return strconv.FormatInt(t.Sec, 10)
	case event.TimeUnixMs:
		return strconv.FormatInt(tt.UnixMilli(), 10)
	case event.TimeUnixNs:
		return strconv.FormatInt(tt.UnixNano(), 10)
	case event.TimeRFC3339:
		return tt.Format(time.RFC3339)
	case event.TimeRFC3339Nano:
		return tt.Format("2006-01-02T15:04:05.000000000Z07:00")
	}
	return ""
}

// checkObjects compares read's stdout with the events, object by object.
func checkObjects(t *testing.T, label, stdout string, cfg *flatstore.Config, evs []wantEvent, names []string) {
	t.Helper()
	lines := outputLines(stdout)
	if len(lines) != len(evs) {
		t.Fatalf("%s: %d objects, want %d", label, len(lines), len(evs))
	}
	bad := 0
	for i, line := range lines {
		got, err := decodeObject(line)
		if err != nil {
			t.Fatalf("%s: object %d: %v", label, i+1, err)
		}
		want := wantObject(cfg, evs[i], names)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: object %d:\n got %q\nwant %q", label, i+1, got, want)
			if bad++; bad > 5 {
				t.Fatalf("%s: too many differences", label)
			}
		}
	}
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zstded(t testing.TB, data []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

// TestReadRoundTrip: 10 000 hostile records written by the core's encoder
// with escape backslash and csv read back exactly, from a plain file, a
// .gz, a .zst, and standard input (plain and compressed).
func TestReadRoundTrip(t *testing.T) {
	keys := []string{"caller", "callee", "reason", "note"}
	for _, escape := range []string{"backslash", "csv"} {
		t.Run(escape, func(t *testing.T) {
			cfg := writerConfig(t, map[string]string{"escape": escape, "params": strings.Join(keys, ",")})
			evs := hostileEvents(10000, len(keys), 1, true)
			plain := encode(t, cfg, keys, evs)
			dir := t.TempDir()
			files := map[string][]byte{
				"events.log":        plain,
				"events.log.1.gz":   gzipped(t, plain),
				"events.log.2.zst":  zstded(t, plain),
				"no-suffix-but-gz":  gzipped(t, plain), // told by the magic bytes, not the name
				"no-suffix-but-zst": zstded(t, plain),
			}
			for name, data := range files {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				r := read(t, nil, "-escape", escape, "-params", strings.Join(keys, ","), p)
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("%s: exit %d, stderr:\n%s", name, r.code, r.stderr)
				}
				checkObjects(t, name, r.stdout, cfg, evs, keys)
			}
			for label, data := range map[string][]byte{"stdin": plain, "stdin.gz": files["events.log.1.gz"], "stdin.zst": files["events.log.2.zst"]} {
				r := read(t, bytes.NewReader(data), "-escape", escape, "-", "-")
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("%s: exit %d, stderr:\n%s", label, r.code, r.stderr)
				}
				checkObjects(t, label, r.stdout, cfg, evs, nil) // the second - is empty by then
			}
		})
	}
}

// TestReadFilesInOrder: files are read in the order given, each to its
// end; a file that cannot be opened is reported and the rest still read.
func TestReadFilesInOrder(t *testing.T) {
	cfg := writerConfig(t, map[string]string{"escape": "csv"})
	dir := t.TempDir()
	var args []string
	var all []wantEvent
	for i := range 3 {
		evs := hostileEvents(50, 2, uint64(10+i), false)
		all = append(all, evs...)
		p := filepath.Join(dir, fmt.Sprintf("e.%d.gz", i))
		if err := os.WriteFile(p, gzipped(t, encode(t, cfg, []string{"a", "b"}, evs)), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
		if i == 1 {
			args = append(args, filepath.Join(dir, "missing.log"))
		}
	}
	r := read(t, nil, append([]string{"-escape", "csv"}, args...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "missing.log: no such file or directory") {
		t.Fatalf("exit %d, stderr:\n%s\nwant 1 and the missing file named", r.code, r.stderr)
	}
	checkObjects(t, "3 files", r.stdout, cfg, all, nil)
}

// TestReadMultiByteDelimiters: backslash escapes keep multi-byte
// delimiters (and ones holding a backslash after their first byte)
// reversible, with the record time in the line too.
func TestReadMultiByteDelimiters(t *testing.T) {
	keys := []string{"a", "b", "c"}
	for _, d := range []string{"||", "::", "<>", "ab", "aa", ";;;", "x\\", "\t\t"} {
		cfg := writerConfig(t, map[string]string{"escape": "backslash", "delimiter": d, "time_format": "rfc3339_nano"})
		evs := hostileEvents(1000, len(keys), 2, false)
		p := fbtest.WriteFile(t, "multi.log", encode(t, cfg, keys, evs))
		r := read(t, nil, "-escape", "backslash", "-delimiter", d, "-time_format", "rfc3339_nano", "-params", "a,b,c", p)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("delimiter %q: exit %d, stderr:\n%s", d, r.code, r.stderr)
		}
		checkObjects(t, fmt.Sprintf("delimiter %q", d), r.stdout, cfg, evs, keys)
	}
}

// TestReadTimeAndSuppress: time_format puts "time" after the event;
// suppress_event_name leaves "event" out; both with and without names.
func TestReadTimeAndSuppress(t *testing.T) {
	keys := []string{"x", "y"}
	for _, tc := range []struct {
		escape, timeFormat string
		suppress, named    bool
	}{
		{"csv", "unix", false, true},
		{"csv", "unix_ms", true, true},
		{"backslash", "unix_ns", true, false},
		{"backslash", "rfc3339", false, false},
		{"csv", "rfc3339_nano", true, false},
		{"backslash", "none", true, true},
		{"csv", "none", true, false},
	} {
		label := fmt.Sprintf("%s/%s/suppress=%v/named=%v", tc.escape, tc.timeFormat, tc.suppress, tc.named)
		settings := map[string]string{"escape": tc.escape, "time_format": tc.timeFormat, "suppress_event_name": strconv.FormatBool(tc.suppress)}
		cfg := writerConfig(t, settings)
		evs := hostileEvents(300, len(keys), 3, false)
		p := fbtest.WriteFile(t, "t.log", encode(t, cfg, keys, evs))
		args := []string{"-escape", tc.escape, "-time_format", tc.timeFormat}
		var names []string
		if tc.named {
			args = append(args, "-params", "x,y")
			names = keys
		}
		if tc.suppress {
			args = append(args, "-suppress_event_name")
		}
		r := read(t, nil, append(args, p)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr:\n%s", label, r.code, r.stderr)
		}
		checkObjects(t, label, r.stdout, cfg, evs, names)
	}
	// The shape, spelled out.
	cfg := writerConfig(t, map[string]string{"escape": "csv", "time_format": "unix"})
	p := fbtest.WriteFile(t, "shape.log", encode(t, cfg, keys, []wantEvent{{name: "E", time: event.Time{Sec: 5}, values: []string{"1", "b,c"}}}))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-params", "x,y"}, `{"event":"E","time":"5","x":"1","y":"b,c"}`},
		{nil, `{"event":"E","time":"5","params":["1","b,c"]}`},
	} {
		r := read(t, nil, append(append([]string{"-escape", "csv", "-time_format", "unix"}, tc.args...), p)...)
		if r.code != 0 || r.stdout != tc.want+"\n" {
			t.Errorf("%v: exit %d, stdout %q, want %q; stderr:\n%s", tc.args, r.code, r.stdout, tc.want, r.stderr)
		}
	}
	r := read(t, nil, "-escape", "csv", "-suppress_event_name", "-params", "x,y", fbtest.WriteFile(t, "s.log", []byte("1,\"b,c\"\n")))
	if want := `{"x":"1","y":"b,c"}` + "\n"; r.code != 0 || r.stdout != want {
		t.Errorf("suppress_event_name: exit %d, stdout %q, want %q", r.code, r.stdout, want)
	}
}

// reports counts the reports about lines of file: FILE:LINE: or
// FILE:FIRST-LAST: at the start of a line of stderr.
func reports(stderr, file string) int {
	return len(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(file)+`:\d+(?:-\d+)?: `).FindAllStringIndex(stderr, -1))
}

// TestReadBadLines: each line that the settings could not have written is
// reported with its file and line, the others are printed, and the exit
// status is 1.
func TestReadBadLines(t *testing.T) {
	for _, tc := range []struct {
		escape string
		params string
		in     string
		good   []string // the objects printed
		bad    []string // the reports, "LINE: text"
	}{
		{"backslash", "", "E,a\\,b\nE,trailing\\\nE,bad\\x\nE,raw\rcr\nE,ok\\n\n", []string{
			`{"event":"E","params":["a,b"]}`, `{"event":"E","params":["ok\n"]}`,
		}, []string{"2: not a line that escape backslash writes", "3: not a line", "4: not a line"}},
		{"backslash", "a,b", "E,1,2\nE,1\nE,1,2,3\n", []string{`{"event":"E","a":"1","b":"2"}`},
			[]string{"2: 2 fields, want 3 (event, a, b)", "3: 4 fields, want 3"}},
		{"csv", "", "E,\"a\nb\",c\nE,x\"y\nE,\"q\"z\nE,\"ok\"\"\"\nE,\"open\n", []string{
			`{"event":"E","params":["a\nb","c"]}`, `{"event":"E","params":["ok\""]}`,
		}, []string{"3: not a line that escape csv writes (a quote out of place)", "4: not a line", "6: a quoted value is not closed"}},
		{"csv", "", "E,\xff\xfe,ok\n", []string{`{"event":"E","params":["\ufffd\ufffd","ok"]}`},
			[]string{"1: a value is not UTF-8"}},
	} {
		p := fbtest.WriteFile(t, "bad.log", []byte(tc.in))
		args := []string{"-escape", tc.escape}
		if tc.params != "" {
			args = append(args, "-params", tc.params)
		}
		r := read(t, nil, append(args, p)...)
		if r.code != 1 {
			t.Errorf("%q: exit %d, want 1; stderr:\n%s", tc.in, r.code, r.stderr)
		}
		if got := outputLines(r.stdout); strings.Join(got, "\n") != strings.Join(tc.good, "\n") {
			t.Errorf("%q: stdout\n%s\nwant\n%s", tc.in, r.stdout, strings.Join(tc.good, "\n"))
		}
		if n := reports(r.stderr, p); n != len(tc.bad) {
			t.Errorf("%q: %d reports, want %d:\n%s", tc.in, n, len(tc.bad), r.stderr)
		}
		for _, b := range tc.bad {
			if !strings.Contains(r.stderr, p+":"+b) {
				t.Errorf("%q: stderr lacks %q:\n%s", tc.in, p+":"+b, r.stderr)
			}
		}
		if !strings.Contains(r.stderr, fmt.Sprintf("read: %d of ", len(tc.bad))) {
			t.Errorf("%q: no summary of %d lines not read back:\n%s", tc.in, len(tc.bad), r.stderr)
		}
	}
}

// TestReadBrokenInput: a truncated gzip, a zstd stream with garbage and a
// line over the plugin's 64 MiB limit are reported; what could be read was
// printed, and reading goes on with the next line or file.
func TestReadBrokenInput(t *testing.T) {
	cfg := writerConfig(t, map[string]string{"escape": "csv"})
	evs := hostileEvents(2000, 2, 4, false)
	plain := encode(t, cfg, []string{"a", "b"}, evs)
	gz := gzipped(t, plain)
	cut := fbtest.WriteFile(t, "cut.gz", gz[:len(gz)/2])
	zs := fbtest.WriteFile(t, "junk.zst", append(zstded(t, plain), 0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3))
	good := fbtest.WriteFile(t, "good.log", plain[:bytes.IndexByte(plain, '\n')+1])
	r := read(t, nil, "-escape", "csv", cut, zs, good)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "cut.gz:") || !strings.Contains(r.stderr, "unexpected EOF") {
		t.Errorf("the cut gzip is not reported:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "junk.zst:") {
		t.Errorf("the zstd garbage is not reported:\n%s", r.stderr)
	}
	lines := outputLines(r.stdout)
	if n := len(lines); n < 2000+1 || n > 2000+2000+1 {
		t.Errorf("%d objects printed, want the whole zstd file, part of the gzip and the good file", n)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, `{"event":`) {
		t.Errorf("the good file after the broken ones was not read: last object %q", last)
	}

	// A line one byte over the limit, streamed (never held whole), then a
	// good one.
	long := io.MultiReader(strings.NewReader("E,"), &repeatReader{b: 'x', n: event.MaxLineBytes - 2}, strings.NewReader("\nE,ok\n"))
	r = read(t, long, "-escape", "none", "-")
	if r.code != 1 || r.stdout != `{"event":"E","params":["ok"]}`+"\n" || !strings.Contains(r.stderr, "(stdin):1: longer than the plugin's line limit (64 MiB)") {
		t.Errorf("long line: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// At the limit exactly (with its newline), it is read.
	atLimit := io.MultiReader(strings.NewReader("E,"), &repeatReader{b: 'x', n: event.MaxLineBytes - 3}, strings.NewReader("\n"))
	r = read(t, atLimit, "-escape", "none", "-")
	if r.code != 0 || len(r.stdout) != event.MaxLineBytes-3+len(`{"event":"E","params":[""]}`+"\n") {
		t.Errorf("line at the limit: exit %d, %d bytes out, stderr:\n%s", r.code, len(r.stdout), r.stderr)
	}
}

// repeatReader reads n times the byte b.
type repeatReader struct {
	b     byte
	n     int
	block []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	if r.block == nil {
		r.block = bytes.Repeat([]byte{r.b}, 64<<10)
	}
	n := copy(p[:min(len(p), r.n)], r.block)
	r.n -= n
	return n, nil
}

// TestReadIrreversible: the other escapes are split at the delimiter, with
// one warning; a last line without a newline is read with a warning.
func TestReadIrreversible(t *testing.T) {
	p := fbtest.WriteFile(t, "o.log", []byte("E,a b,c\nE,x\nE,last"))
	r := read(t, nil, p, p)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "escape opensips is not reversible"); n != 1 {
		t.Errorf("%d warnings about escape opensips, want 1:\n%s", n, r.stderr)
	}
	if n := strings.Count(r.stderr, "o.log:3: the last line has no newline"); n != 2 {
		t.Errorf("%d warnings about the last line, want 2 (one a file):\n%s", n, r.stderr)
	}
	want := strings.Repeat(`{"event":"E","params":["a b","c"]}`+"\n"+`{"event":"E","params":["x"]}`+"\n"+`{"event":"E","params":["last"]}`+"\n", 2)
	if r.stdout != want {
		t.Errorf("stdout\n%s\nwant\n%s", r.stdout, want)
	}
	r = read(t, strings.NewReader("E;a;b\n"), "-escape", "none", "-delimiter", "semicolon", "-")
	if r.code != 0 || r.stdout != `{"event":"E","params":["a","b"]}`+"\n" || !strings.Contains(r.stderr, "escape none is not reversible") {
		t.Errorf("escape none: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// A delimiter that starts with n or r cannot be read back under escape
	// backslash (\n is also a newline): the settings are refused, as the
	// plugin refuses them.
	r = read(t, strings.NewReader("EnAn\\n\n"), "-escape", "backslash", "-delimiter", "n", "-")
	if r.code != 2 || !strings.Contains(r.stderr, "cannot use a delimiter that starts with n or r") {
		t.Errorf("delimiter n with backslash: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestReadHeader: the header the plugin writes first into each file is
// skipped there, and only there.
func TestReadHeader(t *testing.T) {
	cfg := writerConfig(t, map[string]string{"escape": "csv", "header": "auto", "params": "a,b", "time_format": "unix"})
	body := encode(t, cfg, []string{"a", "b"}, []wantEvent{{name: "E", values: []string{"1", "2"}}})
	data := append(append(event.HeaderLine(cfg.Options), '\n'), body...)
	data = append(data, append(event.HeaderLine(cfg.Options), '\n')...)
	p := fbtest.WriteFile(t, "h.log", data)
	r := read(t, nil, "-escape", "csv", "-header", "auto", "-params", "a,b", "-time_format", "unix", p)
	want := `{"event":"E","time":"0","a":"1","b":"2"}` + "\n" + `{"event":"event","time":"time","a":"a","b":"b"}` + "\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d, stdout\n%s\nwant\n%s\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
}

// TestReadUsage: usage errors exit 2 and say what is wrong.
func TestReadUsage(t *testing.T) {
	p := fbtest.WriteFile(t, "u.log", []byte("E\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no FILE (give - for standard input)"},
		{[]string{"-escape", "rot13", p}, `escape "rot13": must be one of opensips, opensips_exact, none, backslash, csv`},
		{[]string{"-escape", "csv", "-delimiter", "||", p}, "escape csv needs a single-byte delimiter"},
		{[]string{"-time_format", "iso", p}, `time_format "iso"`},
		{[]string{"-params", "a,,b", p}, `params "a,,b"`},
		{[]string{"-output", "x", p}, "-output needs -config"},
		{[]string{"-nope", p}, "flag provided but not defined: -nope"},
		{[]string{"-params", "event,b", p}, `"event" is the event name's member`},
		{[]string{"-params", "time,b", "-time_format", "unix", p}, `"time" is the record time's member`},
		{[]string{"-config", filepath.Join(t.TempDir(), "none.conf"), p}, "no such file"},
	} {
		r := read(t, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	// Names that collide only when that member exists are fine.
	if r := read(t, nil, "-params", "event", "-suppress_event_name", p); r.code != 0 || r.stdout != `{"event":"E"}`+"\n" {
		t.Errorf("-params event with suppress_event_name: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r := read(t, nil, "-h")
	for _, want := range []string{"-config", "-output", "-escape", "-suppress_event_name", "Every value is a JSON", "Exit status"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("read -h: exit %d, no %q in:\n%s", r.code, want, r.stdout)
		}
	}
	r = ctl(t, nil, "-h")
	if !strings.Contains(r.stdout, "read    print the events") {
		t.Errorf("flatstore-ctl -h does not list read:\n%s", r.stdout)
	}
}

// commaBomb is a gzip file of "E,a\n", one line of n commas, and "E,b\n":
// about 61 KB for 60 MiB, written without holding the line.
func commaBomb(t testing.TB, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	commas := bytes.Repeat([]byte{','}, 1<<20)
	w.Write([]byte("E,a\n"))
	for n > 0 {
		k := min(n, len(commas))
		w.Write(commas[:k])
		n -= k
	}
	w.Write([]byte("\nE,b\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReadCommaBomb: a .gz of 61 KB holding one line of 60 MiB of commas
// took 4 GB and 14.6 s (sixty million fields held at once, then their
// JSON). The command reads it in bounded memory: the line is reported
// (its JSON would pass 128 MiB) and skipped, the lines before and after it
// are printed exactly, the exit status is 1, and the process's peak RSS
// (VmHWM, read while it waits on standard input after the file) stays
// under 256 MiB.
func TestReadCommaBomb(t *testing.T) {
	gz := commaBomb(t, 60<<20)
	t.Logf("the .gz is %d bytes", len(gz))
	dir := t.TempDir()
	file := filepath.Join(dir, "bomb.log.gz")
	if err := os.WriteFile(file, gz, 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "flatstore-ctl")
	if err := os.Symlink(self, ctl); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ctl, "read", file, "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// The report of line 2 comes once the line has been walked; the
	// process then waits on standard input until it is closed.
	var stderr strings.Builder
	sc := bufio.NewScanner(stderrPipe)
	hwm := int64(-1)
	for sc.Scan() {
		stderr.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), file+":2: ") && hwm < 0 {
			hwm = vmHWM(t, cmd.Process.Pid)
			stdin.Close()
		}
	}
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code != 1 {
		t.Errorf("exit %d (%v), want 1; stderr:\n%s", code, err, stderr.String())
	}
	if want := "{\"event\":\"E\",\"params\":[\"a\"]}\n{\"event\":\"E\",\"params\":[\"b\"]}\n"; stdout.String() != want {
		t.Errorf("stdout %.300q, want %q", stdout.String(), want)
	}
	for _, want := range []string{
		file + ":2: its JSON would pass the reader's limit of 128 MiB a line",
		"flatstore-ctl: read: 1 of 3 lines not read back",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
	t.Logf("VmHWM %d KiB while waiting on stdin; rusage maxrss %d KiB (may hold the parent's, from vfork)",
		hwm, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	if hwm <= 0 || (hwm > 256<<10 && !raceEnabled) {
		t.Errorf("peak RSS %d KiB, want under 256 MiB", hwm)
	}
}

// vmHWM is a live process's peak resident memory in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestReadBombBound: a decompressed stream ends with errBomb once it has
// given bombRatio bytes for each byte of the file plus bombFree, and not
// before.
func TestReadBombBound(t *testing.T) {
	cr := &countReader{r: bytes.NewReader(make([]byte, 1000))}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, &bombGuard{r: zeros{}, in: cr})
	if err != errBomb {
		t.Fatalf("err %v, want errBomb", err)
	}
	if limit := int64(bombRatio*1000 + bombFree); n <= limit || n > limit+64<<10 {
		t.Errorf("stopped after %d bytes, want just past %d", n, limit)
	}
}
