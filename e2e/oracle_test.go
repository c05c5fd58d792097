package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// The fidelity vectors of flatstore/testdata/opensips/oracle.json (read by
// fbtest.LoadOracle): what a real OpenSIPS (3.6.8 and 4.0.1) writes for an
// event, and what flatstore writes for a record holding the same values in
// the same order. Each vector runs through the real plugin .so in the C
// host, and the test compares the exact bytes the file holds with the
// table's flatstore bytes (and, with escape opensips_exact, its OpenSIPS
// bytes).

// oracleVector is one row as the host runs it: the record, the plugin
// properties, and the bytes flatstore must write.
type oracleVector struct {
	name  string
	body  records.KV
	props []string // key=value
	want  string
}

// settingsProps turns a row's settings into key=value properties, in a
// fixed order.
func settingsProps(settings map[string]string) []string {
	var props []string
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		props = append(props, k+"="+settings[k])
	}
	return props
}

// oracleVectors returns every row of the oracle that starts, under escape
// opensips (the default) and, with exact, under escape opensips_exact.
func oracleVectors(t testing.TB, exact bool) []oracleVector {
	t.Helper()
	o := fbtest.LoadOracle(t)
	var out []oracleVector
	for _, c := range append(o.Values, o.Settings...) {
		if c.StartError != "" || exact && c.ExactRefused != "" {
			continue
		}
		body, err := c.Body()
		if err != nil {
			t.Fatal(err)
		}
		v := oracleVector{name: c.Name, body: body, props: settingsProps(c.Settings), want: c.Flatstore()}
		if exact {
			v.props = append(v.props, "escape=opensips_exact")
			v.want = c.FlatstoreExact()
		}
		out = append(out, v)
	}
	// The spellings of the oracle's tab delimiter flatstore also takes.
	for _, c := range o.Settings {
		if c.Settings["delimiter"] == `\t` && len(c.Settings) == 1 {
			body, _ := c.Body()
			v := oracleVector{name: c.Name + " (as tab)", body: body, props: []string{"delimiter=tab"}, want: c.Flatstore()}
			if exact {
				v.props = append(v.props, "escape=opensips_exact")
				v.want = c.FlatstoreExact()
			}
			out = append(out, v)
		}
	}
	return out
}

// runVector writes one record through the plugin and returns the file's bytes.
func runVector(t *testing.T, v oracleVector) []byte {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "events.log")
	in := filepath.Join(dir, "in.msgpack")
	rec := records.AppendRecord(nil, records.Record{Time: time.Unix(1700000000, 0), Body: v.body})
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
	for _, exact := range []bool{false, true} {
		for _, v := range oracleVectors(t, exact) {
			t.Run(strings.Join(append([]string{v.name}, v.props...), " "), func(t *testing.T) {
				got := runVector(t, v)
				if string(got) != v.want {
					t.Errorf("wrote %q\n want %q", got, v.want)
				}
			})
		}
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
	for _, v := range oracleVectors(t, false) {
		if v.props != nil {
			continue
		}
		buf = records.AppendRecord(buf, records.Record{Time: time.Unix(1700000000, 0), Body: v.body})
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
// from the delimiter's; flatstore's Init fails with the same words (the
// oracle's start_error rows).
func TestOracleEscapeDelimiterLength(t *testing.T) {
	fbtest.Build(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "events.log")
	in := filepath.Join(dir, "in.msgpack")
	rec := records.AppendRecord(nil, records.Record{Body: records.KV{"event", "E_TEST", "a", "b"}})
	if err := os.WriteFile(in, rec, 0o644); err != nil {
		t.Fatal(err)
	}
	var rows []fbtest.OracleCase
	for _, c := range fbtest.LoadOracle(t).Settings {
		if c.StartError != "" {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		t.Fatal("the oracle has no start-up failure")
	}
	for _, c := range rows {
		args := []string{"-in", in, "-p", "path=" + out, "-p", "control_listen=off"}
		for _, p := range settingsProps(c.Settings) {
			args = append(args, "-p", p)
		}
		_, stderr, code := fbtest.RunHost(t, args...)
		if code != 1 {
			t.Fatalf("%s: host exit %d, want 1 (Init fails); stderr:\n%s", c.Name, code, stderr)
		}
		if !strings.Contains(stderr, c.StartError) {
			t.Errorf("%s: stderr lacks %q:\n%s", c.Name, c.StartError, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a file was created although Init failed: %v", err)
	}
}
