package flatstore

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// Issue 21, part 2: a crash costs nothing. A process that dies between
// the write and the engine's acknowledgement leaves its chunk in the
// engine's storage, which replays it whole after the restart; the journal
// lets the new process write exactly what had not landed. A crash is a
// process abandoned in the middle of a flush (its write blocked for ever),
// the restart a new Process on the same directory.

// crashFlush starts a flush of chunk in a process of its own whose writes
// to files ending with suffix never return (the process "dies" there; when
// partial is set, half of that write lands first). It returns once the
// flush is stuck, or fails the test when it completes.
func crashFlush(t *testing.T, dir string, kv MapGetter, chunk []byte, suffix string, partial bool) {
	t.Helper()
	fo := &faultOps{}
	proc := useOps(t, fo.ops())
	cfg, err := ParseConfig(withControlOff(kv))
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInstance(proc, cfg, "crash", quiet())
	if err != nil {
		t.Fatal(err)
	}
	stuck, never := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(never) }) // the dead process's flush ends with the test
	fo.mu.Lock()
	fo.write = func(fd int, b []byte) (int, error) {
		if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); suffix != "" && strings.HasSuffix(link, suffix) {
			if partial {
				unix.Write(fd, b[:len(b)/2+1])
			}
			close(stuck)
			<-never
			return 0, unix.EIO
		}
		return unix.Write(fd, b)
	}
	fo.mu.Unlock()
	done := make(chan Result, 1)
	go func() { done <- in.Flush(chunk, "t") }()
	if suffix == "" {
		if r := <-done; r != OK {
			t.Fatalf("flush before the crash = %v", r)
		}
		return
	}
	select {
	case <-stuck:
	case r := <-done:
		t.Fatalf("the flush meant to die completed: %v", r)
	}
}

// quiet is a logger that discards.
func quiet() *logger.Logger {
	return logger.New("crash", logger.NewWriterSink(io.Discard, logger.LevelDebug))
}

func withControlOff(kv MapGetter) MapGetter {
	g := MapGetter{"control_listen": "off"}
	for k, v := range kv {
		g[k] = v
	}
	return g
}

// restart makes the output again in a new process (new journal epoch).
func restart(t *testing.T, kv MapGetter) (*Process, *Instance) {
	t.Helper()
	proc := newProc(t)
	cfg, err := ParseConfig(withControlOff(kv))
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInstance(proc, cfg, "crash", quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return proc, in
}

// TestReplayAfterCrash: the process dies while a chunk over a, b and c is
// written — after a's lines landed and before b's (and c's) — or after it
// answered OK; the engine replays the chunk whole to the next process,
// which writes only what had not landed: every line once. A torn write
// (half of b's bytes) is cut back and written whole.
func TestReplayAfterCrash(t *testing.T) {
	t.Parallel()
	files := []string{"a", "b", "c"}
	for _, c := range []struct {
		name    string
		suffix  string
		partial bool
		sync    string
	}{
		{"died before b", "/b.log", false, "none"},
		{"died inside b's write", "/b.log", true, "none"},
		{"died inside b's write, sync flush", "/b.log", true, "flush"},
		{"died after OK", "", false, "none"},
		{"died before a", "/a.log", false, "none"},
		{"died inside c's write", "/c.log", true, "none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			kv := MapGetter{"path": filepath.Join(dir, "$f.log"), "sync": c.sync}
			mustFlush(t, mustInstance(t, kv), spread(files, 1000, 6), "t") // lines before, in an earlier process
			chunk := spread(files, 0, 30)
			crashFlush(t, dir, kv, chunk, c.suffix, c.partial)
			_, in := restart(t, kv)
			if got := in.Flush(chunk, "t"); got != OK {
				t.Fatalf("replay = %v", got)
			}
			extra := map[string]int{}
			for i := 1000; i < 1006; i++ {
				extra["E,"+files[i%3]+","+strconv.Itoa(i)]++
			}
			wantOnce(t, "after the replay", lineCount(t, dir, "a.log", "b.log", "c.log"), files, 0, 30, extra)
			// A chunk with the same bytes after the replay is a new one:
			// the earlier process's account was used once.
			if got := in.Flush(chunk, "t"); got != OK {
				t.Fatalf("the same chunk again = %v", got)
			}
			counts := lineCount(t, dir, "a.log", "b.log", "c.log")
			for i := 0; i < 30; i++ {
				if l := "E," + files[i%3] + "," + strconv.Itoa(i); counts[l] != 2 {
					t.Errorf("after the same chunk again, %q is there %d times, want 2", l, counts[l])
					break
				}
			}
		})
	}
}

// mustInstance makes the output in a process of its own, closed at the end.
func mustInstance(t *testing.T, kv MapGetter) *Instance {
	t.Helper()
	_, in := restart(t, kv)
	return in
}

// TestReplayTwoCrashes: the process dies in the middle of the chunk, the
// next one dies in the middle of its replay (after b, before c), and the
// third replays it again: every line once. The second process's account
// covers what it skipped as well as what it wrote.
func TestReplayTwoCrashes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := []string{"a", "b", "c"}
	kv := MapGetter{"path": filepath.Join(dir, "$f.log")}
	chunk := spread(files, 0, 30)
	crashFlush(t, dir, kv, chunk, "/b.log", false)
	crashFlush(t, dir, kv, chunk, "/c.log", true)
	_, in := restart(t, kv)
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("replay = %v", got)
	}
	wantOnce(t, "after two crashes and the replay", lineCount(t, dir, "a.log", "b.log", "c.log"), files, 0, 30, nil)
}

// TestReplayRotatedAside: the chunk's lines for a landed in a file that
// rotate_count then set aside; the replay finds them there (by device and
// inode, under the rotated name) and does not write them again.
func TestReplayRotatedAside(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := []string{"a", "b"}
	kv := MapGetter{"path": filepath.Join(dir, "$f.log"), "rotate_count": "4"}
	chunk := spread(files, 0, 20) // 10 lines for a: 4 + 4 + 2 over three files
	crashFlush(t, dir, kv, chunk, "/b.log", false)
	_, in := restart(t, kv)
	if got := in.Flush(chunk, "t"); got != OK {
		t.Fatalf("replay = %v", got)
	}
	wantOnce(t, "after the replay", lineCount(t, dir, "a.log", "b.log"), files, 0, 20, nil)
}

// TestReplayNotInSameProcess: an output closed and made again in the same
// process (a configuration reload) does not take a chunk for a replay of
// what the first wrote: only a restart replays.
func TestReplayNotInSameProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	proc := newProc(t)
	kv := withControlOff(MapGetter{"path": filepath.Join(dir, "$f.log")})
	chunk := spread([]string{"a"}, 0, 3)
	for i := 0; i < 2; i++ {
		cfg, err := ParseConfig(kv)
		if err != nil {
			t.Fatal(err)
		}
		in, err := NewInstance(proc, cfg, "crash", quiet())
		if err != nil {
			t.Fatal(err)
		}
		mustFlush(t, in, chunk, "t")
		in.Close()
	}
	if got, want := fbtest.ReadText(t, filepath.Join(dir, "a.log")), "E,a,0\nE,a,1\nE,a,2\n"; got != want+want {
		t.Errorf("a.log = %q, want the chunk twice", got)
	}
}

// TestJournalPrivate: the journal is in the output's state directory,
// 0600 in a 0700 directory; a state directory that is not the running
// user's private one is not used (the output runs, without a journal).
func TestJournalPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustInstance(t, MapGetter{"path": filepath.Join(dir, "$f.log")})
	names, _ := filepath.Glob(filepath.Join(dir, filestore.StateDirName, "journal-*"))
	if len(names) != 1 {
		t.Fatalf("journals %q, want one", names)
	}
	st, err := os.Stat(names[0])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v (%v), want 0600", st.Mode(), err)
	}
	dir2 := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir2, filestore.StateDirName), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir2, filestore.StateDirName), 0o777)
	in := mustInstance(t, MapGetter{"path": filepath.Join(dir2, "x.log")})
	mustFlush(t, in, spread([]string{"a"}, 0, 1), "t")
	if names, _ := filepath.Glob(filepath.Join(dir2, filestore.StateDirName, "journal-*")); len(names) != 0 {
		t.Errorf("a journal was made in a state directory open to others: %q", names)
	}
	_ = time.Second
}

// TestSyncFlushFdatasyncs: under sync flush a flush over three files
// calls fdatasync once on each file and once on the journal, whose three
// intents that one call makes durable before the first byte they announce
// (issue 21, item 4: one fdatasync per file per flush, plus one for the
// journal). The lines land once.
func TestSyncFlushFdatasyncs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var mu sync.Mutex
	var calls []string // what each fdatasync was called on, in order
	var order []string // fdatasyncs and writes, in order
	name := func(fd int) string {
		l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		if strings.Contains(l, "/journal-") {
			return "journal"
		}
		return filepath.Base(l)
	}
	fo := &faultOps{}
	fo.fdatasync = func(fd int) error {
		mu.Lock()
		calls = append(calls, name(fd))
		order = append(order, "sync "+name(fd))
		mu.Unlock()
		return unix.Fdatasync(fd)
	}
	fo.write = func(fd int, b []byte) (int, error) {
		mu.Lock()
		order = append(order, "write "+name(fd))
		mu.Unlock()
		return unix.Write(fd, b)
	}
	proc := useOps(t, fo.ops())
	files := []string{"a", "b", "c"}
	in, _ := relInstance(t, proc, "sync", MapGetter{"path": filepath.Join(dir, "$f.log"), "sync": "flush"})
	for round := 0; round < 2; round++ { // the files are opened by the first, open at the second
		mu.Lock()
		calls, order = nil, nil
		mu.Unlock()
		if got := in.Flush(spread(files, round*30, 30), "t"); got != OK {
			t.Fatalf("flush %d = %v", round, got)
		}
		mu.Lock()
		sort.Strings(calls)
		if got, want := strings.Join(calls, " "), "a.log b.log c.log journal"; got != want {
			t.Errorf("flush %d: fdatasync on %q, want %q", round, got, want)
		}
		if len(order) == 0 || order[0] != "sync journal" {
			t.Errorf("flush %d: %q: the journal is not made durable before the first write", round, order)
		}
		mu.Unlock()
	}
	wantOnce(t, "after two flushes", lineCount(t, dir, "a.log", "b.log", "c.log"), files, 0, 60, nil)
}

// TestJournalMappingFault: the journal's file is cut short behind the
// process, so that a store into its mapping faults (SIGBUS). The flush
// does not crash: it cuts the chunk back and answers Retry, says so, and
// the journal goes on with pwrite: the retry lands, every line once.
func TestJournalMappingFault(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := []string{"a", "b"}
	in, log := relInstance(t, newProc(t), "fault", MapGetter{"path": filepath.Join(dir, "$f.log")})
	mustFlush(t, in, spread(files, 0, 10), "t")
	names, _ := filepath.Glob(filepath.Join(dir, filestore.StateDirName, "journal-*"))
	if len(names) != 1 {
		t.Fatalf("journals %q, want one", names)
	}
	if err := os.Truncate(names[0], 0); err != nil {
		t.Fatal(err)
	}
	chunk := spread(files, 10, 10)
	if got := in.Flush(chunk, "t"); got != Retry {
		t.Fatalf("flush into a journal cut short = %v, want Retry", got)
	}
	if !strings.Contains(log.String(), "faulted") {
		t.Errorf("log %q does not say the journal's mapping faulted", log.String())
	}
	mustFlush(t, in, chunk, "t")
	mustFlush(t, in, spread(files, 20, 10), "t")
	wantOnce(t, "after the fault", lineCount(t, dir, "a.log", "b.log"), files, 0, 30, nil)
	if st, err := os.Stat(names[0]); err != nil || st.Size() == 0 {
		t.Errorf("journal after the fault: %v %v, want records written with pwrite", st, err)
	}
}
