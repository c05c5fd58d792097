// Package control is flatstore's control endpoint: the OpenSIPS MI JSON-RPC
// interface (POST /mi, as OpenSIPS mi_http), plain HTTP beside it (POST
// /rotate, GET /status, GET /metrics, GET /healthz) and the lifecycle of the
// listeners.
//
// One server runs per address per process, shared by every plugin instance
// that names that address; Acquire attaches an instance, Release detaches it
// and the last Release closes the listener, so a hot reload (Init, Exit, Init
// in one process) can bind the same address again at once.
//
// The package talks to the core only through Backend and imports no cgo.
package control

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatstore/flatstore/flatstore"
)

// Backend is one plugin instance as the control endpoint sees it. *flatstore.Instance implements it.
type Backend interface {
	// Rotate closes the file at path (if open) so that the next write reopens it, and counts a
	// rotation with reason "mi". path must equal byte for byte a path the backend manages;
	// otherwise it returns flatstore.ErrNotManaged and touches nothing.
	Rotate(path string) error
	// Status lists the files the backend manages.
	Status() []flatstore.FileStatus
}

// Request limits (SPEC §5).
const (
	maxBodyBytes   = 64 << 10
	maxHeaderBytes = 16 << 10
)

// options are the server's timeouts. Acquire uses defaultOptions; tests
// shorten them through acquire.
type options struct {
	readHeaderTimeout time.Duration // headers must arrive within this
	readTimeout       time.Duration // the whole request within this
	writeTimeout      time.Duration
	idleTimeout       time.Duration // keep-alive connections are closed after this
	shutdownTimeout   time.Duration // Release waits this long for in-flight requests
	gatherer          prometheus.Gatherer
}

func defaultOptions() options {
	return options{
		readHeaderTimeout: 5 * time.Second,
		readTimeout:       10 * time.Second,
		writeTimeout:      10 * time.Second,
		idleTimeout:       30 * time.Second,
		shutdownTimeout:   3 * time.Second,
	}
}

// registry holds the running servers by the address string they were
// acquired with. regMu is held across start and stop, so an Acquire that
// follows a Release of the same address binds only after the old listener
// is closed.
var (
	regMu   sync.Mutex
	servers = map[string]*server{}
)

// Handle is one instance's attachment to a server. Release it from Exit.
type Handle struct {
	s    *server
	b    Backend
	log  *flatstore.Logger
	once sync.Once
}

// Acquire attaches b to the server for addr ("HOST:PORT" or "unix:/path.sock"), starting it if this is
// the first user in the process. One server per address per process, shared by all instances.
// A second Acquire of the same addr with a different token fails with a clear error.
func Acquire(addr, token string, b Backend, log *flatstore.Logger, g prometheus.Gatherer) (*Handle, error) {
	o := defaultOptions()
	o.gatherer = g
	return acquire(addr, token, b, log, o)
}

func acquire(addr, token string, b Backend, lg *flatstore.Logger, o options) (*Handle, error) {
	if b == nil {
		return nil, fmt.Errorf("control_listen %q: no backend to attach", addr)
	}
	regMu.Lock()
	defer regMu.Unlock()
	s := servers[addr]
	if s == nil {
		var err error
		s, err = start(addr, token, lg, o)
		if err != nil {
			return nil, err
		}
		servers[addr] = s
	} else if !sameToken(s.token, token) {
		return nil, fmt.Errorf("control_listen %q: already served in this process with a different control_token; "+
			"instances that share a control address must use the same token", addr)
	}
	h := &Handle{s: s, b: b, log: lg}
	s.mu.Lock()
	s.handles = append(s.handles, h)
	s.mu.Unlock()
	return h, nil
}

// Release detaches; the last Release closes the listener (unix socket file removed), waits for its
// goroutines and in-flight requests (bounded), so the address can be bound again at once (hot reload:
// Init -> Exit -> Init in one process). Idempotent.
func (h *Handle) Release() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		regMu.Lock()
		defer regMu.Unlock()
		s := h.s
		s.mu.Lock()
		for i, x := range s.handles {
			if x == h {
				s.handles = append(s.handles[:i:i], s.handles[i+1:]...)
				break
			}
		}
		last := len(s.handles) == 0
		s.mu.Unlock()
		if last {
			if servers[s.addr] == s {
				delete(servers, s.addr)
			}
			s.stop()
		}
	})
}

// Addr returns the bound address (useful with port 0): "127.0.0.1:43127" or
// "unix:/run/flatstore.sock".
func (h *Handle) Addr() string {
	if h == nil {
		return ""
	}
	return h.s.bound
}

// server is one listener and its HTTP server.
type server struct {
	addr  string // as acquired, the registry key
	bound string // what Addr reports
	token string
	log   *flatstore.Logger // of the instance that started it, for server-level messages
	opts  options

	ln     net.Listener
	hs     *http.Server
	served chan struct{}  // closed when Serve returns
	conns  sync.WaitGroup // one per accepted connection until it is closed

	connMu  sync.Mutex
	waiting map[net.Conn]bool // connections that have not sent a whole request yet

	unixPath string      // socket file to remove on stop
	unixFile fs.FileInfo // the socket file we created, so we never remove another's

	mu      sync.Mutex
	handles []*Handle
}

func start(addr, token string, lg *flatstore.Logger, o options) (*server, error) {
	s := &server{addr: addr, token: token, log: lg, opts: o, served: make(chan struct{}), waiting: map[net.Conn]bool{}}
	switch {
	case addr == "" || strings.EqualFold(addr, "off"):
		return nil, fmt.Errorf("control_listen %q: nothing to listen on", addr)
	case strings.HasPrefix(addr, "unix:"):
		path := strings.TrimPrefix(addr, "unix:")
		ln, fi, err := listenUnix(path)
		if err != nil {
			return nil, fmt.Errorf("control_listen %q: %w", addr, err)
		}
		s.ln, s.unixPath, s.unixFile, s.bound = ln, path, fi, addr
	default:
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("control_listen %q: %w", addr, err)
		}
		s.ln, s.bound = ln, ln.Addr().String()
	}
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: o.readHeaderTimeout,
		ReadTimeout:       o.readTimeout,
		WriteTimeout:      o.writeTimeout,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(logWriter{s}, "", 0),
		ConnState:         s.connState,
	}
	go func() {
		defer close(s.served)
		if err := s.hs.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Errorf("control endpoint %s stopped: %v", s.bound, err)
		}
	}()
	return s, nil
}

// connState tracks the connections: the count for stop to wait on, and
// which ones are still waiting for their first request.
func (s *server) connState(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch st {
	case http.StateNew:
		s.conns.Add(1)
		s.waiting[c] = true
	case http.StateActive:
		delete(s.waiting, c)
	case http.StateClosed, http.StateHijacked:
		delete(s.waiting, c)
		s.conns.Done()
	}
}

// stop closes the listener, lets requests in flight finish for up to
// shutdownTimeout, closes every other connection and waits for the
// goroutines.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.shutdownTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.hs.Shutdown(ctx) }()
	<-s.served // the listener is closed: no new connection from here on
	// Shutdown would wait up to 5 s for a connection that has not sent a
	// whole request yet; it has nothing in flight, so close it now.
	s.connMu.Lock()
	for c := range s.waiting {
		_ = c.Close()
	}
	s.connMu.Unlock()
	if err := <-shut; err != nil {
		s.log.Warnf("control endpoint %s: requests still running after %v, closing them", s.bound, s.opts.shutdownTimeout)
	}
	_ = s.hs.Close()
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.opts.shutdownTimeout):
		s.log.Warnf("control endpoint %s: a request handler did not return within %v", s.bound, s.opts.shutdownTimeout)
	}
	if s.unixPath != "" {
		if fi, err := os.Lstat(s.unixPath); err == nil && os.SameFile(fi, s.unixFile) {
			_ = os.Remove(s.unixPath)
		}
	}
}

// handlesSnapshot returns the attached handles, in attach order.
func (s *server) handlesSnapshot() []*Handle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Handle(nil), s.handles...)
}

// logger returns the logger of the oldest attached instance, or the one that
// started the server.
func (s *server) logger() *flatstore.Logger {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.handles {
		if h.log != nil {
			return h.log
		}
	}
	return s.log
}

// logWriter sends net/http's own error messages to the instance logger.
type logWriter struct{ s *server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logger().Warnf("control endpoint %s: %s", w.s.bound, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// sameToken compares two tokens in constant time (the hashes hide the
// lengths too).
func sameToken(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

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
		return nil, nil, errors.New("no socket path after unix:")
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
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	ln.SetUnlinkOnClose(false) // we remove path ourselves; tmp goes with dir
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
