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

// CheckPaths checks, without creating or changing anything, what a start
// of an output with cfg needs of the file system and would otherwise find
// only at its first flush: that the user may create files in the directory
// the files go in (or, with mkdir, in the nearest one that exists), append
// to the configured file when it exists (a regular file), and create the
// control socket. (ParseConfig already refuses what needs no user: a
// missing directory without mkdir, a missing socket directory.) access decides what the running user may do
// (unix.Access for the caller; flatstore-ctl check -user for another). It
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
					bad("path %q: the file exists and cannot be appended to (%v): fix its owner or mode", cfg.RawPath, err)
				}
			}
		}
	}
	if sock, ok := cfg.ControlListen.Unix(); ok {
		// ParseConfig found a missing directory; here, the access to it.
		if sdir := filepath.Dir(sock); isDir(sdir) {
			if err := access(sdir, unix.W_OK|unix.X_OK); err != nil {
				bad("control_listen %q: cannot create the socket in %q (%v)", cfg.ControlListen.String(), sdir, err)
			}
		}
	}
	return errs
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
