package filestore

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/logger"
)

// Options are how the files of one output are written: the settings of
// the output that first uses a path. Two outputs may share a path only when
// their Format is equal (Store.Pin refuses the others).
type Options struct {
	Perm        os.FileMode // a new file's mode, exact whatever the umask
	Mkdir       bool        // create missing parent directories (0755)
	Sync        bool        // fdatasync before a write returns
	Header      []byte      // written first into every new empty file, with its newline; nil for none
	Rotate      RotateOptions
	Archive     ArchiveOptions
	IdleTimeout time.Duration // close a file not written for this long (0: never)
	// Template is the template that rendered this path ("" for a
	// configured path) and Root its static directory, beneath which the
	// rendered part is resolved.
	Template, Root string
	// Format names the settings that shape the file's bytes; two outputs
	// may share a file only when theirs are equal.
	Format string
	Log    *logger.Logger // logs what the maintenance goroutine does; may be nil
}

// Counter is told what the store does on its own, for the metrics: every
// rotation by its reason, every rotated file retention deletes by its
// reason (max_files, max_age).
type Counter interface {
	Rotated(reason string)
	Deleted(reason string)
	OpenFiles(n int) // the files holding a slot now, after each change
}

// slotKeeper is how a File takes and gives back its place among the
// process's open files (the pool, pool.go).
type slotKeeper interface {
	// takeSlot gives f a slot of set (the writing output's) before it opens,
	// closing that output's least recently used idle file when none is
	// free; ErrNoSlot when every slot of set is held by a write in
	// progress.
	takeSlot(f *File, set *Slots) error
	// opened reports a handle opened on the file id; an error refuses it
	// (the file is another output's). slotFreed reports a handle closed (or
	// an open that failed after takeSlot); mem is what f knows of its last
	// file.
	opened(f *File, id devIno) error
	slotFreed(f *File, mem memory)
}

// Slots is one output's share of descriptors: max_open_sockets bounds it
// alone. Its fields are guarded by the slotKeeper's lock.
type Slots struct {
	limit int        // 0: no limit
	lru   *list.List // *File holding a slot of this output, least recently used first
}

// NewSlots returns the slots of an output that may keep limit files open
// at once (0: no limit): its max_open_sockets.
func NewSlots(limit int) *Slots { return &Slots{limit: limit, lru: list.New()} }

// devIno is a file's identity.
type devIno struct{ dev, ino uint64 }

// ErrNoSlot: every slot of the output's max_open_sockets is held by a write
// in progress.
var ErrNoSlot = errors.New("no more free sockets: every file of max_open_sockets is being written")

// File is one event file path: opened lazily, written under its lock with
// one write(2) per flush, cut back on error, rotated and reopened.
type File struct {
	path   string
	opt    *Options
	sys    *Sys
	open   opener
	now    func() time.Time
	slots  slotKeeper // nil for a File used alone (tests): no limit
	count  Counter    // may be nil
	series *series    // the files rotated from this path, with retention or compression; may be nil

	// mu serialises writes, opens, closes and rotations, and guards fd, cur
	// and rot.
	mu  sync.Mutex
	fd  int    // -1 when closed
	cur fileID // the file open now; after a close, the one that was
	rot policy // when to rotate and what the next file is called
	// movedAt is when reopen_check first found the open file moved (zero:
	// not moved): it reopens only at a check moveGrace later.
	movedAt time.Time
	// While held (Hold … Commit or Abort): what the hold appended and the
	// series' work of its rotations, done once those bytes are final.
	held  bool
	segs  []segment
	after []func()
	// plan is the intent Prepare journaled for the hold's first write.
	plan plan

	// Read without mu.
	lastWrite atomic.Int64 // unix nanos of the last write
	isOpen    atomic.Bool  // changed under the pool's lock when the File has one
	moved     atomic.Bool  // the last reopen was reopen_check's: no rotate call came
	total     struct{ lines, bytes atomic.Uint64 }

	// statMu guards the last rotation, for Status.
	statMu     sync.Mutex
	lastRot    time.Time
	lastReason string

	// Guarded by the pool's lock (pool.go).
	pins     int           // flushes that pinned this file
	refs     int           // instances that configured this exact path
	evicting bool          // chosen to be closed for another file's slot
	set      *Slots        // the output whose slot this File holds (nil: none)
	elem     *list.Element // in set's LRU list while it holds a slot (nil: none)
	id       devIno        // the open file's identity, in the pool's byID
	mem      memory        // the last file, as it was at its close
}

// memory is what a File knows of its last file after closing it. The pool
// keeps it for a path it forgets (a template path whose file closed), so
// that the File it makes next for that path goes on as this one would have.
type memory struct {
	cur fileID
	rot policy
}

func newFile(path string, opt *Options, sys *Sys, now func() time.Time) *File {
	return &File{path: path, opt: opt, sys: sys, now: now, fd: -1, rot: policy{opt: opt.Rotate},
		open: opener{sys: sys, perm: uint32(opt.Perm), mkdir: opt.Mkdir, root: opt.Root}}
}

// recall restores a memory into a File nobody else uses yet: where the last
// file is and how far its rotation got, under this File's options (those of
// the output that uses the path now).
func (f *File) recall(mm memory) {
	mm.rot.opt = f.rot.opt
	f.cur, f.rot = mm.cur, mm.rot
}

// Rotation is one rotation a write made: its reason, the file it closed,
// the name that file has now (renamed aside when the path has no suffix)
// and the name the next lines go to.
type Rotation struct{ reason, name, to, next string }

// String says what the rotation did, for the log.
func (r Rotation) String() string {
	if r.to != r.name {
		return fmt.Sprintf("rotated %q (%s): now %q; the next lines go to %q", r.name, r.reason, r.to, r.next)
	}
	return fmt.Sprintf("rotated %q (%s): the next lines go to %q", r.name, r.reason, r.next)
}

// Write appends data, whose lines end at the offsets in ends (each the
// index just past a line's '\n'), as one write(2) — or one per file when
// rotate_count or rotate_size splits it. set is the writing output's slots
// (max_open_sockets). It is Hold, Append, then Commit — or Abort on error:
// the call lands whole or not at all, in every file it touched (a rotation
// inside it included), and written is then 0.
func (f *File) Write(data []byte, ends []int, set *Slots) (written int, rots []Rotation, err error) {
	f.Hold()
	written, rots, err = f.Append(data, ends, set, nil)
	if err != nil {
		if cerr := f.Abort(); cerr != nil {
			err = fmt.Errorf("%w; %v", err, cerr)
		}
		return 0, rots, err
	}
	f.Commit()
	return written, rots, nil
}

// segment is a run of bytes one held File appended to one file, as the
// cut-back of Abort needs it: where the file is (its name now: a rotation
// may have renamed it aside), which file it is, and its size before.
type segment struct {
	name     string
	dev, ino uint64
	before   int64
	bytes    int64
	lines    int
}

// Hold locks f for one chunk's appends: nothing else writes, rotates nor
// closes it until Commit or Abort, so what the chunk appended can be cut
// back exactly. A flush that holds several Files takes them in the order
// of their paths (package doc: the lock order).
func (f *File) Hold() {
	f.mu.Lock()
	f.held = true
	f.segs = f.segs[:0]
	f.plan = plan{}
}

// plan is an intent journaled ahead of its write (Prepare): the bytes
// [start, end) of the group, at off of the file dev/ino; rec is the
// record's index among the attempt's.
type plan struct {
	ok         bool
	dev, ino   uint64
	off        int64
	start, end int
	rec        int
}

// Prepare readies a held File for Append(data, ends, set, gi), data's
// lines ending at ends: it makes the checks and the open Append would
// make first and journals the intent of Append's first write. A flush
// over several files prepares them all before it appends to any, so that
// under sync flush one fdatasync of the journal makes every intent
// durable before the first byte they announce (Append makes it). An
// error is left for Append to meet again; the rotations made are
// returned.
func (f *File) Prepare(ends []int, set *Slots, gi *GroupIntent) (rots []Rotation) {
	if gi == nil || gi.Tx.j == nil || len(ends) == 0 {
		return nil
	}
	now := f.now()
	if f.fd >= 0 {
		if r := f.checkLocked(now); r.reason != "" {
			rots = append(rots, r)
		}
	}
	if f.fd < 0 {
		r, err := f.openLocked(now, set, gi)
		if r.reason != "" {
			rots = append(rots, r)
		}
		if err != nil {
			return rots
		}
	}
	end := ends[f.rot.linesFitting(ends, 0, 0, f.cur.size)-1]
	f.plan = plan{ok: true, dev: f.cur.dev, ino: f.cur.ino, off: f.cur.size, start: gi.Base, end: gi.Base + end, rec: len(gi.Tx.mine)}
	gi.Tx.add(recIntent, gi.Path, gi.Base, end, f.cur.dev, f.cur.ino, f.cur.size)
	return rots
}

// Append is Write's work on a held File: on error, the write that failed
// is cut back, and what this hold appended before it stays until Abort.
// written counts the lines appended. With gi, each write is journaled
// before it is made (with sync flush, made durable first), and a torn write
// an earlier process left at the end of a file it opens is cut back.
func (f *File) Append(data []byte, ends []int, set *Slots, gi *GroupIntent) (written int, rots []Rotation, err error) {
	now := f.now()
	if f.fd >= 0 && !f.plan.ok {
		// (Prepare made the checks.)
		if r := f.checkLocked(now); r.reason != "" {
			rots = append(rots, r)
		}
	}
	start := 0
	for li := 0; li < len(ends); {
		if f.fd < 0 {
			r, err := f.openLocked(now, set, gi)
			if r.reason != "" {
				rots = append(rots, r)
			}
			if err != nil {
				return written, rots, err
			}
		}
		k := f.rot.linesFitting(ends, li, start, f.cur.size)
		end := ends[li+k-1]
		before := f.cur.size
		if gi != nil && gi.Tx.j != nil {
			if p := f.plan; p.ok && (p.dev != f.cur.dev || p.ino != f.cur.ino || p.off != before || p.start != gi.Base+start || p.end != gi.Base+end) {
				// Not the write Prepare announced: its intent is void.
				gi.Tx.abortRec(p.rec)
				f.plan.ok = false
			}
			if !f.plan.ok {
				gi.Tx.add(recIntent, gi.Path, gi.Base+start, end-start, f.cur.dev, f.cur.ino, before)
			}
			f.plan.ok = false
			if f.opt.Sync {
				// Every intent journaled so far (the flush's other
				// files' too) is on disk before any byte it announces.
				if err := gi.Tx.sync(); err != nil {
					return written, rots, err
				}
			}
		}
		if err := f.writeLocked(data[start:end]); err != nil {
			return written, rots, err
		}
		f.noteSegment(before, k)
		written += k
		f.total.lines.Add(uint64(k))
		li += k
		start = end
		if reason := f.rot.wrote(k, f.cur.size); reason != "" {
			r := f.rotateLocked(reason, now)
			if n := len(f.segs); n > 0 {
				f.segs[n-1].name = r.to // the cut-back finds it there
			}
			rots = append(rots, r)
		}
	}
	if f.opt.Sync && f.fd >= 0 && len(ends) > 0 {
		if err := f.sys.Fdatasync(f.fd); err != nil {
			return written, rots, &FileError{"fdatasync", f.cur.name, err}
		}
	}
	f.lastWrite.Store(now.UnixNano())
	return written, rots, nil
}

// noteSegment records that the open file, of size before, took lines
// more lines.
func (f *File) noteSegment(before int64, lines int) {
	if n := len(f.segs); n > 0 && f.segs[n-1].dev == f.cur.dev && f.segs[n-1].ino == f.cur.ino {
		f.segs[n-1].lines += lines
		f.segs[n-1].bytes += f.cur.size - before
		return
	}
	f.segs = append(f.segs, segment{name: f.cur.name, dev: f.cur.dev, ino: f.cur.ino, before: before,
		bytes: f.cur.size - before, lines: lines})
}

// CloseHeld closes the descriptor of a held File, keeping it held, and
// gives back its slot: a flush that needs more files than max_open_sockets
// frees a slot this way for its next file. Abort reopens the file by name
// to cut it back. It reports whether there was a descriptor to close.
func (f *File) CloseHeld() bool {
	if f.fd < 0 {
		return false
	}
	f.closeLocked("")
	return true
}

// Commit ends a hold whose appends are to stay: the rotations it made are
// recorded for retention and compression now that their files are final,
// and f is unlocked.
func (f *File) Commit() {
	f.segs = f.segs[:0]
	f.endHoldLocked()
	f.mu.Unlock()
}

// Abort ends a hold by cutting back every byte it appended, in every file
// (the open one through its descriptor; one a rotation or CloseHeld closed
// by reopening its name, without following a link, once its device and
// inode are checked), then unlocks f. Nothing else can have appended after
// those bytes: the hold kept f locked. An error says which file could not
// be cut back (it then holds lines that the retry writes again).
func (f *File) Abort() error {
	var errs []error
	for i := len(f.segs) - 1; i >= 0; i-- {
		sg := f.segs[i]
		if err := f.cutBackLocked(sg); err != nil {
			errs = append(errs, err)
			continue
		}
		if f.cur.dev == sg.dev && f.cur.ino == sg.ino {
			// The file open now (or closed by CloseHeld): its size and
			// rotate_count go back with its bytes.
			f.cur.size = sg.before
			f.rot.lines = max(f.rot.lines-int64(sg.lines), 0)
		}
		f.total.lines.Add(-uint64(sg.lines))
		f.total.bytes.Add(-uint64(sg.bytes))
	}
	f.segs = f.segs[:0]
	f.endHoldLocked()
	f.mu.Unlock()
	return errors.Join(errs...)
}

// cutBackLocked truncates the file of sg back to its size before.
func (f *File) cutBackLocked(sg segment) error {
	if f.fd >= 0 && f.cur.dev == sg.dev && f.cur.ino == sg.ino {
		if err := f.sys.Ftruncate(f.fd, sg.before); err != nil {
			return &FileError{"ftruncate", f.cur.name, err}
		}
		return nil
	}
	fd, err := f.sys.Open(sg.name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return &FileError{"open to cut back", sg.name, err}
	}
	defer f.sys.Close(fd)
	var st unix.Stat_t
	if err := f.sys.Fstat(fd, &st); err != nil {
		return &FileError{"fstat", sg.name, err}
	}
	if !sameFile(&st, sg.dev, sg.ino) || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &FileError{"cut back", sg.name, errors.New("no longer the file that was written")}
	}
	if err := f.sys.Ftruncate(fd, sg.before); err != nil {
		return &FileError{"ftruncate", sg.name, err}
	}
	if f.opt.Sync {
		_ = f.sys.Fdatasync(fd)
	}
	return nil
}

// endHoldLocked runs what the hold's rotations left for after it.
func (f *File) endHoldLocked() {
	f.held = false
	after := f.after
	f.after = f.after[:0]
	for _, fn := range after {
		fn()
	}
	clear(after)
}

// writeLocked writes b whole, looping on short writes; on error it cuts the
// file back to its size before the call.
func (f *File) writeLocked(b []byte) error {
	before := f.cur.size
	done := 0
	for done < len(b) {
		n, err := f.sys.Write(f.fd, b[done:])
		if n > 0 {
			done += n
		}
		if err == unix.EINTR || (err == nil && n > 0) {
			continue
		}
		if err == nil {
			err = unix.EIO // a zero-byte write that reports no error
		}
		werr := &FileError{"write", f.cur.name, err}
		if done > 0 {
			if terr := f.sys.Ftruncate(f.fd, before); terr != nil {
				// The file now ends with a partial line. End it with a
				// newline if the disk takes one more byte, so that the
				// retried lines are not glued onto it, and say so.
				ended := "could not be ended with a newline"
				if n, _ := f.sys.Write(f.fd, []byte{'\n'}); n == 1 {
					ended = "was ended with a newline"
				}
				f.closeLocked("")
				return fmt.Errorf("%w; cutting back to %d bytes failed (%v): the file holds a partial line, which %s", werr, before, terr, ended)
			}
		}
		return werr
	}
	f.cur.size += int64(len(b))
	f.total.bytes.Add(uint64(len(b)))
	return nil
}

// openLocked takes a slot and opens the file the rotation names. An
// existing file that is already full — rotate_size reached, or last written
// in an earlier rotate_period — is not appended to: that is a rotation,
// which is returned.
func (f *File) openLocked(now time.Time, set *Slots, gi *GroupIntent) (Rotation, error) {
	if f.slots != nil {
		if err := f.slots.takeSlot(f, set); err != nil {
			return Rotation{}, err
		}
	}
	var rot Rotation
	// Both continues below set rot.fresh, which they test first: this
	// loops at most twice.
	for {
		base, name := f.rot.pickName(f.path, now, f.cur, f.taken, stillAt)
		if !f.rot.fresh && f.series != nil && f.series.recorded(name) {
			f.rot.fresh = true // rotated before: never written to again
			continue
		}
		if rot.reason != "" {
			rot.next = name // after a rotation of a full file: where the lines go
		}
		fd, st, created, err := f.open.open(name)
		if err != nil {
			f.giveBackSlot()
			return rot, err
		}
		if gi != nil && !created {
			gi.Tx.resolveTorn(fd, &st, f.sys, f.opt.Log, name)
		}
		if !created && !f.rot.fresh {
			if reason := f.rot.full(&st, now); reason != "" {
				// An existing file already full: that is a rotation.
				f.sys.Close(fd)
				f.countRotation(reason)
				f.rot.noteClose(reason)
				rot = Rotation{reason: reason, name: name}
				rot.to = f.setAsideLocked(name, reason, now, fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)})
				continue // the next name is a fresh one
			}
		}
		if f.slots != nil {
			if err := f.slots.opened(f, devIno{uint64(st.Dev), uint64(st.Ino)}); err != nil {
				f.sys.Close(fd)
				f.giveBackSlot()
				return rot, &FileError{"open", name, err}
			}
		}
		continued := f.cur.sameAs(name, &st)
		f.fd = fd
		f.cur = fileID{name: name, dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size}
		f.rot.opened(base, now, continued)
		if f.slots == nil {
			f.isOpen.Store(true)
		}
		if f.cur.size == 0 && f.opt.Header != nil {
			if err := f.writeLocked(f.opt.Header); err != nil {
				f.closeLocked("")
				return rot, err
			}
		}
		return rot, nil
	}
}

// giveBackSlot gives back a slot taken for an open that failed.
func (f *File) giveBackSlot() {
	if f.slots != nil {
		f.slots.slotFreed(f, f.remember())
	}
}

// remember returns the memory of f; under f.mu.
func (f *File) remember() memory { return memory{cur: f.cur, rot: f.rot} }

// taken reports whether a new file must not take name: it exists, or it
// was rotated (and maybe compressed) before.
func (f *File) taken(name string) bool {
	return fileExists(name) || f.series != nil && f.series.taken(name)
}

// rotateLocked makes a built-in rotation of the open file.
func (f *File) rotateLocked(reason string, now time.Time) Rotation {
	r := Rotation{reason: reason, name: f.cur.name}
	f.closeLocked(reason)
	r.to = f.setAsideLocked(r.name, reason, now, f.cur)
	r.next = f.nextName(now)
	return r
}

// setAsideLocked handles a file a built-in rotation closed (id: its device
// and inode, from its descriptor): renamed aside when the path has no
// suffix (the live file keeps the path's name), and recorded for retention
// and compression. The rename is recorded in the manifest before it is
// made and confirmed after (retention.go), so a crash in between leaves
// nothing unknown. It returns the file's name now.
func (f *File) setAsideLocked(name, reason string, now time.Time, id fileID) string {
	if f.rot.opt.Suffix == "" && name == f.path {
		to := f.rot.asideName(f.path, now, f.taken)
		intended := f.series != nil && f.series.intend(to, id.dev, id.ino, reason)
		err := renameNoReplace(f.sys.Renameat2, unix.AT_FDCWD, name, unix.AT_FDCWD, to)
		if intended {
			// Under a hold, the file's identity is recorded and its
			// compression queued once the hold's bytes are final.
			f.afterHold(func() { f.series.confirm(to, err == nil) })
		}
		if err != nil {
			// The next file takes path.1 instead (a fresh name); this one,
			// under the live file's name, is not retention's to delete.
			f.opt.Log.LimitedWarnf("aside", "rotation: cannot rename %q to %q: %v", name, to, ErrnoOf(err))
			return name
		}
		return to
	}
	if f.series != nil {
		f.afterHold(func() { f.series.add(name, reason) })
	}
	return name
}

// afterHold runs fn now, or at the end of the hold when f is held.
func (f *File) afterHold(fn func()) {
	if f.held {
		f.after = append(f.after, fn)
		return
	}
	fn()
}

// nextName is the name the next open would take now.
func (f *File) nextName(now time.Time) string {
	_, name := f.rot.pickName(f.path, now, f.cur, f.taken, stillAt)
	return name
}

// stillAt reports whether name still holds the file id.
func stillAt(name string, id fileID) bool {
	var st unix.Stat_t
	return unix.Stat(name, &st) == nil && sameFile(&st, id.dev, id.ino)
}

// moveGrace is how long reopen_check waits, after it first sees a move,
// before it takes it for one without a rotate call: logrotate calls rotate
// right after its mv.
const moveGrace = time.Second

// checkLocked applies rotate_period and reopen_check to the open file; it
// returns the rotation it made, if any.
func (f *File) checkLocked(now time.Time) Rotation {
	name := f.cur.name
	if f.rot.periodEnded(now) {
		return f.rotateLocked(ReasonPeriod, now)
	}
	if !f.rot.reopenDue(now) {
		return Rotation{}
	}
	if stillAt(name, f.cur) {
		f.movedAt = time.Time{}
		return Rotation{}
	}
	grace := min(moveGrace, f.rot.opt.ReopenCheck)
	if f.movedAt.IsZero() {
		// Moved: the rotate call may be on its way. Look again soon.
		f.movedAt = now
		f.rot.checked = now.Add(grace - f.rot.opt.ReopenCheck)
		return Rotation{}
	}
	if now.Sub(f.movedAt) < grace {
		return Rotation{}
	}
	f.closeLocked(ReasonReopenCheck)
	f.moved.Store(true)
	r := Rotation{reason: ReasonReopenCheck, name: name, to: name, next: f.nextName(now)}
	f.opt.Log.LimitedWarnf("moved", "reopen_check: %q was moved or removed without a rotate call; "+
		"reopened it (if logrotate moves it, its postrotate must run: flatstore-ctl rotate %q)", name, f.path)
	return r
}

// closeLocked closes the open file (fdatasync first with sync flush). A
// non-empty reason counts a rotation.
func (f *File) closeLocked(reason string) {
	if f.fd >= 0 {
		if f.opt.Sync {
			_ = f.sys.Fdatasync(f.fd)
		}
		_ = f.sys.Close(f.fd)
		f.fd = -1
		f.movedAt = time.Time{}
		f.rot.noteClose(reason)
		if f.slots != nil {
			f.slots.slotFreed(f, f.remember())
		} else {
			f.isOpen.Store(false)
		}
	}
	if reason != "" {
		f.countRotation(reason)
	}
}

// countRotation records a rotation for Status and the metrics.
func (f *File) countRotation(reason string) {
	f.statMu.Lock()
	f.lastRot, f.lastReason = f.now(), reason
	f.statMu.Unlock()
	if f.count != nil {
		f.count.Rotated(reason)
	}
}

// Reopen makes the next write open the path afresh: it closes the file
// now, waiting for a write in progress, and counts a rotation for reason
// (ReasonMI: logrotate moved the file and asks for the new one). It
// creates nothing: the next write opens the path, whatever is there then.
func (f *File) Reopen(reason string) {
	f.mu.Lock()
	f.closeLocked(reason)
	if reason == ReasonMI {
		f.moved.Store(false)
	}
	f.mu.Unlock()
}

// Close closes the file, waiting for a write in progress, without
// counting a rotation; the next write opens it again.
func (f *File) Close() {
	f.mu.Lock()
	f.closeLocked("")
	f.mu.Unlock()
}

// tryClose closes the file unless its lock is busy.
func (f *File) tryClose() {
	if f.mu.TryLock() {
		f.closeLocked("")
		f.mu.Unlock()
	}
}

// maintain runs the timed checks on an idle file: idle_timeout,
// rotate_period and reopen_check. It never waits for a busy file: a file
// being written is checked by that write, or at the next tick. The clock is
// read under the lock, so a check never uses a time older than the open.
//
// It returns when the file next needs a check (zero: never, it is closed
// or has no timed check), and busy when its lock was taken.
func (f *File) maintain() (next time.Time, busy bool) {
	if !f.isOpen.Load() {
		return time.Time{}, false
	}
	if !f.mu.TryLock() {
		return time.Time{}, true
	}
	defer f.mu.Unlock()
	if f.fd < 0 {
		return time.Time{}, false
	}
	now := f.now()
	if it := f.opt.IdleTimeout; it > 0 && now.UnixNano()-f.lastWrite.Load() >= int64(it) {
		f.closeLocked("")
		return time.Time{}, false
	}
	if r := f.checkLocked(now); r.reason != "" {
		f.opt.Log.Infof("%v", r)
	}
	if f.fd < 0 {
		return time.Time{}, false
	}
	next = f.rot.due()
	if it := f.opt.IdleTimeout; it > 0 {
		next = earlier(next, time.Unix(0, f.lastWrite.Load()+int64(it)))
	}
	return next, false
}

// earlier returns the earlier of two deadlines, zero being none.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// Path is the file's path (for a template, as rendered).
func (f *File) Path() string { return f.path }

// Options are the options the File was made with.
func (f *File) Options() *Options { return f.opt }

// IsOpen reports whether the file is open now.
func (f *File) IsOpen() bool { return f.isOpen.Load() }

// Status reports the file for the control endpoint.
func (f *File) Status() Status {
	f.statMu.Lock()
	defer f.statMu.Unlock()
	return Status{
		Path:         f.path,
		Open:         f.isOpen.Load(),
		Moved:        f.moved.Load(),
		Lines:        f.total.lines.Load(),
		Bytes:        f.total.bytes.Load(),
		LastRotation: f.lastRot,
		LastReason:   f.lastReason,
	}
}
