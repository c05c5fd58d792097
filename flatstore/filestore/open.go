package filestore

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

const appendFlags = unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY

// opener opens the files of one path.
type opener struct {
	sys   *Sys
	perm  uint32
	mkdir bool
	// root is a template's static directory, beneath which the rendered
	// part of every name is resolved; "" for a configured path.
	root string
}

// open opens name for appending, creating it when it does not exist. It
// reports whether this call created it.
func (o *opener) open(name string) (fd int, st unix.Stat_t, created bool, err error) {
	if o.root == "" {
		fd, created, err = o.openPlain(name)
	} else {
		fd, created, err = o.openBeneath(name)
	}
	if err != nil {
		return -1, st, false, &FileError{"open", name, err}
	}
	if err := o.sys.Fstat(fd, &st); err != nil {
		o.sys.Close(fd)
		return -1, st, false, &FileError{"fstat", name, err}
	}
	if kind := fileKind(st.Mode); kind != "" {
		o.sys.Close(fd)
		return -1, st, false, &FileError{"open", name, errNotRegular{kind}}
	}
	if o.root != "" && st.Nlink > 1 {
		// A rendered name with another link to its file: flatstore never
		// makes one, so someone linked it there — perhaps to another
		// output's file or to one outside flatstore's.
		o.sys.Close(fd)
		return -1, st, false, &FileError{"open", name, errNotRegular{"a file with other hard links"}}
	}
	// A regular file: its writes need no O_NONBLOCK (the open set it, and
	// O_APPEND, the one other status flag it set).
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_APPEND)
	if created && st.Mode&0o777 != o.perm {
		// The umask cut the mode: set exactly what was asked for.
		if err := unix.Fchmod(fd, o.perm); err != nil {
			o.sys.Close(fd)
			return -1, st, false, &FileError{"fchmod", name, err}
		}
		st.Mode = st.Mode&^0o777 | o.perm
	}
	return fd, st, created, nil
}

// FileKind names what mode is when it is not a regular file, as the
// store's refusals say it ("a FIFO", "a directory"…); "" for one.
func FileKind(mode os.FileMode) string { return fileKind(modeBits(mode)) }

// fileKind names what a mode is when it is not a regular file.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ""
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "not a file"
}

// openPlain opens a configured path as written.
// With mkdir, missing directories are created when the open finds them
// missing, as openBeneath does.
func (o *opener) openPlain(name string) (int, bool, error) {
	open := func() (int, bool, error) {
		return createOrOpen(func(flags int, perm uint32) (int, error) { return o.sys.Open(name, flags, perm) },
			func() (uint32, error) {
				var st unix.Stat_t
				err := unix.Lstat(name, &st)
				return st.Mode, err
			}, o.perm)
	}
	fd, created, err := open()
	if err == unix.ENOENT && o.mkdir {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return -1, false, ErrnoOf(err)
		}
		fd, created, err = open()
	}
	return fd, created, err
}

// createOrOpen creates a file with O_EXCL, or opens the existing one; a
// file removed in between is created again. A name that exists for O_EXCL
// but not for an open is a dangling symbolic link (lstat tells).
func createOrOpen(open func(flags int, perm uint32) (int, error), lstat func() (uint32, error), perm uint32) (int, bool, error) {
	for try := 0; ; try++ {
		fd, err := open(appendFlags|unix.O_CREAT|unix.O_EXCL, perm)
		if err == nil {
			return fd, true, nil
		}
		if err != unix.EEXIST {
			return -1, false, err
		}
		fd, err = open(appendFlags, 0)
		if err == unix.ELOOP {
			// O_NOFOLLOW (a rendered name) met a link.
			if mode, lerr := lstat(); lerr == nil && mode&unix.S_IFMT == unix.S_IFLNK {
				return -1, false, errNotRegular{"a symbolic link"}
			}
		}
		if err != unix.ENOENT {
			return fd, false, err
		}
		if mode, lerr := lstat(); lerr == nil && mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, false, errNotRegular{"a dangling symbolic link"}
		}
		if try > 3 {
			return -1, false, err
		}
	}
}

// openBeneath opens a rendered name beneath o.root, one component at a time.
func (o *opener) openBeneath(name string) (int, bool, error) {
	rel, ok := strings.CutPrefix(name, o.root+"/")
	if !ok || rel == "" {
		return -1, false, errOutside
	}
	dir, err := o.sys.Open(o.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT && o.mkdir {
		if err := os.MkdirAll(o.root, 0o755); err != nil {
			return -1, false, ErrnoOf(err)
		}
		dir, err = o.sys.Open(o.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, false, err
	}
	comps := strings.Split(rel, "/")
	for _, c := range comps {
		if isStateDirName(c) {
			// Never a way into flatstore's own state, whatever the
			// template: not the directory, not a file in it.
			o.sys.Close(dir)
			return -1, false, errReserved{}
		}
	}
	for _, c := range comps[:len(comps)-1] {
		if c == "" || c == "." || c == ".." {
			o.sys.Close(dir)
			return -1, false, errOutside
		}
		sub, err := o.at(dir, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && o.mkdir {
			if err := o.sys.Mkdirat(dir, c, 0o755); err != nil && err != unix.EEXIST {
				o.sys.Close(dir)
				return -1, false, err
			}
			sub, err = o.at(dir, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		}
		o.sys.Close(dir)
		if err != nil {
			return -1, false, err
		}
		dir = sub
	}
	base := comps[len(comps)-1]
	if base == "" || base == "." || base == ".." {
		o.sys.Close(dir)
		return -1, false, errOutside
	}
	// The file itself is never reached through a symbolic link: one
	// planted at a rendered name would steer the lines into another file
	// of the directory (another output's).
	fd, created, err := createOrOpen(func(flags int, perm uint32) (int, error) { return o.at(dir, base, flags|unix.O_NOFOLLOW, perm) },
		func() (uint32, error) {
			var st unix.Stat_t
			err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW)
			return st.Mode, err
		}, o.perm)
	o.sys.Close(dir)
	return fd, created, err
}

// at opens one path component beneath the directory dirfd.
func (o *opener) at(dirfd int, comp string, flags int, perm uint32) (int, error) {
	if o.sys.HaveOpenat2 {
		how := &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		if flags&unix.O_CREAT != 0 {
			how.Mode = uint64(perm)
		}
		return o.sys.Openat2(dirfd, comp, how)
	}
	// No openat2 here (or a seccomp filter refuses it): never follow a
	// link in a rendered component.
	return o.sys.Openat(dirfd, comp, flags|unix.O_NOFOLLOW, perm)
}

// errReserved is returned for a rendered path that names flatstore's state
// directory; it is a bad path, as errOutside is.
type errReserved struct{}

func (errReserved) Error() string {
	return "names " + StateDirName + ", flatstore's own state directory (reserved)"
}

func (errReserved) Is(target error) bool { return target == errOutside }

// isStateDirName reports whether a path component names the state
// directory, ignoring case.
func isStateDirName(c string) bool { return strings.EqualFold(c, StateDirName) }

// modeBits turns an os.FileMode type into the S_IFMT bits fileKind reads.
func modeBits(m os.FileMode) uint32 {
	switch {
	case m&os.ModeNamedPipe != 0:
		return unix.S_IFIFO
	case m&os.ModeSocket != 0:
		return unix.S_IFSOCK
	case m&os.ModeCharDevice != 0:
		return unix.S_IFCHR
	case m&os.ModeDevice != 0:
		return unix.S_IFBLK
	case m.IsDir():
		return unix.S_IFDIR
	}
	return unix.S_IFREG
}
