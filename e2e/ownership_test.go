package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// What one output owns — its descriptors, the files its template may
// create, its configured file — no record routed to another output can
// take, through the real plugin .so in the C host.

// TestIsolationSocketsPerOutput: three template outputs with
// max_open_sockets 50, 100 and 500, each spreading every chunk over 600
// files, beside a static output, two workers: every record of each lands,
// each chunk in one flush (no RETRY). The limits were once compared with
// the process-wide count of open files, so the static output beside a
// template with a higher limit wrote nothing.
func TestIsolationSocketsPerOutput(t *testing.T) {
	const chunks, users = 8, 600
	limits := []int{50, 100, 500}
	dir := t.TempDir()
	in := spreadChunks(t, "sockets.chunks", "E_S", "u", chunks, users)
	args := []string{"-in-chunks", in, "-workers", "2"}
	for i, l := range limits {
		d := filepath.Join(dir, "t"+strconv.Itoa(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			args = append(args, "-next")
		}
		args = append(args, "-p", "path="+filepath.Join(d, "$u.log"), "-p", "max_open_sockets="+strconv.Itoa(l),
			"-p", "control_listen=off")
	}
	static := filepath.Join(dir, "all.log")
	args = append(args, "-next", "-p", "path="+static, "-p", "max_open_sockets=1", "-p", "control_listen=off")
	sum, stderr, code := fbtest.RunHost(t, args...)
	if code != 0 || len(sum.Instances) != len(limits)+1 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	for _, s := range sum.Instances {
		if s.OKChunks != chunks || s.Retries != 0 || s.DroppedRecords != 0 {
			t.Errorf("%s: %+v: want %d chunks OK at once, none retried", s.Name, s, chunks)
		}
	}
	for i := range limits {
		for u := 0; u < users; u++ {
			name := filepath.Join(dir, "t"+strconv.Itoa(i), "u"+strconv.Itoa(u)+".log")
			lines := fbtest.ReadLines(t, name)
			if len(lines) != chunks {
				t.Fatalf("%s holds %d lines, want %d", name, len(lines), chunks)
			}
			// Two workers: chunks land in any order, each line once.
			seen := map[string]bool{}
			for _, l := range lines {
				seen[l] = true
			}
			for c := 0; c < chunks; c++ {
				if want := "E_S,u" + strconv.Itoa(u) + "," + strconv.Itoa(c); !seen[want] {
					t.Fatalf("%s lacks %q: %q", name, want, lines)
				}
			}
		}
	}
	if n := len(fbtest.ReadLines(t, static)); n != chunks*users {
		t.Errorf("the static output wrote %d lines, want %d", n, chunks*users)
	}
}

// TestIsolationMaxDynamicFiles: a template output with max_dynamic_files
// 100 receives records with 1 000 distinct values, chunk after chunk: it
// creates exactly 100 files, each of which receives every one of its
// records; the other records are dropped and counted as such, with a
// handful of log lines, not one per record or per path; a static output
// beside it loses nothing.
func TestIsolationMaxDynamicFiles(t *testing.T) {
	const chunks, values, limit = 5, 1000, 100
	dir := t.TempDir()
	tdir := filepath.Join(dir, "t")
	if err := os.Mkdir(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	in := spreadChunks(t, "dynamic.chunks", "E_D", "v", chunks, values)
	static := filepath.Join(dir, "all.log")
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in,
		"-p", "path="+filepath.Join(tdir, "$u.log"), "-p", "max_dynamic_files="+strconv.Itoa(limit), "-p", "control_listen=off",
		"-next", "-p", "path="+static, "-p", "control_listen=off")
	if code != 0 || len(sum.Instances) != 2 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	files := dirFilesIn(t, tdir)
	if len(files) != limit {
		t.Fatalf("the template created %d files, want exactly %d", len(files), limit)
	}
	for v := 0; v < limit; v++ {
		name := filepath.Join(tdir, "v"+strconv.Itoa(v)+".log")
		if n := len(fbtest.ReadLines(t, name)); n != chunks {
			t.Errorf("%s holds %d lines, want %d (every chunk's record)", name, n, chunks)
		}
	}
	tmpl := sum.Instances[0]
	if tmpl.OKChunks != chunks || tmpl.Retries != 0 || tmpl.DroppedRecords != 0 {
		t.Errorf("template output %+v: want every chunk OK, none retried", tmpl)
	}
	if n := strings.Count(stderr, "(max_dynamic_files)"); n < 1 || n > 3 {
		t.Errorf("%d max_dynamic_files warnings for %d dropped records, want 1 to 3 (rate-limited):\n%s", n, chunks*(values-limit), stderr)
	}
	if !strings.Contains(stderr, "dropped 900 record(s) (max_dynamic_files)") {
		t.Errorf("the first warning does not count the first chunk's 900 records:\n%s", stderr)
	}
	if n := len(fbtest.ReadLines(t, static)); n != chunks*values {
		t.Errorf("the static output wrote %d lines, want %d", n, chunks*values)
	}
}

// TestIsolationOtherOutputsFile: a template output and a static output
// (audit.log) share a directory. Records routed to the template name
// audit.log, names of its rotations, a symbolic link and a hard link
// someone planted to it: none of their lines lands in audit.log, which
// holds exactly what it held and what the static output wrote; the
// template's one honest record lands in its own file.
func TestIsolationOtherOutputsFile(t *testing.T) {
	const chunks = 3
	dir := t.TempDir()
	audit := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(audit, []byte("PRE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("audit.log", filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(audit, filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	forged := []string{"audit.log", "audit.log.1", "audit.log.20261206-000000", "audit.log.gz", "evil", "hard"}
	var frames [][]byte
	for c := 0; c < chunks; c++ {
		var b []byte
		for _, u := range append([]string{"ok"}, forged...) {
			b = append(b, isoRec("FORGED_AUDIT", "u", u, "c", c)...)
		}
		frames = append(frames, b)
	}
	in := fbtest.WriteFile(t, "forged.chunks", records.Frames(frames...))
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in,
		"-p", "path="+audit, "-p", "control_listen=off",
		"-next", "-p", "path="+filepath.Join(dir, "$u"), "-p", "control_listen=off")
	if code != 0 || len(sum.Instances) != 2 {
		t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	var want bytes.Buffer
	want.WriteString("PRE\n")
	for c := 0; c < chunks; c++ {
		for _, u := range append([]string{"ok"}, forged...) {
			want.WriteString("FORGED_AUDIT," + u + "," + strconv.Itoa(c) + "\n")
		}
	}
	if got := fbtest.ReadText(t, audit); got != want.String() {
		t.Errorf("audit.log holds\n%s\nwant only its own output's lines\n%s", got, want.String())
	}
	if got, w := fbtest.ReadText(t, filepath.Join(dir, "ok")), "FORGED_AUDIT,ok,0\nFORGED_AUDIT,ok,1\nFORGED_AUDIT,ok,2\n"; got != w {
		t.Errorf("the template's own file holds %q, want %q", got, w)
	}
	for _, name := range []string{"audit.log.1", "audit.log.20261206-000000", "audit.log.gz"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s was created: %v", name, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "evil")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the planted link changed: %v %v", fi, err)
	}
	if !strings.Contains(stderr, "bad_path") || !strings.Contains(stderr, "another output's file") {
		t.Errorf("stderr does not say why the forged records were dropped:\n%s", stderr)
	}
}

func dirFilesIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != ".flatstore" { // flatstore's state (the output's journal)
			out = append(out, e.Name())
		}
	}
	return out
}

// TestFluentBitOwnership: the same rules in a real engine. Two workers of
// a template output ($TAG, max_dynamic_files 20, max_open_sockets 5) share
// a directory with a static output (audit.log, max_open_sockets 1) that
// takes only the tag "audit". Records tagged audit.log and audit.log.1 go
// to the template alone and are dropped; 40 other tags make exactly 20
// files (the first 20 paths the output wrote), each holding all of its
// records; audit.log holds exactly the static output's records.
func TestFluentBitOwnership(t *testing.T) {
	dir := t.TempDir()
	port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	audit := filepath.Join(dir, "audit.log")
	r := startFluentBit(t, fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 2
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port %s
[OUTPUT]
    Name flatstore
    Match audit
    path %s
    max_open_sockets 1
    control_listen off
[OUTPUT]
    Name flatstore
    Match *
    Workers 2
    path %s
    max_dynamic_files 20
    max_open_sockets 5
    control_listen off
`, port, audit, filepath.Join(dir, "$TAG")))
	waitAccepting(t, "127.0.0.1:"+port)
	addr := "127.0.0.1:" + port
	forwardSend(t, addr, "audit", 0, 100)
	forwardSend(t, addr, "audit.log", 1000, 50)
	forwardSend(t, addr, "audit.log.1", 2000, 50)
	for i := 0; i < 40; i++ {
		forwardSend(t, addr, "t"+strconv.Itoa(i), 10*i, 10)
	}
	waitLinesIn(t, r, audit, 100)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(r.logText(), "(max_dynamic_files)") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the last flush
	r.stop(t)
	seqLines(t, audit, "E_FWD", 0, 100)
	files := 0
	for _, name := range dirFilesIn(t, dir) {
		switch {
		case name == "audit.log":
		case name == "audit":
			seqLines(t, filepath.Join(dir, name), "E_FWD", 0, 100)
			files++
		case strings.HasPrefix(name, "t"):
			i, err := strconv.Atoi(name[1:])
			if err != nil {
				t.Errorf("unexpected file %q", name)
				continue
			}
			seqLines(t, filepath.Join(dir, name), "E_FWD", 10*i, 10)
			files++
		default:
			t.Errorf("unexpected file %q", name)
		}
	}
	if files != 20 {
		t.Errorf("the template output wrote %d files, want its max_dynamic_files 20", files)
	}
	log := r.logText()
	for _, want := range []string{"(max_dynamic_files)", "another output's file"} {
		if !strings.Contains(log, want) {
			t.Errorf("the engine's log lacks %q:\n%s", want, tail(log, 3000))
		}
	}
}
