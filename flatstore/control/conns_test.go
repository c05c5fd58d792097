package control

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConnsForRlimit(t *testing.T) {
	for _, c := range []struct {
		soft uint64
		want int
	}{
		{0, minConns}, {64, minConns}, {256, 32}, {1024, maxConnsCeiling}, {20000, maxConnsCeiling}, {^uint64(0), maxConnsCeiling},
	} {
		if got := connsForRlimit(c.soft); got != c.want {
			t.Errorf("connsForRlimit(%d) = %d, want %d", c.soft, got, c.want)
		}
	}
	if n := defaultMaxConns(); n < minConns || n > maxConnsCeiling {
		t.Errorf("defaultMaxConns() = %d", n)
	}
}

// closedByServer reports whether the server has closed c: a read finds
// the end (or a reset) at once rather than waiting.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// waitClosed polls until want of conns are closed by the server (bounded:
// 2000 rounds of 5 ms) and returns which.
func waitClosed(t *testing.T, conns []net.Conn, want int) []bool {
	t.Helper()
	closed := make([]bool, len(conns))
	n := 0
	for range 2000 {
		for i, c := range conns {
			if !closed[i] && closedByServer(c) {
				closed[i] = true
				n++
			}
		}
		if n >= want {
			return closed
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d of %d connections closed by the server, want %d", n, len(conns), want)
	return nil
}

// waitWaiting polls until n connections wait for their next request
// (bounded).
func waitWaiting(t *testing.T, h *Handle, n int) {
	t.Helper()
	count := func() int {
		h.s.connMu.Lock()
		defer h.s.connMu.Unlock()
		k := 0
		for _, ci := range h.s.conns {
			if ci.phase == phaseWaiting {
				k++
			}
		}
		return k
	}
	for range 4000 {
		if count() >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d connections wait for a request, want %d", count(), n)
}

// A flood of connections that send nothing (or half a request line) never
// holds more than the cap: each new one closes the oldest, and a real
// rotate gets through while the flood is held open.
func TestConnCapEvictsOldestIdle(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	lim := testLimits()
	lim.maxConns = 8
	lim.readHeaderTimeout, lim.idleTimeout = time.Minute, time.Minute // only the cap closes them
	h, logs := startAt(t, "127.0.0.1:0", "", lim, b)

	const flood = 100
	var conns []net.Conn
	for i := range flood {
		c := rawConn(t, h)
		if i%3 == 1 {
			_, _ = io.WriteString(c, "POST /mi HTTP/1.1\r\nHost: loc")
		}
		conns = append(conns, c)
		if n := h.s.connCount(); n > lim.maxConns {
			t.Fatalf("the server holds %d connections, the cap is %d", n, lim.maxConns)
		}
	}
	closed := waitClosed(t, conns, flood-lim.maxConns)
	for i, c := range closed {
		if c != (i < flood-lim.maxConns) {
			t.Fatalf("connection %d closed=%v: the oldest ones must go first (%v)", i, c, closed)
		}
	}
	if r := mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`); r.body != `{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatalf("rotate during the flood: %d %s", r.status, r.body)
	}
	if n := h.s.connCount(); n > lim.maxConns {
		t.Fatalf("the server holds %d connections, the cap is %d", n, lim.maxConns)
	}
	warned := strings.Count(logs.String(), "connections open, the most it holds")
	if warned < 1 || warned >= flood-lim.maxConns {
		t.Fatalf("%d warnings about the cap for %d evictions, want at least one and rate-limited:\n%s", warned, flood-lim.maxConns, logs)
	}
}

// An idle keep-alive connection is evicted too, and closed after the idle
// timeout anyway.
func TestConnCapEvictsKeepAlive(t *testing.T) {
	t.Parallel()
	b := newFileBackend(t)
	lim := testLimits()
	lim.maxConns = 2
	lim.idleTimeout = time.Minute
	lim.readHeaderTimeout = time.Minute // bb waits for a's round trip before its request
	h, _ := startAt(t, "127.0.0.1:0", "", lim, b)
	get := func(c net.Conn) error {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	a, bb := rawConn(t, h), rawConn(t, h)
	if err := get(a); err != nil {
		t.Fatal(err)
	}
	if err := get(bb); err != nil {
		t.Fatal(err)
	}
	// The client reads a response before the server marks the connection
	// idle (net/http's StateIdle comes after the flush): until both are, the
	// server rightly evicts another one, or refuses the third.
	waitWaiting(t, h, 2)
	c := rawConn(t, h)
	if err := get(c); err != nil {
		t.Fatalf("a third client at the cap: %v", err)
	}
	if closed := waitClosed(t, []net.Conn{a}, 1); !closed[0] {
		t.Fatal("the oldest idle keep-alive connection was not evicted")
	}

	// With a short idle timeout, a keep-alive connection is closed by itself.
	lim.idleTimeout = 50 * time.Millisecond
	lim.maxConns = maxConnsCeiling
	h2, _ := startAt(t, "127.0.0.1:0", "", lim, b)
	d := rawConn(t, h2)
	if err := get(d); err != nil {
		t.Fatal(err)
	}
	_ = d.SetReadDeadline(time.Now().Add(20 * time.Second)) // a safety net only
	if _, err := d.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("an idle keep-alive connection was kept: %v", err)
	}
}

// When every connection has a request in flight, a new one is closed at
// once (the requests in flight finish); nothing waits for a slot.
func TestConnCapAllBusy(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	b.block = make(chan struct{})
	b.entered = make(chan string, 2)
	lim := testLimits()
	lim.maxConns = 2
	h, logs := startAt(t, "127.0.0.1:0", "", lim, b)
	rot := `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":1}`
	results := make(chan string, 2)
	for range 2 {
		c := rawConn(t, h)
		go func() {
			_, _ = io.WriteString(c, "POST /mi HTTP/1.1\r\nHost: localhost\r\nContent-Length: "+strconv.Itoa(len(rot))+"\r\n\r\n"+rot)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				results <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			results <- string(body)
		}()
	}
	<-b.entered
	<-b.entered
	c := rawConn(t, h)
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Fatalf("a connection beyond the cap was served: %s", resp.Status)
	}
	close(b.block)
	for range 2 {
		if r := <-results; r != `{"jsonrpc":"2.0","result":"OK","id":1}` {
			t.Fatalf("a request in flight: %s", r)
		}
	}
	if !strings.Contains(logs.String(), "requests in flight, the most it holds; a new connection was closed") {
		t.Fatalf("no warning:\n%s", logs)
	}
}
