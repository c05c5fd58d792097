package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/internal/fbtest"
)

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
			f := newFile(path, &Options{Perm: 0o644}, fo.ops(), time.Now)
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
			var we *FileError
			if !errors.As(err, &we) {
				t.Fatalf("Write error = %v, want a *FileError", err)
			}
			if !strings.Contains(err.Error(), "("+c.wantErr+")") || ErrnoName(err) != c.wantErr {
				t.Errorf("error %q (errno %s) does not name %s", err, ErrnoName(err), c.wantErr)
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
	f := newFile(path, &Options{Perm: 0o644, Sync: true}, fo.ops(), time.Now)
	defer f.Close()
	first, chunk := relLines(0, 3, "a"), relLines(3, 3, "b")
	if err := writeLines(f, first); err != nil {
		t.Fatal(err)
	}
	fo.mu.Lock()
	fo.fdatasync = func(int) error { return unix.EIO }
	fo.mu.Unlock()
	err := writeLines(f, chunk)
	if err == nil || ErrnoName(err) != "EIO" || !strings.Contains(err.Error(), "fdatasync") {
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
	f := newFile(path, &Options{Perm: 0o644}, fo.ops(), time.Now)
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
	if err == nil || ErrnoName(err) != "ENOSPC" || !strings.Contains(err.Error(), "ended with a newline") {
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

func (f *faultOps) ops() *Sys {
	ops := *RealSys()
	return withSys(ops, Sys{
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
func withSys(o Sys, h Sys) *Sys {
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

// writeLines writes the lines of s to f as one flush would.
func writeLines(f *File, s string) error {
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

// relLines is n lines "E_REL,i,pad" from first on, as the output writes
// the records of the core's reliability tests.
func relLines(first, n int, pad string) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "E_REL,%d,%s\n", first+i, pad)
	}
	return sb.String()
}
