package flatstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Access reports whether path may be opened with mode (unix.W_OK,
// unix.X_OK…) by the user flatstore will run as; nil when it may.
type Access func(path string, mode uint32) error

// ProcessAccess is the Access of this process, the user Fluent Bit runs
// as when the plugin's Init calls it: a regular file asked for W_OK is
// opened for appending, as a flush opens it (O_WRONLY|O_APPEND, without
// O_CREAT or O_TRUNC: nothing on disk changes), and closed, so that every
// reason the kernel has to refuse counts — mode bits, ACLs, an immutable
// file, a read-only mount, a security module. Anything else is asked of
// access(2) (Fluent Bit is not set-user-ID: its real ids are its own).
func ProcessAccess(path string, mode uint32) error {
	if mode == unix.W_OK {
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
			// O_NONBLOCK: a lease held by another process is not waited for.
			fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil
			}
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}
	}
	return unix.Access(path, mode)
}

// CheckConfig is everything the plugin's Init checks before it starts an
// output, and what flatstore-ctl check reports: ParseConfig's problems, a
// control socket's missing directory (CheckListenDir) and what the output
// needs of the file system (CheckPaths, as access decides), joined in one
// error, one problem a line. The file system is checked whenever the path
// itself is sound, even when another key is not, so that a first run
// names every problem. The Config is nil unless there is none.
func CheckConfig(g Getter, access Access) (*Config, error) {
	cfg, err := ParseConfig(g)
	errs := []error{err, CheckListenDir(g.Get("control_listen"))}
	paths := cfg
	if paths == nil {
		paths = pathOnly(g)
	}
	if paths != nil {
		errs = append(errs, CheckPaths(paths, access)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// pathOnly is a Config holding only what CheckPaths reads (path, mkdir,
// suffix, control_listen), for a configuration ParseConfig refused over
// another key; nil when the path is itself refused (ParseConfig said why).
func pathOnly(g Getter) *Config {
	c := &Config{ControlListen: ParseListen(g.Get("control_listen")), Suffix: g.Get("suffix")}
	if v := g.Get("mkdir"); v != "" {
		c.Mkdir, _ = parseBool(v)
	}
	if len(c.parsePath(g.Get("path"))) > 0 {
		return nil
	}
	return c
}

// CheckPaths checks, without creating or changing anything, what a start
// of an output with cfg needs of the file system and would otherwise find
// only at its first flush: that the user may create files in the directory
// the files go in (or, with mkdir, in the nearest one that exists), append
// to the configured file when it exists (a regular file; a path without a
// template or suffix), and create the control socket. (ParseConfig already
// refuses what needs no user: a missing directory without mkdir.) access
// decides what the running user may do (ProcessAccess in the plugin and
// flatstore-ctl check; flatstore-ctl check -user for another user). It
// returns every problem, each saying what to do.
func CheckPaths(cfg *Config, access Access) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	dir := cfg.Template.StaticDir()
	if st, err := os.Stat(dir); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			bad("path %q: directory %q: %v", cfg.RawPath, dir, err)
		} else if !cfg.Mkdir {
			bad("path %q: directory %q does not exist: create it, or set mkdir true", cfg.RawPath, dir)
		} else if anc := existingAncestor(dir); anc != "" {
			if err := access(anc, unix.W_OK|unix.X_OK); err != nil {
				bad("path %q: mkdir true cannot create %q: %q is not writable (%v)", cfg.RawPath, dir, anc, err)
			}
		}
	} else if !st.IsDir() {
		bad("path %q: %q is not a directory", cfg.RawPath, dir)
	} else if err := access(dir, unix.W_OK|unix.X_OK); err != nil {
		bad("path %q: cannot create files in %q (%v): give the user Fluent Bit runs as write access", cfg.RawPath, dir, err)
	}
	if cfg.Template.Static() && cfg.Suffix == "" {
		if st, err := os.Stat(cfg.Path); err == nil {
			switch {
			case !st.Mode().IsRegular():
				bad("path %q: %q exists and is not a regular file (%v)", cfg.RawPath, cfg.Path, st.Mode().Type())
			default:
				if err := access(cfg.Path, unix.W_OK); err != nil {
					bad("path %q: the file exists and the user Fluent Bit runs as cannot append to it (%v): %s",
						cfg.RawPath, err, appendAdvice(err))
				}
			}
		}
	}
	if sock, ok := cfg.ControlListen.Unix(); ok {
		// CheckListenDir reports a missing directory; here, the access to it.
		if sdir := filepath.Dir(sock); isDir(sdir) {
			if err := access(sdir, unix.W_OK|unix.X_OK); err != nil {
				bad("control_listen %q: cannot create the socket in %q (%v)", cfg.ControlListen.String(), sdir, err)
			}
		}
	}
	return errs
}

// appendAdvice says what to do about a file that cannot be opened for
// appending, by the reason the kernel gave.
func appendAdvice(err error) string {
	switch {
	case errors.Is(err, unix.EROFS):
		return "its file system is mounted read-only: choose a path on a writable one, or remount it read-write"
	case errors.Is(err, unix.EPERM):
		return "it is immutable (lsattr shows i): chattr -i it, or choose another path"
	case errors.Is(err, unix.ETXTBSY):
		return "a running program is loaded from it: choose another path"
	}
	return "give that user write access to it (chown, chmod or setfacl), or choose another path"
}

// existingAncestor is the nearest directory above dir that exists, or "".
func existingAncestor(dir string) string {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}
