package flatstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/records"
)

// escapeKeyBody is {"event": ev, "m": {{"k": n control bytes}: 1}}, and its
// line under escape backslash: nine bytes a control byte.
func escapeKeyBody(ev string, n int) (records.KV, string) {
	key := `{"k":"` + strings.Repeat(`\u0001`, n) + `"}`
	value := `{"` + strings.ReplaceAll(strings.ReplaceAll(key, `\`, `\\`), `"`, `\"`) + `":1}`
	return records.KV{"event", ev, "m", records.KV{records.KV{"k", strings.Repeat("\x01", n)}, 1}},
		ev + "," + strings.ReplaceAll(value, `\`, `\\`) + "\n"
}

// TestFlushBudget: a flush keeps at most twice its chunk plus 8 MiB of
// lines. Records of 100 KiB whose lines are 900 KiB land until the slack is
// spent, then are skipped as too_large; a record of 2 MiB whose line is 18
// MiB is skipped before its room is taken; the small records around them
// land, and so does a record that doubles (every byte a backslash) after
// them: it earns its own room. The same with a path rendered per record.
func TestFlushBudget(t *testing.T) {
	big, _ := escapeKeyBody("E_BIG", 2<<20)
	mid, midLine := escapeKeyBody("E_MID", 100<<10)
	slashes := strings.Repeat(`\`, 1<<20)
	var recs []records.Record
	var wantE, wantMid strings.Builder
	add := func(body records.KV, w *strings.Builder, line string) {
		recs = append(recs, records.Record{Time: recTime, Body: body})
		if w != nil {
			w.WriteString(line)
		}
	}
	add(records.KV{"event", "E", "n", 1}, &wantE, "E,1\n")
	// 8 MiB of slack over 700 KiB a record: eleven land.
	for i := 0; i < 12; i++ {
		if i < 11 {
			add(mid, &wantMid, midLine)
		} else {
			add(mid, nil, "")
		}
	}
	add(records.KV{"event", "E", "n", 2}, &wantE, "E,2\n")
	add(big, nil, "")
	add(records.KV{"event", "E", "s", slashes}, &wantE, "E,"+strings.Repeat(`\\`, 1<<20)+"\n")
	add(records.KV{"event", "E", "n", 3}, &wantE, "E,3\n")
	chunk := records.Records(recs...)

	in, file := newInstance(t, "escape", "backslash")
	if r := in.Flush(chunk, "tag"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got, want := readFile(t, file), "E,1\n"+wantMid.String()+"E,2\n"+strings.TrimPrefix(wantE.String(), "E,1\nE,2\n"); got != want {
		t.Errorf("static path: file holds %d bytes (%d E_MID lines), want %d (11)", len(got), strings.Count(got, "E_MID,"), len(want))
	}

	dir := t.TempDir()
	in, _ = newInstance(t, "escape", "backslash", "path", filepath.Join(dir, "$event.log"))
	if r := in.Flush(chunk, "tag"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got := readFile(t, filepath.Join(dir, "E.log")); got != wantE.String() {
		t.Errorf("template path: E.log holds %d bytes, want %d", len(got), wantE.Len())
	}
	if got := readFile(t, filepath.Join(dir, "E_MID.log")); got != wantMid.String() {
		t.Errorf("template path: E_MID.log holds %d lines, want 11", strings.Count(got, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, "E_BIG.log")); !os.IsNotExist(err) {
		t.Errorf("E_BIG.log: %v, want none", err)
	}
}
