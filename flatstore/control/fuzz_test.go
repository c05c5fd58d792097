package control

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzMI feeds arbitrary request bodies to the JSON-RPC handler of a real
// server with a real backend: it never panics, every answer is a JSON-RPC
// 2.0 reply with a known status (or the empty answer to a notification),
// and no file but the managed one is ever rotated.
//
// Longer runs: go test ./flatstore/control/ -run '^$' -fuzz '^FuzzMI$' -fuzztime 60s
func FuzzMI(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"evi_flat_rotate","params":{"path_to_file":"MANAGED"},"id":1}`,
		`{"jsonrpc":"2.0","method":"event_flatstore:rotate","params":["MANAGED"],"id":"x"}`,
		`{"jsonrpc":"2.0","method":"rotate","params":{"path":"/etc/passwd"},"id":null}`,
		`{"jsonrpc":"2.0","method":"event_flatstore:status","id":7}`,
		`{"jsonrpc":"2.0","method":"nope","id":1.50}`,
		`{"jsonrpc":"2.0","method":"evi_flat_rotate","params":["/etc/passwd"]}`,
		`[1,2,3]`, `{`, ``, `{"jsonrpc":"1.0"}`, `{"id":{"a":1}}`,
		`{"jsonrpc":"2.0","method":"evi_flat_rotate","params":{"path_to_file":5},"id":"\u00e9"}`,
		`{"jsonrpc":"2.0","method":"rotate","params":[-1.5e3],"id":"\ud83d\ude00\n"}`,
		`{"jsonrpc":"2.0","method":"rotate","params":["MANAGED\u0000"],"id":2}`,
		"{\"jsonrpc\":\"2.0\",\"method\":\"rotate\",\"params\":[\"MANAGED\"],\"id\":3}\x00",
		"{\"jsonrpc\":\"2.0\",\"method\":\"rotate\",\"params\":[\"MAN\x00AGED\"],\"id\":4}",
		`{"jsonrpc":"2.0","method":"rotate","params":["MANAGED\\u0000"],"id":"\ud800\u00"}`,
		`{"jsonrpc":"2.0","method":"rotate","params":["MANAGED"],"id":"h\u00e9\"\\\/\u0041"}`,
	} {
		f.Add([]byte(s))
	}
	paths := tempPaths(f, "managed.log")
	b := newFileBackend(f, paths...)
	h, _ := serve(f, "", b)
	managed := paths[0]
	f.Fuzz(func(t *testing.T, body []byte) {
		// Let the corpus name the managed file without knowing the temp dir.
		body = []byte(strings.ReplaceAll(string(body), "MANAGED", filepath.ToSlash(managed)))
		status, out := h.s.handleMI(body, "fuzz")
		switch status {
		case http.StatusAccepted:
			if len(out) != 0 {
				t.Fatalf("a notification got a body: %q", out)
			}
			return
		case http.StatusOK, http.StatusBadRequest:
		default:
			t.Fatalf("status %d for %q", status, body)
		}
		var rep struct {
			JSONRPC string          `json:"jsonrpc"`
			Result  json.RawMessage `json:"result"`
			Error   *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("reply %q to %q is not JSON: %v", out, body, err)
		}
		if rep.JSONRPC != "2.0" || (rep.Result == nil) == (rep.Error == nil) {
			t.Fatalf("reply %q to %q is not a JSON-RPC 2.0 reply", out, body)
		}
		if bytes.IndexByte(body, 0) >= 0 && (rep.Error == nil || rep.Error.Code != codeParseError || string(rep.ID) != "null") {
			t.Fatalf("reply %q to %q, which holds a NUL: want -32700 with id null", out, body)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for p := range b.rotations {
			if p != managed {
				t.Fatalf("rotated %q, which is not managed", p)
			}
		}
	})
}

// FuzzStringID: a string id goes out as the same string, with no escape of
// a non-ASCII character left in it.
func FuzzStringID(f *testing.F) {
	for _, s := range []string{`"abc"`, `"\u00e9\n"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\\u00e9"`, `"\u0041\/"`, "\"h\u00e9\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		var in string
		if !json.Valid(tok) || json.Unmarshal(tok, &in) != nil {
			return
		}
		out := rawUTF8(tok)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q became %q, which is not a JSON string: %v", tok, out, err)
		}
		if got != in {
			t.Fatalf("%q became %q: %q, want %q", tok, out, got, in)
		}
		for i := 0; i+5 < len(out); i++ {
			if out[i] == '\\' {
				if out[i+1] == 'u' {
					if r, n := unicodeEscape(out[i:]); r >= 0x80 && n > 0 {
						t.Fatalf("%q became %q, which still escapes U+%04X", tok, out, r)
					}
				}
				i++
			}
		}
	})
}
