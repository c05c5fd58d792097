package control

import (
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
)

// The client against real servers, over TCP and a unix socket, with a token.
func TestClient(t *testing.T) {
	t.Parallel()
	ps := tempPaths(t, "a.log", "broken.log")
	b := newFileBackend(t, ps...)
	b.fail[ps[1]] = errors.New("close: input/output error")
	const token = "0123456789abcdef-token"
	tcp, _ := serve(t, token, b)
	unix, _ := startAt(t, "unix:"+filepath.Join(t.TempDir(), "c.sock"), token, testLimits(), b)

	for _, h := range []*Handle{tcp, unix} {
		c, err := NewClient(h.Addr(), token, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		files, err := c.Status()
		if err != nil || len(files) != 2 {
			t.Fatalf("%s: Status: %v %v", h.Addr(), files, err)
		}
		before := b.rotated(ps[0])
		if err := c.Rotate(ps[0]); err != nil || b.rotated(ps[0]) != before+1 {
			t.Fatalf("%s: Rotate: %v", h.Addr(), err)
		}
		// A spelling that cleans to a managed path is still the server's
		// "File not found": it manages paths byte for byte.
		err = c.Rotate(filepath.Dir(ps[0]) + "//a.log")
		var re *RPCError
		if !errors.As(err, &re) || re.Code != 400 || !errors.Is(err, flatstore.ErrNotManaged) || err.Error() != "File not found" {
			t.Fatalf("%s: Rotate of an unmanaged spelling: %v", h.Addr(), err)
		}
		err = c.Rotate(ps[1])
		if !errors.As(err, &re) || re.Code != 500 || errors.Is(err, flatstore.ErrNotManaged) ||
			err.Error() != "close: input/output error (code 500)" {
			t.Fatalf("%s: failing Rotate: %v", h.Addr(), err)
		}
		_, err = c.Call("evi_flat_rotate", []any{})
		if !errors.As(err, &re) || re.Code != -32602 || re.Data != "Too few or too many parameters" ||
			err.Error() != "Invalid params: Too few or too many parameters (code -32602)" {
			t.Fatalf("%s: Call with no params: %v", h.Addr(), err)
		}
		res, err := c.Call("rotate", map[string]any{"path_to_file": ps[0]})
		if err != nil || string(res) != `"OK"` {
			t.Fatalf("%s: Call rotate: %s %v", h.Addr(), res, err)
		}
		status, body, err := c.Do(http.MethodPost, "/rotate?path="+url.QueryEscape(ps[0]), nil)
		if err != nil || status != http.StatusOK || string(body) != "OK\n" {
			t.Fatalf("%s: Do POST /rotate: %d %q %v", h.Addr(), status, body, err)
		}
		if status, body, _ := c.Do(http.MethodGet, "/healthz", nil); status != http.StatusOK || string(body) != "ok\n" {
			t.Fatalf("%s: Do GET /healthz: %d %q", h.Addr(), status, body)
		}

		// Without the token: the HTTP error, not a JSON-RPC one.
		bare, _ := NewClient(h.Addr(), "", 0)
		defer bare.Close()
		if err := bare.Rotate(ps[0]); err == nil || !strings.HasPrefix(err.Error(), "HTTP 401 Unauthorized: ") {
			t.Fatalf("%s: Rotate without the token: %v", h.Addr(), err)
		}
	}
	for _, bad := range []string{"nohostport", "unix:", ""} {
		if _, err := NewClient(bad, "", 0); err == nil {
			t.Fatalf("NewClient(%q) succeeded", bad)
		}
	}
}
