package fbtest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbconf"
	"github.com/flatstore/flatstore/internal/records"
)

// These tests prove the host (host/flbhost.c) against a fake plugin written
// in C, so the harness is trusted before the real plugin exists.

func TestMain(m *testing.M) { Main(m) }

// testChunks builds n records and groups them per records into chunks, as the
// host's -chunk does. Every record differs, so every chunk differs.
func testChunks(n, per int) (stream []byte, chunks [][]byte) {
	var cur []byte
	k := 0
	for i := 0; i < n; i++ {
		r := records.AppendRecord(nil, records.Record{
			Time: time.Unix(int64(1700000000+i), int64(i)),
			Body: records.KV{"event", "E_TEST", "i", i, "s", strings.Repeat("x", i%7)},
		})
		stream = append(stream, r...)
		cur = append(cur, r...)
		k++
		if k == per {
			chunks = append(chunks, cur)
			cur, k = nil, 0
		}
	}
	if k > 0 {
		chunks = append(chunks, cur)
	}
	return stream, chunks
}

func fnvSum(chunks [][]byte) uint64 {
	var sum uint64
	for _, c := range chunks {
		h := fnv.New64a()
		h.Write(c)
		sum += h.Sum64()
	}
	return sum
}

type fakeRun struct {
	sum    Summary
	stderr string
	code   int
	log    fakeLog
}

// runFake runs the host on the fake plugin built with defines.
func runFake(t *testing.T, defines []string, cfg HostConfig, args ...string) fakeRun {
	t.Helper()
	so := fakeSO(t, defines...)
	logPath := filepath.Join(t.TempDir(), "fake.log")
	// FAKE_DYN_DEFAULT set: the engine warns at every instance about an
	// unset variable in the default of a dynamic entry (TestHostConfigMapDefaults)
	cfg.Env = append(append([]string{"FAKE_DYN_DEFAULT=set"}, cfg.Env...), "FAKE_LOG="+logPath)
	s, stderr, code := RunHostWith(t, cfg, append([]string{"-so", so}, args...)...)
	return fakeRun{sum: s, stderr: stderr, code: code, log: readFakeLog(t, logPath)}
}

func wantInstance(t *testing.T, got InstanceSummary, want InstanceSummary) {
	t.Helper()
	got.Name = want.Name // compared separately when it matters
	if got != want {
		t.Errorf("instance summary\n got %+v\nwant %+v", got, want)
	}
}

func TestHostProtocol(t *testing.T) {
	stream, chunks := testChunks(10, 3)
	in := WriteFile(t, "in.msgpack", stream)
	query := "path,PATH,pAtH,pat,path2,empty,workers,id"
	r := runFake(t, nil, HostConfig{},
		"-in", in, "-chunk", "3", "-tag", "my.tag", "-retry-wait-ms", "1",
		"-p", "id=a", "-p", "Path=/x/a", "-p", "empty=", "-p", "retry_first=1", "-p", "workers=0",
		"-p", "scribble=1", "-p", "query="+query,
		"-next", "-p", "id=b", "-p", "retry_first=1", "-p", "scribble=1")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	log := r.log
	// the order of the lifecycle
	order := []string{"preregister hot=0", "register zeroed=1", "init name=flatstore ctx_null=1 id=a",
		"init name=flatstore ctx_null=1 id=b", "flush-start id=a", "exitctx id=a", "exitctx id=b",
		"unregister name=flatstore"}
	last := -1
	for _, p := range order {
		i := log.index(p)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order (at %d after %d); log:\n%s", p, i, last,
				strings.Join(log.lines, "\n"))
		}
		last = i
	}
	if n := len(log.with("unregister")); n != 1 {
		t.Errorf("%d unregister calls, want 1", n)
	}
	if n := len(log.with("register")); n != 1 {
		t.Errorf("%d register calls, want 1", n)
	}
	if l := log.with("flush-noctx"); len(l) != 0 {
		t.Errorf("FLBPluginFlush called although FlushCtx is exported: %v", l)
	}
	if l := log.with("exit "); len(l) != 0 {
		t.Errorf("FLBPluginExit called although ExitCtx is exported: %v", l)
	}
	if l := log.index("flush-end"); l < 0 || !strings.Contains(log.lines[l], " tag=my.tag") {
		t.Errorf("tag not passed: %v", log.with("flush-end"))
	}
	// properties: case-insensitive, exact length, NULL for absent and empty,
	// workers not passed
	wantProps := map[string]string{"path": "/x/a", "PATH": "/x/a", "pAtH": "/x/a", "pat": "(null)",
		"path2": "(null)", "empty": "(null)", "workers": "(null)", "id": "a"}
	props := log.with("prop id=a ")
	if len(props) != len(wantProps) {
		t.Fatalf("prop lines %v", props)
	}
	for _, p := range props {
		kv := strings.TrimPrefix(p, "prop id=a ")
		k, v, _ := strings.Cut(kv, "=")
		if wantProps[k] != v {
			t.Errorf("property %s = %q, want %q", k, v, wantProps[k])
		}
	}
	// every chunk reached each instance's own context exactly once, intact,
	// even though the plugin scribbled over the data of the first try
	want := fmt.Sprintf("calls=4 records=10 bytes=%d sum=%d maxinflight=1", len(stream), fnvSum(chunks))
	for _, id := range []string{"a", "b"} {
		l := log.with("exitctx id=" + id)
		if len(l) != 1 || !strings.HasSuffix(l[0], want) {
			t.Errorf("instance %s: %v, want %q", id, l, want)
		}
		if n := len(log.with("flush-start id=" + id)); n != 8 {
			t.Errorf("instance %s: %d flushes, want 8 (4 chunks, each retried once)", id, n)
		}
	}
	if len(r.sum.Instances) != 2 || r.sum.Instances[0].Name != "flatstore.0" || r.sum.Instances[1].Name != "flatstore.1" {
		t.Fatalf("summary %+v", r.sum)
	}
	for _, is := range r.sum.Instances {
		wantInstance(t, is, InstanceSummary{Chunks: 4, Records: 10, OKChunks: 4, OKRecords: 10, Retries: 4})
	}
	if r.sum.MaxRSSKB <= 0 || r.sum.WallS <= 0 {
		t.Errorf("rusage not reported: %+v", r.sum)
	}
}

func TestHostFlushWithoutCtx(t *testing.T) {
	stream, chunks := testChunks(5, 2)
	r := runFake(t, []string{"NO_CTX"}, HostConfig{Stdin: stream}, "-in", "-", "-chunk", "2", "-p", "id=a")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(r.log.with("flush-noctx-start")); n != 3 {
		t.Errorf("%d FLBPluginFlush calls, want 3", n)
	}
	want := fmt.Sprintf("exit id=a calls=3 records=5 bytes=%d sum=%d", len(stream), fnvSum(chunks))
	if l := r.log.with("exit "); len(l) != 1 || !strings.HasPrefix(l[0], want) {
		t.Errorf("exit lines %v, want %q", l, want)
	}
}

func TestHostRetryExhaustedAndErrors(t *testing.T) {
	stream, _ := testChunks(4, 2)
	in := WriteFile(t, "in.msgpack", stream)
	r := runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "2", "-retry-max", "3", "-retry-wait-ms", "0",
		"-p", "result=2")
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	wantInstance(t, r.sum.Instances[0], InstanceSummary{Chunks: 2, Records: 4, Retries: 8,
		DroppedChunks: 2, DroppedRecords: 4})
	if n := len(r.log.with("flush-start")); n != 8 {
		t.Errorf("%d flushes, want 2 chunks × (1 + 3 resends)", n)
	}
	for _, res := range []string{"0", "7", "3"} {
		r = runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "2", "-p", "result="+res)
		if r.code != 2 {
			t.Errorf("result %s: exit %d, want 2", res, r.code)
		}
		wantInstance(t, r.sum.Instances[0], InstanceSummary{Chunks: 2, Records: 4, Errors: 2})
	}
}

func TestHostInitFailure(t *testing.T) {
	stream, _ := testChunks(4, 2)
	in := WriteFile(t, "in.msgpack", stream)
	r := runFake(t, nil, HostConfig{}, "-in", in, "-p", "id=a", "-next", "-p", "id=b", "-p", "fail=1",
		"-next", "-p", "id=c")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "flatstore.1") {
		t.Errorf("stderr does not name the instance: %s", r.stderr)
	}
	if r.log.index("init-fail id=b") < 0 || r.log.index("init name=flatstore ctx_null=1 id=c") >= 0 {
		t.Errorf("Init sequence wrong:\n%s", strings.Join(r.log.lines, "\n"))
	}
	if len(r.log.with("flush")) != 0 || len(r.log.with("exitctx")) != 0 {
		t.Errorf("calls after a failed Init:\n%s", strings.Join(r.log.lines, "\n"))
	}
	if r.log.index("unregister") != len(r.log.lines)-1 {
		t.Errorf("Unregister is not the last call:\n%s", strings.Join(r.log.lines, "\n"))
	}
}

// A classic configuration read by fbconf and run through the host: the outputs
// become instances, the engine's own keys never reach the plugin, ${VAR} and
// @SET are expanded by the host as the engine does.
func TestHostConf(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	main := `# a comment
@SET base=/var/log/fs
[SERVICE]
    Flush 1
    Name  flatstore

[INPUT]
    Name  dummy
    Path  /not/this

@INCLUDE sub/outputs.conf

[OUTPUT]
    Name  stdout
    Match *
`
	outputs := `[OUTPUT]
    Name        flatstore
    Match       *
    Match_Regex .*
    Alias       one
    Log_Level   debug
    Retry_Limit 5
    Host        h
    Port        1
    tls         off
    tls.verify  off
    net.keepalive on
    storage.total_limit_size 1M
    id          a
    sleep_us    20000
    Path        ${base}/${FBTEST_ENV_VAR}.log
    Missing     x${FBTEST_NOT_SET}y
    Delimiter   a b  c
    Workers     3
    query       path,missing,delimiter,match,match_regex,alias,log_level,retry_limit,host,port,tls,tls.verify,net.keepalive,storage.total_limit_size,workers,name

[OUTPUT]
    Match *
    Name  flatstore
    id    b
    sleep_us 20000
    query workers,id
`
	if err := os.WriteFile(filepath.Join(sub, "outputs.conf"), []byte(outputs), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "fluent-bit.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	stream, _ := testChunks(16, 1)
	in := WriteFile(t, "in.msgpack", stream)
	// read from another directory: @INCLUDE is relative to the config's dir
	t.Chdir(t.TempDir())
	env := func(k string) (string, bool) {
		if k == "FBTEST_ENV_VAR" {
			return "events", true
		}
		return "", false
	}
	c, err := fbconf.LoadClassic(conf, env)
	if err != nil {
		t.Fatal(err)
	}
	args := append(c.HostArgs("flatstore"), "-in", in, "-chunk", "1",
		"-workers", "1", // instance b: the global default
		"-next", "-p", "id=c", "-p", "query=id")
	r := runFake(t, []string{"NO_CONFIG_MAP"}, HostConfig{Env: []string{"FBTEST_ENV_VAR=events"}}, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if len(r.sum.Instances) != 3 {
		t.Fatalf("%d instances, want 2 from the config and 1 from -p: %+v", len(r.sum.Instances), r.sum)
	}
	want := map[string]string{"path": "/var/log/fs/events.log", "missing": "xy", "delimiter": "a b  c"}
	got := map[string]string{}
	for _, l := range r.log.with("prop id=a ") {
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "prop id=a "), "=")
		got[k] = v
	}
	for k, v := range got {
		w, ok := want[k]
		if !ok {
			w = "(null)" // reserved keys never reach the plugin
		}
		if v != w {
			t.Errorf("instance a: %s = %q, want %q", k, v, w)
		}
	}
	if len(got) != 16 {
		t.Errorf("instance a: %d properties queried, want 16: %v", len(got), got)
	}
	if r.log.index("init name=flatstore ctx_null=1 id=c") < 0 {
		t.Errorf("-p instance after the config's missing")
	}
	// Workers 3 gives instance a three flush threads; b has the global 1
	for id, ok := range map[string]func(int) bool{
		"a": func(m int) bool { return m >= 2 && m <= 3 },
		"b": func(m int) bool { return m == 1 },
	} {
		l := r.log.with("exitctx id=" + id)
		if len(l) != 1 {
			t.Fatalf("instance %s: %v", id, l)
		}
		if m, _ := strconv.Atoi(fields(l[0])["maxinflight"]); !ok(m) {
			t.Errorf("instance %s: maxinflight %d", id, m)
		}
	}
}

func TestHostWorkersConcurrency(t *testing.T) {
	stream, chunks := testChunks(200, 5)
	in := WriteFile(t, "in.msgpack", stream)
	for _, workers := range []int{0, 4} {
		r := runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "5", "-workers", strconv.Itoa(workers),
			"-retry-wait-ms", "1",
			"-p", "id=a", "-p", "sleep_us=3000", "-p", "retry_first=1", "-p", "scribble=1",
			"-next", "-p", "id=b", "-p", "sleep_us=1000")
		if r.code != 0 {
			t.Fatalf("workers %d: exit %d: %s", workers, r.code, r.stderr)
		}
		for _, id := range []string{"a", "b"} {
			l := r.log.with("exitctx id=" + id)
			if len(l) != 1 {
				t.Fatalf("workers %d: %v", workers, l)
			}
			f := fields(l[0])
			if f["calls"] != "40" || f["records"] != "200" || f["sum"] != strconv.FormatUint(fnvSum(chunks), 10) {
				t.Errorf("workers %d, instance %s: %s", workers, id, l[0])
			}
			m, _ := strconv.Atoi(f["maxinflight"])
			if workers == 0 && m != 1 || workers == 4 && (m < 2 || m > 4) {
				t.Errorf("workers %d, instance %s: maxinflight %d", workers, id, m)
			}
		}
		wantInstance(t, r.sum.Instances[0], InstanceSummary{Chunks: 40, Records: 200, OKChunks: 40,
			OKRecords: 200, Retries: 40})
		wantInstance(t, r.sum.Instances[1], InstanceSummary{Chunks: 40, Records: 200, OKChunks: 40,
			OKRecords: 200})
	}
}

func TestHostInChunks(t *testing.T) {
	good := records.Records(records.Record{Body: records.KV{"a", 1}}, records.Record{Body: records.KV{"b", 2}})
	one := records.Records(records.Record{Body: records.KV{"c", 3}})
	truncated := append(append([]byte{}, one...), one[:len(one)-2]...)
	garbage := []byte{0xc1, 0xff, 0x00}
	hostile := []byte{0xdd, 0xff, 0xff, 0xff, 0xff} // array claiming 4 G items
	frames := records.Frames(good, nil, garbage, truncated, hostile)
	in := WriteFile(t, "in.chunks", frames)
	r := runFake(t, nil, HostConfig{}, "-in-chunks", in, "-p", "id=a")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// the empty frame is never sent; every other frame is sent exactly as is
	sent := [][]byte{good, garbage, truncated, hostile}
	want := fmt.Sprintf("calls=4 records=3 bytes=%d sum=%d", len(good)+len(garbage)+len(truncated)+len(hostile), fnvSum(sent))
	if l := r.log.with("exitctx id=a"); len(l) != 1 || !strings.Contains(l[0], want) {
		t.Errorf("%v, want %q", l, want)
	}
	wantInstance(t, r.sum.Instances[0], InstanceSummary{Chunks: 4, Records: 3, OKChunks: 4, OKRecords: 3})

	// a truncated frame header is an input error
	bad := WriteFile(t, "bad.chunks", append(records.Frames(good), 0, 0, 1))
	r = runFake(t, nil, HostConfig{}, "-in-chunks", bad)
	if r.code != 64 {
		t.Errorf("truncated frame: exit %d, want 64", r.code)
	}
}

func TestHostInSplitsAndKeepsGarbageTail(t *testing.T) {
	stream, chunks := testChunks(7, 3)
	tail := []byte{0x92, 0x92}
	in := WriteFile(t, "in.msgpack", append(append([]byte{}, stream...), tail...))
	r := runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "3", "-p", "id=a")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	chunks[len(chunks)-1] = append(chunks[len(chunks)-1], tail...)
	want := fmt.Sprintf("calls=3 records=7 bytes=%d sum=%d", len(stream)+2, fnvSum(chunks))
	if l := r.log.with("exitctx id=a"); len(l) != 1 || !strings.Contains(l[0], want) {
		t.Errorf("%v, want %q", l, want)
	}
}

func TestHostReload(t *testing.T) {
	stream, _ := testChunks(6, 3)
	in := WriteFile(t, "in.msgpack", stream)
	r := runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "3", "-reload", "2", "-p", "id=a", "-next", "-p", "id=b")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var seq []string
	for _, l := range r.log.lines {
		w := strings.Fields(l)[0]
		if w == "flush-start" || w == "flush-end" || w == "prop" || w == "oins" {
			continue
		}
		if w == "init" || w == "exitctx" {
			w += " " + fields(l)["id"]
		}
		if w == "preregister" {
			w += " " + fields(l)["hot"]
		}
		seq = append(seq, w)
	}
	gen := func(hot string) []string {
		return []string{"preregister " + hot, "register", "init a", "init b", "exitctx a", "exitctx b", "unregister"}
	}
	want := append(append(gen("0"), gen("1")...), gen("1")...)
	if strings.Join(seq, "|") != strings.Join(want, "|") {
		t.Errorf("lifecycle\n got %v\nwant %v", seq, want)
	}
	for _, is := range r.sum.Instances {
		wantInstance(t, is, InstanceSummary{Chunks: 6, Records: 18, OKChunks: 6, OKRecords: 18})
	}
}

func TestHostExitAfter(t *testing.T) {
	stream, _ := testChunks(100, 1)
	in := WriteFile(t, "in.msgpack", stream)
	for _, workers := range []string{"0", "3"} {
		r := runFake(t, nil, HostConfig{}, "-in", in, "-chunk", "1", "-workers", workers,
			"-exit-after-ms", "150", "-p", "id=a", "-p", "sleep_us=20000", "-next", "-p", "id=b")
		if r.code != 0 {
			t.Fatalf("workers %s: exit %d: %s", workers, r.code, r.stderr)
		}
		for _, is := range r.sum.Instances {
			if is.OKChunks+is.UnsentChunks != 100 || is.Chunks != is.OKChunks {
				t.Errorf("workers %s: %+v", workers, is)
			}
		}
		// the slow instance a cannot finish 100 × 20 ms in 150 ms
		if r.sum.Instances[0].UnsentChunks == 0 {
			t.Errorf("workers %s: instance a sent everything: %+v", workers, r.sum.Instances[0])
		}
		// ExitCtx runs once per instance, after every flush has finished
		first := r.log.index("exitctx")
		if first < 0 || len(r.log.with("exitctx")) != 2 {
			t.Fatalf("workers %s: exitctx lines %v", workers, r.log.with("exitctx"))
		}
		for _, l := range r.log.lines[first:] {
			if strings.HasPrefix(l, "flush") {
				t.Errorf("workers %s: %q after ExitCtx began", workers, l)
			}
		}
		starts, ends := len(r.log.with("flush-start id=a")), len(r.log.with("flush-end id=a"))
		if starts != ends {
			t.Errorf("workers %s: %d flushes started, %d finished", workers, starts, ends)
		}
	}
}

func TestHostExitCodes(t *testing.T) {
	so := fakeSO(t)
	cases := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown option", []string{"-so", so, "-bogus"}, 64, "unknown option -bogus"},
		{"missing value", []string{"-so", so, "-chunk"}, 64, "needs a value"},
		{"bad number", []string{"-so", so, "-chunk", "0"}, 64, "-chunk 0"},
		{"bad property", []string{"-so", so, "-p", "novalue"}, 64, "key=value"},
		{"missing input", []string{"-so", so, "-in", "/nonexistent/in"}, 64, "/nonexistent/in"},
		{"the classic format is fbconf's", []string{"-so", so, "-conf", "x.conf"}, 64, "unknown option -conf"},
		{"bad log level", []string{"-so", so, "-log-level", "loud"}, 64, "-log-level loud"},
		{"bad -set", []string{"-so", so, "-set", "novalue"}, 64, "key=value"},
		{"two inputs", []string{"-so", so, "-in", "a", "-in-chunks", "b"}, 64, "exclude"},
		{"missing so", []string{"-so", "/nonexistent/x.so"}, 1, "dlopen"},
		{"bad register", []string{"-so", fakeSO(t, "BAD_REGISTER")}, 1, "type=1"},
		{"no input is fine", []string{"-so", so}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := RunHostWith(t, HostConfig{Env: []string{"FAKE_LOG=/dev/null"}}, c.args...)
			if code != c.code || !strings.Contains(stderr, c.err) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.err)
			}
		})
	}
}

func TestHostWithoutSO(t *testing.T) {
	out, err := exec.Command(BuildHost(t), "-p", "a=b").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 64 || !strings.Contains(string(out), "usage: flbhost -so FILE") {
		t.Errorf("without -so: %v\n%s", err, out)
	}
}

func TestHostQuiet(t *testing.T) {
	s, _, code := RunHostWith(t, HostConfig{Env: []string{"FAKE_LOG=/dev/null"}}, "-so", fakeSO(t), "-q")
	if code != 0 || s.Found {
		t.Errorf("-q: exit %d, summary found %v", code, s.Found)
	}
	s, _, code = RunHostWith(t, HostConfig{Env: []string{"FAKE_LOG=/dev/null"}}, "-so", fakeSO(t))
	if code != 0 || !s.Found || len(s.Instances) != 1 || s.Instances[0].Name != "flatstore.0" {
		t.Errorf("summary: exit %d, %+v", code, s)
	}
}

func TestLineHelpers(t *testing.T) {
	if err := CheckLinesTerminated([]byte("a\nb")); err == nil {
		t.Error("unterminated line accepted")
	}
	if err := CheckLinesTerminated([]byte("a\n\n")); err != nil {
		t.Error(err)
	}
	lines, rest := SplitLines([]byte("a\r\n\nb\nc"))
	if strings.Join(lines, "|") != "a\r||b" || rest != "c" {
		t.Errorf("SplitLines %q %q", lines, rest)
	}
	p := WriteFile(t, "f", []byte("x,y\n\n"))
	if got := ReadLines(t, p); len(got) != 2 || got[0] != "x,y" || got[1] != "" {
		t.Errorf("ReadLines %q", got)
	}
	if addr := FreeTCPAddr(t); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeTCPAddr %q", addr)
	}
}

func TestHostHoldAndStartHost(t *testing.T) {
	stream, _ := testChunks(3, 3)
	in := WriteFile(t, "in.msgpack", stream)
	logPath := filepath.Join(t.TempDir(), "fake.log")
	// A hold far beyond the test's wait: only Release can end it in time.
	h := StartHostWith(t, HostConfig{Env: []string{"FAKE_LOG=" + logPath}},
		"-so", fakeSO(t), "-in", in, "-hold-ms", "600000", "-p", "id=a")
	// while the host holds, the input is flushed and ExitCtx has not run
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := readFakeLog(t, logPath)
		if l.index("flush-end id=a") >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no flush seen; stderr: %s", h.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a hold that ended on its own would show by now
	if l := readFakeLog(t, logPath); l.index("exitctx") >= 0 {
		t.Fatalf("ExitCtx ran before the hold was released:\n%s", strings.Join(l.lines, "\n"))
	}
	h.Release()
	s, stderr, code := h.Wait()
	if code != 0 || !s.Found || s.Instances[0].OKRecords != 3 {
		t.Fatalf("exit %d, %+v, %s", code, s, stderr)
	}
	if l := readFakeLog(t, logPath); l.index("exitctx id=a") < 0 {
		t.Errorf("no ExitCtx after the hold:\n%s", strings.Join(l.lines, "\n"))
	}

	// A release that comes before the hold begins ends it at once too.
	h = StartHostWith(t, HostConfig{Env: []string{"FAKE_LOG=" + logPath}},
		"-so", fakeSO(t), "-in", in, "-chunk-delay-us", "300000", "-hold-ms", "600000", "-p", "id=b")
	deadline = time.Now().Add(30 * time.Second)
	for readFakeLog(t, logPath).index("flush-end id=b") < 0 { // the first of three chunks, 0.3 s apart
		if time.Now().After(deadline) {
			t.Fatalf("no flush seen; stderr: %s", h.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.Release()
	if s, stderr, code := h.Wait(); code != 0 || s.Instances[0].OKRecords != 3 {
		t.Fatalf("exit %d, %+v, %s", code, s, stderr)
	}
}

// The host's C msgpack skipper counts records as msgp does, on valid records
// and on mutated ones (flipped bytes, cuts, hostile lengths).
func TestHostRecordCountMatchesMsgp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base, _ := testChunks(20, 20)
	base = append(base, records.AppendRecord(nil, records.Record{Body: records.KV{"f", 1.5, "f32", float32(2), "b", []byte("bin"),
		"u", uint64(1) << 63, "n", nil, "t", time.Unix(5, 6), "a", []any{records.KV{"x", []any{}}}, "s", strings.Repeat("y", 300)}})...)
	var frames [][]byte
	want := 0
	for i := 0; i < 300; i++ {
		f := append([]byte{}, base...)
		switch i % 3 {
		case 0:
			for j := 0; j < 1+rng.IntN(4); j++ {
				f[rng.IntN(len(f))] = byte(rng.IntN(256))
			}
		case 1:
			f = f[:rng.IntN(len(f))]
		case 2:
			at := rng.IntN(len(f))
			f = append(f[:at:at], append([]byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, f[at:]...)...)
		}
		if len(f) == 0 {
			continue
		}
		n, _ := records.CountRecords(f)
		want += n
		frames = append(frames, f)
	}
	in := WriteFile(t, "in.chunks", records.Frames(frames...))
	r := runFake(t, nil, HostConfig{}, "-in-chunks", in)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := r.sum.Instances[0].Records; got != int64(want) {
		t.Errorf("host counted %d records, msgp %d", got, want)
	}
}

// A port for an engine to bind is never one the kernel may hand out as a
// source port meanwhile (a self-connect or a stolen port during a reload).
func TestFreeTCPAddrOutsideEphemeralRange(t *testing.T) {
	low, high := ephemeralRange()
	for i := 0; i < 50; i++ {
		addr := FreeTCPAddr(t)
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port >= low && port <= high || port < 1024 {
			t.Fatalf("FreeTCPAddr gave %s, inside the ephemeral range %d-%d or privileged", addr, low, high)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreeTCPAddr gave %s, which cannot be bound: %v", addr, err)
		}
		l.Close()
	}
}
