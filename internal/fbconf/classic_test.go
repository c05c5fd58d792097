package fbconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/internal/fbconf"
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
	c, err := fbconf.LoadClassic(main, lookupIn(env))
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
		"mixed indentation":    "[A]\n    k v\n  k2 v\n",
		"tab then space":       "[A]\n\tk v\n    k2 v\n",
		"extra indentation":    "[A]\n    k v\n      k2 v\n",
		"no value":             "[A]\n    key\n",
		"empty value":          "[A]\n    key \n",
		"tab separator":        "[A]\n    key\tvalue\n",
		"key outside":          "    k v\n",
		"bad header":           "[A\n    k v\n",
		"directive, no args":   "@FOOBAR\n",
		"missing include":      "@INCLUDE nope.conf\n",
		"glob without match":   "@INCLUDE nope/*.conf\n",
		"group without name":   "[A]\n    [G x\n",
		"group outside":        "    [G] x\n",
		"blank line too short": "[A]\n    k v\n  \n",
	} {
		t.Run(name, func(t *testing.T) {
			p := write(t, t.TempDir(), "x.conf", text)
			if _, err := fbconf.LoadClassic(p, noEnv); err == nil {
				t.Errorf("%q: no error", text)
			}
		})
	}
	dir := t.TempDir()
	p := write(t, dir, "self.conf", "@INCLUDE self.conf\n")
	if _, err := fbconf.LoadClassic(p, noEnv); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a file that includes itself: %v", err)
	}
}

// What Fluent Bit accepts, however odd, the reader accepts alike.
func TestLoadClassicEngineCorners(t *testing.T) {
	dir := t.TempDir()
	// An unknown directive is ignored; @SET applies to values above it too;
	// keys are lower-cased; a group's content is indented twice; a tab
	// indentation is fine when it is the file's; a comment may follow the
	// indentation; a value keeps inner tabs and spaces.
	p := write(t, dir, "x.conf", strings.Join([]string{
		"[SERVICE]",
		"\tFlush ${A}",
		"\t# indented comment",
		"@FOO bar",
		"@SET A=1",
		"[OUTPUT]",
		"\tName  flatstore",
		"\tDelimiter a\tb  c",
		"\t[PROCESSOR] x", // the engine wants a space after a group name
		"\t\tkind x",
		"\tMatch *",
		"[SERVICE]",
		"\tGrace 2",
	}, "\n"))
	c, err := fbconf.LoadClassic(p, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	svc := c.Find("service")
	if len(svc) != 1 || svc[0].Value("flush") != "1" || svc[0].Value("grace") != "2" {
		t.Fatalf("[SERVICE] sections merge and @SET applies everywhere: %+v", svc)
	}
	out := c.Outputs("flatstore")
	if len(out) != 1 || out[0].Value("delimiter") != "a\tb  c" || out[0].Props[0].Key != "name" {
		t.Fatalf("output %+v", out)
	}
	if len(out[0].Groups) != 1 || out[0].Groups[0].Name != "PROCESSOR" ||
		out[0].Groups[0].Props[0].Key != "kind" || out[0].Value("match") != "*" {
		t.Errorf("group: %+v", out[0])
	}
	// The engine takes the first character of an unindented key line as the
	// file's indentation: the key loses its first letter.
	p = write(t, dir, "y.conf", "[A]\nName x\n")
	if c, err = fbconf.LoadClassic(p, noEnv); err != nil || c.Sections[0].Props[0].Key != "ame" {
		t.Errorf("unindented key: %v %+v", err, c)
	}
	// Keys after an @INCLUDE belong to the section the including file was in.
	write(t, dir, "inc.conf", "[OUTPUT]\n  Name b\n")
	p = write(t, dir, "z.conf", "[OUTPUT]\n  Name a\n@INCLUDE inc.conf\n  Match x\n")
	c, err = fbconf.LoadClassic(p, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Find("output"); len(o) != 2 || o[0].Value("match") != "x" || o[1].Value("match") != "" {
		t.Errorf("after an include: %+v", o)
	}
}

func TestHostArgs(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "x.conf", strings.Join([]string{
		"@SET base=/var/log",
		"[OUTPUT]",
		"    Name   flatstore",
		"    Match  *",
		"    Path   ${base}/a.log",
		"    Workers 2",
		"[OUTPUT]",
		"    Name   stdout",
		"[OUTPUT]",
		"    Name   FlatStore",
		"    alias  two",
	}, "\n"))
	c, err := fbconf.LoadClassic(p, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.HostArgs("flatstore"), " ")
	want := "-set base=/var/log -p match=* -p path=${base}/a.log -p workers=2 -next -p alias=two"
	if got != want {
		t.Errorf("HostArgs\n got %s\nwant %s", got, want)
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
		"${A}x${B":     "1",
		"a}b${A}":      "a}b${A}",
		"${A}x}y${A}":  "1y${A}",
		"${N:-d}":      "d",
		"${B:-d}":      "d",
		"${A:-d}":      "1",
		"${}":          "${}",
		"$${A}":        "$1",
		"${A}${A}${A}": "111",
	} {
		if got := fbconf.Expand(in, look); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func noEnv(string) (string, bool) { return "", false }
