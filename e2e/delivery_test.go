package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Issue 21's two unit-level cases, through the .so in the host: what the
// plugin remembers to avoid doubles must neither run out (eviction) nor
// take a new chunk for an old one (identical chunk).

// deliveryDirs makes out/a, out/b and out/c, b a full 1 MiB tmpfs; it
// returns out and b's filler.
func deliveryDirs(t *testing.T, extra ...string) (out, filler string) {
	t.Helper()
	out = filepath.Join(t.TempDir(), "out")
	for _, f := range append([]string{"a", "b", "c"}, extra...) {
		if err := os.MkdirAll(filepath.Join(out, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fbtest.MountTmpfsAt(t, filepath.Join(out, "b"), "1m")
	return out, fbtest.FillDisk(t, filepath.Join(out, "b"), 0)
}

// spreadChunk is n records {"event":"E_D","f":a|b|c,"n":first+i}, spread
// over the three files in turn.
func spreadChunk(first, n int) []byte {
	var b []byte
	for i := first; i < first+n; i++ {
		b = records.AppendRecord(b, records.Record{Time: time.Unix(1700000000, 0), Body: records.KV{
			"event", "E_D", "f", tortureFiles[i%3], "n", i}})
	}
	return b
}

// lineCounts counts each line of out/F/n.log for F in files.
func lineCounts(t *testing.T, out string, files ...string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(out, f, "n.log"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fbtest.AssertLinesTerminated(t, data)
		lines, _ := fbtest.SplitLines(data)
		for _, l := range lines {
			m[f+": "+l]++
		}
	}
	return m
}

// TestDeliveryEvictionFlood: chunk P writes to a, b and c; b's disk is full,
// so P is answered RETRY with its a and c lines landed. Before its resend
// (the host's -retry-defer puts it behind the queued chunks, as the engine's
// scheduler does), 1 100 other chunks fail on d (another full disk), more
// than the 1 024 resends the plugin remembers. Meanwhile b gets space back.
// P's resend must still land each of its lines exactly once.
func TestDeliveryEvictionFlood(t *testing.T) {
	out, fillerB := deliveryDirs(t, "d")
	fbtest.MountTmpfsAt(t, filepath.Join(out, "d"), "1m")
	fbtest.FillDisk(t, filepath.Join(out, "d"), 0)
	const flood = 1100
	frames := [][]byte{spreadChunk(0, 300)}
	for i := 0; i < flood; i++ {
		frames = append(frames, records.Records(records.Record{Time: time.Unix(1700000000, 0),
			Body: records.KV{"event", "E_D", "f", "d", "n", 1000 + i}}))
	}
	in := fbtest.WriteFile(t, "flood.chunks", records.Frames(frames...))
	// The host waits at the first flood chunk until the test has given b
	// its space back: P's resend comes after the whole flood in any case.
	gate := filepath.Join(t.TempDir(), "gate")
	h := fbtest.StartHost(t, "-in-chunks", in, "-retry-defer", "-retry-max", "1", "-retry-wait-ms", "0",
		"-gate", gate, "-log-level", "warn",
		"-p", "path="+filepath.Join(out, "$f", "n.log"), "-p", "mkdir=true", "-p", "control_listen=off")
	relWaitStderr(t, h, filepath.Join(out, "b", "n.log"), "(ENOSPC)", "flbhost: at the gate of chunk 1")
	if err := os.Remove(fillerB); err != nil {
		t.Fatal(err)
	}
	openGate(t, gate)
	sum, stderr, code := h.Wait()
	if len(sum.Instances) != 1 {
		t.Fatalf("exit %d, no summary; stderr:\n%s", code, tail(stderr, 3000))
	}
	s := sum.Instances[0]
	// P: one RETRY then OK; every flood chunk: RETRY twice, then given up.
	if s.OKChunks != 1 || s.DroppedChunks != flood || s.Retries != 1+2*flood {
		t.Fatalf("summary %+v: want P answered RETRY once then OK, and the %d flood chunks given up after two RETRYs "+
			"(P's resend came before b had space again?); stderr:\n%s", s, flood, tail(stderr, 3000))
	}
	got := lineCounts(t, out, "a", "b", "c")
	var wrong []string
	for i := 0; i < 300; i++ {
		f := tortureFiles[i%3]
		if k := got[fmt.Sprintf("%s: E_D,%s,%d", f, f, i)]; k != 1 {
			wrong = append(wrong, fmt.Sprintf("%s:%d=%d", f, i, k))
		}
	}
	if len(got) != 300 || len(wrong) > 0 {
		t.Errorf("after P's resend, %d distinct lines in a, b, c (want 300); %d of P's lines not there exactly once: %s",
			len(got), len(wrong), strings.Join(wrong[:min(12, len(wrong))], " "))
	}
}

// TestDeliveryIdenticalChunk: chunk X writes to a, b and c; b's disk is full
// and the engine gives up on X (retry_limit no_retries). Then a chunk with
// the same bytes and tag comes, b has space again, and it is answered OK:
// it must add each of its lines once to what the files held before it,
// whatever X left there. The plugin must not take it for X's resend and
// skip the lines X had written (today: a=1 and c=1 where 2 are due).
func TestDeliveryIdenticalChunk(t *testing.T) {
	out, fillerB := deliveryDirs(t)
	x := spreadChunk(0, 300)
	in := fbtest.WriteFile(t, "same.chunks", records.Frames(x, x))
	// The host waits before the second chunk until the test has looked at
	// the files X left (its flush over: cut back or kept) and freed b.
	gate := filepath.Join(t.TempDir(), "gate")
	h := fbtest.StartHost(t, "-in-chunks", in, "-p", "retry_limit=no_retries", "-gate", gate,
		"-log-level", "warn",
		"-p", "path="+filepath.Join(out, "$f", "n.log"), "-p", "mkdir=true", "-p", "control_listen=off")
	relWaitStderr(t, h, filepath.Join(out, "b", "n.log"), "(ENOSPC)", "flbhost: at the gate of chunk 1")
	before := lineCounts(t, out, "a", "b", "c")
	if err := os.Remove(fillerB); err != nil {
		t.Fatal(err)
	}
	openGate(t, gate)
	sum, stderr, code := h.Wait()
	if len(sum.Instances) != 1 {
		t.Fatalf("exit %d, no summary; stderr:\n%s", code, tail(stderr, 3000))
	}
	if s := sum.Instances[0]; s.OKChunks != 1 || s.DroppedChunks != 1 || s.Retries != 1 {
		t.Fatalf("summary %+v: want X given up at its RETRY and the second chunk OK at once "+
			"(did the second come before b had space?); stderr:\n%s", s, tail(stderr, 3000))
	}
	after := lineCounts(t, out, "a", "b", "c")
	landed := map[string]int{}
	for k, n := range before {
		landed[k[:1]] += n
	}
	t.Logf("lines X left behind when given up: a=%d b=%d c=%d", landed["a"], landed["b"], landed["c"])
	var wrong []string
	perFile := map[string]int{}
	for i := 0; i < 300; i++ {
		f := tortureFiles[i%3]
		k := fmt.Sprintf("%s: E_D,%s,%d", f, f, i)
		if after[k] != before[k]+1 {
			perFile[f]++
			if len(wrong) < 12 {
				wrong = append(wrong, fmt.Sprintf("%s:%d %d→%d", f, i, before[k], after[k]))
			}
		}
	}
	if len(wrong) > 0 {
		t.Errorf("the chunk answered OK did not add each of its lines once: wrong in a=%d b=%d c=%d (of 100 each); first: %s",
			perFile["a"], perFile["b"], perFile["c"], strings.Join(wrong, " "))
	}
}
