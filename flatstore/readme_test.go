package flatstore_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

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

// TestDocLinks: every relative link of the README, CONTRIBUTING.md and
// docs/*.md names a file of the repository, and a #fragment names a
// heading of that file (as GitHub makes its anchors).
func TestDocLinks(t *testing.T) {
	pages, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, "../README.md", "../CONTRIBUTING.md")
	anchors := map[string]map[string]bool{} // a page's headings, by path
	headings := func(path string) map[string]bool {
		if a, ok := anchors[path]; ok {
			return a
		}
		a := map[string]bool{}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fence := false
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				fence = !fence
			}
			if fence || !strings.HasPrefix(line, "#") {
				continue
			}
			a[slug(strings.TrimLeft(line, "#"))] = true
		}
		anchors[path] = a
		return a
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages {
		data, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: %v", page, target, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(path, ".md") && !headings(path)[frag] {
				t.Errorf("%s: link %q: %s has no heading with that anchor", page, target, path)
			}
		}
	}
}

// slug is GitHub's anchor of a heading: lower case, punctuation dropped,
// spaces made hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
