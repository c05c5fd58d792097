package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Rotation storms through the real plugin .so in the C host (docs/rotation.md):
// four flush threads write a million numbered records while the test
// renames the file again and again, with an MI rotate after each rename, or
// with reopen_check and no rotate at all. Whatever the timing, every record
// ends up exactly once, as one whole line, in one of the files.

const stormRecords = 1_000_000

// seqEvents names the events of the numbered records: record i is event
// seqEvents[i%len(seqEvents)].
var seqEvents = []string{"E_A", "E_B", "E_C"}

// seqInput writes n records {"event": E_x, "seq": i, "who": "alice"} as a raw
// msgpack stream (the host's -in) and returns its path.
func seqInput(t *testing.T, n int) string {
	t.Helper()
	var buf []byte
	for i := 0; i < n; i++ {
		buf = records.AppendRecord(buf, records.Record{
			Time: time.Unix(1700000000+int64(i/1000), 0),
			Body: records.KV{"event", seqEvents[i%len(seqEvents)], "seq", i, "who", "alice"},
		})
	}
	return fbtest.WriteFile(t, "seq.msgpack", buf)
}

// seqCount is what the files of a run hold, seq by seq.
type seqCount struct {
	n     int
	seen  []uint8 // seen[i]: how many lines carry seq i (saturates at 255)
	lines int
	files int // files holding at least one line
	bad   []string
}

func newSeqCount(n int) *seqCount { return &seqCount{n: n, seen: make([]uint8, n)} }

func (c *seqCount) badf(format string, a ...any) {
	if len(c.bad) < 20 {
		c.bad = append(c.bad, fmt.Sprintf(format, a...))
	}
}

// add counts the lines of one file. event, when not empty, is the only event
// name the file may hold. Every line must be E_x,SEQ,alice with SEQ a
// number below n whose event is E_x, and the file must end with a newline.
func (c *seqCount) add(name string, data []byte, event string) {
	if len(data) == 0 {
		return
	}
	c.files++
	if err := fbtest.CheckLinesTerminated(data); err != nil {
		c.badf("%s: partial line: %v", name, err)
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // reported above
		}
		line := data[:i]
		data = data[i+1:]
		c.lines++
		f := bytes.Split(line, []byte(","))
		if len(f) != 3 || string(f[2]) != "alice" {
			c.badf("%s: line %q is not EVENT,SEQ,alice", name, line)
			continue
		}
		seq, err := strconv.Atoi(string(f[1]))
		if err != nil || seq < 0 || seq >= c.n {
			c.badf("%s: line %q: seq is not a number in [0,%d)", name, line, c.n)
			continue
		}
		if want := seqEvents[seq%len(seqEvents)]; string(f[0]) != want || (event != "" && want != event) {
			c.badf("%s: line %q: event %q, want %q (file for %q)", name, line, f[0], want, event)
		}
		if c.seen[seq] < 255 {
			c.seen[seq]++
		}
	}
}

// check fails the test unless every seq appears exactly once and every line
// was well formed.
func (c *seqCount) check(t *testing.T) {
	t.Helper()
	for _, b := range c.bad {
		t.Error(b)
	}
	var missing, dup []int
	for i, s := range c.seen {
		switch {
		case s == 0:
			missing = append(missing, i)
		case s > 1:
			dup = append(dup, i)
		}
	}
	if c.lines != c.n {
		t.Errorf("%d lines in %d files, want exactly %d", c.lines, c.files, c.n)
	}
	if len(missing) > 0 {
		t.Errorf("%d seqs missing, first %v", len(missing), missing[:min(10, len(missing))])
	}
	if len(dup) > 0 {
		t.Errorf("%d seqs written more than once, first %v", len(dup), dup[:min(10, len(dup))])
	}
}

// readMaybeGzip returns the content of a file, decompressed when its name
// ends in .gz.
func readMaybeGzip(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p, ".gz") {
		return data
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return out
}

// countFiles counts the lines of every regular file in dir whose name starts
// with prefix (gzip files decompressed); event is passed to add.
func countFiles(t *testing.T, c *seqCount, dir, prefix, event string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		c.add(p, readMaybeGzip(t, p), event)
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// holdMs is the -hold-ms of a test that talks to the host after its input
// is flushed: far longer than any test needs, ended by h.Release() once the
// test is done with the process (a fixed short hold raced the test on a
// loaded machine: the host could exit between two of its requests).
const holdMs = "60000"

// openGate opens the host's next -gate: one byte more in the file.
func openGate(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		_, err = f.Write([]byte{'g'})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// hostDone returns a channel closed when the host has exited.
func hostDone(h *fbtest.Host) <-chan struct{} {
	done := make(chan struct{})
	go func() { h.Wait(); close(done) }()
	return done
}

// waitHealthy polls /healthz until the endpoint answers; it fails the test
// when the host exits first or 20 s pass.
func waitHealthy(t *testing.T, h *fbtest.Host, done <-chan struct{}, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !healthy(addr) {
		select {
		case <-done:
			_, stderr, code := h.Wait()
			t.Fatalf("host exited (code %d) before %s answered; stderr:\n%s", code, addr, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer /healthz; stderr:\n%s", addr, h.Stderr())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitExists waits until p exists; false when the host exits first.
func waitExists(p string, done <-chan struct{}) bool {
	for {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
		select {
		case <-done:
			return false
		case <-time.After(500 * time.Microsecond):
		}
	}
}

// hostOK fails the test unless the host exited 0 with every record of
// every instance answered OK.
func hostOK(t *testing.T, sum fbtest.Summary, stderr string, code int, records int64) {
	t.Helper()
	if code != 0 {
		t.Fatalf("host exit code %d; stderr:\n%s", code, tail(stderr, 4000))
	}
	for _, s := range sum.Instances {
		if s.OKRecords != records || s.Errors != 0 || s.DroppedChunks != 0 {
			t.Errorf("instance %+v: want %d ok records, no error or drop", s, records)
		}
	}
	if strings.Contains(stderr, "panic") {
		t.Errorf("stderr mentions a panic:\n%s", tail(stderr, 4000))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestRotationStormMI: 4 flush threads write 1 000 000 records while the
// test renames the file 200 times, each rename followed by an MI
// evi_flat_rotate over HTTP. Each rename waits until the plugin has created
// the file again, so every one of the 200 renamed files takes lines that
// were written while the storm ran.
func TestRotationStormMI(t *testing.T) {
	const rotations = 200
	dir := t.TempDir()
	out := filepath.Join(dir, "storm.log")
	in := seqInput(t, stormRecords)
	addr := fbtest.FreeTCPAddr(t)

	h := fbtest.StartHost(t, "-in", in, "-chunk", "500", "-workers", "4", "-chunk-delay-us", "6000",
		"-hold-ms", holdMs, "-p", "path="+out, "-p", "control_listen="+addr)
	done := hostDone(h)
	waitHealthy(t, h, done, addr)
	ctl := ctlClient(t, addr, "")
	start := time.Now()

	var renamed, rotated int
	var stormErr error
	for i := 1; i <= rotations; i++ {
		if !waitExists(out, done) {
			stormErr = fmt.Errorf("the host ended after %d rotations", rotated)
			break
		}
		if err := os.Rename(out, fmt.Sprintf("%s.%d", out, i)); err != nil {
			stormErr = err
			break
		}
		renamed++
		if err := ctl.Rotate(out); err != nil {
			stormErr = fmt.Errorf("rotate %d: %v", i, err)
			break
		}
		rotated++
	}
	stormEnd := time.Since(start)
	counted := -1
	if stormErr == nil {
		counted = miRotations(t, ctl)
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, stormRecords)
	if stormErr != nil {
		t.Fatalf("storm: %v (renamed %d, rotated %d; the host must write long enough: -chunk-delay-us)", stormErr, renamed, rotated)
	}

	c := newSeqCount(stormRecords)
	names := countFiles(t, c, dir, "storm.log", "")
	c.check(t)
	if len(names) != rotations+1 {
		t.Errorf("%d files %v, want %d (the file and its %d renames)", len(names), names, rotations+1, rotations)
	}
	if c.files != rotations+1 {
		t.Errorf("%d files hold lines, want all %d", c.files, rotations+1)
	}
	if counted != rotations {
		t.Errorf("the plugin counted %d rotations with reason mi, want %d", counted, rotations)
	}
	t.Logf("records=%d rotations=%d files=%d storm=%v host wall=%.2fs cpu=%.2fs+%.2fs rss=%dMB",
		c.lines, rotated, c.files, stormEnd.Round(time.Millisecond), sum.WallS, sum.CPUUserS, sum.CPUSysS, sum.MaxRSSKB>>10)
}

// TestRotationStormReopenCheck: the same writers with reopen_check 50ms and
// no rotate call: the test only renames the file. Lines written after a
// rename go into the renamed file until the check notices; then the plugin
// creates the file again, and the next rename follows.
func TestRotationStormReopenCheck(t *testing.T) {
	const renames = 30
	dir := t.TempDir()
	out := filepath.Join(dir, "reopen.log")
	in := seqInput(t, stormRecords)

	h := fbtest.StartHost(t, "-in", in, "-chunk", "500", "-workers", "4", "-chunk-delay-us", "10000",
		"-p", "path="+out, "-p", "control_listen=off", "-p", "reopen_check=50ms")
	done := hostDone(h)
	start := time.Now()

	renamed := 0
	var stormErr error
	for i := 1; i <= renames; i++ {
		if !waitExists(out, done) {
			stormErr = fmt.Errorf("the host ended after %d renames", renamed)
			break
		}
		if err := os.Rename(out, fmt.Sprintf("%s.%d", out, i)); err != nil {
			stormErr = err
			break
		}
		renamed++
	}
	stormEnd := time.Since(start)
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, stormRecords)
	if stormErr != nil {
		t.Fatalf("storm: %v (the host must write long enough: -chunk-delay-us)", stormErr)
	}

	c := newSeqCount(stormRecords)
	names := countFiles(t, c, dir, "reopen.log", "")
	c.check(t)
	// The last rename may come after the last write: then the file is not
	// created again.
	if len(names) != renames+1 && len(names) != renames {
		t.Errorf("%d files %v, want %d or %d", len(names), names, renames, renames+1)
	}
	if got := strings.Count(stderr, "(reopen_check)"); got < renames-1 {
		t.Errorf("the plugin logged %d reopen_check rotations, want at least %d; stderr:\n%s", got, renames-1, tail(stderr, 3000))
	}
	t.Logf("records=%d renames=%d files=%d storm=%v host wall=%.2fs", c.lines, renamed, c.files, stormEnd.Round(time.Millisecond), sum.WallS)
}
