package flatstore_test

import (
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/records"
)

// TestTemplateFlush: lines go to the file their record names.
func TestTemplateFlush(t *testing.T) {
	dir := t.TempDir()
	in, _ := newInstance(t, "path", dir+"/$TAG/$EVENT-$user.log", "mkdir", "true")
	data := records.Records(
		records.Record{Time: recTime, Body: records.KV{"event", "E_A", "user", "alice", "x", 1}},
		records.Record{Time: recTime, Body: records.KV{"event", "E_B", "user", "../bob", "x", 2}},
		records.Record{Time: recTime, Body: records.KV{"event", "E_A", "user", "alice", "x", 3}},
		records.Record{Time: recTime, Body: records.KV{"x", 4}},
	)
	if r := in.Flush(data, "../up"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	for path, want := range map[string]string{
		dir + "/___up/E_A-alice.log":  "E_A,alice,1\nE_A,alice,3\n",
		dir + "/___up/E_B-___bob.log": "E_B,../bob,2\n",
		dir + "/___up/___up-_.log":    "../up,4\n",
	} {
		if got := readFile(t, path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}
