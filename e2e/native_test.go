package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Native to Fluent Bit, through the real .so in the host (which reads the
// config map and logs as Fluent Bit v5.1.1 does): the engine checks the
// keys, the plugin's lines go through the engine's logger under the
// output's alias, and the metrics exist before trouble. The same is
// checked against a real Fluent Bit in fluentbit_test.go.

// engineLine is one engine log line: time with milliseconds, level, text.
var engineLine = regexp.MustCompile(`^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}\] \[(error| warn| info|debug|trace| help)\] (.*)$`)

// TestNativeConfigMap: misspelt keys fail start-up and -dry-run with the
// engine's own message and its hint, before any Init; a good config passes
// -dry-run; -help-plugin lists every key of the core's table with its
// default and its help.
func TestNativeConfigMap(t *testing.T) {
	out := filepath.Join(t.TempDir(), "e.log")
	in := fbtest.WriteFile(t, "one.chunks", records.Frames(isoRec("E", "a", 1)))
	for _, typo := range []string{"delimter", "rotate_sise", "time_fromat"} {
		for _, mode := range []string{"-dry-run", "run"} {
			args := []string{"-in-chunks", in, "-p", "path=" + out, "-p", typo + "=x", "-p", "control_listen=off"}
			if mode == "-dry-run" {
				args = append(args, "-dry-run")
			}
			_, stderr, code := fbtest.RunHost(t, args...)
			if code != 1 {
				t.Errorf("%s %s: exit code %d, want 1; stderr:\n%s", typo, mode, code, stderr)
			}
			for _, want := range []string{
				"[config] flatstore: unknown configuration property '" + typo + "'. The following properties are allowed: path, event_key,",
				"try the command: ", " -o flatstore -h",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("%s %s: stderr lacks %q:\n%s", typo, mode, want, stderr)
				}
			}
			if strings.Contains(stderr, "writing events to") {
				t.Errorf("%s %s: the output started despite the typo", typo, mode)
			}
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused configuration wrote %s", out)
	}
	_, stderr, code := fbtest.RunHost(t, "-dry-run", "-p", "path="+out, "-p", "delimiter=;", "-p", "control_listen=off")
	if code != 0 || !strings.Contains(stderr, "configuration test is successful") {
		t.Errorf("-dry-run of a good config: exit %d:\n%s", code, stderr)
	}

	help, stderr, code := runHelp(t)
	if code != 0 {
		t.Fatalf("-help-plugin: exit %d:\n%s", code, stderr)
	}
	checkHelp(t, help)
}

// checkHelp checks that the text of -o flatstore -h lists every key of the
// core's table with its default and its help.
func checkHelp(t *testing.T, help string) {
	t.Helper()
	help = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(help, "\n")
	for _, k := range flatstore.Keys() {
		i := strings.Index(help, "\n"+k.Name+" ")
		if i < 0 {
			t.Errorf("-help-plugin does not list %s", k.Name)
			continue
		}
		entry := help[i:]
		if j := strings.Index(entry[1:], "\n\n"); j >= 0 {
			entry = entry[:j+1]
		}
		def := k.Default
		if def == "" {
			def = "default" // the engine's words for an entry without one
		}
		if !strings.Contains(entry, "> default: "+def+",") {
			t.Errorf("-help-plugin shows %s without its default %q:\n%s", k.Name, k.Default, entry)
		}
		words := strings.Fields(k.Help)
		if !strings.Contains(strings.Join(strings.Fields(entry), " "), strings.Join(words[:min(4, len(words))], " ")) {
			t.Errorf("-help-plugin shows %s without its help %q:\n%s", k.Name, k.Help, entry)
		}
	}
}

// runHelp runs the host's -help-plugin and returns its stdout.
func runHelp(t *testing.T) (string, string, int) {
	t.Helper()
	so, host := fbtest.Build(t)
	out, err := runCmd(host, "-so", so, "-help-plugin")
	code := 0
	if err != nil {
		code = 1
	}
	return out, "", code
}

// TestNativeLogging: the plugin's lines go through the engine's logger:
// they carry milliseconds and the output's alias, follow the output's
// log_level, and go to the log file when there is one.
func TestNativeLogging(t *testing.T) {
	dir := t.TempDir()
	in := fbtest.WriteFile(t, "log.chunks", records.Frames(isoRec("E", "a", 1)))
	logFile := filepath.Join(dir, "fluent-bit.log")
	_, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-log-file", logFile,
		"-p", "path="+filepath.Join(dir, "a.log"), "-p", "alias=sip_events", "-p", "control_listen=off")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	text := fbtest.ReadText(t, logFile)
	var ours int
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if !strings.Contains(l, "[output:flatstore:") {
			continue
		}
		ours++
		if !engineLine.MatchString(l) || !strings.Contains(l, "] [output:flatstore:sip_events] ") {
			t.Errorf("log line %q: want the engine's format with milliseconds and the alias", l)
		}
	}
	if ours < 2 || !strings.Contains(text, `writing events to "`+filepath.Join(dir, "a.log")+`"`) {
		t.Errorf("the log file holds %d of the plugin's lines:\n%s", ours, text)
	}
	if strings.Contains(stderr, "[output:flatstore:") {
		t.Errorf("the plugin's lines went to stderr as well:\n%s", stderr)
	}

	// The output's log_level error silences its info lines, not its errors.
	bad := fbtest.WriteFile(t, "bad.chunks", records.Frames([]byte{0xc1}))
	_, stderr, _ = fbtest.RunHost(t, "-in-chunks", bad, "-p", "path="+filepath.Join(dir, "b.log"),
		"-p", "log_level=error", "-p", "control_listen=off")
	if strings.Contains(stderr, "[ info] [output:flatstore") || !strings.Contains(stderr, "[error] [output:flatstore:flatstore.0] chunk of 1 bytes") {
		t.Errorf("log_level error: want only the plugin's errors:\n%s", stderr)
	}
	// -quiet (fluent-bit -q) silences everything.
	_, stderr, _ = fbtest.RunHost(t, "-in-chunks", bad, "-quiet", "-p", "path="+filepath.Join(dir, "c.log"), "-p", "control_listen=off")
	if strings.Contains(stderr, "[output:flatstore") {
		t.Errorf("-quiet: the plugin still logs:\n%s", stderr)
	}
}

// TestNativeMetrics: the metrics carry the alias as the instance label, and
// every error series with known labels is there at 0 before any error.
func TestNativeMetrics(t *testing.T) {
	dir := t.TempDir()
	addr := fbtest.FreeTCPAddr(t)
	in := fbtest.WriteFile(t, "m.chunks", records.Frames(isoRec("E", "a", 1)))
	h := fbtest.StartHost(t, "-in-chunks", in, "-hold-ms", holdMs,
		"-p", "path="+filepath.Join(dir, "m.log"), "-p", "alias=sip_events", "-p", "control_listen="+addr)
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(dir, "m.log")); return err == nil })
	c := ctlClient(t, addr, "")
	var body string
	waitFor(t, func() bool {
		code, b, err := c.Do(http.MethodGet, "/metrics", nil)
		body = string(b)
		return err == nil && code == 200 && strings.Contains(body, `flatstore_records_written_total{instance="sip_events"} 1`)
	})
	for _, want := range []string{
		`flatstore_write_errors_total{errno="ENOSPC",instance="sip_events"} 0`,
		`flatstore_write_errors_total{errno="EIO",instance="sip_events"} 0`,
		`flatstore_records_dropped_total{instance="sip_events",reason="bad_path"} 0`,
		`flatstore_records_dropped_total{instance="sip_events",reason="too_large"} 0`,
		`flatstore_flush_retries_total{cause="write_error",instance="sip_events"} 0`,
		`flatstore_flush_retries_total{cause="max_open_sockets",instance="sip_events"} 0`,
		`flatstore_rotations_total{reason="reopen_check"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	h.Kill()
}

// TestNativeDaemon: with Daemon On the engine forks after loading the
// plugin; the plugin says so once, refuses to start (the Go runtime does
// not survive fork()), and nothing hangs.
func TestNativeDaemon(t *testing.T) {
	dir := t.TempDir()
	in := fbtest.WriteFile(t, "d.chunks", records.Frames(isoRec("E", "a", 1)))
	start := time.Now()
	_, stderr, code := fbtest.RunHostWith(t, fbtest.HostConfig{Timeout: 30 * time.Second}, "-daemon", "-in-chunks", in,
		"-p", "path="+filepath.Join(dir, "d.log"), "-p", "control_listen=off")
	if code != 1 {
		t.Errorf("exit code %d, want 1 (the output refused to start)", code)
	}
	if n := strings.Count(stderr, "the Go runtime does not survive fork()"); n != 1 {
		t.Errorf("said %d times that the process forked, want once:\n%s", n, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.log")); !os.IsNotExist(err) {
		t.Errorf("a forked process wrote the file (%v)", err)
	}
	t.Logf("the daemon ended %v after start", time.Since(start).Round(time.Millisecond))
}

// runCmd runs a command and returns its stdout.
func runCmd(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", name, err)
	}
	return string(out), nil
}

// TestStartupLineTellsTheTruth: the start-up line comes once, after Init
// has succeeded, names the file a suffix makes, and shows every key in
// effect (the token redacted); an output that does not start logs none.
func TestStartupLineTellsTheTruth(t *testing.T) {
	dir := t.TempDir()
	in := fbtest.WriteFile(t, "one.chunks", records.Frames(records.Records(records.Record{Body: records.KV{"event", "E", "a", 1}})))
	_, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+filepath.Join(dir, "events.log"),
		"-p", "suffix=.%Y%m%d", "-p", "rotate_size=1m", "-p", "compress=gzip", "-p", "rotate_max_files=3",
		"-p", "params=a", "-p", "time_format=unix", "-p", "control_listen=off", "-p", "control_token=0123456789abcdef0123")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "writing events to"); n != 1 {
		t.Fatalf("%d start-up lines, want 1:\n%s", n, stderr)
	}
	line := stderr[strings.Index(stderr, "writing events to"):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, k := range flatstore.Keys() {
		if k.Name != "path" && !strings.Contains(line, " "+k.Name+`="`) && !strings.Contains(line, ": "+k.Name+`="`) {
			t.Errorf("the start-up line lacks %s: %s", k.Name, line)
		}
	}
	for _, want := range []string{`+ suffix ".%Y%m%d" (now "` + filepath.Join(dir, "events.log."), `rotate_size="1m"`, `compress="gzip"`,
		`params="a"`, `time_format="unix"`, `control_token="(set)"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the start-up line lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "0123456789abcdef0123") {
		t.Errorf("the start-up line shows the token: %s", line)
	}
	// A refused output: its reason, and no start-up line.
	_, stderr, _ = fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+filepath.Join(dir, "x.log"), "-p", "file_permissions=64x",
		"-p", "control_listen=unix:"+filepath.Join(dir, "nowhere", "c.sock"))
	if strings.Contains(stderr, "writing events to") || !strings.Contains(stderr, "output not started") ||
		!strings.Contains(stderr, `file_permissions "64x"`) || !strings.Contains(stderr, "the socket's directory") {
		t.Errorf("a refused output, every problem at once:\n%s", stderr)
	}
}
