package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/control"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// TestMain runs the command itself when the test binary is called as
// flatstore-ctl (TestLogrotate puts a link of that name in logrotate's PATH),
// so no test has to build the binary. The harness's build directory (the
// plugin and host the read tests run) is removed at the end.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "flatstore-ctl" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	fbtest.Main(m)
}

// backend is a small Backend: it manages paths by exact spelling; Rotate
// marks one closed and counts it, or fails as told.
type backend struct {
	mu        sync.Mutex
	open      map[string]bool
	rotations map[string]int
	fail      map[string]error
}

func newBackend(paths ...string) *backend {
	b := &backend{open: map[string]bool{}, rotations: map[string]int{}, fail: map[string]error{}}
	for _, p := range paths {
		b.open[p] = true
	}
	return b
}

func (b *backend) Rotate(path string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.open[path]; !ok {
		return flatstore.ErrNotManaged
	}
	if err := b.fail[path]; err != nil {
		return err
	}
	b.open[path] = false
	b.rotations[path]++
	return nil
}

func (b *backend) Status() []filestore.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []filestore.Status
	for p, o := range b.open {
		out = append(out, filestore.Status{Path: p, Open: o})
	}
	return out
}

func (b *backend) rotated(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rotations[path]
}

// serve runs a real control server for b at addr (port 0 or a unix socket)
// until the test ends.
func serve(t *testing.T, addr, token string, b control.Backend) string {
	t.Helper()
	h, err := control.NewRegistry().Acquire(flatstore.ParseListen(addr), b, control.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Release)
	return h.Addr()
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs the command in-process, with FLATSTORE_ADDR and FLATSTORE_TOKEN
// as env sets them (unset otherwise).
func ctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	for _, k := range []string{"FLATSTORE_ADDR", "FLATSTORE_TOKEN"} {
		t.Setenv(k, env[k])
	}
	var out, errb bytes.Buffer
	code := run(args, nil, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func tempPaths(t *testing.T, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

func TestRotate(t *testing.T) {
	ps := tempPaths(t, "a.log", "b.log", "broken.log")
	b := newBackend(ps...)
	b.fail[ps[2]] = errors.New("close: input/output error")
	addr := serve(t, "127.0.0.1:0", "", b)

	// rotate: silent on success, every PATH in order.
	r := ctl(t, nil, "-addr", addr, "rotate", ps[0], ps[1])
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("rotate: %+v", r)
	}
	if b.rotated(ps[0]) != 1 || b.rotated(ps[1]) != 1 {
		t.Fatalf("rotations %v", b.rotations)
	}
	// The plugin's path setting may carry the OpenSIPS prefix.
	if r = ctl(t, nil, "-addr", addr, "rotate", "flatstore:"+ps[0]); r.code != 0 || r.stderr != "" || b.rotated(ps[0]) != 2 {
		t.Fatalf("flatstore: prefix: %+v", r)
	}

	// Stops at the first failure, with the server's message and the files
	// the endpoint does manage.
	r = ctl(t, nil, "-addr", addr, "rotate", ps[0], "/x", ps[1])
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "flatstore-ctl: /x: File not found (the endpoint at "+addr+" manages: ") ||
		!strings.Contains(r.stderr, ps[1]) {
		t.Fatalf("unknown path: %+v", r)
	}
	if b.rotated(ps[0]) != 3 || b.rotated(ps[1]) != 1 {
		t.Fatalf("after a failure the next paths must not be rotated: %v", b.rotations)
	}
	for _, rel := range []string{"run/a.log", "flatstore:run/a.log"} {
		r = ctl(t, nil, "-addr", addr, "rotate", rel)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "flatstore-ctl: "+rel+": File not found (the path must be absolute") {
			t.Fatalf("relative path %s: %+v", rel, r)
		}
	}
	r = ctl(t, nil, "-addr", addr, "rotate", ps[2])
	if r.code != 1 || r.stderr != "flatstore-ctl: "+ps[2]+": close: input/output error (code 500)\n" {
		t.Fatalf("failing rotate: %+v", r)
	}
	// -missingok: "File not found" is fine, other failures are not.
	r = ctl(t, nil, "-addr", addr, "-missingok", "rotate", "/x", ps[1])
	if r.code != 0 || r.stderr != "" || b.rotated(ps[1]) != 2 {
		t.Fatalf("-missingok: %+v", r)
	}
	if r = ctl(t, nil, "-addr", addr, "-missingok", "rotate", ps[2]); r.code != 1 {
		t.Fatalf("-missingok hides a real failure: %+v", r)
	}

	// status prints the JSON; FLATSTORE_ADDR is the default address.
	r = ctl(t, map[string]string{"FLATSTORE_ADDR": addr}, "status")
	var st struct {
		Files []struct {
			Path string `json:"path"`
			Open bool   `json:"open"`
		} `json:"files"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || len(st.Files) != 3 {
		t.Fatalf("status: %+v", r)
	}

	// Usage errors exit 2; -h prints the usage and exits 0.
	for _, args := range [][]string{
		{}, {"-addr", addr}, {"frobnicate"}, {"-addr", addr, "rotate"}, {"-addr", addr, "status", "x"},
		{"-bogus", "status"}, {"-addr", "nohostport", "status"}, {"-addr", "unix:", "status"}, {"-timeout", "0s", "status"},
	} {
		if r = ctl(t, nil, args...); r.code != 2 || !strings.HasPrefix(r.stderr, "flatstore-ctl: ") {
			t.Fatalf("%q: %+v, want exit 2", args, r)
		}
	}
	if r = ctl(t, nil, "-h"); r.code != 0 || !strings.Contains(r.stdout, "usage: flatstore-ctl") || !strings.Contains(r.stdout, "flatstore: prefix") {
		t.Fatalf("-h: %+v", r)
	}

	// Nothing listening: exit 1 and why.
	dead := fbtest.FreeTCPAddr(t) // below the ephemeral range: no test's outgoing connection takes it
	if r = ctl(t, nil, "-addr", dead, "rotate", ps[0]); r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("no server: %+v", r)
	}
}

func TestTokenAndUnix(t *testing.T) {
	p := tempPaths(t, "a.log")[0]
	b := newBackend(p)
	addr := serve(t, "unix:"+filepath.Join(t.TempDir(), "ctl.sock"), "s3cret-token-0123", b)

	r := ctl(t, nil, "-addr", addr, "rotate", p)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "flatstore-ctl: "+p+": HTTP 401 Unauthorized") || b.rotated(p) != 0 {
		t.Fatalf("without token: %+v", r)
	}
	if r = ctl(t, nil, "-addr", addr, "-token", "s3cret-token-0123", "rotate", p); r.code != 0 || b.rotated(p) != 1 {
		t.Fatalf("-token: %+v", r)
	}
	env := map[string]string{"FLATSTORE_ADDR": addr, "FLATSTORE_TOKEN": "s3cret-token-0123"}
	if r = ctl(t, env, "rotate", p); r.code != 0 || b.rotated(p) != 2 {
		t.Fatalf("FLATSTORE_TOKEN: %+v", r)
	}
	if r = ctl(t, env, "-token", "wrong", "rotate", p); r.code != 1 || b.rotated(p) != 2 {
		t.Fatalf("-token overrides FLATSTORE_TOKEN: %+v", r)
	}
}

// squatter serves handle on a free loopback port: another program holding
// the address flatstore-ctl calls.
func squatter(t *testing.T, handle func(w http.ResponseWriter, req map[string]any)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		handle(w, req)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// A squatted address makes no rotate look done: whatever holds it, unless
// it is a flatstore that lists the very file, flatstore-ctl fails, and
// -missingok does not hide it.
func TestSquattedAddress(t *testing.T) {
	p := tempPaths(t, "events.log")[0]
	other := newBackend(filepath.Join(filepath.Dir(p), "other.log"))
	cases := []struct {
		name string
		addr string
		want string
	}{
		{"plain OK", squatter(t, func(w http.ResponseWriter, _ map[string]any) {
			_, _ = w.Write([]byte("OK"))
		}), `is not a flatstore control endpoint (its reply to event_flatstore:status is not JSON-RPC 2.0: "OK")`},
		{"canned JSON-RPC OK", squatter(t, func(w http.ResponseWriter, _ map[string]any) {
			reply(w, map[string]any{"jsonrpc": "2.0", "result": "OK", "id": 1})
		}), "is not a flatstore control endpoint (its reply to event_flatstore:status carries the id 1, not"},
		{"an OpenSIPS MI", squatter(t, func(w http.ResponseWriter, req map[string]any) {
			if req["method"] == "event_flatstore:status" {
				reply(w, map[string]any{"jsonrpc": "2.0", "error": map[string]any{"code": -32601, "message": "Method not found"}, "id": req["id"]})
				return
			}
			reply(w, map[string]any{"jsonrpc": "2.0", "result": "OK", "id": req["id"]})
		}), "is not a flatstore control endpoint (it answers MI but has no event_flatstore:status (an OpenSIPS?))"},
		{"OK to every method", squatter(t, func(w http.ResponseWriter, req map[string]any) {
			reply(w, map[string]any{"jsonrpc": "2.0", "result": "OK", "id": req["id"]})
		}), `is not a flatstore control endpoint (its event_flatstore:status result is not a list of files: "OK")`},
		{"a look-alike that lists other files", squatter(t, func(w http.ResponseWriter, req map[string]any) {
			if req["method"] == "event_flatstore:status" {
				reply(w, map[string]any{"jsonrpc": "2.0", "result": map[string]any{"files": []any{map[string]any{"path": "/elsewhere.log"}}}, "id": req["id"]})
				return
			}
			reply(w, map[string]any{"jsonrpc": "2.0", "result": "OK", "id": req["id"]})
		}), "answered OK but does not list " + p + " among its files (/elsewhere.log): it is not the plugin writing this file"},
		{"an HTTP server", squatter(t, func(w http.ResponseWriter, _ map[string]any) {
			http.NotFound(w, nil)
		}), "HTTP 404 Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, flags := range [][]string{nil, {"-missingok"}} {
				args := append(append([]string{"-addr", c.addr}, flags...), "rotate", p)
				r := ctl(t, nil, args...)
				if r.code != 1 || !strings.HasPrefix(r.stderr, "flatstore-ctl: "+p+": ") || !strings.Contains(r.stderr, c.want) {
					t.Fatalf("%q: %+v\nwant exit 1 and %q", args, r, c.want)
				}
			}
			if strings.Contains(c.name, "look-alike") {
				return // its status is well formed
			}
			if r := ctl(t, nil, "-addr", c.addr, "status"); r.code != 1 || r.stdout != "" {
				t.Fatalf("status: %+v", r)
			}
		})
	}

	// Another flatstore (a second Fluent Bit) holds the address: its answer
	// is honest, "File not found", naming what it does manage.
	addr := serve(t, "127.0.0.1:0", "", other)
	r := ctl(t, nil, "-addr", addr, "rotate", p)
	if r.code != 1 || !strings.Contains(r.stderr, "File not found (the endpoint at "+addr+" manages: "+filepath.Join(filepath.Dir(p), "other.log")+")") {
		t.Fatalf("another flatstore: %+v", r)
	}
	if other.rotated(filepath.Join(filepath.Dir(p), "other.log")) != 0 {
		t.Fatal("another flatstore's file was rotated")
	}
}

// TestLogrotate renders conf/logrotate.conf for a temporary directory and
// runs the real logrotate with this command in its PATH against a server:
// the files are renamed, the plugin side is asked to reopen each, and a
// path the endpoint does not manage makes the run fail.
func TestLogrotate(t *testing.T) {
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/logrotate"); err != nil {
			t.Skip("logrotate is not installed (make deps installs it)")
		}
		lr = "/usr/sbin/logrotate"
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(self, filepath.Join(bin, "flatstore-ctl")); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("../../conf/logrotate.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(out, "by-event"), 0o755); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(rendered, bytes.ReplaceAll(conf, []byte("/var/log/flatstore"), []byte(out)), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(out, "events.log")
	open := filepath.Join(out, "by-event", "E_OPEN.log")
	idle := filepath.Join(out, "by-event", "E_IDLE.log") // closed as idle: not managed now
	for _, p := range []string{main, open, idle} {
		if err := os.WriteFile(p, []byte("first\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := newBackend(main, open)
	addr := serve(t, "127.0.0.2:0", "s3cret-token-0123", b)
	logrotate := func(env ...string) ([]byte, error) {
		cmd := exec.Command(lr, "--force", "--state", filepath.Join(dir, "state"), rendered)
		cmd.Env = append([]string{"PATH=" + bin + ":" + os.Getenv("PATH")}, env...)
		return cmd.CombinedOutput()
	}
	if outb, err := logrotate("FLATSTORE_ADDR="+addr, "FLATSTORE_TOKEN=s3cret-token-0123"); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, outb)
	}
	for _, p := range []string{main, open, idle} {
		if got, _ := os.ReadFile(p + ".1"); string(got) != "first\n" {
			t.Fatalf("%s.1 holds %q", p, got)
		}
	}
	if b.rotated(main) != 1 || b.rotated(open) != 1 {
		t.Fatalf("rotations %v, want one each for %s and %s", b.rotations, main, open)
	}

	// An endpoint that does not manage the configured path fails the run.
	if err := os.WriteFile(main, []byte("second\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr2 := serve(t, "127.0.0.3:0", "", newBackend())
	outb, err := logrotate("FLATSTORE_ADDR=" + addr2)
	if err == nil || !strings.Contains(string(outb), "flatstore-ctl: "+main+": File not found") {
		t.Fatalf("logrotate with an endpoint that does not manage %s: %v\n%s", main, err, outb)
	}
}

// With a token, flatstore-ctl sends it only to an endpoint that has proved
// it holds it: a squatter that answers every request as a perfect
// look-alike (ids echoed, the path listed, "OK") never receives it, and
// rotate and status fail, -missingok or not. The real plugin's endpoint,
// over TCP and the unix socket, still rotates with the token.
func TestSquatterNeverGetsToken(t *testing.T) {
	const token = "s3cret-token-0123"
	p := tempPaths(t, "events.log")[0]
	var mu sync.Mutex
	var seen []string
	addr := squatter(t, func(w http.ResponseWriter, req map[string]any) {
		if req["method"] == "event_flatstore:status" {
			reply(w, map[string]any{"jsonrpc": "2.0", "result": map[string]any{"files": []any{map[string]any{"path": p}}}, "id": req["id"]})
			return
		}
		reply(w, map[string]any{"jsonrpc": "2.0", "result": "OK", "id": req["id"]})
	})
	// Wrap the squatter's listener address in a recording proxy.
	rec := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" Authorization="+r.Header.Get("Authorization"))
		mu.Unlock()
		resp, err := http.Post("http://"+addr+r.URL.Path, "application/json", r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go rec.Serve(ln)
	t.Cleanup(func() { rec.Close() })
	sq := ln.Addr().String()
	for _, args := range [][]string{
		{"-addr", sq, "-token", token, "rotate", p},
		{"-addr", sq, "-token", token, "-missingok", "rotate", p},
		{"-addr", sq, "-token", token, "status"},
	} {
		r := ctl(t, nil, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "is not a flatstore control endpoint") || !strings.Contains(r.stderr, "the control_token was not sent") {
			t.Fatalf("%q: %+v", args, r)
		}
	}
	if r := ctl(t, map[string]string{"FLATSTORE_ADDR": sq, "FLATSTORE_TOKEN": token}, "rotate", p); r.code != 1 {
		t.Fatalf("FLATSTORE_TOKEN to a squatter: %+v", r)
	}
	mu.Lock()
	for _, s := range seen {
		if strings.Contains(s, token) || !strings.HasPrefix(s, "GET /challenge ") {
			t.Errorf("the squatter received %q", s)
		}
	}
	if len(seen) != 4 {
		t.Errorf("the squatter saw %d requests, want the 4 challenges: %q", len(seen), seen)
	}
	mu.Unlock()

	b := newBackend(p)
	for _, a := range []string{serve(t, "127.0.0.1:0", token, b), serve(t, "unix:"+filepath.Join(t.TempDir(), "c.sock"), token, b)} {
		if r := ctl(t, nil, "-addr", a, "-token", token, "rotate", p); r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: %+v", a, r)
		}
	}
	if b.rotated(p) != 2 {
		t.Fatalf("%d rotations, want 2", b.rotated(p))
	}
}

// TestFlagsAnywhere: flags work after the command and its arguments, as in
// the tools around flatstore-ctl; COMMAND -h prints that command's usage
// without touching the network; errors say what to check instead of Go's
// raw dial and deadline errors; read's note on an irreversible escape
// comes once, and not for a file that does not exist.
func TestFlagsAnywhere(t *testing.T) {
	ps := tempPaths(t, "a.log")
	b := newBackend(ps...)
	addr := serve(t, "127.0.0.1:0", "", b)
	if r := ctl(t, nil, "rotate", "-addr", addr, ps[0]); r.code != 0 || r.stderr != "" || b.rotated(ps[0]) != 1 {
		t.Fatalf("rotate -addr A PATH: %+v", r)
	}
	if r := ctl(t, nil, "rotate", ps[0], "-addr", addr, "-missingok"); r.code != 0 || b.rotated(ps[0]) != 2 {
		t.Fatalf("rotate PATH -addr A: %+v", r)
	}
	if r := ctl(t, nil, "status", "-addr", addr); r.code != 0 || !strings.Contains(r.stdout, ps[0]) {
		t.Fatalf("status -addr A: %+v", r)
	}
	if r := ctl(t, nil, "-addr", addr, "rotate", "--", ps[0]); r.code != 0 || b.rotated(ps[0]) != 3 {
		t.Fatalf("rotate -- PATH: %+v", r)
	}

	// -h per command, and nothing sent: a listener that counts connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			defer c.Close() // held open, never answered
		}
	}()
	for cmd, want := range map[string]string{"rotate": "usage: flatstore-ctl rotate", "status": "usage: flatstore-ctl status"} {
		r := ctl(t, nil, cmd, "-addr", ln.Addr().String(), "-h")
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "-addr") {
			t.Errorf("%s -h: %+v", cmd, r)
		}
	}
	if r := ctl(t, nil, "read", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-params") {
		t.Errorf("read -h: %+v", r)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("-h made %d connection(s)", n)
	}

	// A port held by something that never answers: a sentence, not
	// "context deadline exceeded".
	r := ctl(t, nil, "status", "-addr", ln.Addr().String(), "-timeout", "300ms")
	if r.code != 1 || !strings.Contains(r.stderr, "did not answer as a flatstore control endpoint within 300ms") ||
		strings.Contains(r.stderr, "deadline exceeded") {
		t.Errorf("silent port: %+v", r)
	}
	// A unix socket that does not exist: what to check, not "dial unix".
	sock := "unix:" + filepath.Join(t.TempDir(), "none.sock")
	r = ctl(t, nil, "rotate", ps[0], "-addr", sock)
	if r.code != 1 || !strings.Contains(r.stderr, "the socket does not exist (is Fluent Bit running with the flatstore output's control_listen "+sock) ||
		strings.Contains(r.stderr, "dial unix") {
		t.Errorf("missing socket: %+v", r)
	}

	// read: flags after the files; the note once, none for a missing file.
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "1.log"), filepath.Join(dir, "2.log")
	for _, f := range []string{f1, f2} {
		if err := os.WriteFile(f, []byte("E,x,y\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r = ctl(t, nil, "read", f1, f2, "-params", "a,b")
	if r.code != 0 || r.stdout != `{"event":"E","a":"x","b":"y"}`+"\n"+`{"event":"E","a":"x","b":"y"}`+"\n" {
		t.Errorf("read FILE... -params: %+v", r)
	}
	if n := strings.Count(r.stderr, "not reversible"); n != 1 {
		t.Errorf("read printed the note %d times, want once: %q", n, r.stderr)
	}
	r = ctl(t, nil, "read", filepath.Join(dir, "missing.log"))
	if r.code != 1 || strings.Contains(r.stderr, "not reversible") || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("read of a missing file: %+v", r)
	}
}

// TestCheck: flatstore-ctl check finds every problem of a configuration
// in one run — a bad value, a missing directory, an existing file the
// user cannot append to, a missing socket directory under /run with what
// to do — each once, and exits 1; a sound configuration exits 0.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked.log")
	if err := os.WriteFile(locked, []byte("x\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "fluent-bit.conf")
	write := func(body string) {
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`[OUTPUT]
    Name flatstore
    Match *
    path ` + filepath.Join(dir, "missing", "e.log") + `
    file_permissions 64x
    rotate_size lots
    control_listen unix:/run/flatstore-test-nowhere/ctl.sock

[OUTPUT]
    Name flatstore
    Alias locked
    Match *
    path ` + locked + `
    control_listen off
`)
	r := ctl(t, nil, "check", "-config", conf, "-user", "nobody")
	if r.code != 1 {
		t.Fatalf("check of a broken configuration: %+v", r)
	}
	// All at once: both bad values, the missing directory, the missing
	// socket directory with what to do, and the other output's file.
	for _, want := range []string{`file_permissions "64x"`, `rotate_size "lots"`, "missing\" does not exist (create it, or set mkdir true)",
		"the socket's directory \"/run/flatstore-test-nowhere\" does not exist: create it; /run is emptied at boot: under systemd, RuntimeDirectory=",
		"the file exists and the user Fluent Bit runs as cannot append to it (permission denied)"} {
		if strings.Count(r.stdout, want) != 1 {
			t.Errorf("check does not report %s once:\n%s", want, r.stdout)
		}
	}
	write(`[OUTPUT]
    Name flatstore
    Match *
    path ` + filepath.Join(dir, "missing", "e.log") + `
    control_listen unix:/run/flatstore-test-nowhere/ctl.sock
`)
	r = ctl(t, nil, "check", "-config", conf)
	if r.code != 1 || !strings.Contains(r.stdout, "does not exist (create it, or set mkdir true)") ||
		!strings.Contains(r.stdout, "RuntimeDirectory=") {
		t.Errorf("check of missing directories: %+v", r)
	}
	write(`[OUTPUT]
    Name flatstore
    Match *
    path ` + filepath.Join(dir, "ok.log") + `
    control_listen off
`)
	if r = ctl(t, nil, "check", "-config", conf); r.code != 0 || !strings.Contains(r.stdout, "1 flatstore output(s): OK") {
		t.Errorf("check of a sound configuration: %+v", r)
	}
	// A file nobody may append to, root included: as Init says it, with
	// and without -user.
	immutable := filepath.Join(dir, "immutable.log")
	if err := os.WriteFile(immutable, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", immutable).CombinedOutput(); err != nil {
		t.Logf("chattr +i fails here (%v: %s): the immutable file is not tried", err, bytes.TrimSpace(out))
	} else {
		defer exec.Command("chattr", "-i", immutable).Run()
		write(`[OUTPUT]
    Name flatstore
    Match *
    path ` + immutable + `
    control_listen off
`)
		want := `path "` + immutable + `": the file exists and the user Fluent Bit runs as cannot append to it (operation not permitted): it is immutable (lsattr shows i): chattr -i it, or choose another path`
		for _, args := range [][]string{{"check", "-config", conf}, {"check", "-config", conf, "-user", "nobody"}} {
			if r = ctl(t, nil, args...); r.code != 1 || strings.Count(r.stdout, want) != 1 {
				t.Errorf("%v on an immutable file: %+v", args, r)
			}
		}
	}
	if r = ctl(t, nil, "check", "-h"); r.code != 0 || !strings.Contains(r.stdout, "-user") {
		t.Errorf("check -h: %+v", r)
	}
}
