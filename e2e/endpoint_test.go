package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore/control"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// The control endpoint's hardening through the real .so in the C host
// (docs/control-endpoint.md): a flood of idle connections costs neither descriptors nor
// memory and never locks out a rotate; Host values that do not name this
// machine are refused (DNS rebinding); a unix socket of the longest legal
// path binds; the MI replies follow a real OpenSIPS.

// ctlClient is the control client of addr, closed when the test ends.
func ctlClient(t testing.TB, addr, token string) *control.Client {
	t.Helper()
	c, err := control.NewClient(addr, token, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// miRotations reads flatstore_rotations_total{reason="mi"} from the
// endpoint's /metrics.
func miRotations(t testing.TB, c *control.Client) int {
	t.Helper()
	code, body, err := c.Do(http.MethodGet, "/metrics", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, `flatstore_rotations_total{reason="mi"} `); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("metrics line %q", l)
			}
			return n
		}
	}
	t.Fatalf("no mi rotations series in /metrics:\n%s", body)
	return 0
}

// plainRotate sends POST /rotate?path= and returns the status and body.
func plainRotate(c *control.Client, path string) (int, string, error) {
	code, body, err := c.Do(http.MethodPost, "/rotate?path="+url.QueryEscape(path), nil)
	return code, string(body), err
}

// healthy reports whether GET /healthz answers "ok".
func healthy(addr string) bool {
	c, err := control.NewClient(addr, "", time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	code, body, err := c.Do(http.MethodGet, "/healthz", nil)
	return err == nil && code == http.StatusOK && string(body) == "ok\n"
}

// hostPID finds the host process whose command line holds arg (a path
// unique to the test).
func hostPID(t *testing.T, arg string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(cmdline, []byte{0}) {
			if string(a) == arg {
				return pid
			}
		}
	}
	t.Fatalf("no process runs with %q", arg)
	return 0
}

// fdCount is the number of descriptors process pid holds.
func fdCount(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// raiseNofile makes sure this process may hold n descriptors.
func raiseNofile(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	if rl.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d: cannot open the flood", rl.Max, n)
	}
	old := rl.Cur
	rl.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Cur = old; _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl) })
}

func lineCount(p string) int {
	data, _ := os.ReadFile(p)
	return bytes.Count(data, []byte("\n"))
}

// TestEndpointConnectionFlood: 3 000 connections that send nothing (a few
// half a request line) are opened and held for seconds while the host keeps
// flushing. The host never holds more than 400 descriptors nor grows by 50
// MB, a rotate is answered during the flood and at once after it, and every
// record is on disk exactly once.
func TestEndpointConnectionFlood(t *testing.T) {
	const (
		idle    = 3000
		records = 40_000
		hold    = 3 * time.Second
		maxFDs  = 400
		maxGrow = 50 << 10 // KiB
	)
	raiseNofile(t, idle+1000)
	addr := fbtest.FreeTCPAddr(t)
	out := filepath.Join(t.TempDir(), "flood.log")
	in := seqInput(t, records)
	// 400 chunks 20 ms apart: about 8 s of flushing, longer than the flood.
	h := fbtest.StartHost(t, "-in", in, "-chunk", "100", "-chunk-delay-us", "20000", "-hold-ms", holdMs,
		"-p", "path="+out, "-p", "control_listen="+addr)
	done := hostDone(h)
	waitHealthy(t, h, done, addr)
	pid := hostPID(t, "path="+out)
	ctl := ctlClient(t, addr, "")
	waitLines(t, h, done, out, 1)
	baseFDs, baseRSS := fdCount(pid), procStatusKB(pid, "VmRSS")
	linesBefore := lineCount(out)

	// Sample the host while the flood lasts.
	var mu sync.Mutex
	peakFDs, peakRSS := baseFDs, baseRSS
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			n, rss := fdCount(pid), procStatusKB(pid, "VmRSS")
			mu.Lock()
			peakFDs, peakRSS = max(peakFDs, n), max(peakRSS, rss)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var dialErr error
	for i := range idle {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			dialErr = fmt.Errorf("connection %d: %v", i, err)
			break
		}
		if i%10 == 5 {
			_, _ = io.WriteString(c, "POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
		}
		conns = append(conns, c)
	}
	if dialErr != nil {
		close(stop)
		t.Fatalf("opening the flood: %v", dialErr)
	}
	held := time.Now()

	// A rotate while every one of them is still open.
	t0 := time.Now()
	errDuring := ctl.Rotate(out)
	during := time.Since(t0)
	time.Sleep(hold - time.Since(held))
	linesDuring := lineCount(out)
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	t0 = time.Now()
	errAfter := ctl.Rotate(out)
	after := time.Since(t0)
	close(stop)
	<-sampled

	t.Logf("host: %d descriptors and %d KiB before the flood; at most %d descriptors and %d KiB (+%d KiB) during it",
		baseFDs, baseRSS, peakFDs, peakRSS, peakRSS-baseRSS)
	t.Logf("rotate during the flood: %v (%v); right after it: %v (%v); %d lines written while it was held",
		during, errDuring, after, errAfter, linesDuring-linesBefore)
	if errDuring != nil {
		t.Errorf("rotate during the flood: %v", errDuring)
	}
	if errAfter != nil {
		t.Errorf("rotate after the flood: %v", errAfter)
	}
	if peakFDs >= maxFDs {
		t.Errorf("the host held %d descriptors during the flood, want fewer than %d", peakFDs, maxFDs)
	}
	if peakRSS-baseRSS >= maxGrow {
		t.Errorf("the host grew by %d KiB during the flood, want less than %d", peakRSS-baseRSS, maxGrow)
	}
	if linesDuring <= linesBefore {
		t.Errorf("no line written while the flood was held (%d before, %d after)", linesBefore, linesDuring)
	}

	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, records)
	c := newSeqCount(records)
	c.add(out, readMaybeGzip(t, out), "")
	c.check(t)
	if !strings.Contains(stderr, "connections open, the most it holds") {
		t.Errorf("the flood was not logged:\n%s", tail(stderr, 3000))
	}
	if n := strings.Count(stderr, "connections open, the most it holds"); n > 10 {
		t.Errorf("the flood was logged %d times: it must be rate-limited", n)
	}
}

// rawHostStatus sends GET /status with the given Host header on a fresh
// connection to a TCP addr.
func rawHostStatus(addr, host string) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /status HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestEndpointHostCheck: the .so's loopback endpoint answers 421 to every
// Host a rebound web page would send, and serves the loopback names.
func TestEndpointHostCheck(t *testing.T) {
	addr := fbtest.FreeTCPAddr(t)
	out := filepath.Join(t.TempDir(), "host.log")
	h := fbtest.StartHost(t, "-in", seqInput(t, lifeRecords), "-hold-ms", holdMs, "-p", "path="+out, "-p", "control_listen="+addr)
	done := hostDone(h)
	waitLines(t, h, done, out, lifeRecords)
	_, port, _ := net.SplitHostPort(addr)
	for _, host := range []string{
		"evil.example", "evil.example:" + port, "127.0.0.1.nip.io:" + port, "localhost.evil.example", "0.0.0.0:" + port,
		"10.1.2.3", "[::2]", "flatstore", "localhost.",
	} {
		code, body, err := rawHostStatus(addr, host)
		if err != nil || code != http.StatusMisdirectedRequest || strings.Contains(body, out) {
			t.Errorf("Host %q: %d %q %v, want 421 and no file named", host, code, body, err)
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port} {
		if code, body, err := rawHostStatus(addr, host); err != nil || code != http.StatusOK || !strings.Contains(body, out) {
			t.Errorf("Host %q: %d %q %v, want the status", host, code, body, err)
		}
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, lifeRecords)
}

// TestEndpointUnixMaxPath: control_listen on a unix socket whose path has
// the 107 bytes sun_path allows, in a long directory with a short name:
// it binds, and flatstore-ctl's client rotates through it.
func TestEndpointUnixMaxPath(t *testing.T) {
	const name = "c.sock"
	base := t.TempDir()
	if len(base) > 100 {
		t.Skipf("the temporary directory %s is too long for this test", base)
	}
	dir := filepath.Join(base, strings.Repeat("d", 107-len(name)-len(base)-2))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, name)
	out := filepath.Join(base, "unix.log")
	h := fbtest.StartHost(t, "-in", seqInput(t, lifeRecords), "-hold-ms", holdMs, "-p", "path="+out, "-p", "control_listen=unix:"+sock)
	done := hostDone(h)
	waitLines(t, h, done, out, lifeRecords)
	if err := ctlClient(t, "unix:"+sock, "").Rotate(out); err != nil {
		t.Fatalf("rotate over the %d-byte socket path: %v; stderr:\n%s", len(sock), err, h.Stderr())
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, lifeRecords)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left after exit: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%s holds %d entries after exit", dir, len(ents))
	}
}

// TestEndpointMIFidelity: the MI replies of the .so where a real OpenSIPS
// 3.6.8/4.0.1 was recorded: /mi/ and anything under it is MI, a string id
// comes back with its UTF-8 raw, a numeric path_to_file is taken as its
// text, and a NUL is a parse error.
func TestEndpointMIFidelity(t *testing.T) {
	addr := fbtest.FreeTCPAddr(t)
	out := filepath.Join(t.TempDir(), "mi.log")
	h := fbtest.StartHost(t, "-in", seqInput(t, lifeRecords), "-hold-ms", holdMs, "-p", "path="+out, "-p", "control_listen="+addr)
	done := hostDone(h)
	waitLines(t, h, done, out, lifeRecords)
	ctl := ctlClient(t, addr, "")
	rot := func(id, params string) string {
		return `{"jsonrpc":"2.0","method":"evi_flat_rotate","params":` + params + `,"id":` + id + `}`
	}
	p := strconv.Quote(out)
	for _, c := range []struct{ path, body, want string }{
		{"/mi", rot(`"\u00e9"`, `[`+p+`]`), `{"jsonrpc":"2.0","result":"OK","id":"é"}`},
		{"/mi/", rot(`1`, `{"path_to_file":`+p+`}`), `{"jsonrpc":"2.0","result":"OK","id":1}`},
		{"/mi/json/anything", rot(`"x\n"`, `[`+p+`]`), `{"jsonrpc":"2.0","result":"OK","id":"x\n"}`},
		{"/mi", rot(`2`, `{"path_to_file":5}`), `{"jsonrpc":"2.0","error":{"code":400,"message":"File not found"},"id":2}`},
		{"/mi", rot(`3`, `[12.5]`), `{"jsonrpc":"2.0","error":{"code":400,"message":"File not found"},"id":3}`},
		{"/mi", rot(`4`, `[`+p[:len(p)-1]+`\u0000"]`), `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`},
		{"/mi", rot(`5`, `[`+p+`]`) + "\x00", `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`},
	} {
		code, body, err := ctl.Do(http.MethodPost, c.path, []byte(c.body))
		if err != nil || code != http.StatusOK || string(body) != c.want {
			t.Errorf("POST %s %q:\n got %d %s %v\nwant 200 %s", c.path, c.body, code, body, err, c.want)
		}
	}
	if n := miRotations(t, ctl); n != 3 {
		t.Errorf("%d mi rotations counted, want 3", n)
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, lifeRecords)
}

// trickle keeps n connections to the TCP addr that each send whole headers
// (head) declaring a 4 KiB body and then trickle it, a byte every 20 ms; a
// connection the server closes is opened again 10 ms later. started counts
// the headers sent; stop ends them and waits.
func trickle(addr, head string, n int) (stop func(), started *atomic.Int64) {
	done := make(chan struct{})
	started = &atomic.Int64{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err == nil {
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
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }, started
}

// TestEndpointTricklers: more connections than the endpoint's cap send
// whole headers and then trickle a body, reopening as soon as they are
// closed; with the host holding every connection it takes, 8 of 8 rotates
// by flatstore-ctl's client still succeed, without a token (the tricklers
// as local as the rotates) and with one (the tricklers on /healthz, served
// without it). With the token, a request without it is answered 401 before
// its body is sent and its connection closed; every record lands once.
func TestEndpointTricklers(t *testing.T) {
	for _, c := range []struct{ name, token, head string }{
		{"no token", "", "POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
		{"token", "s3cret-s3cret-s3cret", "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			const tricklers = 160 // above the cap of 128
			raiseNofile(t, 4096)
			addr := fbtest.FreeTCPAddr(t)
			out := filepath.Join(t.TempDir(), "trickle.log")
			args := []string{"-in", seqInput(t, lifeRecords), "-hold-ms", holdMs, "-p", "path=" + out, "-p", "control_listen=" + addr}
			if c.token != "" {
				args = append(args, "-p", "control_token="+c.token)
			}
			h := fbtest.StartHost(t, args...)
			done := hostDone(h)
			waitHealthy(t, h, done, addr)
			waitLines(t, h, done, out, lifeRecords)
			pid := hostPID(t, "path="+out)
			base := fdCount(pid)
			stop, started := trickle(addr, c.head, tricklers)
			defer stop()
			// Every trickler has sent its headers, and the host holds as many
			// connections as it takes.
			for i := 0; started.Load() < tricklers || fdCount(pid) < base+100; i++ {
				if i == 4000 {
					t.Fatalf("%d tricklers started, the host holds %d descriptors (%d before)", started.Load(), fdCount(pid), base)
				}
				time.Sleep(5 * time.Millisecond)
			}
			held := fdCount(pid) - base
			ok := 0
			for i := range 8 {
				ctl := ctlClient(t, addr, c.token)
				if err := ctl.Rotate(out); err != nil {
					t.Errorf("rotate %d during the trickle: %v", i+1, err)
				} else {
					ok++
				}
				ctl.Close()
			}
			if c.token != "" {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // a safety net only
				io.WriteString(conn, "POST /mi HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				if err != nil || resp.StatusCode != http.StatusUnauthorized || !resp.Close {
					t.Errorf("a request without the token, body not sent: %v %v, want 401 and Connection: close", resp, err)
				} else if _, err := io.ReadAll(br); err != nil {
					t.Errorf("the 401 connection was not closed: %v", err)
				}
				conn.Close()
			}
			stop()
			n := miRotations(t, ctlClient(t, addr, c.token))
			t.Logf("%d of 8 rotates with %d trickling connections (%d held by the host); %d mi rotations counted", ok, tricklers, held, n)
			if ok != 8 || n != 8 {
				t.Errorf("%d of 8 rotates succeeded, %d counted", ok, n)
			}
			h.Release()
			sum, stderr, code := h.Wait()
			hostOK(t, sum, stderr, code, lifeRecords)
			if c.token != "" && !strings.Contains(stderr, "no valid control_token (401; the connection is closed)") {
				t.Errorf("the 401 was not logged:\n%s", tail(stderr, 3000))
			}
		})
	}
}
