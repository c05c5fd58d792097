package control

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore/logger"
)

// Rotate requests are logged rate-limited per key, so a client calling in a
// loop cannot flood the log; a failed one is a warning.
func TestRotateLogging(t *testing.T) {
	t.Parallel()
	ps := tempPaths(t, "a.log", "b.log", "broken.log")
	b := newFileBackend(t, ps...)
	b.fail[ps[2]] = errors.New("close: input/output error")
	h, logs := serve(t, "", b)
	const n = 30
	start := time.Now()
	for i := range n {
		for _, p := range []string{ps[0], ps[1], ps[2], "/nope/" + string(rune('a'+i%26)) + ".log"} {
			mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`)
		}
		do(t, h, http.MethodPost, "/rotate?path="+url.QueryEscape(ps[0]), "", nil)
	}
	// One line per key per flatstore.LimitEvery: however slow the machine,
	// the bound follows the time the loop took.
	most := 1 + int(time.Since(start)/logger.LimitEvery)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	count := func(level, substr string) int {
		k := 0
		for _, l := range lines {
			if strings.Contains(l, "["+level+"]") && strings.Contains(l, substr) {
				k++
			}
		}
		return k
	}
	for _, c := range []struct{ level, substr string }{
		{" info", "control: rotate " + q(ps[0]) + " ("},
		{" info", "control: rotate " + q(ps[1]) + " (mi from "},
		{" warn", "control: rotate " + q(ps[2]) + " (mi from "},
		{" warn", "): File not found"},
	} {
		if k := count(c.level, c.substr); k < 1 || k > most {
			t.Errorf("%d [%s] lines with %q for %d requests, want 1 to %d:\n%s", k, c.level, c.substr, n, most, logs)
		}
	}
	if k := count(" warn", "input/output error"); k < 1 {
		t.Errorf("the failure's error is not logged:\n%s", logs)
	}
	if strings.Contains(logs.String(), "[ info] [output:flatstore:flatstore.test] control: rotate \"/nope/") ||
		strings.Contains(logs.String(), "[error]") {
		t.Errorf("a failed rotate logged as info or error:\n%s", logs)
	}
	if b.rotated(ps[0]) != 2*n || b.rotated(ps[1]) != n {
		t.Fatalf("rotations %v: the rate limit must only hold back log lines", b.rotations)
	}
}
