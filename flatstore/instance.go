package flatstore

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Result is the outcome of a flush; package plugin maps it to FLB_OK,
// FLB_RETRY and FLB_ERROR. The zero value is an error, as FLB_ERROR is 0.
type Result int

// Flush results.
const (
	Error Result = iota // the chunk can never be written: drop it
	OK                  // written (records that could not be were counted)
	Retry               // nothing lost: send the chunk again later
)

func (r Result) String() string { return [...]string{"ERROR", "OK", "RETRY"}[r] }

// Instance is one configured flatstore output. Its methods are safe for
// concurrent use: Fluent Bit's workers flush from several threads at once.
type Instance struct {
	name   string
	cfg    *Config
	log    *Logger
	opt    fileOptions
	static *File // the configured file, when the path has no template

	states sync.Pool // *flushState

	life      sync.RWMutex // flushes hold it shared; Close exclusively
	closed    bool
	closeOnce sync.Once

	dropped atomic.Uint64

	// This instance's metrics, looked up once rather than at every flush.
	recordsOut, bytesOut prometheus.Counter
	flushTime            prometheus.Observer

	// panicHook, when set (tests only), is called inside the flush path.
	panicHook func()
}

var instanceSeq atomic.Int64

// NewInstance builds an instance from a validated Config. name is how logs
// and metrics call it (flatstore.0 when empty); log may be nil for stderr.
func NewInstance(cfg *Config, name string, log *Logger) *Instance {
	if name == "" {
		name = fmt.Sprintf("flatstore.%d", instanceSeq.Add(1)-1)
	}
	if log == nil {
		log = NewLogger(name, nil)
	}
	in := &Instance{name: name, cfg: cfg, log: log}
	in.opt = fileOptions{
		perm:         cfg.FilePerm,
		mkdir:        cfg.Mkdir,
		sync:         cfg.SyncFlush,
		suffix:       cfg.Suffix,
		rotatePeriod: cfg.RotatePeriod,
		rotateCount:  cfg.RotateCount,
		rotateSize:   cfg.RotateSize,
		reopenCheck:  cfg.ReopenCheck,
		idleTimeout:  cfg.IdleTimeout,
		log:          log,
	}
	if h := HeaderLine(cfg); h != nil {
		in.opt.header = append(h, '\n')
	}
	if !cfg.Template.Static() {
		in.opt.template = cfg.Path
	}
	in.recordsOut = m.records.WithLabelValues(name)
	in.bytesOut = m.bytes.WithLabelValues(name)
	in.flushTime = m.flushDuration.WithLabelValues(name)
	in.states.New = func() any { return newFlushState(cfg) }
	pool.start()
	if cfg.Template.Static() {
		in.static = pool.ref(cfg.Path, in.opt)
	}
	log.Infof("writing events to %s (delimiter %q, escape %s, max_open_sockets %d, file_permissions %04o, control %s)",
		cfg.Path, cfg.Delimiter, cfg.Escape, cfg.MaxOpenSockets, cfg.FilePerm, cfg.ControlListen)
	return in
}

// Name returns the instance's name.
func (in *Instance) Name() string { return in.name }

// Config returns the instance's configuration.
func (in *Instance) Config() *Config { return in.cfg }

// Dropped returns how many records this instance skipped.
func (in *Instance) Dropped() uint64 { return in.dropped.Load() }

// group is the lines of one flush that go to one file.
type group struct {
	path string
	buf  []byte
	ends []int
}

// flushState is the reusable memory of one flush.
type flushState struct {
	enc    *Encoder
	groups []group
	index  map[string]int
	paths  []string
	sel    []*group
	files  []*File
	line   []byte
	pbuf   []byte
	drops  map[string]int
}

func newFlushState(cfg *Config) *flushState {
	return &flushState{enc: NewEncoder(cfg), index: map[string]int{}, drops: map[string]int{}}
}

// maxKeptBuffer is the largest buffer a flush state keeps for the next flush.
const maxKeptBuffer = 8 << 20

func (s *flushState) reset() {
	for i := range s.groups {
		if cap(s.groups[i].buf) > maxKeptBuffer {
			s.groups[i].buf = nil
		}
		s.groups[i].buf, s.groups[i].ends = s.groups[i].buf[:0], s.groups[i].ends[:0]
	}
	s.groups = s.groups[:0]
	clear(s.index)
	clear(s.drops)
	s.paths = s.paths[:0]
	clear(s.sel)
	s.sel = s.sel[:0]
	clear(s.files)
	s.files = s.files[:0]
	if cap(s.line) > maxKeptBuffer {
		s.line = nil
	}
	if cap(s.enc.tmp) > maxKeptBuffer {
		s.enc.tmp = nil
	}
	if cap(s.enc.values) > maxKeptBuffer {
		s.enc.values = nil
	}
}

// groupFor returns the group for path, adding it when new.
func (s *flushState) groupFor(path []byte) *group {
	if i, ok := s.index[string(path)]; ok {
		return &s.groups[i]
	}
	p := string(path)
	s.index[p] = len(s.groups)
	if len(s.groups) < cap(s.groups) {
		s.groups = s.groups[:len(s.groups)+1]
	} else {
		s.groups = append(s.groups, group{})
	}
	g := &s.groups[len(s.groups)-1]
	g.path = p
	s.paths = append(s.paths, p)
	return g
}

// Flush writes the records of one Fluent Bit chunk. Records that cannot
// become an event are skipped and counted; the rest are written. It returns
// Retry, having written nothing it keeps, when a file cannot be written now,
// and Error only when nothing in data is msgpack.
func (in *Instance) Flush(data []byte, tag string) (res Result) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			in.log.Errorf("panic in flush, chunk will be retried: %v\n%s", r, debug.Stack())
			m.retries.WithLabelValues(in.name, "panic").Inc()
			res = Retry
		}
		in.flushTime.Observe(time.Since(start).Seconds())
	}()
	in.life.RLock()
	defer in.life.RUnlock()
	if in.closed {
		return Retry
	}
	if in.panicHook != nil {
		in.panicHook()
	}

	s := in.states.Get().(*flushState)
	defer func() { s.reset(); in.states.Put(s) }()

	tagb := unsafeBytes(tag)
	dec := decoder{buf: data}
	static := in.static != nil
	var g0 *group
	if static {
		g0 = s.groupFor(unsafeBytes(in.cfg.Path))
	}
	objects, records := 0, 0
loop:
	for {
		st, t, body, reason := dec.next()
		switch st {
		case recEnd:
			break loop
		case recFatal:
			s.drops[DropTruncated]++
			break loop
		case recGroup:
			objects++
			continue
		case recBad:
			objects++
			s.drops[reason]++
			continue
		}
		objects++
		var err error
		var rest []byte
		if static {
			before := len(g0.buf)
			g0.buf, rest, err = s.enc.AppendLine(g0.buf, t, body, tagb)
			if err == nil {
				g0.ends = append(g0.ends, len(g0.buf))
			} else {
				g0.buf = g0.buf[:before]
			}
		} else {
			s.line, rest, err = s.enc.AppendLine(s.line[:0], t, body, tagb)
			if err == nil {
				s.pbuf = in.cfg.Template.Render(s.pbuf[:0], tagb, s.enc.Event(), body[:len(body)-len(rest)])
				g := s.groupFor(s.pbuf)
				g.buf = append(g.buf, s.line...)
				g.ends = append(g.ends, len(g.buf))
			}
		}
		if err != nil {
			de, ok := err.(dropError)
			if !ok || de == errTruncated {
				// The walk cannot go on past this record.
				s.drops[DropTruncated]++
				break loop
			}
			s.drops[string(de)]++
			// Skip the whole body and go on with the next record.
			if r, serr := skipValue(body); serr == nil {
				dec.advance(r)
				continue
			}
			s.drops[DropTruncated]++
			break loop
		}
		dec.advance(rest)
		records++
	}
	if objects == 0 && len(data) > 0 {
		// A whole chunk lost is an error, never rate-limited.
		in.log.Errorf("chunk of %d bytes (tag %q) holds no msgpack record: dropped", len(data), tag)
		in.countDrops(s.drops)
		return Error
	}
	in.countDrops(s.drops)
	return in.write(s, records)
}

// write hands each group to its file.
func (in *Instance) write(s *flushState, records int) Result {
	if records == 0 {
		return OK
	}
	// Drop empty groups (a static group with no good line).
	paths, groups := s.paths[:0], s.sel[:0]
	for i := range s.groups {
		if g := &s.groups[i]; len(g.ends) > 0 {
			paths = append(paths, g.path)
			groups = append(groups, g)
		}
	}
	s.paths, s.sel = paths, groups
	files, ok := pool.acquire(paths, in.opt, in.cfg.MaxOpenSockets, s.files[:0])
	s.files = files
	if !ok {
		in.log.LimitedWarnf("max_open_sockets", "no more free sockets (max_open_sockets=%d): %d files needed, chunk will be retried", in.cfg.MaxOpenSockets, len(paths))
		m.retries.WithLabelValues(in.name, "max_open_sockets").Inc()
		return Retry
	}
	defer pool.release(files)
	var lines, bytes int
	// What was written counts, also when a later file fails.
	defer func() {
		in.recordsOut.Add(float64(lines))
		in.bytesOut.Add(float64(bytes))
	}()
	for i, f := range files {
		g := groups[i]
		rot, err := f.Write(g.buf, g.ends)
		for _, r := range rot {
			in.log.Infof("rotated %s (%s)", f.path, r)
		}
		if err != nil {
			in.log.Errorf("%v: chunk will be retried", err)
			m.writeErrors.WithLabelValues(in.name, errnoName(err)).Inc()
			m.retries.WithLabelValues(in.name, "write_error").Inc()
			return Retry
		}
		lines += len(g.ends)
		bytes += len(g.buf)
	}
	return OK
}

func (in *Instance) countDrops(drops map[string]int) {
	for reason, n := range drops {
		in.dropped.Add(uint64(n))
		m.dropped.WithLabelValues(in.name, reason).Add(float64(n))
		in.log.LimitedWarnf("drop:"+reason, "skipped %d record(s): %s", n, reason)
	}
}

// Manages reports whether path is, byte for byte, this instance's
// configured path (absolute, or as written after "flatstore:") or a path
// rendered from its template that is open now.
func (in *Instance) Manages(path string) bool {
	if in.static != nil {
		return path == in.cfg.Path || path == in.cfg.RawPath
	}
	f := pool.get(path)
	return f != nil && f.opt.template == in.cfg.Path && f.isOpen.Load()
}

// Rotate closes the managed file at path, waiting for a write in progress;
// the next write opens it again. It creates nothing. A path this instance
// does not manage gives ErrNotManaged and touches nothing.
func (in *Instance) Rotate(path string) error {
	if !in.Manages(path) {
		return ErrNotManaged
	}
	f := in.static
	if f == nil {
		if f = pool.get(path); f == nil {
			return nil
		}
	}
	f.Rotate(ReasonMI)
	in.log.Infof("rotated %s (mi)", f.path)
	return nil
}

// Status lists the files this instance manages.
func (in *Instance) Status() []FileStatus {
	if in.static != nil {
		return []FileStatus{in.static.Status()}
	}
	var out []FileStatus
	for _, f := range pool.snapshot(func(f *File) bool { return f.opt.template == in.cfg.Path }) {
		out = append(out, f.Status())
	}
	return out
}

// Close waits for flushes in progress, closes the instance's files (with
// fdatasync under sync flush) and stops the maintenance goroutine when it
// is the last instance. It is idempotent.
func (in *Instance) Close() {
	in.closeOnce.Do(func() {
		in.life.Lock()
		in.closed = true
		in.life.Unlock()
		if in.static != nil {
			pool.unref(in.static)
		} else {
			for _, f := range pool.snapshot(func(f *File) bool { return f.opt.template == in.cfg.Path }) {
				f.Close()
			}
		}
		pool.done()
		in.log.Infof("closed")
	})
}
