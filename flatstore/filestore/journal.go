package filestore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/logger"
)

// The journal (docs/delivery.md: a crash costs nothing). Fluent Bit's
// filesystem storage replays, whole, every chunk whose file is still there
// at start — one whose flush had landed and whose OK the engine never
// handled, or one the process died in the middle of. The journal is how
// the next process tells what of such a chunk had landed.
//
// One journal per output, a fixed ring of records in the state directory
// of the output's static directory (journal-<hash>). Before the bytes of a
// chunk's group go to a file, a record says where they go: the chunk (its
// length, tag and a hash of its bytes), the group (a hash of its path),
// which bytes of the group, the file (device, inode) and the offset. The
// record is then marked done when the chunk commits, aborted when it is
// cut back. A process start begins a new epoch; the records of earlier
// epochs are the candidates of a replay:
//
//   - A flush of a chunk with the same length, tag and hash as a candidate
//     set (the records of one earlier attempt) is checked group by group:
//     the bytes at the recorded place, read back from the file found by
//     its device and inode (under its path, or a name in its directory: a
//     rotation may have moved it), are compared byte for byte with what
//     this flush rendered. The landed prefix of the group is skipped, the
//     rest written.
//   - A set is used once: the next identical chunk is not taken for the
//     same replay. It is used up when the replay commits; until then an
//     in-process retry of the replay matches it again.
//   - The records of what a replay skipped are journaled again in its own
//     attempt, so a crash during the replay leaves a complete account.
//   - At the first open of a file in an epoch, an intent of an earlier
//     epoch that ends past the file's end is a torn write: the file is cut
//     back to the record's offset before anything is appended.
//   - A record stays a candidate until used or until journalSlots newer
//     records overwrite it.
const (
	journalSlots = 8192
	recSize      = 96
	hdrSize      = recSize
	journalMagic = "flatstore journal v1\x00"
)

// record states
const (
	recEmpty   = 0
	recIntent  = 1
	recDone    = 2
	recAborted = 3
	recUsed    = 4
)

// crcOf is the checksum of a record or header (the standard library keeps
// the Castagnoli table once).
func crcOf(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// ChunkKey identifies a chunk's bytes and tag.
type ChunkKey struct{ Len, Tag, Sum uint64 }

// KeyOf returns the key of a chunk.
func KeyOf(data []byte, tag string) ChunkKey {
	return ChunkKey{Len: uint64(len(data)), Tag: xxhash.Sum64String(tag), Sum: xxhash.Sum64(data)}
}

// jrec is one record of the journal.
type jrec struct {
	slot    int // where it is in the ring
	state   byte
	epoch   uint32
	seq     uint64
	attempt uint64
	key     ChunkKey
	path    uint64 // hash of the group's path
	gstart  uint32 // the bytes of the group it covers
	glen    uint32
	dev     uint64
	ino     uint64
	off     int64
}

func (r *jrec) encode(b []byte) {
	clear(b[:recSize])
	b[0] = r.state
	binary.LittleEndian.PutUint32(b[4:], r.epoch)
	binary.LittleEndian.PutUint64(b[8:], r.seq)
	binary.LittleEndian.PutUint64(b[16:], r.attempt)
	binary.LittleEndian.PutUint64(b[24:], r.key.Len)
	binary.LittleEndian.PutUint64(b[32:], r.key.Tag)
	binary.LittleEndian.PutUint64(b[40:], r.key.Sum)
	binary.LittleEndian.PutUint64(b[48:], r.path)
	binary.LittleEndian.PutUint32(b[56:], r.gstart)
	binary.LittleEndian.PutUint32(b[60:], r.glen)
	binary.LittleEndian.PutUint64(b[64:], r.dev)
	binary.LittleEndian.PutUint64(b[72:], r.ino)
	binary.LittleEndian.PutUint64(b[80:], uint64(r.off))
	binary.LittleEndian.PutUint32(b[88:], crcOf(b[4:88]))
}

func (r *jrec) decode(b []byte) bool {
	if binary.LittleEndian.Uint32(b[88:]) != crcOf(b[4:88]) {
		return false
	}
	r.state = b[0]
	r.epoch = binary.LittleEndian.Uint32(b[4:])
	r.seq = binary.LittleEndian.Uint64(b[8:])
	r.attempt = binary.LittleEndian.Uint64(b[16:])
	r.key = ChunkKey{binary.LittleEndian.Uint64(b[24:]), binary.LittleEndian.Uint64(b[32:]), binary.LittleEndian.Uint64(b[40:])}
	r.path = binary.LittleEndian.Uint64(b[48:])
	r.gstart = binary.LittleEndian.Uint32(b[56:])
	r.glen = binary.LittleEndian.Uint32(b[60:])
	r.dev = binary.LittleEndian.Uint64(b[64:])
	r.ino = binary.LittleEndian.Uint64(b[72:])
	r.off = int64(binary.LittleEndian.Uint64(b[80:]))
	return true
}

// candSet is the records of one earlier attempt at a chunk.
type candSet struct {
	epoch   uint32
	attempt uint64
	used    bool
	owner   *Tx    // the flush matching it now
	recs    []jrec // sorted by path, then gstart
}

// Journal is one output's record of what it wrote, for replays after a
// crash. Its methods are safe for concurrent use. Its file is opened by
// the first flush that needs it and stays open, mapped in memory, until
// CloseIdle closes it (idle_timeout, a rotate request, the output's end),
// so that it never keeps the log's file system busy once the output's
// files are closed.
//
// The records are stored into a shared mapping of the file (MAP_SHARED: a
// store is in the page cache at once, as a pwrite would be, and survives
// the process), so that journaling a write costs no system call. The file
// is preallocated (fallocate) so that no store needs a new block; a store
// that faults all the same (SIGBUS: the file was truncated behind the
// process, or a copy-on-write file system is full) is recovered
// (debug.SetPanicOnFault), said once in the log, and the journal goes on
// with pwrite(2). Where fallocate or mmap is refused, pwrite from the start.
type Journal struct {
	path     string // the journal's file
	pathz    []byte // path with its NUL, for an open that allocates nothing
	dev, ino uint64 // its identity, checked at each open
	sys      *Sys
	log      *logger.Logger
	noMap    atomic.Bool // records are written with pwrite, not stored in a mapping

	mu      sync.Mutex
	fd      int           // -1 while closed (CloseIdle)
	mem     []byte        // the file mapped while fd is open (nil: pwrite)
	users   int           // flushes using fd
	used    bool          // a flush ended since CloseIdle last looked
	lastUse time.Time     // when CloseIdle or due last found one had
	opened  func()        // called when fd opens (the store's maintenance wakes); may be nil
	idle    time.Duration // CloseIdle's delay (the output's idle_timeout)
	epoch   uint32
	seq     uint64 // the next record's
	attempt uint64 // the last attempt's
	cands   map[ChunkKey][]*candSet
	byFile  map[devIno]jrec // the last write to each file of earlier epochs, for torn tails
}

// JournalName is the name of the journal of an output named name whose
// path (template) is path.
func JournalName(path, name string) string {
	return fmt.Sprintf("journal-%016x", xxhash.Sum64String(path+"\x00"+name))
}

// OpenJournal opens (creating it) the journal name in the state directory
// of dir, and begins a new epoch. The state directory must be the running
// user's private one, as for the manifests. token identifies the process:
// the records of epochs begun by this very process (an output closed and
// made again) are not candidates — only a restart replays chunks.
func OpenJournal(dir, name string, token [16]byte, sys *Sys, log *logger.Logger) (*Journal, error) {
	if sys == nil {
		sys = RealSys()
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &FileError{"open", dir, err}
	}
	defer unix.Close(dfd)
	sfd, err := openStateDir(dfd, true)
	if err != nil {
		return nil, &FileError{"open", filepath.Join(dir, StateDirName), err}
	}
	defer unix.Close(sfd)
	full := filepath.Join(dir, StateDirName, name)
	fd, err := unix.Openat(sfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &FileError{"open", full, err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &FileError{"fstat", full, err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || int(st.Uid) != unix.Geteuid() {
		return nil, &FileError{"open", full, errState{"is not flatstore's own journal"}}
	}
	j := &Journal{fd: -1, path: full, pathz: append([]byte(full), 0), dev: uint64(st.Dev), ino: uint64(st.Ino), sys: sys, log: log,
		cands: map[ChunkKey][]*candSet{}, byFile: map[devIno]jrec{}}
	size := int64(journalSize)
	data := make([]byte, size)
	n, _ := unix.Pread(fd, data, 0)
	data = data[:max(n, 0)]
	var first uint32 // the first epoch of this process
	if len(data) >= hdrSize && bytes.HasPrefix(data, []byte(journalMagic)) &&
		binary.LittleEndian.Uint32(data[hdrSize-4:]) == crcOf(data[:hdrSize-4]) {
		h := data[len(journalMagic):]
		j.epoch = binary.LittleEndian.Uint32(h)
		if bytes.Equal(h[4:20], token[:]) {
			first = binary.LittleEndian.Uint32(h[20:])
		}
	} else if n > 0 {
		log.Warnf("journal %s: not a journal or its header is broken: starting a new one (a chunk replayed now may be written twice)", full)
		data = nil
	}
	j.epoch++
	if first == 0 {
		first = j.epoch
	}
	j.load(data, first)
	if err := unix.Ftruncate(fd, size); err != nil {
		return nil, &FileError{"ftruncate", full, err}
	}
	// Every block of the ring exists before a record is stored into its
	// mapping; a file system that cannot promise it gets pwrite.
	if err := unix.Fallocate(fd, 0, 0, size); err != nil {
		j.noMap.Store(true)
		log.Debugf("journal %s: fallocate: %v: records written with pwrite", full, err)
	}
	hdr := make([]byte, hdrSize)
	copy(hdr, journalMagic)
	h := hdr[len(journalMagic):]
	binary.LittleEndian.PutUint32(h, j.epoch)
	copy(h[4:20], token[:])
	binary.LittleEndian.PutUint32(h[20:], first)
	binary.LittleEndian.PutUint32(hdr[hdrSize-4:], crcOf(hdr[:hdrSize-4]))
	if _, err := unix.Pwrite(fd, hdr, 0); err != nil {
		return nil, &FileError{"write", full, err}
	}
	if err := unix.Fdatasync(fd); err != nil {
		return nil, &FileError{"fdatasync", full, err}
	}
	return j, nil
}

// load reads the records of earlier epochs as candidates.
func (j *Journal) load(data []byte, first uint32) {
	byAttempt := map[uint64]*candSet{}
	for slot := 0; slot < journalSlots; slot++ {
		o := hdrSize + slot*recSize
		if o+recSize > len(data) {
			break
		}
		var r jrec
		if data[o] == recEmpty || !r.decode(data[o:o+recSize]) || int(r.seq%journalSlots) != slot {
			continue
		}
		r.slot = slot
		j.seq = max(j.seq, r.seq+1)
		j.attempt = max(j.attempt, r.attempt)
		if r.epoch >= first {
			continue
		}
		// The last write journaled for each file, whatever became of it:
		// only it can have been torn at the file's end.
		id := devIno{r.dev, r.ino}
		if last, ok := j.byFile[id]; !ok || r.seq > last.seq {
			j.byFile[id] = r
		}
		if r.state != recIntent && r.state != recDone {
			continue
		}
		cs := byAttempt[r.attempt]
		if cs == nil {
			cs = &candSet{epoch: r.epoch, attempt: r.attempt}
			byAttempt[r.attempt] = cs
			j.cands[r.key] = append(j.cands[r.key], cs)
		}
		cs.recs = append(cs.recs, r)
	}
	for _, sets := range j.cands {
		// Newest first: a replay's own account covers what it skipped.
		sort.Slice(sets, func(a, b int) bool { return sets[a].attempt > sets[b].attempt })
		for _, cs := range sets {
			sort.Slice(cs.recs, func(a, b int) bool {
				if cs.recs[a].path != cs.recs[b].path {
					return cs.recs[a].path < cs.recs[b].path
				}
				return cs.recs[a].gstart < cs.recs[b].gstart
			})
		}
	}
}

// Epoch is the epoch of this process's records.
func (j *Journal) Epoch() uint32 { return j.epoch }

// Candidates is the number of earlier attempts not yet used by a replay.
func (j *Journal) Candidates() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, sets := range j.cands {
		for _, cs := range sets {
			if !cs.used {
				n++
			}
		}
	}
	return n
}

// Tx is one flush's account in the journal: reused from flush to flush.
// It holds the journal's file open from Begin to End.
type Tx struct {
	j       *Journal
	fd      int
	mem     []byte // the journal's mapping (nil: pwrite)
	dirty   bool   // written since the last sync
	key     ChunkKey
	attempt uint64
	set     *candSet // the earlier attempt this flush replays, or nil
	mine    []mark   // the records of this attempt
	buf     [recSize]byte
	pof     bool // Begin turned the goroutine's faults into panics
	// The last tag and its hash: a flush state serves one output, whose
	// chunks mostly come under one tag.
	tag    string
	tagSum uint64
}

// Begin starts the account of a flush of the chunk data with tag. It
// reports whether the chunk may be a replay (a candidate set matches).
// A journal that cannot be opened now leaves the flush without one.
func (tx *Tx) Begin(j *Journal, data []byte, tag string) bool {
	tx.j, tx.set, tx.mine, tx.dirty = nil, nil, tx.mine[:0], false
	if j == nil {
		return false
	}
	if tag != tx.tag || tx.tag == "" {
		tx.tag, tx.tagSum = tag, xxhash.Sum64String(tag)
	}
	key := ChunkKey{Len: uint64(len(data)), Tag: tx.tagSum, Sum: xxhash.Sum64(data)}
	j.mu.Lock()
	fd, mem, ok := j.acquireLocked()
	if !ok {
		j.mu.Unlock()
		return false
	}
	tx.j, tx.fd, tx.mem, tx.key = j, fd, mem, key
	if mem != nil {
		// Faults of the stores into the mapping (put) panic, to be
		// recovered by the flush; End turns this off.
		tx.pof = !debug.SetPanicOnFault(true)
	}
	j.attempt++
	tx.attempt = j.attempt
	if len(j.cands) > 0 {
		for _, cs := range j.cands[key] {
			if !cs.used && !cs.busy() {
				tx.set = cs
				cs.claim(tx)
				break
			}
		}
	}
	j.mu.Unlock()
	return tx.set != nil
}

// atFDCWD is AT_FDCWD as a system call argument.
const atFDCWD = ^uintptr(99) // -100

// journalSize is the size of a journal's file: its header and its ring.
const journalSize = hdrSize + journalSlots*recSize

// acquireLocked returns the journal's descriptor and mapping for a flush,
// opening and mapping it (and checking that it is still the journal) when
// it is closed.
func (j *Journal) acquireLocked() (int, []byte, bool) {
	if j.fd < 0 {
		fd, err := j.open()
		if err != nil {
			j.log.LimitedWarnf("journal", "journal %s: %v: a chunk replayed after a crash may be written twice", j.path, ErrnoOf(err))
			return -1, nil, false
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || !sameFile(&st, j.dev, j.ino) {
			unix.Close(fd)
			j.log.LimitedWarnf("journal", "journal %s is no longer the file it was: not used", j.path)
			return -1, nil, false
		}
		j.fd = fd
		if j.opened != nil {
			j.opened()
		}
		if !j.noMap.Load() {
			mem, err := unix.Mmap(fd, 0, journalSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				j.noMap.Store(true)
				j.log.Debugf("journal %s: mmap: %v: records written with pwrite", j.path, err)
			} else {
				j.mem = mem
			}
		}
	}
	j.users++
	if j.noMap.Load() {
		return j.fd, nil, true
	}
	return j.fd, j.mem, true
}

// due returns when CloseIdle may next close the file (zero: never, it is
// closed or never closes by itself). A flush does not read the clock: a
// use is noted here or by CloseIdle, at the maintenance pass after it, so
// the file closes between idle and twice idle after its last flush.
func (j *Journal) due(now time.Time) time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.fd < 0 || j.idle <= 0:
		return time.Time{}
	case j.users > 0:
		return now.Add(j.idle)
	case j.used:
		j.used, j.lastUse = false, now
	}
	return j.lastUse.Add(j.idle)
}

// CloseIdle closes (and unmaps) the journal's file when no flush uses it
// and, unless force is set, no flush ended for idle (0: never) — as seen
// by its calls, the store's maintenance ticks: so that the output holds
// nothing open on the log's file system once its files are closed (a
// rotate request, idle_timeout, the end of the output). A flush does not
// read the clock for it.
func (j *Journal) CloseIdle(force bool, now time.Time) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fd < 0 || j.users > 0 {
		return
	}
	if !force {
		if j.used {
			j.used, j.lastUse = false, now
		}
		if j.idle <= 0 || now.Sub(j.lastUse) < j.idle {
			return
		}
	}
	if j.mem != nil {
		_ = unix.Munmap(j.mem)
		j.mem = nil
	}
	unix.Close(j.fd)
	j.fd = -1
}

// open opens the journal's file for a flush.
func (j *Journal) open() (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(&j.pathz[0])),
		uintptr(unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Active reports whether the flush is journaled.
func (tx *Tx) Active() bool { return tx.j != nil }

// put writes b at off of the journal's file: a store into its mapping,
// or pwrite when it has none. A store is made between Begin and End, with
// the goroutine's faults turned into panics (debug.SetPanicOnFault): one
// that faults (SIGBUS: the file was cut short behind the process, or a
// copy-on-write file system is full) panics, and the flush that recovers
// it hands it to Fault.
func (tx *Tx) put(b []byte, off int) {
	if tx.mem != nil {
		copy(tx.mem[off:off+len(b)], b)
		tx.dirty = true
		return
	}
	if _, err := unix.Pwrite(tx.fd, b, int64(off)); err != nil {
		tx.j.log.LimitedWarnf("journal", "journal %s: %v: a chunk replayed after a crash may be written twice", tx.j.path, err)
		return
	}
	tx.dirty = true
}

// Fault reports whether r, recovered from a panic of the flush, is a
// fault of a store into the journal's mapping; the journal then goes on
// with pwrite, and says so once.
func (tx *Tx) Fault(r any) bool {
	e, ok := r.(interface{ Addr() uintptr })
	if !ok || tx.mem == nil {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(tx.mem)))
	if a := e.Addr(); a < base || a >= base+uintptr(len(tx.mem)) {
		return false
	}
	tx.mem = nil
	if !tx.j.noMap.Swap(true) {
		tx.j.log.Warnf("journal %s: a store into its mapping faulted (the file was cut short, or its file system is full): records written with pwrite from now on", tx.j.path)
	}
	return true
}

// putSafe is put where a fault must not reach the flush: it is
// recovered here (Fault) and the bytes written with pwrite.
func (tx *Tx) putSafe(b []byte, off int) {
	if tx.mem != nil && tx.storeFaults(b, off) {
		return
	}
	tx.put(b, off)
}

// storeFaults stores b at off of the mapping, and reports whether it did;
// false when the store faulted (and the journal went on with pwrite).
func (tx *Tx) storeFaults(b []byte, off int) (stored bool) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if !tx.Fault(r) {
				panic(r)
			}
			stored = false
		}
	}()
	tx.put(b, off)
	return true
}

// setState changes the state of the record in slot, whose sequence is
// seq, unless the ring has reused the slot since; under j.mu. safe: a
// fault is recovered here (putSafe).
func (tx *Tx) setStateLocked(slot int, seq uint64, state byte, safe bool) {
	if tx.j.seq >= seq+journalSlots {
		return
	}
	tx.buf[0] = state
	if safe {
		tx.putSafe(tx.buf[:1], hdrSize+slot*recSize)
	} else {
		tx.put(tx.buf[:1], hdrSize+slot*recSize)
	}
}

// sync makes the records written so far durable (sync flush).
func (tx *Tx) sync() error {
	if !tx.dirty {
		return nil
	}
	tx.dirty = false
	if err := tx.j.sys.Fdatasync(tx.fd); err != nil {
		return &FileError{"fdatasync", tx.j.path, err}
	}
	return nil
}

// busy and claim: a set is matched by one flush at a time (two flushes of
// identical chunks at once take two sets).
func (cs *candSet) busy() bool   { return cs.owner != nil }
func (cs *candSet) claim(tx *Tx) { cs.owner = tx }
func (cs *candSet) release(tx *Tx) {
	if cs.owner == tx {
		cs.owner = nil
	}
}

// mark is a record of this attempt, as End marks it.
type mark struct {
	slot  int
	seq   uint64
	state byte
}

// add journals a record of this attempt: encoded in place in the mapping
// (a crash in the middle leaves a record whose checksum fails), or
// written with pwrite.
func (tx *Tx) add(state byte, path uint64, gstart, glen int, dev, ino uint64, off int64) {
	j := tx.j
	j.mu.Lock()
	r := jrec{state: state, epoch: j.epoch, seq: j.seq, attempt: tx.attempt, key: tx.key, path: path,
		gstart: uint32(gstart), glen: uint32(glen), dev: dev, ino: ino, off: off}
	j.seq++
	j.mu.Unlock()
	slot := int(r.seq % journalSlots)
	at := hdrSize + slot*recSize
	if tx.mem != nil {
		r.encode(tx.mem[at : at+recSize])
		tx.dirty = true
	} else {
		r.encode(tx.buf[:])
		tx.put(tx.buf[:], at)
	}
	tx.mine = append(tx.mine, mark{slot, r.seq, state})
}

// abortRec marks the record i of this attempt aborted: an intent whose
// write was not made.
func (tx *Tx) abortRec(i int) {
	if i >= len(tx.mine) || tx.mine[i].state != recIntent {
		return
	}
	r := &tx.mine[i]
	r.state = recAborted
	tx.j.mu.Lock()
	defer tx.j.mu.Unlock()
	tx.setStateLocked(r.slot, r.seq, recAborted, false)
}

// End closes the account. Committed — called before the chunk's files are
// let go, within the flush's protection (put), so that a fault here still
// cuts the chunk back — the records of this attempt are marked done and
// the replayed set used up. Not — called once the files are cut back —
// they are marked aborted, and the set stays for the retry. It restores
// the goroutine's faults as Begin found them.
func (tx *Tx) End(committed bool) {
	j := tx.j
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock() // a fault of a store panics here
	for i := range tx.mine {
		r := &tx.mine[i]
		switch {
		case committed && r.state == recIntent:
			tx.setStateLocked(r.slot, r.seq, recDone, false)
			r.state = recDone
		case !committed:
			tx.setStateLocked(r.slot, r.seq, recAborted, true)
		}
	}
	if cs := tx.set; cs != nil {
		cs.release(tx)
		if committed {
			cs.used = true
			for _, r := range cs.recs {
				tx.setStateLocked(r.slot, r.seq, recUsed, true)
			}
		}
	}
	j.users--
	j.used = true
	if tx.pof {
		debug.SetPanicOnFault(false)
	}
	tx.j, tx.fd, tx.mem, tx.set, tx.mine, tx.pof = nil, -1, nil, nil, tx.mine[:0], false
}

// GroupIntent is what Append journals of one group: the flush's account,
// the group's path hash, and where data (what Append is given) starts in
// the group's bytes.
type GroupIntent struct {
	Tx   *Tx
	Path uint64
	Base int
}

// PathHash is the hash of a group's path.
func PathHash(path string) uint64 { return xxhash.Sum64String(path) }

// Replayed tells how many leading lines of a group (buf, its lines ending
// at ends) a replayed chunk had landed in an earlier process: the records
// of the matched set for this path are checked against the bytes on disk,
// in order, and the landed ones are journaled again in this attempt. f is
// the group's File, held. A torn write of the set in a file no flush
// reopens (a rotated one) is cut back here.
func (f *File) Replayed(tx *Tx, path uint64, buf []byte, ends []int) int {
	if tx == nil || tx.set == nil {
		return 0
	}
	recs := tx.set.recs
	i := sort.Search(len(recs), func(k int) bool { return recs[k].path >= path })
	landed := 0
	for ; i < len(recs) && recs[i].path == path; i++ {
		r := recs[i]
		if int(r.gstart) != landed || int(r.gstart)+int(r.glen) > len(buf) {
			break
		}
		if !f.landedAt(&r, buf[r.gstart:r.gstart+r.glen]) {
			break
		}
		landed += int(r.glen)
		tx.add(recDone, path, int(r.gstart), int(r.glen), r.dev, r.ino, r.off)
	}
	if landed == 0 {
		return 0
	}
	// Whole lines only: each record covers whole lines.
	n := sort.SearchInts(ends, landed)
	if n < len(ends) && ends[n] == landed {
		return n + 1
	}
	return n
}

// landedAt reports whether want is in the file of r at r.off.
func (f *File) landedAt(r *jrec, want []byte) bool {
	fd, ok := f.findByID(r.dev, r.ino)
	if !ok {
		// Gone: a file whose write was committed was compressed or
		// deleted by retention since; one whose write was not may never
		// have held it.
		return r.state == recDone
	}
	defer unix.Close(fd)
	got := make([]byte, len(want))
	n, _ := unix.Pread(fd, got, r.off)
	if n == len(want) && bytes.Equal(got, want) {
		return true
	}
	if n > 0 && r.state == recIntent && bytes.Equal(got[:n], want[:n]) {
		// A torn write: the file ends inside it. Cut it back so that no
		// line is glued to its partial one.
		f.cutTorn(fd, r.dev, r.ino, r.off, r.off+int64(n))
	}
	return false
}

// cutTorn truncates the file dev/ino (read through rfd) at off when it
// ends at end, inside a torn write.
func (f *File) cutTorn(rfd int, dev, ino uint64, off, end int64) {
	var st unix.Stat_t
	if unix.Fstat(rfd, &st) != nil || st.Size != end {
		return
	}
	if f.fd >= 0 && f.cur.dev == dev && f.cur.ino == ino {
		if f.sys.Ftruncate(f.fd, off) == nil {
			f.cur.size = off
		}
		return
	}
	wfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", rfd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(wfd)
	var wst unix.Stat_t
	if unix.Fstat(wfd, &wst) == nil && sameFile(&wst, dev, ino) {
		if unix.Ftruncate(wfd, off) == nil {
			f.opt.Log.Warnf("cut a torn write of an earlier process out of %q: %d bytes at %d", f.path, end-off, off)
		}
	}
}

// findByID opens, read-only, the file dev/ino: f's path, or a name in its
// directory (where rotations set files aside).
func (f *File) findByID(dev, ino uint64) (int, bool) {
	try := func(name string) (int, bool) {
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != nil {
			return -1, false
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && sameFile(&st, dev, ino) {
			return fd, true
		}
		unix.Close(fd)
		return -1, false
	}
	if f.cur.dev == dev && f.cur.ino == ino && f.cur.name != "" {
		if fd, ok := try(f.cur.name); ok {
			return fd, true
		}
	}
	if fd, ok := try(f.path); ok {
		return fd, true
	}
	dir := filepath.Dir(f.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1, false
	}
	for _, e := range ents {
		name := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if e.Type().IsRegular() && unix.Lstat(name, &st) == nil && sameFile(&st, dev, ino) {
			return try(name)
		}
	}
	return -1, false
}

// resolveTorn cuts back, at the first open of a file in this epoch, a torn
// write an earlier process left at its end (fd open for appending, st its
// stat, updated).
func (tx *Tx) resolveTorn(fd int, st *unix.Stat_t, sys *Sys, log *logger.Logger, name string) {
	j := tx.j
	if j == nil {
		return
	}
	id := devIno{uint64(st.Dev), uint64(st.Ino)}
	j.mu.Lock()
	defer j.mu.Unlock()
	r, ok := j.byFile[id]
	if !ok {
		return
	}
	delete(j.byFile, id)
	if r.state == recIntent && r.off < st.Size && st.Size < r.off+int64(r.glen) {
		if err := sys.Ftruncate(fd, r.off); err == nil {
			log.Warnf("cut a torn write of an earlier process out of %q: %d bytes at %d", name, st.Size-r.off, r.off)
			st.Size = r.off
			tx.setStateLocked(r.slot, r.seq, recAborted, false)
		}
	}
}
