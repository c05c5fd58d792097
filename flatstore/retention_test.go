package flatstore

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// These tests hold the retention and compression of rotated files (README: Rotation,
// retention.go) with bytes on disk: what is kept, what is compressed, what
// is never touched, and what a crash leaves.

// drained waits for the process's background jobs.
func drained(t *testing.T) { procFor(t).pool.arch.drain() }

// regularFiles lists dir's regular files, flatstore's state left out.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	out := dirFiles(t, dir) // skips the state directory
	sort.Strings(out)
	return out
}

// readManifest reads and verifies path's manifest as the plugin does.
func readManifest(t *testing.T, path string) manifest {
	t.Helper()
	sd := filepath.Join(filepath.Dir(path), stateDirName)
	key, err := os.ReadFile(filepath.Join(sd, keyName))
	if err != nil {
		t.Fatalf("the state directory has no key: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(sd, manifestName(path)))
	if err != nil {
		t.Fatalf("no manifest: %v", err)
	}
	m, err := decodeManifest(key, data, path)
	if err != nil {
		t.Fatalf("the manifest %s does not verify: %v", data, err)
	}
	return m
}

// 10 500 records, rotate_count 1000, rotate_max_files 3, compress gzip or
// zstd: the live file holds the last 500 records and three compressed files
// hold exactly the 3 000 before them; nothing else is left.
func TestRetentionCompress(t *testing.T) {
	for _, algo := range []string{CompressGzip, CompressZstd} {
		t.Run(algo, func(t *testing.T) {
			clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
			usePool(t, clk, nil)
			dir := t.TempDir()
			path := filepath.Join(dir, "ev.log")
			in := fsInstance(t, "path", path, "rotate_count", "1000", "rotate_max_files", "3", "compress", algo)
			for n := 0; n < 10500; n += 700 {
				mustFlush(t, in, evRecords("E", n, min(700, 10500-n)), "t")
				clk.Add(time.Second)
			}
			drained(t)
			files := regularFiles(t, dir)
			if len(files) != 4 {
				t.Fatalf("files %q, want the live file and 3 compressed ones", files)
			}
			if got := fbtest.ReadText(t, path); got != evLines("E", 10000, 500) {
				t.Errorf("the live file holds %d lines, want the last 500", strings.Count(got, "\n"))
			}
			var rotated []string
			for _, f := range files {
				if f != "ev.log" {
					if !strings.HasSuffix(f, compressedExt(algo)) {
						t.Errorf("%s is not compressed with %s", f, algo)
					}
					rotated = append(rotated, f)
				}
			}
			for i, f := range rotated { // the names sort as they were written
				if got := fbtest.ReadDecompressed(t, filepath.Join(dir, f)); got != evLines("E", 7000+1000*i, 1000) {
					t.Errorf("%s holds %d lines, not records %d..%d", f, strings.Count(got, "\n"), 7000+1000*i, 7999+1000*i)
				}
			}
			if m := readManifest(t, path); len(m.Rotated) != 3 {
				t.Errorf("manifest %+v, want the 3 files", m)
			}
			if n := metricValue(t, "flatstore_files_deleted_total", "reason", "max_files"); n != 7 {
				t.Errorf("files_deleted_total{max_files} = %v, want 7", n)
			}
		})
	}
}

// Retention deletes only the files its own path rotated: never another
// output's in the same directory, never a file that merely looks like a
// rotated one, never one an operator put in the place of one.
func TestRetentionOnlyOwnFiles(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	usePool(t, clk, nil)
	dir := t.TempDir()
	decoys := []string{"a.log.20200101-000000", "a.log.20200101-000000.gz", "a.log.1", "b.log.20200101-000000"}
	for _, d := range decoys {
		if err := os.WriteFile(filepath.Join(dir, d), []byte("decoy\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := fsInstance(t, "path", filepath.Join(dir, "a.log"), "rotate_count", "10", "rotate_max_files", "1")
	b := fsInstance(t, "path", filepath.Join(dir, "b.log"), "rotate_count", "10", "rotate_max_files", "100", "compress", "gzip")
	for i := 0; i < 5; i++ {
		mustFlush(t, b, evRecords("B", i*10, 10), "t")
		mustFlush(t, a, evRecords("A", i*10, 10), "t")
		clk.Add(time.Second)
	}
	drained(t)
	for _, d := range decoys {
		if got := fbtest.ReadText(t, filepath.Join(dir, d)); got != "decoy\n" {
			t.Errorf("decoy %s was touched: %q", d, got)
		}
	}
	var bFiles []string
	for _, f := range regularFiles(t, dir) {
		if strings.HasPrefix(f, "b.log.") && strings.HasSuffix(f, ".gz") {
			bFiles = append(bFiles, f)
		}
	}
	if len(bFiles) != 5 {
		t.Errorf("b's rotated files %q, want all 5, compressed", bFiles)
	}
	var aFiles []string
	for _, f := range regularFiles(t, dir) {
		if strings.HasPrefix(f, "a.log.2030") {
			aFiles = append(aFiles, f)
		}
	}
	if len(aFiles) != 1 || fbtest.ReadText(t, filepath.Join(dir, aFiles[0])) != evLines("A", 40, 10) {
		t.Fatalf("a's rotated files %q, want the newest only", aFiles)
	}
	// An operator replaces a's one rotated file by another; the next
	// rotation must not delete it.
	replaced := filepath.Join(dir, aFiles[0])
	if err := os.Remove(replaced); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(replaced, []byte("the operator's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, a, evRecords("A", 50, 10), "t")
	drained(t)
	if got := fbtest.ReadText(t, replaced); got != "the operator's\n" {
		t.Errorf("a file that replaced a rotated one was deleted or changed: %q", got)
	}
}

// rotate_max_age, applied by the maintenance loop, deletes the files
// rotated longer ago than that, and keeps the others.
func TestRetentionMaxAge(t *testing.T) {
	clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	p := usePool(t, clk, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, "path", path, "rotate_count", "10", "rotate_max_age", "1h", "idle_timeout", "0")
	mustFlush(t, in, evRecords("E", 0, 10), "t") // rotated at +0
	clk.Add(40 * time.Minute)
	mustFlush(t, in, evRecords("E", 10, 10), "t") // rotated at +40m
	clk.Add(30 * time.Minute)                     // +70m: the first is older than 1h
	p.tick()
	drained(t)
	aside := asideFiles(t, dir, "ev.log")
	if len(aside) != 1 || fbtest.ReadText(t, filepath.Join(dir, aside[0])) != evLines("E", 10, 10) {
		t.Errorf("after 70 minutes the series is %q, want the file rotated at +40m only", aside)
	}
	if n := metricValue(t, "flatstore_files_deleted_total", "reason", "max_age"); n != 1 {
		t.Errorf("files_deleted_total{max_age} = %v, want 1", n)
	}
}

// killAfter returns system calls that die, as a SIGKILL would, right after
// the first rename whose target match accepts: from then on every rename
// and unlink fails (EIO), so the disk keeps the manifest and the files as
// they were at that instant. killed reports whether it happened.
func killAfter(match func(newpath string) bool) (ops *sysOps, killed *atomic.Bool) {
	ops, killed = realOps(), new(atomic.Bool)
	rename := ops.renameat2
	ops.renameat2 = func(od int, op string, nd int, np string, flags uint) error {
		if killed.Load() {
			return unix.EIO
		}
		err := rename(od, op, nd, np, flags)
		if err == nil && match(np) {
			killed.Store(true)
		}
		return err
	}
	unlink := ops.unlinkat
	ops.unlinkat = func(d int, p string, flags int) error {
		if killed.Load() {
			return unix.EIO
		}
		return unlink(d, p, flags)
	}
	return ops, killed
}

// A kill between a rotation's rename aside and the manifest's confirmation
// leaves the rotated file and an intent: the next start confirms it,
// compresses it and keeps it under retention. (Without the intent the
// file was outside the manifest for ever, never compressed nor deleted.)
func TestRotateKillBetweenRenameAndConfirm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	kv := []string{"path", path, "rotate_count", "10", "rotate_max_files", "100"}
	t.Run("killed", func(t *testing.T) {
		ops, killed := killAfter(func(np string) bool { return strings.HasPrefix(np, path+".") })
		usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), ops)
		in := fsInstance(t, kv...)
		mustFlush(t, in, evRecords("E", 0, 10), "t") // the 10th line rotates
		if !killed.Load() {
			t.Fatal("no rotation was made")
		}
	})
	aside := asideFiles(t, dir, "ev.log")
	if len(aside) != 1 || fbtest.ReadText(t, filepath.Join(dir, aside[0])) != evLines("E", 0, 10) {
		t.Fatalf("after the kill the files are %q, want the rotated one", aside)
	}
	if m := readManifest(t, path); len(m.Rotated) != 1 || !m.Rotated[0].Pending || m.Rotated[0].Name != aside[0] {
		t.Fatalf("after the kill the manifest is %+v, want the intent alone", m)
	}
	t.Run("restarted", func(t *testing.T) {
		usePool(t, newFakeClock(time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)), nil)
		in := fsInstance(t, append(kv[:len(kv):len(kv)], "compress", "gzip")...)
		mustFlush(t, in, evRecords("E", 10, 1), "t")
		drained(t)
	})
	aside = asideFiles(t, dir, "ev.log")
	if len(aside) != 2 || aside[0] != filepath.Base(aside[0]) || !strings.HasSuffix(aside[0], ".gz") ||
		fbtest.ReadDecompressed(t, filepath.Join(dir, aside[0])) != evLines("E", 0, 10) {
		t.Fatalf("after the restart the files are %q, want the rotated one compressed and the live one", aside)
	}
	if m := readManifest(t, path); len(m.Rotated) != 1 || m.Rotated[0].Pending || m.Rotated[0].Name != aside[0] {
		t.Errorf("after the restart the manifest is %+v, want the compressed file confirmed", m)
	}
}

// What a crash leaves during a compression is finished or redone at the
// next start: a compressed file renamed into place (its identity recorded
// before the rename) means the original goes; a half compressed file in
// the state directory is removed and the file compressed again. No record
// is lost and no half file stays.
func TestCompressCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	kv := []string{"path", path, "rotate_count", "1000", "rotate_max_files", "100"}
	// A first life without compression leaves three rotated files and a
	// manifest that lists them uncompressed.
	t.Run("first", func(t *testing.T) {
		usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), nil)
		in := fsInstance(t, kv...)
		mustFlush(t, in, evRecords("E", 0, 3500), "t")
	})
	rotated := asideFiles(t, dir, "ev.log")[:3]
	// A second life compresses, and is killed right after the first
	// compressed file is renamed into place, before the manifest says so
	// and before the original is removed.
	t.Run("killed", func(t *testing.T) {
		ops, killed := killAfter(func(np string) bool { return strings.HasSuffix(np, ".gz") })
		usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 30, 0, 0, time.UTC)), ops)
		in := fsInstance(t, append(kv[:len(kv):len(kv)], "compress", "gzip")...)
		mustFlush(t, in, evRecords("E", 3500, 1), "t")
		drained(t)
		if !killed.Load() {
			t.Fatal("no compression was made")
		}
	})
	src0 := filepath.Join(dir, rotated[0])
	if !fileExists(src0) || !fileExists(src0+".gz") {
		t.Fatalf("the kill left %q, want the first file and its .gz", regularFiles(t, dir))
	}
	// And the second file's compression was cut off half way: a half file
	// in the state directory.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, rotated[1]), &st); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, stateDirName, strings.TrimSuffix(manifestName(path), ".json")+"."+strconv.FormatUint(st.Ino, 10)+".ztmp")
	if err := os.WriteFile(half, []byte("\x1f\x8b half"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("restarted", func(t *testing.T) {
		usePool(t, newFakeClock(time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)), nil)
		in := fsInstance(t, append(kv[:len(kv):len(kv)], "compress", "gzip")...)
		mustFlush(t, in, evRecords("E", 3501, 1), "t")
		drained(t)
	})
	var all strings.Builder
	for _, f := range regularFiles(t, dir) {
		switch {
		case f == "ev.log":
		case !strings.HasSuffix(f, ".gz"):
			t.Errorf("a rotated file is left uncompressed: %s", f)
		}
	}
	if fileExists(half) {
		t.Errorf("the half compressed file is left in the state directory")
	}
	for _, f := range asideFiles(t, dir, "ev.log") {
		all.WriteString(fbtest.ReadDecompressed(t, filepath.Join(dir, f)))
	}
	if got := all.String(); got != evLines("E", 0, 3502) {
		lines, _ := fbtest.SplitLines([]byte(got))
		t.Errorf("the series holds %d lines, want the 3502 records once each, in order", len(lines))
	}
	m := readManifest(t, path)
	n := 0
	for _, r := range m.Rotated {
		if r.Compressed == CompressGzip && r.Zip == nil && !r.Pending {
			n++
		}
	}
	if n != 3 || len(m.Rotated) != 3 {
		t.Errorf("manifest %+v: want the 3 files recorded compressed", m)
	}
}
