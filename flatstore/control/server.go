package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/logger"
)

// server is one listener and its HTTP server.
type server struct {
	reg     *Registry
	addr    string // as acquired, the registry key
	bound   string // what Addr reports
	token   string
	metrics prometheus.Gatherer
	log     *logger.Logger // of the instance that started it, for server-level messages
	lim     limits

	// checkHost is set on loopback and unix listeners: only Host values
	// that name this machine are served (DNS rebinding). listenHost is the
	// host part of the configured address, also accepted.
	checkHost  bool
	listenHost string

	ln     net.Listener
	hs     *http.Server
	served chan struct{}  // closed when Serve returns
	wg     sync.WaitGroup // one per admitted connection until it is closed

	connMu sync.Mutex
	conns  map[net.Conn]*connInfo // admitted and not closed yet
	seq    uint64                 // admission order

	unixPath string      // socket file to remove on stop
	unixFile fs.FileInfo // the socket file we created, so we never remove another's

	mu      sync.Mutex
	handles []*Handle
}

// How the connection slots are shared.
//
// A server holds at most lim.maxConns connections (one descriptor each). A
// connection holds its slot firmly only while the server works on a request
// it has read whole, headers and body (phaseServing): the handler runs, the
// reply is written (bounded by writeTimeout). Every other connection — one
// whose headers or body are still coming, an idle keep-alive one, one being
// closed after a refusal — only borrows its slot: when a new connection
// arrives at the cap, the oldest of those is closed to make room (admit).
// So a client that sends headers and then trickles its body, or sends
// nothing at all, never keeps a newer client out; to push a real request out
// before it is read, a flood would have to cycle through every borrowed slot
// in the time that request takes to arrive, which for a few hundred bytes
// sent at once is far below one accept per slot. Every request must also be
// read whole within readTimeout from its first byte, whatever its pace.
//
// Of the firm slots, reservedConns(maxConns) are kept for trusted requests
// (trusted): a request that carries the valid control_token, or, when no
// token is set, one over the unix socket or from a loopback address. A
// request that is not trusted (with a token set, only /healthz and
// /challenge are served without it) may enter phaseServing only while fewer
// than maxConns-reserved untrusted requests are there; otherwise it is
// refused with 503 and its connection closed. Trust is decided only once the
// headers are complete (guard), so a connection whose headers are
// incomplete is never trusted and never in a reserved slot: it borrows a
// slot like any other and is the first to go at the cap, oldest first.
// Between them, a rotate that carries the token (or, without a token, comes
// over the local listener) always finds a slot: either one is free, or one
// is borrowed and is taken from its borrower, or trusted requests fill the
// reserve and the cap is reached only by requests the server is already
// answering.
//
// A refusal (401, 403, 408, 413, 421, 503) goes out with "Connection:
// close" and the connection is closed without reading what remains of the
// body (refuse).

// phase is where a connection is in its current request.
type phase uint8

const (
	phaseWaiting phase = iota // accepted or idle: the headers of its next request are not all in
	phaseReading              // headers in and checked, the body being read
	phaseServing              // the request is read; it is being answered (holds its slot)
	phaseRefused              // a refusal is being sent; it closes next
)

// connInfo is what the server knows of one connection.
type connInfo struct {
	seq     uint64
	phase   phase
	trusted bool // of the request in phaseReading or phaseServing
}

// connKey is the request context key of the connection a request came on.
type connKey struct{}

// connOf returns the connection r came on (nil if unknown).
func connOf(r *http.Request) net.Conn {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	return c
}

func start(r *Registry, l flatstore.Listen, o Options, lim limits) (*server, error) {
	addr := l.String()
	s := &server{
		reg: r, addr: addr, token: o.Token, metrics: o.Metrics, log: o.Log, lim: lim,
		served: make(chan struct{}), conns: map[net.Conn]*connInfo{},
	}
	path, isUnix := l.Unix()
	switch {
	case l.Off():
		return nil, fmt.Errorf("control_listen %q: nothing to listen on", addr)
	case isUnix:
		ln, fi, err := listenUnix(path)
		if err != nil {
			return nil, fmt.Errorf("control_listen %q: %w", addr, err)
		}
		s.ln, s.unixPath, s.unixFile, s.bound = ln, path, fi, addr
		s.checkHost = true
	default:
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("control_listen %q: %w", addr, err)
		}
		s.ln, s.bound = ln, ln.Addr().String()
		if ap, err := netip.ParseAddrPort(s.bound); err == nil && ap.Addr().Unmap().IsLoopback() {
			s.checkHost = true
			if h, _, err := net.SplitHostPort(addr); err == nil {
				s.listenHost = h
			}
		}
	}
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: lim.readHeaderTimeout,
		ReadTimeout:       lim.readTimeout,
		WriteTimeout:      lim.writeTimeout,
		IdleTimeout:       lim.idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(logWriter{s}, "", 0),
		ConnState:         s.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	go func() {
		defer close(s.served)
		if err := s.hs.Serve(capListener{s.ln, s}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Errorf("control endpoint %s stopped: %v", s.bound, err)
		}
	}()
	return s, nil
}

// capListener admits each accepted connection through the server's cap.
type capListener struct {
	net.Listener
	s *server
}

func (l capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.admit(c) {
			return c, nil
		}
	}
}

// admit counts c in, or refuses it. At the cap, the oldest connection that
// only borrows its slot (any but phaseServing: see "How the connection slots
// are shared" above) is closed to make room: a flood of connections that send
// nothing, or send their requests slowly, can never lock out a real rotate,
// nor hold more than maxConns descriptors. Only when every connection has a
// request read and being answered (each bounded by the write timeout) is c
// itself closed.
func (s *server) admit(c net.Conn) bool {
	var victim net.Conn
	s.connMu.Lock()
	if len(s.conns) >= s.lim.maxConns {
		var oldest uint64
		for vc, ci := range s.conns {
			if ci.phase != phaseServing && (victim == nil || ci.seq < oldest) {
				victim, oldest = vc, ci.seq
			}
		}
		if victim == nil {
			s.connMu.Unlock()
			// Logged before the close, so that whoever sees the close can
			// find the reason in the log.
			s.logger().LimitedWarnf("control-conns-busy", "control endpoint %s: %d requests in flight, the most it holds; "+
				"a new connection was closed", s.bound, s.lim.maxConns)
			_ = c.Close()
			return false
		}
		delete(s.conns, victim) // its StateClosed still comes, and ends its count in wg
	}
	s.seq++
	s.conns[c] = &connInfo{seq: s.seq}
	s.wg.Add(1)
	s.connMu.Unlock()
	if victim != nil {
		s.logger().LimitedWarnf("control-conns-full", "control endpoint %s: %d connections open, the most it holds; "+
			"closed the oldest one that had not sent a whole request (is a client opening connections and sending nothing, "+
			"or sending slowly?)",
			s.bound, s.lim.maxConns)
		_ = victim.Close()
	}
	return true
}

// connState follows each admitted connection: back to phaseWaiting when it
// waits for its next request, and its end.
func (s *server) connState(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch st {
	case http.StateIdle:
		if ci := s.conns[c]; ci != nil {
			ci.phase, ci.trusted = phaseWaiting, false
		}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
		s.wg.Done()
	}
}

// reading marks c's request as checked (trusted or not), its body being
// read. It reports false when c is no longer counted (it was closed to make
// room).
func (s *server) reading(c net.Conn, trusted bool) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	ci := s.conns[c]
	if ci == nil {
		return false
	}
	ci.phase, ci.trusted = phaseReading, trusted
	return true
}

// serving moves c's request, read whole, into phaseServing, where it holds
// its slot. An untrusted request gets there only while fewer than
// maxConns-reservedConns(maxConns) untrusted ones are; false: refuse it.
func (s *server) serving(c net.Conn, trusted bool) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	ci := s.conns[c]
	if ci == nil {
		return false
	}
	if !trusted {
		n := 0
		for _, o := range s.conns {
			if o.phase == phaseServing && !o.trusted {
				n++
			}
		}
		if n >= s.lim.maxConns-reservedConns(s.lim.maxConns) {
			return false
		}
	}
	ci.phase, ci.trusted = phaseServing, trusted
	return true
}

// refused marks c as closing after a refusal: it no longer holds a slot.
func (s *server) refused(c net.Conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if ci := s.conns[c]; ci != nil {
		ci.phase = phaseRefused
	}
}

// connCount is the number of connections the server holds now.
func (s *server) connCount() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return len(s.conns)
}

// stop closes the listener, lets requests in flight finish for up to
// shutdownTimeout, closes every other connection and waits for the
// goroutines.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), s.lim.shutdownTimeout)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- s.hs.Shutdown(ctx) }()
	<-s.served // the listener is closed: no new connection from here on
	// Shutdown would wait up to 5 s for a connection that has not sent a
	// whole request yet (or trickles its body); it has nothing being
	// answered, so close it now.
	s.connMu.Lock()
	for c, ci := range s.conns {
		if ci.phase != phaseServing {
			_ = c.Close()
		}
	}
	s.connMu.Unlock()
	if err := <-shut; err != nil {
		s.logger().Warnf("control endpoint %s: requests still running after %v, closing them", s.bound, s.lim.shutdownTimeout)
	}
	_ = s.hs.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.lim.shutdownTimeout):
		s.logger().Warnf("control endpoint %s: a request handler did not return within %v", s.bound, s.lim.shutdownTimeout)
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
func (s *server) logger() *logger.Logger {
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
	w.s.logger().LimitedWarnf("control-http", "control endpoint %s: %s", w.s.bound, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
