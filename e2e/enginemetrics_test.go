package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// flatstoreSeries returns the flatstore_* sample lines of a Prometheus text
// exposition, without their timestamps (the engine appends one to each).
func flatstoreSeries(body string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, "flatstore_") {
			continue
		}
		i := strings.LastIndexByte(line, '}')
		if i < 0 {
			i = strings.IndexByte(line, ' ') - 1
		}
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i+1:])
		if len(f) == 0 {
			continue
		}
		m[line[:i+1]] = f[0]
	}
	return m
}

// TestFluentBitEngineMetrics: with control_listen off, the engine's own
// endpoint (/api/v2/metrics/prometheus) lists flatstore's series for each
// output, labelled as the engine labels its fluentbit_output_* series (the
// alias, else flatstore.N): at 0 before any record, then the lines and
// bytes each file holds, as the engine's own fluentbit_output_proc_records_total
// of the same name counts the records.
func TestFluentBitEngineMetrics(t *testing.T) {
	dir := t.TempDir()
	port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	fwd := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	r := startFluentBit(t, fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 1
    HTTP_Server On
    HTTP_Listen 127.0.0.1
    HTTP_Port %s
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port %s
[OUTPUT]
    Name flatstore
    Match *
    path %s
    control_listen off
[OUTPUT]
    Name flatstore
    Alias sip_events
    Match *
    Workers 2
    path %s
    control_listen off
`, port, fwd, a, b))
	url := "http://127.0.0.1:" + port + "/api/v2/metrics/prometheus"
	scrape := func() (map[string]string, string) {
		resp, err := http.Get(url)
		if err != nil {
			return nil, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, string(body)
		}
		return flatstoreSeries(string(body)), string(body)
	}
	var got map[string]string
	var body string
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, body = scrape()
			if ok() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 30 s; the endpoint said:\n%s\nlog:\n%s", what, body, tail(r.logText(), 3000))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	names := []string{"flatstore.0", "sip_events"}
	waitUntil("flatstore series at 0", func() bool {
		for _, n := range names {
			if got[`flatstore_records_written_total{name="`+n+`"}`] != "0" {
				return false
			}
		}
		return true
	})
	for _, n := range names {
		for _, k := range []string{
			`flatstore_bytes_written_total{name="%s"}`,
			`flatstore_records_dropped_total{name="%s",reason="body_not_map"}`,
			`flatstore_write_errors_total{name="%s",errno="ENOSPC"}`,
			`flatstore_flush_retries_total{name="%s",cause="write_error"}`,
		} {
			if v := got[fmt.Sprintf(k, n)]; v != "0" {
				t.Errorf("%s = %q before any record, want 0", fmt.Sprintf(k, n), v)
			}
		}
		// the engine's own series carry the same label
		if !strings.Contains(body, `fluentbit_output_proc_records_total{name="`+n+`"}`) {
			t.Errorf("the engine's own series for %s are not labelled alike:\n%s", n, body)
		}
	}
	for _, k := range []string{`flatstore_rotations_total{reason="size"}`, `flatstore_files_deleted_total{reason="max_files"}`} {
		if v := got[k]; v != "0" {
			t.Errorf("%s = %q, want 0", k, v)
		}
	}
	if _, ok := got["flatstore_open_files"]; !ok {
		t.Errorf("no flatstore_open_files:\n%s", body)
	}

	const n = 500
	forwardSend(t, "127.0.0.1:"+fwd, "m.test", 0, n)
	waitLinesIn(t, r, a, n)
	waitLinesIn(t, r, b, n)
	sizeA, sizeB := fileSize(t, a), fileSize(t, b)
	waitUntil("the series count the lines written", func() bool {
		return got[`flatstore_records_written_total{name="flatstore.0"}`] == fmt.Sprint(n) &&
			got[`flatstore_records_written_total{name="sip_events"}`] == fmt.Sprint(n) &&
			got[`flatstore_bytes_written_total{name="flatstore.0"}`] == fmt.Sprint(sizeA) &&
			got[`flatstore_bytes_written_total{name="sip_events"}`] == fmt.Sprint(sizeB) &&
			// the engine's own count, joined on the same name label
			strings.Contains(body, "fluentbit_output_proc_records_total{name=\"flatstore.0\"} "+fmt.Sprint(n)+"\n") &&
			strings.Contains(body, "fluentbit_output_proc_records_total{name=\"sip_events\"} "+fmt.Sprint(n)+"\n")
	})
	t.Logf("the engine's endpoint, flatstore's series:\n%s", grepLines(body, "flatstore_"))
	r.stop(t)
	if log := r.logText(); strings.Contains(log, "[error]") || strings.Contains(log, "unresetable") {
		t.Errorf("the engine logged a problem:\n%s", tail(log, 3000))
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// metricsSections reads the host's -metrics file: its sections, in order,
// each the flatstore_* samples under a "# flbhost: WHEN" line.
func metricsSections(t *testing.T, path string) (whens []string, sections []map[string]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range strings.Split(string(b), "# flbhost: ") {
		if i == 0 {
			continue
		}
		when, rest, _ := strings.Cut(part, "\n")
		whens = append(whens, when)
		sections = append(sections, flatstoreSeries(rest))
	}
	return whens, sections
}

// TestEngineMetricsInHost: through the .so in the host, which implements
// the engine's output_get_cmt_instance and exports its cmetrics functions,
// with control_listen off: every flatstore series of each output is in its
// metrics context at start-up, at 0, labelled with the alias or
// flatstore.N; at exit the counts are the lines and bytes of each file,
// with several flush threads; a reload starts a new context at 0.
func TestEngineMetricsInHost(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	var recs []byte
	const n = 3000
	for i := range n {
		recs = append(recs, isoRec("E", "i", i)...)
	}
	recs = append(recs, records.AppendValue(nil, []any{int64(1700000000), "not a map"})...) // dropped, counted
	in := fbtest.WriteFile(t, "m.msgpack", recs)
	mf := filepath.Join(dir, "metrics.txt")
	_, stderr, code := fbtest.RunHost(t, "-in", in, "-chunk", "70", "-metrics", mf,
		"-p", "path="+a, "-p", "control_listen=off",
		"-next", "-p", "path="+b, "-p", "alias=sip_events", "-p", "workers=3", "-p", "control_listen=off")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, bad := range []string{"created outside Init", "unresetable", "cmetrics functions", "metrics context"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr says %q:\n%s", bad, stderr)
		}
	}
	whens, sec := metricsSections(t, mf)
	if len(whens) != 2 || whens[0] != "start-up" || whens[1] != "exit" {
		t.Fatalf("sections %q, want start-up and exit", whens)
	}
	start, end := sec[0], sec[1]
	for _, name := range []string{"flatstore.0", "sip_events"} {
		zero := 0
		for k, v := range start {
			if strings.Contains(k, `name="`+name+`"`) {
				zero++
				if v != "0" {
					t.Errorf("at start-up %s = %s, want 0", k, v)
				}
			}
		}
		// records, bytes, 8 drop reasons, 19 errnos (16 common, not_regular, other_output, other), 3 retry causes
		if zero != 32 {
			t.Errorf("%d series labelled %s at start-up, want 32:\n%v", zero, name, start)
		}
		for _, k := range []string{`flatstore_records_written_total{name="%s"}`, `flatstore_write_errors_total{name="%s",errno="ENOSPC"}`,
			`flatstore_records_dropped_total{name="%s",reason="body_not_map"}`, `flatstore_flush_retries_total{name="%s",cause="write_error"}`} {
			if _, ok := start[fmt.Sprintf(k, name)]; !ok {
				t.Errorf("no %s at start-up", fmt.Sprintf(k, name))
			}
		}
	}
	for _, k := range []string{`flatstore_rotations_total{reason="size"}`, `flatstore_files_deleted_total{reason="max_age"}`, "flatstore_open_files"} {
		if v, ok := start[k]; !ok || v != "0" {
			t.Errorf("at start-up %s = %q (present %v), want 0", k, v, ok)
		}
	}
	for _, c := range []struct{ name, path string }{{"flatstore.0", a}, {"sip_events", b}} {
		body := fbtest.ReadText(t, c.path)
		if lines := strings.Count(body, "\n"); lines != n {
			t.Fatalf("%s holds %d lines, want %d", c.path, lines, n)
		}
		for k, want := range map[string]string{
			`flatstore_records_written_total{name="%s"}`:                       fmt.Sprint(n),
			`flatstore_bytes_written_total{name="%s"}`:                         fmt.Sprint(len(body)),
			`flatstore_records_dropped_total{name="%s",reason="body_not_map"}`: "1",
			`flatstore_flush_retries_total{name="%s",cause="write_error"}`:     "0",
		} {
			if got := end[fmt.Sprintf(k, c.name)]; got != want {
				t.Errorf("at exit %s = %q, want %s", fmt.Sprintf(k, c.name), got, want)
			}
		}
	}

	// A reload: the new generation's contexts start at 0 and count its own lines.
	mf2 := filepath.Join(dir, "metrics2.txt")
	c := filepath.Join(dir, "c.log")
	_, stderr, code = fbtest.RunHost(t, "-in", in, "-chunk", "500", "-reload", "1", "-metrics", mf2,
		"-p", "path="+c, "-p", "alias=re", "-p", "control_listen=off")
	if code != 0 {
		t.Fatalf("reload: exit %d:\n%s", code, stderr)
	}
	whens, sec = metricsSections(t, mf2)
	if strings.Join(whens, ",") != "start-up,start-up,exit" {
		t.Fatalf("reload: sections %q", whens)
	}
	if v := sec[1][`flatstore_records_written_total{name="re"}`]; v != "0" {
		t.Errorf("after the reload's start-up, records_written_total = %q, want 0", v)
	}
	if v := sec[2][`flatstore_records_written_total{name="re"}`]; v != fmt.Sprint(n) {
		t.Errorf("at exit after a reload, records_written_total = %q, want %d (the file holds %d lines)", v, n,
			strings.Count(fbtest.ReadText(t, c), "\n"))
	}
}

// TestEngineMetricsAbsent: an engine that hands no metrics context (built
// without metrics): the plugin says so once, for two outputs, and writes
// on; the control endpoint still serves its /metrics.
func TestEngineMetricsAbsent(t *testing.T) {
	dir := t.TempDir()
	addr := fbtest.FreeTCPAddr(t)
	in := fbtest.WriteFile(t, "m.msgpack", isoRec("E", "i", 1))
	h := fbtest.StartHost(t, "-in", in, "-no-cmt", "-hold-ms", holdMs,
		"-p", "path="+filepath.Join(dir, "a.log"), "-p", "control_listen="+addr,
		"-next", "-p", "path="+filepath.Join(dir, "b.log"), "-p", "control_listen=off")
	cl := ctlClient(t, addr, "")
	waitFor(t, func() bool {
		code, body, err := cl.Do(http.MethodGet, "/metrics", nil)
		return err == nil && code == 200 && strings.Contains(string(body), `flatstore_records_written_total{instance="flatstore.0"} 1`)
	})
	h.Release()
	_, stderr, code := h.Wait()
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if c := strings.Count(stderr, "hands this output no metrics context"); c != 1 {
		t.Errorf("said %d times that there is no metrics context, want once:\n%s", c, stderr)
	}
	for _, p := range []string{"a.log", "b.log"} {
		if got := fbtest.ReadText(t, filepath.Join(dir, p)); got != "E,1\n" {
			t.Errorf("%s holds %q", p, got)
		}
	}
}
