package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// The core's Instance is what production attaches.
var _ Backend = (*flatstore.Instance)(nil)

// fileBackend is a small real Backend: it manages files by exact path and
// keeps them open for appending; Rotate closes one so the next Write reopens
// it, as the core does.
type fileBackend struct {
	mu        sync.Mutex
	files     map[string]*os.File // nil value: managed, closed
	rotations map[string]int
	fail      map[string]error // Rotate of this path fails with the error
	block     chan struct{}    // when set, Rotate waits for it to close
	entered   chan string      // when set, Rotate reports the path first
}

func newFileBackend(t testing.TB, paths ...string) *fileBackend {
	t.Helper()
	b := &fileBackend{files: map[string]*os.File{}, rotations: map[string]int{}, fail: map[string]error{}}
	for _, p := range paths {
		b.files[p] = nil
		b.Write(t, p, "first\n")
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, f := range b.files {
			if f != nil {
				f.Close()
			}
		}
	})
	return b
}

// Write appends s to path, opening it when closed.
func (b *fileBackend) Write(t testing.TB, path, s string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[path]
	if !ok {
		t.Fatalf("Write to unmanaged %s", path)
	}
	if f == nil {
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
			t.Fatal(err)
		}
		b.files[path] = f
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func (b *fileBackend) Rotate(path string) error {
	if b.entered != nil {
		b.entered <- path
	}
	if b.block != nil {
		<-b.block
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.files[path]
	if !ok {
		return flatstore.ErrNotManaged
	}
	if err := b.fail[path]; err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		b.files[path] = nil
	}
	b.rotations[path]++
	return nil
}

func (b *fileBackend) Status() []filestore.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []filestore.Status
	for p, f := range b.files {
		out = append(out, filestore.Status{Path: p, Open: f != nil})
	}
	return out
}

func (b *fileBackend) isOpen(path string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.files[path] != nil
}

func (b *fileBackend) rotated(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rotations[path]
}

func (b *fileBackend) totalRotations() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, v := range b.rotations {
		n += v
	}
	return n
}

// testLimits are short enough that no test waits long.
func testLimits() limits {
	return limits{
		readHeaderTimeout: 300 * time.Millisecond,
		readTimeout:       5 * time.Second,
		writeTimeout:      5 * time.Second,
		idleTimeout:       5 * time.Second,
		shutdownTimeout:   2 * time.Second,
		maxConns:          maxConnsCeiling,
	}
}

// testRegistry is a registry of the test's own, with testLimits.
func testRegistry() *Registry { return &Registry{limits: testLimits()} }

// testMetrics is a gatherer with one counter, flatstore_test_total, so a
// test can see that /metrics serves the gatherer it was given.
func testMetrics() prometheus.Gatherer {
	r := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "flatstore_test_total", Help: "A test counter."})
	c.Add(3)
	r.MustRegister(c)
	return r
}

// testLogger logs into buf at debug level.
func testLogger(buf *fbtest.SyncBuffer) *logger.Logger {
	return logger.New("flatstore.test", logger.NewWriterSink(buf, logger.LevelDebug))
}

// serve attaches bs to a fresh server on a loopback port and releases it
// when the test ends.
func serve(t testing.TB, token string, bs ...Backend) (*Handle, *fbtest.SyncBuffer) {
	t.Helper()
	return startAt(t, "127.0.0.1:0", token, testLimits(), bs...)
}

// startAt attaches bs, in order, to one server at addr in a registry of its
// own.
func startAt(t testing.TB, addr, token string, lim limits, bs ...Backend) (*Handle, *fbtest.SyncBuffer) {
	t.Helper()
	logs := &fbtest.SyncBuffer{}
	reg := &Registry{limits: lim}
	var first *Handle
	for i, b := range bs {
		h, err := reg.Acquire(flatstore.ParseListen(addr), b, Options{Token: token, Metrics: testMetrics(), Log: testLogger(logs)})
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		t.Cleanup(h.Release)
		if first == nil {
			first = h
		}
	}
	return first, logs
}

// client is an HTTP client for h's address (TCP or unix).
func client(h *Handle) (*http.Client, string) {
	tr := &http.Transport{Proxy: nil}
	base := "http://" + h.Addr()
	if p, ok := strings.CutPrefix(h.Addr(), "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		}
		base = "http://localhost"
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, base
}

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, h *Handle, method, path, token string, body []byte) reply {
	t.Helper()
	c, base := client(h)
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(data)}
}

func mi(t *testing.T, h *Handle, body string) reply {
	t.Helper()
	return do(t, h, http.MethodPost, "/mi", "", []byte(body))
}

// tempPaths makes a directory holding a run/ subdirectory and returns the
// absolute paths dir/run/<name> for each name.
func tempPaths(t testing.TB, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, "run", n))
	}
	return out
}

// ourGoroutines lists the goroutines that belong to a control server: an
// HTTP server accept loop or connection, or any other stack with a frame of
// this package that is not a test's.
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*Server).Serve") || strings.Contains(g, "net/http.(*conn).serve") {
			out = append(out, g)
			continue
		}
		if strings.Contains(g, "_test.go") { // the tests themselves
			continue
		}
		if strings.Contains(g, "flatstore/flatstore/flatstore/control.") {
			out = append(out, g)
		}
	}
	return out
}

// waitNoGoroutines polls until no server goroutine is left; the last ones
// return right after Release has seen their connections closed.
func waitNoGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	for range 200 {
		if left = ourGoroutines(); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d goroutines of the control server remain:\n%s", len(left), strings.Join(left, "\n\n"))
}

func isConnRefused(err error) bool {
	return err != nil && (errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "connection refused"))
}
