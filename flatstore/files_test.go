package flatstore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// These tests hold the header, file and rotation rules (docs/configuration.md,
// docs/rotation.md) with bytes on disk. Each test makes its own Process and
// hands it to the helpers (newProc; usePool for one with an injected clock,
// whose maintenance the test runs by hand with Store.Tick, so nothing
// sleeps), and runs in parallel with the others.

// fakeClock is a clock that moves only when told; safe for concurrent use.
// It has a wall clock (Now) and a monotonic one (Mono, the boottime that
// retention ages files by): Add is time passing and moves both; Set and
// Step are a step of the wall clock alone.
type fakeClock struct{ ns, mono atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	c.mono.Store(int64(time.Hour)) // some uptime
	return c
}

func (c *fakeClock) Now() time.Time       { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Mono() time.Duration  { return time.Duration(c.mono.Load()) }
func (c *fakeClock) Add(d time.Duration)  { c.ns.Add(int64(d)); c.mono.Add(int64(d)) }
func (c *fakeClock) Set(t time.Time)      { c.ns.Store(t.UnixNano()) }
func (c *fakeClock) Step(d time.Duration) { c.ns.Add(int64(d)) }

// newProc returns a Process of the test's own, with the real system calls
// and clock: tests run in parallel, each with its own files, metrics and
// maintenance goroutine, and hand it to the helpers that build instances.
func newProc(t *testing.T) *Process {
	t.Helper()
	return newProcess(filestore.Env{})
}

// usePool returns a Process of the test's own with the clock clk and the
// system calls ops (the real ones when nil), and its store; it has no
// maintenance goroutine, so the test calls the store's Tick. At the end of the
// test it must have no instance and no file open.
func usePool(t *testing.T, clk *fakeClock, ops *filestore.Sys) (*Process, *filestore.Store) {
	return usePoolEnv(t, clk, filestore.Env{Sys: ops})
}

// usePoolEnv is usePool with the rest of the store's environment given.
func usePoolEnv(t *testing.T, clk *fakeClock, env filestore.Env) (*Process, *filestore.Store) {
	t.Helper()
	ops := env.Sys
	if ops == nil {
		ops = filestore.RealSys()
	}
	// The clock's boottime, in a boot of its own: a new clock is a reboot.
	ops.Boottime, ops.BootID = clk.Mono, fmt.Sprintf("fake-%p", clk)
	env.Sys, env.Now, env.Manual = ops, clk.Now, true
	proc := newProcess(env)
	p := proc.store
	t.Cleanup(func() {
		if users, open := p.Users(), p.OpenCount(); users != 0 || open != 0 {
			t.Errorf("test pool left with %d instances and %d slots", users, open)
		}
	})
	return proc, p
}

// fsInstance builds an instance from key/value pairs (control off), closed
// when the test ends.
func fsInstance(t *testing.T, proc *Process, kv ...string) *Instance {
	t.Helper()
	g := MapGetter{"control_listen": "off"}
	for i := 0; i+1 < len(kv); i += 2 {
		g[kv[i]] = kv[i+1]
	}
	cfg, err := ParseConfig(g)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	in, err := NewInstance(proc, cfg, "files-test", logger.New("files-test", logger.NewWriterSink(io.Discard, logger.LevelDebug)))
	if err != nil {
		t.Fatalf("NewInstance: %v", err)
	}
	t.Cleanup(in.Close)
	return in
}

// evRecords encodes n records {"event": ev, "n": first+i} plus extra pairs.
func evRecords(ev string, first, n int, extra ...any) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		body := records.KV{"event", ev, "n", first + i}
		body = append(body, extra...)
		b = records.AppendRecord(b, records.Record{Time: time.Unix(1700000000, 0), Body: body})
	}
	return b
}

// evLines is what evRecords(ev, first, n) writes with the default settings.
func evLines(ev string, first, n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "%s,%d\n", ev, first+i)
	}
	return sb.String()
}

func mustFlush(t *testing.T, in *Instance, data []byte, tag string) {
	t.Helper()
	if res := in.Flush(data, tag); res != OK {
		t.Fatalf("Flush(tag %q) = %v, want OK", tag, res)
	}
}

// dirFiles lists the regular files under dir, relative to it, sorted by
// rotation order: name, name.1, name.2… (numeric suffixes compared as numbers).
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == filestore.StateDirName {
			return filepath.SkipDir // flatstore's own state (retention.go)
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key := func(s string) (string, int) {
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			if n, err := strconv.Atoi(s[i+1:]); err == nil {
				return s[:i], n
			}
		}
		return s, 0
	}
	sort.Slice(out, func(i, j int) bool {
		a, an := key(out[i])
		b, bn := key(out[j])
		if a != b {
			return a < b
		}
		return an < bn
	})
	return out
}

// asideFiles returns the files of base's series in dir in the order they
// were written: the rotated ones (base.YYYYMMDD-HHMMSS, then _001, _002…
// within one second), oldest first, then the live file, base itself, when
// it exists. It fails the test on any other file of dir. Sorted by name,
// the rotated files must already be in that order.
func asideFiles(t *testing.T, dir, base string) []string {
	t.Helper()
	type aside struct {
		name, ts string
		n        int
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(base) + `\.(\d{8}-\d{6})(?:_(\d{3}))?(?:\.gz|\.zst)?$`)
	var asides []aside
	live := false
	for _, f := range dirFiles(t, dir) {
		if f == base {
			live = true
			continue
		}
		if f == "."+base+".flatstore" {
			continue // the manifest
		}
		m := re.FindStringSubmatch(f)
		if m == nil {
			t.Fatalf("%s holds %s, which is not of %s's series", dir, f, base)
		}
		n, _ := strconv.Atoi(m[2])
		asides = append(asides, aside{f, m[1], n})
	}
	sort.Slice(asides, func(i, j int) bool {
		if asides[i].ts != asides[j].ts {
			return asides[i].ts < asides[j].ts
		}
		return asides[i].n < asides[j].n
	})
	var out []string
	for _, a := range asides {
		out = append(out, a.name)
	}
	if !sort.StringsAreSorted(out) {
		t.Errorf("rotated files %q do not sort by name in the order they were written", out)
	}
	if live {
		out = append(out, base)
	}
	return out
}

// wantSeries checks that base's series in dir holds want, in order.
func wantSeries(t *testing.T, dir, base string, want ...string) {
	t.Helper()
	files := asideFiles(t, dir, base)
	if len(files) != len(want) {
		t.Fatalf("%s's series is %q, want %d files", base, files, len(want))
	}
	for i, f := range files {
		if got := fbtest.ReadText(t, filepath.Join(dir, f)); got != want[i] {
			t.Errorf("%s (file %d of the series) = %q, want %q", f, i, got, want[i])
		}
	}
}

func rotationsTotal(t *testing.T, proc *Process, reason string) float64 {
	t.Helper()
	var d dto.Metric
	if err := proc.metrics.rotations.WithLabelValues(reason).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// fdsUnder counts this process's descriptors open on files under dir.
func fdsUnder(dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		// The output's journal (dir/.flatstore) is not an event file.
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dir+"/") &&
			!strings.HasPrefix(l, filepath.Join(dir, filestore.StateDirName)+"/") {
			n++
		}
	}
	return n
}

// fdCount wraps ops to count the event files open at once, exactly: every
// descriptor opened for writing until it is closed.
type fdCount struct {
	mu        sync.Mutex
	open      map[int]bool
	now, peak int
}

func (c *fdCount) ops(base *filestore.Sys) *filestore.Sys {
	c.open = map[int]bool{}
	ops := *base
	track := func(fd int, flags int, err error) (int, error) {
		if err == nil && flags&unix.O_WRONLY != 0 {
			c.mu.Lock()
			c.open[fd] = true
			c.now++
			c.peak = max(c.peak, c.now)
			c.mu.Unlock()
		}
		return fd, err
	}
	open, openat, openat2, closefd := ops.Open, ops.Openat, ops.Openat2, ops.Close
	ops.Open = func(p string, flags int, perm uint32) (int, error) {
		fd, err := open(p, flags, perm)
		return track(fd, flags, err)
	}
	ops.Openat = func(d int, p string, flags int, perm uint32) (int, error) {
		fd, err := openat(d, p, flags, perm)
		return track(fd, flags, err)
	}
	ops.Openat2 = func(d int, p string, how *unix.OpenHow) (int, error) {
		fd, err := openat2(d, p, how)
		return track(fd, int(how.Flags), err)
	}
	ops.Close = func(fd int) error {
		c.mu.Lock()
		if c.open[fd] {
			delete(c.open, fd)
			c.now--
		}
		c.mu.Unlock()
		return closefd(fd)
	}
	return &ops
}

func (c *fdCount) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak
}

// 1. $TAG with 1000 tags and max_open_sockets 100, four writers: never
// more than 100 files open at once (counted exactly, at the system calls),
// no flush ever asked to retry (the least recently used idle file is closed
// for a new one), and every record is in its own tag's file.
func TestTemplateManyTagsMaxOpenSockets(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(time.Unix(1800000000, 0))
	var fds fdCount
	proc, p := usePool(t, clk, fds.ops(filestore.RealSys()))
	dir := t.TempDir()
	in := fsInstance(t, proc, "path", filepath.Join(dir, "$TAG.log"), "max_open_sockets", "100", "idle_timeout", "200ms")

	// Each tag's flushes go to one worker, in round order, as Fluent Bit
	// never has two chunks of one tag in flight out of order: the rounds of
	// a tag land in its file one after the other, whatever the other
	// workers do. (Jobs from one shared channel let a tag's round 1 pass
	// its round 0 on another worker.)
	const tags, rounds, per, workers = 1000, 2, 3, 4
	type job struct{ tag, round int }
	var jobs [workers]chan job
	for w := range jobs {
		jobs[w] = make(chan job)
	}
	go func() {
		for r := 0; r < rounds; r++ {
			for i := 0; i < tags; i++ {
				jobs[i%workers] <- job{i, r}
			}
		}
		for w := range jobs {
			close(jobs[w])
		}
	}()

	var retries, maxSlots atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs[w] {
				tag := fmt.Sprintf("t%04d", j.tag)
				if res := in.Flush(evRecords("E_"+tag, j.round*per, per), tag); res != OK {
					retries.Add(1)
					t.Errorf("flush %s = %v, want OK at once", tag, res)
				}
				n := int64(p.OpenCount())
				for m := maxSlots.Load(); n > m; m = maxSlots.Load() {
					if maxSlots.CompareAndSwap(m, n) {
						break
					}
				}
				if j.tag%100 == 0 {
					clk.Add(50 * time.Millisecond)
					p.Tick() // idle files close meanwhile, as they would
				}
			}
		}()
	}
	wg.Wait()

	if ms, mf := maxSlots.Load(), fds.max(); ms > 100 || mf > 100 || mf < 50 {
		t.Errorf("at most %d slots and %d files open at once; want at most 100 (and the limit reached)", ms, mf)
	}
	files := dirFiles(t, dir)
	if len(files) != tags {
		t.Fatalf("%d files, want %d", len(files), tags)
	}
	total := 0
	for i := 0; i < tags; i++ {
		tag := fmt.Sprintf("t%04d", i)
		got := fbtest.ReadText(t, filepath.Join(dir, tag+".log"))
		if want := evLines("E_"+tag, 0, rounds*per); got != want {
			t.Fatalf("%s.log = %q, want %q", tag, got, want)
		}
		total += strings.Count(got, "\n")
	}
	if total != tags*rounds*per {
		t.Errorf("%d lines, want %d", total, tags*rounds*per)
	}
	t.Logf("%d retries, at most %d slots, %d files open at once", retries.Load(), maxSlots.Load(), fds.max())
}

// 2. Substituted values cannot leave the configured directory.
func TestTemplateValuesStayInDirectory(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	byTag := fsInstance(t, proc, "path", filepath.Join(dir, "$TAG.log"))
	byKey := fsInstance(t, proc, "path", filepath.Join(dir, "k-$user.log"))
	for _, tag := range []string{"../../etc/x", "..", ".", "/etc/passwd", "a/../../b"} {
		mustFlush(t, byTag, evRecords("E_TAG", 0, 1), tag)
	}
	for _, user := range []string{"a/../../b", "../../../../etc/y", "..", "/"} {
		mustFlush(t, byKey, evRecords("E_KEY", 0, 1, "user", user), "t")
	}
	files := dirFiles(t, root)
	if len(files) != 9 {
		t.Errorf("%d files, want 9: %q", len(files), files)
	}
	lines := 0
	for _, f := range files {
		if filepath.Dir(f) != filepath.Join("a", "b", "c") {
			t.Errorf("file %s is outside %s", f, dir)
		}
		lines += strings.Count(fbtest.ReadText(t, filepath.Join(root, f)), "\n")
	}
	if lines != 9 {
		t.Errorf("%d lines in %q, want 9", lines, files)
	}
}

// 3. rotate_count: files of exactly 1000 lines and one of 500, the suffix
// names with .1, .2… when rotations fall in the same second.
func TestRotateCount(t *testing.T) {
	t.Parallel()
	const total, limit = 10500, 1000
	for _, tc := range []struct {
		name  string
		sizes func() []int
	}{
		{"one flush", func() []int { return []int{total} }},
		{"many small flushes", func() []int {
			var s []int
			for left, i := total, 0; left > 0; i++ {
				n := min(left, 1+(i*37)%333)
				s = append(s, n)
				left -= n
			}
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			proc, _ := usePool(t, newFakeClock(start), nil) // every rotation in the same second
			dir := t.TempDir()
			path := filepath.Join(dir, "ev.log")
			in := fsInstance(t, proc, "path", path, "rotate_count", "1000", "suffix", ".%Y%m%d-%H%M%S")
			before := rotationsTotal(t, proc, filestore.ReasonCount)
			n := 0
			for _, k := range tc.sizes() {
				mustFlush(t, in, evRecords("E_C", n, k), "t")
				n += k
			}
			files := dirFiles(t, dir)
			if len(files) != 11 {
				t.Fatalf("files %q, want 11", files)
			}
			next := 0
			for i, f := range files {
				want := "ev.log.20300102-030405"
				if i > 0 {
					want += "." + strconv.Itoa(i)
				}
				if f != want {
					t.Errorf("file %d is %s, want %s", i, f, want)
				}
				k := limit
				if i == 10 {
					k = total - 10*limit
				}
				if got := fbtest.ReadText(t, filepath.Join(dir, f)); got != evLines("E_C", next, k) {
					t.Errorf("%s: %d lines, not lines %d..%d", f, strings.Count(got, "\n"), next, next+k-1)
				}
				next += k
			}
			if got := rotationsTotal(t, proc, filestore.ReasonCount) - before; got != 10 {
				t.Errorf("%v count rotations counted, want 10", got)
			}
			if st := in.Status(); len(st) != 1 || st[0].LastReason != filestore.ReasonCount || st[0].Lines != total {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// A template path is forgotten by the pool when its file closes; after a
// count rotation the next file for that path must still be a new one, and
// after an idle close the path goes on counting the lines of its file.
// Without a suffix the live file is always the path: a rotation renames it
// aside (path.YYYYMMDD-HHMMSS, -1, -2… within one second).
func TestRotateCountTemplateForgotten(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(time.Unix(1800000000, 0))
	proc, p := usePool(t, clk, nil)
	dir := t.TempDir()
	in := fsInstance(t, proc, "path", filepath.Join(dir, "$TAG.log"), "rotate_count", "10")
	mustFlush(t, in, evRecords("E", 0, 15), "a") // 10 set aside, 5 in a.log (open)
	mustFlush(t, in, evRecords("E", 15, 5), "a") // a.log reaches 10: set aside, closed, forgotten
	if f := p.Lookup(filepath.Join(dir, "a.log")); f != nil {
		t.Fatalf("the pool kept %s after its rotation", f.Path())
	}
	mustFlush(t, in, evRecords("E", 20, 3), "a") // a new a.log
	// Closed for idle and forgotten, the path goes on in a.log, counting
	// its lines on.
	clk.Add(2 * time.Minute)
	p.Tick()
	if f := p.Lookup(filepath.Join(dir, "a.log")); f != nil || p.OpenCount() != 0 {
		t.Fatal("the idle file was not closed and forgotten")
	}
	mustFlush(t, in, evRecords("E", 23, 8), "a") // 7 into a.log (set aside), 1 into a new one
	wantSeries(t, dir, "a.log", evLines("E", 0, 10), evLines("E", 10, 10), evLines("E", 20, 10), evLines("E", 30, 1))
	if got := asideFiles(t, dir, "a.log"); got[0] != "a.log.20270115-080000" || got[1] != "a.log.20270115-080000_001" || got[2] != "a.log.20270115-080200" {
		t.Errorf("names %q: want the UTC time of each rotation, _001 after a second in the same second", got)
	}
}

// 4. rotate_size counts from the real size of an existing file.
func TestRotateSizeFromExisting(t *testing.T) {
	t.Parallel()
	proc, _ := usePool(t, newFakeClock(time.Unix(1800000000, 0)), nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	old := strings.Repeat(strings.Repeat("o", 89)+"\n", 10) // 900 bytes
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	in := fsInstance(t, proc, "path", path, "rotate_size", "1k")
	pad := strings.Repeat("p", 41) // "E,NNNNN,<41>\n" is 50 bytes
	var chunk []byte
	var lines []string
	for i := 0; i < 30; i++ {
		n := fmt.Sprintf("%05d", i)
		chunk = records.AppendRecord(chunk, records.Record{Body: records.KV{"event", "E", "n", n, "pad", pad}})
		lines = append(lines, "E,"+n+","+pad+"\n")
	}
	mustFlush(t, in, chunk, "t")
	// 900+50+50 < 1024; the third line reaches the limit and stays.
	wantSeries(t, dir, "ev.log", old+strings.Join(lines[:3], ""),
		strings.Join(lines[3:24], ""), // 21 lines: 1050 bytes
		strings.Join(lines[24:], ""))

	// An existing file already over the limit is not appended to.
	dir2 := t.TempDir()
	path2 := filepath.Join(dir2, "full.log")
	big := strings.Repeat("x", 2047) + "\n"
	if err := os.WriteFile(path2, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	in2 := fsInstance(t, proc, "path", path2, "rotate_size", "1k")
	before := rotationsTotal(t, proc, filestore.ReasonSize)
	mustFlush(t, in2, evRecords("E", 0, 2), "t")
	// It is set aside, whole, and the path starts again.
	wantSeries(t, dir2, "full.log", big, evLines("E", 0, 2))
	if got := rotationsTotal(t, proc, filestore.ReasonSize) - before; got != 1 {
		t.Errorf("%v size rotations, want 1", got)
	}
}

// stallOps is realOps whose next write, once armed, waits to be released.
type stallOps struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newStallOps() (*stallOps, *filestore.Sys) {
	s := &stallOps{entered: make(chan struct{}), release: make(chan struct{})}
	ops := *filestore.RealSys()
	ops.Write = func(fd int, b []byte) (int, error) {
		if s.armed.CompareAndSwap(true, false) {
			s.entered <- struct{}{}
			<-s.release
		}
		return unix.Write(fd, b)
	}
	return s, &ops
}

// stall starts flush in a goroutine and returns once its write is stalled
// (holding the file's lock), and a func that releases it and waits.
func (s *stallOps) stall(t *testing.T, flush func() Result) (release func()) {
	s.armed.Store(true)
	res := make(chan Result)
	go func() { res <- flush() }()
	<-s.entered
	return func() {
		s.release <- struct{}{}
		if r := <-res; r != OK {
			t.Errorf("stalled flush = %v", r)
		}
	}
}

// 5. rotate_period with an injected clock: boundaries crossed while a
// flush is stalled (and the maintenance tick cannot take the busy file)
// still rotate at the next write; lines of two periods never share a file;
// one rotation per period that had lines, none for periods without.
func TestRotatePeriodInjectedClock(t *testing.T) {
	t.Parallel()
	const period = 60
	t0 := time.Unix(1800000000, 0) // a multiple of 60
	clk := newFakeClock(t0.Add(10 * time.Second))
	st, ops := newStallOps()
	proc, p := usePool(t, clk, ops)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, proc, "path", path, "rotate_period", strconv.Itoa(period), "suffix", "-%H%M%S", "idle_timeout", "0")
	name := func(sec int) string { return "ev.log-" + t0.Add(time.Duration(sec)*time.Second).UTC().Format("150405") }
	before := rotationsTotal(t, proc, filestore.ReasonPeriod)

	mustFlush(t, in, evRecords("A", 0, 5), "t") // period 0, opened at +10s
	// B stalls in write(2) holding the file; the clock crosses into period 1.
	release := st.stall(t, func() Result { return in.Flush(evRecords("B", 0, 5), "t") })
	clk.Set(t0.Add(70 * time.Second))
	p.Tick() // the file is busy: the tick skips it
	release()
	mustFlush(t, in, evRecords("C", 0, 5), "t") // rotates: period 1, opened at +70s

	// D stalls in period 1 while the clock crosses two boundaries.
	release = st.stall(t, func() Result { return in.Flush(evRecords("D", 0, 5), "t") })
	clk.Set(t0.Add(190 * time.Second))
	p.Tick()
	release()
	mustFlush(t, in, evRecords("E", 0, 5), "t") // one rotation: period 3, opened at +190s

	// The period ends with no write: the tick closes the file.
	clk.Set(t0.Add(250 * time.Second))
	p.Tick()
	if p.OpenCount() != 0 || in.Status()[0].Open {
		t.Errorf("the tick left the file of an ended period open (%d open)", p.OpenCount())
	}
	clk.Set(t0.Add(251 * time.Second))
	mustFlush(t, in, evRecords("G", 0, 5), "t") // period 4, opened at +251s
	clk.Set(t0.Add(299 * time.Second))
	mustFlush(t, in, evRecords("H", 0, 5), "t") // same period, same file

	want := map[string]string{
		name(10):  evLines("A", 0, 5) + evLines("B", 0, 5),
		name(70):  evLines("C", 0, 5) + evLines("D", 0, 5),
		name(190): evLines("E", 0, 5),
		name(251): evLines("G", 0, 5) + evLines("H", 0, 5),
	}
	files := dirFiles(t, dir)
	if len(files) != len(want) {
		t.Errorf("files %q, want the 4 of %v", files, want)
	}
	for n, w := range want {
		if got := fbtest.ReadText(t, filepath.Join(dir, n)); got != w {
			t.Errorf("%s = %q, want %q", n, got, w)
		}
	}
	if got := rotationsTotal(t, proc, filestore.ReasonPeriod) - before; got != 3 {
		t.Errorf("%v period rotations, want 3", got)
	}
	if s := in.Status()[0]; s.LastReason != filestore.ReasonPeriod || !s.LastRotation.Equal(t0.Add(250*time.Second)) {
		t.Errorf("status %+v", s)
	}
}

// rotate_period: an existing file last written in an earlier period is not
// appended to by a normal open (after idle_timeout, a restart…); one
// written in this period is.
func TestRotatePeriodExistingFile(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1800000000, 0)
	clk := newFakeClock(t0.Add(30 * time.Second))
	proc, p := usePool(t, clk, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, t0.Add(-time.Second), t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	in := fsInstance(t, proc, "path", path, "rotate_period", "60", "idle_timeout", "1s")
	mustFlush(t, in, evRecords("A", 0, 2), "t")
	// The old period's file is set aside, not appended to.
	wantSeries(t, dir, "ev.log", "old\n", evLines("A", 0, 2))
	// Idle close, then a write in the same period appends to the path.
	clk.Add(2 * time.Second)
	p.Tick()
	if p.OpenCount() != 0 {
		t.Fatal("idle file not closed")
	}
	if err := os.Chtimes(path, t0.Add(31*time.Second), t0.Add(31*time.Second)); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, in, evRecords("A", 2, 2), "t")
	wantSeries(t, dir, "ev.log", "old\n", evLines("A", 0, 4))
}

// 6. header: once at the top of every new file, after every rotation too,
// never inside a file that already had content.
func TestHeader(t *testing.T) {
	t.Parallel()
	proc, _ := usePool(t, newFakeClock(time.Unix(1800000000, 0)), nil)
	t.Run("auto with rotations", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ev.log")
		in := fsInstance(t, proc, "path", path, "header", "auto", "params", "n", "rotate_count", "3")
		mustFlush(t, in, evRecords("E", 0, 4), "t")
		mustFlush(t, in, evRecords("E", 4, 4), "t")
		wantSeries(t, dir, "ev.log", "event,n\n"+evLines("E", 0, 3), "event,n\n"+evLines("E", 3, 3), "event,n\n"+evLines("E", 6, 2))
	})
	t.Run("existing content", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ev.log")
		if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		in := fsInstance(t, proc, "path", path, "header", "# my header")
		mustFlush(t, in, evRecords("E", 0, 1), "t")
		if err := in.Rotate(path); err != nil { // reopen the same file
			t.Fatal(err)
		}
		mustFlush(t, in, evRecords("E", 1, 1), "t")
		if got, want := fbtest.ReadText(t, path), "before\n"+evLines("E", 0, 2); got != want {
			t.Errorf("%q, want %q", got, want)
		}
	})
	t.Run("literal on empty and new files", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ev.log")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		in := fsInstance(t, proc, "path", path, "header", "# my header")
		mustFlush(t, in, evRecords("E", 0, 1), "t")
		if err := os.Rename(path, path+".old"); err != nil {
			t.Fatal(err)
		}
		if err := in.Rotate(path); err != nil {
			t.Fatal(err)
		}
		mustFlush(t, in, evRecords("E", 1, 2), "t")
		if got, want := fbtest.ReadText(t, path+".old"), "# my header\n"+evLines("E", 0, 1); got != want {
			t.Errorf("%q, want %q", got, want)
		}
		if got, want := fbtest.ReadText(t, path), "# my header\n"+evLines("E", 1, 2); got != want {
			t.Errorf("%q, want %q", got, want)
		}
	})
}

// 7. file_permissions: exactly that mode whatever the umask; an existing
// file keeps its own.
func TestFilePermissions(t *testing.T) {
	proc := newProc(t)
	for _, umask := range []int{0o022, 0o077} {
		for _, tc := range []struct {
			perm string
			mode os.FileMode
		}{{"644", 0o644}, {"0640", 0o640}, {"600", 0o600}, {"666", 0o666}} {
			t.Run(fmt.Sprintf("umask %03o perm %s", umask, tc.perm), func(t *testing.T) {
				old := syscall.Umask(umask)
				defer syscall.Umask(old)
				path := filepath.Join(t.TempDir(), "ev.log")
				in := fsInstance(t, proc, "path", path, "file_permissions", tc.perm)
				mustFlush(t, in, evRecords("E", 0, 1), "t")
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != tc.mode {
					t.Errorf("mode %04o, want %04o", fi.Mode().Perm(), tc.mode)
				}
			})
		}
	}
	t.Run("existing keeps its mode", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ev.log")
		if err := os.WriteFile(path, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o620); err != nil {
			t.Fatal(err)
		}
		in := fsInstance(t, proc, "path", path, "file_permissions", "644")
		mustFlush(t, in, evRecords("E", 0, 1), "t")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o620 {
			t.Errorf("mode %04o, want 0620 kept", fi.Mode().Perm())
		}
	})
}

// 8. max_open_sockets is each output's own: three static outputs with a
// limit of 1 each keep their three files open, and a template output with
// a limit of 2 writing five files closes only its own least recently used
// files, never another output's.
func TestMaxOpenSocketsPerOutput(t *testing.T) {
	t.Parallel()
	proc, p := usePool(t, newFakeClock(time.Unix(1800000000, 0)), nil)
	dir := t.TempDir()
	var ins [3]*Instance
	var paths [3]string
	for i := range ins {
		paths[i] = filepath.Join(dir, fmt.Sprintf("ev%d.log", i))
		ins[i] = fsInstance(t, proc, "path", paths[i], "max_open_sockets", "1", "idle_timeout", "0")
		mustFlush(t, ins[i], evRecords("S", i, 1), "t")
	}
	if n := p.OpenCount(); n != 3 {
		t.Errorf("OpenCount %d, want 3: one output's file does not count against another's", n)
	}
	tmpl := fsInstance(t, proc, "path", filepath.Join(dir, "t-$TAG.log"), "max_open_sockets", "2", "idle_timeout", "0")
	for round := 0; round < 2; round++ {
		for i := 0; i < 5; i++ {
			mustFlush(t, tmpl, evRecords("T", round, 1), fmt.Sprintf("x%d", i))
		}
	}
	if n := p.OpenCount(); n != 5 {
		t.Errorf("OpenCount %d, want 5 (3 static files, 2 of the template's)", n)
	}
	for i := range ins {
		if st := ins[i].Status()[0]; !st.Open {
			t.Errorf("%s was closed for another output's file", st.Path)
		}
		mustFlush(t, ins[i], evRecords("S", i+10, 1), "t")
	}
	open := 0
	for _, st := range tmpl.Status() {
		if st.Open {
			open++
		}
	}
	if open != 2 {
		t.Errorf("the template output has %d files open, want its limit 2", open)
	}
	for i := range ins {
		if got, w := fbtest.ReadText(t, paths[i]), evLines("S", i, 1)+evLines("S", i+10, 1); got != w {
			t.Errorf("%s = %q, want %q", paths[i], got, w)
		}
	}
	for i := 0; i < 5; i++ {
		if got, w := fbtest.ReadText(t, filepath.Join(dir, fmt.Sprintf("t-x%d.log", i))), evLines("T", 0, 2); got != w {
			t.Errorf("t-x%d.log = %q, want %q", i, got, w)
		}
	}
}

// RETRY only when every slot of the output is held by a write in progress:
// with max_open_sockets 1 and a write stalled holding its one slot, another
// file of the same output is answered Retry and writes nothing, while
// another output with the same limit writes at once; once the write ends
// the retry goes through.
func TestMaxOpenSocketsAllBusy(t *testing.T) {
	t.Parallel()
	st, ops := newStallOps()
	proc, p := usePool(t, newFakeClock(time.Unix(1800000000, 0)), ops)
	dir := t.TempDir()
	a := fsInstance(t, proc, "path", filepath.Join(dir, "$TAG.log"), "max_open_sockets", "1", "idle_timeout", "0")
	other := fsInstance(t, proc, "path", filepath.Join(dir, "other.log"), "max_open_sockets", "1", "idle_timeout", "0")
	release := st.stall(t, func() Result { return a.Flush(evRecords("A", 0, 3), "a") })
	if res := a.Flush(evRecords("B", 0, 3), "b"); res != Retry {
		t.Errorf("flush while the output's only slot is being written = %v, want Retry", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused flush created its file: %v", err)
	}
	mustFlush(t, other, evRecords("O", 0, 3), "t") // another output is never refused
	release()
	mustFlush(t, a, evRecords("B", 0, 3), "b")
	if n := p.OpenCount(); n != 2 {
		t.Errorf("OpenCount %d, want 2", n)
	}
	for name, w := range map[string]string{"a.log": evLines("A", 0, 3), "b.log": evLines("B", 0, 3), "other.log": evLines("O", 0, 3)} {
		if got := fbtest.ReadText(t, filepath.Join(dir, name)); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
}

// 9. Two instances on one path, four goroutines each: every line whole,
// none interleaved, none lost.
func TestSharedPathConcurrent(t *testing.T) {
	t.Parallel()
	proc, _ := usePool(t, newFakeClock(time.Unix(1800000000, 0)), nil)
	path := filepath.Join(t.TempDir(), "ev.log")
	const total, workers, chunk = 200000, 8, 500
	a := fsInstance(t, proc, "path", path)
	b := fsInstance(t, proc, "path", path)
	pad := strings.Repeat("q", 60)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		in := a
		if w%2 == 1 {
			in = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := fmt.Sprintf("W%d", w)
			for n := 0; n < total/workers; n += chunk {
				if res := in.Flush(evRecords(ev, n, chunk, "pad", pad), "t"); res != OK {
					t.Errorf("%s: flush = %v", ev, res)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := make([]int, workers)
	for w := range want {
		want[w] = total / workers
	}
	checkLines(t, []string{path}, want, pad)
}

// checkLines reads files whose lines are "W<w>,<n>,<pad>" and checks that
// every (w, n) for n < want[w] is there exactly once, in order for each w,
// and that nothing else is.
func checkLines(t *testing.T, paths []string, want []int, pad string) {
	t.Helper()
	workers := len(want)
	next := make([]int, workers)
	total := 0
	for _, n := range want {
		total += n
	}
	lines := 0
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			lines++
			f := strings.Split(sc.Text(), ",")
			var w, n int
			if len(f) != 3 || f[2] != pad || !strings.HasPrefix(f[0], "W") {
				t.Fatalf("%s: broken line %q", p, sc.Text())
			}
			w, err1 := strconv.Atoi(f[0][1:])
			n, err2 := strconv.Atoi(f[1])
			if err1 != nil || err2 != nil || w >= workers || n != next[w] {
				t.Fatalf("%s: line %q out of place (want W%d,%d)", p, sc.Text(), w, next[w])
			}
			next[w]++
		}
		fh.Close()
	}
	for w, n := range next {
		if n != want[w] {
			t.Errorf("W%d: %d lines, want %d", w, n, want[w])
		}
	}
	if lines != total {
		t.Errorf("%d lines, want %d", lines, total)
	}
}

// 10. reopen_check: after mv or rm with no rotate call, lines go to a new
// file at the path once the check period has passed.
func TestReopenCheck(t *testing.T) {
	t.Parallel()
	clk := newFakeClock(time.Unix(1800000000, 0))
	proc, p := usePool(t, clk, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, proc, "path", path, "reopen_check", "2s", "idle_timeout", "0")
	before := rotationsTotal(t, proc, filestore.ReasonReopenCheck)

	mustFlush(t, in, evRecords("A", 0, 1), "t")
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, in, evRecords("A", 1, 1), "t") // within the period: the moved file
	clk.Add(2 * time.Second)
	// The check that first sees the move waits a second for the rotate
	// call logrotate makes right after its mv.
	mustFlush(t, in, evRecords("A", 2, 1), "t")
	if in.Status()[0].Moved {
		t.Error("moved reported before the grace ended")
	}
	clk.Add(time.Second)
	mustFlush(t, in, evRecords("A", 3, 1), "t") // checked at the write: the path again
	if got, want := fbtest.ReadText(t, path+".moved"), evLines("A", 0, 3); got != want {
		t.Errorf("moved file %q, want %q", got, want)
	}
	if got, want := fbtest.ReadText(t, path), evLines("A", 3, 1); got != want {
		t.Errorf("new file %q, want %q", got, want)
	}
	if !in.Status()[0].Moved {
		t.Error("status does not report the file as moved")
	}

	// rm: the maintenance tick notices without a write.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	p.Tick()
	if !in.Status()[0].Open {
		t.Error("closed before the check period passed")
	}
	clk.Add(time.Second)
	p.Tick() // sees it gone
	if !in.Status()[0].Open {
		t.Error("closed before the grace passed")
	}
	clk.Add(time.Second)
	p.Tick()
	if s := in.Status()[0]; s.Open || s.LastReason != filestore.ReasonReopenCheck {
		t.Errorf("after rm and a check period: %+v", s)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the check created the file: %v", err)
	}
	mustFlush(t, in, evRecords("A", 4, 1), "t")
	if got, want := fbtest.ReadText(t, path), evLines("A", 4, 1); got != want {
		t.Errorf("recreated file %q, want %q", got, want)
	}
	// A rotate call clears "moved".
	if err := in.Rotate(path); err != nil || in.Status()[0].Moved {
		t.Errorf("after a rotate call: %v, %+v", err, in.Status()[0])
	}
	mustFlush(t, in, evRecords("A", 5, 1), "t")
	// An unchanged file is kept.
	clk.Add(5 * time.Second)
	p.Tick()
	mustFlush(t, in, evRecords("A", 6, 1), "t")
	if got, want := fbtest.ReadText(t, path), evLines("A", 4, 3); got != want {
		t.Errorf("kept file %q, want %q", got, want)
	}
	if got := rotationsTotal(t, proc, filestore.ReasonReopenCheck) - before; got != 2 {
		t.Errorf("%v reopen_check rotations, want 2", got)
	}
}

// 11. mi rotate: closes at once, creates nothing, the next write creates
// the file; rotations during concurrent writes never split or lose a line.
func TestRotateMI(t *testing.T) {
	t.Parallel()
	proc, p := usePool(t, newFakeClock(time.Unix(1800000000, 0)), nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, proc, "path", "flatstore:"+path)
	mustFlush(t, in, evRecords("A", 0, 1), "t")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := in.Rotate(path); err != nil {
		t.Fatal(err)
	}
	if p.OpenCount() != 0 || in.Status()[0].Open {
		t.Error("file still open after the rotate")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the rotate created the file: %v", err)
	}
	if err := in.Rotate(path + ".1"); !errors.Is(err, ErrNotManaged) {
		t.Errorf("rotate of an unmanaged path: %v", err)
	}
	mustFlush(t, in, evRecords("A", 1, 1), "t")
	if got := fbtest.ReadText(t, path); got != evLines("A", 1, 1) {
		t.Errorf("%q", got)
	}
	if s := in.Status()[0]; s.LastReason != filestore.ReasonMI {
		t.Errorf("status %+v", s)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := in.Rotate(path); err != nil {
		t.Fatal(err)
	}

	// The storm: 4 writers flush until another goroutine has moved and
	// rotated the file 100 times, each time once a write created it again.
	before := rotationsTotal(t, proc, filestore.ReasonMI)
	const workers, per, rotations = 4, 50, 100
	pad := "r"
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		for i := 0; i < rotations; i++ {
			for !exists(path) {
				time.Sleep(50 * time.Microsecond)
			}
			if err := os.Rename(path, fmt.Sprintf("%s.s%03d", path, i)); err != nil {
				t.Error(err)
			}
			if err := in.Rotate(path); err != nil {
				t.Error(err)
			}
		}
	}()
	written := make([]int, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := fmt.Sprintf("W%d", w)
			for n := 0; ; n += per {
				select {
				case <-rotated:
					return
				default:
				}
				if res := in.Flush(evRecords(ev, n, per, "pad", pad), "t"); res != OK {
					t.Errorf("%s: flush = %v", ev, res)
					return
				}
				written[w] = n + per
				time.Sleep(100 * time.Microsecond) // let the rotator in
			}
		}()
	}
	wg.Wait()
	if n := rotationsTotal(t, proc, filestore.ReasonMI) - before; n != rotations {
		t.Errorf("%v rotations during the writes, want %d", n, rotations)
	}
	var paths []string
	for _, f := range dirFiles(t, dir) {
		if f != "ev.log.1" {
			paths = append(paths, filepath.Join(dir, f))
		}
	}
	// Files in the order they were written: moved ones by number, then the path.
	sort.Slice(paths, func(i, j int) bool {
		if paths[i] == path || paths[j] == path {
			return paths[j] == path && paths[i] != path
		}
		return paths[i] < paths[j]
	})
	checkLines(t, paths, written, pad)
	t.Logf("%d files, %v lines per writer", len(paths), written)
}

// 12. idle_timeout closes files and frees their slots; the next write
// opens the file again and appends.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	t.Run("injected clock", func(t *testing.T) {
		clk := newFakeClock(time.Unix(1800000000, 0))
		proc, p := usePool(t, clk, nil)
		dir := t.TempDir()
		in := fsInstance(t, proc, "path", filepath.Join(dir, "$TAG.log"), "idle_timeout", "200ms")
		mustFlush(t, in, evRecords("A", 0, 1), "a")
		mustFlush(t, in, evRecords("B", 0, 1), "b")
		if n := p.OpenCount(); n != 2 {
			t.Fatalf("OpenCount %d, want 2", n)
		}
		clk.Add(150 * time.Millisecond)
		mustFlush(t, in, evRecords("A", 1, 1), "a")
		clk.Add(100 * time.Millisecond)
		p.Tick() // b idle 250ms, a 100ms
		if n := p.OpenCount(); n != 1 {
			t.Errorf("OpenCount %d, want 1", n)
		}
		if n := fdsUnder(dir); n != 1 {
			t.Errorf("%d descriptors open, want 1", n)
		}
		clk.Add(100 * time.Millisecond)
		p.Tick()
		if n := p.OpenCount(); n != 0 {
			t.Errorf("OpenCount %d, want 0", n)
		}
		mustFlush(t, in, evRecords("B", 1, 1), "b")
		if n := p.OpenCount(); n != 1 {
			t.Errorf("OpenCount %d after the next write, want 1", n)
		}
		if got := fbtest.ReadText(t, filepath.Join(dir, "b.log")); got != evLines("B", 0, 2) {
			t.Errorf("b.log = %q", got)
		}
	})
	// The maintenance goroutine sleeps with no timer while nothing is
	// open; each write opens the file and the journal again and wakes it,
	// and it closes both after idle_timeout, every time.
	t.Run("maintenance goroutine", func(t *testing.T) {
		proc := newProc(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "ev.log")
		in := fsInstance(t, proc, "path", path, "idle_timeout", "50ms")
		for i := 0; i < 3; i++ {
			t0 := time.Now()
			mustFlush(t, in, evRecords("A", i, 1), "t")
			// Closed already is right only when the test was held up for an
			// idle_timeout (a loaded machine).
			if !in.Status()[0].Open && time.Since(t0) < 40*time.Millisecond {
				t.Fatalf("write %d: not open after it", i)
			}
			for deadline := time.Now().Add(10 * time.Second); in.Status()[0].Open || descriptorsUnder(dir) != 0; {
				if time.Now().After(deadline) {
					t.Fatalf("write %d: the file or the journal never closed by the maintenance goroutine (%d descriptors under %s)",
						i, descriptorsUnder(dir), dir)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if got := fbtest.ReadText(t, path); got != evLines("A", 0, 3) {
			t.Errorf("%q", got)
		}
	})
}

// descriptorsUnder counts this process's descriptors on files under dir,
// the output's journal included.
func descriptorsUnder(dir string) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dir+"/") {
			n++
		}
	}
	return n
}

// The maintenance goroutine, with the real clock, rotates a file whose
// rotate_period ended without waiting for a line: it sleeps until the
// period's end, not a fixed tick.
func TestPeriodEndsWithoutWrite(t *testing.T) {
	t.Parallel()
	proc := newProc(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.log")
	in := fsInstance(t, proc, "path", path, "rotate_period", "1s", "reopen_check", "0", "idle_timeout", "0")
	mustFlush(t, in, evRecords("A", 0, 2), "t")
	for deadline := time.Now().Add(10 * time.Second); in.Status()[0].LastReason != filestore.ReasonPeriod; {
		if time.Now().After(deadline) {
			t.Fatalf("the period ended and the file was not rotated: %+v", in.Status()[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if in.Status()[0].Open {
		t.Error("open after its period's rotation")
	}
	files := dirFiles(t, dir)
	if len(files) != 1 || !strings.HasPrefix(files[0], "ev.log.") {
		t.Fatalf("files %q, want the rotated ev.log.YYYYMMDD-HHMMSS alone", files)
	}
	if got := fbtest.ReadText(t, filepath.Join(dir, files[0])); got != evLines("A", 0, 2) {
		t.Errorf("%s = %q", files[0], got)
	}
}

// The pool's memory of forgotten paths is bounded: 954 distinct template
// values with rotate_count set leave at most maxMemo memories (the bound,
// 4096 by default, set to 50 here) and no file open.
func TestMemoBounded(t *testing.T) {
	t.Parallel()
	const maxMemo = 50
	clk := newFakeClock(time.Unix(1800000000, 0))
	proc, p := usePoolEnv(t, clk, filestore.Env{MaxMemo: maxMemo})
	dir := t.TempDir()
	in := fsInstance(t, proc, "path", filepath.Join(dir, "$TAG.log"), "rotate_count", "10", "idle_timeout", "1s", "max_dynamic_files", "0")
	const tags = maxMemo + 904
	for i := 0; i < tags; i++ {
		mustFlush(t, in, evRecords("E", i, 1), "t"+strconv.Itoa(i))
		if i%500 == 0 {
			clk.Add(2 * time.Second)
			p.Tick()
		}
	}
	clk.Add(2 * time.Second)
	p.Tick()
	if n := p.MemoCount(); n > maxMemo || n < maxMemo/2 {
		t.Errorf("%d memories kept for %d paths, want at most %d", n, tags, maxMemo)
	}
	if n := p.OpenCount(); n != 0 {
		t.Errorf("%d files open after idle_timeout", n)
	}
	if n := len(dirFiles(t, dir)); n != tags {
		t.Errorf("%d files, want %d", n, tags)
	}
}

// TestRotationOptionsOfNewOutput: when an output on a template path goes
// (a reload) and a new one with other rotation settings writes that path,
// the path's memory carries on (the file it was writing) but the new
// output's settings rule: rotate_count 1 rotates at every line, whatever
// rotate_size the old output had.
func TestRotationOptionsOfNewOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "$TAG.log")
	proc := NewProcess()
	lg := logger.New("test", logger.NewWriterSink(io.Discard, logger.LevelDebug))
	start := func(key, value string) *Instance {
		cfg, err := ParseConfig(MapGetter{"path": tmpl, "control_listen": "off", key: value})
		if err != nil {
			t.Fatal(err)
		}
		in, err := NewInstance(proc, cfg, "test", lg)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	chunk := records.Records(records.Record{Time: time.Unix(1700000000, 0), Body: records.KV{"event", "E", "v", "x"}})
	old := start("rotate_size", "1m")
	if r := old.Flush(chunk, "a"); r != OK {
		t.Fatalf("Flush = %v", r)
	}
	old.Close()
	in := start("rotate_count", "1")
	defer in.Close()
	for i := 0; i < 3; i++ {
		if r := in.Flush(chunk, "a"); r != OK {
			t.Fatalf("Flush = %v", r)
		}
	}
	names, err := filepath.Glob(filepath.Join(dir, "a.log*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	// The old output's line and the new one's first share the file the
	// old one was writing; each later line has a file of its own; the next
	// file is made by the next line.
	var got []string
	for _, n := range names {
		data, _ := os.ReadFile(n)
		got = append(got, string(data))
	}
	if want := []string{"E,x\nE,x\n", "E,x\n", "E,x\n"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files %q hold %q, want %q (rotate_count 1)", names, got, want)
	}
}

// exists reports whether name exists (a link counts, even dangling).
func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}
