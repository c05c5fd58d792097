package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// canonMsgpack renders one msgpack value in a canonical text form, keys in
// the order the bytes hold them.
func canonMsgpack(t *testing.T, b []byte) (string, []byte) {
	t.Helper()
	var err error
	switch msgp.NextType(b) {
	case msgp.StrType:
		var s string
		s, b, err = msgp.ReadStringBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Quote(s), b
	case msgp.IntType, msgp.UintType:
		var i int64
		i, b, err = msgp.ReadInt64Bytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return "i" + strconv.FormatInt(i, 10), b
	case msgp.Float64Type:
		var f float64
		f, b, err = msgp.ReadFloat64Bytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return "f" + strconv.FormatFloat(f, 'g', -1, 64), b
	case msgp.BoolType:
		var v bool
		v, b, err = msgp.ReadBoolBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatBool(v), b
	case msgp.NilType:
		b, err = msgp.ReadNilBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return "null", b
	case msgp.MapType:
		var n uint32
		n, b, err = msgp.ReadMapHeaderBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, n)
		for i := range parts {
			var k, v string
			k, b = canonMsgpack(t, b)
			v, b = canonMsgpack(t, b)
			parts[i] = k + ":" + v
		}
		return "{" + strings.Join(parts, ",") + "}", b
	case msgp.ArrayType:
		var n uint32
		n, b, err = msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, n)
		for i := range parts {
			parts[i], b = canonMsgpack(t, b)
		}
		return "[" + strings.Join(parts, ",") + "]", b
	}
	t.Fatalf("unexpected msgpack type %v", msgp.NextType(b))
	return "", nil
}

// canonJSON renders the next JSON value of d in the same form, keys in the
// order of the text.
func canonJSON(t *testing.T, d *json.Decoder) string {
	t.Helper()
	tok, err := d.Token()
	if err != nil {
		t.Fatal(err)
	}
	switch v := tok.(type) {
	case json.Delim:
		var parts []string
		switch v {
		case '{':
			for d.More() {
				k, err := d.Token()
				if err != nil {
					t.Fatal(err)
				}
				parts = append(parts, strconv.Quote(k.(string))+":"+canonJSON(t, d))
			}
			d.Token()
			return "{" + strings.Join(parts, ",") + "}"
		case '[':
			for d.More() {
				parts = append(parts, canonJSON(t, d))
			}
			d.Token()
			return "[" + strings.Join(parts, ",") + "]"
		}
	case string:
		return strconv.Quote(v)
	case json.Number:
		// As Fluent Bit's JSON parser: a number with '.' or an exponent is
		// a float, any other an integer.
		if strings.ContainsAny(string(v), ".eE") {
			f, err := v.Float64()
			if err != nil {
				t.Fatal(err)
			}
			return "f" + strconv.FormatFloat(f, 'g', -1, 64)
		}
		i, err := v.Int64()
		if err != nil {
			t.Fatal(err)
		}
		return "i" + strconv.FormatInt(i, 10)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	}
	t.Fatalf("unexpected JSON token %v", tok)
	return ""
}

// The two files hold the same events, keys in the same order, and the
// msgpack records have Fluent Bit's shape [[EventTime, {}], body].
func TestMsgpackAndJSONHoldTheSameEvents(t *testing.T) {
	dir := t.TempDir()
	mp, jl := filepath.Join(dir, "e.msgpack"), filepath.Join(dir, "e.jsonl")
	const n = 3000
	counts, err := writeEvents(n, 7, mp, jl, func(string, []byte) {})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(mp)
	if err != nil {
		t.Fatal(err)
	}
	jf, err := os.Open(jl)
	if err != nil {
		t.Fatal(err)
	}
	defer jf.Close()
	sc := bufio.NewScanner(jf)
	sc.Buffer(nil, 1<<20)

	var prev uint64
	seen := map[string]int{}
	kinds := map[string]bool{}
	for i := 0; i < n; i++ {
		// [[ext 0 (8 bytes), {}], body]
		sz, rest, err := msgp.ReadArrayHeaderBytes(mb)
		if err != nil || sz != 2 {
			t.Fatalf("record %d: outer array of %d: %v", i, sz, err)
		}
		sz, rest, err = msgp.ReadArrayHeaderBytes(rest)
		if err != nil || sz != 2 {
			t.Fatalf("record %d: header array of %d: %v", i, sz, err)
		}
		if len(rest) < 10 || rest[0] != 0xd7 || rest[1] != 0x00 {
			t.Fatalf("record %d: time is not fixext8 type 0: % x", i, rest[:min(len(rest), 10)])
		}
		ts := uint64(binary.BigEndian.Uint32(rest[2:6]))*1e9 + uint64(binary.BigEndian.Uint32(rest[6:10]))
		if binary.BigEndian.Uint32(rest[6:10]) >= 1e9 || ts <= prev {
			t.Fatalf("record %d: time %d not after %d, or nanoseconds out of range", i, ts, prev)
		}
		prev = ts
		rest = rest[10:]
		msz, rest, err := msgp.ReadMapHeaderBytes(rest)
		if err != nil || msz != 0 {
			t.Fatalf("record %d: metadata map of %d: %v", i, msz, err)
		}
		var fromMsgpack string
		fromMsgpack, mb = canonMsgpack(t, rest)

		if !sc.Scan() {
			t.Fatalf("events.jsonl ends at line %d: %v", i+1, sc.Err())
		}
		line := sc.Bytes()
		if !json.Valid(line) {
			t.Fatalf("line %d is not JSON: %s", i+1, line)
		}
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		fromJSON := canonJSON(t, d)
		if fromMsgpack != fromJSON {
			t.Fatalf("record %d differs:\nmsgpack %s\njson    %s", i, fromMsgpack, fromJSON)
		}
		ev := strings.SplitN(strings.TrimPrefix(fromJSON, `{"event":`), ",", 2)[0]
		ev, _ = strconv.Unquote(ev)
		seen[ev]++
		for _, k := range []string{`"codecs":[`, `"extra":{`, `:null`, `:true`, `:false`, `"duration":f`, "\\n", "€", "日本", "Busy Here, try later"} {
			if strings.Contains(fromJSON, k) {
				kinds[k] = true
			}
		}
	}
	if len(mb) != 0 {
		t.Errorf("%d bytes after the last record", len(mb))
	}
	if sc.Scan() {
		t.Errorf("events.jsonl has more than %d lines", n)
	}
	if fmt.Sprint(seen) != fmt.Sprint(counts) {
		t.Errorf("events %v, writeEvents counted %v", seen, counts)
	}
	if len(counts) < 5 {
		t.Errorf("only %d event types: %v", len(counts), counts)
	}
	// The stream has every kind of value the demo promises.
	for _, k := range []string{`"codecs":[`, `"extra":{`, `:null`, `:true`, `:false`, `"duration":f`, "\\n", "€", "日本", "Busy Here, try later"} {
		if !kinds[k] {
			t.Errorf("no event holds %s", k)
		}
	}
}

func TestSameSeedSameEvents(t *testing.T) {
	dir := t.TempDir()
	sum := func(seed uint64, name string) []byte {
		p := filepath.Join(dir, name)
		if _, err := writeEvents(500, seed, p, p+".jsonl", func(string, []byte) {}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := sum(1, "a"), sum(1, "b"), sum(2, "c")
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different events")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same events")
	}
}

func TestClearDirRefusesTheWorkingDirectory(t *testing.T) {
	cwd := t.TempDir()
	for _, d := range []string{"/", cwd, filepath.Dir(cwd)} {
		if err := clearDir(d, cwd); err == nil {
			t.Errorf("clearDir(%q) with cwd %q: no error", d, cwd)
		}
	}
	out := filepath.Join(cwd, "out")
	if err := os.MkdirAll(filepath.Join(out, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clearDir(out, cwd); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("%s not emptied: %v", out, ents)
	}
}

// With a Fluent Bit, the demo runs it on the classic configuration, in the
// data directory, loading the .so with -e (the configuration names none), with
// the variables the configuration reads, and writes no plugins.conf. A
// stand-in records what it was given.
func TestRunsFluentBitAsConfigured(t *testing.T) {
	dir := t.TempDir()
	seen := filepath.Join(dir, "seen")
	fake := filepath.Join(dir, "fluent-bit")
	script := "#!/bin/sh\n{ echo \"args=$*\"; echo \"pwd=$(pwd)\"; " +
		"echo \"out=$FLATSTORE_OUT\"; echo \"in=$FLATSTORE_DEMO_IN\"; echo \"eof=$FLATSTORE_EXIT_ON_EOF\"; } > " + seen + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLUENT_BIT", fake)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	o := options{n: 10, so: "/x/out_flatstore.so", host: "/nonexistent", conf: filepath.Join(root, "conf", "fluent-bit.conf"),
		out: filepath.Join(dir, "out"), data: filepath.Join(dir, "data"), workers: -1, engine: "auto"}
	var report bytes.Buffer
	err = run(o, &report)
	// The stand-in wrote nothing: the report says so.
	if err != nil || !strings.Contains(report.String(), "1 files, 0 lines for 10 records") {
		t.Errorf("run with a Fluent Bit that wrote nothing: err %v\n%s", err, report.String())
	}
	b, rerr := os.ReadFile(seen)
	if rerr != nil {
		t.Fatalf("the stand-in did not run: %v\n%s", rerr, report.String())
	}
	for _, want := range []string{
		"args=-e /x/out_flatstore.so -c " + o.conf,
		"pwd=" + o.data,
		"out=" + o.out,
		"in=" + filepath.Join(o.data, "events.jsonl"),
		"eof=on",
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("the stand-in saw:\n%s\nwant a line %q", b, want)
		}
	}
	if _, err := os.Stat(filepath.Join(o.data, "plugins.conf")); !os.IsNotExist(err) {
		t.Errorf("the demo wrote %s/plugins.conf (stat: %v): -e loads the plugin", o.data, err)
	}
	// The last line says what is left on disk and how to remove it.
	if !regexp.MustCompile(`\nleft on disk: [0-9.]+ (B|KiB|MiB) \(.*events\.msgpack.*events\.jsonl.*\); remove them with rm -r \S+`).MatchString(report.String()) {
		t.Errorf("the report does not end with what is left on disk:\n%s", report.String())
	}
}

// The "running" line shows the arguments as the engine reads them: each ${VAR}
// expanded from the environment it runs with, quoted for a shell.
func TestCommandLineExpandsVariables(t *testing.T) {
	env := []string{"FLATSTORE_OUT=/old", "FLATSTORE_OUT=/tmp/demo out", "FLATSTORE_CONTROL=unix:/d/c.sock"}
	got := commandLine("build/flbhost", env, []string{"-p", "path=flatstore:${FLATSTORE_OUT}/events.log",
		"-p", "path=${FLATSTORE_OUT}/by-event/$EVENT.log", "-p", "control_listen=${FLATSTORE_CONTROL}", "-p", "x=${UNSET:-d}"})
	want := `build/flbhost -p 'path=flatstore:/tmp/demo out/events.log' -p 'path=/tmp/demo out/by-event/$EVENT.log' ` +
		`-p control_listen=unix:/d/c.sock -p x=d`
	if got != want {
		t.Errorf("commandLine:\n got %s\nwant %s", got, want)
	}
}

// The files an output is expected to write come from the core's template
// parser: "$call-id" is the key "call-id" (absent here, so "_"), not "$call"
// followed by "-id".
func TestReportUsesTheCoreTemplates(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "f.conf")
	text := "[OUTPUT]\n    Name flatstore\n    Match *\n    path ${FLATSTORE_OUT}/$call-id.log\n" +
		"[OUTPUT]\n    Name flatstore\n    Match other\n    path ${FLATSTORE_OUT}/$TAG-x.log\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "fluent-bit")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLUENT_BIT", fake)
	var report bytes.Buffer
	o := options{n: 7, conf: conf, out: filepath.Join(dir, "out"), data: filepath.Join(dir, "data"), workers: -1, engine: "fluent-bit"}
	if err := run(o, &report); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{filepath.Join(o.out, "_.log"), "1 files, 0 lines for 7 records", "0 files, 0 lines for 0 records"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
}
