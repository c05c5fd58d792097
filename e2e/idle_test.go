package e2e

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// An idle plugin wakes the Go runtime only when it has something to do
// (docs/performance.md, "The Go runtime outside the flush"): once its
// lines are written, the host holds the loaded .so and does nothing, and
// the process's threads are counted in and out of sleep (their context
// switches, from /proc) over idleWindow. The maintenance goroutine sleeps
// until its next deadline — here none within the window — so the threads
// stay asleep; a fixed tick would wake them some 20 times a second (its
// timer and the runtime's sysmon).
func TestIdleProcessStaysAsleep(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skipf("no /proc/self/task: %v", err)
	}
	for _, c := range []struct {
		name  string
		props []string
	}{
		// idle_timeout closes the file and the journal: nothing is open.
		{"nothing open", []string{"idle_timeout=200ms", "control_listen=off"}},
		// The defaults: the file and the journal stay open for 60 s, and
		// reopen_check looks at the path every 5 s.
		{"files open", []string{"control_listen=off"}},
		// The control endpoint's goroutines wait in accept.
		{"control endpoint", []string{"control_listen=unix:" + filepath.Join(t.TempDir(), "c.sock")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "idle.log")
			args := []string{"-in", seqInput(t, lifeRecords), "-hold-ms", holdMs, "-p", "path=" + out}
			for _, p := range c.props {
				args = append(args, "-p", p)
			}
			h := fbtest.StartHost(t, args...)
			done := hostDone(h)
			waitLines(t, h, done, out, lifeRecords)
			// The writes' own aftermath (the runtime's threads settling,
			// idle_timeout's close) is over within this.
			time.Sleep(time.Second)
			before := ctxSwitches(t, h.Pid())
			time.Sleep(idleWindow)
			after := ctxSwitches(t, h.Pid())
			t.Logf("%d wake-ups in %v", after-before, idleWindow)
			if n := after - before; n > maxIdleSwitches {
				t.Errorf("the idle host's threads woke %d times in %v, want at most %d", n, idleWindow, maxIdleSwitches)
			}
			h.Release()
			sum, stderr, code := h.Wait()
			hostOK(t, sum, stderr, code, lifeRecords)
			if got := lineCount(out); got != lifeRecords {
				t.Errorf("%s has %d lines, want %d", out, got, lifeRecords)
			}
		})
	}
}

const (
	idleWindow = 2 * time.Second
	// A deadline in the window (none is due in these cases) and the
	// runtime's own odd wake would fit; a 100 ms tick makes some 40.
	maxIdleSwitches = 6
)

// ctxSwitches is the sum of the context switches of process pid's threads.
func ctxSwitches(t *testing.T, pid int) int64 {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var n int64
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // the thread ended
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				c, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += c
			}
		}
	}
	return n
}
