package flatstore

import (
	"sync"
	"time"
)

// filePool is the process-wide set of event files. Several instances that
// write one path share one File (one handle, one lock), so their lines never
// interleave. It counts the files that hold a slot — open, or reserved by a
// flush about to open them — against max_open_sockets, and runs one
// maintenance goroutine (idle_timeout, rotate_period, reopen_check) while
// any instance is alive.
type filePool struct {
	sys *sysOps
	now func() time.Time

	mu    sync.Mutex
	files map[string]*File
	slots int // files holding a slot (File.slot)
	// memo holds what forgotten Files knew of their last file (memory),
	// for paths with a suffix or built-in rotation: the File made for that
	// path next does not append to a full file nor go back to the first
	// of a series. It holds at most one entry per distinct rendered path,
	// each of which has files on disk.
	memo map[string]memory

	users    int
	stop     chan struct{}
	stopped  chan struct{}
	interval time.Duration
}

var pool = newPool(realOps, time.Now)

func newPool(sys *sysOps, now func() time.Time) *filePool {
	return &filePool{sys: sys, now: now, files: map[string]*File{}, memo: map[string]memory{},
		interval: 100 * time.Millisecond}
}

// OpenCount is the number of files holding a slot.
func (p *filePool) OpenCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slots
}

// lookupLocked returns the File for path, creating it with opt.
func (p *filePool) lookupLocked(path string, opt fileOptions) *File {
	f := p.files[path]
	if f == nil {
		f = newFile(path, opt, p.sys, p.now)
		f.pool = p
		p.files[path] = f
		if mm, ok := p.memo[path]; ok {
			delete(p.memo, path)
			f.recall(mm)
		}
	}
	return f
}

// ref registers a configured static path for an instance.
func (p *filePool) ref(path string, opt fileOptions) *File {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.lookupLocked(path, opt)
	f.refs++
	return f
}

// unref drops an instance's reference; the last one closes the file.
func (p *filePool) unref(f *File) {
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

// acquire pins the files at paths for one flush. When the files not yet
// holding a slot would take the process over limit, it pins nothing and
// returns false: the flush writes nothing and asks for a retry.
func (p *filePool) acquire(paths []string, opt fileOptions, limit int, out []*File) ([]*File, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	need := 0
	for _, path := range paths {
		if f := p.files[path]; f == nil || !f.slot {
			need++
		}
	}
	if p.slots+need > limit {
		return out, false
	}
	for _, path := range paths {
		f := p.lookupLocked(path, opt)
		if !f.slot {
			f.slot = true
			p.slots++
		}
		f.pins++
		out = append(out, f)
	}
	return out, true
}

// release unpins the files of a flush.
func (p *filePool) release(files []*File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range files {
		f.pins--
		p.freeLocked(f)
	}
}

// opened is called by a File (under its lock) when it opened its handle.
// isOpen changes only under p.mu, so a slot is never counted twice nor
// freed twice when a close races with a flush that acquires the file.
func (p *filePool) opened(f *File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f.isOpen.Store(true)
	if !f.slot { // opened without acquire (tests): count it all the same
		f.slot = true
		p.slots++
	}
}

// closed is called by a File (under its lock) when it closed its handle.
func (p *filePool) closed(f *File, mm memory) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f.mem = mm
	f.isOpen.Store(false)
	p.freeLocked(f)
}

// freeLocked gives back the slot of a file that is neither open nor
// pinned, and forgets it when no instance configured it.
func (p *filePool) freeLocked(f *File) {
	if f.pins > 0 || f.isOpen.Load() {
		return
	}
	if f.slot {
		f.slot = false
		p.slots--
	}
	p.forgetLocked(f)
}

// forgetLocked drops a rendered path that is neither open, pinned nor
// configured, so that templates with many values do not grow the map.
func (p *filePool) forgetLocked(f *File) {
	if f.refs == 0 && f.pins == 0 && !f.isOpen.Load() && p.files[f.path] == f {
		delete(p.files, f.path)
		o := f.opt
		if f.mem.name != "" && (o.suffix != "" || o.rotateCount > 0 || o.rotateSize > 0 || o.rotatePeriod > 0) {
			p.memo[f.path] = f.mem
		}
	}
}

// get returns the File for path, or nil.
func (p *filePool) get(path string) *File {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.files[path]
}

// snapshot returns the files whose path satisfies keep.
func (p *filePool) snapshot(keep func(*File) bool) []*File {
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

// start registers an instance; the first starts the maintenance goroutine.
func (p *filePool) start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users++
	if p.users == 1 {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.maintain(p.stop, p.stopped, p.interval)
	}
}

// done unregisters an instance; the last stops the maintenance goroutine
// and waits for it.
func (p *filePool) done() {
	p.mu.Lock()
	p.users--
	var stop, stopped chan struct{}
	if p.users == 0 {
		stop, stopped = p.stop, p.stopped
		p.stop, p.stopped = nil, nil
	}
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
}

func (p *filePool) maintain(stop, stopped chan struct{}, every time.Duration) {
	defer close(stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.tick()
		}
	}
}

// tick runs one round of maintenance over the open files.
func (p *filePool) tick() {
	for _, f := range p.snapshot(func(f *File) bool { return f.isOpen.Load() }) {
		f.maintain()
	}
}
