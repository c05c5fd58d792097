package filestore

import (
	"container/list"
	"crypto/rand"
	"runtime"
	"sync"
	"time"

	"github.com/flatstore/flatstore/flatstore/logger"
)

// Store is the process's set of event files. Several outputs that write
// one path share one File (one handle, one lock), so their lines never
// interleave. The package documentation gives its door, its slots
// (max_open_sockets) and the lock order.
type Store struct {
	sys   *Sys
	now   func() time.Time
	count Counter

	mu        sync.Mutex
	files     map[string]*File
	slotsHeld int    // Files holding a slot (open, or about to open), every output's
	unbounded *Slots // the slots of Files written with no limit (tests)
	// byID is the open Files by their file's identity: a rendered path
	// that resolves to a file another output has open (a link planted in
	// the directory) is refused (opened).
	byID map[devIno]*File
	// memo holds what forgotten Files knew of their last file, for paths
	// with a suffix or built-in rotation: the File made for that path next
	// does not append to a full file nor go back to the first of a series.
	// It is bounded: the oldest entries go first.
	memo      map[string]*list.Element
	memoOrder *list.List // memoEntry, oldest first

	// series holds the rotated files of each path with retention or
	// compression, one object per path so that one writer keeps its
	// manifest; arch runs their background jobs.
	series     map[string]*seriesRef
	seriesLRU  *list.List // *seriesRef no File uses, least recently used first
	arch       *Archiver
	lastRetain time.Time

	// token tells this process's journal epochs from another's
	// (journal.go).
	token    [16]byte
	journals map[*Journal]struct{} // the outputs' journals, closed when idle

	users   int
	stop    chan struct{}
	stopped chan struct{}
	// wake tells the maintenance goroutine that a file or a journal
	// opened: a deadline may now come before the one it waits for.
	wake    chan struct{}
	retry   time.Duration
	manual  bool
	maxMemo int
}

// seriesRef is a registered series and the Files that use it.
type seriesRef struct {
	s    *series
	refs int
	elem *list.Element // in seriesLRU while refs == 0
}

// maxIdleSeries bounds the series kept for paths no File uses (for
// rotate_max_age, which the maintenance loop applies to them too).
const maxIdleSeries = 4096

// retainEvery is how often the maintenance loop applies rotate_max_age.
const retainEvery = 30 * time.Second

// maxWait bounds the maintenance goroutine's sleep while it has a deadline:
// the wall clock may step meanwhile (a rotate_period boundary is a time of
// day), and a step is noticed within it.
const maxWait = time.Minute

// maxMemo bounds the memories kept for forgotten paths.
const maxMemo = 4096

// Env is what a Store is made of besides its files: the system calls and
// the clock (tests give their own), how soon the maintenance goroutine
// looks again at a file it found busy, whether it runs at all, how many
// memories of forgotten paths it keeps, and who counts what it does by
// itself.
type Env struct {
	Sys     *Sys             // nil: RealSys()
	Now     func() time.Time // nil: time.Now
	Retry   time.Duration    // a busy file is looked at again after this; 0: 100ms
	Manual  bool             // no maintenance goroutine: the caller runs Tick (tests with their own clock)
	MaxMemo int              // the memories kept for forgotten paths; 0: 4096
	Counter Counter          // may be nil
}

type memoEntry struct {
	path string
	mem  memory
}

// New returns an empty store.
func New(env Env) *Store {
	if env.Sys == nil {
		env.Sys = RealSys()
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Retry <= 0 {
		env.Retry = 100 * time.Millisecond
	}
	if env.MaxMemo <= 0 {
		env.MaxMemo = maxMemo
	}
	p := &Store{sys: env.Sys, now: env.Now, count: env.Counter, files: map[string]*File{}, unbounded: NewSlots(0), byID: map[devIno]*File{},
		memo: map[string]*list.Element{}, memoOrder: list.New(), retry: env.Retry, manual: env.Manual, maxMemo: env.MaxMemo, wake: make(chan struct{}, 1),
		series: map[string]*seriesRef{}, seriesLRU: list.New(), arch: NewArchiver(), journals: map[*Journal]struct{}{}}
	_, _ = rand.Read(p.token[:])
	return p
}

// OpenJournal opens the journal name in the state directory of dir for an
// output of this store's process (journal.go).
// Its descriptor is closed once it was not used for idle (0: never).
func (p *Store) OpenJournal(dir, name string, idle time.Duration, log *logger.Logger) (*Journal, error) {
	j, err := OpenJournal(dir, name, p.token, p.sys, log)
	if err != nil {
		return nil, err
	}
	j.idle, j.opened = idle, p.poke
	p.mu.Lock()
	p.journals[j] = struct{}{}
	p.mu.Unlock()
	return j, nil
}

// CloseJournal forgets a journal whose output ends, and closes it.
func (p *Store) CloseJournal(j *Journal) {
	if j == nil {
		return
	}
	p.mu.Lock()
	delete(p.journals, j)
	p.mu.Unlock()
	j.CloseIdle(true, time.Time{})
}

// countOpen tells the Counter how many files hold a slot, outside p.mu
// (the Counter may ask OpenCount).
func (p *Store) countOpen(n int) {
	if p.count != nil {
		p.count.OpenFiles(n)
	}
}

// OpenCount is the number of files holding a slot.
func (p *Store) OpenCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slotsHeld
}

// MemoCount is the number of memories kept.
func (p *Store) MemoCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.memo)
}

// lookupLocked returns the File for path, creating it with opt.
func (p *Store) lookupLocked(path string, opt *Options) *File {
	f := p.files[path]
	if f == nil {
		f = newFile(path, opt, p.sys, p.now)
		f.slots, f.count = p, p.count
		if opt.Archive.on() {
			f.series = p.seriesLocked(path, opt)
		}
		p.files[path] = f
		if e, ok := p.memo[path]; ok {
			p.memoOrder.Remove(e)
			delete(p.memo, path)
			f.recall(e.Value.(memoEntry).mem)
		}
	}
	return f
}

// Acquire registers a configured static path for an instance.
func (p *Store) Acquire(path string, opt *Options) *File {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.lookupLocked(path, opt)
	f.refs++
	return f
}

// Release drops an instance's reference; the last one closes the file.
func (p *Store) Release(f *File) {
	p.mu.Lock()
	f.refs--
	last := f.refs == 0
	p.mu.Unlock()
	if last {
		f.Close()
		p.mu.Lock()
		p.forgetLocked(f)
		p.mu.Unlock()
	}
}

// Pin returns the File for path, pinned for one write: it is not closed
// to free a slot and not forgotten until Unpin. opt apply when the File is
// new. A File another output made is refused — nothing pinned, a *FileError
// that IsBadPath — when its options shape the file differently, or, for a
// path rendered from a template (opt.Template set), when it is another
// output's configured file or another template's.
func (p *Store) Pin(path string, opt *Options) (*File, error) {
	f := p.pin(path, opt)
	if f.opt != opt && (f.opt.Format != opt.Format ||
		opt.Template != "" && (f.refs > 0 || f.opt.Template != opt.Template)) {
		p.Unpin(f)
		return nil, &FileError{"open", path, errOtherOutput{f.path}}
	}
	return f, nil
}

// pin is Pin without the check.
func (p *Store) pin(path string, opt *Options) *File {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.lookupLocked(path, opt)
	f.pins++
	if f.elem != nil {
		f.set.lru.MoveToBack(f.elem)
	}
	return f
}

// Unpin ends a write of f.
func (p *Store) Unpin(f *File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f.pins--
	p.forgetLocked(f)
}

// takeSlot implements slotKeeper: a slot of set (the writing output's) for f,
// which is about to open. When set is full, set's own least recently used
// idle file is closed; other outputs' files are never touched.
func (p *Store) takeSlot(f *File, set *Slots) error {
	if set == nil {
		set = p.unbounded
	}
	for try := 0; try < maxSlotTries; try++ {
		if try > 0 {
			runtime.Gosched()
		}
		p.mu.Lock()
		if f.elem != nil {
			p.mu.Unlock()
			return nil
		}
		if set.limit <= 0 || set.lru.Len() < set.limit {
			f.set, f.elem = set, set.lru.PushBack(f)
			p.slotsHeld++
			n := p.slotsHeld
			p.mu.Unlock()
			p.countOpen(n)
			return nil
		}
		v := victimLocked(set, f)
		if v == nil {
			p.mu.Unlock()
			return ErrNoSlot
		}
		v.evicting = true
		p.mu.Unlock()
		// Never wait for a victim's lock: a flush that pinned it since may
		// hold it and wait for a File whose lock our caller holds (a flush
		// holds the files of its chunk until it knows the outcome). A busy
		// victim is left for another round.
		v.tryClose() // gives its slot back through slotFreed
		p.mu.Lock()
		v.evicting = false
		p.forgetLocked(v)
		p.mu.Unlock()
	}
	return ErrNoSlot
}

// maxSlotTries bounds the rounds takeSlot makes for a slot, each closing
// one idle file of the output or finding one free, before it answers
// ErrNoSlot.
const maxSlotTries = 64

// victimLocked returns set's least recently used open file that no flush
// pins and nobody is closing already, or nil.
func victimLocked(set *Slots, except *File) *File {
	for e := set.lru.Front(); e != nil; e = e.Next() {
		v := e.Value.(*File)
		if v != except && v.pins == 0 && !v.evicting && v.isOpen.Load() {
			return v
		}
	}
	return nil
}

// opened implements slotKeeper: f, which took its slot, is open on the
// file id. A path rendered from a template that resolves to a file another
// output has open — the same device and inode under another name, through
// a link someone planted in the directory — is refused: a record never
// writes into another output's file. isOpen changes only under p.mu, so
// that a victim is chosen among files truly open when a close races with a
// pin.
func (p *Store) opened(f *File, id devIno) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.byID[id]; g != nil && g != f && g.isOpen.Load() && f.opt.Template != "" &&
		(g.refs > 0 || g.opt.Template != f.opt.Template) {
		return errOtherOutput{g.path}
	}
	f.isOpen.Store(true)
	f.id = id
	p.byID[id] = f
	p.poke()
	return nil
}

// poke wakes the maintenance goroutine to take a new deadline into
// account (a file or a journal opened). It never blocks: one wake pending
// is enough.
func (p *Store) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// slotFreed implements slotKeeper: the handle is closed (or its open failed).
func (p *Store) slotFreed(f *File, mm memory) {
	p.mu.Lock()
	n := -1
	defer func() {
		p.mu.Unlock()
		if n >= 0 {
			p.countOpen(n)
		}
	}()
	f.mem = mm
	f.isOpen.Store(false)
	if p.byID[f.id] == f {
		delete(p.byID, f.id)
	}
	if f.elem != nil {
		f.set.lru.Remove(f.elem)
		f.set, f.elem = nil, nil
		p.slotsHeld--
		n = p.slotsHeld
	}
	p.forgetLocked(f)
}

// forgetLocked drops a path that is neither open, pinned, configured nor
// being closed, so that templates with many values do not grow the map.
func (p *Store) forgetLocked(f *File) {
	if f.refs != 0 || f.pins != 0 || f.elem != nil || f.evicting || p.files[f.path] != f {
		return
	}
	delete(p.files, f.path)
	if f.series != nil {
		p.unrefSeriesLocked(f.path)
	}
	o := f.opt.Rotate
	if f.mem.cur.name == "" || (o.Suffix == "" && !o.builtIn()) {
		return
	}
	if e, ok := p.memo[f.path]; ok {
		p.memoOrder.Remove(e)
	}
	for len(p.memo) >= p.maxMemo {
		oldest := p.memoOrder.Front()
		p.memoOrder.Remove(oldest)
		delete(p.memo, oldest.Value.(memoEntry).path)
	}
	p.memo[f.path] = p.memoOrder.PushBack(memoEntry{f.path, f.mem})
}

// seriesLocked returns the series of path, registering it for a File.
func (p *Store) seriesLocked(path string, opt *Options) *series {
	r := p.series[path]
	if r == nil {
		r = &seriesRef{s: newSeries(path, opt.Archive, p.sys, p.arch, p.count, opt.Log, p.now)}
		p.series[path] = r
	}
	if r.elem != nil {
		p.seriesLRU.Remove(r.elem)
		r.elem = nil
	}
	r.refs++
	return r.s
}

// unrefSeriesLocked drops a File's use of path's series; unused series are
// kept, the least recently used dropped past maxIdleSeries.
func (p *Store) unrefSeriesLocked(path string) {
	r := p.series[path]
	if r == nil {
		return
	}
	if r.refs--; r.refs > 0 {
		return
	}
	r.elem = p.seriesLRU.PushBack(r)
	for p.seriesLRU.Len() > maxIdleSeries {
		old := p.seriesLRU.Front().Value.(*seriesRef)
		p.seriesLRU.Remove(old.elem)
		// Its jobs, if any, still hold it; the next File of that path
		// reads its manifest afresh once they are done.
		p.arch.Enqueue(func() {
			p.mu.Lock()
			if cur := p.series[old.s.path]; cur == old && cur.refs == 0 {
				delete(p.series, old.s.path)
			}
			p.mu.Unlock()
		})
		old.elem = nil
	}
}

// retainAll queues rotate_max_age for every series that has it.
func (p *Store) retainAll(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.series {
		if s := r.s; s.opt.MaxAge > 0 {
			p.arch.Enqueue(func() { s.retain(now) })
		}
	}
	p.lastRetain = now
}

// Lookup returns the File for path, or nil.
func (p *Store) Lookup(path string) *File {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.files[path]
}

// Files returns the files that satisfy keep.
func (p *Store) Files(keep func(*File) bool) []*File {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*File
	for _, f := range p.files {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// Start registers an instance; the first starts the maintenance goroutine
// (unless Env.Manual).
func (p *Store) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users++
	if p.users == 1 && !p.manual {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.maintain(p.stop, p.stopped, p.retry)
	}
}

// Stop unregisters an instance; the last stops the maintenance goroutine
// and waits for it.
func (p *Store) Stop() {
	p.mu.Lock()
	p.users--
	var stop, stopped chan struct{}
	if p.users == 0 && !p.manual {
		stop, stopped = p.stop, p.stopped
		p.stop, p.stopped = nil, nil
	}
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
	if p.users == 0 {
		// The last instance is gone: the compressions and deletions queued
		// finish now rather than in the background of a closed plugin.
		p.arch.Drain()
	}
}

// Drain waits for the background jobs queued so far (compression,
// retention) to finish.
func (p *Store) Drain() { p.arch.Drain() }

// Users is the number of Start calls not yet matched by Stop.
func (p *Store) Users() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.users
}

// maintain is the maintenance goroutine. It sleeps until the earliest
// deadline Tick reports (an idle_timeout, a rotate_period boundary, a
// reopen_check, a journal's idle close, rotate_max_age's next round), or
// until a file or journal opens; with nothing open and no retention to
// apply it sleeps without a timer, so an idle process is never woken.
func (p *Store) maintain(stop, stopped chan struct{}, retry time.Duration) {
	defer close(stopped)
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		if next, busy := p.tick(); busy || !next.IsZero() {
			wait := maxWait
			if busy {
				wait = retry
			}
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(p.now()), 0))
			}
			t.Reset(wait)
		} else {
			t.Stop()
		}
		select {
		case <-stop:
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// Tick runs one round of maintenance over the open files and the journals,
// and applies rotate_max_age every retainEvery. It returns when the next
// round is due (zero: nothing is waiting for one), not counting files it
// found busy.
func (p *Store) Tick() time.Time {
	next, _ := p.tick()
	return next
}

// tick is Tick; busy reports a file it skipped because a write held it.
func (p *Store) tick() (next time.Time, busy bool) {
	for _, f := range p.Files(func(f *File) bool { return f.isOpen.Load() }) {
		d, b := f.maintain()
		next, busy = earlier(next, d), busy || b
	}
	now := p.now()
	p.mu.Lock()
	for j := range p.journals {
		j.CloseIdle(false, now)
		next = earlier(next, j.due(now))
	}
	due := now.Sub(p.lastRetain) >= retainEvery || now.Before(p.lastRetain) // a clock stepped back re-arms
	retain := false
	for _, r := range p.series {
		if r.s.opt.MaxAge > 0 {
			retain = true
			break
		}
	}
	p.mu.Unlock()
	if retain {
		if due {
			p.retainAll(now)
			next = earlier(next, now.Add(retainEvery))
		} else {
			next = earlier(next, p.lastRetain.Add(retainEvery))
		}
	}
	return next, busy
}
