package flatstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// The background side of retention: one worker per process runs jobs one
// at a time — compressing a rotated file, deleting the files retention
// gives up — never on the flush path, on an OS thread of its own at the
// lowest CPU and I/O priority.

// Compression algorithms (the compress key).
const (
	CompressNone = "none"
	CompressGzip = "gzip"
	CompressZstd = "zstd"
)

// compressedExt is the name suffix of a file compressed with algo.
func compressedExt(algo string) string {
	switch algo {
	case CompressGzip:
		return ".gz"
	case CompressZstd:
		return ".zst"
	}
	return ""
}

// archiver runs background jobs, one at a time, in FIFO order. Its worker
// goroutine starts with the first job and ends when the queue is empty, so
// an idle process has none.
type archiver struct {
	mu      sync.Mutex
	queue   []func()
	running bool
	idle    *sync.Cond // signalled when the worker stops
}

func newArchiver() *archiver {
	a := &archiver{}
	a.idle = sync.NewCond(&a.mu)
	return a
}

// enqueue adds a job; it never blocks on the job.
func (a *archiver) enqueue(job func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(a.queue, job)
	if !a.running {
		a.running = true
		go a.work()
	}
}

func (a *archiver) work() {
	// The thread is the worker's alone (it is not handed back: it ends
	// with the goroutine), so lowering its priority lowers nothing else.
	runtime.LockOSThread()
	lowerPriority()
	for {
		a.mu.Lock()
		if len(a.queue) == 0 {
			a.running = false
			a.idle.Broadcast()
			a.mu.Unlock()
			return
		}
		job := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		a.mu.Unlock()
		job()
	}
}

// drain waits until every queued job has run.
func (a *archiver) drain() {
	a.mu.Lock()
	for a.running {
		a.idle.Wait()
	}
	a.mu.Unlock()
}

// lowerPriority gives the calling thread the lowest CPU priority (nice 19)
// and the idle I/O class; it is best effort.
func lowerPriority() {
	tid := unix.Gettid()
	_ = unix.Setpriority(unix.PRIO_PROCESS, tid, 19)
	const ioprioWhoProcess, ioprioClassIdle, ioprioClassShift = 1, 3, 13
	_, _, _ = unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift)
}

// compressFile writes src compressed with algo to dst, crash-safely: into
// dst.tmp, fsync'd, then renamed to dst (never over an existing file) and
// the directory fsync'd. A crash leaves src whole and at most a dst.tmp,
// or src and the whole dst. perm is dst's mode. It returns dst's identity.
func compressFile(src, dst, algo string, perm os.FileMode) (unix.Stat_t, error) {
	var st unix.Stat_t
	in, err := os.Open(src)
	if err != nil {
		return st, err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	_ = os.Remove(tmp) // a crash's leftover
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return st, err
	}
	fail := func(err error) (unix.Stat_t, error) {
		out.Close()
		os.Remove(tmp)
		return st, err
	}
	if err := out.Chmod(perm); err != nil {
		return fail(err)
	}
	var w io.WriteCloser
	switch algo {
	case CompressGzip:
		w, err = gzip.NewWriterLevel(out, gzip.DefaultCompression)
	case CompressZstd:
		w, err = zstd.NewWriter(out, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	default:
		err = fmt.Errorf("unknown compression %q", algo)
	}
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(w, in); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := unix.Fstat(int(out.Fd()), &st); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return st, err
	}
	if err := renameNoReplace(tmp, dst); err != nil {
		os.Remove(tmp)
		return st, err
	}
	return st, syncDir(filepath.Dir(dst))
}

// renameNoReplace renames from to to, failing with EEXIST when to exists.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: link, then unlink.
		if err = os.Link(from, to); err == nil {
			err = os.Remove(from)
		}
	}
	return err
}

// syncDir fsyncs a directory, so that a rename or unlink in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
