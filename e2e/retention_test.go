package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Built-in rotation with retention and compression, through the .so in the
// host: what is kept, compressed and deleted, and what a crash in the middle
// of a compression leaves.

// seriesFiles lists the series of base in dir: rotated files sorted by name
// (they sort as written), then the live file.
func seriesFiles(t *testing.T, dir, base string) (rotated []string, live bool, other []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch n := e.Name(); {
		case n == base:
			live = true
		case n == ".flatstore": // flatstore's state directory
		case strings.HasPrefix(n, base+".") && !strings.HasSuffix(n, ".tmp"):
			rotated = append(rotated, n)
		default:
			other = append(other, n)
		}
	}
	sort.Strings(rotated)
	return rotated, live, other
}

// TestRetentionThroughPlugin: 10 500 records with rotate_count 1000,
// rotate_max_files 3 and compress gzip (then zstd) leave the file being
// written and three valid compressed files holding exactly the newest
// records before it.
func TestRetentionThroughPlugin(t *testing.T) {
	for _, c := range []struct{ algo, ext string }{{"gzip", ".gz"}, {"zstd", ".zst"}} {
		t.Run(c.algo, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "events.log")
			var frames [][]byte
			for n := 0; n < 10500; n += 750 {
				var b []byte
				for i := n; i < min(n+750, 10500); i++ {
					b = append(b, isoRec("E_R", "n", i)...)
				}
				frames = append(frames, b)
			}
			in := fbtest.WriteFile(t, "r.chunks", records.Frames(frames...))
			sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+out, "-p", "rotate_count=1000",
				"-p", "rotate_max_files=3", "-p", "compress="+c.algo, "-p", "control_listen=off")
			if code != 0 || sum.Instances[0].OKRecords != 10500 {
				t.Fatalf("exit %d, summary %+v; stderr:\n%s", code, sum, stderr)
			}
			rotated, live, other := seriesFiles(t, dir, "events.log")
			if !live || len(rotated) != 3 || len(other) != 0 {
				t.Fatalf("files: rotated %q, live %v, other %q", rotated, live, other)
			}
			lines := func(first, n int) string {
				var sb strings.Builder
				for i := first; i < first+n; i++ {
					fmt.Fprintf(&sb, "E_R,%d\n", i)
				}
				return sb.String()
			}
			for i, f := range rotated {
				if !strings.HasSuffix(f, c.ext) {
					t.Errorf("%s is not compressed with %s", f, c.algo)
				}
				if got := fbtest.ReadDecompressed(t, filepath.Join(dir, f)); got != lines(7000+1000*i, 1000) {
					t.Errorf("%s: %d lines, not records %d..%d", f, strings.Count(got, "\n"), 7000+1000*i, 7999+1000*i)
				}
			}
			if got := fbtest.ReadText(t, out); got != lines(10000, 500) {
				t.Errorf("the live file holds %d lines, want the last 500", strings.Count(got, "\n"))
			}
			for _, want := range []string{`(count): now "` + out + `.`, `deleted "` + out + `.`} {
				if !strings.Contains(stderr, want) {
					t.Errorf("the log lacks %q:\n%s", want, tail(stderr, 2000))
				}
			}
		})
	}
}

// TestRetentionKillDuringCompression kills the host (SIGKILL) while a
// rotated file is being compressed — every record flushed, the plugin
// closing, a compression's temporary file there — then starts it again on
// the same path: no half file is left, every rotated file ends compressed
// and valid, and every record is in the series exactly once.
func TestRetentionKillDuringCompression(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "big.log")
	const nRecords = 24000 // ~22 MB: three rotated files of 6 MiB and the rest
	var frames [][]byte
	x := uint64(1)
	for n := 0; n < nRecords; n += 2000 {
		var b []byte
		for i := n; i < n+2000; i++ {
			// Text that compresses slowly (pseudo-random hex), so the
			// compressions are still running when the plugin closes.
			var pad strings.Builder
			for j := 0; j < 56; j++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				fmt.Fprintf(&pad, "%016x", x)
			}
			b = append(b, isoRec("E_K", "n", i, "pad", pad.String())...)
		}
		frames = append(frames, b)
	}
	in := fbtest.WriteFile(t, "k.chunks", records.Frames(frames...))
	args := []string{"-p", "path=" + out, "-p", "rotate_size=6m", "-p", "rotate_max_files=100",
		"-p", "compress=gzip", "-p", "control_listen=off"}
	h := fbtest.StartHost(t, append([]string{"-in-chunks", in}, args...)...)
	done := hostDone(h)
	var tmp string
	deadline := time.Now().Add(60 * time.Second)
	for tmp == "" || !strings.Contains(h.Stderr(), "] closed") {
		if time.Now().After(deadline) {
			t.Fatal("no compression began within 60 s")
		}
		select {
		case <-done:
			t.Fatalf("the host ended before a compression was seen after its flushes; stderr:\n%s", tail(h.Stderr(), 2000))
		case <-time.After(time.Millisecond):
		}
		tmp = ""
		ents, _ := os.ReadDir(filepath.Join(dir, ".flatstore"))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".ztmp") { // written in the state directory
				tmp = filepath.Join(".flatstore", e.Name())
			}
		}
	}
	if err := syscall.Kill(h.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	_, stillThere := os.Stat(filepath.Join(dir, tmp))
	t.Logf("killed while %s was being written (still there: %v)", tmp, stillThere == nil)

	// A new life on the same path; its first write reads the manifest.
	one := fbtest.WriteFile(t, "one.chunks", records.Frames(isoRec("E_K", "n", nRecords, "pad", "x")))
	// Its exit waits for the compressions it takes over (slow under -race
	// on a loaded machine: 155 s was seen for three files of 6 MiB).
	sum, stderr, code := fbtest.RunHostWith(t, fbtest.HostConfig{Timeout: 10 * time.Minute}, append([]string{"-in-chunks", one}, args...)...)
	if code != 0 {
		t.Fatalf("restart: exit %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	rotated, live, other := seriesFiles(t, dir, "big.log")
	if len(other) != 0 || !live {
		t.Errorf("after the restart: other files %q (a half file?), live %v", other, live)
	}
	if ents := stateFiles(t, dir); len(ents) != 2 {
		t.Errorf("after the restart the state directory holds %q, want the key and the manifest (a half file?) besides the journal", ents)
	}
	seen := make([]int, nRecords+1)
	count := func(name, text string) {
		lines, rest := fbtest.SplitLines([]byte(text))
		if rest != "" {
			t.Errorf("%s ends with a torn line", name)
		}
		for _, l := range lines {
			f := strings.SplitN(l, ",", 3)
			n, err := strconv.Atoi(f[1])
			if err != nil || n > nRecords {
				t.Fatalf("%s: line %.60q", name, l)
			}
			seen[n]++
		}
	}
	for _, f := range rotated {
		if !strings.HasSuffix(f, ".gz") {
			t.Errorf("%s was left uncompressed", f)
		}
		count(f, fbtest.ReadDecompressed(t, filepath.Join(dir, f)))
	}
	count("big.log", fbtest.ReadText(t, out))
	bad := 0
	for n, c := range seen {
		if c != 1 {
			if bad++; bad <= 5 {
				t.Errorf("record %d is in the series %d times, want once", n, c)
			}
		}
	}
	t.Logf("%d rotated files, all compressed; %d records each once", len(rotated), nRecords+1)
}

// TestRetentionForgeryThroughPlugin is issue 19's attack through the .so:
// with path DIR/$TAG, rotate_max_files and compress, a first record's tag
// names the manifest (the old .NAME.flatstore, or the new one's name) and
// its line is a valid manifest listing files outside the directory with
// their real identity; a symlink waits at the old temporary name; then
// records of the path rotate, load and retain. Every file outside the
// path's own rotated set — the victim tree, the planted names — is left as
// it was, the tag .flatstore is refused, and the path's own series works.
func TestRetentionForgeryThroughPlugin(t *testing.T) {
	root := t.TempDir()
	dir, victims := filepath.Join(root, "log"), filepath.Join(root, "victim")
	for _, d := range []string{dir, victims} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"important.gz", "secret", "linked"} {
		if err := os.WriteFile(filepath.Join(victims, v), []byte("keep me: "+v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	entry := func(name, file, compressed string) map[string]any {
		var st syscall.Stat_t
		if err := syscall.Stat(file, &st); err != nil {
			t.Fatal(err)
		}
		e := map[string]any{"name": name, "dev": st.Dev, "ino": st.Ino, "size": st.Size,
			"mtime": st.Mtim.Nano(), "at": 0, "reason": "count"}
		if compressed != "" {
			e["compressed"] = compressed
		}
		return e
	}
	alice := filepath.Join(dir, "alice")
	forged, err := json.Marshal(map[string]any{"path": alice, "rotated": []any{
		entry("../victim/important.gz", filepath.Join(victims, "important.gz"), "gzip"),
		entry("../victim/secret", filepath.Join(victims, "secret"), ""),
		entry(filepath.Join(victims, "secret"), filepath.Join(victims, "secret"), ""),
	}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(alice))
	newName := hex.EncodeToString(sum[:16]) + ".json"
	args := func(tag string) []string {
		return []string{"-tag", tag, "-p", "path=" + filepath.Join(dir, "$TAG"), "-p", "rotate_count=10",
			"-p", "rotate_max_files=1", "-p", "compress=gzip", "-p", "escape=none", "-p", "control_listen=off"}
	}
	// The first records: the forged manifest under the old name and the
	// new one's, and one aimed at the state directory itself.
	for _, tag := range []string{".alice.flatstore", newName, ".flatstore"} {
		in := fbtest.WriteFile(t, "forge.chunks", records.Frames(isoRec(string(forged))))
		if _, stderr, code := fbtest.RunHost(t, append([]string{"-in-chunks", in}, args(tag)...)...); code != 0 {
			t.Fatalf("tag %s: exit %d; stderr:\n%s", tag, code, stderr)
		}
	}
	if got := fbtest.ReadText(t, filepath.Join(dir, ".alice.flatstore")); got != string(forged)+"\n" {
		t.Fatalf("the forgery did not land as a manifest: %q", got)
	}
	// The state directory is the output's own (its journal is there); the
	// tag .flatstore wrote nothing in it nor made it a file.
	if fi, err := os.Lstat(filepath.Join(dir, ".flatstore")); err == nil && (!fi.IsDir() || fi.Mode().Perm() != 0o700) {
		t.Errorf("the state directory is %v", fi.Mode())
	}
	if ents := stateFiles(t, dir); len(ents) != 0 {
		t.Errorf("the state directory holds %d file(s) besides the journal: %s…", len(ents), ents[0].Name())
	}
	if err := os.Symlink(filepath.Join(victims, "linked"), filepath.Join(dir, ".alice.flatstore.tmp")); err != nil {
		t.Fatal(err)
	}
	before := fbtest.TreeSum(t, victims, filepath.Join(dir, ".alice.flatstore"), filepath.Join(dir, newName), filepath.Join(dir, ".alice.flatstore.tmp"))
	// The second: records of alice rotate three times, load the manifest,
	// compress and retain.
	var recs []byte
	for i := 0; i < 30; i++ {
		recs = append(recs, isoRec("E_A", "n", i)...)
	}
	in := fbtest.WriteFile(t, "alice.chunks", records.Frames(recs))
	_, stderr, code := fbtest.RunHost(t, append([]string{"-in-chunks", in}, args("alice")...)...)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	if after := fbtest.TreeSum(t, victims, filepath.Join(dir, ".alice.flatstore"), filepath.Join(dir, newName), filepath.Join(dir, ".alice.flatstore.tmp")); after != before {
		t.Errorf("files outside alice's rotated set changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	rotated, _, other := seriesFiles(t, dir, "alice")
	if len(rotated) != 1 || !strings.HasSuffix(rotated[0], ".gz") || fbtest.ReadDecompressed(t, filepath.Join(dir, rotated[0])) != "E_A,20\nE_A,21\nE_A,22\nE_A,23\nE_A,24\nE_A,25\nE_A,26\nE_A,27\nE_A,28\nE_A,29\n" {
		t.Errorf("alice's rotated files %q, want the newest, compressed, whole", rotated)
	}
	if want := []string{".alice.flatstore", ".alice.flatstore.tmp", newName}; fmt.Sprint(other) != fmt.Sprint(want) {
		t.Errorf("other files: %q, want the planted ones %q", other, want)
	}
	if !strings.Contains(stderr, "is the manifest of an earlier version: it is ignored") {
		t.Errorf("no warning about the old manifest:\n%s", tail(stderr, 2000))
	}
	t.Logf("victims and planted names unchanged; alice kept %q", rotated)
}

// TestRetentionKillDuringRotations kills the host (SIGKILL) again and again
// while it rotates every 20 lines under load with compress gzip, each life
// on the same path, then starts it once more: every rotated file is known
// (in the manifest) and compressed, no half file is left in the state
// directory, and nothing outside the path's files changed.
func TestRetentionKillDuringRotations(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "log")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "victim"), []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "decoy.log"), []byte("keep me too\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := fbtest.TreeSum(t, filepath.Join(root, "victim"), filepath.Join(dir, "decoy.log"))
	out := filepath.Join(dir, "ev.log")
	var frames [][]byte
	for n := 0; n < 40000; n += 200 {
		var b []byte
		for i := n; i < n+200; i++ {
			b = append(b, isoRec("E_K", "n", i, "pad", strings.Repeat("x", 200))...)
		}
		frames = append(frames, b)
	}
	in := fbtest.WriteFile(t, "k.chunks", records.Frames(frames...))
	args := []string{"-p", "path=" + out, "-p", "rotate_count=20", "-p", "rotate_max_files=1000000",
		"-p", "compress=gzip", "-p", "control_listen=off"}
	pending := 0
	for life, after := range []int{3, 17, 40, 71, 120, 5} {
		h := fbtest.StartHost(t, append([]string{"-in-chunks", in}, args...)...)
		done := hostDone(h)
		deadline := time.Now().Add(60 * time.Second)
		for strings.Count(h.Stderr(), "(count): now") < after {
			if time.Now().After(deadline) {
				t.Fatalf("life %d: fewer than %d rotations in 60 s", life, after)
			}
			select {
			case <-done:
				t.Fatalf("life %d: the host ended first; stderr:\n%s", life, tail(h.Stderr(), 2000))
			case <-time.After(100 * time.Microsecond):
			}
		}
		if err := syscall.Kill(h.Pid(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-done
		ents, _ := os.ReadDir(filepath.Join(dir, ".flatstore"))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".json") {
				b, _ := os.ReadFile(filepath.Join(dir, ".flatstore", e.Name()))
				pending += strings.Count(string(b), `"pending":true`)
			}
		}
	}
	one := fbtest.WriteFile(t, "one.chunks", records.Frames(isoRec("E_K", "n", -1)))
	// Its exit waits for the compressions it takes over (slow under -race
	// on a loaded machine: 155 s was seen for three files of 6 MiB).
	sum, stderr, code := fbtest.RunHostWith(t, fbtest.HostConfig{Timeout: 10 * time.Minute}, append([]string{"-in-chunks", one}, args...)...)
	if code != 0 {
		t.Fatalf("restart: exit %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	rotated, _, other := seriesFiles(t, dir, "ev.log")
	if fmt.Sprint(other) != "[decoy.log]" {
		t.Errorf("other files %q, want the decoy alone", other)
	}
	var m struct {
		Rotated []struct{ Name, Compressed string } `json:"rotated"`
	}
	ents := stateFiles(t, dir)
	if len(ents) != 2 {
		t.Errorf("the state directory holds %q, want the key and the manifest besides the journal", ents)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			b, _ := os.ReadFile(filepath.Join(dir, ".flatstore", e.Name()))
			if err := json.Unmarshal(b[:strings.IndexByte(string(b), '\n')], &m); err != nil {
				t.Fatal(err)
			}
		}
	}
	known := map[string]bool{}
	for _, r := range m.Rotated {
		known[r.Name] = r.Compressed == "gzip"
	}
	for _, f := range rotated {
		if !strings.HasSuffix(f, ".gz") || !known[f] {
			t.Errorf("%s: compressed %v, in the manifest %v", f, strings.HasSuffix(f, ".gz"), known[f])
		}
		fbtest.ReadDecompressed(t, filepath.Join(dir, f)) // a valid gzip
	}
	if len(known) != len(rotated) {
		t.Errorf("the manifest lists %d files, the directory holds %d", len(known), len(rotated))
	}
	if after := fbtest.TreeSum(t, filepath.Join(root, "victim"), filepath.Join(dir, "decoy.log")); after != before {
		t.Errorf("files outside changed:\n%s\n%s", before, after)
	}
	t.Logf("6 kills; the manifests held %d rename intents at the kills (resolved at the restarts); %d rotated files, all in the manifest and compressed", pending, len(rotated))
}

// stateFiles lists dir's state directory but for the outputs' journals.
func stateFiles(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, ".flatstore"))
	var out []os.DirEntry
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "journal-") {
			out = append(out, e)
		}
	}
	return out
}
