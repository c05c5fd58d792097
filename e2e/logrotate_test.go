package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/repo"
)

// TestLogrotateWhileWriting runs Debian's logrotate with conf/logrotate.conf
// (rendered for the test's directory, as its header says, compress and
// delaycompress kept) several times while the real plugin writes through
// the host: one instance into events.log, one into by-event/$EVENT.log,
// both behind one control socket that the conf's postrotate reaches with
// flatstore-ctl. Every record is found exactly once in each set of files,
// the compressed ones read back with gzip.
func TestLogrotateWhileWriting(t *testing.T) {
	const runs = 5
	const records = 300_000
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/logrotate"); err != nil {
			t.Skip("logrotate is not installed: run make deps (Debian's logrotate package) to run this test")
		}
		lr = "/usr/sbin/logrotate"
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(root, "conf", "logrotate.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(conf, []byte("compress")) {
		t.Fatalf("conf/logrotate.conf no longer compresses: adapt the test")
	}

	work := t.TempDir()
	binDir := filepath.Join(work, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "flatstore-ctl"), "./cmd/flatstore-ctl")
	build.Dir = root
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flatstore-ctl: %v\n%s", err, msg)
	}

	out := filepath.Join(work, "out")
	byEvent := filepath.Join(out, "by-event")
	if err := os.MkdirAll(byEvent, 0o755); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(work, "logrotate.conf")
	if err := os.WriteFile(rendered, bytes.ReplaceAll(conf, []byte("/var/log/flatstore"), []byte(out)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := "unix:" + filepath.Join(work, "ctl.sock")
	main := filepath.Join(out, "events.log")
	perEvent := make([]string, len(seqEvents))
	for i, e := range seqEvents {
		perEvent[i] = filepath.Join(byEvent, e+".log")
	}

	in := seqInput(t, records)
	// 600 chunks with a gate every 100: the host cannot run out of input
	// before the test's runs (the i-th gate opens after the i-th run), and
	// writes after each run whatever the machine's load.
	gate := filepath.Join(work, "gate")
	h := fbtest.StartHost(t, "-in", in, "-chunk", "500", "-workers", "2", "-chunk-delay-us", "10000", "-hold-ms", holdMs,
		"-gate", gate, "-gate-chunk", strconv.Itoa(records/500/(runs+1)), "-gate-every", strconv.Itoa(records/500/(runs+1)),
		"-p", "path="+main, "-p", "control_listen="+sock,
		"-next", "-p", "path="+filepath.Join(byEvent, "$EVENT.log"), "-p", "control_listen="+sock)
	done := hostDone(h)
	waitHealthy(t, h, done, sock)

	state := filepath.Join(work, "state")
	env := append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "FLATSTORE_ADDR="+sock)
	start := time.Now()
	ran := 0
	for ran < runs {
		// Wait until the plugin has created every file again, so each run
		// renames all four while they are being written.
		wrote := true
		for _, p := range append([]string{main}, perEvent...) {
			if !waitExists(p, done) {
				wrote = false
				break
			}
		}
		if !wrote {
			break
		}
		cmd := exec.Command(lr, "--force", "--verbose", "--state", state, rendered)
		cmd.Env = env
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("logrotate run %d: %v\n%s", ran+1, err, msg)
			break
		}
		ran++
		openGate(t, gate)
	}
	took := time.Since(start)
	counted := -1
	if ran == runs {
		counted = miRotations(t, ctlClient(t, sock, ""))
	}
	h.Release()
	sum, stderr, code := h.Wait()
	hostOK(t, sum, stderr, code, records)
	if ran < runs {
		t.Fatalf("logrotate ran %d times while the host wrote, want %d (stretch the host's run)", ran, runs)
	}

	c := newSeqCount(records)
	names := countFiles(t, c, out, "events.log", "")
	c.check(t)
	t.Logf("events.log: %d records in %d files %v", c.lines, c.files, names)
	checkRotatedSet(t, names, "events.log", runs)

	all := newSeqCount(records)
	for i, e := range seqEvents {
		one := newSeqCount(records)
		names := countFiles(t, one, byEvent, e+".log", e)
		for _, b := range one.bad {
			t.Error(b)
		}
		for seq, n := range one.seen {
			all.seen[seq] += n
		}
		all.lines += one.lines
		all.files += one.files
		if want := (records - i + len(seqEvents) - 1) / len(seqEvents); one.lines != want {
			t.Errorf("%s: %d lines, want %d", e, one.lines, want)
		}
		checkRotatedSet(t, names, e+".log", runs)
	}
	all.check(t)
	if counted != runs*(1+len(seqEvents)) {
		t.Errorf("the plugin counted %d MI rotations, want %d (%d runs × %d files)", counted, runs*(1+len(seqEvents)), runs, 1+len(seqEvents))
	}
	t.Logf("by-event: %d records in %d files; %d logrotate runs in %v, host wall %.2fs",
		all.lines, all.files, ran, took.Round(time.Millisecond), sum.WallS)
}

// checkRotatedSet checks the names logrotate leaves after runs forced runs
// with rotate 14, compress and delaycompress: NAME, NAME.1, then NAME.2.gz to
// NAME.<runs>.gz.
func checkRotatedSet(t *testing.T, names []string, base string, runs int) {
	t.Helper()
	want := []string{base, base + ".1"}
	for i := 2; i <= runs; i++ {
		want = append(want, base+"."+strconv.Itoa(i)+".gz")
	}
	if !sameSet(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
