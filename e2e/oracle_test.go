package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// The fidelity vectors of reference/opensips-oracle.md: what a real OpenSIPS
// (3.6.8 and 4.0.1) writes for an event, and what flatstore writes for a
// record holding the same values in the same order. Each vector runs through
// the real plugin .so in the C host, and the test compares the exact bytes
// the file holds with the table's "flatstore" column.

// oracleVector is one row: the event's parameters, in order, the plugin
// properties, and the bytes flatstore must write.
type oracleVector struct {
	name   string
	params []any
	props  []string // key=value
	want   string
}

// body builds the record: the event name under "event", then one key per
// parameter in order (p01, p02…, never written to the line).
func (v oracleVector) body() fbtest.KV {
	kv := fbtest.KV{"event", "E_TEST"}
	for i, p := range v.params {
		kv = append(kv, fmt.Sprintf("p%02d", i+1), p)
	}
	return kv
}

func twentyFive() ([]any, string) {
	var params []any
	var line strings.Builder
	line.WriteString("E_TEST")
	for i := 1; i <= 25; i++ {
		if i%2 == 1 {
			params = append(params, fmt.Sprintf("v%d", i))
			fmt.Fprintf(&line, ",v%d", i)
		} else {
			params = append(params, i)
			fmt.Fprintf(&line, ",%d", i)
		}
	}
	line.WriteString("\n")
	return params, line.String()
}

func oracleVectors() []oracleVector {
	p25, want25 := twentyFive()
	return []oracleVector{
		// values, default settings
		{"none", nil, nil, "E_TEST\n"},
		{"hello world", []any{"hello", "world"}, nil, "E_TEST,hello,world\n"},
		{"mixed with empty", []any{1, "x", "", -5}, nil, "E_TEST,1,x,,-5\n"},
		{"empty in the middle", []any{"x", "", "y"}, nil, "E_TEST,x,,y\n"},
		{"one empty", []any{""}, nil, "E_TEST,\n"},
		{"two empty", []any{"", ""}, nil, "E_TEST,,\n"},
		{"integers", []any{42, -7, 0}, nil, "E_TEST,42,-7,0\n"},
		{"64-bit integers not clamped", []any{int64(3000000000), int64(-3000000000)}, nil,
			"E_TEST,3000000000,-3000000000\n"},
		{"delimiter in values", []any{"a,b,,c", ","}, nil, "E_TEST,a b  c, \n"},
		{"newline kept on one line", []any{"line1\nline2", "end"}, nil, "E_TEST,line1 line2,end\n"},
		{"cr tab backslash", []any{"c\rr", "t\tt", `b\s`}, nil, "E_TEST,c r,t\tt,b\\s\n"},
		{"quotes not quoted", []any{`say "hi"`, `"`}, nil, "E_TEST,say \"hi\",\"\n"},
		{"utf-8 bytes as given", []any{"hé€"}, nil, "E_TEST,h\xc3\xa9\xe2\x82\xac\n"},
		{"null", []any{nil}, nil, "E_TEST,null\n"},
		{"true", []any{true}, nil, "E_TEST,true\n"},
		{"null between", []any{"A", nil, "B"}, nil, "E_TEST,A,null,B\n"},
		{"map as json", []any{fbtest.KV{"k", "v", "x", 1}}, nil, "E_TEST,{\"k\":\"v\" \"x\":1}\n"},
		{"array as json", []any{[]any{1, "a,b"}}, nil, "E_TEST,[1 \"a b\"]\n"},
		{"25 values", p25, nil, want25},

		// other settings
		{"suppress, none", nil, []string{"suppress_event_name=1"}, "\n"},
		{"suppress, a b", []any{"a", "b"}, []string{"suppress_event_name=1"}, "a,b\n"},
		{"suppress keeps a leading empty column", []any{"", "b"}, []string{"suppress_event_name=1"}, ",b\n"},
		{"suppress keeps leading empty columns", []any{"", "", "c"}, []string{"suppress_event_name=1"}, ",,c\n"},
		{"delimiter ;", []any{"a;b", "c,d", "s;;t"}, []string{"delimiter=;"}, "E_TEST;a b;c,d;s  t\n"},
		{"delimiter \\t", []any{"a", "b"}, []string{`delimiter=\t`}, "E_TEST\ta\tb\n"},
		{"delimiter tab", []any{"a", "b"}, []string{"delimiter=tab"}, "E_TEST\ta\tb\n"},
		{"delimiter ||", []any{"", "", "c"}, []string{"delimiter=||"}, "E_TEST||||||c\n"},
		{"escape_delimiter |", []any{"a;b"}, []string{"delimiter=;", "escape_delimiter=|"}, "E_TEST;a|b\n"},
	}
}

// runVector writes one record through the plugin and returns the file's bytes.
func runVector(t *testing.T, v oracleVector) []byte {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "events.log")
	in := filepath.Join(dir, "in.msgpack")
	rec := fbtest.AppendRecord(nil, fbtest.Record{Time: time.Unix(1700000000, 0), Body: v.body()})
	if err := os.WriteFile(in, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-in", in, "-p", "path=flatstore:" + out, "-p", "control_listen=off"}
	for _, p := range v.props {
		args = append(args, "-p", p)
	}
	s, stderr, code := fbtest.RunHost(t, args...)
	if code != 0 {
		t.Fatalf("host exit %d; stderr:\n%s", code, stderr)
	}
	if len(s.Instances) != 1 || s.Instances[0].OKRecords != 1 {
		t.Fatalf("summary %+v", s)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestOracleVectors(t *testing.T) {
	fbtest.Build(t)
	for _, v := range oracleVectors() {
		t.Run(v.name, func(t *testing.T) {
			got := runVector(t, v)
			if string(got) != v.want {
				t.Errorf("wrote %q\n want %q", got, v.want)
			}
		})
	}
}

// All the default-setting vectors in one chunk to one file: the lines come
// out in record order, each exactly as alone.
func TestOracleVectorsInOneChunk(t *testing.T) {
	fbtest.Build(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "events.log")
	var buf []byte
	var want strings.Builder
	for _, v := range oracleVectors() {
		if v.props != nil {
			continue
		}
		buf = fbtest.AppendRecord(buf, fbtest.Record{Time: time.Unix(1700000000, 0), Body: v.body()})
		want.WriteString(v.want)
	}
	in := filepath.Join(dir, "in.msgpack")
	if err := os.WriteFile(in, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := fbtest.RunHost(t, "-in", in, "-p", "path="+out, "-p", "control_listen=off")
	if code != 0 {
		t.Fatalf("host exit %d; stderr:\n%s", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		gl, _ := fbtest.SplitLines(got)
		wl, _ := fbtest.SplitLines([]byte(want.String()))
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Errorf("line %d: %q, want %q", i+1, gl[i], wl[i])
			}
		}
		if len(gl) != len(wl) {
			t.Errorf("%d lines, want %d", len(gl), len(wl))
		}
	}
}

// OpenSIPS refuses to start with an escape_delimiter whose length differs
// from the delimiter's; flatstore's Init fails with the same words.
func TestOracleEscapeDelimiterLength(t *testing.T) {
	fbtest.Build(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "events.log")
	in := filepath.Join(dir, "in.msgpack")
	rec := fbtest.AppendRecord(nil, fbtest.Record{Body: fbtest.KV{"event", "E_TEST", "a", "b"}})
	if err := os.WriteFile(in, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := fbtest.RunHost(t, "-in", in, "-p", "path="+out, "-p", "control_listen=off",
		"-p", "delimiter=,", "-p", "escape_delimiter=##")
	if code != 1 {
		t.Fatalf("host exit %d, want 1 (Init fails); stderr:\n%s", code, stderr)
	}
	const msg = `"escape_delimiter" length (2) must match "delimiter" length (1)`
	if !strings.Contains(stderr, msg) {
		t.Errorf("stderr lacks %q:\n%s", msg, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a file was created although Init failed: %v", err)
	}
}
