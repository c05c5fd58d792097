package flatstore

import (
	"bytes"
	"os"
	"time"

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
	// renameat2 and unlinkat are how rotated files are renamed aside,
	// compressed into place and deleted (rotate.go, retention.go); tests
	// wrap them to stop or race a rotation between two steps.
	renameat2 func(olddirfd int, oldpath string, newdirfd int, newpath string, flags uint) error
	unlinkat  func(dirfd int, path string, flags int) error
	// boottime is the time since boot, counting suspend (CLOCK_BOOTTIME):
	// the clock rotate_max_age trusts, which a step of the wall clock does
	// not move. bootID tells one boot from the next: a boottime recorded
	// in another boot means nothing (retention.go: ages).
	boottime func() time.Duration
	bootID   string
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
		renameat2: unix.Renameat2,
		unlinkat:  unix.Unlinkat,
		boottime:  boottime,
		bootID:    readBootID(),

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

// boottime reads CLOCK_BOOTTIME: monotonic, and counting the time the
// machine was suspended, so it is the real time that passed.
func boottime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// readBootID returns the kernel's id of this boot ("" when unknown).
func readBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}
