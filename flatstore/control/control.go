package control

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
)

// Backend is one plugin instance as the control endpoint sees it. *flatstore.Instance implements it.
type Backend interface {
	// Rotate closes the file at path (if open) so that the next write reopens it, and counts a
	// rotation with reason "mi". path must equal byte for byte a path the backend manages;
	// otherwise it returns flatstore.ErrNotManaged and touches nothing.
	Rotate(path string) error
	// Status lists the files the backend manages.
	Status() []filestore.Status
}

// Options are what one instance brings to the server it attaches to.
type Options struct {
	// Token is the control_token: when set, every request needs
	// "Authorization: Bearer TOKEN". Instances sharing an address must use the
	// same token.
	Token string
	// Metrics is served on GET /metrics; nil serves none (404). The server
	// serves the Metrics of the instance that started it.
	Metrics prometheus.Gatherer
	// Log receives the server's messages (nil: none).
	Log *logger.Logger
}

// Request limits (docs/control-endpoint.md).
//
// maxBodyBytes is enforced while the body is read (a larger body is 413 and
// the connection is closed at once). An MI request names one path: a
// PATH_MAX (4096-byte) path with every byte escaped as \u00XX is 24 KiB of
// JSON, so 64 KiB takes any request a real client sends, padded or
// pretty-printed, while the cap on connections bounds the bodies held at once
// to 8 MiB.
const (
	maxBodyBytes   = 64 << 10
	maxHeaderBytes = 16 << 10
)

// Connection limits. A connection costs a descriptor and about 10 KiB; the
// files the plugin writes must never run short of descriptors because of the
// endpoint, so a server holds at most maxConns connections: an eighth of the
// soft RLIMIT_NOFILE, between minConns and maxConnsCeiling.
const (
	maxConnsCeiling = 128
	minConns        = 8
)

// reservedConns is how many of maxConns connections only trusted requests
// can hold while the server works on them (server.go, admit): an eighth,
// at least one.
func reservedConns(maxConns int) int { return max(1, maxConns/8) }

// limits are a server's timeouts and connection cap. A Registry's zero
// limits mean defaultLimits; tests in this package shorten them.
type limits struct {
	readHeaderTimeout time.Duration // a new connection must send its headers within this
	readTimeout       time.Duration // the whole request, headers and body, within this from its start
	writeTimeout      time.Duration
	idleTimeout       time.Duration // keep-alive connections are closed after this
	shutdownTimeout   time.Duration // Release waits this long for in-flight requests
	maxConns          int           // connections held at once; 0: from RLIMIT_NOFILE
}

func defaultLimits() limits {
	return limits{
		readHeaderTimeout: 5 * time.Second,
		readTimeout:       5 * time.Second,
		writeTimeout:      10 * time.Second,
		idleTimeout:       5 * time.Second,
		shutdownTimeout:   3 * time.Second,
	}
}

// connsForRlimit is the connection cap for a soft RLIMIT_NOFILE of soft.
func connsForRlimit(soft uint64) int {
	n := soft / 8
	switch {
	case n > maxConnsCeiling:
		return maxConnsCeiling
	case n < minConns:
		return minConns
	}
	return int(n)
}

// defaultMaxConns reads the soft descriptor limit now.
func defaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return maxConnsCeiling
	}
	return connsForRlimit(rl.Cur)
}

// Registry holds the running servers of one process by the address string
// they were acquired with. Its zero value is ready to use. mu is held across
// start and stop, so an Acquire that follows a Release of the same address
// binds only after the old listener is closed.
type Registry struct {
	mu      sync.Mutex
	servers map[string]*server
	limits  limits
}

// NewRegistry returns an empty registry. The plugin makes one per process.
func NewRegistry() *Registry { return &Registry{} }

// Handle is one instance's attachment to a server. Release it from Exit.
type Handle struct {
	s    *server
	b    Backend
	log  *logger.Logger
	once sync.Once
}

// Acquire attaches b to the server for l (a control_listen value: "HOST:PORT" or "unix:/path.sock"),
// starting it if this is the first user in the registry. One server per address, shared by all
// instances that name it. A second Acquire of the same address with a different token fails with a
// clear error.
func (r *Registry) Acquire(l flatstore.Listen, b Backend, o Options) (*Handle, error) {
	addr := l.String()
	if b == nil {
		return nil, fmt.Errorf("control_listen %q: no backend to attach", addr)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.servers[addr]
	if s == nil {
		lim := r.limits
		if lim == (limits{}) {
			lim = defaultLimits()
		}
		if lim.maxConns <= 0 {
			lim.maxConns = defaultMaxConns()
		}
		var err error
		s, err = start(r, l, o, lim)
		if err != nil {
			return nil, err
		}
		if r.servers == nil {
			r.servers = map[string]*server{}
		}
		r.servers[addr] = s
	} else if !sameToken(s.token, o.Token) {
		return nil, fmt.Errorf("control_listen %q: already served in this process with a different control_token; "+
			"instances that share a control address must use the same token", addr)
	}
	h := &Handle{s: s, b: b, log: o.Log}
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
		s := h.s
		r := s.reg
		r.mu.Lock()
		defer r.mu.Unlock()
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
			if r.servers[s.addr] == s {
				delete(r.servers, s.addr)
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

// sameToken compares two tokens in constant time (the hashes hide the
// lengths too).
func sameToken(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}
