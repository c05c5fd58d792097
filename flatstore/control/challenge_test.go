package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GET /challenge answers without the token, with the proof only a holder
// of the token can make, bound to the listener it was reached on.
func TestChallenge(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	b := newFileBackend(t)
	tcp, _ := serve(t, token, b)
	unix, _ := startAt(t, "unix:"+filepath.Join(t.TempDir(), "c.sock"), token, testLimits(), b)
	open, _ := serve(t, "", b)
	nonce := strings.Repeat("0123456789abcdef", 4)
	_, port, _ := net.SplitHostPort(tcp.Addr())
	for _, c := range []struct {
		h    *Handle
		want challengeReply
	}{
		{tcp, challengeReply{Token: true, Bind: "tcp:" + port, Proof: proof(token, nonce, "tcp:"+port)}},
		{unix, challengeReply{Token: true, Bind: "unix", Proof: proof(token, nonce, "unix")}},
		{open, challengeReply{}},
	} {
		r := do(t, c.h, http.MethodGet, "/challenge?nonce="+nonce, "", nil)
		var got challengeReply
		if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil || got != c.want {
			t.Fatalf("%s: %d %s, want %+v", c.h.Addr(), r.status, r.body, c.want)
		}
		for _, bad := range []string{"", "nonce=", "nonce=abc", "nonce=" + strings.ToUpper(nonce), "nonce=" + nonce + "&nonce=" + nonce,
			"nonce=" + strings.Repeat("a", 129), "nonce=" + nonce[:31] + "g"} {
			if r := do(t, c.h, http.MethodGet, "/challenge?"+bad, "", nil); r.status != http.StatusBadRequest {
				t.Fatalf("%s: /challenge?%s: %d %s, want 400", c.h.Addr(), bad, r.status, r.body)
			}
		}
	}
	if r := do(t, tcp, http.MethodGet, "/challenge?nonce="+nonce, "wrong-wrong-wrong-wrong", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("/challenge with a wrong token: %d, want 401", r.status)
	}
	// The proof depends on the token, the nonce and the listener.
	p := proof(token, nonce, "tcp:2021")
	for _, other := range []string{proof(token+"x", nonce, "tcp:2021"), proof(token, nonce[1:]+"0", "tcp:2021"), proof(token, nonce, "tcp:2022"), proof(token, nonce, "unix")} {
		if other == p {
			t.Fatal("two different inputs give the same proof")
		}
	}
}

// squatter is a program holding the address a client dials: it answers as
// a perfect look-alike of flatstore (it echoes every id, lists every path in
// status, answers OK to every rotate), answers the challenge with
// challenge, and records whether the token ever reached it, anywhere in a
// request.
type squatter struct {
	addr string
	mu   sync.Mutex
	got  []string // requests that carried the token
	n    int      // requests seen
}

func newSquatter(t *testing.T, token, path string, challenge http.HandlerFunc) *squatter {
	t.Helper()
	sq := &squatter{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hdr bytes.Buffer
		_ = r.Header.Write(&hdr)
		sq.mu.Lock()
		sq.n++
		if strings.Contains(hdr.String()+r.URL.String()+string(body), token) {
			sq.got = append(sq.got, r.Method+" "+r.URL.String())
		}
		sq.mu.Unlock()
		if r.URL.Path == challengePath {
			challenge(w, r)
			return
		}
		var req map[string]json.RawMessage
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(req["method"]), "status") {
			w.Write([]byte(`{"jsonrpc":"2.0","result":{"files":[{"path":` + strconv.Quote(path) + `}]},"id":` + string(req["id"]) + `}`))
			return
		}
		w.Write([]byte(`{"jsonrpc":"2.0","result":"OK","id":` + string(req["id"]) + `}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	sq.addr = ln.Addr().String()
	return sq
}

func (sq *squatter) leaks() ([]string, int) {
	sq.mu.Lock()
	defer sq.mu.Unlock()
	return append([]string(nil), sq.got...), sq.n
}

// A squatter that echoes every id and lists every path never receives the
// token, whatever it answers to the challenge: not at all, a made-up proof,
// "no token", or the real endpoint's own proof relayed from another port.
// The client refuses with a *NotFlatstoreError before sending anything
// else; without a token it still refuses what does not list the path.
func TestSquatterNeverGetsToken(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	real, _ := serve(t, token, b)
	relay := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(&url.URL{Scheme: "http", Host: real.Addr()})
		pr.Out.Host = "127.0.0.1"
	}}
	for _, c := range []struct {
		name      string
		challenge http.HandlerFunc
		want      string
	}{
		{"no challenge", http.NotFound, "does not answer flatstore's token challenge (HTTP 404 Not Found"},
		{"made-up proof", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"token":true,"bind":"tcp:1","proof":"` + strings.Repeat("ab", 32) + `"}`))
		}, "it does not hold this control_token"},
		{"echoes the nonce", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"token":true,"proof":"` + r.URL.Query().Get("nonce") + `"}`))
		}, "it does not hold this control_token"},
		{"claims no token", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"token":false}`))
		}, "it has no control_token, but a token was given"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("OK")) }, "its answer to the token challenge is not flatstore's"},
		{"relays the real endpoint", relay.ServeHTTP, "it holds this control_token but answers for tcp:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sq := newSquatter(t, token, p, c.challenge)
			cl, err := NewClient(sq.addr, token, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			errs := []error{cl.Rotate(p)}
			_, err = cl.Status()
			errs = append(errs, err)
			_, _, err = cl.Do(http.MethodPost, "/rotate?path="+url.QueryEscape(p), nil)
			errs = append(errs, err)
			_, _, err = cl.Do(http.MethodGet, "/metrics", nil)
			errs = append(errs, err)
			for i, err := range errs {
				var nf *NotFlatstoreError
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "the control_token was not sent") {
					t.Errorf("request %d: %v, want a NotFlatstoreError with %q", i, err, c.want)
				}
			}
			leaks, n := sq.leaks()
			if len(leaks) != 0 {
				t.Fatalf("the squatter received the token in %v", leaks)
			}
			if n != 4 {
				t.Fatalf("the squatter saw %d requests, want the 4 challenges only", n)
			}
		})
	}
	if b.totalRotations() != 0 {
		t.Fatal("the real endpoint rotated through the relay")
	}

	// Without a token there is nothing to leak; the look-alike that lists
	// every path is still refused by Rotate's id and status checks only when
	// it does not list the path, as before (docs/control-endpoint.md: the unix socket is the
	// way to rule out a squatter).
	sq := newSquatter(t, token, "/elsewhere.log", http.NotFound)
	cl, _ := NewClient(sq.addr, "", 5*time.Second)
	defer cl.Close()
	if err := cl.Rotate(p); err == nil || !strings.Contains(err.Error(), "does not list "+p) {
		t.Fatalf("a look-alike without a token: %v", err)
	}
}

// The real endpoint proves itself once per client, and the token then goes
// with every request, over TCP and over the unix socket; a client with a
// wrong token never sends it and says why.
func TestClientProvesOnce(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	tcp, logs := serve(t, token, b)
	unix, ulogs := startAt(t, "unix:"+filepath.Join(t.TempDir(), "c.sock"), token, testLimits(), b)
	for _, h := range []*Handle{tcp, unix} {
		cl, _ := NewClient(h.Addr(), token, 5*time.Second)
		defer cl.Close()
		for range 3 {
			if err := cl.Rotate(p); err != nil {
				t.Fatalf("%s: %v", h.Addr(), err)
			}
		}
		wrong, _ := NewClient(h.Addr(), token+"-wrong", 5*time.Second)
		defer wrong.Close()
		err := wrong.Rotate(p)
		var nf *NotFlatstoreError
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), "it does not hold this control_token: the token differs") {
			t.Fatalf("%s: a wrong token: %v", h.Addr(), err)
		}
	}
	if b.rotated(p) != 6 {
		t.Fatalf("%d rotations, want 6", b.rotated(p))
	}
	// No 401 at all: the wrong token never went out.
	if strings.Contains(logs.String()+ulogs.String(), "(401;") {
		t.Fatalf("a token went out unproven:\n%s\n%s", logs, ulogs)
	}
	// A unix peer is named "unix" in the log.
	if !strings.Contains(ulogs.String(), "(mi from unix): OK") {
		t.Fatalf("the unix client is not logged as unix:\n%s", ulogs)
	}
}
