package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbconf"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// pluginChunks frames evs as Fluent Bit hands them to the plugin: records
// [[time, meta], body], 400 to a chunk.
func pluginChunks(keys []string, evs []wantEvent) []byte {
	var chunks [][]byte
	var chunk []byte
	for i, ev := range evs {
		kv := records.KV{"event", ev.name}
		for j, k := range keys {
			if ev.values[j] != "\x00absent" {
				kv = append(kv, k, ev.values[j])
			}
		}
		chunk = records.AppendRecord(chunk, records.Record{Time: time.Unix(ev.time.Sec, ev.time.Nsec), Body: kv})
		if (i+1)%400 == 0 || i == len(evs)-1 {
			chunks = append(chunks, chunk)
			chunk = nil
		}
	}
	return records.Frames(chunks...)
}

// TestReadWhatThePluginWrote: the real plugin .so, loaded by the host as
// Fluent Bit loads it, writes hostile records with escape csv; read gives
// back every value and the record times.
func TestReadWhatThePluginWrote(t *testing.T) {
	keys := []string{"caller", "callee", "reason", "note"}
	evs := hostileEvents(3000, len(keys), 7, true)
	in := fbtest.WriteFile(t, "in.chunks", pluginChunks(keys, evs))
	out := filepath.Join(t.TempDir(), "events.log")
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+out, "-p", "escape=csv",
		"-p", "control_listen=off", "-p", "time_format=rfc3339_nano", "-p", "params="+strings.Join(keys, ","))
	if code != 0 {
		t.Fatalf("host exit %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	r := read(t, nil, "-escape", "csv", "-time_format", "rfc3339_nano", "-params", strings.Join(keys, ","), out)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("read: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	cfg := writerConfig(t, map[string]string{"escape": "csv", "time_format": "rfc3339_nano"})
	checkObjects(t, "plugin csv", r.stdout, cfg, evs, keys)
}

// TestReadPluginConfig: one classic configuration drives both the plugin
// (through the host, as Fluent Bit would run it) and read -config, so
// writer and reader agree by construction: backslash, a two-byte
// delimiter, suppress_event_name and the record time.
func TestReadPluginConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("FLATSTORE_TEST_DIR", dir)
	conf := fbtest.WriteFile(t, "fluent-bit.conf", []byte(`[OUTPUT]
    Name                flatstore
    Alias               sip_events
    Match               *
    path                flatstore:${FLATSTORE_TEST_DIR}/events.log
    escape              backslash
    delimiter           ||
    suppress_event_name on
    time_format         unix_ns
    params              caller, callee, reason, note
    control_listen      off
`))
	c, err := fbconf.LoadClassic(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"caller", "callee", "reason", "note"}
	evs := hostileEvents(2000, len(keys), 8, true)
	in := fbtest.WriteFile(t, "in.chunks", pluginChunks(keys, evs))
	sum, stderr, code := fbtest.RunHost(t, append([]string{"-in-chunks", in}, c.HostArgs("flatstore")...)...)
	if code != 0 {
		t.Fatalf("host exit %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	r := read(t, nil, "-config", conf, "-output", "sip_events", filepath.Join(dir, "events.log"))
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("read: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	cfg := writerConfig(t, map[string]string{"escape": "backslash", "delimiter": "||", "suppress_event_name": "on", "time_format": "unix_ns"})
	checkObjects(t, "plugin config", r.stdout, cfg, evs, keys)
}
