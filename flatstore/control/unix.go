package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flatstore/flatstore/flatstore"
)

// listenUnix binds a unix socket at path with mode 0600, whatever the
// process umask.
//
// A stale socket file (nothing accepts on it) is removed; a live one, or a
// file that is not a socket, is an error. The socket is bound inside a fresh
// private directory (mode 0700) beside path, chmod-ed to 0600 there, and only
// then hard-linked to path: nobody else can reach it before its mode is
// final, and the process umask (shared by every thread) is never touched.
// link(2) also refuses to replace a file another process created meanwhile.
func listenUnix(path string) (net.Listener, fs.FileInfo, error) {
	if path == "" {
		return nil, nil, errors.New("no socket path after the unix: prefix")
	}
	if len(path) > flatstore.MaxUnixPath {
		return nil, nil, fmt.Errorf("the socket path is %d bytes long; a unix socket path has at most %d: choose a shorter one",
			len(path), flatstore.MaxUnixPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("%s: another process listens on it: %w", path, syscall.EADDRINUSE)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("%s exists and cannot tell whether it is stale: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("removing stale socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}

	dir, err := os.MkdirTemp(filepath.Dir(path), ".fs")
	if err != nil {
		return nil, nil, fmt.Errorf("making a private directory for the socket: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := bindUnix(dir, tmp)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Listener, fs.FileInfo, error) {
		_ = ln.Close()
		return nil, nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, fi, nil
}

// bindUnix binds a socket named tmp inside dir. The temporary name can be
// longer than sun_path takes even when the final path fits (".fs123456789/s"
// beside a name of a few bytes); then it binds through /proc/self/fd/N/s,
// N a descriptor of dir: the same directory under a short name.
func bindUnix(dir, tmp string) (*net.UnixListener, error) {
	name := tmp
	if len(tmp) > flatstore.MaxUnixPath {
		d, err := os.Open(dir)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		name = fmt.Sprintf("/proc/self/fd/%d/s", d.Fd())
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		if name != tmp {
			return nil, fmt.Errorf("binding %s through %s (is /proc mounted?): %w", tmp, name, err)
		}
		return nil, err
	}
	// We remove path ourselves and tmp goes with dir; the short name must
	// never be unlinked later, when N may name another directory.
	ln.SetUnlinkOnClose(false)
	return ln, nil
}
