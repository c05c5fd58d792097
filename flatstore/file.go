package flatstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// sysOps are the system calls a File makes; tests replace them to inject
// errors and short writes without touching the process.
type sysOps struct {
	open      func(path string, flags int, perm uint32) (int, error)
	write     func(fd int, b []byte) (int, error)
	ftruncate func(fd int, size int64) error
	fdatasync func(fd int) error
	close     func(fd int) error
}

var realOps = &sysOps{
	open:      unix.Open,
	write:     unix.Write,
	ftruncate: unix.Ftruncate,
	fdatasync: unix.Fdatasync,
	close:     unix.Close,
}

// fileOptions are the settings of the instance that first uses a path.
type fileOptions struct {
	perm         os.FileMode
	mkdir        bool
	sync         bool
	header       []byte // with its newline; nil for none
	suffix       string
	rotatePeriod time.Duration
	rotateCount  int64
	rotateSize   int64
	reopenCheck  time.Duration
	idleTimeout  time.Duration
	template     string // the template that rendered this path ("" for a static path)
}

// File is one event file: opened lazily, written under its lock with one
// write(2) per flush, cut back on error, rotated and reopened.
type File struct {
	path string
	opt  fileOptions
	sys  *sysOps
	now  func() time.Time
	pool *filePool // nil for a File used alone (tests)

	mu       sync.Mutex // serialises writes, opens, closes and rotations
	fd       int        // -1 when closed
	name     string     // the name actually open (path + suffix)
	size     int64      // bytes in the open file
	lines    int64      // lines written since it was opened
	period   int64      // rotate_period index of the open
	dev, ino uint64
	checked  time.Time // last reopen_check
	fresh    bool      // closed by a built-in rotation: the next open takes a new name

	// read without the lock
	lastWrite atomic.Int64 // unix nanos
	isOpen    atomic.Bool
	total     struct{ lines, bytes atomic.Uint64 }

	statMu     sync.Mutex
	lastRot    time.Time
	lastReason string

	// guarded by pool.mu
	pins int // flushes that reserved this file
	refs int // instances that configured this exact path
}

func newFile(path string, opt fileOptions, sys *sysOps, now func() time.Time) *File {
	return &File{path: path, opt: opt, sys: sys, now: now, fd: -1}
}

// writeError is a failed open, write or sync, with its errno.
type writeError struct {
	op, path string
	err      error
}

func (e *writeError) Error() string {
	var errno unix.Errno
	if errors.As(e.err, &errno) {
		return fmt.Sprintf("%s %s: %v (%s)", e.op, e.path, e.err, unix.ErrnoName(errno))
	}
	return fmt.Sprintf("%s %s: %v", e.op, e.path, e.err)
}

func (e *writeError) Unwrap() error { return e.err }

// errnoName is the name of the errno in err, for metrics.
func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return strconv.Itoa(int(errno))
	}
	return "other"
}

// Write appends data, whose lines end at the offsets in ends (each the
// index just past a line's '\n'), as one write(2) — or one per file when
// rotate_count or rotate_size splits it. On error, what this call wrote to
// the open file is cut back, and the error is returned. rotated receives
// every built-in rotation made.
func (f *File) Write(data []byte, ends []int) (rotations []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.fd >= 0 {
		if r := f.checkLocked(now); r != "" {
			rotations = append(rotations, r)
		}
	}
	start := 0
	for li := 0; li < len(ends); {
		if f.fd < 0 {
			if err := f.openLocked(now, f.fresh); err != nil {
				return rotations, err
			}
		}
		// How many lines go into this file: the line that reaches a limit
		// stays in it.
		k := len(ends) - li
		if c := f.opt.rotateCount; c > 0 {
			k = min(k, int(max(c-f.lines, 1)))
		}
		if s := f.opt.rotateSize; s > 0 {
			j := li
			for j < li+k-1 && f.size+int64(ends[j]-start) < s {
				j++
			}
			k = j - li + 1
		}
		end := ends[li+k-1]
		if err := f.writeLocked(data[start:end]); err != nil {
			return rotations, err
		}
		f.lines += int64(k)
		f.total.lines.Add(uint64(k))
		li += k
		start = end
		var reason string
		switch {
		case f.opt.rotateCount > 0 && f.lines >= f.opt.rotateCount:
			reason = ReasonCount
		case f.opt.rotateSize > 0 && f.size >= f.opt.rotateSize:
			reason = ReasonSize
		}
		if reason != "" {
			f.closeLocked(reason)
			rotations = append(rotations, reason)
		}
	}
	if f.opt.sync && f.fd >= 0 {
		if err := f.sys.fdatasync(f.fd); err != nil {
			return rotations, &writeError{"fdatasync", f.name, err}
		}
	}
	f.lastWrite.Store(now.UnixNano())
	return rotations, nil
}

// writeLocked writes b whole, looping on short writes; on error it cuts the
// file back to its size before the call.
func (f *File) writeLocked(b []byte) error {
	before := f.size
	done := 0
	for done < len(b) {
		n, err := f.sys.write(f.fd, b[done:])
		if n > 0 {
			done += n
		}
		if err == unix.EINTR || (err == nil && n > 0) {
			continue
		}
		if err == nil {
			err = unix.EIO // a zero-byte write that reports no error
		}
		werr := &writeError{"write", f.name, err}
		if done > 0 {
			if terr := f.sys.ftruncate(f.fd, before); terr != nil {
				// The file now ends with a partial line; close it so the
				// retry starts clean in a reopened file.
				f.closeLocked("")
				return fmt.Errorf("%w; cutting back to %d bytes failed: %v", werr, before, terr)
			}
		}
		return werr
	}
	f.size += int64(len(b))
	f.total.bytes.Add(uint64(len(b)))
	return nil
}

// openLocked opens the file, creating it with the exact mode. afterRotation
// gives a name that does not exist yet, so nothing is appended to or
// overwritten.
func (f *File) openLocked(now time.Time, afterRotation bool) error {
	name := f.path
	if f.opt.suffix != "" {
		name = string(appendStrftime([]byte(f.path), f.opt.suffix, now))
	}
	if f.opt.mkdir {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return &writeError{"mkdir", filepath.Dir(name), err}
		}
	}
	if afterRotation {
		base := name
		for i := 1; fileExists(name); i++ {
			name = base + "." + strconv.Itoa(i)
		}
	}
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC
	perm := uint32(f.opt.perm)
	var fd int
	var err error
	created := false
	for try := 0; ; try++ {
		fd, err = f.sys.open(name, flags|unix.O_CREAT|unix.O_EXCL, perm)
		if err == nil {
			created = true
			break
		}
		if err != unix.EEXIST || try > 3 {
			break
		}
		fd, err = f.sys.open(name, flags, 0)
		if err != unix.ENOENT { // removed in between: create it again
			break
		}
	}
	if err != nil {
		return &writeError{"open", name, err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.sys.close(fd)
		return &writeError{"fstat", name, err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		f.sys.close(fd)
		return &writeError{"open", name, unix.EISDIR}
	}
	if created && os.FileMode(st.Mode&0o777) != f.opt.perm {
		// The umask cut the mode: set exactly what was asked for.
		if err := unix.Fchmod(fd, perm); err != nil {
			f.sys.close(fd)
			return &writeError{"fchmod", name, err}
		}
	}
	f.fd, f.name, f.size, f.lines, f.fresh = fd, name, st.Size, 0, false
	f.dev, f.ino = uint64(st.Dev), uint64(st.Ino)
	f.checked = now
	if f.opt.rotatePeriod > 0 {
		f.period = now.Unix() / int64(f.opt.rotatePeriod/time.Second)
	}
	f.isOpen.Store(true)
	if f.size == 0 && f.opt.header != nil {
		if err := f.writeLocked(f.opt.header); err != nil {
			f.closeLocked("")
			return err
		}
	}
	return nil
}

func fileExists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// checkLocked applies rotate_period and reopen_check to the open file; it
// returns the reason of a rotation it made, or "".
func (f *File) checkLocked(now time.Time) string {
	if p := f.opt.rotatePeriod; p > 0 && now.Unix()/int64(p/time.Second) != f.period {
		f.closeLocked(ReasonPeriod)
		return ReasonPeriod
	}
	if rc := f.opt.reopenCheck; rc > 0 && now.Sub(f.checked) >= rc {
		f.checked = now
		var st unix.Stat_t
		err := unix.Stat(f.name, &st)
		if err != nil || uint64(st.Ino) != f.ino || uint64(st.Dev) != f.dev {
			f.closeLocked(ReasonReopenCheck)
			return ReasonReopenCheck
		}
	}
	return ""
}

// closeLocked closes the open file (fdatasync first with sync flush). A
// non-empty reason counts a rotation.
func (f *File) closeLocked(reason string) {
	if f.fd >= 0 {
		if f.opt.sync {
			_ = f.sys.fdatasync(f.fd)
		}
		_ = f.sys.close(f.fd)
		f.fd = -1
		f.isOpen.Store(false)
		if f.pool != nil {
			f.pool.closed(f)
		}
	}
	switch reason {
	case ReasonPeriod, ReasonCount, ReasonSize:
		f.fresh = true
	}
	if reason != "" {
		f.statMu.Lock()
		f.lastRot, f.lastReason = f.now(), reason
		f.statMu.Unlock()
		m.rotations.WithLabelValues(reason).Inc()
	}
}

// Rotate closes the file, waiting for a write in progress; the next write
// opens it again. It creates nothing.
func (f *File) Rotate(reason string) {
	f.mu.Lock()
	f.closeLocked(reason)
	f.mu.Unlock()
}

// Close closes the file without counting a rotation.
func (f *File) Close() { f.Rotate("") }

// maintain runs the timed checks on an idle file: idle_timeout,
// rotate_period and reopen_check. It never waits for a busy file.
func (f *File) maintain(now time.Time) {
	if !f.isOpen.Load() || !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	if f.fd < 0 {
		return
	}
	if it := f.opt.idleTimeout; it > 0 && now.UnixNano()-f.lastWrite.Load() >= int64(it) {
		f.closeLocked("")
		return
	}
	f.checkLocked(now)
}

// Status reports the file for the control endpoint.
func (f *File) Status() FileStatus {
	f.statMu.Lock()
	defer f.statMu.Unlock()
	return FileStatus{
		Path:         f.path,
		Open:         f.isOpen.Load(),
		Lines:        f.total.lines.Load(),
		Bytes:        f.total.bytes.Load(),
		LastRotation: f.lastRot,
		LastReason:   f.lastReason,
	}
}
