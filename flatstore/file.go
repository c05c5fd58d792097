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
	template     string  // the template that rendered this path ("" for a static path)
	log          *Logger // logs the rotations the maintenance goroutine makes; may be nil
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
	base     string    // path + suffix of the open, before any .1, .2…
	resume   bool      // closed by us (idle_timeout, exit): the next open continues name

	// read without the lock
	lastWrite atomic.Int64 // unix nanos
	isOpen    atomic.Bool  // changed under pool.mu when the File has a pool
	fresh     atomic.Bool  // closed by a built-in rotation: the next open takes a new name
	total     struct{ lines, bytes atomic.Uint64 }

	statMu     sync.Mutex
	lastRot    time.Time
	lastReason string

	// guarded by pool.mu
	pins int    // flushes that reserved this file
	refs int    // instances that configured this exact path
	slot bool   // counted in pool.slots
	mem  memory // the last file, as it was at its close
}

// memory is what a File knows of its last file after closing it. The pool
// keeps it for a path it forgets (a template path whose file closed), so
// that the File it makes next for that path goes on as this one would have.
type memory struct {
	name, base    string
	dev, ino      uint64
	size, lines   int64
	fresh, resume bool
}

// remember returns the memory of f; under f.mu.
func (f *File) remember() memory {
	return memory{f.name, f.base, f.dev, f.ino, f.size, f.lines, f.fresh.Load(), f.resume}
}

// recall restores a memory into a File nobody else uses yet.
func (f *File) recall(mm memory) {
	f.name, f.base, f.dev, f.ino, f.size, f.lines, f.resume = mm.name, mm.base, mm.dev, mm.ino, mm.size, mm.lines, mm.resume
	f.fresh.Store(mm.fresh)
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
// every built-in rotation made (reasons, in order).
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
	segBefore, segLines := int64(-1), 0 // the last write: the size before it, its lines
	for li := 0; li < len(ends); {
		if f.fd < 0 {
			r, err := f.openLocked(now)
			if r != "" {
				rotations = append(rotations, r)
			}
			if err != nil {
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
		segBefore, segLines = f.size, k
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
			// The lines may not be durable and the flush will be retried:
			// cut them back so that the retry does not write them twice.
			if segBefore >= 0 && f.sys.ftruncate(f.fd, segBefore) == nil {
				f.total.bytes.Add(-uint64(f.size - segBefore))
				f.total.lines.Add(-uint64(segLines))
				f.size, f.lines = segBefore, f.lines-int64(segLines)
			}
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
				// The file now ends with a partial line. End it with a
				// newline if the disk takes one more byte, so that the
				// retried lines are not glued onto it, and say so.
				ended := "could not be ended with a newline"
				if n, _ := f.sys.write(f.fd, []byte{'\n'}); n == 1 {
					ended = "was ended with a newline"
				}
				f.closeLocked("")
				return fmt.Errorf("%w; cutting back to %d bytes failed (%v): the file holds a partial line, which %s", werr, before, terr, ended)
			}
		}
		return werr
	}
	f.size += int64(len(b))
	f.total.bytes.Add(uint64(len(b)))
	return nil
}

// openLocked opens the file at path+suffix, creating it with the exact
// mode. After a built-in rotation (f.fresh) it takes a name that does not
// exist yet, so nothing is appended to or overwritten. An existing file that
// is already full — rotate_size reached, or last written in an earlier
// rotate_period — is not appended to either: that is a rotation, whose
// reason is returned.
func (f *File) openLocked(now time.Time) (rotated string, err error) {
	fresh := f.fresh.Load()
	for {
		fd, base, name, st, created, err := f.openName(now, fresh)
		if err != nil {
			return rotated, err
		}
		if !created && !fresh {
			if reason := f.fullLocked(&st, now); reason != "" {
				f.sys.close(fd)
				f.countRotation(reason)
				rotated, fresh = reason, true
				continue // the next name is created, so this loops once
			}
		}
		if !(uint64(st.Dev) == f.dev && uint64(st.Ino) == f.ino && name == f.name && st.Size == f.size) {
			// rotate_count counts the lines written since the open, and
			// on across a close and reopen of the very same file.
			f.lines = 0
		}
		f.fd, f.name, f.base, f.size = fd, name, base, st.Size
		f.fresh.Store(false)
		f.resume = false
		f.dev, f.ino = uint64(st.Dev), uint64(st.Ino)
		f.checked = now
		if f.opt.rotatePeriod > 0 {
			f.period = f.periodOf(now)
		}
		if f.pool != nil {
			f.pool.opened(f)
		} else {
			f.isOpen.Store(true)
		}
		if f.size == 0 && f.opt.header != nil {
			if err := f.writeLocked(f.opt.header); err != nil {
				f.closeLocked("")
				return rotated, err
			}
		}
		return rotated, nil
	}
}

// openName opens name: base (path + suffix for now); with fresh, the
// first of base, base.1, base.2… that does not exist; after a close of our
// own (idle_timeout, exit), the very file that was open when its base is
// the same and nobody moved it. It reports whether this call created it.
func (f *File) openName(now time.Time, fresh bool) (fd int, base, name string, st unix.Stat_t, created bool, err error) {
	base = f.path
	if f.opt.suffix != "" {
		base = string(appendStrftime([]byte(f.path), f.opt.suffix, now))
	}
	name = base
	if f.opt.mkdir {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return -1, base, name, st, false, &writeError{"mkdir", filepath.Dir(name), err}
		}
	}
	switch {
	case fresh:
		for i := 1; fileExists(name); i++ {
			name = base + "." + strconv.Itoa(i)
		}
	case f.resume && base == f.base && f.name != base:
		var last unix.Stat_t
		if unix.Stat(f.name, &last) == nil && uint64(last.Dev) == f.dev && uint64(last.Ino) == f.ino {
			name = f.name
		}
	}
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC
	perm := uint32(f.opt.perm)
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
		return -1, base, name, st, false, &writeError{"open", name, err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		f.sys.close(fd)
		return -1, base, name, st, false, &writeError{"fstat", name, err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		f.sys.close(fd)
		return -1, base, name, st, false, &writeError{"open", name, unix.EISDIR}
	}
	if created && os.FileMode(st.Mode&0o777) != f.opt.perm {
		// The umask cut the mode: set exactly what was asked for.
		if err := unix.Fchmod(fd, perm); err != nil {
			f.sys.close(fd)
			return -1, base, name, st, false, &writeError{"fchmod", name, err}
		}
	}
	return fd, base, name, st, created, nil
}

// fullLocked tells why an existing file must not be appended to: its size
// already reached rotate_size, or it was last written in an earlier
// rotate_period (closed by idle_timeout, a restart, or a template path
// forgotten in between: the boundary is not skipped).
func (f *File) fullLocked(st *unix.Stat_t, now time.Time) string {
	if s := f.opt.rotateSize; s > 0 && st.Size >= s {
		return ReasonSize
	}
	if f.opt.rotatePeriod > 0 && st.Size > 0 && f.periodOf(time.Unix(st.Mtim.Unix())) < f.periodOf(now) {
		return ReasonPeriod
	}
	return ""
}

// periodOf is the rotate_period index of t: periods are aligned to the epoch.
func (f *File) periodOf(t time.Time) int64 {
	p := int64(f.opt.rotatePeriod / time.Second)
	q := t.Unix() / p
	if t.Unix() < 0 && t.Unix()%p != 0 {
		q--
	}
	return q
}

func fileExists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// checkLocked applies rotate_period and reopen_check to the open file; it
// returns the reason of a rotation it made, or "".
func (f *File) checkLocked(now time.Time) string {
	// A period only moves forward: a clock stepped back does not rotate.
	if f.opt.rotatePeriod > 0 && f.periodOf(now) > f.period {
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
		switch reason {
		case ReasonPeriod, ReasonCount, ReasonSize:
			f.fresh.Store(true)
		case "":
			f.resume = true
		}
		if f.pool != nil {
			f.pool.closed(f, f.remember())
		} else {
			f.isOpen.Store(false)
		}
	}
	if reason != "" {
		f.countRotation(reason)
	}
}

// countRotation records a rotation of name for Status and the metrics.
func (f *File) countRotation(reason string) {
	f.statMu.Lock()
	f.lastRot, f.lastReason = f.now(), reason
	f.statMu.Unlock()
	m.rotations.WithLabelValues(reason).Inc()
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
// rotate_period and reopen_check. It never waits for a busy file: a file
// being written is checked by that write, or at the next tick. The clock is
// read under the lock, so a check never uses a time older than the open.
func (f *File) maintain() {
	if !f.isOpen.Load() || !f.mu.TryLock() {
		return
	}
	defer f.mu.Unlock()
	if f.fd < 0 {
		return
	}
	now := f.now()
	if it := f.opt.idleTimeout; it > 0 && now.UnixNano()-f.lastWrite.Load() >= int64(it) {
		f.closeLocked("")
		return
	}
	name := f.name
	if r := f.checkLocked(now); r != "" {
		f.opt.log.Infof("rotated %s (%s)", name, r)
	}
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
