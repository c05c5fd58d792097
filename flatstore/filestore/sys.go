package filestore

import (
	"bytes"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Sys is the system calls a Store makes; tests replace them to inject
// errors, short writes and stalls without touching the process.
type Sys struct {
	Open      func(path string, flags int, perm uint32) (int, error)
	Openat    func(dirfd int, path string, flags int, perm uint32) (int, error)
	Openat2   func(dirfd int, path string, how *unix.OpenHow) (int, error)
	Mkdirat   func(dirfd int, path string, perm uint32) error
	Write     func(fd int, b []byte) (int, error)
	Ftruncate func(fd int, size int64) error
	Fdatasync func(fd int) error
	Fstat     func(fd int, st *unix.Stat_t) error
	Close     func(fd int) error
	// Renameat2 and Unlinkat are how rotated files are renamed aside,
	// compressed into place and deleted (policy.go, retention.go); tests
	// wrap them to stop or race a rotation between two steps.
	Renameat2 func(olddirfd int, oldpath string, newdirfd int, newpath string, flags uint) error
	Unlinkat  func(dirfd int, path string, flags int) error
	// Boottime is the time since boot, counting suspend (CLOCK_BOOTTIME):
	// the clock rotate_max_age trusts, which a step of the wall clock does
	// not move. BootID tells one boot from the next: a boottime recorded
	// in another boot means nothing (package doc: Retention and the manifest, ages).
	Boottime func() time.Duration
	BootID   string
	// HaveOpenat2 says whether the kernel offers openat2 (Linux 5.6) and
	// no seccomp filter refuses it: rendered paths are then resolved with
	// RESOLVE_BENEATH, else without following any link (open.go).
	HaveOpenat2 bool
}

// RealSys returns the real system calls.
func RealSys() *Sys {
	return &Sys{
		Open:      unix.Open,
		Openat:    unix.Openat,
		Openat2:   unix.Openat2,
		Mkdirat:   unix.Mkdirat,
		Write:     unix.Write,
		Ftruncate: unix.Ftruncate,
		Fdatasync: unix.Fdatasync,
		Fstat:     unix.Fstat,
		Close:     unix.Close,
		Renameat2: unix.Renameat2,
		Unlinkat:  unix.Unlinkat,
		Boottime:  boottime,
		BootID:    readBootID(),

		HaveOpenat2: probeOpenat2(),
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

// sameFile reports whether st is the file of device dev and inode ino: the
// store's one "same file" predicate, under a name that still holds the
// open file (stillAt), a reopen of the very file (fileID.sameAs) and a
// manifest's entry (ours).
func sameFile(st *unix.Stat_t, dev, ino uint64) bool {
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// renameNoReplace renames from to to beneath their directories, failing
// with EEXIST when to exists.
func renameNoReplace(renameat2 func(int, string, int, string, uint) error, fromDir int, from string, toDir int, to string) error {
	err := renameat2(fromDir, from, toDir, to, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		// A file system without RENAME_NOREPLACE: link, then unlink.
		if err = unix.Linkat(fromDir, from, toDir, to, 0); err == nil {
			err = unix.Unlinkat(fromDir, from, 0)
		}
	}
	return err
}
