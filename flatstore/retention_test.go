package flatstore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// These tests hold the retention and compression of rotated files (docs/rotation.md,
// retention.go) with bytes on disk: what is kept, what is compressed, what
// is never touched, and what a crash leaves.

// drained waits for the process's background jobs.
func drained(proc *Process) { proc.store.Drain() }

// regularFiles lists dir's regular files, flatstore's state left out.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	out := dirFiles(t, dir) // skips the state directory
	sort.Strings(out)
	return out
}

// readManifest reads and verifies path's manifest as the plugin does.
func readManifest(t *testing.T, path string) filestore.Manifest {
	t.Helper()
	sd := filepath.Join(filepath.Dir(path), filestore.StateDirName)
	key, err := os.ReadFile(filepath.Join(sd, filestore.KeyName))
	if err != nil {
		t.Fatalf("the state directory has no key: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(sd, filestore.ManifestName(path)))
	if err != nil {
		t.Fatalf("no manifest: %v", err)
	}
	m, err := filestore.DecodeManifest(key, data, path)
	if err != nil {
		t.Fatalf("the manifest %s does not verify: %v", data, err)
	}
	return m
}

// 10 500 records, rotate_count 1000, rotate_max_files 3, compress gzip or
// zstd: the live file holds the last 500 records and three compressed files
// hold exactly the 3 000 before them; nothing else is left.
func TestRetentionCompress(t *testing.T) {
	t.Parallel()
	for _, algo := range []string{filestore.CompressGzip, filestore.CompressZstd} {
		t.Run(algo, func(t *testing.T) {
			clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
			proc, _ := usePool(t, clk, nil)
			dir := t.TempDir()
			path := filepath.Join(dir, "ev.log")
			in := fsInstance(t, proc, "path", path, "rotate_count", "1000", "rotate_max_files", "3", "compress", algo)
			for n := 0; n < 10500; n += 700 {
				mustFlush(t, in, evRecords("E", n, min(700, 10500-n)), "t")
				clk.Add(time.Second)
			}
			drained(proc)
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
					if !strings.HasSuffix(f, filestore.CompressedExt(algo)) {
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
			if n := metricValue(t, proc, "flatstore_files_deleted_total", "reason", "max_files"); n != 7 {
				t.Errorf("files_deleted_total{max_files} = %v, want 7", n)
			}
		})
	}
}

// Retention deletes only the files its own path rotated: never another
// output's in the same directory, never a file that merely looks like a
// rotated one, never one an operator put in the place of one.
func TestRetentionOnlyOwnFiles(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	proc, _ := usePool(t, clk, nil)
	dir := t.TempDir()
	decoys := []string{"a.log.20200101-000000", "a.log.20200101-000000.gz", "a.log.1", "b.log.20200101-000000"}
	for _, d := range decoys {
		if err := os.WriteFile(filepath.Join(dir, d), []byte("decoy\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := fsInstance(t, proc, "path", filepath.Join(dir, "a.log"), "rotate_count", "10", "rotate_max_files", "1")
	b := fsInstance(t, proc, "path", filepath.Join(dir, "b.log"), "rotate_count", "10", "rotate_max_files", "100", "compress", "gzip")
	for i := 0; i < 5; i++ {
		mustFlush(t, b, evRecords("B", i*10, 10), "t")
		mustFlush(t, a, evRecords("A", i*10, 10), "t")
		clk.Add(time.Second)
	}
	drained(proc)
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
	drained(proc)
	if got := fbtest.ReadText(t, replaced); got != "the operator's\n" {
		t.Errorf("a file that replaced a rotated one was deleted or changed: %q", got)
	}
}

// rotate_max_age, applied by the maintenance loop, deletes the files
// rotated longer ago than that, and keeps the others.
func TestRetentionMaxAge(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	proc, p := usePool(t, clk, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, proc, "path", path, "rotate_count", "10", "rotate_max_age", "1h", "idle_timeout", "0")
	mustFlush(t, in, evRecords("E", 0, 10), "t") // rotated at +0
	clk.Add(40 * time.Minute)
	mustFlush(t, in, evRecords("E", 10, 10), "t") // rotated at +40m
	clk.Add(30 * time.Minute)                     // +70m: the first is older than 1h
	p.Tick()
	drained(proc)
	aside := asideFiles(t, dir, "ev.log")
	if len(aside) != 1 || fbtest.ReadText(t, filepath.Join(dir, aside[0])) != evLines("E", 10, 10) {
		t.Errorf("after 70 minutes the series is %q, want the file rotated at +40m only", aside)
	}
	if n := metricValue(t, proc, "flatstore_files_deleted_total", "reason", "max_age"); n != 1 {
		t.Errorf("files_deleted_total{max_age} = %v, want 1", n)
	}
}

// killAfter returns system calls that die, as a SIGKILL would, right after
// the first rename whose target match accepts: from then on every rename
// and unlink fails (EIO), so the disk keeps the manifest and the files as
// they were at that instant. killed reports whether it happened.
func killAfter(match func(newpath string) bool) (ops *filestore.Sys, killed *atomic.Bool) {
	ops, killed = filestore.RealSys(), new(atomic.Bool)
	rename := ops.Renameat2
	ops.Renameat2 = func(od int, op string, nd int, np string, flags uint) error {
		if killed.Load() {
			return unix.EIO
		}
		err := rename(od, op, nd, np, flags)
		if err == nil && match(np) {
			killed.Store(true)
		}
		return err
	}
	unlink := ops.Unlinkat
	ops.Unlinkat = func(d int, p string, flags int) error {
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
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	kv := []string{"path", path, "rotate_count", "10", "rotate_max_files", "100"}
	t.Run("killed", func(t *testing.T) {
		ops, killed := killAfter(func(np string) bool { return strings.HasPrefix(np, path+".") })
		proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), ops)
		in := fsInstance(t, proc, kv...)
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
		proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)), nil)
		in := fsInstance(t, proc, append(kv[:len(kv):len(kv)], "compress", "gzip")...)
		mustFlush(t, in, evRecords("E", 10, 1), "t")
		drained(proc)
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
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	kv := []string{"path", path, "rotate_count", "1000", "rotate_max_files", "100"}
	// A first life without compression leaves three rotated files and a
	// manifest that lists them uncompressed.
	t.Run("first", func(t *testing.T) {
		proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), nil)
		in := fsInstance(t, proc, kv...)
		mustFlush(t, in, evRecords("E", 0, 3500), "t")
	})
	rotated := asideFiles(t, dir, "ev.log")[:3]
	// A second life compresses, and is killed right after the first
	// compressed file is renamed into place, before the manifest says so
	// and before the original is removed.
	t.Run("killed", func(t *testing.T) {
		ops, killed := killAfter(func(np string) bool { return strings.HasSuffix(np, ".gz") })
		proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 30, 0, 0, time.UTC)), ops)
		in := fsInstance(t, proc, append(kv[:len(kv):len(kv)], "compress", "gzip")...)
		mustFlush(t, in, evRecords("E", 3500, 1), "t")
		drained(proc)
		if !killed.Load() {
			t.Fatal("no compression was made")
		}
	})
	src0 := filepath.Join(dir, rotated[0])
	if !exists(src0) || !exists(src0+".gz") {
		t.Fatalf("the kill left %q, want the first file and its .gz", regularFiles(t, dir))
	}
	// And the second file's compression was cut off half way: a half file
	// in the state directory.
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, rotated[1]), &st); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, filestore.StateDirName, strings.TrimSuffix(filestore.ManifestName(path), ".json")+"."+strconv.FormatUint(st.Ino, 10)+".ztmp")
	if err := os.WriteFile(half, []byte("\x1f\x8b half"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("restarted", func(t *testing.T) {
		proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)), nil)
		in := fsInstance(t, proc, append(kv[:len(kv):len(kv)], "compress", "gzip")...)
		mustFlush(t, in, evRecords("E", 3501, 1), "t")
		drained(proc)
	})
	var all strings.Builder
	for _, f := range regularFiles(t, dir) {
		switch {
		case f == "ev.log":
		case !strings.HasSuffix(f, ".gz"):
			t.Errorf("a rotated file is left uncompressed: %s", f)
		}
	}
	if exists(half) {
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
		if r.Compressed == filestore.CompressGzip && r.Zip == nil && !r.Pending {
			n++
		}
	}
	if n != 3 || len(m.Rotated) != 3 {
		t.Errorf("manifest %+v: want the 3 files recorded compressed", m)
	}
}

// identOfFile is the identity of a file, as a manifest records it.
func identOfFile(t *testing.T, name string) filestore.FileIdent {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		t.Fatal(err)
	}
	return filestore.IdentOf(&st)
}

// writeManifest writes path's manifest with the entries given, signed with
// the state directory's key when sign is set (what only flatstore, or a
// bug of it, could do), else with a MAC of zeros.
func writeManifest(t *testing.T, path string, sign bool, entries []filestore.RotatedFile) {
	t.Helper()
	sd := filepath.Join(filepath.Dir(path), filestore.StateDirName)
	key := make([]byte, filestore.KeySize)
	if sign {
		var err error
		if key, err = os.ReadFile(filepath.Join(sd, filestore.KeyName)); err != nil {
			t.Fatal(err)
		}
	}
	data, err := filestore.EncodeManifest(key, filestore.Manifest{Path: path, Rotated: entries})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd, filestore.ManifestName(path)), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// forgeryEnv is the scene of a forgery: a log directory with a path that
// rotated once (so its state directory, key and manifest exist), decoy
// files beside it that flatstore did not rotate, and a victim tree outside.
type forgeryEnv struct {
	dir, path, victims string
	rotated            string // the one file flatstore rotated, full name
	entry              filestore.RotatedFile
}

func (e *forgeryEnv) victim(name string) string { return filepath.Join(e.victims, name) }

// ancient is a rotation time that rotate_max_age deletes at once, and the
// identity of name with it.
func ancient(t *testing.T, name, recorded string) filestore.RotatedFile {
	return filestore.RotatedFile{Name: recorded, FileIdent: identOfFile(t, name), At: 1, Reason: "count"}
}

// The forgeries of issue 19 and variants, each against retention
// (rotate_max_files 1, rotate_max_age 1h) and compression: whatever the
// manifest says, every file outside the set flatstore rotated — the victim
// tree outside the directory, and the decoys, links and other files in it
// — is left byte for byte, mode for mode, as it was.
func TestRetentionForgeries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		plant    func(t *testing.T, e *forgeryEnv)
		ops      func(e *forgeryEnv) *filestore.Sys
		compress bool
	}{
		{name: "traversal names, signed", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			writeManifest(t, e.path, true, []filestore.RotatedFile{
				ancient(t, e.victim("important.gz"), "../victim/important.gz"),
				ancient(t, e.victim("secret"), "ev.log.x/../../victim/secret"),
				ancient(t, e.dir, ".."), ancient(t, e.dir, "."),
				e.entry})
		}},
		{name: "absolute names, signed", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			writeManifest(t, e.path, true, []filestore.RotatedFile{
				ancient(t, e.victim("important.gz"), e.victim("important.gz")),
				ancient(t, e.victim("secret"), e.victim("secret")),
				e.entry})
		}},
		{name: "a local user's manifest without the MAC", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			writeManifest(t, e.path, false, []filestore.RotatedFile{ancient(t, filepath.Join(e.dir, "ev.log.decoy"), "ev.log.decoy"), e.entry})
		}},
		{name: "a local user's plain JSON", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			b, _ := json.Marshal(filestore.Manifest{Path: e.path, Rotated: []filestore.RotatedFile{ancient(t, filepath.Join(e.dir, "ev.log.decoy"), "ev.log.decoy")}})
			if err := os.WriteFile(filepath.Join(e.dir, filestore.StateDirName, filestore.ManifestName(e.path)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a line appended to a signed manifest", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			writeManifest(t, e.path, true, []filestore.RotatedFile{e.entry})
			b, _ := json.Marshal(filestore.Manifest{Path: e.path, Rotated: []filestore.RotatedFile{ancient(t, filepath.Join(e.dir, "ev.log.decoy"), "ev.log.decoy")}})
			f, err := os.OpenFile(filepath.Join(e.dir, filestore.StateDirName, filestore.ManifestName(e.path)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(append(b, '\n'))
			f.Close()
		}},
		{name: "the old manifest name", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			b, _ := json.Marshal(filestore.Manifest{Path: e.path, Rotated: []filestore.RotatedFile{
				ancient(t, e.victim("important.gz"), "../victim/important.gz"),
				ancient(t, filepath.Join(e.dir, "ev.log.decoy"), "ev.log.decoy")}})
			if err := os.WriteFile(filepath.Join(e.dir, ".ev.log.flatstore"), append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a hard link to a victim at a recorded name", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			// Even a signed entry with the victim's very identity: the
			// name has two links, so it is not a file flatstore rotated.
			if err := os.Link(e.victim("secret"), filepath.Join(e.dir, "ev.log.hardlink")); err != nil {
				t.Fatal(err)
			}
			writeManifest(t, e.path, true, []filestore.RotatedFile{ancient(t, e.victim("secret"), "ev.log.hardlink"), e.entry})
		}},
		{name: "the rotated file replaced by a hard link to a victim", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			os.Remove(e.rotated)
			if err := os.Link(e.victim("secret"), e.rotated); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "the rotated file replaced by a symlink to a victim", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			os.Remove(e.rotated)
			if err := os.Symlink(e.victim("secret"), e.rotated); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a symlink swapped in between the check and the unlink", ops: func(e *forgeryEnv) *filestore.Sys {
			ops := filestore.RealSys()
			unlink := ops.Unlinkat
			ops.Unlinkat = func(d int, p string, flags int) error {
				if filepath.Join(e.dir, p) == e.rotated {
					tmp := filepath.Join(e.dir, "swap")
					if err := os.Symlink(e.victim("secret"), tmp); err == nil {
						os.Rename(tmp, e.rotated)
					}
				}
				return unlink(d, p, flags)
			}
			return ops
		}},
		{name: "a symlink swapped in before compression unlinks the source", compress: true, ops: func(e *forgeryEnv) *filestore.Sys {
			ops := filestore.RealSys()
			unlink := ops.Unlinkat
			ops.Unlinkat = func(d int, p string, flags int) error {
				if strings.HasPrefix(p, "ev.log.") && !strings.HasSuffix(p, ".gz") {
					tmp := filepath.Join(e.dir, "swap")
					if err := os.Symlink(e.victim("secret"), tmp); err == nil {
						os.Rename(tmp, filepath.Join(e.dir, p))
					}
				}
				return unlink(d, p, flags)
			}
			return ops
		}},
		{name: "symlinks at the manifest's temporary names", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			for _, l := range []string{filepath.Join(e.dir, ".ev.log.flatstore.tmp"),
				filepath.Join(e.dir, filestore.StateDirName, filestore.ManifestName(e.path)+".tmp")} {
				if err := os.Symlink(e.victim("secret"), l); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "symlinks at the compressed file's names", compress: true, plant: func(t *testing.T, e *forgeryEnv) {
			for _, l := range []string{e.rotated + ".gz.tmp",
				filepath.Join(e.dir, filestore.StateDirName, strings.TrimSuffix(filestore.ManifestName(e.path), ".json")+"."+strconv.FormatUint(e.entry.Ino, 10)+".ztmp")} {
				if err := os.Symlink(e.victim("secret"), l); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			e := &forgeryEnv{dir: filepath.Join(root, "log"), victims: filepath.Join(root, "victim")}
			e.path = filepath.Join(e.dir, "ev.log")
			for _, d := range []string{e.dir, e.victims} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range []string{e.victim("important.gz"), e.victim("secret"), filepath.Join(e.dir, "ev.log.decoy")} {
				if err := os.WriteFile(v, []byte("keep me: "+v+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			kv := []string{"path", e.path, "rotate_count", "10", "rotate_max_files", "1", "rotate_max_age", "1h"}
			t.Run("first", func(t *testing.T) {
				proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), nil)
				mustFlush(t, fsInstance(t, proc, kv...), evRecords("E", 0, 10), "t")
			})
			m := readManifest(t, e.path)
			if len(m.Rotated) != 1 {
				t.Fatalf("manifest %+v, want one file", m)
			}
			e.entry = m.Rotated[0]
			e.rotated = filepath.Join(e.dir, e.entry.Name)
			if c.plant != nil {
				c.plant(t, e)
			}
			// Everything but the path's own files and the state.
			outside := func() string {
				sum := fbtest.TreeSum(t, e.victims)
				ents, _ := os.ReadDir(e.dir)
				for _, d := range ents {
					if n := d.Name(); n != "ev.log" && n != filestore.StateDirName && filepath.Join(e.dir, n) != e.rotated &&
						!strings.HasPrefix(n, "ev.log.2030") {
						sum += fbtest.TreeSum(t, filepath.Join(e.dir, n))
					}
				}
				return sum
			}
			before := outside()
			var ops *filestore.Sys
			if c.ops != nil {
				ops = c.ops(e)
			}
			kv2 := kv
			if c.compress {
				kv2 = append(kv[:len(kv):len(kv)], "compress", "gzip")
			}
			t.Run("second", func(t *testing.T) {
				clk := newFakeClock(time.Date(2030, 1, 2, 5, 4, 5, 0, time.UTC))
				proc, p := usePool(t, clk, ops)
				in := fsInstance(t, proc, kv2...)
				mustFlush(t, in, evRecords("E", 10, 20), "t") // two rotations: retention wants the first gone
				drained(proc)
				if after := outside(); after != before {
					t.Errorf("rotate_max_files: files outside the rotated set changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				// The path's own series still works: its newest rotated
				// file is there, whole.
				var newest string
				for _, f := range regularFiles(t, e.dir) {
					if strings.HasPrefix(f, "ev.log.2030") {
						newest = f
					}
				}
				if newest == "" || fbtest.ReadDecompressed(t, filepath.Join(e.dir, newest)) != evLines("E", 20, 10) {
					t.Errorf("the path's newest rotated file is %q, want records 20..29", newest)
				}
				clk.Add(2 * time.Hour) // rotate_max_age: everything recorded is old now
				p.Tick()
				drained(proc)
			})
			if after := outside(); after != before {
				t.Errorf("rotate_max_age: files outside the rotated set changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// Compression keeps the source's mode: a file rotated with
// file_permissions 0600 (or 0640) stays 0600 (0640) compressed.
func TestCompressKeepsMode(t *testing.T) {
	t.Parallel()
	for _, perm := range []os.FileMode{0o600, 0o640} {
		t.Run(perm.String(), func(t *testing.T) {
			proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), nil)
			dir := t.TempDir()
			path := filepath.Join(dir, "ev.log")
			in := fsInstance(t, proc, "path", path, "rotate_count", "10", "compress", "zstd", "file_permissions", fmt.Sprintf("%04o", perm))
			mustFlush(t, in, evRecords("E", 0, 10), "t")
			drained(proc)
			aside := asideFiles(t, dir, "ev.log")
			if len(aside) != 1 || !strings.HasSuffix(aside[0], ".zst") {
				t.Fatalf("files %q, want one compressed", aside)
			}
			fi, err := os.Stat(filepath.Join(dir, aside[0]))
			if err != nil || fi.Mode().Perm() != perm {
				t.Errorf("%s has mode %v (%v), want %v", aside[0], fi.Mode().Perm(), err, perm)
			}
		})
	}
}

// A state directory that is not the running user's private one — a
// symlink to another, group- or world-accessible, a file — is never used:
// nothing is written into it or where it points, and no rotated file is
// compressed or deleted (a warning says why).
func TestRetentionRefusesStateDir(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, dir, elsewhere string)
	}{
		{"symlink", func(t *testing.T, dir, elsewhere string) {
			if err := os.Symlink(elsewhere, filepath.Join(dir, filestore.StateDirName)); err != nil {
				t.Fatal(err)
			}
		}},
		{"mode 0777", func(t *testing.T, dir, elsewhere string) {
			if err := os.Mkdir(filepath.Join(dir, filestore.StateDirName), 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(dir, filestore.StateDirName), 0o777)
		}},
		{"a file", func(t *testing.T, dir, elsewhere string) {
			if err := os.WriteFile(filepath.Join(dir, filestore.StateDirName), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), nil)
			dir, elsewhere := t.TempDir(), t.TempDir()
			c.plant(t, dir, elsewhere)
			before := fbtest.TreeSum(t, elsewhere, filepath.Join(dir, filestore.StateDirName))
			in, log := relInstance(t, proc, "refuse", MapGetter{"path": filepath.Join(dir, "ev.log"), "rotate_count": "10",
				"rotate_max_files": "1", "compress": "gzip"})
			mustFlush(t, in, evRecords("E", 0, 30), "t")
			drained(proc)
			if after := fbtest.TreeSum(t, elsewhere, filepath.Join(dir, filestore.StateDirName)); after != before {
				t.Errorf("the refused state directory changed:\n%s\n%s", before, after)
			}
			var rotated []string
			for _, f := range regularFiles(t, dir) {
				if strings.HasPrefix(f, "ev.log.2030") {
					rotated = append(rotated, f)
					if fbtest.ReadText(t, filepath.Join(dir, f)) != evLines("E", 10*len(rotated)-10, 10) {
						t.Errorf("%s was changed", f)
					}
				}
			}
			if len(rotated) != 3 {
				t.Errorf("rotated files %q, want the three untouched (neither compressed nor deleted)", rotated)
			}
			if !strings.Contains(log.String(), "the files rotated there are neither compressed nor deleted") {
				t.Errorf("no warning:\n%s", log.String())
			}
		})
	}
}

// rotate_max_age trusts the monotonic clock, not the wall clock: a step of
// the wall clock 8 days ahead deletes nothing under rotate_max_age 7d —
// neither at once nor after a restart in the same boot — and the files go
// when 7 days have really passed since their rotation.
func TestRetentionMaxAgeClockStep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	kv := []string{"path", path, "rotate_count", "10", "rotate_max_age", "7d", "idle_timeout", "0"}
	clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	rotated := func() int { return len(asideFiles(t, dir, "ev.log")) }
	t.Run("first", func(t *testing.T) {
		proc, p := usePool(t, clk, nil)
		in := fsInstance(t, proc, kv...)
		mustFlush(t, in, evRecords("E", 0, 10), "t") // rotated at day 0
		clk.Add(2 * 24 * time.Hour)
		mustFlush(t, in, evRecords("E", 10, 10), "t") // rotated at day 2
		clk.Step(8 * 24 * time.Hour)                  // the wall clock jumps 8 days
		p.Tick()
		drained(proc)
		if n := rotated(); n != 2 {
			t.Fatalf("a wall-clock step of 8 days left %d of the 2 rotated files", n)
		}
	})
	t.Run("restarted in the same boot", func(t *testing.T) {
		proc, p := usePool(t, clk, nil)
		in := fsInstance(t, proc, kv...)
		mustFlush(t, in, evRecords("E", 20, 1), "t") // loads the manifest
		p.Tick()
		drained(proc)
		if n := rotated(); n != 2+1 {
			t.Fatalf("after a restart, the step deleted files: %d rotated left, want 2", n-1)
		}
		clk.Add(5*24*time.Hour + time.Minute) // day 7 of the first file really passed
		p.Tick()
		drained(proc)
		aside := asideFiles(t, dir, "ev.log")
		if len(aside) != 2 || fbtest.ReadText(t, filepath.Join(dir, aside[0])) != evLines("E", 10, 10) {
			t.Fatalf("after 7 real days the files are %q, want the second rotated file and the live one", aside)
		}
		clk.Add(2 * 24 * time.Hour)
		p.Tick()
		drained(proc)
		if n := rotated(); n != 1 {
			t.Fatalf("after 9 real days %d files are left, want the live one", n)
		}
	})
}

// rotate_period with the clock stepped a year ahead and back: the step
// ahead rotates once; the step back re-arms the period, so the next
// boundary the clock really crosses rotates again (not one a year later).
func TestRotatePeriodClockBack(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	proc, _ := usePool(t, clk, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, proc, "path", path, "rotate_period", "1h", "idle_timeout", "0")
	mustFlush(t, in, evRecords("E", 0, 1), "t")
	clk.Step(365 * 24 * time.Hour)
	mustFlush(t, in, evRecords("E", 1, 1), "t") // a new period: rotates
	clk.Step(-365 * 24 * time.Hour)
	mustFlush(t, in, evRecords("E", 2, 1), "t") // back: the same file
	if n := len(asideFiles(t, dir, "ev.log")); n != 2 {
		t.Fatalf("%d files after the step ahead and back, want 1 rotated and the live one", n)
	}
	clk.Add(time.Hour) // the next boundary
	mustFlush(t, in, evRecords("E", 3, 1), "t")
	aside := asideFiles(t, dir, "ev.log")
	// The names are the wall clock's: the file rotated after the step back
	// sorts first.
	if len(aside) != 3 || fbtest.ReadText(t, filepath.Join(dir, aside[0])) != evLines("E", 1, 2) ||
		fbtest.ReadText(t, filepath.Join(dir, aside[1])) != evLines("E", 0, 1) || fbtest.ReadText(t, path) != evLines("E", 3, 1) {
		t.Fatalf("after the next boundary the files are %q, want two rotated (E 0; E 1-2) and the live one with E 3", aside)
	}
}

// No rendered path reaches flatstore's state: a record whose value makes a
// component named .flatstore (in any case) is dropped as bad_path, in the
// last component or a directory, and the state directory is as it was.
func TestTemplateReservedStateName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The state directory of dir exists: a path there rotated once.
	proc, _ := usePool(t, newFakeClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)), nil)
	mustFlush(t, fsInstance(t, proc, "path", filepath.Join(dir, "a.log"), "rotate_count", "1", "rotate_max_files", "5"), evRecords("E", 0, 1), "t")
	drained(proc)
	state := fbtest.TreeSum(t, filepath.Join(dir, filestore.StateDirName))
	for k, tmpl := range []string{"$user", "$user/x.log", "$user.d/$user"} {
		in, _ := relInstance(t, proc, "reserved-"+tmpl, MapGetter{"path": filepath.Join(dir, tmpl), "mkdir": "true"})
		var chunk []byte
		users := []string{".flatstore", ".FlatStore", "ok" + strconv.Itoa(k)}
		for i, u := range users {
			chunk = records.AppendRecord(chunk, records.Record{Body: records.KV{"event", "E", "user", u, "i", i}})
		}
		if res := in.Flush(chunk, "t"); res != OK {
			t.Fatalf("%s: flush = %v, want OK", tmpl, res)
		}
		if d := metricValue(t, proc, "flatstore_records_dropped_total", "instance", "reserved-"+tmpl, "reason", DropBadPath); d != 2 {
			t.Errorf("%s: dropped{bad_path} = %v, want 2", tmpl, d)
		}
	}
	// Each new output made its own journal there (its delivery record,
	// docs/delivery.md); nothing else may have changed.
	got := fbtest.TreeSum(t, filepath.Join(dir, filestore.StateDirName))
	var kept []string
	for _, l := range strings.Split(got, "\n") {
		if !strings.Contains(l, "/journal-") || strings.Contains(state, l) {
			kept = append(kept, l)
		}
	}
	if got := strings.Join(kept, "\n"); got != state {
		t.Errorf("the state directory changed:\n%s\n%s", state, got)
	}
	if fbtest.ReadText(t, filepath.Join(dir, "ok0")) != "E,ok0,2\n" {
		t.Errorf("the good record did not land")
	}
}

// dayRecords is evRecords at noon UTC of day (2026-12-DD).
func dayRecords(ev string, day, first, n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = records.AppendRecord(b, records.Record{Time: time.Date(2026, 12, day, 12, 0, 0, 0, time.UTC),
			Body: records.KV{"event", ev, "n", first + i}})
	}
	return b
}

// TestRetentionStrftimePerDay: with the date in the path, rotation and
// retention are per rendered path: rotate_max_files 2 keeps two rotated
// files of each day's file (the 6th's rotations are not deleted to make
// room for the 7th's), compressed, each in its day's directory.
func TestRetentionStrftimePerDay(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	proc, _ := usePool(t, clk, nil)
	dir := t.TempDir()
	in := fsInstance(t, proc, "path", dir+"/%F/ev.log", "mkdir", "true",
		"rotate_count", "100", "rotate_max_files", "2", "compress", "gzip")
	mustFlush(t, in, dayRecords("E", 6, 0, 300), "t")
	mustFlush(t, in, dayRecords("E", 7, 300, 500), "t")
	drained(proc)
	for _, c := range []struct {
		day   string
		first int // the first record of the two files kept
	}{{"2026-12-06", 100}, {"2026-12-07", 600}} {
		files := regularFiles(t, filepath.Join(dir, c.day))
		if len(files) != 2 {
			t.Errorf("%s holds %q, want its two newest rotated files", c.day, files)
			continue
		}
		for i, f := range files {
			if got := fbtest.ReadDecompressed(t, filepath.Join(dir, c.day, f)); got != evLines("E", c.first+100*i, 100) {
				t.Errorf("%s/%s holds %d lines, not records %d..%d", c.day, f, strings.Count(got, "\n"), c.first+100*i, c.first+100*i+99)
			}
		}
	}
	if n := metricValue(t, proc, "flatstore_files_deleted_total", "reason", "max_files"); n != 4 {
		t.Errorf("files_deleted_total{max_files} = %v, want 4 (1 of the 6th, 3 of the 7th)", n)
	}
}
