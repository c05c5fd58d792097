package conf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/conf"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadClassic(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "inc/a.conf", "[OUTPUT]\n  Name flatstore\n  path ${OUT}/a.log\n")
	write(t, dir, "inc/b.conf", "[OUTPUT]\n  Name stdout\n  Match *\n")
	main := write(t, dir, "main.conf", strings.Join([]string{
		"# a comment",
		"@SET OUT=/set/by/conf",
		"[SERVICE]",
		"    Flush 1",
		"# a comment at column 0 inside a section",
		"    # an indented comment",
		"",
		"[OUTPUT]",
		"    Name   flatstore",
		"    Match  *",
		"    path   flatstore:${OUT}/$EVENT.log",
		"    header ${NOPE}x",
		"    delimiter ,",
		"@INCLUDE inc/*.conf",
	}, "\n"))
	env := map[string]string{"OUT": "/from/env"}
	c, err := conf.LoadClassic(main, lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	outs := c.Outputs("flatstore")
	if len(outs) != 2 {
		t.Fatalf("%d flatstore outputs, want 2 (one included)", len(outs))
	}
	// @SET wins over the environment, as in Fluent Bit; $EVENT is kept.
	if got := outs[0].Value("path"); got != "flatstore:/set/by/conf/$EVENT.log" {
		t.Errorf("path = %q", got)
	}
	if got := outs[0].Value("MATCH"); got != "*" {
		t.Errorf("Match = %q (keys are case-insensitive)", got)
	}
	if got := outs[0].Value("delimiter"); got != "," {
		t.Errorf("delimiter = %q", got)
	}
	if got := outs[0].Value("header"); got != "x" {
		t.Errorf("an unset variable should expand to empty: header = %q", got)
	}
	if len(c.Unset) != 1 || c.Unset[0] != "NOPE" {
		t.Errorf("Unset = %v, want [NOPE]", c.Unset)
	}
	if got := outs[1].Value("path"); got != "/set/by/conf/a.log" {
		t.Errorf("included path = %q", got)
	}
	if len(c.Files) != 3 || len(c.Find("output")) != 3 {
		t.Errorf("files %v, %d outputs", c.Files, len(c.Find("output")))
	}
	if _, ok := outs[0].Get("params"); ok {
		t.Error("Get reports a key the section lacks")
	}
}

// What Fluent Bit refuses, the reader refuses too, so the tests catch a file
// that would not start.
func TestLoadClassicRejects(t *testing.T) {
	for name, text := range map[string]string{
		"mixed indentation": "[A]\n    k v\n  k2 v\n",
		"no value":          "[A]\n    key\n",
		"tab separator":     "[A]\n    key\tvalue\n",
		"key outside":       "    k v\n",
		"bad header":        "[A\n    k v\n",
		"unknown directive": "@FOO bar\n",
		"missing include":   "@INCLUDE nope.conf\n",
		"group":             "[A]\n    [G] x\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := write(t, t.TempDir(), "x.conf", text)
			if _, err := conf.LoadClassic(p, noEnv); err == nil {
				t.Errorf("%q: no error", text)
			}
		})
	}
	dir := t.TempDir()
	p := write(t, dir, "self.conf", "@INCLUDE self.conf\n")
	if _, err := conf.LoadClassic(p, noEnv); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a file that includes itself: %v", err)
	}
}

func TestExpand(t *testing.T) {
	look := lookupIn(map[string]string{"A": "1", "B": ""})
	for in, want := range map[string]string{
		"":             "",
		"${A}":         "1",
		"x${A}y${B}z":  "x1yz",
		"$TAG/${A}":    "$TAG/1",
		"${MISSING}-":  "-",
		"${unclosed":   "${unclosed",
		"$${A}":        "$1",
		"${A}${A}${A}": "111",
	} {
		if got := conf.Expand(in, look); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
