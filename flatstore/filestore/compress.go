package filestore

import (
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

// CompressedExt is the name suffix of a file compressed with algo.
func CompressedExt(algo string) string {
	switch algo {
	case CompressGzip:
		return ".gz"
	case CompressZstd:
		return ".zst"
	}
	return ""
}

// Archiver runs background jobs, one at a time, in FIFO order, at a low
// CPU priority (the compression queue of a Store; benchmarks use their own). Its worker
// goroutine starts with the first job and ends when the queue is empty, so
// an idle process has none.
type Archiver struct {
	mu      sync.Mutex
	queue   []func()
	running bool
	idle    *sync.Cond // signalled when the worker stops
}

// NewArchiver returns an idle queue.
func NewArchiver() *Archiver {
	a := &Archiver{}
	a.idle = sync.NewCond(&a.mu)
	return a
}

// Enqueue adds a job; it never blocks on the job.
func (a *Archiver) Enqueue(job func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(a.queue, job)
	if !a.running {
		a.running = true
		go a.work()
	}
}

func (a *Archiver) work() {
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

// Drain waits until every queued job has run.
func (a *Archiver) Drain() {
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

// compressAt compresses what the descriptor in holds with algo into a new
// file name beneath dfd (created O_EXCL|O_NOFOLLOW, a leftover of that name
// unlinked first), with mode perm set on its descriptor, fsync'd; it
// returns the new file's stat. On error the new file is removed.
func compressAt(in, dfd int, name, algo string, perm uint32) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Unlinkat(dfd, name, 0); err != nil && err != unix.ENOENT {
		return st, err
	}
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return st, err
	}
	out := os.NewFile(uintptr(fd), name)
	err = func() error {
		if err := unix.Fchmod(fd, perm); err != nil {
			return err
		}
		var w io.WriteCloser
		var err error
		switch algo {
		case CompressGzip:
			w, err = gzip.NewWriterLevel(out, gzip.DefaultCompression)
		case CompressZstd:
			w, err = zstd.NewWriter(out, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		default:
			err = fmt.Errorf("unknown compression %q", algo)
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, fdReader(in)); err != nil {
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
		if err := unix.Fsync(fd); err != nil {
			return err
		}
		return unix.Fstat(fd, &st)
	}()
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dfd, name, 0)
	}
	return st, err
}

// fdReader reads a descriptor that the caller closes.
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(b) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// CompressFile writes src compressed with algo to dst with mode perm, as
// the archiver does (the benchmarks use it): the source opened without
// following a link, the result written to dst.tmp (O_EXCL|O_NOFOLLOW),
// fsync'd and renamed to dst without replacing one. It returns dst's
// identity.
func CompressFile(src, dst, algo string, perm os.FileMode) (unix.Stat_t, error) {
	var st unix.Stat_t
	in, err := unix.Open(src, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(in)
	dfd, err := unix.Open(filepath.Dir(dst), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, err
	}
	defer unix.Close(dfd)
	tmp := filepath.Base(dst) + ".tmp"
	if st, err = compressAt(in, dfd, tmp, algo, uint32(perm.Perm())); err != nil {
		return st, err
	}
	if err := renameNoReplace(unix.Renameat2, dfd, tmp, dfd, filepath.Base(dst)); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return st, err
	}
	return st, unix.Fsync(dfd)
}
