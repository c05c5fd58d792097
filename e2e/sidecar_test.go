package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
	"github.com/flatstore/flatstore/internal/repo"
)

// flatstore as OpenSIPS's sidecar (conf/opensips-sidecar.conf and .yaml):
// OpenSIPS's event_stream and event_datagram send JSON-RPC notifications,
// Fluent Bit's tcp and udp inputs decode them, and flatstore must write what
// event_flatstore wrote (flatstore/testdata/opensips/event_stream.json).
// Through the real .so in the host, and, when a real Fluent Bit is given,
// through its inputs from the wire bytes themselves.

// sidecarModes are the two escapes the sidecar may run with, and the column
// of the table each must write.
var sidecarModes = []struct {
	escape string
	want   func(fbtest.WireCase) string
}{
	{"opensips_exact", func(c fbtest.WireCase) string { return c.OpenSIPS }},
	{"opensips", fbtest.WireCase.Flatstore},
}

// wireRecord is the record Fluent Bit's tcp and udp inputs (format json)
// make of one notification: [[time, {}], the object as a map].
func wireRecord(c fbtest.WireCase, i int) []byte {
	return records.AppendRecord(nil, records.Record{Time: time.Unix(1700000000, int64(i)), Body: records.JSONRecordBody(c.Wire)})
}

// TestSidecarVectorsThroughHost: every recorded notification, as the
// record Fluent Bit makes of it, through the plugin in the host: each case
// in a chunk of its own, then all in one chunk, then in chunks of four. The
// file holds exactly event_flatstore's bytes under escape opensips_exact,
// and the one-line form under escape opensips.
func TestSidecarVectorsThroughHost(t *testing.T) {
	fbtest.Build(t)
	cases := fbtest.LoadWireCases(t)
	for _, m := range sidecarModes {
		t.Run(m.escape, func(t *testing.T) {
			var chunks [][]byte
			var all []byte
			var one, want string
			for i, c := range cases {
				r := wireRecord(c, i)
				chunks = append(chunks, r)
				all = append(all, r...)
				one += m.want(c)
			}
			chunks = append(chunks, all)
			for i := 0; i < len(cases); i += 4 {
				var b []byte
				for j := i; j < min(i+4, len(cases)); j++ {
					b = append(b, wireRecord(cases[j], j)...)
				}
				chunks = append(chunks, b)
			}
			want = one + one + one
			dir := t.TempDir()
			out := filepath.Join(dir, "events.log")
			in := filepath.Join(dir, "in.chunks")
			if err := os.WriteFile(in, records.Frames(chunks...), 0o644); err != nil {
				t.Fatal(err)
			}
			s, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-tag", "opensips.stream",
				"-p", "path=flatstore:"+out, "-p", "control_listen=off",
				"-p", "event_key=method", "-p", "params_key=params", "-p", "escape="+m.escape)
			if code != 0 || len(s.Instances) != 1 || s.Instances[0].OKRecords != int64(3*len(cases)) {
				t.Fatalf("exit %d, summary %+v; stderr:\n%s", code, s, stderr)
			}
			if got := fbtest.ReadText(t, out); got != want {
				t.Errorf("the file holds\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// --- a real Fluent Bit on the sidecar's own configuration ---------------------------------

// sidecarRun is a real Fluent Bit running a copy of conf/opensips-sidecar.*.
type sidecarRun struct {
	*fbRun
	out      string // the directory flatstore writes the files into
	tcp, udp string // the inputs' addresses
}

// startSidecar runs conf/opensips-sidecar.<format> ("conf" or "yaml") in a
// real Fluent Bit, with the plugin this test built, free loopback ports and
// files under a temp dir; edit may change the configuration's text first.
func startSidecar(t *testing.T, format string, edit func(string) string) *sidecarRun {
	t.Helper()
	fb := fluentBit(t)
	so := fbtest.BuildPlugin(t)
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, "conf", "opensips-sidecar."+format))
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	if edit != nil {
		text = edit(text)
	}
	dir := t.TempDir()
	// The file names no plugin: -e loads it, as the image's entrypoint does.
	cf := filepath.Join(dir, "opensips-sidecar."+format)
	if err := os.WriteFile(cf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &sidecarRun{
		fbRun: &fbRun{log: filepath.Join(dir, "fluent-bit.log"), done: make(chan struct{}), out: &fbtest.SyncBuffer{}},
		out:   filepath.Join(dir, "out"),
		tcp:   fbtest.FreeTCPAddr(t),
		udp:   fbtest.FreeUDPAddr(t),
	}
	_, tcpPort, _ := net.SplitHostPort(s.tcp)
	_, udpPort, _ := net.SplitHostPort(s.udp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s.cmd = exec.CommandContext(ctx, fb, "-e", so, "-c", cf, "-l", s.log)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "FLATSTORE_OUT="+s.out, "FLATSTORE_CONTROL=off",
		"FLATSTORE_STREAM_PORT="+tcpPort, "FLATSTORE_DATAGRAM_PORT="+udpPort)
	s.cmd.Stdout, s.cmd.Stderr = s.fbRun.out, s.fbRun.out
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); cancel(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			s.cmd.Process.Kill()
			t.Errorf("fluent-bit did not exit within 15 s of SIGTERM; log:\n%s", tail(s.logText(), 3000))
		}
	})
	// Both inputs listen once their lines are in the log.
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range []string{s.tcp, s.udp} {
		for !strings.Contains(s.logText(), "listening on "+addr) {
			select {
			case <-s.done:
				t.Fatalf("fluent-bit exited (%v); log:\n%s", s.err, tail(s.logText(), 3000))
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no input listens on %s after 30 s; log:\n%s", addr, tail(s.logText(), 3000))
			}
		}
	}
	return s
}

// files returns what flatstore wrote: the event files (events.log plus the
// rotation suffix) in name order, which is the order they were written.
func (s *sidecarRun) files() []string {
	names, _ := filepath.Glob(filepath.Join(s.out, "opensips", "events.log*"))
	slices.Sort(names)
	return names
}

func (s *sidecarRun) size() int64 {
	var n int64
	for _, f := range s.files() {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func (s *sidecarRun) text(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, f := range s.files() {
		b.WriteString(fbtest.ReadText(t, f))
	}
	return b.String()
}

// waitBytes waits, at most limit, until the files hold n bytes or more, and
// returns how long that took.
func (s *sidecarRun) waitBytes(t *testing.T, n int64, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := s.size()
		if got >= n {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("the files hold %d bytes after %v, want %d; log:\n%s", got, limit, n, tail(s.logText(), 3000))
		}
		select {
		case <-s.done:
			if got := s.size(); got < n {
				t.Fatalf("fluent-bit exited (%v) with %d bytes written, want %d; log:\n%s", s.err, got, n, tail(s.logText(), 3000))
			}
			return time.Since(start)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// sendTCP writes the notifications on one connection, as event_stream does:
// back to back, nothing between them; with piece > 0 in writes of that many
// bytes, so that the input sees notifications cut anywhere.
func sendTCP(t *testing.T, addr string, stream []byte, piece int) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if piece <= 0 {
		piece = len(stream)
	}
	for len(stream) > 0 {
		n := min(piece, len(stream))
		if _, err := c.Write(stream[:n]); err != nil {
			t.Fatal(err)
		}
		stream = stream[n:]
		if piece < 64 {
			time.Sleep(time.Millisecond) // one segment each
		}
	}
}

// sendUDP sends each notification as one datagram, as event_datagram does.
func sendUDP(t *testing.T, addr string, msgs ...[]byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // a burst may overrun the receive buffer: see TestFluentBitSidecarBurst
	}
}

// escapeLine is the escape setting of a classic or YAML configuration.
var escapeLine = regexp.MustCompile(`(?m)^(\s*(?:-\s*)?escape:?\s+)opensips_exact\s*$`)

// TestFluentBitSidecar: the sidecar's configurations, classic and YAML, in
// a real Fluent Bit: every recorded notification sent as its wire bytes —
// over one TCP connection in one write, again cut in 7-byte writes, and as
// UDP datagrams — lands in the file as exactly what event_flatstore wrote
// (escape opensips_exact, as configured); with escape opensips, as the
// one-line form.
func TestFluentBitSidecar(t *testing.T) {
	fluentBit(t)
	cases := fbtest.LoadWireCases(t)
	var stream []byte
	var dgrams [][]byte
	for _, c := range cases {
		stream = append(stream, c.Wire...)
		dgrams = append(dgrams, c.Wire)
	}
	for _, run := range []struct {
		format, escape string
	}{{"conf", "opensips_exact"}, {"yaml", "opensips_exact"}, {"yaml", "opensips"}} {
		t.Run(run.format+" "+run.escape, func(t *testing.T) {
			var edit func(string) string
			var want string
			for _, m := range sidecarModes {
				if m.escape == run.escape {
					for _, c := range cases {
						want += m.want(c)
					}
				}
			}
			if run.escape != "opensips_exact" {
				edit = func(s string) string {
					out := escapeLine.ReplaceAllString(s, "${1}"+run.escape)
					if out == s {
						t.Fatal("the configuration sets no escape opensips_exact")
					}
					return out
				}
			}
			s := startSidecar(t, run.format, edit)
			sendTCP(t, s.tcp, stream, 0)
			s.waitBytes(t, int64(len(want)), 60*time.Second)
			sendTCP(t, s.tcp, stream, 7)
			s.waitBytes(t, int64(2*len(want)), 60*time.Second)
			sendUDP(t, s.udp, dgrams...)
			s.waitBytes(t, int64(3*len(want)), 60*time.Second)
			time.Sleep(1500 * time.Millisecond) // anything written twice would show by now
			s.stop(t)
			if got := s.text(t); got != want+want+want {
				gl, _ := fbtest.SplitLines([]byte(got))
				wl, _ := fbtest.SplitLines([]byte(want + want + want))
				for i := 0; i < len(gl) && i < len(wl); i++ {
					if gl[i] != wl[i] {
						t.Errorf("line %d: %q, want %q", i+1, gl[i], wl[i])
						break
					}
				}
				t.Errorf("the files hold %d lines, want %d:\n%q", len(gl), len(wl), got)
			}
			if files := s.files(); len(files) != 1 || !strings.HasPrefix(filepath.Base(files[0]), "events.log.20") {
				t.Errorf("files %v: want one, named by the configured suffix (events.log.YYYYMMDD)", files)
			}
		})
	}
}

// TestFluentBitSidecarLargeEvents: the inputs' sizes in the sidecar's
// configuration take large events whole — a 200 KB notification between
// two small ones on one TCP connection, a 60 KB datagram — which Fluent
// Bit's defaults do not (the configuration's comments say so: the TCP input
// drops the connection with what it held, the UDP input drops the datagram
// without a word).
func TestFluentBitSidecarLargeEvents(t *testing.T) {
	fluentBit(t)
	note := func(method, v string) []byte {
		return []byte(`{"jsonrpc":"2.0","method":"` + method + `","params":{"v":"` + v + `"}}`)
	}
	bigTCP, bigUDP := strings.Repeat("t", 200<<10), strings.Repeat("u", 60<<10)
	for _, defaults := range []bool{false, true} {
		t.Run(fmt.Sprintf("defaults=%v", defaults), func(t *testing.T) {
			var edit func(string) string
			if defaults {
				edit = func(s string) string {
					var keep []string
					for _, l := range strings.Split(s, "\n") {
						if f := strings.Fields(strings.ToLower(l)); len(f) > 0 && (f[0] == "chunk_size" || f[0] == "buffer_size") {
							continue
						}
						keep = append(keep, l)
					}
					return strings.Join(keep, "\n")
				}
			}
			s := startSidecar(t, "conf", edit)
			stream := append(append(note("E_BEFORE", "a"), note("E_BIG", bigTCP)...), note("E_AFTER", "b")...)
			sendTCP(t, s.tcp, stream, 0)
			sendTCP(t, s.tcp, note("E_NEXT", "c"), 0) // a new connection, as OpenSIPS reconnects
			sendUDP(t, s.udp, note("E_UBIG", bigUDP), note("E_USMALL", "d"))
			want := "E_BEFORE,a\nE_BIG," + bigTCP + "\nE_AFTER,b\nE_NEXT,c\nE_UBIG," + bigUDP + "\nE_USMALL,d\n"
			if defaults {
				want = "E_BEFORE,a\nE_NEXT,c\nE_USMALL,d\n"
			}
			s.waitBytes(t, int64(len(want)), 60*time.Second)
			time.Sleep(1500 * time.Millisecond)
			s.stop(t)
			got := s.text(t)
			// The connections and the datagrams may be taken in any order.
			gl, _ := fbtest.SplitLines([]byte(got))
			wl, _ := fbtest.SplitLines([]byte(want))
			slices.Sort(gl)
			slices.Sort(wl)
			if !slices.Equal(gl, wl) {
				short := func(ls []string) []string {
					var out []string
					for _, l := range ls {
						out = append(out, l[:min(len(l), 40)]+"…"+strconv.Itoa(len(l)))
					}
					return out
				}
				t.Errorf("lines %q, want %q", short(gl), short(wl))
			}
			if defaults && !strings.Contains(s.logText(), "incoming data exceeds 'Buffer_Size' (32 KB)") {
				t.Errorf("with the defaults the tcp input did not say why it dropped the connection; log:\n%s", tail(s.logText(), 3000))
			}
		})
	}
}

// TestFluentBitSidecarBurst: 100 000 notifications over one TCP connection
// as fast as the socket takes them, as event_stream sends a burst: each
// lands exactly once, as its exact line. The time it took is logged, never
// asserted.
func TestFluentBitSidecarBurst(t *testing.T) {
	fluentBit(t)
	const n = 100000
	note := func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","method":"E_ACC_CDR","params":{"method":"INVITE","from_tag":"a84b4c76e66710","to_tag":"314159","callid":"%d@pc33.atlanta.example.com","sip_code":"200","sip_reason":"OK","time":1700000000,"duration":%d,"setuptime":2,"created":1699999990}}`, i, i%3600)
	}
	line := func(i int) string {
		return fmt.Sprintf("E_ACC_CDR,INVITE,a84b4c76e66710,314159,%d@pc33.atlanta.example.com,200,OK,1700000000,%d,2,1699999990\n", i, i%3600)
	}
	var stream []byte
	var size int64
	for i := 0; i < n; i++ {
		stream = append(stream, note(i)...)
		size += int64(len(line(i)))
	}
	s := startSidecar(t, "yaml", nil)
	start := time.Now()
	sendTCP(t, s.tcp, stream, 0)
	sent := time.Since(start)
	written := s.waitBytes(t, size, 120*time.Second) + sent
	time.Sleep(1500 * time.Millisecond) // anything written twice would show by now
	s.stop(t)

	seen := make([]int, n)
	inOrder, bad, next := true, 0, 0
	for _, f := range s.files() {
		for _, l := range fbtest.ReadLines(t, f) {
			_, rest, _ := strings.Cut(l, "314159,")
			seq, _, _ := strings.Cut(rest, "@")
			i, err := strconv.Atoi(seq)
			if err != nil || i < 0 || i >= n || l+"\n" != line(i) {
				if bad++; bad <= 5 {
					t.Errorf("line %q", l)
				}
				continue
			}
			seen[i]++
			if i != next {
				inOrder = false
			}
			next = i + 1
		}
	}
	lost, dup := 0, 0
	for i, c := range seen {
		switch {
		case c == 0:
			if lost++; lost <= 5 {
				t.Errorf("notification %d never written", i)
			}
		case c > 1:
			if dup++; dup <= 5 {
				t.Errorf("notification %d written %d times", i, c)
			}
		}
	}
	t.Logf("%d notifications (%d MB) over one TCP connection: sent in %v, all written %v after the first byte; %d lost, %d duplicated, %d malformed; in order: %v",
		n, len(stream)>>20, sent.Round(time.Millisecond), written.Round(time.Millisecond), lost, dup, bad, inOrder)
}

// TestSidecarEventParamsThroughHost: event_params_file through the .so:
// OpenSIPS 4.0's E_PROFILING_PROC without file, line and status on the
// wire becomes a line with every column, as event_flatstore writes it.
func TestSidecarEventParamsThroughHost(t *testing.T) {
	dir := t.TempDir()
	params := filepath.Join(dir, "events.params")
	if err := os.WriteFile(params, []byte("E_PROFILING_PROC sec,usec,session,verb,name,type,depth,file,line,status\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wires := []string{
		`{"jsonrpc":"2.0","method":"E_PROFILING_PROC","params":{"sec":1776767469,"usec":200446,"session":3463978,"verb":"start","name":"SIP receiver udp:127.0.0.1:5060","type":1,"depth":1}}`,
		`{"jsonrpc":"2.0","method":"E_PROFILING_PROC","params":{"sec":1776767469,"usec":200471,"session":3463978,"verb":"enter","name":"route","type":1,"depth":2,"file":"opensips.cfg","line":42}}`,
		`{"jsonrpc":"2.0","method":"E_PROFILING_PROC","params":{"sec":1776767469,"usec":200502,"session":3463978,"verb":"end","name":"SIP receiver udp:127.0.0.1:5060","type":1,"depth":1,"status":1}}`,
	}
	want := "E_PROFILING_PROC,1776767469,200446,3463978,start,SIP receiver udp:127.0.0.1:5060,1,1,,,\n" +
		"E_PROFILING_PROC,1776767469,200471,3463978,enter,route,1,2,opensips.cfg,42,\n" +
		"E_PROFILING_PROC,1776767469,200502,3463978,end,SIP receiver udp:127.0.0.1:5060,1,1,,,1\n"
	var chunk []byte
	for _, w := range wires {
		chunk = records.AppendRecord(chunk, records.Record{Time: time.Unix(1776767469, 0), Body: records.JSONRecordBody([]byte(w))})
	}
	in := filepath.Join(dir, "in.chunks")
	if err := os.WriteFile(in, records.Frames(chunk), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "events.log")
	s, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-tag", "opensips.stream",
		"-p", "path="+out, "-p", "control_listen=off", "-p", "event_key=method", "-p", "params_key=params",
		"-p", "escape=opensips_exact", "-p", "event_params_file="+params)
	if code != 0 || len(s.Instances) != 1 || s.Instances[0].OKRecords != 3 {
		t.Fatalf("exit %d, summary %+v; stderr:\n%s", code, s, stderr)
	}
	if got := fbtest.ReadText(t, out); got != want {
		t.Errorf("the file holds\n%q\nwant\n%q", got, want)
	}
}
