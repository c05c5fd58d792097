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
// bytes each file holds.
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
			got[`flatstore_bytes_written_total{name="sip_events"}`] == fmt.Sprint(sizeB)
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
