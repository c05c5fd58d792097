package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore/logger"
)

// tricklers keeps n connections to addr (TCP or unix:) that each send
// whole headers declaring a body of 4 KiB and then trickle it, a byte
// every 20 ms; a connection the server closes is opened again 10 ms later,
// so the pressure never lets up. started counts the headers sent. stop ends
// them and waits.
func tricklers(t *testing.T, addr, head string, n int) (stop func(), started, reopened *atomic.Int64) {
	t.Helper()
	network := "tcp"
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", p
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	started, reopened = &atomic.Int64{}, &atomic.Int64{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; ; first = false {
				select {
				case <-done:
					return
				default:
				}
				if !first {
					reopened.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
				c, err := net.Dial(network, addr)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				_, err = io.WriteString(c, head+"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n")
				started.Add(1)
				for err == nil {
					select {
					case <-done:
						c.Close()
						return
					case <-time.After(20 * time.Millisecond):
					}
					_, err = c.Write([]byte{' '})
				}
				c.Close()
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }, started, reopened
}

// reading is the number of connections whose headers the server has read
// and whose body it is reading.
func (s *server) readingCount() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	n := 0
	for _, ci := range s.conns {
		if ci.phase == phaseReading {
			n++
		}
	}
	return n
}

// waitReading polls until the server reads the bodies of n connections
// (bounded).
func waitReading(t *testing.T, h *Handle, n int) {
	t.Helper()
	for range 4000 {
		if h.s.readingCount() >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the server reads the bodies of %d connections, want %d", h.s.readingCount(), n)
}

// As many connections as the cap send whole headers and then trickle a
// body, and reopen as soon as they are closed: every one of 8 rotates gets
// through, with a token (the tricklers without it, on the one path served
// without it) and without (the tricklers as local as the rotates), over TCP
// and over the unix socket.
func TestTricklersCannotLockOutRotate(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	for _, c := range []struct {
		name, token, head string
		unix              bool
	}{
		{"no token", "", "POST /mi HTTP/1.1\r\nHost: localhost\r\n", false},
		{"no token, unix", "", "POST /mi HTTP/1.1\r\nHost: localhost\r\n", true},
		{"token", token, "POST /healthz HTTP/1.1\r\nHost: localhost\r\n", false},
		{"token, tricklers with a wrong one", token, "POST /mi HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer wrong-wrong-wrong-wrong\r\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := tempPaths(t, "e.log")[0]
			b := newFileBackend(t, p)
			lim := testLimits()
			lim.readTimeout, lim.readHeaderTimeout = time.Minute, time.Minute // only the slots decide
			addr := "127.0.0.1:0"
			if c.unix {
				addr = "unix:" + filepath.Join(t.TempDir(), "c.sock")
			}
			h, logs := startAt(t, addr, c.token, lim, b)
			stop, started, reopened := tricklers(t, h.Addr(), c.head, lim.maxConns)
			defer stop()
			for i := 0; started.Load() < int64(lim.maxConns); i++ {
				if i == 2000 {
					t.Fatalf("%d tricklers started", started.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.Contains(c.head, "wrong") {
				waitReading(t, h, lim.maxConns) // every slot taken by a trickler past its headers
			}
			cl, err := NewClient(h.Addr(), c.token, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ok := 0
			for i := range 8 {
				if err := cl.Rotate(p); err != nil {
					t.Errorf("rotate %d during the trickle: %v", i+1, err)
					continue
				}
				ok++
				cl.Close() // the next rotate needs a new connection, as a new flatstore-ctl does
			}
			stop()
			t.Logf("%d of 8 rotates; the tricklers reopened %d times", ok, reopened.Load())
			if ok != 8 || b.rotated(p) != 8 {
				t.Fatalf("%d of 8 rotates answered OK, %d done", ok, b.rotated(p))
			}
			if strings.Contains(c.head, "wrong") {
				if !strings.Contains(logs.String(), "no valid control_token (401; the connection is closed)") {
					t.Fatalf("the 401s were not logged:\n%s", logs)
				}
			} else if !strings.Contains(logs.String(), "closed the oldest one that had not sent a whole request") {
				t.Fatalf("no trickler was closed to make room:\n%s", logs)
			}
		})
	}
}

// readClosed reads what the server sends on c after the response until it
// closes c; it fails the test when the server keeps c open instead (the
// client's 20 s safety deadline).
func readClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open after its refusal")
	}
}

// Every refusal goes out while the body has not been sent, with
// "Connection: close", and the connection is closed: nothing waits for a
// body that never comes. A 401 is logged, rate-limited, naming the client.
func TestRefusalClosesAtOnce(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-token"
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	lim := testLimits()
	lim.readTimeout, lim.readHeaderTimeout = time.Minute, time.Minute // only the refusal can end them
	h, logs := startAt(t, "127.0.0.1:0", token, lim, b)
	const n = 20
	start := time.Now()
	for _, c := range []struct {
		name, head string
		want       int
	}{
		{"no token", "POST /mi HTTP/1.1\r\nHost: localhost\r\n", http.StatusUnauthorized},
		{"wrong token", "POST /mi HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer nope-nope-nope-nope\r\n", http.StatusUnauthorized},
		{"wrong token on /healthz", "POST /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer nope\r\n", http.StatusUnauthorized},
		{"browser", "POST /mi HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token + "\r\nOrigin: http://evil.example\r\n", http.StatusForbidden},
		{"rebound Host", "POST /mi HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer " + token + "\r\n", http.StatusMisdirectedRequest},
		{"declared too large", "POST /mi HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 1048576\r\n", http.StatusRequestEntityTooLarge},
	} {
		for range n {
			conn := rawConn(t, h)
			head := c.head
			if !strings.Contains(head, "Content-Length") {
				head += "Content-Length: 1000\r\n"
			}
			io.WriteString(conn, head+"\r\n") // and no body
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: no reply while the body is not sent: %v", c.name, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want || !resp.Close {
				t.Fatalf("%s: %s %q (Connection: %q), want %d and Connection: close", c.name, resp.Status, body, resp.Header.Get("Connection"), c.want)
			}
			readClosed(t, br)
			conn.Close()
		}
	}
	if b.totalRotations() != 0 {
		t.Fatal("a refused request rotated")
	}
	most := 1 + int(time.Since(start)/logger.LimitEvery)
	if k := strings.Count(logs.String(), "no valid control_token (401; the connection is closed)"); k < 1 || k > most {
		t.Fatalf("%d log lines for %d 401s, want 1 to %d:\n%s", k, 3*n, most, logs)
	}
	if !strings.Contains(logs.String(), `refused POST "/mi" from 127.0.0.1:`) {
		t.Fatalf("the 401 does not name the client:\n%s", logs)
	}
}

// The whole request, headers and body, must arrive within readTimeout of
// its start: a client that trickles its body is cut (408, closed) whatever
// its pace, long before its 4 KiB are in.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	lim := testLimits()
	lim.readTimeout = 300 * time.Millisecond
	lim.readHeaderTimeout = 300 * time.Millisecond
	lim.idleTimeout = time.Minute
	h, _ := startAt(t, "127.0.0.1:0", "", lim, b)
	conn := rawConn(t, h)
	io.WriteString(conn, "POST /mi HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n")
	var sent atomic.Int64
	go func() {
		for range 4096 { // 80 s at this pace; the writes fail once the server hangs up
			time.Sleep(20 * time.Millisecond)
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the trickler was not answered: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close || !strings.Contains(string(body), "the whole request must arrive within 300ms") {
		t.Fatalf("trickler: %s %q, want 408 and Connection: close", resp.Status, body)
	}
	readClosed(t, br)
	if n := sent.Load(); n >= 4096 {
		t.Fatalf("the whole body (%d bytes) went in: the deadline did not cut it", n)
	}
	if b.totalRotations() != 0 {
		t.Fatal("a cut request rotated")
	}
}

// A body over the limit without a declared length is refused while it is
// read: 413 with Connection: close, long before the client has sent it all.
func TestBodyLimitWhileReading(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, _ := serve(t, "", b)
	conn := rawConn(t, h)
	var sent atomic.Int64
	const total = 64 << 20
	go func() {
		io.WriteString(conn, "POST /mi HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		pad := strings.Repeat(" ", 4096)
		for sent.Load() < total { // the writes fail once the server hangs up
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(pad), pad); err != nil {
				return
			}
			sent.Add(int64(len(pad)))
		}
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close || !strings.Contains(string(body), "64 KiB") {
		t.Fatalf("%s %q, want 413 and Connection: close", resp.Status, body)
	}
	readClosed(t, br)
	if n := sent.Load(); n >= total {
		t.Fatalf("all %d bytes were taken before the 413", n)
	}
}

// The reserve: requests that are not trusted can hold at most maxConns -
// reservedConns slots while they are answered; a trusted one always gets
// one. A connection that has not had its request checked holds none: the
// next connection at the cap takes its slot.
func TestReservedSlots(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ conns, reserved int }{{8, 1}, {16, 2}, {128, 16}, {minConns, 1}} {
		if got := reservedConns(c.conns); got != c.reserved {
			t.Errorf("reservedConns(%d) = %d, want %d", c.conns, got, c.reserved)
		}
	}
	lim := testLimits()
	lim.maxConns = 8
	s := &server{lim: lim, conns: map[net.Conn]*connInfo{}, bound: "test"}
	var conns []net.Conn
	for range lim.maxConns {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		if !s.admit(a) {
			t.Fatal("admit below the cap")
		}
		conns = append(conns, a)
	}
	free := lim.maxConns - reservedConns(lim.maxConns)
	for i := range free {
		if !s.reading(conns[i], false) || !s.serving(conns[i], false) {
			t.Fatalf("untrusted request %d refused below the limit of %d", i+1, free)
		}
	}
	if !s.reading(conns[free], false) || s.serving(conns[free], false) {
		t.Fatalf("untrusted request %d served: it would take the reserve", free+1)
	}
	if !s.serving(conns[free], true) {
		t.Fatal("a trusted request refused a reserved slot")
	}
	// Every slot is now firmly held: a new connection is closed.
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if s.admit(a) {
		t.Fatal("a connection admitted while every slot is answering a request")
	}
	// One answer done (back to waiting): the next connection takes that slot.
	s.connState(conns[0], http.StateIdle)
	a2, b2 := net.Pipe()
	defer a2.Close()
	defer b2.Close()
	if !s.admit(a2) || s.connCount() != lim.maxConns {
		t.Fatal("the idle connection's slot was not taken")
	}
	if _, err := conns[0].Write([]byte("x")); err == nil {
		t.Fatal("the idle connection was not closed")
	}
}
