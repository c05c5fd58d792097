package flatstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// These tests hold docs/delivery.md (return codes) at the level of the
// core: records that are not events are skipped and counted by reason, write
// errors cut the file back and ask for a retry, a panic becomes a retry, and
// Close leaves no goroutine or descriptor behind.

// relLog is a Logger sink that tests may read while flushes log.
type relLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *relLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *relLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// relInstance builds an instance named name from kv (control off); it is
// closed when the test ends.
func relInstance(t *testing.T, proc *Process, name string, kv MapGetter) (*Instance, *relLog) {
	t.Helper()
	if _, ok := kv["control_listen"]; !ok {
		kv["control_listen"] = "off"
	}
	cfg, err := ParseConfig(kv)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	log := &relLog{}
	in, err := NewInstance(proc, cfg, name, logger.New(name, logger.NewWriterSink(log, logger.LevelDebug)))
	if err != nil {
		t.Fatalf("NewInstance: %v", err)
	}
	t.Cleanup(in.Close)
	return in, log
}

// relRecords encodes n records {"event":"E_REL","n":first+i,"pad":pad}.
func relRecords(first, n int, pad string) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = records.AppendRecord(b, records.Record{
			Time: time.Unix(1700000000, 0),
			Body: records.KV{"event", "E_REL", "n", first + i, "pad", pad},
		})
	}
	return b
}

// relLines is what relRecords(first, n, pad) must write.
func relLines(first, n int, pad string) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "E_REL,%d,%s\n", first+i, pad)
	}
	return sb.String()
}

// metricValue reads a counter of the flatstore registry whose labels include
// every pair in labels; 0 when absent.
func metricValue(t *testing.T, proc *Process, name string, labels ...string) float64 {
	t.Helper()
	fams, err := proc.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(mt, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case mt.Counter != nil:
				total += mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				total += mt.GetGauge().GetValue()
			}
		}
	}
	return total
}

func hasLabel(mt *dto.Metric, k, v string) bool {
	for _, lp := range mt.GetLabel() {
		if lp.GetName() == k && lp.GetValue() == v {
			return true
		}
	}
	return false
}

// hostileBody wraps raw msgpack as the body of a [[time, {}], body] record.
func hostileRecord(body []byte) []byte {
	return records.AppendRecord(nil, records.Record{Time: time.Unix(1700000000, 0), Body: records.Raw(body)})
}

func nested(levels int) []byte {
	b := bytes.Repeat([]byte{0x91}, levels) // [[[[...
	return append(b, 0xc0)                  // ...nil]]]]
}

// TestHostileRecordsCountedByReason feeds the core chunks with records that
// are not events: each is skipped and counted under its reason, the good
// records around it are written, and a chunk with nothing decodable is an
// Error.
func TestHostileRecordsCountedByReason(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hostile.log")
	in, _ := relInstance(t, proc, "rel-hostile", MapGetter{"path": path})

	good := func(i int) []byte { return relRecords(i, 1, "ok") }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	str32 := []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b', 'c'}
	cases := []struct {
		name   string
		chunk  []byte
		want   Result
		lines  string         // lines this chunk adds
		reason map[string]int // drops it adds
	}{
		{"truncated record", cat(good(1), good(2)[:len(good(2))-3]), OK,
			relLines(1, 1, "ok"), map[string]int{event.DropTruncated: 1}},
		{"map claims 2^32 entries", cat(good(3), hostileRecord([]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 0x01})), OK,
			relLines(3, 1, "ok"), map[string]int{event.DropTruncated: 1}},
		{"string claims 4 GiB", cat(good(4), hostileRecord(append([]byte{0x81, 0xa1, 'v'}, str32...))), OK,
			relLines(4, 1, "ok"), map[string]int{event.DropTruncated: 1}},
		{"10000 levels deep", cat(good(5), hostileRecord(append([]byte{0x81, 0xa1, 'v'}, nested(10000)...)), good(6)), OK,
			relLines(5, 2, "ok"), map[string]int{event.DropTooDeep: 1}},
		{"body is a string", cat(hostileRecord([]byte{0xa3, 'a', 'b', 'c'}), good(7)), OK,
			relLines(7, 1, "ok"), map[string]int{event.DropNotMap: 1}},
		{"array of 3", cat(good(8), []byte{0x93, 0x01, 0x02, 0x03}, good(9)), OK,
			relLines(8, 2, "ok"), map[string]int{event.DropNotRecord: 1}},
		{"time is a string", cat([]byte{0x92, 0xa1, 'x', 0x80}, good(10)), OK,
			relLines(10, 1, "ok"), map[string]int{event.DropBadTime: 1}},
		{"truncated after two good records", cat(good(11), good(12), good(13)[:5]), OK,
			relLines(11, 2, "ok"), map[string]int{event.DropTruncated: 1}},
		{"nothing decodable", []byte{0xc1, 0xc1, 0xc1, 0xc1}, Error, "", map[string]int{event.DropTruncated: 1}},
		{"only a truncated record", good(14)[:7], Error, "", map[string]int{event.DropTruncated: 1}},
	}
	reasons := []string{event.DropNotRecord, event.DropBadTime, event.DropNotMap, event.DropTruncated, event.DropTooDeep, event.DropTooLarge}
	want := ""
	for _, c := range cases {
		before := map[string]float64{}
		for _, r := range reasons {
			before[r] = metricValue(t, proc, "flatstore_records_dropped_total", "instance", "rel-hostile", "reason", r)
		}
		dropped := in.Dropped()
		if got := in.Flush(c.chunk, "flatstore.test"); got != c.want {
			t.Errorf("%s: Flush = %v, want %v", c.name, got, c.want)
		}
		want += c.lines
		n := 0
		for _, r := range reasons {
			d := metricValue(t, proc, "flatstore_records_dropped_total", "instance", "rel-hostile", "reason", r) - before[r]
			if int(d) != c.reason[r] {
				t.Errorf("%s: dropped{reason=%s} grew by %v, want %d", c.name, r, d, c.reason[r])
			}
			n += c.reason[r]
		}
		if got := in.Dropped() - dropped; got != uint64(n) {
			t.Errorf("%s: Dropped() grew by %d, want %d", c.name, got, n)
		}
	}
	if got := fbtest.ReadText(t, path); got != want {
		t.Errorf("file holds\n%q\nwant\n%q", got, want)
	}
}

// faultOps wraps the real system calls; each hook, when set, runs instead.
type faultOps struct {
	mu        sync.Mutex
	write     func(fd int, b []byte) (int, error)
	open      func(path string, flags int, perm uint32) (int, error)
	ftruncate func(fd int, size int64) error
	fdatasync func(fd int) error
	writes    int
	truncs    []int64
}

func (f *faultOps) ops() *filestore.Sys {
	ops := *filestore.RealSys()
	return withSys(ops, filestore.Sys{
		Open: func(path string, flags int, perm uint32) (int, error) {
			f.mu.Lock()
			h := f.open
			f.mu.Unlock()
			if h != nil {
				return h(path, flags, perm)
			}
			return unix.Open(path, flags, perm)
		},
		Write: func(fd int, b []byte) (int, error) {
			f.mu.Lock()
			f.writes++
			h := f.write
			f.mu.Unlock()
			if h != nil {
				return h(fd, b)
			}
			return unix.Write(fd, b)
		},
		Ftruncate: func(fd int, size int64) error {
			f.mu.Lock()
			f.truncs = append(f.truncs, size)
			h := f.ftruncate
			f.mu.Unlock()
			if h != nil {
				return h(fd, size)
			}
			return unix.Ftruncate(fd, size)
		},
		Fdatasync: func(fd int) error {
			f.mu.Lock()
			h := f.fdatasync
			f.mu.Unlock()
			if h != nil {
				return h(fd)
			}
			return unix.Fdatasync(fd)
		},
	})
}

// withSys returns o with the calls set in h in place of its own.
func withSys(o filestore.Sys, h filestore.Sys) *filestore.Sys {
	if h.Open != nil {
		o.Open = h.Open
	}
	if h.Write != nil {
		o.Write = h.Write
	}
	if h.Ftruncate != nil {
		o.Ftruncate = h.Ftruncate
	}
	if h.Fdatasync != nil {
		o.Fdatasync = h.Fdatasync
	}
	return &o
}

// useOps returns a Process of the test's own with the system calls ops.
func useOps(t *testing.T, ops *filestore.Sys) *Process {
	t.Helper()
	return newProcess(filestore.Env{Sys: ops})
}

// TestFlushWriteErrorRetry injects EIO into an instance's file: the flush
// returns Retry, the log names the errno, the metric counts it, and the
// retried chunk lands once.
func TestFlushWriteErrorRetry(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	path := filepath.Join(t.TempDir(), "eio.log")
	in, log := relInstance(t, proc, "rel-eio", MapGetter{"path": path})

	if got := in.Flush(relRecords(0, 10, "a"), "t"); got != OK {
		t.Fatalf("first flush = %v", got)
	}
	errs := metricValue(t, proc, "flatstore_write_errors_total", "instance", "rel-eio", "errno", "EIO")
	fo.mu.Lock()
	fo.write = func(fd int, b []byte) (int, error) {
		n, _ := unix.Write(fd, b[:len(b)/3])
		return n, unix.EIO
	}
	fo.mu.Unlock()
	if got := in.Flush(relRecords(10, 10, "b"), "t"); got != Retry {
		t.Fatalf("flush with EIO = %v, want Retry", got)
	}
	if got := fbtest.ReadText(t, path); got != relLines(0, 10, "a") {
		t.Fatalf("after EIO the file holds %q", got)
	}
	if !strings.Contains(log.String(), "(EIO)") || !strings.Contains(log.String(), "chunk will be retried") {
		t.Errorf("log does not name EIO and the retry:\n%s", log)
	}
	if d := metricValue(t, proc, "flatstore_write_errors_total", "instance", "rel-eio", "errno", "EIO") - errs; d != 1 {
		t.Errorf("write_errors{errno=EIO} grew by %v, want 1", d)
	}
	fo.mu.Lock()
	fo.write = nil
	fo.mu.Unlock()
	if got := in.Flush(relRecords(10, 10, "b"), "t"); got != OK {
		t.Fatalf("retry = %v", got)
	}
	if got := fbtest.ReadText(t, path); got != relLines(0, 10, "a")+relLines(10, 10, "b") {
		t.Errorf("after the retry the file holds %q", got)
	}
}

// TestFlushDiskFull fills a real filesystem while writing: the flush that
// does not fit returns Retry and leaves only whole lines; once space is
// freed the retried chunk lands exactly once.
func TestFlushDiskFull(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	dir := fbtest.MountTmpfs(t, "2m")
	path := filepath.Join(dir, "events.log")
	in, log := relInstance(t, proc, "rel-enospc", MapGetter{"path": path})
	pad := strings.Repeat("x", 100)
	if got := in.Flush(relRecords(0, 100, pad), "t"); got != OK {
		t.Fatalf("first flush = %v", got)
	}
	filler := fbtest.FillDisk(t, dir, 64<<10)
	big := relRecords(100, 3000, pad) // ~330 KB: more than the 64 KiB left
	errs := metricValue(t, proc, "flatstore_write_errors_total", "instance", "rel-enospc", "errno", "ENOSPC")
	for i := 0; i < 3; i++ {
		if got := in.Flush(big, "t"); got != Retry {
			t.Fatalf("flush %d on a full disk = %v, want Retry", i, got)
		}
		if got := fbtest.ReadText(t, path); got != relLines(0, 100, pad) {
			t.Fatalf("after ENOSPC the file holds %d bytes, want the %d of the first flush", len(got), len(relLines(0, 100, pad)))
		}
	}
	if !strings.Contains(log.String(), "(ENOSPC)") {
		t.Errorf("log does not name ENOSPC:\n%s", log)
	}
	if d := metricValue(t, proc, "flatstore_write_errors_total", "instance", "rel-enospc", "errno", "ENOSPC") - errs; d != 3 {
		t.Errorf("write_errors{errno=ENOSPC} grew by %v, want 3", d)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if got := in.Flush(big, "t"); got != OK {
		t.Fatalf("flush after freeing space = %v", got)
	}
	if got := fbtest.ReadText(t, path); got != relLines(0, 100, pad)+relLines(100, 3000, pad) {
		lines, rest := fbtest.SplitLines([]byte(got))
		t.Errorf("file holds %d lines (+%q), want 3100 exactly", len(lines), rest)
	}
}

// TestFlushPathBecomesDirectory: after a rotation the path is a directory;
// the flush returns Retry naming EISDIR, and writes again once it is gone.
func TestFlushPathBecomesDirectory(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "events.log")
	in, log := relInstance(t, proc, "rel-eisdir", MapGetter{"path": path})
	relWriteThenRotate(t, in, path)
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := in.Flush(relRecords(5, 5, "b"), "t"); got != Retry {
		t.Fatalf("flush into a directory = %v, want Retry", got)
	}
	if !strings.Contains(log.String(), "(EISDIR)") {
		t.Errorf("log does not name EISDIR:\n%s", log)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := in.Flush(relRecords(5, 5, "b"), "t"); got != OK {
		t.Fatalf("flush after the directory is gone = %v", got)
	}
	if got := fbtest.ReadText(t, path+".1"); got != relLines(0, 5, "a") {
		t.Errorf("rotated file holds %q", got)
	}
	if got := fbtest.ReadText(t, path); got != relLines(5, 5, "b") {
		t.Errorf("new file holds %q", got)
	}
}

// TestFlushBadPathDropsOnlyItsRecords: a rendered path that can never be
// written (here a directory) costs only the records bound for it: they are
// dropped and counted as bad_path, the log quotes the path and the errno,
// the other files get their lines, and the flush answers OK, so the engine
// does not send the chunk again.
func TestFlushBadPathDropsOnlyItsRecords(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	dir := t.TempDir()
	in, log := relInstance(t, proc, "rel-badpath", MapGetter{"path": filepath.Join(dir, "$file.log")})
	if err := os.Mkdir(filepath.Join(dir, "b.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	for i, file := range []string{"a", "b", "a", "b", "c"} {
		chunk = records.AppendRecord(chunk, records.Record{Body: records.KV{"event", "E", "file", file, "i", i}})
	}
	before := metricValue(t, proc, "flatstore_records_dropped_total", "instance", "rel-badpath", "reason", DropBadPath)
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("flush with b.log a directory = %v, want OK", got)
	}
	if got, want := fbtest.ReadText(t, filepath.Join(dir, "a.log")), "E,a,0\nE,a,2\n"; got != want {
		t.Errorf("a.log holds %q, want %q", got, want)
	}
	if got, want := fbtest.ReadText(t, filepath.Join(dir, "c.log")), "E,c,4\n"; got != want {
		t.Errorf("c.log holds %q, want %q", got, want)
	}
	if d := metricValue(t, proc, "flatstore_records_dropped_total", "instance", "rel-badpath", "reason", DropBadPath) - before; d != 2 {
		t.Errorf("dropped{reason=bad_path} grew by %v, want 2", d)
	}
	if want := fmt.Sprintf("dropped 2 record(s) (bad_path): open %q: is a directory (EISDIR)", filepath.Join(dir, "b.log")); !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

// TestFlushExactlyOnceAcrossFiles: a chunk over three files whose second
// fails with ENOSPC is answered RETRY, and what it wrote to the first is
// cut back: no file holds any of its lines. Another chunk meanwhile lands
// whole; the resend then writes every line, so each file holds each of its
// lines exactly once, in the order the chunks landed.
func TestFlushExactlyOnceAcrossFiles(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "rel-once", MapGetter{"path": filepath.Join(dir, "$file.log")})
	chunk := func(first int) []byte {
		var b []byte
		for i := 0; i < 30; i++ {
			b = records.AppendRecord(b, records.Record{Body: records.KV{"event", "E", "file", []string{"a", "b", "c"}[i%3], "i", first + i}})
		}
		return b
	}
	lines := func(file string, first int) string {
		var sb strings.Builder
		for i := 0; i < 30; i++ {
			if []string{"a", "b", "c"}[i%3] == file {
				fmt.Fprintf(&sb, "E,%s,%d\n", file, first+i)
			}
		}
		return sb.String()
	}
	fo.mu.Lock()
	fo.write = func(fd int, b []byte) (int, error) {
		if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); strings.HasSuffix(link, "/b.log") {
			return 0, unix.ENOSPC
		}
		return unix.Write(fd, b)
	}
	fo.mu.Unlock()
	c1 := chunk(0)
	for attempt := 0; attempt < 3; attempt++ {
		if got := in.Flush(c1, "t"); got != Retry {
			t.Fatalf("attempt %d with b.log on a full disk = %v, want Retry", attempt, got)
		}
	}
	// Another chunk while the first waits: written whole, the first's
	// memory untouched.
	fo.mu.Lock()
	fo.write = nil
	fo.mu.Unlock()
	c2 := chunk(100)
	if got := in.Flush(c2, "t"); got != OK {
		t.Fatalf("second chunk = %v", got)
	}
	for _, f := range []string{"a", "b", "c"} {
		if got := fbtest.ReadText(t, filepath.Join(dir, f+".log")); got != lines(f, 100) {
			t.Errorf("after the failed attempts and the second chunk, %s.log holds\n%q\nwant only the second chunk's\n%q", f, got, lines(f, 100))
		}
	}
	if got := in.Flush(c1, "t"); got != OK {
		t.Fatalf("resend with space back = %v", got)
	}
	for _, f := range []string{"a", "b", "c"} {
		want := lines(f, 100) + lines(f, 0)
		if got := fbtest.ReadText(t, filepath.Join(dir, f+".log")); got != want {
			t.Errorf("%s.log holds\n%q\nwant\n%q", f, got, want)
		}
	}
}

// TestFlushReadOnly: the filesystem (as root: a tmpfs remounted read-only;
// otherwise the directory made 0555) refuses the reopen after a rotation;
// the flush returns Retry naming the errno, and writes once it is fixed.
func TestFlushReadOnly(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	var dir, errno string
	var makeRO, makeRW func()
	if os.Geteuid() == 0 {
		dir = fbtest.MountTmpfs(t, "1m")
		errno = "EROFS"
		remount := func(mode string) {
			if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
				t.Fatalf("remount %s: %v: %s", mode, err, out)
			}
		}
		makeRO, makeRW = func() { remount("ro") }, func() { remount("rw") }
	} else {
		dir = t.TempDir()
		errno = "EACCES"
		makeRO = func() { os.Chmod(dir, 0o555) }
		makeRW = func() { os.Chmod(dir, 0o755) }
		t.Cleanup(makeRW)
	}
	path := filepath.Join(dir, "events.log")
	in, log := relInstance(t, proc, "rel-ro", MapGetter{"path": path})
	relWriteThenRotate(t, in, path)
	makeRO()
	for i := 0; i < 2; i++ {
		if got := in.Flush(relRecords(5, 5, "b"), "t"); got != Retry {
			t.Fatalf("flush on a read-only directory = %v, want Retry", got)
		}
	}
	if !strings.Contains(log.String(), "("+errno+")") {
		t.Errorf("log does not name %s:\n%s", errno, log)
	}
	makeRW()
	if got := in.Flush(relRecords(5, 5, "b"), "t"); got != OK {
		t.Fatalf("flush once writable = %v", got)
	}
	if got := fbtest.ReadText(t, path); got != relLines(5, 5, "b") {
		t.Errorf("file holds %q, want the retried chunk once", got)
	}
}

// TestFlushPanicRecovered: a panic inside Flush is recovered, logged with its
// stack and answered Retry; the next flush writes normally.
func TestFlushPanicRecovered(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	path := filepath.Join(t.TempDir(), "panic.log")
	in, log := relInstance(t, proc, "rel-panic", MapGetter{"path": path})
	var armed atomic.Bool
	armed.Store(true)
	in.panicHook = func() {
		if armed.CompareAndSwap(true, false) {
			panic("injected panic for the test")
		}
	}
	panics := metricValue(t, proc, "flatstore_flush_retries_total", "instance", "rel-panic", "cause", "panic")
	if got := in.Flush(relRecords(0, 3, "a"), "t"); got != Retry {
		t.Fatalf("flush that panicked = %v, want Retry", got)
	}
	out := log.String()
	for _, want := range []string{"panic in flush", "injected panic for the test", "goroutine ", "reliability_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if d := metricValue(t, proc, "flatstore_flush_retries_total", "instance", "rel-panic", "cause", "panic") - panics; d != 1 {
		t.Errorf("retries{cause=panic} grew by %v, want 1", d)
	}
	if got := in.Flush(relRecords(0, 3, "a"), "t"); got != OK {
		t.Fatalf("flush after the panic = %v", got)
	}
	if got := fbtest.ReadText(t, path); got != relLines(0, 3, "a") {
		t.Errorf("file holds %q", got)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// packageGoroutines returns the stacks of goroutines running code of this
// package, other than the test's own.
func packageGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "flatstore/flatstore.") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

// TestCloseWhileFlushing closes an instance while goroutines flush into
// several files: every flush answered OK is on disk whole, the others wrote
// nothing, and afterwards no goroutine of the package and no descriptor is
// left.
func TestCloseWhileFlushing(t *testing.T) {
	proc := newProc(t)
	if g := packageGoroutines(); len(g) > 0 {
		t.Fatalf("package goroutines before the test (a leak elsewhere?):\n%s", strings.Join(g, "\n\n"))
	}
	fdsBefore := countFDs(t)
	dir := t.TempDir()
	cfg, err := ParseConfig(MapGetter{"path": filepath.Join(dir, "$shard.log"), "control_listen": "off"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInstance(proc, cfg, "rel-close", logger.New("rel-close", logger.NewWriterSink(&relLog{}, logger.LevelDebug)))
	if err != nil {
		t.Fatal(err)
	}
	const workers, shards, per = 6, 4, 50
	var okFlushes [workers]int
	var wg sync.WaitGroup
	started := make(chan struct{}, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				var chunk []byte
				for r := 0; r < per; r++ {
					chunk = records.AppendRecord(chunk, records.Record{Body: records.KV{
						"event", "E_CLOSE", "shard", strconv.Itoa((w + i + r) % shards), "w", w, "i", i, "r", r,
						"pad", strings.Repeat("z", 200)}})
				}
				res := in.Flush(chunk, "t")
				if res != OK {
					if res != Retry {
						t.Errorf("worker %d: flush = %v", w, res)
					}
					return
				}
				okFlushes[w]++
				if i == 2 {
					started <- struct{}{}
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-started
	}
	in.Close()
	wg.Wait()
	in.Close() // idempotent

	total := 0
	for _, n := range okFlushes {
		total += n * per
	}
	lines := 0
	for s := 0; s < shards; s++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.log", s)))
		if err != nil {
			t.Fatal(err)
		}
		fbtest.AssertLinesTerminated(t, data)
		ls, _ := fbtest.SplitLines(data)
		for _, l := range ls {
			if !strings.HasPrefix(l, "E_CLOSE,") || !strings.HasSuffix(l, strings.Repeat("z", 200)) {
				t.Fatalf("torn line %q", l)
			}
		}
		lines += len(ls)
	}
	if lines != total {
		t.Errorf("%d lines on disk, %d records in flushes answered OK", lines, total)
	}
	// Goroutines that already returned may take a moment to leave the list.
	deadline := time.Now().Add(5 * time.Second)
	for len(packageGoroutines()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := packageGoroutines(); len(g) > 0 {
		t.Errorf("goroutines left after Close:\n%s", strings.Join(g, "\n\n"))
	}
	if n := countFDs(t); n != fdsBefore {
		t.Errorf("%d descriptors open after Close, %d before", n, fdsBefore)
	}
	if got := in.Flush(relRecords(0, 1, "late"), "t"); got != Retry {
		t.Errorf("flush after Close = %v, want Retry", got)
	}
}

// relWriteThenRotate writes five lines to path, then does what logrotate
// does: moves the file away (to path.1) and asks for a rotate.
func relWriteThenRotate(t *testing.T, in *Instance, path string) {
	t.Helper()
	if got := in.Flush(relRecords(0, 5, "a"), "t"); got != OK {
		t.Fatalf("first flush = %v", got)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := in.Rotate(path); err != nil {
		t.Fatal(err)
	}
}

// TestWriteErrorsLimitedPerReason: a template output whose 1 000 files all
// fail with ENOSPC logs a couple of lines, not one per path: warnings are
// rate-limited per output and reason. Every flush still answers Retry.
func TestWriteErrorsLimitedPerReason(t *testing.T) {
	t.Parallel()
	ops := filestore.RealSys()
	ops.Write = func(fd int, b []byte) (int, error) { return 0, unix.ENOSPC }
	proc, _ := usePool(t, newFakeClock(time.Unix(1800000000, 0)), ops)
	dir := t.TempDir()
	in, log := relInstance(t, proc, "rel-limited", MapGetter{"path": filepath.Join(dir, "$u.log")})
	var chunk []byte
	for u := 0; u < 1000; u++ {
		chunk = records.AppendRecord(chunk, records.Record{Time: time.Unix(1700000000, 0), Body: records.KV{"event", "E", "u", "u" + strconv.Itoa(u)}})
	}
	for i := 0; i < 5; i++ {
		if res := in.Flush(chunk, "t"); res != Retry {
			t.Fatalf("flush %d on a full disk = %v, want Retry", i, res)
		}
	}
	if n := strings.Count(log.String(), "(ENOSPC)"); n < 1 || n > 2 {
		t.Errorf("%d ENOSPC lines for 5 flushes of 1 000 paths, want 1 or 2 (rate-limited per reason):\n%.2000s", n, log.String())
	}
}

// TestFileWriteFaults injects errors and short writes into File.Write: an
// error leaves the file exactly as it was before the call (cut back after a
// partial write) and names its errno; short writes and EINTR are completed.
func TestFileWriteFaults(t *testing.T) {
	first := relLines(0, 3, "first")
	chunk := relLines(100, 50, strings.Repeat("p", 40))
	failN := func(errno unix.Errno) func(int, []byte) (int, error) {
		return func(int, []byte) (int, error) { return 0, errno }
	}
	// partial writes half of what it is given, then fails with errno.
	partial := func(errno unix.Errno) func(int, []byte) (int, error) {
		calls := 0
		return func(fd int, b []byte) (int, error) {
			calls++
			if calls == 1 {
				return unix.Write(fd, b[:len(b)/2])
			}
			return 0, errno
		}
	}
	cases := []struct {
		name    string
		write   func(int, []byte) (int, error)
		open    func(string, int, uint32) (int, error)
		wantErr string // errno name; "" for success
		cutTo   bool   // an ftruncate back to the old size is expected
	}{
		{"EIO", failN(unix.EIO), nil, "EIO", false},
		{"EDQUOT", failN(unix.EDQUOT), nil, "EDQUOT", false},
		{"EROFS", failN(unix.EROFS), nil, "EROFS", false},
		{"ENOSPC after a partial write", partial(unix.ENOSPC), nil, "ENOSPC", true},
		{"EIO after a partial write", partial(unix.EIO), nil, "EIO", true},
		{"zero-byte write without error", func(int, []byte) (int, error) { return 0, nil }, nil, "EIO", false},
		{"EMFILE on open", nil, func(string, int, uint32) (int, error) { return -1, unix.EMFILE }, "EMFILE", false},
		{"short writes", func(fd int, b []byte) (int, error) { return unix.Write(fd, b[:min(len(b), 7)]) }, nil, "", false},
		{"EINTR", func() func(int, []byte) (int, error) {
			n := 0
			return func(fd int, b []byte) (int, error) {
				if n++; n <= 3 {
					return 0, unix.EINTR
				}
				return unix.Write(fd, b)
			}
		}(), nil, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.log")
			fo := &faultOps{}
			f := soloFile(t, path, &filestore.Options{Perm: 0o644}, fo.ops())
			defer f.Close()
			if c.open == nil {
				// A first good write, so the file has something to cut back to.
				if err := writeLines(f, first); err != nil {
					t.Fatal(err)
				}
			}
			fo.mu.Lock()
			fo.write, fo.open, fo.writes = c.write, c.open, 0
			fo.mu.Unlock()
			err := writeLines(f, chunk)
			fo.mu.Lock()
			fo.write, fo.open = nil, nil
			writes, truncs := fo.writes, fo.truncs
			fo.mu.Unlock()

			before := first
			if c.open != nil {
				before = ""
			}
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Write: %v", err)
				}
				if got := fbtest.ReadText(t, path); got != before+chunk {
					t.Fatalf("file holds %d bytes, want %d: %q", len(got), len(before+chunk), got)
				}
				if writes < 2 {
					t.Errorf("%d write calls: the fault was not exercised", writes)
				}
				return
			}
			var we *filestore.FileError
			if !errors.As(err, &we) {
				t.Fatalf("Write error = %v, want a *filestore.FileError", err)
			}
			if !strings.Contains(err.Error(), "("+c.wantErr+")") || filestore.ErrnoName(err) != c.wantErr {
				t.Errorf("error %q (errno %s) does not name %s", err, filestore.ErrnoName(err), c.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
			if c.open != nil {
				if _, serr := os.Stat(path); !os.IsNotExist(serr) {
					t.Errorf("failed open left a file: %v", serr)
				}
			} else if got := fbtest.ReadText(t, path); got != before {
				t.Errorf("after the error the file holds %q, want %q", got, before)
			}
			if c.cutTo != (len(truncs) > 0) {
				t.Errorf("ftruncate calls %v, want a cut back: %v", truncs, c.cutTo)
			}
			for _, sz := range truncs {
				if sz != int64(len(before)) {
					t.Errorf("cut back to %d, want %d", sz, len(before))
				}
			}
			// The retry of the same lines lands whole, once.
			if err := writeLines(f, chunk); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := fbtest.ReadText(t, path); got != before+chunk {
				t.Errorf("after the retry the file holds %q, want %q", got, before+chunk)
			}
		})
	}
}

// TestFileSyncFailure: with sync flush, an fdatasync that fails makes the
// write fail; the lines it could not make durable are cut back, so the retry
// does not write them twice.
func TestFileSyncFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sync.log")
	fo := &faultOps{}
	f := soloFile(t, path, &filestore.Options{Perm: 0o644, Sync: true}, fo.ops())
	defer f.Close()
	first, chunk := relLines(0, 3, "a"), relLines(3, 3, "b")
	if err := writeLines(f, first); err != nil {
		t.Fatal(err)
	}
	fo.mu.Lock()
	fo.fdatasync = func(int) error { return unix.EIO }
	fo.mu.Unlock()
	err := writeLines(f, chunk)
	if err == nil || filestore.ErrnoName(err) != "EIO" || !strings.Contains(err.Error(), "fdatasync") {
		t.Fatalf("Write with a failing fdatasync: %v, want an fdatasync EIO error", err)
	}
	fo.mu.Lock()
	fo.fdatasync = nil
	fo.mu.Unlock()
	if err := writeLines(f, chunk); err != nil {
		t.Fatal(err)
	}
	if got := fbtest.ReadText(t, path); got != first+chunk {
		t.Errorf("after the retry the file holds %q, want %q", got, first+chunk)
	}
}

// TestFileCutBackFails: a partial write whose ftruncate also fails leaves
// a partial line; it is ended with a newline, the error says so, and the
// retried lines start on a line of their own in the reopened file.
func TestFileCutBackFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cut.log")
	fo := &faultOps{}
	f := soloFile(t, path, &filestore.Options{Perm: 0o644}, fo.ops())
	defer f.Close()
	first, chunk := relLines(0, 2, "a"), relLines(2, 4, "b")
	if err := writeLines(f, first); err != nil {
		t.Fatal(err)
	}
	calls := 0
	fo.mu.Lock()
	fo.write = func(fd int, b []byte) (int, error) {
		calls++
		switch calls {
		case 1:
			return unix.Write(fd, b[:5]) // a partial line
		case 2:
			return 0, unix.ENOSPC
		}
		return unix.Write(fd, b)
	}
	fo.ftruncate = func(int, int64) error { return unix.EIO }
	fo.mu.Unlock()
	err := writeLines(f, chunk)
	if err == nil || filestore.ErrnoName(err) != "ENOSPC" || !strings.Contains(err.Error(), "ended with a newline") {
		t.Fatalf("Write: %v, want ENOSPC saying the partial line was ended", err)
	}
	fo.mu.Lock()
	fo.write, fo.ftruncate = nil, nil
	fo.mu.Unlock()
	if err := writeLines(f, chunk); err != nil {
		t.Fatal(err)
	}
	want := first + chunk[:5] + "\n" + chunk
	if got := fbtest.ReadText(t, path); got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
}

// writeLines writes the lines of s to f as one flush would.
func writeLines(f *filestore.File, s string) error {
	data, ends := linesOf(s)
	_, _, err := f.Write(data, ends, nil)
	return err
}

// linesOf returns data and the end offset of each of its lines.
func linesOf(s string) ([]byte, []int) {
	var ends []int
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			ends = append(ends, i+1)
		}
	}
	return []byte(s), ends
}

// soloFile returns the File of path in a store of its own with the system
// calls sys, pinned for the whole test: the file's I/O alone, as a flush
// drives it.
func soloFile(t *testing.T, path string, opt *filestore.Options, sys *filestore.Sys) *filestore.File {
	t.Helper()
	s := filestore.New(filestore.Env{Sys: sys})
	f, err := s.Pin(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); s.Unpin(f) })
	return f
}
