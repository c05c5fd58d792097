package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/outputconf"
	"github.com/flatstore/flatstore/internal/repo"
)

// sipClassic is a classic configuration with a plain flatstore output, a
// reversible one by alias, and another plugin's output between.
const sipClassic = `@SET DIR=/var/log/flatstore
[SERVICE]
    Flush 1

[OUTPUT]
    Name  stdout
    Match *

[OUTPUT]
    Name   flatstore
    Match  *
    path   flatstore:${DIR}/events.log

[OUTPUT]
    Name             flatstore
    Alias            sip_events
    Match            sip.*
    path             ${DIR}/sip/$EVENT.log
    mkdir            true
    escape           ${FLATSTORE_TEST_ESCAPE}
    delimiter        semicolon
    params           caller, callee, reason
    time_format      unix_ms
    header           auto
    control_listen   0.0.0.0:2021
    control_token    ${FLATSTORE_TEST_TOKEN}
    file_permissions 0640
`

// sipYAML is the same in YAML, the reversible output in an include.
const sipYAML = `env:
  DIR: /var/log/flatstore
service:
  flush: 1
pipeline:
  outputs:
    - name: stdout
      match: '*'
    - name: flatstore
      match: '*'
      path: flatstore:${DIR}/events.log
includes:
  - sip.yaml
`

const sipYAMLInclude = `pipeline:
  outputs:
    - name: flatstore
      alias: sip_events
      match: 'sip.*'
      path: ${DIR}/sip/$EVENT.log
      mkdir: true
      escape: ${FLATSTORE_TEST_ESCAPE}
      delimiter: semicolon
      params: caller, callee, reason
      timeFormat: unix_ms
      header: auto
      control_listen: 0.0.0.0:2021
      control_token: ${FLATSTORE_TEST_TOKEN}
      file_permissions: 0640
`

// sipSettings are the keys of the sip_events output, as the plugin gets
// them.
var sipSettings = map[string]string{
	"escape": "csv", "delimiter": "semicolon", "params": "caller, callee, reason",
	"time_format": "unix_ms", "header": "auto",
}

// TestReadConfig: -config and -output take the settings from the Fluent
// Bit configuration, classic or YAML, by alias, instance name or path;
// flags override them.
func TestReadConfig(t *testing.T) {
	t.Setenv("FLATSTORE_TEST_ESCAPE", "csv")
	t.Setenv("FLATSTORE_TEST_TOKEN", "0123456789abcdef0123")
	dir := t.TempDir()
	classic := filepath.Join(dir, "fluent-bit.conf")
	yaml := filepath.Join(dir, "fluent-bit.yaml")
	for p, text := range map[string]string{classic: sipClassic, yaml: sipYAML, filepath.Join(dir, "sip.yaml"): sipYAMLInclude} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"caller", "callee", "reason"}
	cfg := writerConfig(t, sipSettings)
	evs := hostileEvents(2000, len(keys), 5, true)
	data := append(append(event.HeaderLine(cfg.Options), '\n'), encode(t, cfg, keys, evs)...)
	file := fbtest.WriteFile(t, "E_CALL_END.log", data)

	for _, conf := range []string{classic, yaml} {
		for _, name := range []string{"sip_events", "flatstore.1", "/var/log/flatstore/sip/$EVENT.log"} {
			r := read(t, nil, "-config", conf, "-output", name, file)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("%s -output %s: exit %d, stderr:\n%s", conf, name, r.code, r.stderr)
			}
			checkObjects(t, conf+" "+name, r.stdout, cfg, evs, keys)
		}
		// A flag overrides the configuration's key.
		r := read(t, nil, "-config", conf, "-output", "sip_events", "-params", "from,to,why", file)
		if r.code != 0 {
			t.Fatalf("%s -params: exit %d, stderr:\n%s", conf, r.code, r.stderr)
		}
		checkObjects(t, conf+" -params", r.stdout, cfg, evs, []string{"from", "to", "why"})
		r = read(t, nil, "-config", conf, "-output", "sip_events", "-time_format", "none", file)
		if r.code != 1 || !strings.Contains(r.stderr, file+":2: 5 fields, want 4 (event, caller, callee, reason)") {
			t.Errorf("%s -time_format none: exit %d, want 1 and the field count; stderr:\n%.500s", conf, r.code, r.stderr)
		}
		// The other flatstore output: escape opensips, not reversible.
		r = read(t, nil, "-config", conf, "-output", "flatstore:/var/log/flatstore/events.log", fbtest.WriteFile(t, "plain.log", []byte("E,a b\n")))
		if r.code != 0 || r.stdout != `{"event":"E","params":["a b"]}`+"\n" || !strings.Contains(r.stderr, "escape opensips is not reversible") {
			t.Errorf("%s flatstore.0: exit %d, stdout %q, stderr:\n%s", conf, r.code, r.stdout, r.stderr)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-output", "nope"}, `no output has the alias, name or path "nope"; there are: flatstore.0 (path flatstore:/var/log/flatstore/events.log`},
			{nil, "it has 2 of them, name one with -output"},
			{[]string{"-output", "stdout.0"}, "no output has"},
		} {
			r := read(t, nil, append(append([]string{"-config", conf}, tc.args...), file)...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "alias sip_events") {
				t.Errorf("%s %v: exit %d, stderr:\n%s\nwant 2 and %q", conf, tc.args, r.code, r.stderr, tc.want)
			}
		}
	}

	// An unset variable is said; the settings it leaves are still checked.
	t.Setenv("FLATSTORE_TEST_ESCAPE", "")
	r := read(t, nil, "-config", classic, "-output", "sip_events", file)
	if !strings.Contains(r.stderr, "${FLATSTORE_TEST_ESCAPE} is not set here") {
		t.Errorf("unset variable: no warning:\n%s", r.stderr)
	}
	t.Setenv("FLATSTORE_TEST_ESCAPE", "rot13")
	r = read(t, nil, "-config", yaml, "-output", "sip_events", file)
	if r.code != 2 || !strings.Contains(r.stderr, "invalid settings (from flatstore.1 in "+yaml+" and the flags)") || !strings.Contains(r.stderr, `escape "rot13"`) {
		t.Errorf("bad escape in the config: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// A YAML list where the plugin takes text.
	list := filepath.Join(dir, "list.yml")
	if err := os.WriteFile(list, []byte("pipeline:\n  outputs:\n    - name: flatstore\n      path: /x\n      params: [a, b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = read(t, nil, "-config", list, file)
	if r.code != 2 || !strings.Contains(r.stderr, "params is a list or a map") {
		t.Errorf("params as a YAML list: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	// No flatstore output at all.
	none := fbtest.WriteFile(t, "none.conf", []byte("[OUTPUT]\n    Name stdout\n"))
	if r := read(t, nil, "-config", none, file); r.code != 2 || !strings.Contains(r.stderr, "no flatstore output in it") {
		t.Errorf("no flatstore output: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestReadShippedConfigs: every flatstore output of conf/fluent-bit.conf
// and conf/fluent-bit.yaml reads back what the plugin writes with its keys.
func TestReadShippedConfigs(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"FLATSTORE_OUT", "FLATSTORE_CONTROL", "FLATSTORE_DEMO_IN", "FLATSTORE_EXIT_ON_EOF", "FLATSTORE_FORWARD_LISTEN"} {
		t.Setenv(env, "")
	}
	t.Setenv("FLATSTORE_OUT", "/var/log/flatstore")
	for _, conf := range []string{filepath.Join(root, "conf", "fluent-bit.conf"), filepath.Join(root, "conf", "fluent-bit.yaml")} {
		outs, err := outputconf.Load(conf, "flatstore", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) == 0 {
			t.Fatalf("%s: no flatstore output", conf)
		}
		for _, o := range outs {
			settings := map[string]string{}
			for _, p := range o.Props {
				if _, seen := settings[p.Key]; !seen && !strings.HasPrefix(p.Key, "control_") && p.Key != "path" {
					settings[p.Key] = p.Value
				}
			}
			cfg := writerConfig(t, settings)
			var keys []string
			if keys = cfg.Params; keys == nil {
				keys = []string{"call_id", "from_uri", "status"}
			}
			evs := hostileEvents(500, len(keys), 6, false)
			if cfg.Escape != event.EscapeBackslash && cfg.Escape != event.EscapeCSV {
				for i := range evs { // values such an escape keeps
					evs[i].name = "E_CALL_END"
					for j := range evs[i].values {
						evs[i].values[j] = strings.Map(func(r rune) rune {
							if r == '\r' || r == '\n' || strings.ContainsRune(cfg.Delimiter, r) {
								return -1
							}
							return r
						}, evs[i].values[j])
					}
				}
			}
			data := encode(t, cfg, keys, evs)
			if h := event.HeaderLine(cfg.Options); h != nil {
				data = append(append(h, '\n'), data...)
			}
			r := read(t, nil, "-config", conf, "-output", o.Name, fbtest.WriteFile(t, "e.log", data))
			if r.code != 0 {
				t.Fatalf("%s %s: exit %d, stderr:\n%s", conf, o.Describe(), r.code, r.stderr)
			}
			checkObjects(t, conf+" "+o.Name, r.stdout, cfg, evs, cfg.Params)
		}
	}
}
