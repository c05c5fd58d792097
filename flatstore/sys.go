package flatstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// sysOps are the system calls a File makes; tests replace them to inject
// errors, short writes and stalls without touching the process.
type sysOps struct {
	open      func(path string, flags int, perm uint32) (int, error)
	openat    func(dirfd int, path string, flags int, perm uint32) (int, error)
	openat2   func(dirfd int, path string, how *unix.OpenHow) (int, error)
	mkdirat   func(dirfd int, path string, perm uint32) error
	write     func(fd int, b []byte) (int, error)
	ftruncate func(fd int, size int64) error
	fdatasync func(fd int) error
	fstat     func(fd int, st *unix.Stat_t) error
	close     func(fd int) error
	// haveOpenat2 says whether the kernel offers openat2 (Linux 5.6) and
	// no seccomp filter refuses it: rendered paths are then resolved with
	// RESOLVE_BENEATH, else without following any link (open.go).
	haveOpenat2 bool
}

// realOps returns the real system calls.
func realOps() *sysOps {
	return &sysOps{
		open:      unix.Open,
		openat:    unix.Openat,
		openat2:   unix.Openat2,
		mkdirat:   unix.Mkdirat,
		write:     unix.Write,
		ftruncate: unix.Ftruncate,
		fdatasync: unix.Fdatasync,
		fstat:     unix.Fstat,
		close:     unix.Close,

		haveOpenat2: probeOpenat2(),
	}
}

// probeOpenat2 reports whether openat2 with RESOLVE_BENEATH works here.
func probeOpenat2() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// fileExists reports whether name exists (a link counts, even dangling).
func fileExists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}
