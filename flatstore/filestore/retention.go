package filestore

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/logger"
)

// StateDirName is the state directory of a log directory.
const StateDirName = ".flatstore"

// KeyName is the MAC key in the state directory; KeySize its length.
const (
	KeyName = "key"
	KeySize = 32
)

// maxManifest bounds the manifest read (some 200 bytes an entry).
const maxManifest = 64 << 20

// macDomain is prefixed to the manifest's bytes under the MAC, so the key
// proves nothing else.
const macDomain = "flatstore manifest v2\x00"

// ArchiveOptions are the retention keys of the instance that first uses a
// path.
type ArchiveOptions struct {
	MaxFiles int           // rotate_max_files (0: keep all)
	MaxAge   time.Duration // rotate_max_age (0: never)
	Compress string        // CompressNone, CompressGzip or CompressZstd
}

// on reports whether the path keeps a manifest.
func (a ArchiveOptions) on() bool {
	return a.MaxFiles > 0 || a.MaxAge > 0 || a.compresses()
}

func (a ArchiveOptions) compresses() bool {
	return a.Compress == CompressGzip || a.Compress == CompressZstd
}

// FileIdent is a file's identity: inode, and size and mtime, which a
// rotated file keeps (an inode number alone may be reused by a new file).
type FileIdent struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
}

// IdentOf returns the identity in a stat.
func IdentOf(st *unix.Stat_t) FileIdent {
	return FileIdent{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size, Mtime: st.Mtim.Nano()}
}

// zipIntent is a compression whose result is whole but maybe not yet in
// place: the compressed file's name and identity.
type zipIntent struct {
	Algo string `json:"algo"`
	Name string `json:"name"`
	FileIdent
}

// RotatedFile is one entry of a manifest.
type RotatedFile struct {
	Name string `json:"name"` // in the path's directory; with its .gz/.zst once compressed
	FileIdent
	At     int64  `json:"at"`             // wall clock of the rotation, unix nanoseconds
	Boot   string `json:"boot,omitempty"` // the boot it was rotated in
	Up     int64  `json:"up,omitempty"`   // CLOCK_BOOTTIME at the rotation
	Reason string `json:"reason"`
	// Pending: the live file is being renamed aside to Name; only Dev and
	// Ino are known (from its open descriptor).
	Pending    bool   `json:"pending,omitempty"`
	Compressed string `json:"compressed,omitempty"`
	// Orig is the original's identity, once compressed: a crash between
	// the manifest and the removal of the original leaves it, and only
	// that very file is removed then.
	Orig *FileIdent `json:"orig,omitempty"`
	Zip  *zipIntent `json:"zip,omitempty"` // a compression on its way

	born time.Duration // on the boottime clock (not saved: see ages)
}

// Manifest is what the state directory records of one path: the path and
// the files rotated from it, in the order they were rotated. Its bytes on
// disk are EncodeManifest's; the package docs give the contract.
type Manifest struct {
	Path    string        `json:"path"`
	Rotated []RotatedFile `json:"rotated"`
}

// series is the rotated files of one path.
type series struct {
	path, dir, base string // the path, its directory and its name
	mfile           string // the manifest's name in the state directory
	opt             ArchiveOptions
	sys             *Sys
	arch            *Archiver
	count           Counter
	log             *logger.Logger
	now             func() time.Time

	mu      sync.Mutex
	loaded  bool
	key     []byte        // the state directory's MAC key, once read or made
	rotated []RotatedFile // in the order they were rotated
}

// ManifestName is the name of path's manifest in its state directory.
func ManifestName(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:16]) + ".json"
}

func newSeries(path string, opt ArchiveOptions, sys *Sys, arch *Archiver, count Counter, log *logger.Logger, now func() time.Time) *series {
	return &series{path: path, dir: filepath.Dir(path), base: filepath.Base(path), mfile: ManifestName(path),
		opt: opt, sys: sys, arch: arch, count: count, log: log, now: now}
}

// errState is a state directory or key that is not flatstore's own: it is
// not used.
type errState struct{ what string }

func (e errState) Error() string { return e.what }

// openDir opens the path's directory. It is opened as the configured path
// is written (an administrator's symlinked directory works): what is done
// in it is done relative to this descriptor, on names that never follow a
// link, to files that a verified manifest records.
func (s *series) openDir() (int, error) {
	return unix.Open(s.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// openState opens the state directory beneath dfd, making it when create
// is set; errState when it is not the running user's private directory,
// ENOENT when it does not exist.
func (s *series) openState(dfd int, create bool) (int, error) { return openStateDir(dfd, create) }

// openStateDir opens the state directory beneath dfd, making it when create
// is set; errState when it is not the running user's private directory,
// ENOENT when it does not exist. The manifests and the journals share it.
func openStateDir(dfd int, create bool) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	sfd, err := unix.Openat(dfd, StateDirName, flags, 0)
	made := false
	if err == unix.ENOENT && create {
		if err = unix.Mkdirat(dfd, StateDirName, 0o700); err == nil || err == unix.EEXIST {
			made = err == nil
			sfd, err = unix.Openat(dfd, StateDirName, flags, 0)
		}
	}
	if err == unix.ELOOP || err == unix.ENOTDIR {
		return -1, errState{"is not a directory (a symbolic link or a file)"}
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		unix.Close(sfd)
		return -1, err
	}
	if made && st.Mode&0o777 != 0o700 && int(st.Uid) == unix.Geteuid() {
		// The umask cut our own new directory's mode.
		if unix.Fchmod(sfd, 0o700) == nil {
			st.Mode = st.Mode&^0o777 | 0o700
		}
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		err = errState{"is not a directory"}
	case int(st.Uid) != unix.Geteuid():
		err = errState{fmt.Sprintf("is owned by uid %d, not by this process's (%d)", st.Uid, unix.Geteuid())}
	case st.Mode&0o077 != 0:
		err = errState{fmt.Sprintf("has mode %04o: group or others may use it (want 0700)", st.Mode&0o7777)}
	}
	if err != nil {
		unix.Close(sfd)
		return -1, err
	}
	return sfd, nil
}

// readKey returns the state directory's MAC key, making it when create is
// set: 32 random bytes, written under a temporary name and renamed into
// place without replacing one, so that every process sees one whole key.
func readKey(sfd int, create bool) ([]byte, error) {
	key, err := readPrivate(sfd, KeyName, KeySize)
	if err == unix.ENOENT && create {
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		var r [8]byte
		_, _ = rand.Read(r[:])
		tmp := KeyName + "." + hex.EncodeToString(r[:]) + ".tmp"
		if err := writePrivate(sfd, tmp, key); err != nil {
			return nil, err
		}
		err = renameNoReplace(unix.Renameat2, sfd, tmp, sfd, KeyName)
		unix.Unlinkat(sfd, tmp, 0) // gone when renamed; the loser's otherwise
		if err == nil {
			return key, nil
		}
		if err != unix.EEXIST {
			return nil, err
		}
		key, err = readPrivate(sfd, KeyName, KeySize) // another process made it first
	}
	if err == nil && len(key) != KeySize {
		err = errState{fmt.Sprintf("%s/%s is %d bytes, not %d", StateDirName, KeyName, len(key), KeySize)}
	}
	return key, err
}

// readPrivate reads a file of the state directory: a regular file (not
// through a link) owned by the running user, no longer than max (one more
// byte is read, so a longer file shows).
func readPrivate(sfd int, name string, max int) ([]byte, error) {
	fd, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP {
		return nil, errState{name + " is a symbolic link"}
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, errState{name + " is not a regular file"}
	case int(st.Uid) != unix.Geteuid():
		return nil, errState{fmt.Sprintf("%s is owned by uid %d", name, st.Uid)}
	case st.Mode&0o077 != 0:
		return nil, errState{fmt.Sprintf("%s has mode %04o (want 0600)", name, st.Mode&0o7777)}
	case st.Size > int64(max):
		return nil, errState{fmt.Sprintf("%s is %d bytes, more than %d", name, st.Size, max)}
	}
	buf := make([]byte, 0, st.Size+1)
	for len(buf) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return nil, errState{fmt.Sprintf("%s is more than %d bytes", name, max)}
}

// writePrivate creates name in the state directory with data: a leftover
// of that name is unlinked first (unlinkat removes a link, never its
// target), the file is created O_EXCL|O_NOFOLLOW, fchmod'ed to 0600
// whatever the umask, and fsync'd.
func writePrivate(sfd int, name string, data []byte) error {
	if err := unix.Unlinkat(sfd, name, 0); err != nil && err != unix.ENOENT {
		return err
	}
	fd, err := unix.Openat(sfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	err = unix.Fchmod(fd, 0o600)
	for b := data; err == nil && len(b) > 0; {
		var n int
		n, err = unix.Write(fd, b)
		if err == unix.EINTR {
			err = nil
		}
		b = b[n:]
	}
	if err == nil {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(sfd, name, 0)
	}
	return err
}

// EncodeManifest is the manifest's bytes: the JSON on one line, then the
// hex HMAC-SHA256 of it under key on the next.
func EncodeManifest(key []byte, m Manifest) ([]byte, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := append(body, '\n')
	out = hex.AppendEncode(out, manifestMAC(key, body))
	return append(out, '\n'), nil
}

func manifestMAC(key, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macDomain))
	h.Write(body)
	return h.Sum(nil)
}

// errForged is a manifest that does not verify.
var errForged = errors.New("does not verify (its MAC, format or path is wrong): it was not written by flatstore")

// DecodeManifest verifies data, a manifest of path, and decodes it.
func DecodeManifest(key, data []byte, path string) (Manifest, error) {
	var m Manifest
	const macLine = 2*sha256.Size + 1
	if len(data) < macLine+2 || data[len(data)-1] != '\n' || data[len(data)-macLine-1] != '\n' {
		return m, errForged
	}
	body := data[:len(data)-macLine-1]
	mac, err := hex.DecodeString(string(data[len(data)-macLine : len(data)-1]))
	if err != nil || !hmac.Equal(mac, manifestMAC(key, body)) || bytes.IndexByte(body, '\n') >= 0 {
		return m, errForged
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil || dec.More() || m.Path != path {
		return Manifest{}, errForged
	}
	return m, nil
}

// validName reports whether name may be a rotated file of the series: a
// plain name in its directory that begins with the path's own name and is
// not it.
func (s *series) validName(name string) bool {
	return len(name) > len(s.base) && strings.HasPrefix(name, s.base) &&
		strings.IndexByte(name, '/') < 0 && strings.IndexByte(name, 0) < 0 && len(name) <= 255
}

// ours reports whether st is a file flatstore may act on as the one it
// recorded as id: a regular file, the same inode, size and mtime (only
// device and inode when !full: a rename intent), one link, owned by the
// running user.
func ours(st *unix.Stat_t, id FileIdent, full bool) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 && int(st.Uid) == unix.Geteuid() &&
		sameFile(st, id.Dev, id.Ino) &&
		(!full || st.Size == id.Size && st.Mtim.Nano() == id.Mtime)
}

// statAt lstats name beneath dfd.
func statAt(dfd int, name string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err == nil
}

// zipTmp is the name, in the state directory, under which the compressed
// file of the entry with inode ino is written.
func (s *series) zipTmp(ino uint64) string {
	return strings.TrimSuffix(s.mfile, ".json") + "." + strconv.FormatUint(ino, 10) + ".ztmp"
}

// warnState warns, rate-limited, that the state of the series is not used.
func (s *series) warnState(err error) {
	s.log.Limitedf(logger.LevelWarn, "state", "retention: %s: %v: the files rotated there are neither compressed nor deleted",
		filepath.Join(s.dir, StateDirName), ErrnoOf(err))
}

// ageBase returns when r was rotated on the boottime clock: its recorded
// boottime when it was rotated in this boot, else the load's boottime
// minus its wall-clock age (never below zero).
func (s *series) ageBase(r *RotatedFile, wall time.Time, up time.Duration) time.Duration {
	if r.Boot != "" && r.Boot == s.sys.BootID && r.Up >= 0 && time.Duration(r.Up) <= up {
		return time.Duration(r.Up)
	}
	return up - max(wall.Sub(time.Unix(0, r.At)), 0)
}

// loadLocked reads the manifest once and finishes what a crash left.
func (s *series) loadLocked() {
	if s.loaded {
		return
	}
	s.loaded = true
	if _, ok := statAt(unix.AT_FDCWD, filepath.Join(s.dir, "."+s.base+".flatstore")); ok {
		s.log.Limitedf(logger.LevelWarn, "oldmanifest", "retention: %q is the manifest of an earlier version: it is ignored "+
			"and the files it lists are left alone (delete them by hand, then it)", filepath.Join(s.dir, "."+s.base+".flatstore"))
	}
	dfd, err := s.openDir()
	if err != nil {
		return // nothing was rotated into a missing directory
	}
	defer unix.Close(dfd)
	sfd, err := s.openState(dfd, false)
	if err != nil {
		if err != unix.ENOENT {
			s.warnState(err)
		}
		return
	}
	defer unix.Close(sfd)
	data, err := readPrivate(sfd, s.mfile, maxManifest)
	if err == unix.ENOENT {
		return
	}
	var m Manifest
	if err == nil {
		if s.key, err = readKey(sfd, false); err == nil {
			m, err = DecodeManifest(s.key, data, s.path)
		}
	}
	if err != nil {
		s.log.Limitedf(logger.LevelWarn, "manifest-read", "retention: the manifest %s/%s of %q %v: the files it lists are left alone",
			StateDirName, s.mfile, s.path, ErrnoOf(err))
		return
	}
	wall, up := s.now(), s.sys.Boottime()
	changed := false
	for _, r := range m.Rotated {
		if !s.validName(r.Name) || r.Zip != nil && r.Zip.Name != r.Name+CompressedExt(r.Zip.Algo) ||
			r.Compressed != "" && !strings.HasSuffix(r.Name, CompressedExt(r.Compressed)) {
			changed = true // signed, yet not a name we give: touch nothing
			continue
		}
		if r.Pending {
			// A rename aside that a crash interrupted: done if the name
			// holds the live file's inode.
			st, ok := statAt(dfd, r.Name)
			if !ok || !ours(&st, r.FileIdent, false) {
				changed = true
				continue
			}
			r.FileIdent, r.Pending = IdentOf(&st), false
			changed = true
		}
		if z := r.Zip; z != nil {
			// A compression whose result was whole: in place, or not yet.
			if st, ok := statAt(dfd, z.Name); ok && ours(&st, z.FileIdent, true) {
				orig := r.FileIdent
				r.Orig, r.Name, r.Compressed, r.FileIdent = &orig, z.Name, z.Algo, z.FileIdent
			}
			r.Zip = nil
			changed = true
		}
		if r.Compressed == "" {
			unix.Unlinkat(sfd, s.zipTmp(r.Ino), 0) // a compression cut off
		} else if r.Orig != nil {
			// Compressed and recorded, but the original perhaps not yet
			// removed: only that very file goes.
			orig := strings.TrimSuffix(r.Name, CompressedExt(r.Compressed))
			if st, ok := statAt(dfd, orig); ok && ours(&st, *r.Orig, true) {
				_ = s.sys.Unlinkat(dfd, orig, 0)
			}
			r.Orig = nil
			changed = true
		}
		if st, ok := statAt(dfd, r.Name); !ok || !ours(&st, r.FileIdent, true) {
			changed = true // gone, or not ours any more: forget it
			continue
		}
		r.born = s.ageBase(&r, wall, up)
		s.rotated = append(s.rotated, r)
		if r.Compressed == "" && s.opt.compresses() {
			name := r.Name
			s.arch.Enqueue(func() { s.compress(name) })
		}
	}
	if changed {
		s.saveLocked()
	}
	if s.opt.MaxFiles > 0 || s.opt.MaxAge > 0 {
		s.arch.Enqueue(func() { s.retain(wall) })
	}
}

// saveLocked writes the manifest whole, under a temporary name, renamed;
// it makes the state directory and its key when missing.
func (s *series) saveLocked() error {
	err := s.writeLocked()
	if err != nil {
		if _, ok := err.(errState); ok {
			s.warnState(err)
		} else {
			s.log.Limitedf(logger.LevelWarn, "manifest-write", "retention: cannot write the manifest %s/%s of %q: %v",
				StateDirName, s.mfile, s.path, ErrnoOf(err))
		}
	}
	return err
}

func (s *series) writeLocked() error {
	dfd, err := s.openDir()
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	sfd, err := s.openState(dfd, true)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	if s.key == nil {
		if s.key, err = readKey(sfd, true); err != nil {
			s.key = nil
			return err
		}
	}
	rotated := s.rotated
	if rotated == nil {
		rotated = []RotatedFile{}
	}
	data, err := EncodeManifest(s.key, Manifest{Path: s.path, Rotated: rotated})
	if err != nil {
		return err
	}
	tmp := s.mfile + ".tmp"
	if err := writePrivate(sfd, tmp, data); err != nil {
		return err
	}
	err = s.sys.Renameat2(sfd, tmp, sfd, s.mfile, 0)
	if err == unix.ENOSYS { // a kernel before renameat2 (3.15)
		err = unix.Renameat(sfd, tmp, sfd, s.mfile)
	}
	if err != nil {
		unix.Unlinkat(sfd, tmp, 0)
		return err
	}
	return nil
}

// record appends r and saves the manifest; an entry that cannot be saved
// because the state directory is not flatstore's own is dropped (nothing
// is ever done to it). It reports whether r is kept.
func (s *series) recordLocked(r RotatedFile) bool {
	s.loadLocked()
	r.At, r.Boot = s.now().UnixNano(), s.sys.BootID
	up := s.sys.Boottime()
	r.Up, r.born = int64(up), up
	s.rotated = append(s.rotated, r)
	if err := s.saveLocked(); err != nil {
		if _, ok := err.(errState); ok {
			s.rotated = s.rotated[:len(s.rotated)-1]
			return false
		}
	}
	return true
}

// intend records, before a built-in rotation renames the live file (device
// and inode from its open descriptor) aside to name, that it is about to;
// confirm then tells whether the rename was made. A crash in between is
// resolved at the next load.
func (s *series) intend(name string, dev, ino uint64, reason string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordLocked(RotatedFile{Name: filepath.Base(name), FileIdent: FileIdent{Dev: dev, Ino: ino},
		Reason: reason, Pending: true})
}

// confirm ends an intent: renamed, the file's identity is recorded and its
// compression and the path's retention queued; not renamed (or not the
// file intended), the entry is dropped. Both only in memory: the manifest
// on disk keeps the intent until the next save (the compression's, the
// retention's, the next rotation's), and a load resolves an intent just as
// this does, so a second write on the flush path would buy nothing.
func (s *series) confirm(name string, renamed bool) {
	base := filepath.Base(name)
	s.mu.Lock()
	i := s.indexLocked(base)
	if i < 0 || !s.rotated[i].Pending {
		s.mu.Unlock()
		return
	}
	st, ok := statAt(unix.AT_FDCWD, name)
	if renamed && ok && ours(&st, s.rotated[i].FileIdent, false) {
		s.rotated[i].FileIdent, s.rotated[i].Pending = IdentOf(&st), false
	} else {
		s.rotated = append(s.rotated[:i], s.rotated[i+1:]...)
		renamed = false
	}
	s.mu.Unlock()
	if renamed {
		s.queue(base)
	}
}

// add records a file just rotated that keeps its name (a path with a
// suffix), then queues its compression and the retention of the path. It
// is called under the File's lock: the manifest is small.
func (s *series) add(name, reason string) {
	base := filepath.Base(name)
	st, ok := statAt(unix.AT_FDCWD, name)
	if !ok || !s.validName(base) || !ours(&st, IdentOf(&st), true) {
		return
	}
	s.mu.Lock()
	kept := s.recordLocked(RotatedFile{Name: base, FileIdent: IdentOf(&st), Reason: reason})
	s.mu.Unlock()
	if kept {
		s.queue(base)
	}
}

// queue queues the compression of a new rotated file and the retention
// of the path.
func (s *series) queue(name string) {
	if s.opt.compresses() {
		s.arch.Enqueue(func() { s.compress(name) })
	}
	if s.opt.MaxFiles > 0 {
		s.arch.Enqueue(func() { s.retain(time.Time{}) })
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
		if r.Name == base || strings.TrimSuffix(r.Name, CompressedExt(r.Compressed)) == base {
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
		if fileExists(name + CompressedExt(algo)) {
			return true
		}
	}
	return false
}

func (s *series) indexLocked(name string) int {
	for i, r := range s.rotated {
		if r.Name == name {
			return i
		}
	}
	return -1
}

// dropLocked forgets the entry name with inode ino, if still there.
func (s *series) dropLocked(name string, ino uint64) {
	if i := s.indexLocked(name); i >= 0 && s.rotated[i].Ino == ino {
		s.rotated = append(s.rotated[:i], s.rotated[i+1:]...)
	}
}

// compress compresses the rotated file name (a job of the archiver). The
// source is opened without following a link and checked on its descriptor
// (regular, the recorded identity, one link, ours), and read from that
// descriptor. The compressed file is written in the state directory, where
// no record and no other user reaches (created O_EXCL|O_NOFOLLOW, with the
// source's mode set by fchmod), fsync'd, recorded in the manifest, renamed
// into place without replacing anything, and recorded again; the source is
// then unlinked once checked again. A crash at any step is finished or
// undone at the next load (retention.go).
func (s *series) compress(name string) {
	s.mu.Lock()
	i := s.indexLocked(name)
	if i < 0 || s.rotated[i].Compressed != "" || s.rotated[i].Pending || s.rotated[i].Zip != nil {
		s.mu.Unlock()
		return
	}
	r := s.rotated[i]
	s.mu.Unlock()
	algo := s.opt.Compress
	src := filepath.Join(s.dir, name)
	fail := func(what string, err error) {
		s.log.Limitedf(logger.LevelWarn, "compress", "compress %q: %s: %v: it stays as it is", src, what, ErrnoOf(err))
	}
	dfd, err := s.openDir()
	if err != nil {
		fail("open its directory", err)
		return
	}
	defer unix.Close(dfd)
	sfd, err := s.openState(dfd, false)
	if err != nil {
		s.warnState(err)
		return
	}
	defer unix.Close(sfd)
	in, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		s.forget(r, src, err)
		return
	}
	defer unix.Close(in)
	var st unix.Stat_t
	if err := unix.Fstat(in, &st); err != nil || !ours(&st, r.FileIdent, true) {
		s.forget(r, src, err)
		return
	}
	tmp := s.zipTmp(r.Ino)
	zst, err := compressAt(in, sfd, tmp, algo, st.Mode&0o777)
	if err != nil {
		fail("write", err)
		return
	}
	dst := name + CompressedExt(algo)
	// Recorded before it is renamed into place: a crash after the rename
	// leaves a compressed file the next load knows for ours.
	s.mu.Lock()
	if i = s.indexLocked(name); i < 0 || s.rotated[i].Ino != r.Ino {
		s.mu.Unlock()
		unix.Unlinkat(sfd, tmp, 0)
		return
	}
	s.rotated[i].Zip = &zipIntent{Algo: algo, Name: dst, FileIdent: IdentOf(&zst)}
	serr := s.saveLocked()
	s.mu.Unlock()
	if serr == nil {
		serr = renameNoReplace(s.sys.Renameat2, sfd, tmp, dfd, dst)
	}
	if serr != nil {
		unix.Unlinkat(sfd, tmp, 0)
		s.mu.Lock()
		if i = s.indexLocked(name); i >= 0 {
			s.rotated[i].Zip = nil
			s.saveLocked()
		}
		s.mu.Unlock()
		fail("rename "+filepath.Join(s.dir, dst), serr)
		return
	}
	_ = unix.Fsync(dfd)
	s.mu.Lock()
	if i = s.indexLocked(name); i >= 0 {
		e := &s.rotated[i]
		orig := e.FileIdent
		e.Orig, e.Name, e.Compressed, e.FileIdent, e.Zip = &orig, dst, algo, IdentOf(&zst), nil
		s.saveLocked()
	}
	s.mu.Unlock()
	// The source goes only if its name still holds the file compressed;
	// unlinkat removes a name, never what a link there points to.
	if st2, ok := statAt(dfd, name); ok && ours(&st2, r.FileIdent, true) {
		if err := s.sys.Unlinkat(dfd, name, 0); err != nil {
			s.log.Limitedf(logger.LevelWarn, "compress", "compressed %q but cannot remove it: %v", src, ErrnoOf(err))
		}
	}
	_ = unix.Fsync(dfd)
	s.log.Debugf("compressed %q to %q", src, filepath.Join(s.dir, dst))
}

// forget drops an entry whose file is no longer the one rotated: it is
// left as it is.
func (s *series) forget(r RotatedFile, src string, err error) {
	if err == nil || err == unix.ENOENT || err == unix.ELOOP {
		s.log.Limitedf(logger.LevelWarn, "compress", "compress %q: it is not the file flatstore rotated any more "+
			"(moved, replaced, linked or changed): it is left alone and forgotten", src)
		s.mu.Lock()
		s.dropLocked(r.Name, r.Ino)
		s.saveLocked()
		s.mu.Unlock()
		return
	}
	s.log.Limitedf(logger.LevelWarn, "compress", "compress %q: %v: it stays as it is", src, ErrnoOf(err))
}

// retain deletes the rotated files beyond rotate_max_files (the first
// rotated first) and those older than rotate_max_age by the boottime clock
// (a job of the archiver). The wall time it is given is not used: a step
// of the wall clock moves no file's age.
func (s *series) retain(time.Time) {
	// The files to delete are chosen under the lock, deleted without it
	// (this runs at idle priority, and the path's opens and rotations take
	// the lock), and the manifest updated under it again. Retention and
	// compression both run on the archiver, one job at a time, so only a
	// rotation (a new entry, perhaps pending) can come in between.
	type victim struct {
		r      RotatedFile
		reason string
	}
	s.mu.Lock()
	s.loadLocked()
	up := s.sys.Boottime()
	var victims []victim
	for i, r := range s.rotated {
		switch {
		case r.Pending || r.Zip != nil:
		case s.opt.MaxFiles > 0 && len(s.rotated)-i > s.opt.MaxFiles:
			victims = append(victims, victim{r, "max_files"})
		case s.opt.MaxAge > 0 && up-r.born > s.opt.MaxAge:
			victims = append(victims, victim{r, "max_age"})
		}
	}
	s.mu.Unlock()
	if len(victims) == 0 {
		return
	}
	dfd, err := s.openDir()
	if err != nil {
		return
	}
	defer unix.Close(dfd)
	var gone []RotatedFile
	for _, v := range victims {
		name := filepath.Join(s.dir, v.r.Name)
		if st, ok := statAt(dfd, v.r.Name); !ok || !ours(&st, v.r.FileIdent, true) {
			gone = append(gone, v.r) // not the file we rotated: forget it, touch nothing
			continue
		}
		// unlinkat removes the name: a link swapped in since the check
		// goes, never what it points to.
		if err := s.sys.Unlinkat(dfd, v.r.Name, 0); err != nil {
			s.log.Limitedf(logger.LevelWarn, "retain", "retention: cannot delete %q: %v", name, ErrnoOf(err))
			continue
		}
		gone = append(gone, v.r)
		if s.count != nil {
			s.count.Deleted(v.reason)
		}
		s.log.Infof("deleted %q (rotate_%s)", name, v.reason)
	}
	if len(gone) == 0 {
		return
	}
	s.mu.Lock()
	for _, r := range gone {
		s.dropLocked(r.Name, r.Ino)
	}
	s.saveLocked()
	s.mu.Unlock()
	_ = unix.Fsync(dfd)
}
