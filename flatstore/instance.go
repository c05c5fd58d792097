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

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/flatstore/strftime"
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

// ErrNotManaged is returned by Rotate for a path that no live instance
// manages. Its text is the OpenSIPS MI error message.
//
//lint:ignore ST1005 the text is OpenSIPS's MI error message, byte for byte
var ErrNotManaged = errors.New("File not found")

// Instance is one configured flatstore output. Its methods are safe for
// concurrent use: Fluent Bit's workers flush from several threads at once.
type Instance struct {
	proc   *Process
	reg    *output // this instance as its process knows it
	name   string
	cfg    *Config
	log    *logger.Logger
	opt    *filestore.Options
	static *filestore.File // the configured file, when the path has no template

	spare   atomic.Pointer[flushState] // the last flush's state, kept across collections (putState)
	states  sync.Pool                  // *flushState: those of flushes running beside another
	journal *filestore.Journal         // what it wrote, for replays after a crash; nil without one
	slots   *filestore.Slots           // max_open_sockets: this output's open files
	dynamic dynamicFiles

	life      sync.RWMutex // flushes hold it shared; Close exclusively
	closed    bool
	closeOnce sync.Once

	dropped atomic.Uint64
	metrics *instanceMetrics

	// panicHook, when set (tests only), is called inside the flush path.
	panicHook func()
}

// NewInstance builds an instance from a validated Config in the process p.
// name is how logs and metrics call it (the output's alias, or the engine's
// name such as flatstore.0); log may be nil for stderr. It fails when
// another live output writes the same path with settings that shape the
// file differently.
func NewInstance(p *Process, cfg *Config, name string, log *logger.Logger) (*Instance, error) {
	if log == nil {
		log = logger.New(name, nil)
	}
	in := &Instance{proc: p, name: name, cfg: cfg, log: log,
		slots: filestore.NewSlots(cfg.MaxOpenSockets), dynamic: dynamicFiles{limit: cfg.MaxDynamicFiles}}
	in.opt = &filestore.Options{
		Perm:  cfg.FilePerm,
		Mkdir: cfg.Mkdir,
		Sync:  cfg.SyncFlush,
		Rotate: filestore.RotateOptions{
			Suffix:      cfg.Suffix,
			Location:    cfg.Location,
			Period:      cfg.RotatePeriod,
			Count:       cfg.RotateCount,
			Size:        cfg.RotateSize,
			ReopenCheck: cfg.ReopenCheck,
		},
		Archive: filestore.ArchiveOptions{
			MaxFiles: cfg.RotateMaxFiles,
			MaxAge:   cfg.RotateMaxAge,
			Compress: cfg.Compress,
		},
		IdleTimeout: cfg.IdleTimeout,
		Format:      formatOf(cfg),
		Log:         log,
	}
	if h := event.HeaderLine(cfg.Options); h != nil {
		in.opt.Header = append(h, '\n')
	}
	if !cfg.Template.Static() {
		in.opt.Template, in.opt.Root = cfg.Path, cfg.Template.StaticDir()
	}
	reg, err := p.register(name, cfg, in.opt.Format)
	if err != nil {
		return nil, err
	}
	in.reg = reg
	in.metrics = p.metrics.forInstance(name)
	in.journal = openJournal(p.store, cfg, name, log)
	p.store.Start()
	if cfg.Template.Static() {
		in.static = p.store.Acquire(cfg.Path, in.opt)
	}
	return in, nil
}

// ExportTo creates the instance's series in em, the metrics context of the
// engine that runs it (Fluent Bit's, for its /api/v2/metrics/prometheus),
// every one at 0, and from then on counts there too: its own series as it
// counts them (labelled with its name), the process's (rotations,
// deletions, open files) copied there at each change until Close (no timer). Call it
// once, before the first Flush; after Close the instance never touches em.
func (in *Instance) ExportTo(em EngineMetrics) {
	if em == nil || in.metrics.engine != nil {
		return
	}
	es := newEngineSeries(em, in.name)
	in.metrics.engine = es
	in.proc.metrics.attach(es)
}

// LogStarted logs, once the output has started (its Init succeeded, the
// control endpoint bound), where it writes and every setting in effect.
func (in *Instance) LogStarted() {
	cfg := in.cfg
	where := strconv.Quote(cfg.Path)
	if cfg.Suffix != "" {
		where += fmt.Sprintf(" + suffix %q (now %q)", cfg.Suffix, cfg.Path+strftime.Format(cfg.Suffix, in.opt.Rotate.In(time.Now())))
	}
	in.log.Infof("writing events to %s: %s", where, cfg.Settings())
}

// dynamicFiles bounds the distinct files a template output writes while it
// runs (max_dynamic_files): each rendered path is admitted once, and past
// the bound the records of a new path are dropped, so no stream of record
// values can create files — inodes, disk, directory entries — without end.
type dynamicFiles struct {
	limit int // 0: no bound
	mu    sync.Mutex
	seen  map[string]struct{}
}

// admit reports whether path may be written: it was written before, or the
// bound leaves room for one more file.
func (d *dynamicFiles) admit(path string) bool {
	if d.limit <= 0 {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.seen[path]; ok {
		return true
	}
	if len(d.seen) >= d.limit {
		return false
	}
	if d.seen == nil {
		d.seen = map[string]struct{}{}
	}
	d.seen[path] = struct{}{}
	return true
}

// release gives back the place of a path that was never written (its
// records were dropped as bad_path).
func (d *dynamicFiles) release(path string) {
	if d.limit <= 0 {
		return
	}
	d.mu.Lock()
	delete(d.seen, path)
	d.mu.Unlock()
}

// Dropped returns how many records this instance skipped.
func (in *Instance) Dropped() uint64 { return in.dropped.Load() }

// managed returns the File of path when path is, byte for byte, this
// instance's configured path (absolute, or as written after "flatstore:")
// or a path rendered from its template that is open now; else nil.
func (in *Instance) managed(path string) *filestore.File {
	if in.static != nil {
		if path == in.cfg.Path || path == in.cfg.RawPath {
			return in.static
		}
		return nil
	}
	if f := in.proc.store.Lookup(path); f != nil && in.owns(f) && f.IsOpen() {
		return f
	}
	return nil
}

// owns reports whether f is a file rendered from this instance's template.
func (in *Instance) owns(f *filestore.File) bool { return f.Options().Template == in.cfg.Path }

// Rotate closes the managed file at path, waiting for a write in progress;
// the next write opens it again. It creates nothing. A path this instance
// does not manage gives ErrNotManaged and touches nothing.
func (in *Instance) Rotate(path string) error {
	f := in.managed(path)
	if f == nil {
		return ErrNotManaged
	}
	f.Reopen(filestore.ReasonMI)
	// The journal's descriptor too, unless a flush uses it: after a rotate
	// request nothing of this output's stays open on the file system
	// until the next write (logrotate, a remount).
	in.journal.CloseIdle(true, time.Time{})
	// The control endpoint logs the request, rate-limited; this line is
	// for debugging only, so a flood of requests cannot flood the log.
	in.log.Debugf("rotated %q (mi)", f.Path())
	return nil
}

// Status lists the files this instance manages.
func (in *Instance) Status() []filestore.Status {
	if in.static != nil {
		return []filestore.Status{in.static.Status()}
	}
	var out []filestore.Status
	for _, f := range in.proc.store.Files(in.owns) {
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
		p := in.proc
		if in.static != nil {
			p.store.Release(in.static)
		} else {
			for _, f := range p.store.Files(in.owns) {
				f.Close()
			}
		}
		p.unregister(in.reg)
		if e := in.metrics.engine; e != nil {
			p.metrics.detach(e)
		}
		p.store.CloseJournal(in.journal)
		in.log.Infof("closed")
		// The last instance waits for the background jobs (compression,
		// retention) queued before it.
		p.store.Stop()
	})
}

// openJournal opens the output's journal in the state directory of its
// static directory (docs/delivery.md: a crash costs nothing); nil, said in
// the log, when it cannot: the output then runs without it.
func openJournal(store *filestore.Store, cfg *Config, name string, log *logger.Logger) *filestore.Journal {
	dir := filepath.Dir(cfg.Path)
	if !cfg.Template.Static() {
		dir = cfg.Template.StaticDir()
	}
	if cfg.Mkdir {
		_ = os.MkdirAll(dir, 0o755)
	}
	j, err := store.OpenJournal(dir, filestore.JournalName(cfg.Path, name), cfg.IdleTimeout, log)
	if err != nil {
		log.Warnf("no journal (%v): a chunk the engine replays after a crash may be written twice", err)
		return nil
	}
	return j
}
