package fbtest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/internal/fbconf"
)

// These tests hold the host to what Fluent Bit v5.1.1 does around a plugin:
// the instance memory, the logger, the config map, --dry-run, -h, Daemon On,
// property values. Every expected message is the engine's, word for word.

// logLine matches one engine log line without colours (stderr is no tty here).
var logLine = regexp.MustCompile(`^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}\] \[(error| warn| info|debug|trace| help)\] (.*)$`)

// engineLines returns the engine-format lines of text as "[level] message".
func engineLines(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if m := logLine.FindStringSubmatch(l); m != nil {
			out = append(out, "["+strings.TrimSpace(m[1])+"] "+m[2])
		}
	}
	return out
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestHostInstanceLayout(t *testing.T) {
	r := runFake(t, nil, HostConfig{}, "-log-level", "warn",
		"-p", "id=a", "-p", "query=alias,log_level,log_suppress_interval,match",
		"-next", "-p", "id=b", "-p", "alias=two", "-p", "log_level=debug",
		"-p", "log_suppress_interval=2m", "-p", "match=x.*")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"oins id=a name=flatstore.0 alias=(null) oid=0 level=2 event_type=1 suppress=-1",
		"oins id=b name=flatstore.1 alias=two oid=1 level=4 event_type=1 suppress=120",
		"prop id=a alias=(null)", "prop id=a log_level=(null)", "prop id=a match=(null)",
	} {
		if r.log.index(want) < 0 {
			t.Errorf("no %q in:\n%s", want, strings.Join(r.log.lines, "\n"))
		}
	}
	if n := r.sum.Instances[1].Name; n != "flatstore.1" {
		t.Errorf("summary names the instance %q", n)
	}
}

func TestHostLogPrint(t *testing.T) {
	msgs := []string{"-p", "log=error:bad;warn:careful;info:hello;debug:detail;trace:more"}
	for _, c := range []struct {
		name string
		args []string
		want []string // engine lines, in order
	}{
		{"default info", nil, []string{
			"[error] [output:flatstore:flatstore.0] bad", "[warn] [output:flatstore:flatstore.0] careful",
			"[info] [output:flatstore:flatstore.0] hello"}},
		{"service debug", []string{"-log-level", "debug"}, []string{
			"[error] [output:flatstore:flatstore.0] bad", "[warn] [output:flatstore:flatstore.0] careful",
			"[info] [output:flatstore:flatstore.0] hello", "[debug] [output:flatstore:flatstore.0] detail"}},
		{"instance level wins", []string{"-log-level", "trace", "-p", "log_level=warn"}, []string{
			"[error] [output:flatstore:flatstore.0] bad", "[warn] [output:flatstore:flatstore.0] careful"}},
		{"alias names the instance", []string{"-log-level", "error", "-p", "alias=calls"}, []string{
			"[error] [output:flatstore:calls] bad"}},
		{"quiet is -q", []string{"-quiet"}, nil},
		{"quiet, then a level", []string{"-quiet", "-log-level", "error"}, []string{
			"[error] [output:flatstore:flatstore.0] bad"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runFake(t, nil, HostConfig{}, append(append(msgs, c.args...), "-p", "id=a")...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			got := engineLines(t, r.stderr)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("logged\n%s\nwant\n%s\nstderr:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"), r.stderr)
			}
		})
	}
}

// A message is cut where the engine cuts it: the line, newline included, is
// at most 4086 bytes.
func TestHostLogPrintCutsLongMessages(t *testing.T) {
	r := runFake(t, nil, HostConfig{}, "-p", "log_long=5000")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, l := range strings.Split(r.stderr, "\n") {
		if m := logLine.FindStringSubmatch(l); m != nil && strings.HasPrefix(m[2], "xxx") {
			if len(l)+1 != 4086 || strings.Trim(m[2], "x") != "" {
				t.Errorf("line of %d bytes with newline, want 4086", len(l)+1)
			}
			return
		}
	}
	t.Errorf("no long line in stderr")
}

// With a log file, the engine's threads log there; a thread the plugin
// started has no engine context and logs to stderr, as in Fluent Bit.
func TestHostLogFile(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "fluent-bit.log")
	r := runFake(t, nil, HostConfig{}, "-log-file", logFile,
		"-p", "log=warn:to the file", "-p", "log_thread=from a thread of its own")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	file := engineLines(t, ReadText(t, logFile))
	if !hasLine(file, "[warn] [output:flatstore:flatstore.0] to the file") {
		t.Errorf("log file: %q", file)
	}
	if hasLine(engineLines(t, r.stderr), "[warn] [output:flatstore:flatstore.0] to the file") {
		t.Errorf("the engine thread's line went to stderr too")
	}
	if !hasLine(engineLines(t, r.stderr), "[info] from a thread of its own") || hasLine(file, "[info] from a thread of its own") {
		t.Errorf("the plugin thread's line: stderr %q, file %q", r.stderr, file)
	}
	// a log file that cannot be opened: the engine's message, then stderr
	r = runFake(t, nil, HostConfig{}, "-log-file", "/nonexistent/dir/fb.log", "-p", "log=warn:here")
	if !strings.Contains(r.stderr, "[log] error opening log file /nonexistent/dir/fb.log. Using stderr.\n") ||
		!hasLine(engineLines(t, r.stderr), "[warn] [output:flatstore:flatstore.0] here") {
		t.Errorf("unopenable log file: %s", r.stderr)
	}
}

const allowed = "The following properties are allowed: id, query, fail, result, retry_first, sleep_us, " +
	"scribble, log, log_thread, log_long, path, empty, missing, delimiter, label., multi, old_key, dyn, " +
	"buffer_size, interval, ratio, and pair."

func TestHostConfigMapCheck(t *testing.T) {
	host := BuildHost(t)
	for _, c := range []struct {
		name  string
		props []string
		code  int
		want  []string // engine lines that must be there
	}{
		{"misspelt key", []string{"delimter=,"}, 1, []string{
			"[error] [config] flatstore: unknown configuration property 'delimter'. " + allowed,
			"[help] try the command: " + host + " -o flatstore -h",
			"[error] [engine] output initialization failed"}},
		{"keys ignore case, not length", []string{"ID=a", "Query=id", "pat=x"}, 1, []string{
			"[error] [config] flatstore: unknown configuration property 'pat'. " + allowed}},
		{"a key set twice", []string{"id=a", "ID=b"}, 1, []string{
			"[error] [config] flatstore: configuration property 'id' is set 2 times"}},
		{"a multiple key", []string{"multi=a", "multi=b"}, 0, nil},
		{"a prefixed key", []string{"label.team=x", "LABEL.x=y"}, 0, nil},
		{"a prefix alone", []string{"label.=x"}, 1, []string{
			"[error] [config] incomplete prefixed key 'label.'",
			"[error] [config] flatstore: unknown configuration property 'label.'. " + allowed}},
		{"a deprecated key", []string{"old_key=1"}, 0, []string{
			"[warn] [config] flatstore: 'old_key' is deprecated"}},
		{"core keys", []string{"active=true", "condition=x", "match=*", "alias=a", "workers=1",
			"retry_limit=3", "tls=off", "tls.verify=off", "net.keepalive=on", "storage.total_limit_size=1M",
			"host=h", "port=1", "log_level=info", "log_suppress_interval=5"}, 0, nil},
		{"an empty alias is the plugin's", []string{"alias="}, 1, []string{
			"[error] [config] flatstore: unknown configuration property 'alias'. " + allowed}},
		{"debug keys need a debug build", []string{"_debug.http.request_headers=on"}, 1, []string{
			"[error] [config] flatstore: unknown configuration property '_debug.http.request_headers'. " + allowed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-p", "id=first", "-next"}
			for _, p := range c.props {
				args = append(args, "-p", p)
			}
			r := runFake(t, nil, HostConfig{}, args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d: %s", r.code, c.code, r.stderr)
			}
			lines := engineLines(t, r.stderr)
			for _, w := range c.want {
				if !hasLine(lines, w) {
					t.Errorf("no line %q in\n%s", w, r.stderr)
				}
			}
			inits := len(r.log.with("init name="))
			if c.code != 0 {
				// the first instance started; the bad one never reached Init
				if inits != 1 || !strings.Contains(r.stderr, "\n\n") {
					t.Errorf("%d Init calls (want 1), or the hint's blank line missing:\n%s", inits, r.stderr)
				}
			} else if inits != 2 {
				t.Errorf("%d Init calls, want 2", inits)
			}
		})
	}
	// defaults are not handed to the plugin
	r := runFake(t, nil, HostConfig{}, "-p", "id=a", "-p", "query=fail,sleep_us,delimiter,path")
	for _, k := range []string{"fail", "sleep_us", "delimiter", "path"} {
		if r.log.index("prop id=a "+k+"=(null)") < 0 {
			t.Errorf("default of %s handed to the plugin:\n%s", k, strings.Join(r.log.lines, "\n"))
		}
	}
	// without a config map nothing is checked, and a repeated key gives its first value
	r = runFake(t, []string{"NO_CONFIG_MAP"}, HostConfig{}, "-p", "id=a", "-p", "delimter=;",
		"-p", "Same=1", "-p", "same=2", "-p", "query=delimter,same")
	if r.code != 0 || r.log.index("prop id=a delimter=;") < 0 || r.log.index("prop id=a same=1") < 0 {
		t.Errorf("without a map: exit %d\n%s\n%s", r.code, r.stderr, strings.Join(r.log.lines, "\n"))
	}
}

func TestHostDryRun(t *testing.T) {
	r := runFake(t, nil, HostConfig{}, "-dry-run", "-p", "id=a", "-next", "-p", "id=b", "-p", "multi=1")
	if r.code != 0 || r.stderr != "configuration test is successful\n" || r.sum.Found {
		t.Errorf("good: exit %d, summary %v, stderr %q", r.code, r.sum.Found, r.stderr)
	}
	if r.log.index("register") < 0 || r.log.index("init") >= 0 || r.log.index("unregister") < 0 {
		t.Errorf("good: Register and Unregister only, got:\n%s", strings.Join(r.log.lines, "\n"))
	}
	// a bad key fails; the engine's main thread prints it whatever the level
	r = runFake(t, nil, HostConfig{}, "-dry-run", "-quiet", "-p", "id=a", "-next", "-p", "delimter=;")
	lines := engineLines(t, r.stderr)
	if r.code != 1 || strings.Contains(r.stderr, "successful") || r.log.index("init") >= 0 ||
		!hasLine(lines, "[error] [config] flatstore: unknown configuration property 'delimter'. "+allowed) ||
		!hasLine(lines, "[error] [reload] check properties for output plugins is failed") {
		t.Errorf("bad: exit %d:\n%s", r.code, r.stderr)
	}
}

// TestHostConfigMapDefaults: what Fluent Bit 5.1.1 does with a config
// map's defaults for each instance, at start-up and in --dry-run
// (flb_config_map_create), the one place where it judges a Go output's
// values by their type: a boolean default the engine's flb_utils_bool does
// not take ("1", which flatstore's own parser takes) fails before any
// Init, without the hint to run -h; an unset variable in a dynamic
// default is warned about once per instance. (The real engine, given the
// same fake plugin, prints the same lines.)
func TestHostConfigMapDefaults(t *testing.T) {
	for _, dry := range []bool{true, false} {
		args := []string{"-p", "id=a"}
		last := "[error] [engine] output initialization failed"
		if dry {
			args = append(args, "-dry-run")
			last = "[error] [reload] check properties for output plugins is failed"
		}
		r := runFake(t, []string{"BAD_BOOL_DEFAULT"}, HostConfig{}, args...)
		lines := engineLines(t, r.stderr)
		want := []string{
			"[error] [config map] invalid default value for boolean 'bad_bool=1'",
			"[error] [output] error loading config map for 'flatstore' plugin",
			last,
		}
		if r.code != 1 || strings.Join(lines, "\n") != strings.Join(want, "\n") || r.log.index("init") >= 0 {
			t.Errorf("bad boolean default (dry-run %v): exit %d, init %v:\n%s", dry, r.code, r.log.index("init") >= 0, r.stderr)
		}
	}
	r := runFake(t, nil, HostConfig{Env: []string{"FAKE_DYN_DEFAULT="}}, "-dry-run", "-p", "id=a", "-next", "-p", "id=b")
	warn := "[warn] [env] variable ${FAKE_DYN_DEFAULT} is used but not set"
	if lines := engineLines(t, r.stderr); r.code != 0 || len(lines) != 2 || lines[0] != warn || lines[1] != warn {
		t.Errorf("unset variable in a dynamic default: exit %d, want the warning once per instance:\n%s", r.code, r.stderr)
	}
}

func TestHostHelpPlugin(t *testing.T) {
	golden := ReadText(t, filepath.Join("testdata", "help.golden"))
	out, stderr, code := runRaw(t, fakeSO(t), "FAKE_DEFAULT_DIR=xyz", "-help-plugin")
	if code != 0 || out != golden {
		t.Errorf("exit %d, stderr %q; stdout differs from testdata/help.golden:\n%s", code, stderr, out)
	}
	out, _, code = runRaw(t, fakeSO(t, "NO_CONFIG_MAP"), "", "-help-plugin")
	if code != 0 || out != "" {
		t.Errorf("without a map: exit %d, %q (the engine prints nothing)", code, out)
	}
	out, stderr, code = runRaw(t, fakeSO(t, "BAD_MAP_TYPE"), "", "-help-plugin")
	if code != 1 || out != "" || stderr != "[help] invalid config map type 35\n" {
		t.Errorf("bad type: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// runRaw runs the host with a fake plugin and returns its raw stdout.
func runRaw(t *testing.T, so, env string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var e []string
	if env != "" {
		e = append(e, env)
	}
	h := StartHostWith(t, HostConfig{Env: append(e, "FAKE_LOG=/dev/null")}, append([]string{"-so", so}, args...)...)
	_, stderr, code = h.Wait()
	return h.stdout.String(), stderr, code
}

// Daemon On: Fluent Bit forks after the plugins registered and before their
// Init; the host's parent waits and passes the child's exit code on.
func TestHostDaemon(t *testing.T) {
	stream, _ := testChunks(6, 3)
	in := WriteFile(t, "in.msgpack", stream)
	r := runFake(t, nil, HostConfig{}, "-daemon", "-in", in, "-chunk", "3", "-p", "id=a")
	if r.code != 0 || !r.sum.Found || r.sum.Instances[0].OKRecords != 6 {
		t.Fatalf("exit %d, %+v: %s", r.code, r.sum, r.stderr)
	}
	reg, init := fields(r.log.with("register")[0])["pid"], fields(r.log.with("init name=")[0])["pid"]
	if reg == "" || init == "" || reg == init {
		t.Errorf("Register in pid %s, Init in pid %s: want Init in the forked child", reg, init)
	}
	if !hasLine(engineLines(t, r.stderr), "[info] switching to background mode (PID="+init+")") {
		t.Errorf("stderr: %s", r.stderr)
	}
	for want, args := range map[int][]string{
		1: {"-p", "fail=1"},
		2: {"-in", in, "-p", "result=0"},
	} {
		r = runFake(t, nil, HostConfig{}, append([]string{"-daemon"}, args...)...)
		if r.code != want {
			t.Errorf("%v: exit %d, want the child's %d", args, r.code, want)
		}
	}
}

// ${VAR} in a property is expanded by the host exactly as fbconf.Expand
// expands it (both follow the engine), from -set then the environment.
func TestHostExpandsLikeFbconf(t *testing.T) {
	values := []string{"${A}", "x${A}y${B}z", "${N:-d}", "${B:-e}", "${A}x${B", "a}b${A}",
		"${A}x}y${A}", "$TAG/${A}", "${S}", "${NOPE}", "plain", "${}", "${A}${A}"}
	env := map[string]string{"A": "1", "B": ""}
	set := map[string]string{"S": "from-set", "A": "overridden"}
	lookup := func(k string) (string, bool) {
		if v, ok := set[k]; ok {
			return v, true
		}
		v, ok := env[k]
		return v, ok && v != ""
	}
	args := []string{"-set", "S=from-set", "-set", "A=overridden", "-p", "id=a"}
	var keys []string
	for i, v := range values {
		k := "v" + strconv.Itoa(i)
		keys = append(keys, k)
		args = append(args, "-p", k+"="+v)
	}
	args = append(args, "-p", "query="+strings.Join(keys, ","))
	r := runFake(t, []string{"NO_CONFIG_MAP"}, HostConfig{Env: []string{"A=1", "B="}}, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for i, v := range values {
		want := fbconf.Expand(v, lookup)
		if want == "" {
			want = "(null)"
		}
		if r.log.index(fmt.Sprintf("prop id=a v%d=%s", i, want)) < 0 {
			t.Errorf("%q: fbconf gives %q; the host's plugin saw %v", v, want, r.log.with(fmt.Sprintf("prop id=a v%d=", i)))
		}
	}
	if !hasLine(engineLines(t, r.stderr), "[warn] [env] variable ${NOPE} is used but not set") {
		t.Errorf("no warning for ${NOPE}: %s", r.stderr)
	}
	// a config map entry marked for run-time expansion gets the raw value
	r = runFake(t, nil, HostConfig{}, "-p", "id=a", "-p", "dyn=${A}", "-p", "path=${A}", "-p", "query=dyn,path")
	if r.log.index("prop id=a dyn=${A}") < 0 || r.log.index("prop id=a path=overridden") >= 0 {
		t.Errorf("dynamic entry: %v", r.log.with("prop"))
	}
}

func TestHostEngineKeys(t *testing.T) {
	stream, _ := testChunks(2, 1)
	in := WriteFile(t, "in.msgpack", stream)
	for _, c := range []struct {
		limit   string
		flushes int // per chunk, answered RETRY every time
	}{{"2", 3}, {"no_retries", 1}, {"0", 2}, {"", 2}} {
		r := runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "1", "-retry-wait-ms", "0", "-retry-max", "9",
			"-p", "result=2", "-p", "retry_limit="+c.limit)
		if n := len(r.log.with("flush-start")); n != 2*c.flushes || r.code != 2 {
			t.Errorf("retry_limit %q: %d flushes, exit %d; want %d", c.limit, n, r.code, 2*c.flushes)
		}
	}
	for _, c := range []struct{ prop, want string }{
		{"log_level=loud", "[error] [config] could not configure property 'log_level' on output plugin with section name 'flatstore'"},
		{"tls=on", "[error] [config] flatstore.0 does not support TLS"},
	} {
		r := runFake(t, nil, HostConfig{}, "-p", c.prop)
		if r.code != 1 || !hasLine(engineLines(t, r.stderr), c.want) || r.log.index("init") >= 0 {
			t.Errorf("%s: exit %d: %s", c.prop, r.code, r.stderr)
		}
	}
}
