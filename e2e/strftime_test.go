package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Time in paths through the real plugin .so in the C host: a stream that
// crosses midnight puts each line in the file of its record's day.

// midnightStream is the input of TestStrftimeMidnight: first `cross`
// records whose times run from 23:59:58 UTC on 6 December 2026 to 00:00:02
// on the 7th, their events E_A, E_B, E_C in turn, in chunks of `per`; then
// `tail` records of E_A alone at 00:00:03 and after, in chunks of
// `tailPer`, so that one day's file is written on for a while after every
// other file is done. Record i is {"event": E_x, "n": i}; times maps each
// i to its record time.
func midnightStream(t *testing.T, cross, per, tail, tailPer int) (in string, times []time.Time, events []string) {
	start := time.Date(2026, 12, 6, 23, 59, 58, 0, time.UTC)
	var frames [][]byte
	var chunk []byte
	n := 0
	add := func(ev string, at time.Time, size int) {
		chunk = append(chunk, records.AppendRecord(nil, records.Record{Time: at, Body: records.KV{"event", ev, "n", n}})...)
		times, events = append(times, at), append(events, ev)
		n++
		if n%size == 0 {
			frames, chunk = append(frames, chunk), nil
		}
	}
	for i := 0; i < cross; i++ {
		add([]string{"E_A", "E_B", "E_C"}[i%3], start.Add(time.Duration(i)*4*time.Second/time.Duration(cross)), per)
	}
	for i := 0; i < tail; i++ {
		add("E_A", start.Add(5*time.Second+time.Duration(i)*time.Millisecond), tailPer)
	}
	if chunk != nil {
		frames = append(frames, chunk)
	}
	return fbtest.WriteFile(t, "midnight.chunks", records.Frames(frames...)), times, events
}

// treeFiles lists every file beneath root but flatstore's own state
// (.flatstore/), as paths relative to root.
func treeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".flatstore" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// lineNumbers reads the whole lines of a file written from midnightStream
// ("E_x,n") and returns each n; it fails on a line not of ev or a partial
// line.
func lineNumbers(t *testing.T, path, ev string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fbtest.AssertLinesTerminated(t, data)
	lines, _ := fbtest.SplitLines(data)
	var out []int
	for _, l := range lines {
		v, ok := strings.CutPrefix(l, ev+",")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			t.Fatalf("%s: line %q, want %s,N", path, l, ev)
		}
		out = append(out, n)
	}
	return out
}

// TestStrftimeMidnight: 6 000 numbered records whose times cross midnight
// UTC, spread over three events, through two flush threads with
// max_open_sockets 2 (so the six files of the two days are closed and
// opened again all the time): every line lands once, whole, in the file of
// its record's own day — events/2026-12-06/E_B.log holds exactly the E_B
// records before midnight — and nothing is written outside the static
// directory. The same chunks go to a second output with time_zone
// Asia/Tokyo, where they all fall on the 7th. While the last day's E_A file
// is being written the test moves it and rotates it by its rendered name
// through the control endpoint: the lines before the rotate are in the
// moved file, the rest in a new one, none lost or doubled; a day never
// written is File not found.
func TestStrftimeMidnight(t *testing.T) {
	const cross, per, tail, tailPer = 6000, 100, 3000, 10
	dir := t.TempDir()
	in, times, events := midnightStream(t, cross, per, tail, tailPer)
	addr := fbtest.FreeTCPAddr(t)
	utc := filepath.Join(dir, "events")
	tokyo := filepath.Join(dir, "tokyo")
	h := fbtest.StartHost(t, "-in-chunks", in, "-workers", "2", "-chunk-delay-us", "10000", "-hold-ms", holdMs,
		"-p", "path="+utc+"/%Y-%m-%d/$EVENT.log", "-p", "mkdir=true", "-p", "max_open_sockets=2",
		"-p", "control_listen="+addr,
		"-next", "-p", "path="+tokyo+"/%F/$EVENT.log", "-p", "mkdir=true", "-p", "max_open_sockets=2",
		"-p", "time_zone=Asia/Tokyo", "-p", "control_listen=off")
	done := hostDone(h)
	waitHealthy(t, h, done, addr)
	ctl := ctlClient(t, addr, "")

	// Wait for the tail (records past cross) in the 7th's E_A file, then
	// move it aside and rotate it by its rendered name.
	day2 := filepath.Join(utc, "2026-12-07", "E_A.log")
	moved := day2 + ".1"
	var rotErr error
	for deadline := time.Now().Add(20 * time.Second); ; {
		data, _ := os.ReadFile(day2)
		if strings.Contains(string(data), ","+strconv.Itoa(cross+tailPer)+"\n") {
			break
		}
		select {
		case <-done:
			rotErr = errors.New("the host ended before the tail was written")
		case <-time.After(time.Millisecond):
		}
		if rotErr != nil || time.Now().After(deadline) {
			break
		}
	}
	if rotErr == nil {
		if rotErr = os.Rename(day2, moved); rotErr == nil {
			rotErr = ctl.Rotate(day2)
		}
	}
	// A day this output never wrote is not managed, by name as by MI.
	never := filepath.Join(utc, "2026-12-08", "E_A.log")
	code, body, err := ctl.Do(http.MethodPost, "/rotate?path="+url.QueryEscape(never), nil)
	if err != nil || code != http.StatusNotFound || strings.TrimSpace(string(body)) != "File not found" {
		t.Errorf("POST /rotate of %s: %d %q %v, want 404 File not found", never, code, body, err)
	}
	if err := ctl.Rotate(never); !errors.Is(err, flatstore.ErrNotManaged) {
		t.Errorf("MI rotate of %s: %v, want File not found", never, err)
	}
	h.Release()
	sum, stderr, code2 := h.Wait()
	hostOK(t, sum, stderr, code2, cross+tail)
	if rotErr != nil {
		t.Fatalf("rotate of %s: %v", day2, rotErr)
	}

	// Nothing outside the two static directories, and in each only the
	// files of the records' days.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 2 {
		t.Errorf("%s holds %v (%v), want only events/ and tokyo/", dir, entries, err)
	}
	wantUTC := []string{"2026-12-06/E_A.log", "2026-12-06/E_B.log", "2026-12-06/E_C.log",
		"2026-12-07/E_A.log", "2026-12-07/E_A.log.1", "2026-12-07/E_B.log", "2026-12-07/E_C.log"}
	if got := treeFiles(t, utc); strings.Join(got, " ") != strings.Join(wantUTC, " ") {
		t.Errorf("events/ holds %v, want %v", got, wantUTC)
	}
	wantTokyo := []string{"2026-12-07/E_A.log", "2026-12-07/E_B.log", "2026-12-07/E_C.log"}
	if got := treeFiles(t, tokyo); strings.Join(got, " ") != strings.Join(wantTokyo, " ") {
		t.Errorf("tokyo/ holds %v, want %v", got, wantTokyo)
	}

	// Every record once, in the file of its day (the 7th's E_A split by
	// the rotate), and each file holding exactly its day's records.
	check := func(root string, zone *time.Location, files map[string][]string) {
		seen := make([]int, len(times))
		for name, paths := range files {
			ev := strings.TrimSuffix(filepath.Base(name), ".log")
			day := filepath.Dir(name)
			for _, p := range paths {
				nums := lineNumbers(t, filepath.Join(root, p), ev)
				if len(nums) == 0 {
					t.Errorf("%s/%s is empty", filepath.Base(root), p)
				}
				for _, n := range nums {
					seen[n]++
					if got := times[n].In(zone).Format("2006-01-02"); got != day || events[n] != ev {
						t.Errorf("record %d (%s, %s on %s) is in %s/%s", n, events[n], times[n].In(zone).Format(time.RFC3339Nano), got, filepath.Base(root), p)
					}
				}
			}
		}
		for n, c := range seen {
			if c != 1 {
				t.Errorf("%s: record %d (%s at %s) written %d times, want once", filepath.Base(root), n, events[n], times[n].Format(time.RFC3339Nano), c)
			}
		}
	}
	check(utc, time.UTC, map[string][]string{
		"2026-12-06/E_A.log": {"2026-12-06/E_A.log"},
		"2026-12-06/E_B.log": {"2026-12-06/E_B.log"},
		"2026-12-06/E_C.log": {"2026-12-06/E_C.log"},
		"2026-12-07/E_A.log": {"2026-12-07/E_A.log", "2026-12-07/E_A.log.1"},
		"2026-12-07/E_B.log": {"2026-12-07/E_B.log"},
		"2026-12-07/E_C.log": {"2026-12-07/E_C.log"},
	})
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	check(tokyo, loc, map[string][]string{
		"2026-12-07/E_A.log": {"2026-12-07/E_A.log"},
		"2026-12-07/E_B.log": {"2026-12-07/E_B.log"},
		"2026-12-07/E_C.log": {"2026-12-07/E_C.log"},
	})
	old, cur := lineNumbers(t, moved, "E_A"), lineNumbers(t, day2, "E_A")
	t.Logf("7th's E_A: %d lines before the rotate, %d after; host wall %.2fs, %d retries", len(old), len(cur), sum.WallS, sum.Instances[0].Retries)
}

// TestFluentBitStrftimeMidnight: the same through a real Fluent Bit: 6 000
// records over the forward protocol whose times run across midnight UTC
// (the engine keeps each record's own time), two workers, max_open_sockets
// 2: each line once, whole, in its day's file, nothing outside the static
// directory.
func TestFluentBitStrftimeMidnight(t *testing.T) {
	const n = 6000
	dir := t.TempDir()
	port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
	utc := filepath.Join(dir, "events")
	r := startFluentBit(t, fmt.Sprintf(`
[SERVICE]
    Flush 1
    Grace 1
[INPUT]
    Name forward
    Listen 127.0.0.1
    Port %s
[OUTPUT]
    Name flatstore
    Match *
    Workers 2
    path %s/%%Y-%%m-%%d/$EVENT.log
    mkdir true
    max_open_sockets 2
    control_listen off
`, port, utc))
	waitAccepting(t, "127.0.0.1:"+port)
	start := time.Date(2026, 12, 6, 23, 59, 58, 0, time.UTC)
	var msg []byte
	var times []time.Time
	var events []string
	for i := 0; i < n; i += 500 {
		msg = msgp.AppendArrayHeader(msg, 2)
		msg = msgp.AppendString(msg, "fwd.midnight")
		msg = msgp.AppendArrayHeader(msg, 500)
		for j := i; j < i+500; j++ {
			at := start.Add(time.Duration(j) * 4 * time.Second / n)
			ev := []string{"E_A", "E_B", "E_C"}[j%3]
			times, events = append(times, at), append(events, ev)
			msg = msgp.AppendArrayHeader(msg, 2)
			msg = records.AppendEventTime(msg, uint32(at.Unix()), uint32(at.Nanosecond()))
			msg = records.AppendKV(msg, records.KV{"event", ev, "n", j})
		}
	}
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	want := []string{"2026-12-06/E_A.log", "2026-12-06/E_B.log", "2026-12-06/E_C.log",
		"2026-12-07/E_A.log", "2026-12-07/E_B.log", "2026-12-07/E_C.log"}
	total := func() int {
		c := 0
		for _, f := range want {
			b, _ := os.ReadFile(filepath.Join(utc, f))
			c += strings.Count(string(b), "\n")
		}
		return c
	}
	for deadline := time.Now().Add(60 * time.Second); total() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d lines after 60 s, want %d; log:\n%s", total(), n, tail(r.logText(), 3000))
		}
	}
	r.stop(t)
	if got := treeFiles(t, dir); strings.Join(got, " ") != strings.Join(prefixed("events/", want), " ") {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
	seen := make([]int, n)
	for _, f := range want {
		ev := strings.TrimSuffix(filepath.Base(f), ".log")
		for _, k := range lineNumbers(t, filepath.Join(utc, f), ev) {
			seen[k]++
			if day := times[k].Format("2006-01-02"); day != filepath.Dir(f) || events[k] != ev {
				t.Errorf("record %d (%s at %s) is in %s", k, events[k], times[k].Format(time.RFC3339Nano), f)
			}
		}
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("record %d written %d times, want once", k, c)
		}
	}
}

func prefixed(p string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return out
}
