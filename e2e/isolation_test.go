package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Failure isolation through the real plugin .so in the C host: one bad
// record or one bad file costs exactly that — never a crash, never a
// stalled output, never a line written twice.

// isoRec is one record {"event": ev, kv...}.
func isoRec(ev string, kv ...any) []byte {
	return records.AppendRecord(nil, records.Record{Time: time.Unix(1700000000, 0), Body: append(records.KV{"event", ev}, kv...)})
}

// spreadChunks writes chunks frames of n records each, record i of chunk c
// being {"event": ev, "u": prefix+i, "c": c}, so that a template on $u
// spreads every chunk over n files; it returns the input file for -in-chunks.
func spreadChunks(t *testing.T, name, ev, prefix string, chunks, n int) string {
	var frames [][]byte
	for c := 0; c < chunks; c++ {
		var b []byte
		for i := 0; i < n; i++ {
			b = append(b, isoRec(ev, "u", prefix+strconv.Itoa(i), "c", c)...)
		}
		frames = append(frames, b)
	}
	return fbtest.WriteFile(t, name, records.Frames(frames...))
}

// keyBombBody is {"event":"E_BOMB","k":{{{…{"a":nil}…}:nil}:nil}}, depth
// levels of maps used as keys, and the line it must give: each level's key
// written once, as the text of the map, escaped once.
func keyBombBody(depth int) ([]byte, string) {
	inner := []byte{0x81, 0xa1, 'a', 0xc0}
	text := `{"a":null}`
	for i := 0; i < depth; i++ {
		inner = append(append([]byte{0x81}, inner...), 0xc0)
		if i < depth-1 {
			text = "{" + text + ":null}"
		}
	}
	body := []byte{0x82, 0xa5, 'e', 'v', 'e', 'n', 't', 0xa6, 'E', '_', 'B', 'O', 'M', 'B', 0xa1, 'k'}
	body = append(body, inner...)
	value := `{"` + strings.ReplaceAll(text, `"`, `\"`) + `":null}`
	// escape opensips: the JSON's commas (none here) would become spaces.
	return body, "E_BOMB," + value + "\n"
}

// TestIsolationKeyBomb: a 94-byte record whose keys are maps nested 30
// deep once took gigabytes and ended the process. It renders as one line of
// a few hundred bytes now, the records around it land, and a 100 MiB value
// is dropped before it is copied, without the process's memory following.
func TestIsolationKeyBomb(t *testing.T) {
	bomb, bombLine := keyBombBody(30)
	if len(bomb) > 100 {
		t.Fatalf("the bomb is %d bytes", len(bomb))
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "bomb.log")
	good := func(i int) []byte { return isoRec("E_OK", "i", i) }
	huge := isoRec("E_HUGE", "v", strings.Repeat("x", 100<<20))
	chunk := bytes.Join([][]byte{good(1), records.AppendRecord(nil, records.Record{Time: time.Unix(1700000000, 0), Body: records.Raw(bomb)}),
		good(2), huge, good(3)}, nil)
	in := fbtest.WriteFile(t, "bomb.chunks", records.Frames(chunk))
	sum, stderr, code := runHostFresh(t, "-in-chunks", in, "-p", "path="+out, "-p", "control_listen=off")
	if code != 0 || len(sum.Instances) != 1 || sum.Instances[0].OKChunks != 1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	want := "E_OK,1\n" + bombLine + "E_OK,2\nE_OK,3\n"
	if got := fbtest.ReadText(t, out); got != want {
		t.Errorf("file holds %.400q\nwant %.400q", got, want)
	}
	if !strings.Contains(stderr, "skipped 1 record(s): too_large") {
		t.Errorf("stderr does not count the 100 MiB record as too_large:\n%s", stderr)
	}
	// The host holds the input file and one copy of the chunk it hands
	// over (2 × 100 MiB); the plugin may add at most twice the record it
	// renders plus a fixed buffer, and refuses this one before copying it.
	const hostMiB, boundMiB = 200, 200 + 64
	t.Logf("host max_rss_kb=%d (host's own copies %d MiB, bound %d MiB)", sum.MaxRSSKB, hostMiB, boundMiB)
	if sum.MaxRSSKB <= 0 || sum.MaxRSSKB > boundMiB<<10 {
		t.Errorf("host peak RSS %d KiB, want under %d MiB", sum.MaxRSSKB, boundMiB)
	}
}

// escapeKeyRec is {"event": ev, "m": {{"k": n control bytes}: 1}}: control
// bytes inside a map used as a key. Each is \u0001 in the key's JSON text
// (6 bytes), its backslash escaped again when that text becomes a string
// (7), and each backslash doubled by escape backslash (9): the line is nine
// times the record. line is that line.
func escapeKeyRec(ev string, n int) (rec []byte, line string) {
	rec = isoRec(ev, "m", records.KV{records.KV{"k", strings.Repeat("\x01", n)}, 1})
	key := `{"k":"` + strings.Repeat(`\u0001`, n) + `"}`
	value := `{"` + strings.ReplaceAll(strings.ReplaceAll(key, `\`, `\\`), `"`, `\"`) + `":1}`
	return rec, ev + "," + strings.ReplaceAll(value, `\`, `\\`) + "\n"
}

// TestIsolationFlushBudget: four workers flush at once chunks whose records
// render nine times their size (control bytes inside a map used as a key,
// escape backslash). A record of 7 MiB made a 63 MB line at 310 MB of peak
// RSS for one flush and 1.02 GB for four; now each flush keeps at most
// twice its chunk plus 8 MiB of lines, and the record is skipped as
// too_large before its room is taken: the four flushes stay under 200 MiB,
// the host's own two copies of every chunk included, and the good records
// around it land exactly once. Then 200 records of 8 KiB (72 KiB lines)
// each chunk: they land until the budget is spent, the rest are skipped,
// and the good record after them lands.
func TestIsolationFlushBudget(t *testing.T) {
	const workers, small, many, big = 4, 8 << 10, 200, 7 << 20
	bomb, _ := escapeKeyRec("E_BIG", big)
	hRec, hLine := escapeKeyRec("E_H", small)
	run := func(name string, middle []byte) (got, stderr string, rssKB int64, input int) {
		var chunks [][]byte
		for i := 0; i < workers; i++ {
			c := isoRec("E_OK", "i", i, "n", 0)
			c = append(c, middle...)
			c = append(c, isoRec("E_OK", "i", i, "n", 1)...)
			chunks = append(chunks, c)
			input += len(c)
		}
		out := filepath.Join(t.TempDir(), name+".log")
		in := fbtest.WriteFile(t, name+".chunks", records.Frames(chunks...))
		sum, stderr, code := runHostFresh(t, "-in-chunks", in, "-workers", strconv.Itoa(workers),
			"-p", "path="+out, "-p", "escape=backslash", "-p", "control_listen=off")
		if code != 0 || len(sum.Instances) != 1 || sum.Instances[0].OKChunks != workers || sum.Instances[0].Retries != 0 {
			t.Fatalf("%s: exit code %d, summary %+v; stderr:\n%s", name, code, sum, stderr)
		}
		if !strings.Contains(stderr, "too_large") {
			t.Errorf("%s: stderr does not count records as too_large:\n%s", name, stderr)
		}
		return fbtest.ReadText(t, out), stderr, sum.MaxRSSKB, input
	}
	// Each chunk is one write: the file is the chunks' blocks in some order.
	blocks := func(name, got string, block func(i int) string) {
		t.Helper()
		left := make([]string, workers)
		for i := range left {
			left[i] = block(i)
		}
		rest := got
		for len(rest) > 0 {
			n := len(rest)
			for i, b := range left {
				if b != "" && strings.HasPrefix(rest, b) {
					rest, left[i] = rest[len(b):], ""
					break
				}
			}
			if len(rest) == n {
				t.Fatalf("%s: the file does not split into the chunks' blocks at byte %d: %.300q", name, len(got)-len(rest), rest)
			}
		}
		for i, b := range left {
			if b != "" {
				t.Errorf("%s: chunk %d: its lines are not in the file", name, i)
			}
		}
	}

	got, _, rss, _ := run("big", bomb)
	blocks("big", got, func(i int) string { return fmt.Sprintf("E_OK,%d,0\nE_OK,%d,1\n", i, i) })
	t.Logf("7 MiB records: host max_rss_kb=%d", rss)
	if rss <= 0 || rss > 200<<10 {
		t.Errorf("7 MiB records: host peak RSS %d KiB, want under 200 MiB", rss)
	}

	got, _, rss, input := run("small", bytes.Repeat(hRec, many))
	kept := 0
	if i := strings.Index(got, "E_OK,0,0\n"); i >= 0 {
		for rest := got[i+len("E_OK,0,0\n"):]; strings.HasPrefix(rest, hLine); rest = rest[len(hLine):] {
			kept++
		}
	}
	blocks("small", got, func(i int) string {
		return fmt.Sprintf("E_OK,%d,0\n", i) + strings.Repeat(hLine, kept) + fmt.Sprintf("E_OK,%d,1\n", i)
	})
	// Each record earns twice its 8 KiB and takes 72 KiB: 8 MiB of slack
	// lets about 130 to 160 of them land.
	if kept < 100 || kept >= many {
		t.Errorf("%d of %d E_H records kept in each chunk, want about 8 MiB / 64 KiB of them", kept, many)
	}
	// The host's two copies of the chunks; per flush its budget of lines,
	// which a buffer growing by append leaves behind in copies that the
	// collector reclaims at its own pace (GOGC 100: the heap reaches twice
	// what is live, and the copies come on top): four times it; and the
	// runtime.
	bound := (2*input+workers*4*(2*input/workers+8<<20))>>10 + 32<<10
	t.Logf("8 KiB records: %d of %d kept per chunk; host max_rss_kb=%d (bound %d)", kept, many, rss, bound)
	if rss <= 0 || rss > int64(bound) {
		t.Errorf("8 KiB records: host peak RSS %d KiB, want under %d KiB", rss, bound)
	}
}

// TestIsolationLargeValue: a 40 MiB value (under the 64 MiB line limit) is
// written whole, and rendering it costs at most twice its size plus a
// fixed buffer on top of the host's own copies.
func TestIsolationLargeValue(t *testing.T) {
	const size = 40 << 20
	out := filepath.Join(t.TempDir(), "large.log")
	v := strings.Repeat("y", size)
	in := fbtest.WriteFile(t, "large.chunks", records.Frames(isoRec("E_L", "v", v)))
	sum, stderr, code := runHostFresh(t, "-in-chunks", in, "-p", "path="+out, "-p", "control_listen=off")
	if code != 0 || sum.Instances[0].OKChunks != 1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	if got := fbtest.ReadText(t, out); got != "E_L,"+v+"\n" {
		t.Errorf("file holds %d bytes, want %d", len(got), len(v)+5)
	}
	const hostMiB = 2 * size >> 20
	bound := hostMiB + 2*size>>20 + 32
	t.Logf("host max_rss_kb=%d (host's own copies %d MiB, bound %d MiB)", sum.MaxRSSKB, hostMiB, bound)
	if sum.MaxRSSKB > int64(bound)<<10 {
		t.Errorf("host peak RSS %d KiB, want under %d MiB", sum.MaxRSSKB, bound)
	}
}

// TestIsolationBadPaths: records whose rendered path can never be written
// — a name too long, a directory, a dangling symlink, a component that is
// a file, a symlink loop, a FIFO — are dropped as bad_path, each logged with
// its quoted path and errno; the good records of the same chunks land, the
// flushes answer OK and nothing is retried.
func TestIsolationBadPaths(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "ok"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "ok", "isdir.log"), 0o755))
	must(os.Symlink("nothere", filepath.Join(dir, "ok", "dangling.log")))
	must(os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644))
	must(os.Symlink("loop", filepath.Join(dir, "loop")))
	must(syscall.Mkfifo(filepath.Join(dir, "ok", "fifo.log"), 0o644))
	long := strings.Repeat("n", 300)
	cases := []struct{ d, f, errno string }{
		{"ok", long, "ENAMETOOLONG"},
		{"ok", "isdir", "EISDIR"},
		{"ok", "dangling", "a symbolic link"},
		{"plain", "x", "ENOTDIR"},
		{"loop", "x", "ELOOP"},
		{"ok", "fifo", "ENXIO"},
	}
	var frames [][]byte
	var want strings.Builder
	for i, c := range cases {
		var b []byte
		for j := 0; j < 3; j++ {
			n := i*10 + j
			b = append(b, isoRec("E_G", "d", "ok", "f", "good", "n", n)...)
			b = append(b, isoRec("E_B", "d", c.d, "f", c.f, "n", n)...)
			fmt.Fprintf(&want, "E_G,ok,good,%d\n", n)
		}
		frames = append(frames, b)
	}
	in := fbtest.WriteFile(t, "bad.chunks", records.Frames(frames...))
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-workers", "2", "-retry-max", "3",
		"-p", "path="+filepath.Join(dir, "$d", "$f.log"), "-p", "mkdir=true", "-p", "control_listen=off")
	if code != 0 || len(sum.Instances) != 1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	if s := sum.Instances[0]; s.OKChunks != int64(len(cases)) || s.Retries != 0 {
		t.Errorf("summary %+v: want every chunk OK at once", s)
	}
	got := fbtest.ReadLines(t, filepath.Join(dir, "ok", "good.log"))
	if want := strings.Split(strings.TrimSuffix(want.String(), "\n"), "\n"); !sameSet(got, want) {
		t.Errorf("good.log holds %q, want %q", got, want)
	}
	// One line per reason every 5 s: each kind of bad path in its own run.
	for _, c := range cases {
		t.Run(c.errno, func(t *testing.T) {
			in := fbtest.WriteFile(t, "one.chunks", records.Frames(isoRec("E_B", "d", c.d, "f", c.f, "n", 0)))
			sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-retry-max", "3",
				"-p", "path="+filepath.Join(dir, "$d", "$f.log"), "-p", "mkdir=true", "-p", "control_listen=off")
			if code != 0 || sum.Instances[0].Retries != 0 {
				t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
			}
			p := strconv.Quote(filepath.Join(dir, c.d, c.f+".log"))
			if !strings.Contains(stderr, "dropped 1 record(s) (bad_path): ") || !strings.Contains(stderr, p) || !strings.Contains(stderr, c.errno) {
				t.Errorf("stderr does not report %s with %s:\n%s", p, c.errno, stderr)
			}
		})
	}
	if fi, err := os.Lstat(filepath.Join(dir, "ok", "fifo.log")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO changed: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "ok", "nothere")); !os.IsNotExist(err) {
		t.Errorf("the dangling link's target was created: %v", err)
	}
}

// TestIsolationSymlinkSteering: links planted in the log directory, with
// record values chosen to follow them, can neither make the plugin append
// to a file outside the template's directory nor create one elsewhere.
// A configured path keeps following the links an administrator makes.
func TestIsolationSymlinkSteering(t *testing.T) {
	root := t.TempDir()
	logs, outside := filepath.Join(root, "logs"), filepath.Join(root, "outside")
	for _, d := range []string{logs, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(secret)
	if err := os.Symlink(secret, filepath.Join(logs, "evil.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(logs, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/secret", filepath.Join(logs, "rel.log")); err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	for _, v := range [][2]string{{".", "evil"}, {".", "rel"}, {"sub", "planted"}, {".", "fine"}} {
		chunk = append(chunk, isoRec("E_S", "d", v[0], "u", v[1])...)
	}
	in := fbtest.WriteFile(t, "steer.chunks", records.Frames(chunk))
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-retry-max", "3",
		"-p", "path="+filepath.Join(logs, "$d", "$u.log"), "-p", "mkdir=true", "-p", "control_listen=off")
	if code != 0 || sum.Instances[0].Retries != 0 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	after, _ := os.Stat(secret)
	if got := fbtest.ReadText(t, secret); got != "keep\n" || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the file outside was written: %q", got)
	}
	if _, err := os.Stat(filepath.Join(outside, "planted.log")); !os.IsNotExist(err) {
		t.Errorf("a file was created outside the template's directory: %v", err)
	}
	// "." renders as "_": the record's own directory, inside.
	if got := fbtest.ReadText(t, filepath.Join(logs, "_", "fine.log")); got != "E_S,.,fine\n" {
		t.Errorf("the good record: %q", got)
	}
	if n := strings.Count(stderr, "(bad_path)"); n < 1 {
		t.Errorf("the refused records are not reported:\n%s", stderr)
	}

	// A configured path through an administrator's link is followed.
	link := filepath.Join(root, "varlog")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	in = fbtest.WriteFile(t, "static.chunks", records.Frames(isoRec("E_A", "u", "x")))
	if sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+filepath.Join(link, "admin.log"), "-p", "control_listen=off"); code != 0 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	if got := fbtest.ReadText(t, filepath.Join(outside, "admin.log")); got != "E_A,x\n" {
		t.Errorf("admin.log = %q", got)
	}
}

// TestIsolationForgedLogLine: a record value with a newline, rendered into
// a path, can neither split a log line nor reach the file name.
func TestIsolationForgedLogLine(t *testing.T) {
	dir := t.TempDir()
	forged := "x\n[2026/01/01 00:00:00] [error] [output:flatstore:flatstore.0] forged"
	in := fbtest.WriteFile(t, "forge.chunks", records.Frames(isoRec("E_F", "u", forged+strings.Repeat("n", 300))))
	_, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+filepath.Join(dir, "$u.log"), "-p", "control_listen=off")
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "[2026/01/01 00:00:00]") || strings.Contains(l, "] forged") && !strings.Contains(l, "bad_path") {
			t.Errorf("a record value wrote a log line of its own: %q", l)
		}
	}
	if !strings.Contains(stderr, `x_[2026_01_01 00:00:00] [error] [output:flatstore:flatstore.0] forged`) {
		t.Errorf("the path is not logged with its control characters replaced:\n%s", stderr)
	}
}

// TestIsolationExactlyOnce: a chunk over three files whose second sits on
// a full tmpfs is answered RETRY; once space comes back every line is in
// each file exactly once, however many times the chunk was resent.
func TestIsolationExactlyOnce(t *testing.T) {
	root := t.TempDir()
	full := filepath.Join(root, "full")
	if err := os.Mkdir(full, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := fbtest.MountTmpfsAt(t, full, "2m")
	pad := strings.Repeat("x", 100)
	var chunk []byte
	want := map[string]*strings.Builder{"a": {}, "full": {}, "c": {}}
	for i := 0; i < 3000; i++ {
		d := []string{"a", "full", "c"}[i%3]
		chunk = append(chunk, isoRec("E_X", "d", d, "i", i, "pad", pad)...)
		fmt.Fprintf(want[d], "E_X,%s,%d,%s\n", d, i, pad)
	}
	filler := fbtest.FillDisk(t, mnt, 32<<10)
	in := fbtest.WriteFile(t, "once.chunks", records.Frames(chunk))
	h := fbtest.StartHost(t, "-in-chunks", in, "-retry-max", "100000", "-retry-wait-ms", "20",
		"-p", "path="+filepath.Join(root, "$d", "x.log"), "-p", "mkdir=true", "-p", "control_listen=off")
	relWaitStderr(t, h, "(ENOSPC)", "chunk will be retried")
	time.Sleep(100 * time.Millisecond) // a few more resends while the disk is full
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	sum, stderr, code := h.Wait()
	if code != 0 || sum.Instances[0].OKChunks != 1 || sum.Instances[0].Retries < 1 {
		t.Fatalf("exit code %d, summary %+v: want one chunk OK after retries; stderr:\n%s", code, sum, stderr)
	}
	for d, w := range want {
		if got := fbtest.ReadText(t, filepath.Join(root, d, "x.log")); got != w.String() {
			lines, _ := fbtest.SplitLines([]byte(got))
			t.Errorf("%s/x.log holds %d lines, want the %d exactly once", d, len(lines), strings.Count(w.String(), "\n"))
		}
	}
}

// TestIsolationMaxOpenSockets: one template output that needs 500 files
// per chunk under max_open_sockets 50, beside a static output, in one
// process: every record of both lands, each chunk in one flush (no RETRY),
// and never more than 50 of the template's files are open at once
// (counted in /proc/PID/fd while the host runs, whenever the descriptor
// table holds still for a reading; flatstore/files_test.go counts every
// open and close exactly, at the system calls, in the same code).
func TestIsolationMaxOpenSockets(t *testing.T) {
	const chunks, users = 20, 500
	dir := t.TempDir()
	tdir := filepath.Join(dir, "t")
	if err := os.Mkdir(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	in := spreadChunks(t, "many.chunks", "E_M", "u", chunks, users)
	static := filepath.Join(dir, "all.log")
	// The host waits at the middle chunk until the test has had a reading
	// (the other flush thread runs on, then the table holds still): one
	// reading at least, with as many files open as the first half left.
	gate := filepath.Join(t.TempDir(), "gate")
	h := fbtest.StartHost(t, "-in-chunks", in, "-workers", "2", "-chunk-delay-us", "20000",
		"-gate", gate, "-gate-chunk", strconv.Itoa(chunks/2),
		"-p", "path="+filepath.Join(tdir, "$u.log"), "-p", "max_open_sockets=50", "-p", "control_listen=off",
		"-next", "-p", "path="+static, "-p", "control_listen=off")
	done := hostDone(h)
	peak, samples, gated := 0, 0, false
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		case <-time.After(2 * time.Millisecond):
			if n := fbtest.FDsUnder(h.Pid(), tdir); n >= 0 {
				peak, samples = max(peak, n), samples+1
				if !gated && strings.Contains(h.Stderr(), "flbhost: at the gate") {
					gated = true
					openGate(t, gate)
				}
			}
		}
	}
	sum, stderr, code := h.Wait()
	if code != 0 || len(sum.Instances) != 2 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	for _, s := range sum.Instances {
		if s.OKChunks != chunks || s.Retries != 0 {
			t.Errorf("%s: %+v: want %d chunks OK, none retried", s.Name, s, chunks)
		}
	}
	t.Logf("at most %d template files open in %d samples", peak, samples)
	if peak > 50 || samples < 1 {
		t.Errorf("%d template files open at once (in %d samples), want at most 50", peak, samples)
	}
	for u := 0; u < users; u++ {
		if n := len(fbtest.ReadLines(t, filepath.Join(tdir, "u"+strconv.Itoa(u)+".log"))); n != chunks {
			t.Fatalf("u%d.log holds %d lines, want %d", u, n, chunks)
		}
	}
	if n := len(fbtest.ReadLines(t, static)); n != chunks*users {
		t.Errorf("the static output wrote %d lines, want %d", n, chunks*users)
	}
}

// TestIsolationFIFO: a FIFO where a file should be never blocks. At a
// configured path (made after start-up) the flush answers RETRY naming it,
// and the host still exits at once when told; at a rendered path the
// records are dropped as bad_path, and 300 rotate requests for it answer
// at once without growing the process's threads.
func TestIsolationFIFO(t *testing.T) {
	dir := t.TempDir()
	static := filepath.Join(dir, "static.log")
	var frames [][]byte
	for i := 0; i < 50; i++ {
		frames = append(frames, isoRec("E_P", "u", "fifo", "i", i))
	}
	in := fbtest.WriteFile(t, "fifo.chunks", records.Frames(frames...))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The configured path becomes a FIFO, with a reader, after Init;
	// reopen_check finds it.
	h := fbtest.StartHost(t, "-in-chunks", in, "-chunk-delay-us", "20000", "-retry-max", "1000", "-exit-after-ms", "1500",
		"-p", "path="+static, "-p", "reopen_check=100ms", "-p", "control_listen=off")
	waitFor(t, func() bool { _, err := os.Stat(static); return err == nil })
	// Made aside and renamed over the file: no moment without a file at
	// the path, where reopen_check could create a regular one again.
	fifo := static + ".fifo"
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := os.Rename(fifo, static); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, stderr, _ := h.Wait()
	if !sum.Found {
		t.Fatalf("no summary: the host did not end by itself; stderr:\n%s", stderr)
	}
	if !strings.Contains(stderr, "a FIFO") || !strings.Contains(stderr, "chunk will be retried") {
		t.Errorf("stderr does not report the FIFO at the configured path:\n%s", stderr)
	}
	t.Logf("host ended %v after the FIFO appeared", time.Since(start).Round(time.Millisecond))

	// A FIFO at a rendered path, with the endpoint up.
	addr := fbtest.FreeTCPAddr(t)
	h = fbtest.StartHost(t, "-in-chunks", in, "-hold-ms", holdMs,
		"-p", "path="+filepath.Join(dir, "$u.log"), "-p", "control_listen="+addr)
	waitFor(t, func() bool { return strings.Contains(h.Stderr(), "(bad_path)") })
	threads := func() int {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.Pid()))
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		return -1
	}
	before := threads()
	c := ctlClient(t, addr, "")
	for i := 0; i < 300; i++ {
		code, body, err := plainRotate(c, filepath.Join(dir, "fifo.log"))
		if err != nil || code != 404 {
			t.Fatalf("rotate %d of the FIFO's path: %d %q %v", i, code, body, err)
		}
	}
	if after := threads(); after > before+4 {
		t.Errorf("threads grew from %d to %d over 300 rotates", before, after)
	}
	h.Release()
	sum, stderr, code := h.Wait()
	if code != 0 || sum.Instances[0].Retries != 0 || sum.Instances[0].OKChunks != 50 {
		t.Errorf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
