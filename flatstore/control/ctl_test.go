package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var ctlBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// ctlBinary builds cmd/flatstore-ctl once per test run.
func ctlBinary(t *testing.T) string {
	t.Helper()
	ctlBuild.once.Do(func() {
		ctlBuild.dir, ctlBuild.err = os.MkdirTemp("", "flatstore-ctl-test")
		if ctlBuild.err != nil {
			return
		}
		ctlBuild.path = filepath.Join(ctlBuild.dir, "flatstore-ctl")
		cmd := exec.Command("go", "build", "-o", ctlBuild.path, "github.com/flatstore/flatstore/cmd/flatstore-ctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			ctlBuild.err = fmt.Errorf("go build flatstore-ctl: %v\n%s", err, out)
		}
	})
	if ctlBuild.err != nil {
		t.Fatal(ctlBuild.err)
	}
	return ctlBuild.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if ctlBuild.dir != "" {
		os.RemoveAll(ctlBuild.dir)
	}
	os.Exit(code)
}

type ctlResult struct {
	code           int
	stdout, stderr string
}

func runCtl(t *testing.T, env []string, args ...string) ctlResult {
	t.Helper()
	cmd := exec.Command(ctlBinary(t), args...)
	// A clean environment: FLATSTORE_* of the caller must not leak in.
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return ctlResult{code, out.String(), errb.String()}
}

func TestCtl(t *testing.T) {
	ps := tempPaths(t, "a.log", "b.log", "broken.log")
	b := newFileBackend(t, ps...)
	b.fail[ps[2]] = errors.New("close: input/output error")
	h, _ := serve(t, "", b)
	addr := h.Addr()

	// rotate: silent on success, every PATH in order.
	r := runCtl(t, nil, "-addr", addr, "rotate", ps[0], ps[1])
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("rotate: %+v", r)
	}
	if b.rotated(ps[0]) != 1 || b.rotated(ps[1]) != 1 {
		t.Fatalf("rotations %v", b.rotations)
	}

	// Stops at the first failure, with the server's message.
	r = runCtl(t, nil, "-addr", addr, "rotate", ps[0], "/x", ps[1])
	if r.code != 1 || r.stderr != "flatstore-ctl: /x: File not found\n" || r.stdout != "" {
		t.Fatalf("unknown path: %+v", r)
	}
	if b.rotated(ps[0]) != 2 || b.rotated(ps[1]) != 1 {
		t.Fatalf("after a failure the next paths must not be rotated: %v", b.rotations)
	}
	r = runCtl(t, nil, "-addr", addr, "rotate", "run/a.log")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "flatstore-ctl: run/a.log: File not found (the path must be absolute") {
		t.Fatalf("relative path: %+v", r)
	}
	r = runCtl(t, nil, "-addr", addr, "rotate", ps[2])
	if r.code != 1 || r.stderr != "flatstore-ctl: "+ps[2]+": close: input/output error (code 500)\n" {
		t.Fatalf("failing rotate: %+v", r)
	}
	// -missingok: "File not found" is fine, other failures are not.
	r = runCtl(t, nil, "-addr", addr, "-missingok", "rotate", "/x", ps[1])
	if r.code != 0 || r.stderr != "" || b.rotated(ps[1]) != 2 {
		t.Fatalf("-missingok: %+v", r)
	}
	if r = runCtl(t, nil, "-addr", addr, "-missingok", "rotate", ps[2]); r.code != 1 {
		t.Fatalf("-missingok hides a real failure: %+v", r)
	}

	// status prints the JSON; FLATSTORE_ADDR is the default address.
	r = runCtl(t, []string{"FLATSTORE_ADDR=" + addr}, "status")
	var st struct {
		Files []struct {
			Path string `json:"path"`
			Open bool   `json:"open"`
		} `json:"files"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || len(st.Files) != 3 {
		t.Fatalf("status: %+v", r)
	}

	// Usage errors exit 2; -h prints the usage and exits 0.
	for _, args := range [][]string{
		{}, {"-addr", addr}, {"frobnicate"}, {"-addr", addr, "rotate"}, {"-addr", addr, "status", "x"},
		{"-bogus", "status"}, {"-addr", "nohostport", "status"}, {"-timeout", "0s", "status"},
	} {
		if r = runCtl(t, nil, args...); r.code != 2 || !strings.HasPrefix(r.stderr, "flatstore-ctl: ") {
			t.Fatalf("%q: %+v, want exit 2", args, r)
		}
	}
	if r = runCtl(t, nil, "-h"); r.code != 0 || !strings.Contains(r.stdout, "usage: flatstore-ctl") {
		t.Fatalf("-h: %+v", r)
	}

	// Nothing listening: exit 1 and why.
	dead := freePort(t)
	if r = runCtl(t, nil, "-addr", dead, "rotate", ps[0]); r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Fatalf("no server: %+v", r)
	}
}

func TestCtlTokenAndUnix(t *testing.T) {
	p := tempPaths(t, "a.log")[0]
	b := newFileBackend(t, p)
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	h, _ := startAt(t, "unix:"+sock, "tok", testLimits(), b)

	r := runCtl(t, nil, "-addr", h.Addr(), "rotate", p)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "flatstore-ctl: "+p+": HTTP 401 Unauthorized") || b.rotated(p) != 0 {
		t.Fatalf("without token: %+v", r)
	}
	if r = runCtl(t, nil, "-addr", h.Addr(), "-token", "tok", "rotate", p); r.code != 0 || b.rotated(p) != 1 {
		t.Fatalf("-token: %+v", r)
	}
	env := []string{"FLATSTORE_ADDR=" + h.Addr(), "FLATSTORE_TOKEN=tok"}
	if r = runCtl(t, env, "rotate", p); r.code != 0 || b.rotated(p) != 2 {
		t.Fatalf("FLATSTORE_TOKEN: %+v", r)
	}
	if r = runCtl(t, env, "-token", "wrong", "rotate", p); r.code != 1 || b.rotated(p) != 2 {
		t.Fatalf("-token overrides FLATSTORE_TOKEN: %+v", r)
	}
}

// TestLogrotate renders conf/logrotate.conf for a temporary directory and
// runs the real logrotate against a server: the files are renamed, the
// plugin side is asked to reopen each, and nothing written is lost.
func TestLogrotate(t *testing.T) {
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/logrotate"); err != nil {
			t.Skip("logrotate is not installed (make deps installs it)")
		}
		lr = "/usr/sbin/logrotate"
	}
	ctl := ctlBinary(t)
	conf, err := os.ReadFile("../../conf/logrotate.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(filepath.Join(out, "by-event"), 0o755); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "logrotate.conf")
	if err := os.WriteFile(rendered, bytes.ReplaceAll(conf, []byte("/var/log/flatstore"), []byte(out)), 0o644); err != nil {
		t.Fatal(err)
	}

	main := filepath.Join(out, "events.log")
	open := filepath.Join(out, "by-event", "E_OPEN.log")
	idle := filepath.Join(out, "by-event", "E_IDLE.log")
	b := newFileBackend(t, main, open)
	// E_IDLE.log was written, then closed as idle: the plugin no longer
	// manages it, so its rotate answers "File not found".
	if err := os.WriteFile(idle, []byte("idle\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _ := startAt(t, "127.0.0.2:0", "tok", testLimits(), b)

	cmd := exec.Command(lr, "--force", "--state", filepath.Join(dir, "state"), rendered)
	cmd.Env = []string{
		"PATH=" + filepath.Dir(ctl) + ":" + os.Getenv("PATH"),
		"FLATSTORE_ADDR=" + h.Addr(), "FLATSTORE_TOKEN=tok",
	}
	if outb, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, outb)
	}
	for _, p := range []string{main, open} {
		if b.rotated(p) != 1 {
			t.Fatalf("%s rotated %d times, want 1", p, b.rotated(p))
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists before the next write: %v", p, err)
		}
		b.Write(t, p, "second\n")
		if got, _ := os.ReadFile(p + ".1"); string(got) != "first\n" {
			t.Fatalf("%s.1 holds %q", p, got)
		}
		if got, _ := os.ReadFile(p); string(got) != "second\n" {
			t.Fatalf("%s holds %q", p, got)
		}
	}
	if got, _ := os.ReadFile(idle + ".1"); string(got) != "idle\n" {
		t.Fatalf("%s.1 holds %q", idle, got)
	}

	// A configured path the endpoint does not know makes the run fail.
	b2 := newFileBackend(t)
	h2, _ := startAt(t, "127.0.0.3:0", "", testLimits(), b2)
	b.Write(t, main, "third\n")
	cmd = exec.Command(lr, "--force", "--state", filepath.Join(dir, "state"), rendered)
	cmd.Env = []string{"PATH=" + filepath.Dir(ctl) + ":" + os.Getenv("PATH"), "FLATSTORE_ADDR=" + h2.Addr()}
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "flatstore-ctl: "+main+": File not found") {
		t.Fatalf("logrotate with an endpoint that does not manage %s: %v\n%s", main, err, outb)
	}
}
