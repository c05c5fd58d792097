package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// Issue 21's torture through a real Fluent Bit (FLUENT_BIT): the 100 000
// numbered records are put into the engine's filesystem storage first (tail
// with a DB, 200 files of 500 lines under 200 tags, while the only output
// is an http output to a closed port, so every chunk waits for a retry and
// stays stored); the engine is stopped. Then it runs without tail — only
// its storage backlog can bring records, so the input side cannot double
// one — with the output under test, and is killed with SIGKILL 20 times
// and SIGTERM 5 times at random moments, restarted each time on the same
// storage, b's directory on a full tmpfs for a while. At the end each
// number is counted.

// fbTorture is the shared state of one torture through Fluent Bit.
type fbTorture struct {
	root, storage, out string
	bFull              bool
}

// fbTortureLoad writes the input and puts it into the engine's storage.
func fbTortureLoad(t *testing.T) *fbTorture {
	fluentBit(t)
	ft := &fbTorture{root: t.TempDir()}
	ft.storage = filepath.Join(ft.root, "storage")
	ft.out = filepath.Join(ft.root, "out")
	inDir := filepath.Join(ft.root, "in")
	for _, d := range []string{inDir, filepath.Join(ft.out, "a"), filepath.Join(ft.out, "b"), filepath.Join(ft.out, "c")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ft.bFull = tryTmpfs(t, filepath.Join(ft.out, "b"), "8m")
	for c := 0; c < tortureRecords/torturePerChunk; c++ {
		var sb strings.Builder
		for n := c * torturePerChunk; n < (c+1)*torturePerChunk; n++ {
			fmt.Fprintf(&sb, `{"event":"E_T","f":"%s","n":%d,"pad":"%s"}`+"\n", tortureFile(n), n, torturePad)
		}
		if err := os.WriteFile(filepath.Join(inDir, fmt.Sprintf("%03d.jsonl", c)), []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`
[SERVICE]
    Flush 0.2
    Grace 1
    Log_Level info
    Parsers_File %s
    storage.path %s
    storage.sync full
[INPUT]
    Name tail
    Path %s/*.jsonl
    Tag t.*
    Read_from_Head On
    DB %s
    Parser json
    storage.type filesystem
[OUTPUT]
    Name http
    Match t.*
    Host 127.0.0.1
    Port %s
    Retry_Limit no_limits
`, parsersConf(t), ft.storage, inDir, filepath.Join(ft.root, "tail.db"), strings.Split(fbtest.FreeTCPAddr(t), ":")[1])
	r := startFluentBit(t, conf)
	// Stored: a chunk file per tag at least, and nothing grows for a second.
	deadline := time.Now().Add(60 * time.Second)
	var last int64 = -1
	for stable := 0; stable < 5; time.Sleep(200 * time.Millisecond) {
		files, size := ft.stored(t)
		if files >= tortureRecords/torturePerChunk && size == last {
			stable++
		} else {
			stable = 0
		}
		last = size
		if time.Now().After(deadline) {
			t.Fatalf("the storage holds %d chunk files (%d bytes) after 60 s; log:\n%s", files, size, tail(r.logText(), 3000))
		}
	}
	r.stop(t)
	files, size := ft.stored(t)
	t.Logf("loaded: %d chunk files, %d bytes in the engine's storage", files, size)
	return ft
}

// stored counts the chunk files in the engine's storage and their bytes.
func (ft *fbTorture) stored(t *testing.T) (int, int64) {
	m, _ := filepath.Glob(filepath.Join(ft.storage, "*", "*.flb"))
	var size int64
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil {
			size += fi.Size()
		}
	}
	return len(m), size
}

// run does the kills with the given outputs (classic config sections), then
// a last run until the storage is empty.
func (ft *fbTorture) run(t *testing.T, outputs string) {
	rng := tortureRNG(t)
	conf := fmt.Sprintf(`
[SERVICE]
    Flush 0.2
    Grace 1
    Log_Level info
    storage.path %s
    storage.sync full
    storage.backlog.mem_limit 1M
    scheduler.base 1
    scheduler.cap 2
[INPUT]
    Name dummy
    Tag idle
    Rate 1
%s`, ft.storage, outputs)
	const fullFrom, fullUntil = 4, 11
	var filler string
	start := time.Now()
	for round, sig := range tortureSignals(rng) {
		if ft.bFull && round == fullFrom {
			filler = fbtest.FillDisk(t, filepath.Join(ft.out, "b"), 16<<10)
		}
		if ft.bFull && round == fullUntil {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := ft.stored(t)
		t0 := time.Now()
		r := startFluentBit(t, conf)
		life := time.Duration(300+rng.IntN(2000)) * time.Millisecond
		firstQueued := time.Duration(-1)
		for time.Since(t0) < life {
			if firstQueued < 0 && strings.Contains(r.logText(), "queueing") {
				firstQueued = time.Since(t0)
			}
			time.Sleep(10 * time.Millisecond)
		}
		r.cmd.Process.Signal(sig)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: fluent-bit did not exit 30 s after %v", round, sig)
		}
		after, _ := ft.stored(t)
		first := "none seen before the signal"
		if firstQueued >= 0 {
			first = "first " + firstQueued.Round(time.Millisecond).String() + " after start"
		}
		t.Logf("round %2d %-10v after %v: %3d chunk(s) queued from the backlog (%s); chunk files %d → %d",
			round, sig, life, strings.Count(r.logText(), "queueing"), first, before, after)
	}
	r := startFluentBit(t, conf)
	deadline := time.Now().Add(120 * time.Second)
	for {
		if n, _ := ft.stored(t); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			n, _ := ft.stored(t)
			t.Fatalf("the storage still holds %d chunk files 120 s into the last run; log:\n%s", n, tail(r.logText(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	r.stop(t)
	t.Logf("25 rounds and the last run in %v", time.Since(start).Round(time.Millisecond))
}

// TestFluentBitTortureKill: flatstore in a real Fluent Bit, path
// out/$f/n.log over a, b and c. Each number must be there exactly once.
func TestFluentBitTortureKill(t *testing.T) {
	ft := fbTortureLoad(t)
	ft.run(t, fmt.Sprintf(`[OUTPUT]
    Name flatstore
    Match t.*
    path %s
    mkdir true
    sync flush
    control_listen off
    Retry_Limit no_limits
`, filepath.Join(ft.out, "$f", "n.log")))
	files := map[string]string{}
	for _, f := range tortureFiles {
		files[f] = filepath.Join(ft.out, f, "n.log")
	}
	ty := tortureCount(t, files, parseFlatstore)
	dups, _, missing, text := ty.report()
	t.Logf("flatstore in Fluent Bit: %s", text)
	if dups != 0 || missing != 0 || len(ty.bad) != 0 || len(ty.unterm) != 0 {
		t.Errorf("not exactly once: %s", text)
	}
}

// TestFluentBitTortureKillOutFile: the same torture on Fluent Bit's own
// out_file, for comparison: three outputs (a and c on the disk, b on the
// tmpfs), each given every record (Format template, the number alone), one
// file per tag. Its doubles and losses are reported, never failed on:
// out_file rewrites a replayed chunk whole, and answers OK on a full disk.
func TestFluentBitTortureKillOutFile(t *testing.T) {
	ft := fbTortureLoad(t)
	var outputs strings.Builder
	for _, f := range tortureFiles {
		fmt.Fprintf(&outputs, `[OUTPUT]
    Name file
    Match t.*
    Path %s
    Format template
    Template {n}
    Retry_Limit no_limits
`, filepath.Join(ft.out, f))
	}
	ft.run(t, outputs.String())
	for _, f := range tortureFiles {
		m, _ := filepath.Glob(filepath.Join(ft.out, f, "t.*"))
		files := map[string]string{}
		for _, p := range m {
			files[filepath.Base(p)] = p
		}
		ty := tortureCount(t, files, func(_, l string) (int, bool) {
			n, err := strconv.Atoi(l)
			return n, err == nil
		})
		_, _, _, text := ty.report()
		t.Logf("out_file %s (%d files; every record, want each number once): %s", f, len(files), strings.SplitN(text, "; lines per file", 2)[0])
	}
}
