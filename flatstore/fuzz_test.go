package flatstore_test

// Fuzz tests. Their seed corpora (testdata/fuzz/FuzzXxx) run with every
// `go test`; to search for new inputs, run one at a time, for example:
//
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzFlush$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzLineRoundTrip$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzParseConfig$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzTemplate$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzRenderLinear$' -fuzztime 60s
//	go test ./flatstore/ -run '^$' -fuzz '^FuzzManifest$' -fuzztime 60s  (retention_test.go)
//
// A failing input is written under testdata/fuzz/FuzzXxx/; commit it with
// the fix so that it stays a regression test.

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/records"
)

// FuzzFlush feeds arbitrary bytes to Instance.Flush: it must never panic
// (a recovered panic would come back as RETRY, which a static file on a
// local disk never needs) nor hang, and every line it writes ends in '\n'
// with no CR or LF inside (escape opensips).
func FuzzFlush(f *testing.F) {
	rec := func(rs ...records.Record) []byte { return records.Records(rs...) }
	f.Add(rec(records.Record{Body: records.KV{"event", "E_TEST", "a", "x\ny", "b", 1}}))
	f.Add(rec(records.Record{Legacy: true, TimeKind: records.TimeFloat, Body: records.KV{"m", records.KV{"k", []any{1, nil, 1.5}}}}))
	f.Add(append(records.GroupStart(records.KV{"s", 1}, nil), records.GroupEnd()...))
	f.Add(rec(records.Record{Body: "not a map"}, records.Record{Body: records.KV{"event", 1}}))
	f.Add([]byte{0x92, 0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x81, 0xa1, 'a', 0xd4, 0x03, 0xff})
	f.Add([]byte{0x92, 0x01, 0x81, 0xa1, 'k', 0x91, 0x91, 0x91, 0x91, 0x91, 0x91})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add(records.AppendRecord(nil, records.Record{Body: records.Raw(keyBomb(30))}))
	f.Add(records.AppendRecord(nil, records.Record{Body: records.KV{"event", "E", "m", records.KV{records.KV{"k", strings.Repeat("\x01", 64<<10)}, 1}}}))

	dir := f.TempDir()
	path := filepath.Join(dir, "fuzz.log")
	cfg, err := flatstore.ParseConfig(flatstore.MapGetter{"path": path, "time_format": "rfc3339_nano", "idle_timeout": "0"})
	if err != nil {
		f.Fatal(err)
	}
	in, err := flatstore.NewInstance(flatstore.NewProcess(), cfg, "fuzz", logger.New("fuzz", logger.NewWriterSink(io.Discard, logger.LevelDebug)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(in.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		r := in.Flush(data, "fuzz.tag")
		if r != flatstore.OK && r != flatstore.Error {
			t.Fatalf("Flush = %v", r)
		}
		out, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if r == flatstore.Error && len(out) > 0 {
			t.Fatalf("ERROR but wrote %q", out)
		}
		if len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("output does not end in a newline: %q", out)
		}
		if bytes.IndexByte(out, '\r') >= 0 {
			t.Fatalf("CR in output %q", out)
		}
	})
}

// FuzzParseConfig: ParseConfig never panics, each line of an error names a
// key, and a config it accepts can encode a record.
func FuzzParseConfig(f *testing.F) {
	keys := flatstore.KnownKeys()
	f.Add(uint8(0), "", uint8(1), "", "e.log")
	f.Add(uint8(3), "||", uint8(5), "##", "e.log")
	f.Add(uint8(3), ",", uint8(5), "##", "")
	f.Add(uint8(9), "64x", uint8(11), "0", "sub/e.log")
	f.Add(uint8(4), "csv", uint8(3), "\"", "$TAG/$EVENT.log")
	f.Add(uint8(8), "auto", uint8(2), "a,,b", "$k['x'.log")
	f.Add(uint8(18), ".%Q", uint8(19), "0.0.0.0:1", "$TAG[9999999999999999999].log")
	f.Add(uint8(17), "9999999999999g", uint8(15), "1.5s", "flatstore:")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, k1 uint8, v1 string, k2 uint8, v2 string, path string) {
		g := flatstore.MapGetter{"path": dir + "/" + path}
		g[keys[int(k1)%len(keys)]] = v1
		g[keys[int(k2)%len(keys)]] = v2
		cfg, err := flatstore.ParseConfig(g)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				ok := strings.HasPrefix(line, `"escape_delimiter" length`)
				for _, k := range keys {
					ok = ok || strings.HasPrefix(line, k+` "`)
				}
				if !ok {
					t.Fatalf("error line %q names no key (config %q)", line, g)
				}
			}
			return
		}
		if cfg.Delimiter == "" || cfg.Path == "" || cfg.Template == nil {
			t.Fatalf("accepted config %+v lacks a delimiter or a path", cfg)
		}
		body := records.AppendKV(nil, records.KV{"event", "E", "a", "x,y\n", "b", 1})
		line, _, _, err := event.NewEncoder(cfg.Options).AppendLine(nil, t0, body, []byte("t"))
		if err != nil || len(line) == 0 || line[len(line)-1] != '\n' {
			t.Fatalf("AppendLine = %q, %v", line, err)
		}
		event.HeaderLine(cfg.Options)
		cfg.Template.Render(nil, []byte("t"), []byte("E"), body, event.Time{}, nil)
	})
}

// keyBomb is a record body of about 3×depth bytes whose map keys are maps,
// nested depth deep: {"event":"E_BOMB","k":{{{…{"a":nil}…}:nil}:nil}}.
// Rendering each level's key again inside the next doubled it per level:
// at depth 30 it took gigabytes.
func keyBomb(depth int) []byte {
	inner := []byte{0x81, 0xa1, 'a', 0xc0}
	for i := 0; i < depth; i++ {
		inner = append(append([]byte{0x81}, inner...), 0xc0)
	}
	body := records.AppendKV(nil, records.KV{"event", "E_BOMB"})
	body[0]++ // one more pair: "k" and the bomb
	body = append(body, 0xa1, 'k')
	return append(body, inner...)
}

// renderFactor bounds how many bytes a line may hold per byte of the record
// it renders. The worst byte is a control byte in a string inside a map
// used as a key: \u00XX in JSON (6 bytes), its backslash escaped once more
// as part of the key's string (7), then each backslash doubled by escape
// backslash (9). Structure costs less ("false," for one byte). A line
// longer than renderFactor×input+renderSlack means rendering amplifies.
const (
	renderFactor = 12
	renderSlack  = 128 // the tag as event name, a time parameter, the newline
)

// FuzzRenderLinear: whatever the record, its line is at most renderFactor
// bytes per byte of the record (plus a constant), in every escape mode and
// with a multi-byte delimiter. A rendering that grows faster than the
// record (the key bomb doubled per level) fails here, not only a panic.
func FuzzRenderLinear(f *testing.F) {
	f.Add(keyBomb(30), uint8(0))
	f.Add(keyBomb(10), uint8(1))
	f.Add(keyBomb(200), uint8(2))
	f.Add(records.AppendKV(nil, records.KV{"event", "E", "m", records.KV{records.KV{"\x01\"", []any{false, nil}}, 1}}), uint8(3))
	f.Add(records.AppendKV(nil, records.KV{"e", []any{false, false, nil, true, 0, -1}}), uint8(5))
	f.Add(records.AppendKV(nil, records.KV{"s", "\x00\x01\x02\"\\,||\r\n"}), uint8(7))
	// Control bytes inside a map used as a key: nine bytes a byte under
	// escape backslash (mode 4), the JSON made a string and escaped where
	// it lies; csv (mode 6) quotes it there.
	escKey := records.AppendKV(nil, records.KV{"event", "E", "m", records.KV{records.KV{"k", strings.Repeat("\x01", 4096) + "\",\n"}, []any{false, "\""}}})
	f.Add(escKey, uint8(4))
	f.Add(escKey, uint8(5))
	f.Add(escKey, uint8(6))
	dir := f.TempDir()
	var encs []*event.Encoder
	for _, esc := range []string{"opensips", "none", "backslash", "csv"} {
		for _, d := range []string{",", "||"} {
			if esc == "csv" && d != "," {
				d = ";"
			}
			cfg, err := flatstore.ParseConfig(flatstore.MapGetter{"path": dir + "/e.log", "escape": esc,
				"delimiter": d, "time_format": "rfc3339_nano"})
			if err != nil {
				f.Fatal(err)
			}
			encs = append(encs, event.NewEncoder(cfg.Options))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		enc := encs[int(mode)%len(encs)]
		line, rest, _, err := enc.AppendLine(nil, t0, body, []byte("tag"))
		if err != nil {
			// A small record is never too large: that would be amplification
			// stopped by the line limit.
			if strings.HasSuffix(err.Error(), event.DropTooLarge) && renderFactor*len(body)+renderSlack < event.MaxLineBytes {
				t.Fatalf("a record of %d bytes was too large to render", len(body))
			}
			return // skipped records write nothing
		}
		used := len(body) - len(rest)
		if max := renderFactor*used + renderSlack; len(line) > max {
			t.Fatalf("a record of %d bytes rendered %d bytes (more than %d×%d+%d): %q",
				used, len(line), renderFactor, used, renderSlack, line)
		}
	})
}

// FuzzOwnership: whatever tag and values a record carries, a template
// output never writes into the configured file of the output beside it in
// the same directory, nor into its rotated names, nor anywhere outside its
// directory: audit.log keeps exactly its bytes, and the sibling directory
// stays empty.
func FuzzOwnership(f *testing.F) {
	for _, s := range []string{"audit.log", "audit.log.1", "audit.log.20261206-000000", "audit.log.gz", ".flatstore",
		".audit.log.flatstore", "../outside/x", "..", ".", "/etc/passwd", "audit.log/..", "ok"} {
		f.Add(s, s)
	}
	root := f.TempDir()
	dir, outside := filepath.Join(root, "logs"), filepath.Join(root, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	audit := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(audit, []byte("PRE\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	proc := flatstore.NewProcess()
	log := logger.New("fuzz", logger.NewWriterSink(io.Discard, logger.LevelDebug))
	newOut := func(kv ...string) *flatstore.Instance {
		g := flatstore.MapGetter{"control_listen": "off", "idle_timeout": "0", "rotate_max_files": "2", "rotate_count": "1000000"}
		for i := 0; i+1 < len(kv); i += 2 {
			g[kv[i]] = kv[i+1]
		}
		cfg, err := flatstore.ParseConfig(g)
		if err != nil {
			f.Fatal(err)
		}
		in, err := flatstore.NewInstance(proc, cfg, "fuzz", log)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(in.Close)
		return in
	}
	newOut("path", audit)
	tmpl := newOut("path", filepath.Join(dir, "$TAG"), "max_dynamic_files", "0")
	f.Fuzz(func(t *testing.T, tag, value string) {
		data := records.Records(records.Record{Body: records.KV{"event", "FORGED", "v", value, "n", `{"path":"x","rotated":[{"name":"../outside/x"}]}`}})
		tmpl.Flush(data, tag)
		if got, err := os.ReadFile(audit); err != nil || string(got) != "PRE\n" {
			t.Fatalf("tag %q: audit.log holds %q (%v), want its own bytes", tag, got, err)
		}
		if ents, err := os.ReadDir(outside); err != nil || len(ents) != 0 {
			t.Fatalf("tag %q: %d files appeared outside the directory (%v)", tag, len(ents), err)
		}
	})
}
