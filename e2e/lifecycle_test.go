package e2e

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/control"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// The control endpoint's lifecycle and its limits, through the real .so in
// the C host (docs/control-endpoint.md, docs/delivery.md): a hot reload binds the same address again,
// instances that name one address share one server, the port is free once
// the host is gone, a taken default address only costs a warning while a
// taken explicit one fails Init, a non-loopback address needs a token, and
// a rotate touches nothing but the files the plugin manages.

const lifeRecords = 1000

// waitLines waits until p holds n complete lines; it fails the test when the
// host exits first or 20 s pass.
func waitLines(t *testing.T, h *fbtest.Host, done <-chan struct{}, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(p)
		if bytes.Count(data, []byte("\n")) >= n {
			return
		}
		select {
		case <-done:
			_, stderr, code := h.Wait()
			t.Fatalf("host exited (code %d) before %s held %d lines; stderr:\n%s", code, p, n, tail(stderr, 3000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not reach %d lines; stderr:\n%s", p, n, tail(h.Stderr(), 3000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertFree fails the test unless addr can be bound now.
func assertFree(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s is not free after the host exited: %v", addr, err)
	}
	l.Close()
}

// TestLifecycleReloadRebinds: Init → Exit → Init twice (-reload 2) with a
// fixed control_listen: every Init binds the address again, and the
// endpoint of the last generation answers and rotates during -hold-ms.
// After the host exits, the port is free.
func TestLifecycleReloadRebinds(t *testing.T) {
	addr := fbtest.FreeTCPAddr(t)
	out := filepath.Join(t.TempDir(), "reload.log")
	in := seqInput(t, lifeRecords)
	h := fbtest.StartHost(t, "-in", in, "-reload", "2", "-hold-ms", holdMs,
		"-p", "path="+out, "-p", "control_listen="+addr)
	done := hostDone(h)
	// The third generation has flushed everything: it is holding now.
	waitLines(t, h, done, out, 3*lifeRecords)
	if !healthy(addr) {
		t.Fatalf("%s does not answer after the reloads; stderr:\n%s", addr, h.Stderr())
	}
	if err := ctlClient(t, addr, "").Rotate(out); err != nil {
		t.Fatalf("rotate after the reloads: %v; stderr:\n%s", err, h.Stderr())
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, 3*lifeRecords)
	if strings.Contains(stderr, "[error]") || strings.Contains(stderr, "address already in use") {
		t.Errorf("stderr reports an error:\n%s", stderr)
	}
	if n := strings.Count(stderr, "writing events to "+strconv.Quote(out)); n != 3 {
		t.Errorf("%d Inits logged, want 3:\n%s", n, stderr)
	}
	// Every generation sent the whole input again: each seq three times.
	c := newSeqCount(lifeRecords)
	c.add(out, readMaybeGzip(t, out), "")
	for _, b := range c.bad {
		t.Error(b)
	}
	for seq, n := range c.seen {
		if n != 3 {
			t.Errorf("seq %d written %d times, want 3 (one per generation)", seq, n)
			break
		}
	}
	if c.lines != 3*lifeRecords {
		t.Errorf("%d lines, want %d", c.lines, 3*lifeRecords)
	}
	assertFree(t, addr)
}

// TestLifecycleSharedEndpoint: two instances with the same control_listen
// share one server: both paths are rotated through it, by MI and by plain
// HTTP, and /status lists both. The port is free after the host exits.
func TestLifecycleSharedEndpoint(t *testing.T) {
	addr := fbtest.FreeTCPAddr(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	in := seqInput(t, lifeRecords)
	h := fbtest.StartHost(t, "-in", in, "-hold-ms", holdMs,
		"-p", "path="+a, "-p", "control_listen="+addr,
		"-next", "-p", "path="+b, "-p", "control_listen="+addr)
	done := hostDone(h)
	waitLines(t, h, done, a, lifeRecords)
	waitLines(t, h, done, b, lifeRecords)

	ctl := ctlClient(t, addr, "")
	files, err := ctl.Status()
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]bool{}
	for _, f := range files {
		open[f.Path] = f.Open
	}
	if len(files) != 2 || !open[a] || !open[b] {
		t.Fatalf("/status lists %+v, want %s and %s, both open", files, a, b)
	}
	if err := ctl.Rotate(a); err != nil {
		t.Fatalf("MI rotate %s: %v", a, err)
	}
	if code, body, err := plainRotate(ctl, b); err != nil || code != http.StatusOK {
		t.Fatalf("POST /rotate %s: %d %q %v", b, code, body, err)
	}
	if err := ctl.Rotate(filepath.Join(dir, "c.log")); !errors.Is(err, flatstore.ErrNotManaged) {
		t.Fatalf("MI rotate of a path neither instance manages: %v", err)
	}
	files, err = ctl.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Open {
			t.Errorf("%s still open after its rotate: %+v", f.Path, files)
		}
	}
	if n := miRotations(t, ctl); n != 2 {
		t.Errorf("%d mi rotations counted, want 2", n)
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, lifeRecords)
	for _, p := range []string{a, b} {
		c := newSeqCount(lifeRecords)
		c.add(p, readMaybeGzip(t, p), "")
		c.check(t)
	}
	assertFree(t, addr)
}

// TestLifecycleDefaultAddressTaken: with 127.0.0.1:2021 taken, an instance
// without control_listen starts, warns naming the address and the key, and
// writes; with an explicit address that is taken, Init fails and names it.
func TestLifecycleDefaultAddressTaken(t *testing.T) {
	const def = "127.0.0.1:2021"
	in := seqInput(t, lifeRecords)
	dir := t.TempDir()

	t.Run("default", func(t *testing.T) {
		// The default is a fixed port: take it in a network namespace of
		// the test's own, where nothing else can be using it or be hurt.
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace of its own (unshare --net)")
		}
		out := filepath.Join(dir, "default.log")
		so, host := fbtest.Build(t)
		cmd := exec.Command("unshare", "--net", os.Args[0], holdFlag, def, host, "-so", so, "-in", in, "-p", "path="+out)
		var stdout, stderrB bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderrB
		err := cmd.Run()
		stderr := stderrB.String()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Skipf("unshare --net: %v", err)
		}
		if code == 70 || strings.Contains(stderr, "unshare: ") {
			t.Skipf("no network namespace here (exit %d): %s", code, stderr)
		}
		sum, perr := fbtest.ParseSummary(stdout.Bytes())
		if perr != nil {
			t.Fatal(perr)
		}
		hostOK(t, sum, stderr, code, lifeRecords)
		var warn string
		for _, line := range strings.Split(stderr, "\n") {
			if strings.Contains(line, "[ warn]") && strings.Contains(line, def) {
				warn = line
			}
		}
		if warn == "" || !strings.Contains(warn, "control_listen") {
			t.Errorf("no warning naming %s and control_listen:\n%s", def, stderr)
		}
		t.Logf("warning: %s", warn)
		c := newSeqCount(lifeRecords)
		c.add(out, readMaybeGzip(t, out), "")
		c.check(t)
	})

	t.Run("explicit", func(t *testing.T) {
		held, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		addr := held.Addr().String()
		out := filepath.Join(dir, "explicit.log")
		_, stderr, code := fbtest.RunHost(t, "-in", in, "-p", "path="+out, "-p", "control_listen="+addr)
		if code != 1 {
			t.Fatalf("exit code %d, want 1 (Init failed); stderr:\n%s", code, stderr)
		}
		if !strings.Contains(stderr, "[error]") || !strings.Contains(stderr, `control_listen "`+addr+`"`) ||
			!strings.Contains(stderr, "address already in use") {
			t.Errorf("stderr does not say that control_listen %s is taken:\n%s", addr, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a failed Init wrote %s (%v)", out, err)
		}
	})
}

// TestLifecycleNonLoopbackToken: 0.0.0.0:PORT without control_token fails
// Init with a clear message; with a token it starts, and a request needs
// the token.
func TestLifecycleNonLoopbackToken(t *testing.T) {
	in := seqInput(t, lifeRecords)
	dir := t.TempDir()
	port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	wild := "0.0.0.0:" + port

	out := filepath.Join(dir, "open.log")
	_, stderr, code := fbtest.RunHost(t, "-in", in, "-p", "path="+out, "-p", "control_listen="+wild)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (Init failed); stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, wild) || !strings.Contains(stderr, "a non-loopback address needs control_token") {
		t.Errorf("stderr does not say why %s was refused:\n%s", wild, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed Init wrote %s (%v)", out, err)
	}

	h := fbtest.StartHost(t, "-in", in, "-hold-ms", holdMs, "-p", "path="+out,
		"-p", "control_listen="+wild, "-p", "control_token=s3cret-s3cret-s3cret")
	done := hostDone(h)
	local := "127.0.0.1:" + port
	waitLines(t, h, done, out, lifeRecords)
	code, _, err := plainRotate(ctlClient(t, local, ""), out)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("rotate without the token: HTTP %d, want 401", code)
	}
	authed := ctlClient(t, local, "s3cret-s3cret-s3cret")
	code, body, err := plainRotate(authed, out)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK {
		t.Errorf("rotate with the token: HTTP %d %q, want 200", code, body)
	}
	if n := miRotations(t, authed); n != 1 {
		t.Errorf("%d mi rotations counted, want 1 (the one with the token)", n)
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, lifeRecords)
	assertFree(t, wild)
}

// TestControlTouchesOnlyManagedFiles: rotate requests for /etc/passwd, for
// a decoy file outside the managed directory, and for spellings that lead
// to the managed file by another road all answer "File not found", and
// leave every file as it was: the decoy and /etc/passwd keep size, mtime
// and inode, the managed file stays open.
func TestControlTouchesOnlyManagedFiles(t *testing.T) {
	dir := t.TempDir()
	managed := filepath.Join(dir, "managed")
	if err := os.Mkdir(managed, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(managed, "x.log")
	decoy := filepath.Join(dir, "decoy.log")
	if err := os.WriteFile(decoy, []byte("decoy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(decoy, old, old); err != nil {
		t.Fatal(err)
	}
	watched := []string{decoy, "/etc/passwd"}
	before := map[string]os.FileInfo{}
	for _, p := range watched {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = fi
	}

	addr := fbtest.FreeTCPAddr(t)
	in := seqInput(t, lifeRecords)
	h := fbtest.StartHost(t, "-in", in, "-hold-ms", holdMs, "-p", "path="+out, "-p", "control_listen="+addr)
	done := hostDone(h)
	waitLines(t, h, done, out, lifeRecords)
	outBefore, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}

	bad := []string{
		"/etc/passwd",
		decoy,
		filepath.Join(managed, "..", "decoy.log"),
		managed + "/../decoy.log",
		managed + "//x.log",
		managed + "/./x.log",
		out + "/",
		"x.log",
		"managed/x.log",
		out + "\x00",
		strings.ToUpper(out),
	}
	ctl := ctlClient(t, addr, "")
	for _, p := range bad {
		for _, params := range []any{map[string]string{"path_to_file": p}, []string{p}} {
			_, err := ctl.Call("evi_flat_rotate", params)
			var re *control.RPCError
			if strings.Contains(p, "\x00") {
				// A NUL in the body is OpenSIPS's parse error.
				if !errors.As(err, &re) || re.Code != -32700 {
					t.Errorf("MI rotate %q (%T): %v; want -32700 Parse error", p, params, err)
				}
				continue
			}
			if !errors.As(err, &re) || re.Code != 400 || re.Message != "File not found" {
				t.Errorf("MI rotate %q (%T): %v; want error 400 File not found", p, params, err)
			}
		}
		code, body, err := plainRotate(ctl, p)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusNotFound || !strings.Contains(body, "File not found") {
			t.Errorf("POST /rotate?path=%q: %d %q, want 404 File not found", p, code, body)
		}
	}
	files, err := ctl.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != out || !files[0].Open {
		t.Errorf("/status after the refused rotates: %+v, want %s still open", files, out)
	}
	if n := miRotations(t, ctl); n != 0 {
		t.Errorf("a refused rotate rotated something: %d mi rotations", n)
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, lifeRecords)

	for _, p := range watched {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b := before[p]
		if fi.Size() != b.Size() || !fi.ModTime().Equal(b.ModTime()) || !os.SameFile(fi, b) || fi.Mode() != b.Mode() {
			t.Errorf("%s changed: size %d→%d, mtime %v→%v, mode %v→%v, same inode %v",
				p, b.Size(), fi.Size(), b.ModTime(), fi.ModTime(), b.Mode(), fi.Mode(), os.SameFile(fi, b))
		}
	}
	if got, _ := os.ReadFile(decoy); string(got) != "decoy\n" {
		t.Errorf("decoy holds %q", got)
	}
	fi, err := os.Stat(out)
	if err != nil || !os.SameFile(fi, outBefore) {
		t.Errorf("the managed file was replaced (%v)", err)
	}
	c := newSeqCount(lifeRecords)
	c.add(out, readMaybeGzip(t, out), "")
	c.check(t)
	ents, _ := os.ReadDir(managed)
	var names []string
	for _, e := range ents {
		if e.Name() != ".flatstore" { // the output's state: its journal
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 {
		t.Errorf("the managed directory holds %q, want only x.log (and the state directory)", names)
	}
}
