package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Init refuses a file it cannot append to, through the real plugin .so in
// the C host: one message naming the file and what to do, with every
// other problem, and the file left as it was — where it once started and
// failed every flush until the engine dropped the chunks.

// nobody is the unprivileged user the host runs as when the tests run as
// root (65534 on Debian and most distributions).
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// openDir makes a temp dir every user may enter and create files in (a
// test's own t.TempDir is 0700, closed to nobody).
func openDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "flatstore-startcheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o1777); err != nil {
		t.Fatal(err)
	}
	return d
}

// runHostAs runs the host with args as cred (nil: as this process), with
// copies of the host and the plugin in a directory cred can read; it
// returns the host's stderr and exit code.
func runHostAs(t *testing.T, cred *syscall.Credential, args ...string) (string, int) {
	t.Helper()
	so, host := fbtest.Build(t)
	bin := openDir(t)
	for _, f := range []string{so, host} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, filepath.Base(f)), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, filepath.Base(host)),
		append([]string{"-so", filepath.Join(bin, filepath.Base(so))}, args...)...)
	cmd.Dir = bin
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), code
}

// TestInitRefusesFileItCannotAppendTo: an existing file the user Fluent
// Bit runs as cannot append to — another user's 0444 file (the host runs
// as nobody when the tests run as root, who may write any file), then an
// immutable one (root cannot append to it either) — fails Init with one
// message that names the file, the errno and what to do, beside the other
// bad key; the file keeps its bytes and no start-up line is logged. Once
// the file is writable the same configuration starts and appends.
func TestInitRefusesFileItCannotAppendTo(t *testing.T) {
	dir := openDir(t)
	in := filepath.Join(dir, "one.chunks")
	if err := os.WriteFile(in, records.Frames(isoRec("E_A", "a", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	const before = "E_OLD,kept\n"
	path := filepath.Join(dir, "events.log")
	if err := os.WriteFile(path, []byte(before), 0o444); err != nil {
		t.Fatal(err)
	}
	args := []string{"-in-chunks", in, "-p", "path=" + path, "-p", "control_listen=off"}

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = nobody
	}
	refused := func(what, errno, advice string, cred *syscall.Credential) {
		t.Helper()
		stderr, code := runHostAs(t, cred, append(args, "-p", "file_permissions=64x")...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1:\n%s", what, code, stderr)
		}
		msg := `path "` + path + `": the file exists and the user Fluent Bit runs as cannot append to it (` + errno + `): ` + advice
		if n := strings.Count(stderr, msg); n != 1 {
			t.Errorf("%s: says %d times %q, want once:\n%s", what, n, msg, stderr)
		}
		// One message: the header once, the other problem under it.
		head := "invalid configuration, output not started:\n    "
		if strings.Count(stderr, head) != 1 || !strings.Contains(stderr, `    file_permissions "64x": must be an octal mode`) ||
			!strings.Contains(stderr, "\n    "+msg) {
			t.Errorf("%s: not one message with every problem:\n%s", what, stderr)
		}
		if strings.Contains(stderr, "writing events to") {
			t.Errorf("%s: the output started:\n%s", what, stderr)
		}
		if got := fbtest.ReadText(t, path); got != before {
			t.Errorf("%s: the file holds %q, want %q", what, got, before)
		}
	}
	refused("a 0444 file", "permission denied", "give that user write access to it (chown, chmod or setfacl), or choose another path", cred)

	if os.Geteuid() != 0 {
		t.Log("not root: the immutable file (chattr +i) is not tried")
	} else if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Logf("chattr +i fails here (%v: %s): the immutable file is not tried", err, bytes.TrimSpace(out))
	} else {
		t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
		refused("an immutable file, as root", "operation not permitted", "it is immutable (lsattr shows i): chattr -i it, or choose another path", nil)
		if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
			t.Fatalf("chattr -i: %v: %s", err, out)
		}
	}

	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	stderr, code := runHostAs(t, cred, args...)
	if code != 0 || strings.Count(stderr, "writing events to") != 1 {
		t.Fatalf("a writable file: exit %d:\n%s", code, stderr)
	}
	if got, want := fbtest.ReadText(t, path), before+"E_A,1\n"; got != want {
		t.Errorf("a writable file holds %q, want %q", got, want)
	}
}
