package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Tests against a real Fluent Bit, when one is given: FLUENT_BIT=/path/to/
// fluent-bit, or fluent-bit on PATH. Without one they skip; everything they
// check is also checked through the project's host (native_test.go and the
// rest), which follows the engine's ABI to the letter.

// fluentBit returns the engine to test against, or skips.
func fluentBit(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLUENT_BIT"); p != "" {
		return p
	}
	if p, err := exec.LookPath("fluent-bit"); err == nil {
		return p
	}
	t.Skip("no Fluent Bit: set FLUENT_BIT=/path/to/fluent-bit (v5.1) to run the tests against a real engine")
	return ""
}

// fbRun is a running Fluent Bit.
type fbRun struct {
	cmd  *exec.Cmd
	out  *fbtest.SyncBuffer // what it printed on stdout and stderr
	log  string             // its log file
	done chan struct{}
	err  error
}

// startFluentBit writes conf (a classic config; {{.}} placeholders are
// not used: the caller formats it) into a temp dir and starts the engine
// on it with the plugin loaded and its log in a file.
func startFluentBit(t *testing.T, conf string, args ...string) *fbRun {
	t.Helper()
	fb := fluentBit(t)
	so := fbtest.BuildPlugin(t)
	dir := t.TempDir()
	cf := filepath.Join(dir, "fluent-bit.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &fbRun{log: filepath.Join(dir, "fluent-bit.log"), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	r.cmd = exec.CommandContext(ctx, fb, append([]string{"-e", so, "-c", cf, "-l", r.log}, args...)...)
	r.cmd.Dir = dir
	r.out = &fbtest.SyncBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { r.err = r.cmd.Wait(); cancel(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			r.cmd.Process.Kill()
			t.Errorf("fluent-bit did not exit within 15 s of SIGTERM; log:\n%s", tail(r.logText(), 3000))
		}
	})
	return r
}

func (r *fbRun) logText() string {
	b, _ := os.ReadFile(r.log)
	return string(b) + r.out.String()
}

// stop sends SIGTERM and waits for the engine to exit.
func (r *fbRun) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("fluent-bit did not exit within 20 s of SIGTERM; log:\n%s", tail(r.logText(), 3000))
	}
}

// runFluentBit runs the engine to its end and returns its output and code.
func runFluentBit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	fb := fluentBit(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, fb, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// waitLinesIn polls until path holds n lines.
func waitLinesIn(t *testing.T, r *fbRun, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if got := strings.Count(string(b), "\n"); got >= n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s holds %d lines after 60 s, want %d; log:\n%s", path, got, n, tail(r.logText(), 3000))
		}
		select {
		case <-r.done:
			b, _ := os.ReadFile(path)
			if got := strings.Count(string(b), "\n"); got < n {
				t.Fatalf("fluent-bit exited (%v) with %s holding %d lines, want %d; log:\n%s", r.err, path, got, n, tail(r.logText(), 3000))
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestFluentBitConfigMap: the engine checks flatstore's keys: a misspelt
// one fails --dry-run and start-up naming it, with the engine's hint; -h
// lists every key with its default; a good config passes --dry-run.
func TestFluentBitConfigMap(t *testing.T) {
	fb := fluentBit(t)
	so := fbtest.BuildPlugin(t)
	out := filepath.Join(t.TempDir(), "e.log")
	for _, typo := range []string{"delimter", "rotate_sise", "time_fromat"} {
		for _, dry := range []bool{true, false} {
			args := []string{"-e", so, "-i", "dummy", "-p", "samples=1", "-o", "flatstore", "-p", "path=" + out, "-p", typo + "=x", "-p", "control_listen=off"}
			if dry {
				args = append(args, "--dry-run")
			}
			text, code := runFluentBit(t, args...)
			if code == 0 {
				t.Errorf("%s (dry-run %v): exit code 0", typo, dry)
			}
			for _, want := range []string{"unknown configuration property '" + typo + "'", "try the command: " + fb + " -o flatstore -h"} {
				if !strings.Contains(text, want) {
					t.Errorf("%s (dry-run %v): output lacks %q:\n%s", typo, dry, want, tail(text, 2000))
				}
			}
		}
	}
	text, code := runFluentBit(t, "-e", so, "-i", "dummy", "-o", "flatstore", "-p", "path="+out, "-p", "control_listen=off", "--dry-run")
	if code != 0 || !strings.Contains(text, "configuration test is successful") {
		t.Errorf("--dry-run of a good config: exit %d:\n%s", code, tail(text, 2000))
	}
	help, _ := runFluentBit(t, "-e", so, "-o", "flatstore", "-h")
	checkHelp(t, help)
}

// TestFluentBitLogging: output log_level error silences the plugin's info
// lines; log_file receives the plugin's lines with milliseconds and the
// alias; the metrics carry the alias and zero-valued error series.
func TestFluentBitLogging(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, `{"event":"E_L","i":%d}`+"\n", i)
	}
	if err := os.WriteFile(in, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fbtest.FreeTCPAddr(t)
	conf := func(level, outFile string) string {
		return fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 1
    Log_Level info
    Parsers_File %s
[INPUT]
    Name tail
    Path %s
    Read_from_Head On
    Parser json
[OUTPUT]
    Name flatstore
    Alias sip_events
    Match *
    Log_Level %s
    path %s
    control_listen %s
`, parsersConf(t), in, level, outFile, addr)
	}
	r := startFluentBit(t, conf("info", filepath.Join(dir, "info.log")))
	waitLinesIn(t, r, filepath.Join(dir, "info.log"), 100)
	c := ctlClient(t, addr, "")
	code, body, err := c.Do(http.MethodGet, "/metrics", nil)
	if err != nil || code != 200 {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, want := range []string{
		`flatstore_records_written_total{instance="sip_events"} 100`,
		`flatstore_write_errors_total{errno="ENOSPC",instance="sip_events"} 0`,
		`flatstore_records_dropped_total{instance="sip_events",reason="bad_path"} 0`,
		`flatstore_flush_retries_total{cause="write_error",instance="sip_events"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	r.stop(t)
	text := r.logText()
	ours := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "[output:flatstore:") {
			ours++
			if !engineLine.MatchString(l) || !strings.Contains(l, "[output:flatstore:sip_events] ") {
				t.Errorf("log line %q: want milliseconds and the alias", l)
			}
		}
	}
	if ours < 2 || !strings.Contains(text, "[ info] [output:flatstore:sip_events] writing events to") {
		t.Errorf("the log file holds %d of the plugin's lines:\n%s", ours, tail(text, 3000))
	}

	r = startFluentBit(t, conf("error", filepath.Join(dir, "error.log")))
	waitLinesIn(t, r, filepath.Join(dir, "error.log"), 100)
	r.stop(t)
	if text := r.logText(); strings.Contains(text, "[output:flatstore:") {
		t.Errorf("with log_level error the plugin logged:\n%s", tail(text, 3000))
	}
}

// parsersConf writes a parsers file with the json parser.
func parsersConf(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "parsers.conf")
	if err := os.WriteFile(p, []byte("[PARSER]\n    Name json\n    Format json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// forwardSend sends n records over Fluent Bit's forward protocol (Forward
// mode: [tag, [[time, record]...]]).
func forwardSend(t *testing.T, addr, tag string, first, n int) {
	t.Helper()
	conn, err := dialForward(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(forwardMessage(tag, first, n)); err != nil {
		t.Fatal(err)
	}
}

func dialForward(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

// forwardMessage is n records {"event":"E_FWD","seq":first+i} as Forward-mode
// messages of at most 500 records each.
func forwardMessage(tag string, first, n int) []byte {
	var b []byte
	for i := first; i < first+n; i += 500 {
		k := min(500, first+n-i)
		b = msgp.AppendArrayHeader(b, 2)
		b = msgp.AppendString(b, tag)
		b = msgp.AppendArrayHeader(b, uint32(k))
		for j := i; j < i+k; j++ {
			b = msgp.AppendArrayHeader(b, 2)
			b = records.AppendEventTime(b, 1700000000, uint32(j))
			b = records.AppendKV(b, records.KV{"event", "E_FWD", "seq", j})
		}
	}
	return b
}

// seqLines checks that path holds E_<ev>,<seq> lines for first..first+n-1
// each exactly once.
func seqLines(t *testing.T, path, ev string, first, n int) {
	t.Helper()
	seen := map[int]int{}
	for _, l := range fbtest.ReadLines(t, path) {
		f := strings.Split(l, ",")
		if len(f) != 2 || f[0] != ev {
			t.Errorf("%s: line %q", path, l)
			continue
		}
		k, err := strconv.Atoi(f[1])
		if err != nil {
			t.Errorf("%s: line %q", path, l)
		}
		seen[k]++
	}
	bad := 0
	for k := first; k < first+n; k++ {
		if seen[k] != 1 {
			if bad++; bad <= 5 {
				t.Errorf("%s: seq %d written %d times, want once", path, k, seen[k])
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%s: %d distinct seqs, want %d", path, len(seen), n)
	}
}

// TestFluentBitForwardWorkers: the forward input, two workers: 20 000
// records over the forward protocol land, each once.
func TestFluentBitForwardWorkers(t *testing.T) {
	dir := t.TempDir()
	port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	out := filepath.Join(dir, "fwd.log")
	r := startFluentBit(t, fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 1
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port %s
[OUTPUT]
    Name flatstore
    Match *
    Workers 2
    path %s
    control_listen off
`, port, out))
	waitAccepting(t, "127.0.0.1:"+port)
	const n = 20000
	forwardSend(t, "127.0.0.1:"+port, "fwd.test", 0, n)
	waitLinesIn(t, r, out, n)
	r.stop(t)
	seqLines(t, out, "E_FWD", 0, n)
}

// TestFluentBitHotReload: SIGHUP reloads the engine three times while
// records flow from a growing file (tail with a position database): every
// record lands exactly once, across the reloads.
//
// Workers 0 here; TestFluentBitReloadShippedConfigs reloads with Workers 2.
// Fluent Bit 5.1.1 itself crashed (SIGSEGV in
// flb_upstream_conn_timeouts, in an output worker thread) when it reloaded
// any Go output that exports FLBPluginExitCtx and runs with Workers 1 or
// more (its two worker pools; plugin/engine.c gives it one). docs/troubleshooting.md says why.
func TestFluentBitHotReload(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	out := filepath.Join(dir, "reload.log")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := startFluentBit(t, fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 2
    Hot_Reload On
    Parsers_File %s
[INPUT]
    Name tail
    Path %s
    Parser json
    DB %s
    Refresh_Interval 1
    Read_from_Head On
[OUTPUT]
    Name flatstore
    Match *
    Workers 0
    path %s
    control_listen off
`, parsersConf(t), in, filepath.Join(dir, "tail.db"), out))
	const n = 30000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := bufio.NewWriter(f)
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, `{"event":"E_R","seq":%d}`+"\n", i)
			if i%1000 == 999 {
				w.Flush()
				time.Sleep(100 * time.Millisecond)
			}
		}
		w.Flush()
	}()
	for i := 0; i < 3; i++ {
		time.Sleep(700 * time.Millisecond)
		if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	waitLinesIn(t, r, out, n)
	time.Sleep(1500 * time.Millisecond) // anything written twice would show by now
	r.stop(t)
	if c := strings.Count(r.logText(), "reload"); c < 3 {
		t.Logf("log mentions reload %d times:\n%s", c, tail(r.logText(), 3000))
	}
	seqLines(t, out, "E_R", 0, n)
}

// TestFluentBitRetries: the file's filesystem is full, so the flush answers
// RETRY and the engine sends the chunks again; once space comes back every
// record is in the file exactly once.
func TestFluentBitRetries(t *testing.T) {
	fluentBit(t)
	dir := fbtest.MountTmpfs(t, "2m")
	out := filepath.Join(dir, "full.log")
	filler := fbtest.FillDisk(t, dir, 16<<10)
	port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	r := startFluentBit(t, fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 1
    scheduler.base 1
    scheduler.cap 2
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port %s
[OUTPUT]
    Name flatstore
    Match *
    Workers 2
    Retry_Limit no_limits
    path %s
    control_listen off
`, port, out))
	waitAccepting(t, "127.0.0.1:"+port)
	const n = 5000
	forwardSend(t, "127.0.0.1:"+port, "full.test", 0, n)
	waitFor(t, func() bool { return strings.Contains(r.logText(), "(ENOSPC)") })
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitLinesIn(t, r, out, n)
	time.Sleep(3 * time.Second) // a retry that wrote twice would show by now
	r.stop(t)
	seqLines(t, out, "E_FWD", 0, n)
}

// TestFluentBitDaemon: with Daemon On the engine forks after loading the
// plugin; the plugin says so and refuses to start, and nothing hangs.
func TestFluentBitDaemon(t *testing.T) {
	fb := fluentBit(t)
	so := fbtest.BuildPlugin(t)
	dir := t.TempDir()
	logf := filepath.Join(dir, "fb.log")
	text, _ := runFluentBit(t, "-e", so, "-d", "-l", logf, "-i", "dummy", "-o", "flatstore",
		"-p", "path="+filepath.Join(dir, "d.log"), "-p", "control_listen=off")
	waitFor(t, func() bool {
		b, _ := os.ReadFile(logf)
		return strings.Contains(string(b), "[engine] output initialization failed")
	})
	b, _ := os.ReadFile(logf)
	if !strings.Contains(string(b), "the Go runtime does not survive fork()") {
		t.Errorf("the log does not say why:\n%s\n%s", b, text)
	}
	// The daemon must end by itself.
	waitFor(t, func() bool {
		out, _ := exec.Command("pgrep", "-f", fb+" -e "+so+" -d -l "+logf).Output()
		return len(strings.TrimSpace(string(out))) == 0
	})
}

// waitAccepting waits until addr accepts TCP connections (the engine's
// input is up).
func waitAccepting(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
