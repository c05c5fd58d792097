package outputconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/internal/outputconf"
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

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func value(t *testing.T, o *outputconf.Output, key string) string {
	t.Helper()
	v, ok := o.Get(key)
	if !ok {
		t.Errorf("%s: no key %q", o.Name, key)
	}
	return v
}

func TestLoadClassic(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "more.conf", "[OUTPUT]\n    Name flatstore\n    Path /x/more.log\n")
	conf := write(t, dir, "fb.conf", strings.Join([]string{
		"@SET DIR=/var/log/flatstore",
		"[OUTPUT]",
		"    Name  stdout",
		"    Match *",
		"[OUTPUT]",
		"    Name   FlatStore",
		"    Path   flatstore:${DIR}/events.log",
		"    Escape ${ESC}",
		"    Header ${NOPE}",
		"[OUTPUT]",
		"    Name   flatstore",
		"    Alias  sip_events",
		"    Path   ${DIR}/sip.log",
		"@INCLUDE more.conf",
	}, "\n"))
	outs, err := outputconf.Load(conf, "flatstore", lookupIn(map[string]string{"ESC": "csv"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Fatalf("%d outputs, want 3", len(outs))
	}
	if outs[0].Name != "flatstore.0" || outs[0].Path != "flatstore:/var/log/flatstore/events.log" || value(t, &outs[0], "escape") != "csv" {
		t.Errorf("first output: %+v", outs[0])
	}
	if len(outs[0].Unset) != 1 || outs[0].Unset[0] != "NOPE" || len(outs[1].Unset) != 0 {
		t.Errorf("unset variables: %v and %v, want [NOPE] and none", outs[0].Unset, outs[1].Unset)
	}
	if outs[1].Name != "flatstore.1" || outs[1].Alias != "sip_events" || outs[2].Name != "flatstore.2" || outs[2].Path != "/x/more.log" {
		t.Errorf("outputs: %+v", outs)
	}
	for name, want := range map[string]string{
		"sip_events":                              "flatstore.1",
		"flatstore.2":                             "flatstore.2",
		"/var/log/flatstore/sip.log":              "flatstore.1",
		"flatstore:/var/log/flatstore/sip.log":    "flatstore.1",
		"/var/log/flatstore/events.log":           "flatstore.0",
		"flatstore:/var/log/flatstore/events.log": "flatstore.0",
		"/var/log/flatstore//events.log":          "flatstore.0",
	} {
		o, err := outputconf.Select(outs, name)
		if err != nil || o.Name != want {
			t.Errorf("Select(%q) = %v, %v; want %s", name, o, err, want)
		}
	}
	for name, want := range map[string]string{
		"":            "it has 3 of them, name one with -output: flatstore.0 (path flatstore:/var/log/flatstore/events.log, " + conf + ":5); flatstore.1 (alias sip_events",
		"nope":        `no output has the alias, name or path "nope"; there are: flatstore.0`,
		"flatstore.3": `no output has the alias, name or path "flatstore.3"`,
		"stdout.0":    `no output has`,
	} {
		if _, err := outputconf.Select(outs, name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Select(%q): %v, want %q", name, err, want)
		}
	}
	if o, err := outputconf.Select(outs[2:], ""); err != nil || o.Name != "flatstore.2" {
		t.Errorf("Select of the only output: %v, %v", o, err)
	}
}

func TestSelectAmbiguous(t *testing.T) {
	dir := t.TempDir()
	conf := write(t, dir, "fb.conf", "[OUTPUT]\n    Name flatstore\n    Alias a\n    Path /x/b.log\n[OUTPUT]\n    Name flatstore\n    Alias /x/b.log\n    Path /x/c.log\n")
	outs, err := outputconf.Load(conf, "flatstore", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outputconf.Select(outs, "/x/b.log"); err == nil || !strings.Contains(err.Error(), `"/x/b.log" names 2 outputs`) {
		t.Errorf("an alias equal to another output's path: %v, want ambiguous", err)
	}
}

func TestLoadYAML(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "inc/first.yaml", "pipeline:\n  outputs:\n    - name: flatstore\n      path: /x/first.log\n")
	write(t, dir, "inc/glob-a.yaml", "pipeline:\n  outputs:\n    - name: flatstore\n      path: /x/a.log\n")
	write(t, dir, "inc/glob-b.yml", "env:\n  - name: LATE\n    value: late-value\n")
	conf := write(t, dir, "fluent-bit.yaml", `
env:
  DIR: /var/log/flatstore
  ESC: backslash
service:
  flush: 1
includes:
  - inc/first.yaml
pipeline:
  inputs:
    - name: dummy
  outputs:
    - name: stdout
      match: '*'
    - name: ${PLUGIN}
      alias: sip_events
      path: flatstore:${DIR}/sip.log
      escape: ${ESC}
      delimiter: '  ;  '
      file_permissions: 0640
      mkdir: true
      timeFormat: unix
      Suppress_Event_Name: on
      header: ${LATE}
      params: [a, b]
      control_token: ${UNSET_TOKEN}
      processors:
        logs:
          - name: content_modifier
includes:
  - inc/glob-*
`)
	env := map[string]string{"PLUGIN": "flatstore", "ESC": "csv", "DIR": "/from/env"}
	outs, err := outputconf.Load(conf, "flatstore", lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 {
		t.Fatalf("%d outputs, want 3: %+v", len(outs), outs)
	}
	// The include stands before the pipeline: its output is flatstore.0.
	if outs[0].Path != "/x/first.log" || outs[1].Alias != "sip_events" || outs[2].Path != "/x/a.log" {
		t.Fatalf("order: %+v", outs)
	}
	o := &outs[1]
	for key, want := range map[string]string{
		"path":                "flatstore:/var/log/flatstore/sip.log", // env wins over the environment
		"escape":              "backslash",
		"delimiter":           ";", // trimmed, as the engine trims values
		"file_permissions":    "0640",
		"mkdir":               "true",
		"time_format":         "unix", // camelCase becomes snake_case
		"suppress_event_name": "on",
		"header":              "late-value", // env from a later include
		"control_token":       "",
	} {
		if got := value(t, o, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if len(o.Unset) != 1 || o.Unset[0] != "UNSET_TOKEN" {
		t.Errorf("unset = %v, want [UNSET_TOKEN]", o.Unset)
	}
	var params *outputconf.Prop
	for i := range o.Props {
		if o.Props[i].Key == "params" {
			params = &o.Props[i]
		}
	}
	if params == nil || params.Scalar {
		t.Errorf("params (a list) = %+v, want a non-scalar prop", params)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	dir := t.TempDir()
	for text, want := range map[string]string{
		"- a\n- b\n":                       "must be a map of sections",
		"pipeline:\n  outputs: 3\n":        "pipeline.outputs must be a list",
		"pipeline:\n  outputs:\n    - x\n": "an output must be a map of keys",
		"includes:\n  - nope.yaml\n":       "include",
		"includes:\n  - self.yaml\n":       "included twice",
		"env: [3]\n":                       "an env list entry must be a map",
		"pipeline: {outputs: [{name: a}\n": "did not find expected",
		"includes:\n  - 'glob-none-*'\n":   "matches no file",
	} {
		p := write(t, dir, "self.yaml", text)
		if _, err := outputconf.Load(p, "flatstore", nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	p := write(t, dir, "empty.yml", "")
	if outs, err := outputconf.Load(p, "flatstore", nil); err != nil || len(outs) != 0 {
		t.Errorf("empty file: %v, %v", outs, err)
	}
}
