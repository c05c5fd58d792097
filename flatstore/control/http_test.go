package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbtest"
)

func TestPlainEndpoints(t *testing.T) {
	t.Parallel()
	ps := tempPaths(t, "e.log", "f.log")
	b := newFileBackend(t, ps...)
	h, logs := serve(t, "", b)

	r := do(t, h, http.MethodPost, "/rotate?path="+url.QueryEscape(ps[0]), "", nil)
	if r.status != http.StatusOK || r.body != "OK\n" {
		t.Fatalf("rotate: %d %q", r.status, r.body)
	}
	if b.isOpen(ps[0]) || !b.isOpen(ps[1]) || b.rotated(ps[0]) != 1 {
		t.Fatal("POST /rotate did not rotate exactly the file asked for")
	}
	for _, bad := range []string{"/nope.log", filepath.Dir(ps[1]) + "//f.log", ""} {
		r = do(t, h, http.MethodPost, "/rotate?path="+url.QueryEscape(bad), "", nil)
		if r.status != http.StatusNotFound || r.body != "File not found\n" {
			t.Fatalf("rotate %q: %d %q", bad, r.status, r.body)
		}
	}
	if !strings.Contains(logs.String(), `control: rotate "/nope.log" (http from`) {
		t.Fatalf("plain rotation not logged:\n%s", logs)
	}
	for _, query := range []string{"", "?p=/x", "?path=/a&path=/b"} {
		if r = do(t, h, http.MethodPost, "/rotate"+query, "", nil); r.status != http.StatusBadRequest {
			t.Fatalf("rotate%s: %d %q, want 400", query, r.status, r.body)
		}
	}
	if b.totalRotations() != 1 || !b.isOpen(ps[1]) {
		t.Fatal("a refused request rotated something")
	}

	r = do(t, h, http.MethodGet, "/status", "", nil)
	var st struct {
		Files []struct {
			Path string `json:"path"`
			Open bool   `json:"open"`
		} `json:"files"`
	}
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %v", r.status, r.header)
	}
	if err := json.Unmarshal([]byte(r.body), &st); err != nil || len(st.Files) != 2 {
		t.Fatalf("status: %v %s", err, r.body)
	}
	for _, f := range st.Files {
		if f.Open != (f.Path == ps[1]) {
			t.Fatalf("status: %s", r.body)
		}
	}

	// An instance with no files lists [] rather than null. (Another address:
	// the same "127.0.0.1:0" would share the server above.)
	h2, _ := startAt(t, "127.0.0.2:0", "", testLimits(), newFileBackend(t))
	if r = do(t, h2, http.MethodGet, "/status", "", nil); r.body != "{\"files\":[]}\n" {
		t.Fatalf("empty status: %q", r.body)
	}

	// /metrics serves the gatherer the instance passed in; without one, none.
	r = do(t, h, http.MethodGet, "/metrics", "", nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "\nflatstore_test_total 3\n") {
		t.Fatalf("metrics: %d\n%s", r.status, r.body)
	}
	bare, err := testRegistry().Acquire(flatstore.ParseListen("127.0.0.3:0"), newFileBackend(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Release()
	if r = do(t, bare, http.MethodGet, "/metrics", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("metrics without a gatherer: %d %q, want 404", r.status, r.body)
	}
	if r = do(t, h, http.MethodGet, "/healthz", "", nil); r.status != http.StatusOK || r.body != "ok\n" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}
	if r = do(t, h, http.MethodGet, "/nothing", "", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown path: %d", r.status)
	}
}

func TestWrongMethod(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, _ := serve(t, "", b)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodGet, "/mi", "POST"},
		{http.MethodPut, "/mi", "POST"},
		{http.MethodGet, "/rotate?path=" + url.QueryEscape(p), "POST"},
		{http.MethodDelete, "/rotate?path=" + url.QueryEscape(p), "POST"},
		{http.MethodPost, "/status", "GET, HEAD"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodPost, "/metrics", "GET, HEAD"},
	} {
		r := do(t, h, c.method, c.path, "", nil)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != c.allow {
			t.Fatalf("%s %s: %d Allow %q, want 405 Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.allow)
		}
	}
	if b.totalRotations() != 0 || !b.isOpen(p) {
		t.Fatal("a request with the wrong method rotated")
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	const token = "s3cret-token"
	h, _ := serve(t, token, b)
	rot := []byte(`{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":1}`)

	c, base := client(h)
	send := func(method, path, auth string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(string(body)))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate: Bearer")
		}
		return resp.StatusCode
	}
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer s3cret", "Bearer s3cret-token2", "Basic s3cret-token", "s3cret-token", "Bearer S3CRET-TOKEN"} {
		for _, req := range []struct {
			method, path string
			body         []byte
		}{
			{http.MethodPost, "/mi", rot},
			{http.MethodPost, "/rotate?path=" + url.QueryEscape(p), nil},
			{http.MethodGet, "/status", nil},
			{http.MethodGet, "/metrics", nil},
			{http.MethodGet, "/healthz", nil},
			{http.MethodGet, "/mi", nil},
			{http.MethodGet, "/nothing", nil},
		} {
			want := http.StatusUnauthorized
			if req.path == "/healthz" && auth == "" {
				want = http.StatusOK // the liveness check needs no token; a wrong one is still 401
			}
			if got := send(req.method, req.path, auth, req.body); got != want {
				t.Fatalf("%s %s with Authorization %q: %d, want %d", req.method, req.path, auth, got, want)
			}
		}
	}
	if b.totalRotations() != 0 || !b.isOpen(p) {
		t.Fatal("an unauthorized request rotated")
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token, "Bearer  " + token + " "} {
		if got := send(http.MethodPost, "/mi", auth, rot); got != http.StatusOK {
			t.Fatalf("Authorization %q: %d", auth, got)
		}
	}
	if got := send(http.MethodPost, "/rotate?path="+url.QueryEscape(p), "Bearer "+token, nil); got != http.StatusOK {
		t.Fatalf("plain rotate with token: %d", got)
	}
	if b.rotated(p) != 4 {
		t.Fatalf("rotations %d, want 4", b.rotated(p))
	}
	c.CloseIdleConnections()
}

// rawConn is a fresh connection to h (TCP or unix), closed when the test
// ends.
func rawConn(t *testing.T, h *Handle) net.Conn {
	t.Helper()
	network, addr := "tcp", h.Addr()
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", p
	}
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second)) // a safety net only
	return conn
}

// A web page cannot drive the endpoint: a browser's request carries Origin.
func TestBrowserRefused(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, _ := serve(t, "", b)
	c, base := client(h)
	defer c.CloseIdleConnections()
	for _, req := range []*http.Request{
		must(http.NewRequest(http.MethodPost, base+"/rotate?path="+url.QueryEscape(p), strings.NewReader("x=1"))),
		must(http.NewRequest(http.MethodPost, base+"/mi", strings.NewReader(`{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`))),
		must(http.NewRequest(http.MethodGet, base+"/status", nil)),
	} {
		req.Header.Set("Origin", "http://evil.example")
		req.Header.Set("Content-Type", "text/plain")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s %s with Origin: %d, want 403", req.Method, req.URL.Path, resp.StatusCode)
		}
	}
	if b.totalRotations() != 0 {
		t.Fatal("a browser request rotated")
	}
}

func must(r *http.Request, err error) *http.Request {
	if err != nil {
		panic(err)
	}
	return r
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, _ := serve(t, "", b)

	// Declared length over the limit: refused before the body is read.
	for _, path := range []string{"/mi", "/rotate?path=" + url.QueryEscape(p)} {
		conn := rawConn(t, h)
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, 1<<20)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s with Content-Length 1 MiB: %d, want 413", path, resp.StatusCode)
		}
	}

	// Chunked, so the length is unknown until the limit is crossed; the
	// request is a valid rotate padded with whitespace.
	for _, path := range []string{"/mi", "/rotate?path=" + url.QueryEscape(p)} {
		conn := rawConn(t, h)
		go func() {
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", path)
			body := `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":1}`
			fmt.Fprintf(conn, "%x\r\n%s\r\n", len(body), body)
			pad := strings.Repeat(" ", 4096)
			for range 256 { // 1 MiB; the writes fail once the server hangs up
				if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(pad), pad); err != nil {
					return
				}
			}
			fmt.Fprint(conn, "0\r\n\r\n")
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s chunked 1 MiB: %d, want 413", path, resp.StatusCode)
		}
	}
	if b.totalRotations() != 0 {
		t.Fatal("an oversized request rotated")
	}

	// Just under the limit is fine.
	body := `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":1}`
	body += strings.Repeat(" ", maxBodyBytes-len(body))
	if r := mi(t, h, body); r.body != `{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatalf("64 KiB body: %d %s", r.status, r.body)
	}
}

func TestHeaderLimits(t *testing.T) {
	t.Parallel()
	// Only the header timeout is short, so it alone can end the connection
	// before the client's 20 s safety deadline.
	o := testLimits()
	o.readTimeout, o.writeTimeout, o.idleTimeout = time.Minute, time.Minute, time.Minute
	h, _ := startAt(t, "127.0.0.1:0", "", o, newFileBackend(t))

	// Headers that trickle in slower than readHeaderTimeout: the server hangs
	// up without answering.
	conn := rawConn(t, h)
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept a connection whose headers never ended")
	}
	if len(got) != 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Fatalf("slow headers answered with %q", got)
	}

	// Headers over 16 KiB: 431.
	conn = rawConn(t, h)
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 40<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("40 KiB header: %d, want 431", resp.StatusCode)
	}
}

func TestUnixSocket(t *testing.T) {
	reg := testRegistry()
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, err := reg.Acquire(flatstore.ParseListen("unix:"+sock), b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600 under umask 000", fi.Mode())
	}
	if h.Addr() != "unix:"+sock {
		t.Fatalf("Addr %q", h.Addr())
	}
	if r := mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`); r.body != `{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatalf("over unix: %s", r.body)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the directory holds %d entries, want only the socket", len(entries))
	}
	h.Release()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Release: %v", err)
	}
	h.Release() // idempotent

	// A stale socket (nothing listens) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	h, err = reg.Acquire(flatstore.ParseListen("unix:"+sock), b, Options{})
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	h.Release()

	// A live socket of someone else is left alone.
	live, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = reg.Acquire(flatstore.ParseListen("unix:"+sock), b, Options{})
	if err == nil || !strings.Contains(err.Error(), `control_listen "unix:`+sock+`"`) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("over a live socket: %v", err)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Fatalf("the live socket was disturbed: %v", err)
	} else {
		c.Close()
	}
	live.Close()

	// A regular file is never removed.
	if err := os.WriteFile(sock, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = reg.Acquire(flatstore.ParseListen("unix:"+sock), b, Options{})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("over a regular file: %v", err)
	}
	if got, _ := os.ReadFile(sock); string(got) != "keep" {
		t.Fatal("the regular file was touched")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the directory holds %d entries after the failures", len(entries))
	}
	waitNoGoroutines(t)
}

func TestLifecycle(t *testing.T) {
	reg := testRegistry()
	addr := fbtest.FreeTCPAddr(t) // below the ephemeral range: no test's outgoing connection takes it
	ps := tempPaths(t, "a.log", "b.log")
	b1, b2 := newFileBackend(t, ps[0]), newFileBackend(t, ps[1])
	rot := func(h *Handle, p string) string {
		return mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`).body
	}
	const ok = `{"jsonrpc":"2.0","result":"OK","id":1}`
	const notFound = `{"jsonrpc":"2.0","error":{"code":400,"message":"File not found"},"id":1}`

	// Hot reload: Init -> Exit -> Init on the same fixed port, three times.
	for i := range 3 {
		h, err := reg.Acquire(flatstore.ParseListen(addr), b1, Options{})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if h.Addr() != addr {
			t.Fatalf("Addr %q, want %q", h.Addr(), addr)
		}
		if got := rot(h, ps[0]); got != ok {
			t.Fatalf("round %d: %s", i, got)
		}
		h.Release()
	}

	// Two instances share one server.
	h1, err := reg.Acquire(flatstore.ParseListen(addr), b1, Options{Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := reg.Acquire(flatstore.ParseListen(addr), b2, Options{Token: "tok"})
	if err != nil {
		t.Fatalf("second instance on the same address: %v", err)
	}
	if h1.s != h2.s || h1.Addr() != h2.Addr() {
		t.Fatal("two Acquires of one address made two servers")
	}
	if _, err := reg.Acquire(flatstore.ParseListen(addr), b2, Options{Token: "other"}); err == nil || !strings.Contains(err.Error(), "different control_token") {
		t.Fatalf("a different token on a shared address: %v", err)
	}
	if _, err := reg.Acquire(flatstore.ParseListen(addr), b2, Options{}); err == nil {
		t.Fatal("no token on an address served with one was accepted")
	}
	c, base := client(h1)
	rotAuth := func(p string) string {
		req, _ := http.NewRequest(http.MethodPost, base+"/mi", strings.NewReader(`{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if rotAuth(ps[0]) != ok || rotAuth(ps[1]) != ok {
		t.Fatal("a shared server does not reach both instances")
	}
	h1.Release()
	h1.Release() // idempotent: must not detach h2
	if got := rotAuth(ps[1]); got != ok {
		t.Fatalf("after the first Release the second instance is gone: %s", got)
	}
	if got := rotAuth(ps[0]); got != notFound {
		t.Fatalf("a released instance still answers: %s", got)
	}

	// Leave an idle keep-alive connection and a connection stuck in its
	// headers: the last Release must close both.
	stuck, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	io.WriteString(stuck, "POST /mi HTTP/1.1\r\n")
	h2.Release()
	c.CloseIdleConnections()

	if _, err := c.Get(base + "/healthz"); !isConnRefused(err) {
		t.Fatalf("after the last Release: %v, want connection refused", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port is not free after the last Release: %v", err)
	}
	ln.Close()
	waitNoGoroutines(t)
}

func TestBindError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = NewRegistry().Acquire(flatstore.ParseListen(addr), newFileBackend(t), Options{})
	want := fmt.Sprintf(`control_listen %q: listen tcp %s: bind: address already in use`, addr, addr)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatal("the bind error is not wrapped")
	}
	for _, bad := range []string{"off", "", "unix:", "nohostport"} {
		if _, err := NewRegistry().Acquire(flatstore.ParseListen(bad), newFileBackend(t), Options{}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("control_listen %q", bad)) {
			t.Fatalf("Acquire(%q): %v", bad, err)
		}
	}
	if _, err := NewRegistry().Acquire(flatstore.ParseListen("127.0.0.1:0"), nil, Options{}); err == nil {
		t.Fatal("a nil backend was accepted")
	}
}

// Release lets a request in flight finish before it returns.
func TestReleaseWaitsForInFlight(t *testing.T) {
	reg := testRegistry()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	b.block = make(chan struct{})
	b.entered = make(chan string, 1)
	h, err := reg.Acquire(flatstore.ParseListen("127.0.0.1:0"), b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := h.Addr()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/mi", "application/json",
			strings.NewReader(`{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":7}`))
		if err != nil {
			got <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	<-b.entered
	released := make(chan struct{})
	go func() { h.Release(); close(released) }()
	// Once the listener is closed, Release is waiting for the request.
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	close(b.block)
	if r := <-got; r != `200 {"jsonrpc":"2.0","result":"OK","id":7}` {
		t.Fatalf("in-flight request: %s", r)
	}
	<-released
	waitNoGoroutines(t)
}
