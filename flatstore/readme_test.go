package flatstore_test

import (
	"os"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
)

// TestREADMEKeyTable: the README's key table is the key table of the code
// (flatstore.Keys, which also drives ParseConfig and Fluent Bit's config
// map): the same keys in the same order, each row with four cells (key,
// default, meaning, OpenSIPS) and the default the code applies — written
// in backticks, or "—" (none) where the code has none.
func TestREADMEKeyTable(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	const head = "| key | default | meaning | OpenSIPS |"
	start := strings.Index(text, "\n## Configuration\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	at := strings.Index(text[start:], "\n"+head+"\n")
	if at < 0 {
		t.Fatalf("the README's Configuration section has no table headed %s", head)
	}
	type row struct{ key, def string }
	var rows []row
	lines := strings.Split(text[start+at+1:], "\n")[2:] // past the head and |---|
	for _, line := range lines {
		if !strings.HasPrefix(line, "|") {
			break // the table ends
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 4 {
			t.Errorf("key row with %d cells, want 4 (key, default, meaning, OpenSIPS): %s", len(cells), line)
			continue
		}
		rows = append(rows, row{strings.Trim(strings.TrimSpace(cells[0]), "`"), strings.TrimSpace(cells[1])})
	}
	keys := flatstore.Keys()
	for i := 0; i < len(keys) || i < len(rows); i++ {
		switch {
		case i >= len(rows):
			t.Errorf("key %q is not in the README's table", keys[i].Name)
			continue
		case i >= len(keys):
			t.Errorf("the README's table lists %q, which the plugin does not read", rows[i].key)
			continue
		case rows[i].key != keys[i].Name:
			t.Errorf("row %d of the README's table is %q, want %q (the order of flatstore.Keys)", i+1, rows[i].key, keys[i].Name)
			continue
		}
		k, cell := keys[i], rows[i].def
		switch {
		case k.Default == "" && k.Name == "path":
			if cell != "(required)" {
				t.Errorf("path: default cell %q, want (required)", cell)
			}
		case k.Default == "":
			if !strings.HasPrefix(cell, "—") && !strings.HasPrefix(cell, "all keys") {
				t.Errorf("%s: default cell %q, want — (no default)", k.Name, cell)
			}
		case !strings.HasPrefix(cell, "`"+k.Default+"`"):
			t.Errorf("%s: default cell %q, want it to start with `%s`", k.Name, cell, k.Default)
		}
	}
}
