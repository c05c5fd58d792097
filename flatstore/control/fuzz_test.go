package control

import (
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
		b.mu.Lock()
		defer b.mu.Unlock()
		for p := range b.rotations {
			if p != managed {
				t.Fatalf("rotated %q, which is not managed", p)
			}
		}
	})
}
