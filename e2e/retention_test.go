package e2e

import (
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
		case n == "."+base+".flatstore":
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
			in := fbtest.WriteFile(t, "r.chunks", fbtest.Frames(frames...))
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
	const records = 24000 // ~22 MB: three rotated files of 6 MiB and the rest
	var frames [][]byte
	x := uint64(1)
	for n := 0; n < records; n += 2000 {
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
	in := fbtest.WriteFile(t, "k.chunks", fbtest.Frames(frames...))
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
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".gz.tmp") {
				tmp = e.Name()
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
	one := fbtest.WriteFile(t, "one.chunks", fbtest.Frames(isoRec("E_K", "n", records, "pad", "x")))
	sum, stderr, code := fbtest.RunHost(t, append([]string{"-in-chunks", one}, args...)...)
	if code != 0 {
		t.Fatalf("restart: exit %d, summary %+v; stderr:\n%s", code, sum, stderr)
	}
	rotated, live, other := seriesFiles(t, dir, "big.log")
	if len(other) != 0 || !live {
		t.Errorf("after the restart: other files %q (a half file?), live %v", other, live)
	}
	seen := make([]int, records+1)
	count := func(name, text string) {
		lines, rest := fbtest.SplitLines([]byte(text))
		if rest != "" {
			t.Errorf("%s ends with a torn line", name)
		}
		for _, l := range lines {
			f := strings.SplitN(l, ",", 3)
			n, err := strconv.Atoi(f[1])
			if err != nil || n > records {
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
	t.Logf("%d rotated files, all compressed; %d records each once", len(rotated), records+1)
}
