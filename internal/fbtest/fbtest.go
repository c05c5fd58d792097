// Package fbtest is the shared harness for tests that drive the flatstore
// plugin through the project's C host (host/flbhost.c), the way Fluent Bit
// drives a Go output plugin.
//
// Build compiles the plugin and the host once per test binary; RunHost and
// StartHost run the host and parse its JSON summary; the msgpack builders
// (Record, KV, AppendRecord, Frames…) make the input. A package that uses the
// harness may call Main from its TestMain to remove the build directory at
// the end.
package fbtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flatstore/flatstore/internal/hostout"
	"github.com/flatstore/flatstore/internal/repo"
)

// HostTimeout bounds every host run; the host is killed when it expires.
var HostTimeout = 120 * time.Second

var (
	dirOnce sync.Once
	dir     string
	dirErr  error

	hostOnce sync.Once
	hostPath string
	hostErr  error

	soOnce sync.Once
	soPath string
	soErr  error
)

// Main runs the tests and removes the harness's build directory afterwards.
// Use it as: func TestMain(m *testing.M) { fbtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

func buildDir() (string, error) {
	dirOnce.Do(func() {
		dir, dirErr = os.MkdirTemp("", "fbtest-build-")
	})
	return dir, dirErr
}

// BuildHost returns the path of the C host, compiling host/*.c once per
// test binary (or FLATSTORE_HOST when set).
func BuildHost(t testing.TB) string {
	t.Helper()
	hostOnce.Do(func() {
		if p := os.Getenv("FLATSTORE_HOST"); p != "" {
			hostPath = p
			return
		}
		root, err := repo.Root()
		if err != nil {
			hostErr = err
			return
		}
		d, err := buildDir()
		if err != nil {
			hostErr = err
			return
		}
		out := filepath.Join(d, "flbhost")
		srcs, err := filepath.Glob(filepath.Join(root, "host", "*.c"))
		if err != nil || len(srcs) == 0 {
			hostErr = fmt.Errorf("no host/*.c under %s (%v)", root, err)
			return
		}
		args := append([]string{"-O2", "-Wall", "-Wextra", "-o", out}, srcs...)
		cmd := exec.Command("cc", append(args, "-rdynamic", "-ldl", "-lpthread")...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			hostErr = fmt.Errorf("cc host/*.c: %v\n%s", err, msg)
			return
		}
		hostPath = out
	})
	if hostErr != nil {
		t.Fatal(hostErr)
	}
	return hostPath
}

// BuildPlugin returns the path of the plugin .so, building ./plugin with
// -buildmode=c-shared once per test binary (or FLATSTORE_SO when set).
func BuildPlugin(t testing.TB) string {
	t.Helper()
	soOnce.Do(func() {
		if p := os.Getenv("FLATSTORE_SO"); p != "" {
			soPath = p
			return
		}
		root, err := repo.Root()
		if err != nil {
			soErr = err
			return
		}
		d, err := buildDir()
		if err != nil {
			soErr = err
			return
		}
		out := filepath.Join(d, "out_flatstore.so")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./plugin")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if msg, err := cmd.CombinedOutput(); err != nil {
			soErr = fmt.Errorf("go build ./plugin: %v\n%s", err, msg)
			return
		}
		soPath = out
	})
	if soErr != nil {
		t.Fatal(soErr)
	}
	return soPath
}

// Build returns the plugin .so and the host, building each once per test
// binary.
func Build(t testing.TB) (so, host string) {
	t.Helper()
	return BuildPlugin(t), BuildHost(t)
}

// InstanceSummary and Summary are the host's summary (package hostout).
type (
	InstanceSummary = hostout.InstanceSummary
	Summary         = hostout.Summary
)

// ParseSummary finds the last summary line in the host's stdout.
func ParseSummary(stdout []byte) (Summary, error) { return hostout.Parse(stdout) }

// Host is a running host process.
type Host struct {
	t      testing.TB
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout bytes.Buffer
	stderr SyncBuffer
	done   chan struct{}
	once   sync.Once

	summary Summary
	code    int
	timeout time.Duration
}

// SyncBuffer is a buffer several goroutines may write while a test reads
// it: the host's stderr, a logger's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func hasSO(args []string) bool {
	for _, a := range args {
		if a == "-so" {
			return true
		}
	}
	return false
}

// HostConfig holds the less common settings of a host run.
type HostConfig struct {
	Stdin   []byte        // fed to the host's stdin (for -in -); nil: no stdin
	Env     []string      // added to the test process's environment ("K=V")
	Dir     string        // working directory; "": the test's
	Timeout time.Duration // 0: HostTimeout
}

// StartHost starts the host with args and returns at once. When args hold no
// -so, the real plugin is built and passed. The host is killed after
// HostTimeout or when the test ends.
func StartHost(t testing.TB, args ...string) *Host {
	t.Helper()
	return StartHostWith(t, HostConfig{}, args...)
}

// StartHostWith is StartHost with a HostConfig.
func StartHostWith(t testing.TB, cfg HostConfig, args ...string) *Host {
	t.Helper()
	host := BuildHost(t)
	if !hasSO(args) {
		args = append([]string{"-so", BuildPlugin(t)}, args...)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = HostTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	h := &Host{t: t, cancel: cancel, done: make(chan struct{}), timeout: timeout}
	h.cmd = exec.CommandContext(ctx, host, args...)
	h.cmd.Stdout = &h.stdout
	h.cmd.Stderr = &h.stderr
	h.cmd.Dir = cfg.Dir
	if cfg.Env != nil {
		h.cmd.Env = append(os.Environ(), cfg.Env...)
	}
	if cfg.Stdin != nil {
		h.cmd.Stdin = bytes.NewReader(cfg.Stdin)
	}
	h.cmd.WaitDelay = 5 * time.Second
	if err := h.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("fbtest: start host: %v", err)
	}
	t.Cleanup(func() {
		h.cancel()
		h.wait()
	})
	return h
}

func (h *Host) wait() {
	h.once.Do(func() {
		err := h.cmd.Wait()
		timedOut := errors.Is(h.cmd.Err, context.DeadlineExceeded)
		h.code = exitCode(h.cmd.ProcessState, err)
		h.cancel()
		if timedOut {
			h.t.Errorf("fbtest: host timed out after %v; stderr:\n%s", h.timeout, h.stderr.String())
		}
		s, perr := ParseSummary(h.stdout.Bytes())
		if perr != nil {
			h.t.Errorf("%v", perr)
		}
		h.summary = s
		close(h.done)
	})
}

// exitCode is the process's exit code, or 128+signal when a signal killed it.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// Wait waits for the host to exit and returns its summary, its stderr and its
// exit code (128+signal when a signal killed it).
func (h *Host) Wait() (Summary, string, int) {
	h.wait()
	return h.summary, h.stderr.String(), h.code
}

// Stderr returns what the host has written to stderr so far.
func (h *Host) Stderr() string { return h.stderr.String() }

// Kill kills the host at once.
func (h *Host) Kill() { h.cancel() }

// Release ends the host's -hold-ms now, or at once when its hold begins:
// the test has done what needed the running process. A generous -hold-ms
// with Release bounds the run without racing the test on a loaded machine.
func (h *Host) Release() {
	h.t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGUSR1); err != nil && !errors.Is(err, os.ErrProcessDone) {
		h.t.Errorf("fbtest: release the host's hold: %v", err)
	}
}

// Signal sends sig to the host (SIGTERM for a graceful stop).
func (h *Host) Signal(sig os.Signal) error { return h.cmd.Process.Signal(sig) }

// RunHost runs the host with args to the end and returns its summary, its
// stderr and its exit code. When args hold no -so, the real plugin is used.
func RunHost(t testing.TB, args ...string) (Summary, string, int) {
	t.Helper()
	return StartHost(t, args...).Wait()
}

// RunHostWith is RunHost with a HostConfig.
func RunHostWith(t testing.TB, cfg HostConfig, args ...string) (Summary, string, int) {
	t.Helper()
	return StartHostWith(t, cfg, args...).Wait()
}

// FreeTCPAddr returns a 127.0.0.1:PORT that was free a moment ago, taken
// below the kernel's ephemeral range (net.ipv4.ip_local_port_range). A port
// the kernel hands out itself (listening on :0) can be taken again, between
// the moment it is returned and the moment the engine binds it — or while a
// reload has closed it — as the source port of any outgoing connection on
// the machine, or of a connection to that very port, which then connects
// to itself: the engine's bind fails and the test with it.
func FreeTCPAddr(t testing.TB) string {
	t.Helper()
	return freeAddr(t, "tcp")
}

// freeAddr finds a free loopback port for network (tcp or udp) below the
// ephemeral range.
func freeAddr(t testing.TB, network string) string {
	t.Helper()
	low, _ := ephemeralRange()
	const first = 10000
	if low <= first+1000 {
		low = 32768
	}
	for try := 0; try < 200; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", first+rand.IntN(low-first))
		var err error
		if network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				l.Close()
			}
		}
		if err == nil {
			return addr
		}
	}
	t.Fatalf("fbtest: no free %s port in [%d, %d) after 200 tries", network, first, low)
	return ""
}

// ephemeralRange reads the kernel's range of automatic source ports.
func ephemeralRange() (low, high int) {
	low, high = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		fmt.Sscan(string(b), &low, &high)
	}
	return low, high
}

// WriteFile writes data into a new file in the test's temp dir and returns
// its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// CheckLinesTerminated reports an error unless data is empty or ends with a
// newline, i.e. every line is complete.
func CheckLinesTerminated(data []byte) error {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		i := bytes.LastIndexByte(data, '\n')
		return fmt.Errorf("last line is not terminated by \\n: %q", data[i+1:])
	}
	return nil
}

// AssertLinesTerminated fails the test unless every line of data ends with '\n'.
func AssertLinesTerminated(t testing.TB, data []byte) {
	t.Helper()
	if err := CheckLinesTerminated(data); err != nil {
		t.Error(err)
	}
}

// ReadText returns the whole content of path, failing the test when it
// cannot be read.
func ReadText(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fbtest: %v", err)
	}
	return string(data)
}

// ReadLines reads a file, asserts that every line ends with '\n' and returns
// the lines without it. A missing file fails the test.
func ReadLines(t testing.TB, path string) []string {
	t.Helper()
	data := []byte(ReadText(t, path))
	AssertLinesTerminated(t, data)
	lines, _ := SplitLines(data)
	return lines
}

// SplitLines splits data at '\n' and returns the complete lines, without the
// newline. A trailing fragment without '\n' is returned as the second value.
func SplitLines(data []byte) (lines []string, rest string) {
	s := string(data)
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return lines, s
		}
		lines = append(lines, s[:i])
		s = s[i+1:]
	}
}

// Pid returns the host's process id, for reading /proc/PID while it runs.
func (h *Host) Pid() int { return h.cmd.Process.Pid }

// FDsUnder counts the descriptors of process pid open on files under dir
// (from /proc/PID/fd), those in flatstore's state directory (dir/.flatstore:
// a journal open during a flush) excepted; -1 when they cannot be read, or when the process
// opened or closed descriptors while they were read. The descriptor table
// is listed and each entry read in turn, which is no snapshot: a number
// closed and taken again by another file in between would be counted twice.
// So the table is read twice and a count is given only when both readings
// agree, entry for entry.
func FDsUnder(pid int, dir string) int {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	read := func() (map[string]string, bool) {
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			return nil, false
		}
		m := make(map[string]string, len(ents))
		for _, e := range ents {
			if l, err := os.Readlink(fdDir + "/" + e.Name()); err == nil {
				m[e.Name()] = l
			}
		}
		return m, true
	}
	a, ok := read()
	if !ok {
		return -1
	}
	b, ok := read()
	if !ok || len(a) != len(b) {
		return -1
	}
	n := 0
	for fd, l := range a {
		if b[fd] != l {
			return -1
		}
		if strings.HasPrefix(l, dir+"/") && !strings.HasPrefix(l, dir+"/.flatstore/") {
			n++
		}
	}
	return n
}

// FreeUDPAddr returns a 127.0.0.1:PORT free for UDP a moment ago, below the
// ephemeral range as FreeTCPAddr's.
func FreeUDPAddr(t testing.TB) string {
	t.Helper()
	return freeAddr(t, "udp")
}

// ReadDecompressed reads a file, plain or compressed by its name: .gz with
// the standard library's reader (an independent check of what the plugin
// wrote with another library), .zst. A missing or broken file fails the
// test.
func ReadDecompressed(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	case strings.HasSuffix(path, ".zst"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}
