package control

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// rawStatus sends one request with exactly the given request line and
// Host header on a fresh connection and returns the status and body.
func rawStatus(t *testing.T, h *Handle, method, target, host, body string) (int, string) {
	t.Helper()
	c := rawConn(t, h)
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, target, host, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s Host %q: %v", method, target, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hostileHosts are Host values a web page can make a browser send to a
// loopback listener, after pointing its own name at 127.0.0.1.
var hostileHosts = []string{
	"evil.example", "evil.example:2021", "EVIL.example", "127.0.0.1.evil.example", "localhost.evil.example",
	"evil-localhost", "localhost.", "127.0.0.1.", "0.0.0.0", "0.0.0.0:2021", "10.0.0.1", "192.168.1.1:2021",
	"[::2]:2021", "[fe80::1]", "[::]", "2130706433", "0x7f000001", "127.1", "[::1%25lo]:2021", "xn--80ak6aa92e.com",
}

func TestHostCheck(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	tcp, _ := serve(t, "", b)
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	unix, _ := startAt(t, "unix:"+sock, "", testLimits(), b)
	named, _ := startAt(t, "localhost:0", "", testLimits(), b)
	rot := `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":1}`
	_, port, _ := strings.Cut(tcp.Addr(), ":")

	refused := map[string]bool{}
	for _, h := range []*Handle{tcp, unix, named} {
		for _, host := range hostileHosts {
			for _, req := range []struct{ method, target, body string }{
				{"POST", "/mi", rot}, {"POST", "/rotate?path=" + p, ""}, {"GET", "/status", ""}, {"GET", "/healthz", ""},
			} {
				status, body := rawStatus(t, h, req.method, req.target, host, req.body)
				if status == http.StatusBadRequest {
					refused[host] = true // net/http refused the value itself
					continue
				}
				if status != http.StatusMisdirectedRequest || !strings.Contains(body, "Misdirected Request: Host") ||
					!strings.Contains(body, "DNS rebinding") {
					t.Fatalf("%s: %s %s with Host %q: %d %q, want 421", h.Addr(), req.method, req.target, host, status, body)
				}
			}
		}
		// An absolute request target names the host too.
		if status, _ := rawStatus(t, h, "POST", "http://evil.example/mi", "127.0.0.1", rot); status != http.StatusMisdirectedRequest {
			t.Fatalf("%s: absolute target to evil.example: %d, want 421", h.Addr(), status)
		}
	}
	if b.totalRotations() != 0 {
		t.Fatal("a request with a hostile Host rotated")
	}
	if len(refused) > 1 {
		t.Fatalf("net/http itself refused %v: the loop no longer tests the Host check", refused)
	}

	for _, host := range []string{
		"127.0.0.1", "127.0.0.1:" + port, "127.5.6.7:1", "[::1]", "[::1]:" + port, "::1", "localhost", "LocalHost:" + port,
		"[::ffff:127.0.0.1]:80",
	} {
		if status, body := rawStatus(t, tcp, "POST", "/mi", host, rot); status != http.StatusOK || !strings.Contains(body, `"result":"OK"`) {
			t.Fatalf("Host %q: %d %q, want the rotate served", host, status, body)
		}
	}
	if status, _ := rawStatus(t, unix, "GET", "/healthz", "localhost", ""); status != http.StatusOK {
		t.Fatalf("unix socket with Host localhost: %d", status)
	}
	// No Host at all (HTTP/1.0) is served: only a browser can be rebound.
	c := rawConn(t, tcp)
	io.WriteString(c, "GET /healthz HTTP/1.0\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP/1.0 without Host: %v %v", resp, err)
	}
}

// The configured host is accepted as a Host value, with or without port.
func TestHostCheckConfiguredName(t *testing.T) {
	t.Parallel()
	s := &server{checkHost: true, listenHost: "flatstore.internal"}
	for host, want := range map[string]bool{
		"flatstore.internal": true, "FLATSTORE.internal:2021": true, "flatstore.internal.evil": false, "internal": false,
	} {
		if got := s.localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
	if note := s.listenHostNote(); note != " or flatstore.internal" {
		t.Errorf("note %q", note)
	}
}
