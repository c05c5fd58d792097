package flatstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Retention and compression of the files flatstore rotates (README: Rotation):
// rotate_max_files keeps at most N rotated files of a path, rotate_max_age
// deletes those rotated longer ago than that, and compress gzips or zstds
// each rotated file in the background (compress.go).
//
// Only files that flatstore itself rotated are ever compressed or deleted,
// and it tells them by a manifest, not by their names: each path with
// retention or compression has a hidden file beside it, .NAME.flatstore,
// that lists the files rotated from it — name, inode, time and reason of
// the rotation, compression — written whole under a temporary name and
// renamed. A file is deleted only when its name is in its own path's
// manifest and the file there is still the very inode recorded, so the file
// being written, a file of another path or output, a file that merely
// looks like a rotated one, or one an operator replaced are never touched.
// Retention counts compressed files.
//
// At the first open of a path after a start, its manifest is read and what
// a crash interrupted is finished or redone: a whole compressed file beside
// its original means the original goes; an original alone is compressed
// again; a leftover .tmp is removed.

// archiveOptions are the retention keys of the instance that first uses a
// path.
type archiveOptions struct {
	maxFiles int
	maxAge   time.Duration
	compress string // CompressNone, CompressGzip or CompressZstd
}

// on reports whether the path keeps a manifest.
func (a archiveOptions) on() bool {
	return a.maxFiles > 0 || a.maxAge > 0 || a.compresses()
}

func (a archiveOptions) compresses() bool {
	return a.compress == CompressGzip || a.compress == CompressZstd
}

// rotatedFile is one entry of a manifest.
type rotatedFile struct {
	Name string `json:"name"` // in the path's directory; with its .gz/.zst once compressed
	// The file's identity: inode, and size and mtime, which a rotated
	// file keeps (an inode number alone may be reused by a new file).
	Dev        uint64 `json:"dev"`
	Ino        uint64 `json:"ino"`
	Size       int64  `json:"size"`
	Mtime      int64  `json:"mtime"`
	At         int64  `json:"at"` // unix nanoseconds of the rotation
	Reason     string `json:"reason"`
	Compressed string `json:"compressed,omitempty"`
	// The original's identity, once compressed: a crash between the
	// manifest and the removal of the original leaves it, and only that
	// very file is removed then.
	OrigDev   uint64 `json:"orig_dev,omitempty"`
	OrigIno   uint64 `json:"orig_ino,omitempty"`
	OrigSize  int64  `json:"orig_size,omitempty"`
	OrigMtime int64  `json:"orig_mtime,omitempty"`
}

// identity returns the identity fields of a file's stat.
func identity(st *unix.Stat_t) (dev, ino uint64, size, mtime int64) {
	return uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano()
}

type manifest struct {
	Path    string        `json:"path"`
	Rotated []rotatedFile `json:"rotated"`
}

// series is the rotated files of one path.
type series struct {
	path, dir, file string // the path, its directory, the manifest
	opt             archiveOptions
	perm            os.FileMode
	arch            *archiver
	metrics         *Metrics
	log             *Logger
	now             func() time.Time

	mu      sync.Mutex
	loaded  bool
	rotated []rotatedFile // oldest first
}

// manifestName is the manifest of path.
func manifestName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".flatstore")
}

func newSeries(path string, opt archiveOptions, perm os.FileMode, arch *archiver, m *Metrics, log *Logger, now func() time.Time) *series {
	return &series{path: path, dir: filepath.Dir(path), file: manifestName(path), opt: opt, perm: perm,
		arch: arch, metrics: m, log: log, now: now}
}

// loadLocked reads the manifest once and finishes what a crash left.
func (s *series) loadLocked() {
	if s.loaded {
		return
	}
	s.loaded = true
	data, err := os.ReadFile(s.file)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warnf("retention: cannot read %q: %v: the files rotated before are left alone", s.file, errnoOf(err))
		}
		return
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil || m.Path != s.path {
		s.log.Warnf("retention: %q is not %q's manifest: the files rotated before are left alone", s.file, s.path)
		return
	}
	changed := false
	var keep []rotatedFile
	for _, r := range m.Rotated {
		if r.Compressed == "" {
			src := filepath.Join(s.dir, r.Name)
			for _, algo := range []string{CompressGzip, CompressZstd} {
				dst := src + compressedExt(algo)
				_ = os.Remove(dst + ".tmp")
				var st unix.Stat_t
				if unix.Lstat(dst, &st) == nil {
					// Renamed only once whole: the compression was done.
					if sameID(src, r) {
						_ = os.Remove(src)
					}
					r.OrigDev, r.OrigIno, r.OrigSize, r.OrigMtime = r.Dev, r.Ino, r.Size, r.Mtime
					r.Name, r.Compressed = r.Name+compressedExt(algo), algo
					r.Dev, r.Ino, r.Size, r.Mtime = identity(&st)
					changed = true
					break
				}
			}
		} else if orig := strings.TrimSuffix(r.Name, compressedExt(r.Compressed)); orig != r.Name {
			// Compressed and recorded, but the original not yet removed.
			if sameID(filepath.Join(s.dir, orig), rotatedFile{Dev: r.OrigDev, Ino: r.OrigIno, Size: r.OrigSize, Mtime: r.OrigMtime}) {
				_ = os.Remove(filepath.Join(s.dir, orig))
			}
		}
		if !sameID(filepath.Join(s.dir, r.Name), r) {
			changed = true // gone, or not ours any more: forget it
			continue
		}
		keep = append(keep, r)
		if r.Compressed == "" && s.opt.compresses() {
			name := r.Name
			s.arch.enqueue(func() { s.compress(name) })
		}
	}
	s.rotated = keep
	if changed {
		s.saveLocked()
	}
	if s.opt.maxFiles > 0 || s.opt.maxAge > 0 {
		s.arch.enqueue(func() { s.retain(s.now()) })
	}
}

// sameID reports whether name is the file r recorded.
func sameID(name string, r rotatedFile) bool {
	var st unix.Stat_t
	if unix.Lstat(name, &st) != nil {
		return false
	}
	dev, ino, size, mtime := identity(&st)
	return dev == r.Dev && ino == r.Ino && size == r.Size && mtime == r.Mtime
}

// saveLocked writes the manifest whole, under a temporary name, renamed.
func (s *series) saveLocked() {
	data, err := json.Marshal(manifest{Path: s.path, Rotated: s.rotated})
	if err == nil {
		tmp := s.file + ".tmp"
		if err = os.WriteFile(tmp, data, 0o600); err == nil {
			if err = os.Chmod(tmp, s.perm); err == nil {
				err = os.Rename(tmp, s.file)
			}
		}
	}
	if err != nil {
		s.log.Limitedf(LevelWarn, "manifest:"+s.path, "retention: cannot write %q: %v", s.file, errnoOf(err))
	}
}

// recorded reports whether name is a rotated file of this path, by its
// original or its compressed name: it is never written to again.
func (s *series) recorded(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordedLocked(name)
}

func (s *series) recordedLocked(name string) bool {
	s.loadLocked()
	base := filepath.Base(name)
	for _, r := range s.rotated {
		if r.Name == base || strings.TrimSuffix(r.Name, compressedExt(r.Compressed)) == base {
			return true
		}
	}
	return false
}

// taken reports whether name is or was a rotated file of this path (its
// original or compressed name): a new file must not take it.
func (s *series) taken(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recordedLocked(name) {
		return true
	}
	for _, algo := range []string{CompressGzip, CompressZstd} {
		if fileExists(name + compressedExt(algo)) {
			return true
		}
	}
	return false
}

// add records a file just rotated (closed, and renamed aside when the path
// has no suffix), then queues its compression and the retention of the
// path. It is called under the File's lock: the manifest is small.
func (s *series) add(name, reason string, now time.Time) {
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		return
	}
	s.mu.Lock()
	s.loadLocked()
	r := rotatedFile{Name: filepath.Base(name), At: now.UnixNano(), Reason: reason}
	r.Dev, r.Ino, r.Size, r.Mtime = identity(&st)
	s.rotated = append(s.rotated, r)
	s.saveLocked()
	s.mu.Unlock()
	if s.opt.compresses() {
		base := filepath.Base(name)
		s.arch.enqueue(func() { s.compress(base) })
	}
	if s.opt.maxFiles > 0 {
		s.arch.enqueue(func() { s.retain(s.now()) })
	}
}

// compress compresses the rotated file name (a job of the archiver).
func (s *series) compress(name string) {
	s.mu.Lock()
	i := s.indexLocked(name)
	if i < 0 || s.rotated[i].Compressed != "" {
		s.mu.Unlock()
		return
	}
	r := s.rotated[i]
	s.mu.Unlock()
	src := filepath.Join(s.dir, name)
	if !sameID(src, r) {
		return
	}
	dst := src + compressedExt(s.opt.compress)
	st, err := compressFile(src, dst, s.opt.compress, s.perm)
	if err != nil {
		s.log.Limitedf(LevelWarn, "compress:"+s.path, "compress %q: %v: it stays as it is", src, errnoOf(err))
		return
	}
	s.mu.Lock()
	if i = s.indexLocked(name); i >= 0 {
		s.rotated[i].Name = filepath.Base(dst)
		s.rotated[i].Compressed = s.opt.compress
		e := &s.rotated[i]
		e.OrigDev, e.OrigIno, e.OrigSize, e.OrigMtime = r.Dev, r.Ino, r.Size, r.Mtime
		e.Dev, e.Ino, e.Size, e.Mtime = identity(&st)
		s.saveLocked()
	}
	s.mu.Unlock()
	if err := os.Remove(src); err != nil {
		s.log.Limitedf(LevelWarn, "compress:"+s.path, "compressed %q but cannot remove it: %v", src, errnoOf(err))
	}
	_ = syncDir(s.dir)
	s.log.Debugf("compressed %q to %q", src, dst)
}

func (s *series) indexLocked(name string) int {
	for i, r := range s.rotated {
		if r.Name == name {
			return i
		}
	}
	return -1
}

// retain deletes the rotated files beyond rotate_max_files (the oldest
// first) and those rotated longer ago than rotate_max_age (a job of the
// archiver).
func (s *series) retain(now time.Time) {
	// The files to delete are chosen under the lock, deleted without it
	// (this runs at idle priority, and the path's opens and rotations take
	// the lock), and the manifest updated under it again. Retention and
	// compression both run on the archiver, one job at a time, so only
	// add (a new rotated file) can come in between.
	type victim struct {
		r      rotatedFile
		reason string
	}
	s.mu.Lock()
	s.loadLocked()
	sort.SliceStable(s.rotated, func(i, j int) bool { return s.rotated[i].At < s.rotated[j].At })
	var victims []victim
	for i, r := range s.rotated {
		switch {
		case s.opt.maxFiles > 0 && len(s.rotated)-i > s.opt.maxFiles:
			victims = append(victims, victim{r, "max_files"})
		case s.opt.maxAge > 0 && now.Sub(time.Unix(0, r.At)) > s.opt.maxAge:
			victims = append(victims, victim{r, "max_age"})
		}
	}
	s.mu.Unlock()
	if len(victims) == 0 {
		return
	}
	gone := map[rotatedFile]bool{}
	for _, v := range victims {
		name := filepath.Join(s.dir, v.r.Name)
		if !sameID(name, v.r) {
			gone[v.r] = true // not the file we rotated: forget it, touch nothing
			continue
		}
		if err := os.Remove(name); err != nil {
			s.log.Limitedf(LevelWarn, "retain:"+s.path, "retention: cannot delete %q: %v", name, errnoOf(err))
			continue
		}
		gone[v.r] = true
		s.metrics.deletedFile(v.reason)
		s.log.Infof("deleted %q (rotate_%s)", name, v.reason)
	}
	if len(gone) == 0 {
		return
	}
	s.mu.Lock()
	keep := s.rotated[:0]
	for _, r := range s.rotated {
		if !gone[r] {
			keep = append(keep, r)
		}
	}
	s.rotated = keep
	s.saveLocked()
	s.mu.Unlock()
	_ = syncDir(s.dir)
}
