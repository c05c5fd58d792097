package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	rec "github.com/flatstore/flatstore/internal/records"
)

// TestSoak runs the real plugin in the C host for FLATSTORE_SOAK (a Go
// duration; the test is skipped without it; `make soak` sets 60s): four
// workers flush concurrently into an always busy file, a rolling set of
// shard files that go idle and are closed by idle_timeout, and 1 000
// distinct template values (more than max_open_sockets: the least recently
// used files are closed for new ones), while the test moves files away and
// asks the control endpoint to rotate them, as logrotate does. Hostile
// records ride in every chunk: 300-byte names, a FIFO and a planted symlink
// at rendered paths (dropped as bad_path), key bombs, and the forgeries a
// record is data, never a command, must survive: names of another output's
// file (audit.log, a static output in the same directory), of flatstore's
// state directory (.flatstore) with a line shaped as a manifest listing
// files outside, a hard link planted to a file outside. A second output
// writes every record to one static file in the same process, a third to
// audit.log beside the template's files, and a fourth renders $file with
// rotate_count, rotate_max_files and compress gzip, so that retention and
// compression run under the forgeries. The input is
// replayed through hot reloads (-reload) until the time is used. At the end
// every good record must be on disk exactly once per generation in the
// template output and the static one, every line whole, the static output
// never asked to retry (no output waits on another), nothing outside the
// outputs' own files changed (a checksum of a planted victim tree), and the
// host's resident memory must not have grown after the first generation.
func TestSoak(t *testing.T) {
	env := os.Getenv("FLATSTORE_SOAK")
	if env == "" {
		t.Skip("soak test: set FLATSTORE_SOAK to a duration (make soak sets 60s)")
	}
	dur, err := time.ParseDuration(env)
	if err != nil || dur <= 0 {
		t.Fatalf("FLATSTORE_SOAK=%q: want a duration such as 60s", env)
	}

	const (
		shards      = 8
		chunksShard = 200 // consecutive chunks whose odd records go to one shard
		per         = 250 // records per chunk
		delayUS     = 10000
		workers     = 4
	)
	chunks := shards * chunksShard
	// Each generation lasts at least chunks × delay / workers (4 s); the
	// pauses overshoot a little (a 10-minute soak measured 4.1 s each).
	genTime := time.Duration(chunks) * delayUS * time.Microsecond / workers * 21 / 20
	gens := max(1, int(dur/genTime))
	records := chunks * per

	const users = 1000 // distinct template values, over max_open_sockets 100
	dir, outside, allDir, rdir := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	secret := filepath.Join(outside, "secret")
	for name, body := range map[string]string{"secret": "keep\n", "important.gz": "gzip\n", "linked": "hard\n"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(dir, "evil.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(outside, "linked"), filepath.Join(dir, "hard.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "important.gz"), filepath.Join(rdir, "evil")); err != nil {
		t.Fatal(err)
	}
	victims := fbtest.TreeSum(t, outside)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	bomb, _ := keyBombBody(30)
	long := strings.Repeat("L", 300)
	pad := strings.Repeat("p", 30)
	var frames [][]byte
	hostile := 0 // per generation
	for c := 0; c < chunks; c++ {
		var b []byte
		shard := "s" + strconv.Itoa(c/chunksShard%shards)
		for r := 0; r < per; r++ {
			n := c*per + r
			file := "hot"
			switch {
			case n%10 == 5:
				file = "u" + strconv.Itoa(n/10%users)
			case n%2 == 1:
				file = shard
			}
			b = rec.AppendRecord(b, rec.Record{Time: time.Unix(1700000000+int64(n), 0), Body: rec.KV{
				"event", "E_SOAK", "file", file, "n", n, "say", "a,b\nc", "pad", pad}})
		}
		for _, f := range []string{long, "fifo", "evil", "hard", "audit", ".flatstore", ".FlatStore", "../" + filepath.Base(outside) + "/secret"} {
			b = rec.AppendRecord(b, rec.Record{Body: rec.KV{"event", forgedManifest, "file", f}})
			hostile++
		}
		if c%20 == 0 {
			b = rec.AppendRecord(b, rec.Record{Body: rec.Raw(bomb)})
			hostile++
		}
		frames = append(frames, b)
	}
	in := fbtest.WriteFile(t, "soak.chunks", rec.Frames(frames...))
	frames = nil
	addr := fbtest.FreeTCPAddr(t)

	so, host := fbtest.Build(t)
	cmd := exec.Command(host, "-so", so, "-in-chunks", in, "-workers", strconv.Itoa(workers),
		"-chunk-delay-us", strconv.Itoa(delayUS), "-reload", strconv.Itoa(gens-1),
		"-retry-max", "1000", "-retry-wait-ms", "50",
		"-p", "path="+filepath.Join(dir, "$file.log"), "-p", "idle_timeout=1s",
		"-p", "control_listen="+addr,
		"-next", "-p", "path="+filepath.Join(allDir, "all.log"), "-p", "control_listen="+addr,
		"-next", "-p", "path="+filepath.Join(dir, "audit.log"), "-p", "control_listen="+addr,
		"-next", "-p", "path="+filepath.Join(rdir, "$file"), "-p", "rotate_count=20000", "-p", "rotate_max_files=2",
		"-p", "compress=gzip", "-p", "control_listen="+addr)
	var stdout bytes.Buffer
	stderrR, stderrW := io.Pipe()
	cmd.Stdout, cmd.Stderr = &stdout, stderrW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var (
		stderrMu   sync.Mutex
		stderrTail []string // warnings and errors
		gensDone   atomic.Int64
		rssMu      sync.Mutex
		rssAtGen   []int64 // host VmRSS (KiB) when each generation ended
	)
	pid := cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(stderrR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			// Each generation ends with ExitCtx, which logs "closed".
			if strings.Contains(l, "[output:flatstore:flatstore.0] closed") {
				gensDone.Add(1)
				if rss := procStatusKB(pid, "VmRSS"); rss > 0 {
					rssMu.Lock()
					rssAtGen = append(rssAtGen, rss)
					rssMu.Unlock()
				}
			}
			if strings.Contains(l, "[ warn]") || strings.Contains(l, "[error]") || strings.Contains(l, "panic") {
				stderrMu.Lock()
				stderrTail = append(stderrTail, l)
				stderrMu.Unlock()
			}
		}
	}()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var rotOK, rotMissing, rotErr, maxOpen, samples atomic.Int64
	client := &http.Client{Timeout: 5 * time.Second}
	wg.Add(2)
	go func() { // logrotate: move a file away, then ask for a rotate
		defer wg.Done()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			name := "hot"
			if k%3 == 2 {
				name = "s" + strconv.Itoa(k%shards)
			}
			p := filepath.Join(dir, name+".log")
			if err := os.Rename(p, fmt.Sprintf("%s.%d", p, k)); err != nil {
				continue // not created yet, or between generations
			}
			resp, err := client.Post("http://"+addr+"/rotate?path="+url.QueryEscape(p), "text/plain", nil)
			if err != nil {
				rotErr.Add(1) // the endpoint is down during a hot reload
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				rotOK.Add(1)
			case 404:
				rotMissing.Add(1) // an idle shard file is not open: nothing to rotate
			default:
				rotErr.Add(1)
			}
		}
	}()
	go func() { // open files, as the metric reports them
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if v, ok := scrapeGauge(client, "http://"+addr+"/metrics", "flatstore_open_files"); ok {
				samples.Add(1)
				for {
					m := maxOpen.Load()
					if v <= m || maxOpen.CompareAndSwap(m, v) {
						break
					}
				}
			}
		}
	}()

	t.Logf("soak: %v requested, %d generation(s) of %d records in %d chunks, %d workers", dur, gens, records, chunks, workers)
	werr := cmd.Wait()
	stderrW.Close()
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Errorf("host: %v", werr)
	}
	sum, err := fbtest.ParseSummary(stdout.Bytes())
	if err != nil || !sum.Found || len(sum.Instances) != 4 {
		t.Fatalf("summary %q: %v", stdout.String(), err)
	}
	s, all := sum.Instances[0], sum.Instances[1]
	t.Logf("static output: %+v", all)
	for _, o := range sum.Instances[1:3] {
		if o.Retries != 0 || o.OKChunks != int64(gens*chunks) {
			t.Errorf("a static output was held up: %+v", o)
		}
	}
	if r := sum.Instances[3]; r.OKChunks != int64(gens*chunks) {
		t.Errorf("the output with retention: %+v, want every chunk OK", r)
	}
	t.Logf("host: %+v wall_s=%.1f cpu_user_s=%.1f cpu_sys_s=%.1f", s, sum.WallS, sum.CPUUserS, sum.CPUSysS)
	t.Logf("rotations: %d OK, %d not open (404), %d refused (reload window); open files: max %d over %d samples",
		rotOK.Load(), rotMissing.Load(), rotErr.Load(), maxOpen.Load(), samples.Load())
	rssMu.Lock()
	t.Logf("host VmRSS at the end of each generation (KiB): %v", rssAtGen)
	rssMu.Unlock()
	stderrMu.Lock()
	if len(stderrTail) > 0 {
		t.Logf("warnings/errors logged (%d), first: %q", len(stderrTail), stderrTail[0])
	}
	for _, l := range stderrTail {
		if strings.Contains(l, "panic") {
			t.Errorf("panic logged: %s", l)
		}
	}
	stderrMu.Unlock()

	if s.OKRecords != int64(gens*(records+hostile)) || s.Errors != 0 || s.DroppedChunks != 0 {
		t.Errorf("summary %+v: want every chunk of %d generations OK", s, gens)
	}
	if got := fbtest.TreeSum(t, outside); got != victims {
		t.Errorf("files outside the outputs changed:\nbefore %s\nafter  %s", victims, got)
	}
	for _, f := range []string{filepath.Join(allDir, "all.log"), filepath.Join(dir, "audit.log")} {
		if n := len(fbtest.ReadLines(t, f)); n != gens*(records+hostile) {
			t.Errorf("the static output %s holds %d lines, want %d (its own records, none of the template's)", f, n, gens*(records+hostile))
		}
	}
	if fi, err := os.Lstat(filepath.Join(rdir, ".flatstore")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("the state directory: %v %v", fi, err)
	}
	if gz, _ := filepath.Glob(filepath.Join(rdir, "hot.*.gz")); len(gz) == 0 || len(gz) > 2 {
		t.Errorf("%d compressed rotations of hot kept, want 1 or 2 (rotate_max_files 2)", len(gz))
	}
	// Count every record across the files and their rotated copies.
	count := make([]uint16, records)
	files, _ := filepath.Glob(filepath.Join(dir, "*.log*"))
	lines := 0
	for _, f := range files {
		if fi, err := os.Lstat(f); err != nil || !fi.Mode().IsRegular() {
			continue // the FIFO and the planted link
		}
		if b := filepath.Base(f); b[0] == '_' || b[0] == '.' || strings.HasPrefix(b, "audit.log") || b == "hard.log" {
			// The key bombs (no "file" key: _.log), the hostile names that
			// are honest files of the directory (.flatstore.log, ../x made
			// __…), the static output beside the template, and the hard
			// link planted to a file outside (refused, so never written).
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := fbtest.CheckLinesTerminated(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		ls, _ := fbtest.SplitLines(data)
		base := filepath.Base(f)
		file := base[:strings.Index(base, ".log")]
		for _, l := range ls {
			fs := strings.Split(l, ",")
			if len(fs) != 5 || fs[0] != "E_SOAK" || fs[1] != file || fs[3] != "a b c" || fs[4] != pad {
				t.Fatalf("%s: bad line %q", f, l)
			}
			n, err := strconv.Atoi(fs[2])
			if err != nil || n < 0 || n >= records {
				t.Fatalf("%s: bad record number in %q", f, l)
			}
			count[n]++
		}
		lines += len(ls)
	}
	bad := 0
	for n, c := range count {
		if int(c) != gens {
			if bad++; bad <= 5 {
				t.Errorf("record %d is on disk %d times, want %d", n, c, gens)
			}
		}
	}
	t.Logf("%d lines in %d files (%d expected)", lines, len(files), gens*records)
	if rotOK.Load() == 0 {
		t.Errorf("no rotation succeeded")
	}
	// 1 000 template values and max_open_sockets 100 in each of the two
	// template outputs, beside two static files: each output's limit is
	// reached and held, never passed (the gauge counts the process's).
	if samples.Load() == 0 || maxOpen.Load() > 2*100+2 {
		t.Errorf("open files reached %d (%d samples), over the outputs' max_open_sockets 2×100 + 2", maxOpen.Load(), samples.Load())
	}
	rssMu.Lock()
	defer rssMu.Unlock()
	if len(rssAtGen) >= 2 {
		first, last := rssAtGen[0], rssAtGen[len(rssAtGen)-1]
		if last > first+32<<10 {
			t.Errorf("host VmRSS grew from %d KiB after the first generation to %d KiB at the end", first, last)
		}
	}
}

// forgedManifest is an event name whose line reads as a manifest listing
// files outside the output's directory.
const forgedManifest = `{"path":"x","rotated":[{"name":"../../outside/important.gz","dev":1,"ino":1}]}`

// procStatusKB reads a "Key:   N kB" field of /proc/PID/status; 0 when absent.
func procStatusKB(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// scrapeGauge reads one unlabelled gauge from a Prometheus text endpoint.
func scrapeGauge(c *http.Client, u, name string) (int64, bool) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return 0, false
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err == nil
		}
	}
	return 0, false
}
