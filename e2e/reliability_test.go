package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Write failures through the real plugin .so in the C host (docs/delivery.md): the
// flush that cannot write answers RETRY having kept nothing, the host resends
// it, and once the cause is gone the chunk lands exactly once.

// relChunk encodes n records {"event":"E_REL","n":first+i,"pad":pad}, with
// "file" set when file is not "".
func relChunk(first, n int, file, pad string) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		body := records.KV{"event", "E_REL", "n", first + i, "pad", pad}
		if file != "" {
			body = records.KV{"event", "E_REL", "file", file, "n", first + i, "pad", pad}
		}
		b = records.AppendRecord(b, records.Record{Time: time.Unix(1700000000, 0), Body: body})
	}
	return b
}

// relLines is what relChunk writes (with or without the file column).
func relLines(first, n int, file, pad string) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if file != "" {
			fmt.Fprintf(&sb, "E_REL,%s,%d,%s\n", file, first+i, pad)
		} else {
			fmt.Fprintf(&sb, "E_REL,%d,%s\n", first+i, pad)
		}
	}
	return sb.String()
}

// relWaitStderr waits until the host's stderr holds every one of want.
func relWaitStderr(t *testing.T, h *fbtest.Host, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := h.Stderr()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stderr never held %q:\n%s", want, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPluginDiskFull: the event file's filesystem (a 2 MiB tmpfs) has 64 KiB
// left; the second chunk (~330 KB) does not fit. The plugin answers RETRY
// and cuts the partial write back; when the test sees the error in the log
// it deletes the filler, and the resent chunk lands exactly once.
func TestPluginDiskFull(t *testing.T) {
	dir := fbtest.MountTmpfs(t, "2m")
	out := filepath.Join(dir, "events.log")
	pad := strings.Repeat("x", 100)
	filler := fbtest.FillDisk(t, dir, 64<<10)
	in := fbtest.WriteFile(t, "full.chunks", records.Frames(
		relChunk(0, 100, "", pad), relChunk(100, 3000, "", pad), relChunk(3100, 100, "", pad)))
	h := fbtest.StartHost(t, "-in-chunks", in, "-retry-max", "100000", "-retry-wait-ms", "20",
		"-p", "path="+out, "-p", "control_listen=off")
	relWaitStderr(t, h, "(ENOSPC)", "chunk will be retried")
	// While the disk is full the file holds the first chunk, whole; past it
	// at most the start of the second, when a resend's short write is seen
	// before it is cut back.
	first, second := relLines(0, 100, "", pad), relLines(100, 3000, "", pad)
	if got := fbtest.ReadText(t, out); !strings.HasPrefix(got, first) || !strings.HasPrefix(second, got[len(first):]) {
		t.Errorf("while the disk is full the file holds %d bytes, want the %d of the first chunk (and a resend's cut)",
			len(got), len(first))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sum, stderr, code := h.Wait()
	if code != 0 || len(sum.Instances) != 1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	s := sum.Instances[0]
	if s.OKChunks != 3 || s.OKRecords != 3200 || s.Retries < 1 || s.DroppedChunks != 0 {
		t.Errorf("summary %+v: want 3 chunks OK after at least one retry", s)
	}
	if got := fbtest.ReadText(t, out); got != relLines(0, 3200, "", pad) {
		lines, rest := fbtest.SplitLines([]byte(got))
		t.Errorf("file holds %d lines (+%q), want the 3200 exactly once, in order", len(lines), rest)
	}
}

// TestPluginPathIsDirectory: mid-run, the path a record renders names a
// directory. Only the records bound for it are lost: they are dropped as
// bad_path (the log quotes the path and the errno), the chunk is answered
// OK (a retry could not fix it), and the chunks before and after go on.
func TestPluginPathIsDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "b.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := fbtest.WriteFile(t, "dir.chunks", records.Frames(
		relChunk(0, 10, "a", "p"), relChunk(10, 10, "b", "p"), relChunk(20, 10, "a", "p")))
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-workers", "1", "-retry-max", "100000", "-retry-wait-ms", "20",
		"-p", "path="+filepath.Join(dir, "$file.log"), "-p", "control_listen=off")
	if code != 0 || len(sum.Instances) != 1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	if s := sum.Instances[0]; s.OKChunks != 3 || s.Retries != 0 {
		t.Errorf("summary %+v: want 3 chunks OK and no retry", s)
	}
	if want := fmt.Sprintf("dropped 10 record(s) (bad_path): open %q: is a directory (EISDIR)", filepath.Join(dir, "b.log")); !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	if got, want := fbtest.ReadText(t, filepath.Join(dir, "a.log")), relLines(0, 10, "a", "p")+relLines(20, 10, "a", "p"); got != want {
		t.Errorf("a.log holds %q, want %q", got, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "b.log")); err != nil || !fi.IsDir() {
		t.Errorf("b.log: %v, %v", fi, err)
	}
}

// TestPluginShutdownUnderLoad stops the host (-exit-after-ms) while four
// workers flush chunks that each write three files with sync flush. The host
// stops starting flushes, lets those in flight return, then calls ExitCtx.
// Each chunk's records are in the files, whole, exactly when its flush
// returned OK: the lines on disk equal the host's ok_records, and no line is
// torn or repeated.
func TestPluginShutdownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	const chunks, per = 200, 600
	pad := strings.Repeat("s", 40)
	var frames [][]byte
	for c := 0; c < chunks; c++ {
		var b []byte
		for r := 0; r < per; r++ {
			n := c*per + r
			b = records.AppendRecord(b, records.Record{Body: records.KV{
				"event", "E_LOAD", "shard", strconv.Itoa(n % 3), "n", n, "pad", pad}})
		}
		frames = append(frames, b)
	}
	in := fbtest.WriteFile(t, "load.chunks", records.Frames(frames...))
	// 200 chunks, each followed by a 2 ms pause, over 4 workers: the run
	// cannot end before 100 ms, so stopping at 40 ms always cuts it short.
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-workers", "4", "-exit-after-ms", "40",
		"-chunk-delay-us", "2000", "-p", "path="+filepath.Join(dir, "$shard.log"),
		"-p", "sync=flush", "-p", "control_listen=off")
	if code != 0 || len(sum.Instances) != 1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	s := sum.Instances[0]
	if s.UnsentChunks == 0 || s.Chunks+s.UnsentChunks != chunks || s.Errors != 0 || s.DroppedChunks != 0 {
		t.Errorf("summary %+v: want the run cut short, no error or drop", s)
	}
	if strings.Contains(stderr, "panic") || !strings.Contains(stderr, "closed") {
		t.Errorf("stderr should show a clean close and no panic:\n%s", stderr)
	}
	seen := map[int]bool{}
	for sh := 0; sh < 3; sh++ {
		data, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(sh)+".log"))
		if err != nil {
			if os.IsNotExist(err) && s.OKRecords == 0 {
				continue
			}
			t.Fatal(err)
		}
		fbtest.AssertLinesTerminated(t, data)
		lines, _ := fbtest.SplitLines(data)
		for _, l := range lines {
			f := strings.Split(l, ",")
			n, err := strconv.Atoi(f[len(f)-2])
			if len(f) != 4 || f[0] != "E_LOAD" || f[1] != strconv.Itoa(sh) || f[3] != pad || err != nil || n%3 != sh {
				t.Fatalf("%d.log: torn or misplaced line %q", sh, l)
			}
			if seen[n] {
				t.Fatalf("record %d written twice", n)
			}
			seen[n] = true
		}
	}
	if int64(len(seen)) != s.OKRecords {
		t.Errorf("%d records on disk, host counted %d in chunks answered OK", len(seen), s.OKRecords)
	}
	// Whole chunks only: a chunk is on disk with all its records or none.
	for c := 0; c < chunks; c++ {
		k := 0
		for r := 0; r < per; r++ {
			if seen[c*per+r] {
				k++
			}
		}
		if k != 0 && k != per {
			t.Errorf("chunk %d: %d of %d records on disk", c, k, per)
		}
	}
	t.Logf("host: %+v", s)
}
