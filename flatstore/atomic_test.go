package flatstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Issue 21: a chunk lands whole or not at all, in every file it touches.
// When one file fails, what the flush wrote to the others is cut back
// before it answers Retry, so the resend writes every line once with no
// memory of the attempt.

// failOn makes every write to a file whose name ends with one of suffixes
// fail with ENOSPC while the returned function has not been called.
func failOn(fo *faultOps, suffixes ...string) (lift func()) {
	fo.mu.Lock()
	fo.write = func(fd int, b []byte) (int, error) {
		link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		for _, s := range suffixes {
			if strings.HasSuffix(link, s) {
				return 0, unix.ENOSPC
			}
		}
		return unix.Write(fd, b)
	}
	fo.mu.Unlock()
	return func() {
		fo.mu.Lock()
		fo.write = nil
		fo.mu.Unlock()
	}
}

// spread encodes records {"event":"E","f":files[i%len(files)],"i":first+i}.
func spread(files []string, first, n int) []byte {
	var b []byte
	for i := first; i < first+n; i++ {
		b = records.AppendRecord(b, records.Record{Time: time.Unix(1700000000, 0),
			Body: records.KV{"event", "E", "f", files[i%len(files)], "i", i}})
	}
	return b
}

// lineCount counts each line of every regular file in dir whose name
// starts with one of prefixes (a file and the files rotated from it),
// failing on a line without its newline.
func lineCount(t *testing.T, dir string, prefixes ...string) map[string]int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, e := range ents {
		if !e.Type().IsRegular() || !slicesHasPrefix(e.Name(), prefixes) {
			continue
		}
		data := fbtest.ReadDecompressed(t, filepath.Join(dir, e.Name()))
		if data != "" && !strings.HasSuffix(data, "\n") {
			t.Errorf("%s ends with a partial line: %q", e.Name(), data[max(0, len(data)-40):])
		}
		for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
			if l != "" {
				m[l]++
			}
		}
	}
	return m
}

func slicesHasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// wantOnce checks that counts holds exactly the lines of spread(files,
// first, n) for the given files, each once, plus extra.
func wantOnce(t *testing.T, what string, counts map[string]int, files []string, first, n int, extra map[string]int) {
	t.Helper()
	want := map[string]int{}
	for i := first; i < first+n; i++ {
		want[fmt.Sprintf("E,%s,%d", files[i%len(files)], i)]++
	}
	for l, k := range extra {
		want[l] += k
	}
	var wrong []string
	for l, k := range want {
		if counts[l] != k {
			wrong = append(wrong, fmt.Sprintf("%q=%d(want %d)", l, counts[l], k))
		}
	}
	for l, k := range counts {
		if _, ok := want[l]; !ok {
			wrong = append(wrong, fmt.Sprintf("%q=%d(want 0)", l, k))
		}
	}
	sort.Strings(wrong)
	if len(wrong) > 0 {
		t.Errorf("%s: %d lines wrong: %s", what, len(wrong), strings.Join(wrong[:min(10, len(wrong))], " "))
	}
}

// TestCutBackRotationInsideChunk: rotate_count splits a's group of the
// chunk over four files (three rotated aside inside the flush, one kept
// gzip-compressed once final); b fails, and the cut-back reaches every
// rotated-aside file: none holds a line of the chunk, and the compressed
// ones hold none either. The resend then writes each line once.
func TestCutBackRotationInsideChunk(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "cut-rot", MapGetter{"path": filepath.Join(dir, "$f.log"), "rotate_count": "5"})
	files := []string{"a", "b"}
	// Three lines in a.log first: the chunk's first rotation is of a file
	// that held lines before it.
	if got := in.Flush(spread([]string{"a"}, 1000, 3), "t"); got != OK {
		t.Fatalf("first flush = %v", got)
	}
	prior := map[string]int{"E,a,1000": 1, "E,a,1001": 1, "E,a,1002": 1}
	chunk := spread(files, 0, 24) // 12 lines for a: 2 + 5 + 5, three rotations
	lift := failOn(fo, "/b.log")
	for attempt := 0; attempt < 2; attempt++ {
		if got := in.Flush(chunk, "t"); got != Retry {
			t.Fatalf("attempt %d with b.log failing = %v, want Retry", attempt, got)
		}
		wantOnce(t, fmt.Sprintf("after attempt %d", attempt), lineCount(t, dir, "a.log", "b.log"), files, 0, 0, prior)
	}
	lift()
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("resend = %v", got)
	}
	wantOnce(t, "after the resend", lineCount(t, dir, "a.log", "b.log"), files, 0, 24, prior)
}

// TestCutBackRotationCompressed: as above with compress gzip: a rotated
// file is compressed only once the chunk's outcome is known, so no
// compressed file holds a line the cut-back removed, and the series'
// files hold each line once after the resend.
func TestCutBackRotationCompressed(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "cut-gz", MapGetter{"path": filepath.Join(dir, "$f.log"), "rotate_count": "5", "compress": "gzip"})
	files := []string{"a", "b"}
	chunk := spread(files, 0, 24)
	lift := failOn(fo, "/b.log")
	if got := in.Flush(chunk, "t"); got != Retry {
		t.Fatalf("flush with b.log failing = %v, want Retry", got)
	}
	proc.store.Drain()
	if got := gzLines(t, dir); len(got) != 0 {
		t.Errorf("after the cut-back, the compressed files hold %d lines: %q", len(got), got)
	}
	lift()
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("resend = %v", got)
	}
	proc.store.Drain()
	if len(gzLines(t, dir)) == 0 {
		t.Error("no compressed file holds a line: the test did not test compression")
	}
	// Every rotated file was compressed: the manifest recorded each one's
	// final identity (after the cut-back), not one the cut-back changed.
	if plain, _ := filepath.Glob(filepath.Join(dir, "a.log.2*[0-9]")); len(plain) > 0 {
		t.Errorf("rotated files left uncompressed: %q", plain)
	}
	wantOnce(t, "after the resend (plain and compressed)", lineCount(t, dir, "a.log", "b.log"), files, 0, 24, nil)
}

// gzLines returns the lines of every .gz file in dir.
func gzLines(t *testing.T, dir string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.gz"))
	var out []string
	for _, n := range names {
		for _, l := range strings.Split(strings.TrimSuffix(fbtest.ReadDecompressed(t, n), "\n"), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// TestCutBackMoreFilesThanSockets: max_open_sockets 2 and a chunk over five
// files: the flush closes the descriptors of files it wrote (still held) to
// open the next, and when the last fails, the cut-back reopens each by name
// and truncates it. With no failure the same chunk is answered OK at once.
func TestCutBackMoreFilesThanSockets(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "cut-socks", MapGetter{"path": filepath.Join(dir, "$f.log"), "max_open_sockets": "2"})
	files := []string{"a", "b", "c", "d", "e"}
	lift := failOn(fo, "/e.log")
	if got := in.Flush(spread(files, 0, 50), "t"); got != Retry {
		t.Fatalf("flush with e.log failing = %v, want Retry", got)
	}
	wantOnce(t, "after the failed attempt", lineCount(t, dir, "a", "b", "c", "d", "e"), files, 0, 0, nil)
	if n := proc.store.OpenCount(); n > 2 {
		t.Errorf("%d files open after the flush, max_open_sockets is 2", n)
	}
	lift()
	if got := in.Flush(spread(files, 0, 50), "t"); got != OK {
		t.Fatalf("resend = %v", got)
	}
	if got := in.Flush(spread(files, 100, 50), "t"); got != OK {
		t.Fatalf("another chunk over five files = %v", got)
	}
	counts := lineCount(t, dir, "a", "b", "c", "d", "e")
	extra := map[string]int{}
	for i := 100; i < 150; i++ {
		extra[fmt.Sprintf("E,%s,%d", files[i%5], i)]++
	}
	wantOnce(t, "after the resend and another chunk", counts, files, 0, 50, extra)
}

// TestCutBackThenAppend: after a cut-back, the next flush appends right
// after what the file held before the failed chunk (the File's size went
// back with its bytes): a holds the earlier chunk, then the later one, then
// the resend, byte for byte; rotate_size counts from the cut-back size.
func TestCutBackThenAppend(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "cut-append", MapGetter{"path": filepath.Join(dir, "$f.log"), "rotate_size": "1M"})
	ab := []string{"a", "b"}
	mustFlush(t, in, spread([]string{"a"}, 1000, 4), "t")
	lift := failOn(fo, "/b.log")
	if got := in.Flush(spread(ab, 0, 10), "t"); got != Retry {
		t.Fatalf("flush with b.log failing = %v, want Retry", got)
	}
	mustFlush(t, in, spread([]string{"a"}, 2000, 3), "t")
	lift()
	mustFlush(t, in, spread(ab, 0, 10), "t")
	want := "E,a,1000\nE,a,1001\nE,a,1002\nE,a,1003\nE,a,2000\nE,a,2001\nE,a,2002\nE,a,0\nE,a,2\nE,a,4\nE,a,6\nE,a,8\n"
	if got := fbtest.ReadText(t, filepath.Join(dir, "a.log")); got != want {
		t.Errorf("a.log holds\n%q\nwant\n%q", got, want)
	}
	if st := proc.store.Lookup(filepath.Join(dir, "a.log")); st != nil {
		if s := st.Status(); s.Bytes != uint64(len(want)) || s.Lines != 12 {
			t.Errorf("a.log's status counts %d lines, %d bytes; want 12, %d", s.Lines, s.Bytes, len(want))
		}
	}
}

// TestHeldFilesNoDeadlock: flushes over the same files in opposite record
// orders, with a small max_open_sockets, never wait for each other for
// ever (the files are held in the order of their paths), and every line
// lands once.
func TestHeldFilesNoDeadlock(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "cut-order", MapGetter{"path": filepath.Join(dir, "$f.log"), "max_open_sockets": "3"})
	fwd := []string{"a", "b", "c", "d"}
	rev := []string{"d", "c", "b", "a"}
	const workers, chunks = 4, 50
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files := fwd
			if w%2 == 1 {
				files = rev
			}
			for c := 0; c < chunks; c++ {
				first := (w*chunks + c) * 8
				for in.Flush(spread(files, first, 8), "t") != OK {
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("flushes over shared files did not finish: a deadlock")
	}
	counts := lineCount(t, dir, "a", "b", "c", "d")
	if len(counts) != workers*chunks*8 {
		t.Errorf("%d distinct lines, want %d", len(counts), workers*chunks*8)
	}
	for l, k := range counts {
		if k != 1 {
			t.Errorf("%q written %d times", l, k)
		}
	}
}

// TestCutBackOnPanic: a bug that panics while a chunk's second file is
// written answers Retry with the first file cut back and no file left
// locked: the resend lands every line once.
func TestCutBackOnPanic(t *testing.T) {
	t.Parallel()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	dir := t.TempDir()
	in, _ := relInstance(t, proc, "cut-panic", MapGetter{"path": filepath.Join(dir, "$f.log")})
	files := []string{"a", "b"}
	var once sync.Once
	fo.mu.Lock()
	fo.write = func(fd int, b []byte) (int, error) {
		if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); strings.HasSuffix(link, "/b.log") {
			once.Do(func() { panic("injected panic in b's write") })
		}
		return unix.Write(fd, b)
	}
	fo.mu.Unlock()
	if got := in.Flush(spread(files, 0, 10), "t"); got != Retry {
		t.Fatalf("flush that panicked = %v, want Retry", got)
	}
	wantOnce(t, "after the panic", lineCount(t, dir, "a.log", "b.log"), files, 0, 0, nil)
	done := make(chan Result)
	go func() { done <- in.Flush(spread(files, 0, 10), "t") }()
	select {
	case got := <-done:
		if got != OK {
			t.Fatalf("resend = %v", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the resend waits for ever: a file stayed locked after the panic")
	}
	wantOnce(t, "after the resend", lineCount(t, dir, "a.log", "b.log"), files, 0, 10, nil)
}
