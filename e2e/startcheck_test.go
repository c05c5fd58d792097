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
	"github.com/flatstore/flatstore/internal/repo"
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

// TestFluentBitDryRunChecksNamesOnly: what a real Fluent Bit 5.1.1 checks
// of flatstore's configuration before start. --dry-run judges the keys'
// names (TestFluentBitConfigMap) and nothing of their values, whatever
// type the config map gives them (the engine never parses a Go output's
// values: see flatstore.KeyType), so a bad integer, boolean and size pass
// it; flatstore-ctl check on the same file refuses them all at once, with
// an immutable file it cannot append to (when chattr works here), as the
// engine's start-up then does, in the plugin's one message. A sound file
// passes all three.
func TestFluentBitDryRunChecksNamesOnly(t *testing.T) {
	fluentBit(t) // or skip
	so := fbtest.BuildPlugin(t)
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctlBin := filepath.Join(dir, "flatstore-ctl")
	build := exec.Command("go", "build", "-o", ctlBin, "./cmd/flatstore-ctl")
	build.Dir = root
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flatstore-ctl: %v\n%s", err, msg)
	}
	path := filepath.Join(dir, "events.log")
	if err := os.WriteFile(path, []byte("E_OLD,kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems := []string{
		`max_open_sockets "abc": must be an integer from 1 to 65535`,
		`mkdir "maybe": must be a boolean`,
		`rotate_size "1x": must be a number of bytes`,
	}
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Logf("chattr +i fails here (%v: %s): the file is not made immutable", err, bytes.TrimSpace(out))
	} else {
		t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
		problems = append(problems, `path "`+path+`": the file exists and the user Fluent Bit runs as cannot append to it (operation not permitted): it is immutable`)
	}
	conf := func(extra string) string {
		cf := filepath.Join(dir, "fluent-bit.conf")
		body := `[SERVICE]
    Flush 1
    Grace 1
[INPUT]
    Name dummy
    Samples 1
[OUTPUT]
    Name flatstore
    Match *
    path ` + path + `
    control_listen off
` + extra
		if err := os.WriteFile(cf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return cf
	}
	cf := conf("    max_open_sockets abc\n    mkdir maybe\n    rotate_size 1x\n")

	text, code := runFluentBit(t, "-e", so, "-c", cf, "--dry-run")
	if code != 0 || !strings.Contains(text, "configuration test is successful") {
		t.Errorf("--dry-run: exit %d: the engine now judges values; say so in docs/configuration.md and register the keys it can check:\n%s", code, tail(text, 2000))
	}

	out, err := exec.Command(ctlBin, "check", "-config", cf).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("flatstore-ctl check: %v, want exit 1:\n%s", err, out)
	}
	for _, p := range problems {
		if strings.Count(string(out), p) != 1 {
			t.Errorf("flatstore-ctl check does not say once %q:\n%s", p, out)
		}
	}

	text, code = runFluentBit(t, "-e", so, "-c", cf)
	if code == 0 || strings.Count(text, "invalid configuration, output not started:") != 1 || strings.Contains(text, "writing events to") {
		t.Errorf("start-up: exit %d, want one refusal:\n%s", code, tail(text, 3000))
	}
	for _, p := range problems {
		if strings.Count(text, "\n    "+p) != 1 {
			t.Errorf("start-up does not say once %q:\n%s", p, tail(text, 3000))
		}
	}
	if got := fbtest.ReadText(t, path); got != "E_OLD,kept\n" {
		t.Errorf("the file holds %q", got)
	}

	exec.Command("chattr", "-i", path).Run()
	cf = conf("    max_open_sockets 10\n    mkdir on\n    rotate_size 1m\n")
	if text, code := runFluentBit(t, "-e", so, "-c", cf, "--dry-run"); code != 0 {
		t.Errorf("--dry-run of a sound file: exit %d:\n%s", code, tail(text, 2000))
	}
	if out, err := exec.Command(ctlBin, "check", "-config", cf).CombinedOutput(); err != nil || !strings.Contains(string(out), "1 flatstore output(s): OK") {
		t.Errorf("flatstore-ctl check of a sound file: %v:\n%s", err, out)
	}
}

// TestDryRunChecksNamesOnly is TestFluentBitDryRunChecksNamesOnly through
// the host, which checks a config map as Fluent Bit 5.1.1 does: -dry-run
// passes a bad integer, boolean and size (names only), start-up refuses
// all three in the plugin's one message.
func TestDryRunChecksNamesOnly(t *testing.T) {
	dir := t.TempDir()
	in := fbtest.WriteFile(t, "one.chunks", records.Frames(isoRec("E_A", "a", 1)))
	args := []string{"-in-chunks", in, "-p", "path=" + filepath.Join(dir, "e.log"), "-p", "control_listen=off",
		"-p", "max_open_sockets=abc", "-p", "mkdir=maybe", "-p", "rotate_size=1x"}
	_, stderr, code := fbtest.RunHost(t, append(args, "-dry-run")...)
	if code != 0 || stderr != "configuration test is successful\n" {
		t.Errorf("-dry-run: exit %d:\n%s", code, stderr)
	}
	_, stderr, code = fbtest.RunHost(t, args...)
	if code != 1 || strings.Count(stderr, "invalid configuration, output not started:") != 1 {
		t.Errorf("start-up: exit %d, want one refusal:\n%s", code, stderr)
	}
	for _, p := range []string{`max_open_sockets "abc": must be an integer from 1 to 65535`, `mkdir "maybe": must be a boolean`, `rotate_size "1x": must be a number of bytes`} {
		if strings.Count(stderr, "\n    "+p) != 1 {
			t.Errorf("start-up does not say once %q:\n%s", p, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "e.log")); !os.IsNotExist(err) {
		t.Errorf("a refused output created its file (%v)", err)
	}
}
