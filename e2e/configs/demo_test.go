package configs_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// --- the demo, end to end ----------------------------------------------------------------

// The demo generates events and runs conf/fluent-bit.conf on them through the
// test host and the real plugin; this test checks the files it left, line by
// line, with 24224 taken (the demo must not need it).
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin, the host and the demo")
	}
	root := repoRoot(t)
	so, host := fbtest.Build(t)
	dir := t.TempDir()
	demo := filepath.Join(dir, "flatstore-demo")
	build := exec.Command("go", "build", "-o", demo, "./cmd/flatstore-demo")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flatstore-demo: %v\n%s", err, out)
	}
	if l, err := net.Listen("tcp", "127.0.0.1:24224"); err == nil {
		defer l.Close()
	}
	const n = 2000
	data, out := filepath.Join(dir, "data"), filepath.Join(dir, "out")
	cmd := exec.Command(demo, "-n", fmt.Sprint(n), "-engine", "host", "-so", so, "-host", host,
		"-conf", filepath.Join(root, "conf", "fluent-bit.conf"), "-out", out, "-data", data, "-workers", "2", "-chunk", "128")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "FLATSTORE_CONTROL=unix:"+filepath.Join(dir, "control.sock"))
	report, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("flatstore-demo: %v\n%s", err, report)
	}
	// The demo reports, per output, the files the events were bound for.
	for _, want := range []string{"1 files, 2000 lines for 2000 records", "6 files, 2000 lines for 2000 records"} {
		if !bytes.Contains(report, []byte(want)) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}

	// What went in: the JSON lines (the same events as the msgpack file, as
	// the demo's own tests check).
	in, err := os.ReadFile(filepath.Join(data, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	perEvent := map[string]int{}
	for _, l := range bytes.Split(bytes.TrimSuffix(in, []byte("\n")), []byte("\n")) {
		m := regexp.MustCompile(`^\{"event":"([A-Z_]+)"`).FindSubmatch(l)
		if m == nil {
			t.Fatalf("events.jsonl: a line without a leading event key: %s", l)
		}
		events = append(events, string(m[1]))
		perEvent[string(m[1])]++
	}
	if len(events) != n {
		t.Fatalf("events.jsonl: %d lines, want %d", len(events), n)
	}

	// The number of parameters of each event (the generator's keys but
	// "event"): with escape opensips, a value's commas become spaces, so
	// every line has exactly that many delimiters.
	params := map[string]int{
		"E_CALL_START": 8, "E_DIALOG_STATE": 7, "E_CALL_END": 8,
		"E_REGISTER": 5, "E_ACC_CDR": 14, "E_PIKE_BLOCKED": 4,
	}
	main, err := os.ReadFile(filepath.Join(out, "events.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(main) == 0 || main[len(main)-1] != '\n' {
		t.Fatal("events.log does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(string(main), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("events.log: %d lines, want %d", len(lines), n)
	}
	got := map[string]int{}
	for _, l := range lines {
		ev, _, _ := strings.Cut(l, ",")
		want, ok := params[ev]
		if !ok {
			t.Fatalf("events.log: unknown event in %q", l)
		}
		got[ev]++
		if c := strings.Count(l, ","); c != want {
			t.Errorf("events.log: %d delimiters, want %d: %q", c, want, l)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(perEvent) {
		t.Errorf("events.log has %v, events.jsonl %v", got, perEvent)
	}

	// One file per event, backslash-escaped, the record time first.
	byEvent, err := filepath.Glob(filepath.Join(out, "by-event", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(byEvent) != len(perEvent) {
		t.Errorf("by-event: %d files, want one per event (%d)", len(byEvent), len(perEvent))
	}
	rfc3339 := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
	for _, f := range byEvent {
		ev := strings.TrimSuffix(filepath.Base(f), ".log")
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Fatalf("%s does not end with a newline", f)
		}
		ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(ls) != perEvent[ev] {
			t.Errorf("%s: %d lines, want %d", filepath.Base(f), len(ls), perEvent[ev])
		}
		for _, l := range ls {
			fields := splitBackslash(l, ',')
			if len(fields) != 2+params[ev] || fields[0] != ev || !rfc3339.MatchString(fields[1]) {
				t.Errorf("%s: want %s,<rfc3339>,%d values; got %d fields: %q", filepath.Base(f), ev, params[ev], len(fields), l)
				break
			}
		}
	}
}

// splitBackslash splits a line written with escape backslash: "\x" is x.
func splitBackslash(s string, delim byte) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == delim:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}
