package filestore

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"golang.org/x/sys/unix"
)

// isBadPathErrno reports whether e belongs to a rendered name.
func isBadPathErrno(e unix.Errno) bool {
	switch e {
	case unix.ENAMETOOLONG, unix.EISDIR, unix.ENOTDIR, unix.ELOOP, unix.EINVAL,
		unix.EXDEV, // RESOLVE_BENEATH: the path leads out of the directory
		unix.ENXIO, // a FIFO without a reader, a socket, a device without its driver
		unix.EILSEQ:
		return true
	}
	return false
}

// errNotRegular is returned when a path names something other than a
// regular file (a FIFO with a reader, a device, a socket, a directory).
type errNotRegular struct{ kind string }

func (e errNotRegular) Error() string { return "not a regular file (" + e.kind + ")" }

// errOutside is returned when a rendered path would leave the template's
// static directory.
var errOutside = errors.New("leads out of the template's directory")

// errOtherOutput is returned when a rendered path names, or resolves to, a
// file that belongs to another output: its configured file (or a name of its
// rotations) or a file it has open. A record never writes there.
type errOtherOutput struct{ path string }

func (e errOtherOutput) Error() string {
	return fmt.Sprintf("is another output's file (%q)", e.path)
}

// FileError is a failed open, write or sync of one file, with its errno.
type FileError struct {
	op, path string
	err      error
}

func (e *FileError) Error() string {
	var errno unix.Errno
	if errors.As(e.err, &errno) {
		return fmt.Sprintf("%s %q: %v (%s)", e.op, e.path, e.err, unix.ErrnoName(errno))
	}
	return fmt.Sprintf("%s %q: %v", e.op, e.path, e.err)
}

func (e *FileError) Unwrap() error { return e.err }

// OtherOutput is the error of a rendered path that names owner's file, a
// file of another output: its records are dropped (IsBadPath).
func OtherOutput(path, owner string) error {
	return &FileError{"open", path, errOtherOutput{owner}}
}

// IsBadPath reports whether err belongs to the rendered name rather than to
// the file system.
func IsBadPath(err error) bool {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return isBadPathErrno(errno)
	}
	var nr errNotRegular
	var oo errOtherOutput
	return errors.As(err, &nr) || errors.Is(err, errOutside) || errors.As(err, &oo)
}

// ErrnoName is the name of the errno in err, for metrics and log keys.
func ErrnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return strconv.Itoa(int(errno))
	}
	var nr errNotRegular
	if errors.As(err, &nr) {
		return "not_regular"
	}
	if errors.Is(err, errOutside) {
		return "EXDEV"
	}
	var oo errOtherOutput
	if errors.As(err, &oo) {
		return "other_output"
	}
	return "other"
}

// ErrnoOf strips the path an *fs.PathError repeats, as the messages quote
// it already.
func ErrnoOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
