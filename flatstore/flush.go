package flatstore

import (
	"errors"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
)

// Drop reasons of the flush itself; a record's own are event.DropReasons.
const (
	DropBadPath  = "bad_path"          // the rendered path can never be written (filestore.IsBadPath)
	DropMaxFiles = "max_dynamic_files" // a template path past the output's max_dynamic_files
)

// DropReasons lists every drop reason: a record's own, then the flush's.
func DropReasons() []string {
	return append(event.DropReasons(), DropBadPath, DropMaxFiles)
}

// Causes of a flush answered RETRY.
const (
	RetryWriteError = "write_error"      // the file system refused a write, open or sync
	RetryNoSlot     = "max_open_sockets" // every slot was held by a write in progress
	RetryPanic      = "panic"            // a bug, recovered
)

// RetryCauses lists every retry cause.
func RetryCauses() []string { return []string{RetryWriteError, RetryNoSlot, RetryPanic} }

// group is the lines of one flush that go to one file.
type group struct {
	path string
	hash uint64 // filestore.PathHash(path)
	buf  []byte
	ends []int
	// untimed is path with its strftime conversions as written (%Y),
	// set for a template with conversions only: max_dynamic_files counts
	// these, not each day's file.
	untimed string
}

// groupWork is one group being written: what of its lines is left to
// write (a replay skips what had landed) and its account in the journal.
type groupWork struct {
	g    int // index in groups
	buf  []byte
	ends []int
	gi   filestore.GroupIntent
}

// badDrop is the records of one group dropped as bad_path.
type badDrop struct {
	n   int
	err error
}

// flushState is the reusable memory of one flush.
type flushState struct {
	enc    *event.Encoder
	groups []group
	index  map[string]int
	line   []byte
	pbuf   []byte
	drops  map[string]int
	order  []int             // the groups to write, in the order of their paths
	held   []*filestore.File // the files written, held until the outcome is known
	bad    []badDrop         // bad_path drops, counted once the outcome is known
	tx     filestore.Tx      // the flush's account in the journal
	work   []groupWork       // the groups being written, in the order of held
	budget event.Budget
	clock  event.TimeCache // the date and clock of the last record's second, for a path with conversions
}

func newFlushState(cfg *Config) *flushState {
	return &flushState{enc: event.NewEncoder(cfg.Options), index: map[string]int{}, drops: map[string]int{}}
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
	clear(s.bad[:cap(s.bad)])
	s.bad = s.bad[:0]
	if cap(s.line) > maxKeptBuffer {
		s.line = nil
	}
	s.enc.Shrink(maxKeptBuffer)
}

// groupFor returns the group for path, adding it when new.
func (s *flushState) groupFor(path []byte) *group {
	if i, ok := s.index[string(path)]; ok {
		return &s.groups[i]
	}
	if len(s.groups) < cap(s.groups) {
		s.groups = s.groups[:len(s.groups)+1]
	} else {
		s.groups = append(s.groups, group{})
	}
	g := &s.groups[len(s.groups)-1]
	// The slot's last path is kept: a flush to the files of the flush
	// before it (the static path always) allocates no path string.
	if g.path != string(path) || g.hash == 0 {
		g.path, g.untimed = string(path), ""
		g.hash = filestore.PathHash(g.path)
	}
	s.index[g.path] = len(s.groups) - 1
	return g
}

// admitted is the name max_dynamic_files counts g's path under.
func (g *group) admitted() string {
	if g.untimed != "" {
		return g.untimed
	}
	return g.path
}

// getState returns a flush state: the instance's spare one, else one of
// the pool (the flushes running beside another), else a new one.
func (in *Instance) getState() *flushState {
	if s := in.spare.Swap(nil); s != nil {
		return s
	}
	if s, _ := in.states.Get().(*flushState); s != nil {
		return s
	}
	return newFlushState(in.cfg)
}

// putState gives a flush state back. One is kept as the spare, outside
// sync.Pool: a pool keeps an item on the processor that put it and drops
// it at a garbage collection, and inside Fluent Bit a flush runs on
// whichever processor is idle, so a pool alone had the next flush grow a
// chunk's worth of buffers again — the allocations that brought the
// collections, the Go runtime's main cost outside the flush (issue 23).
func (in *Instance) putState(s *flushState) {
	s.reset()
	if !in.spare.CompareAndSwap(nil, s) {
		in.states.Put(s)
	}
}

// Flush writes the records of one Fluent Bit chunk. Records that cannot
// become an event are skipped and counted, and so are the records bound for
// a rendered path that can never be written (bad_path); the rest are
// written. It returns Retry when a file cannot be written now — having cut
// back what it wrote to every file of the chunk, so that the resend writes
// each line once — and Error only when nothing in data is msgpack.
func (in *Instance) Flush(data []byte, tag string) (res Result) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			in.log.Errorf("panic in flush, chunk will be retried: %v\n%s", r, debug.Stack())
			in.metrics.retry(RetryPanic)
			res = Retry
		}
		in.metrics.flushTime.Observe(time.Since(start).Seconds())
	}()
	in.life.RLock()
	defer in.life.RUnlock()
	if in.closed {
		return Retry
	}
	if in.panicHook != nil {
		in.panicHook()
	}

	s := in.getState()
	defer in.putState(s)

	objects, records := in.render(s, data, tag)
	if objects == 0 && len(data) > 0 {
		in.countDrops(s.drops)
		// A whole chunk lost is an error, never rate-limited.
		in.log.Errorf("chunk of %d bytes (tag %q) holds no msgpack record: dropped", len(data), tag)
		return Error
	}
	if records == 0 {
		in.countDrops(s.drops)
		return OK
	}
	res = in.write(s, data, tag)
	if res != Retry {
		// A chunk answered Retry comes again: its drops are counted once,
		// when it is done.
		in.countDrops(s.drops)
	}
	return res
}

// render walks the chunk and renders each record's line into the group of
// its file. It returns how many msgpack objects and how many good records
// it found.
func (in *Instance) render(s *flushState, data []byte, tag string) (objects, records int) {
	tagb := unsafeBytes(tag)
	dec := event.NewDecoder(data)
	s.budget = event.NewBudget(len(data))
	// One group for the whole chunk when the path cannot change from record
	// to record: a static path, or a template of the tag alone.
	var g0 *group
	switch {
	case in.static != nil:
		g0 = s.groupFor(unsafeBytes(in.cfg.Path))
	case !in.cfg.Template.PerRecord():
		s.pbuf = in.cfg.Template.Render(s.pbuf[:0], tagb, nil, nil, event.Time{}, nil)
		g0 = s.groupFor(s.pbuf)
	}
	if want := min(len(data), maxKeptBuffer); g0 != nil && cap(g0.buf) < want {
		// The chunk's lines take about as many bytes as its msgpack: one
		// allocation of that size, not a chain of doublings whose garbage
		// brings the runtime's collections while the buffers warm up. Not
		// past the buffer a flush keeps: a huge chunk may hold a record
		// that is dropped as too large, and memory follows what is
		// rendered, record by record (the budget), never the chunk's size.
		g0.buf = slices.Grow(g0.buf, want-len(g0.buf))
	}
	// g0's lines go into a local slice, stored back into g0 when the walk
	// ends: stored into g0 each record, the slice's pointer took a write
	// barrier (gcWriteBarrier2) whenever the collector was marking during
	// the flush. Inside Fluent Bit that cost up to about 100 instructions
	// a record, and made the flush's count vary from run to run with the
	// collector's timing.
	var buf []byte
	if g0 != nil {
		buf = g0.buf
		defer func() { g0.buf = buf }()
	}
	for {
		st, t, body, reason := dec.Next()
		switch st {
		case event.StatusEnd:
			return objects, records
		case event.StatusFatal:
			s.drops[event.DropTruncated]++
			return objects, records
		case event.StatusGroup:
			objects++
			continue
		case event.StatusBad:
			objects++
			s.drops[reason]++
			continue
		}
		objects++
		var err error
		var rest, evName []byte
		if g0 != nil {
			before := len(buf)
			buf, rest, _, err = s.enc.AppendLineMax(buf, t, body, tagb, s.budget.Room(false))
			if err == nil && !s.budget.Keep(len(buf)-before, len(data)-len(rest)) {
				err = event.ErrTooLarge
			}
			if err == nil {
				g0.ends = append(g0.ends, len(buf))
			} else {
				buf = buf[:before]
			}
		} else {
			s.line, rest, evName, err = s.enc.AppendLineMax(s.line[:0], t, body, tagb, s.budget.Room(true))
			if err == nil && !s.budget.Keep(len(s.line), len(data)-len(rest)) {
				err = event.ErrTooLarge
			}
			if err == nil {
				s.pbuf = in.cfg.Template.Render(s.pbuf[:0], tagb, evName, body[:len(body)-len(rest)], t, &s.clock)
				g := s.groupFor(s.pbuf)
				if g.untimed == "" && in.cfg.Template.Timed() {
					g.untimed = string(in.cfg.Template.RenderUntimed(nil, tagb, evName, body[:len(body)-len(rest)]))
				}
				g.buf = append(g.buf, s.line...)
				g.ends = append(g.ends, len(g.buf))
			}
		}
		if err != nil {
			de, ok := err.(event.DropError)
			if !ok || de == event.ErrTruncated {
				// The walk cannot go on past this record.
				s.drops[event.DropTruncated]++
				return objects, records
			}
			s.drops[string(de)]++
			// Skip the whole body and go on with the next record.
			if r, serr := event.SkipValue(body); serr == nil {
				dec.Advance(r)
				continue
			}
			s.drops[event.DropTruncated]++
			return objects, records
		}
		dec.Advance(rest)
		records++
	}
}

// write hands each group to its file, in the order of their paths, and
// holds each file it wrote (locked and pinned) until every group is
// written: then it commits them all. When a file fails for its file system
// it cuts back what the chunk wrote to every file (docs/delivery.md) and
// answers Retry, so that the resend writes every line once with no memory
// of this attempt. Records bound for a path that can never be written
// (bad_path, another output's file, past max_dynamic_files) are dropped,
// and stay dropped in the resend, which renders the same paths.
func (in *Instance) write(s *flushState, data []byte, tag string) (res Result) {
	store := in.proc.store
	var lines, bytes, overMax int
	s.order = s.order[:0]
	for i := range s.groups {
		g := &s.groups[i]
		n := len(g.ends)
		if n == 0 {
			continue // the chunk's one group, with no good line
		}
		if in.static == nil {
			// A rendered path: never another output's file, and never one
			// file more than max_dynamic_files — admitted in the order the
			// records came, before the writes go in the order of paths.
			if o := in.proc.staticOwner(g.path); o != nil {
				s.bad = append(s.bad, badDrop{n, filestore.OtherOutput(g.path, o.cfg.Path)})
				continue
			}
			if !in.dynamic.admit(g.admitted()) {
				overMax += n
				continue
			}
		}
		s.order = append(s.order, i)
	}
	if len(s.order) > 1 {
		// One order for every flush: two flushes that share files never
		// wait for each other's.
		slices.SortFunc(s.order, func(a, b int) int { return strings.Compare(s.groups[a].path, s.groups[b].path) })
	}
	res = OK
	held := s.held[:0]
	defer func() {
		if r := recover(); r != nil {
			// A bug, or a fault of the journal's mapping: the flush
			// answers Retry, and no file stays locked nor holds a part of
			// the chunk.
			fault := s.tx.Fault(r)
			for k := len(held) - 1; k >= 0; k-- {
				if held[k] != nil {
					_ = held[k].Abort()
					store.Unpin(held[k])
				}
			}
			clear(held)
			s.held = held[:0]
			s.tx.End(false)
			if !fault {
				panic(r) // Flush recovers it
			}
			in.metrics.retry(RetryWriteError)
			res = Retry
		}
	}()
	// The journal's account begins under the recovery above: End always
	// follows Begin.
	replay := s.tx.Begin(in.journal, data, tag)
	// Every file first: held in the order of their paths, what a replay
	// had landed skipped and, over several files, the intent of each
	// file's write journaled, so that under sync flush one fdatasync of
	// the journal covers them all (File.Prepare). Then the appends.
	work := s.work[:0]
	for _, i := range s.order {
		g := &s.groups[i]
		f, err := store.Pin(g.path, in.opt)
		if err != nil {
			s.bad = append(s.bad, badDrop{len(g.ends), err})
			continue
		}
		f.Hold()
		held = append(held, f)
		w := groupWork{g: i, buf: g.buf, ends: g.ends}
		w.gi = filestore.GroupIntent{Tx: &s.tx, Path: g.hash}
		if replay {
			// What an earlier process landed of this group is skipped.
			if skip := f.Replayed(&s.tx, w.gi.Path, w.buf, w.ends); skip > 0 {
				in.log.Infof("a chunk replayed after a restart: %d of its %d line(s) for %q had landed; written once", skip, len(g.ends), g.path)
				w.buf, w.ends, w.gi.Base = trimLines(w.buf, w.ends, skip)
			}
		}
		work = append(work, w)
		if len(s.order) > 1 && s.tx.Active() {
			for _, r := range f.Prepare(w.ends, in.slots, &work[len(work)-1].gi) {
				in.log.Infof("%v", r)
			}
		}
	}
	s.work = work
	for wi := range work {
		w := &work[wi]
		g := &s.groups[w.g]
		n := len(g.ends)
		f := held[wi]
		gi := &w.gi
		if !s.tx.Active() {
			gi = nil
		}
		buf, ends := w.buf, w.ends
		toWrite, bytesToWrite := len(ends), len(buf)
		var rots []filestore.Rotation
		var err error
		for k := 0; ; {
			w, more, err2 := f.Append(buf, ends, in.slots, gi)
			rots, err = append(rots, more...), err2
			// More files than max_open_sockets: close the descriptor of a
			// file this chunk wrote already (it stays held) to open the
			// next, and go on from the lines that landed.
			if !errors.Is(err, filestore.ErrNoSlot) {
				break
			}
			for k < wi && (held[k] == nil || !held[k].CloseHeld()) {
				k++
			}
			if k == wi {
				break
			}
			if w > 0 {
				var base int
				buf, ends, base = trimLines(buf, ends, w)
				if gi != nil {
					gi.Base += base
				}
			}
		}
		for _, r := range rots {
			in.log.Infof("%v", r)
		}
		if err == nil {
			lines += toWrite
			bytes += bytesToWrite
			continue
		}
		held[wi] = nil
		if cerr := f.Abort(); cerr != nil {
			in.log.Errorf("%v: cutting back failed: %v", err, cerr)
		}
		store.Unpin(f)
		switch {
		case errors.Is(err, filestore.ErrNoSlot):
			in.log.LimitedWarnf("max_open_sockets", "no more free sockets (max_open_sockets=%d): every open file is being written; chunk will be retried", in.cfg.MaxOpenSockets)
			in.metrics.retry(RetryNoSlot)
			res = Retry
		case in.static == nil && filestore.IsBadPath(err):
			in.metrics.countWriteError(filestore.ErrnoName(err))
			s.bad = append(s.bad, badDrop{n, err})
			in.dynamic.release(g.admitted())
			continue
		default:
			// Rate-limited by errno, not by path: a template's many
			// files on one full disk make one message every few seconds.
			in.log.Limitedf(logger.LevelError, "write:"+filestore.ErrnoName(err), "%v: chunk will be retried", err)
			in.metrics.countWriteError(filestore.ErrnoName(err))
			in.metrics.retry(RetryWriteError)
			res = Retry
		}
		break
	}
	if res != Retry {
		// The journal's records say done before any file is let go.
		s.tx.End(true)
	}
	for k := len(held) - 1; k >= 0; k-- {
		f := held[k]
		if f == nil {
			continue // failed, cut back and let go already
		}
		if res == Retry {
			if err := f.Abort(); err != nil {
				in.log.Errorf("cutting back %q after a failed flush: %v (its lines there will be written again)", f.Path(), err)
			}
		} else {
			f.Commit()
		}
		store.Unpin(f)
		held[k] = nil
	}
	held = held[:0]
	s.held = held
	if res == Retry {
		s.tx.End(false)
	}
	bad := s.bad
	s.bad = s.bad[:0]
	if res == Retry {
		return Retry
	}
	for _, d := range bad {
		in.dropBadPath(d.n, d.err)
	}
	in.dropMaxFiles(overMax)
	in.metrics.written(lines, bytes)
	return res
}

// trimLines drops the first n lines of buf (lines ending at ends),
// rebasing ends in place; it returns the rest and where it began.
func trimLines(buf []byte, ends []int, n int) ([]byte, []int, int) {
	base := ends[n-1]
	buf, ends = buf[base:], ends[n:]
	for j := range ends {
		ends[j] -= base
	}
	return buf, ends, base
}

// dropBadPath counts and logs the records bound for a rendered path that
// can never be written.
func (in *Instance) dropBadPath(n int, err error) {
	if n <= 0 {
		return
	}
	in.dropped.Add(uint64(n))
	in.metrics.drop(DropBadPath, n)
	in.log.LimitedWarnf("bad_path", "dropped %d record(s) (bad_path): %v", n, err)
}

// dropMaxFiles counts and logs the records bound for a new rendered path
// past max_dynamic_files.
func (in *Instance) dropMaxFiles(n int) {
	if n <= 0 {
		return
	}
	in.dropped.Add(uint64(n))
	in.metrics.drop(DropMaxFiles, n)
	in.log.LimitedWarnf("max_dynamic_files", "dropped %d record(s) (max_dynamic_files): the template %q has written %d distinct files, its max_dynamic_files", n, in.cfg.Path, in.cfg.MaxDynamicFiles)
}

func (in *Instance) countDrops(drops map[string]int) {
	for reason, n := range drops {
		in.dropped.Add(uint64(n))
		in.metrics.drop(reason, n)
		in.log.LimitedWarnf("drop:"+reason, "skipped %d record(s): %s", n, reason)
	}
}

// unsafeBytes views s as bytes without copying; the bytes must not be
// modified.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
