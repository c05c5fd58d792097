package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/repo"
)

// TestFluentBitReloadShippedConfigs: each shipped configuration with
// Workers 2 (conf/fluent-bit.conf, conf/fluent-bit.yaml), hot reload on
// (-Y), 20 SIGHUP reloads while records flow in over the forward input.
// Fluent Bit 5.1.1 gives a Go output with Workers two worker pools and
// stops only one, so the second or third reload ended in SIGSEGV
// (flb_upstream_conn_timeouts); the plugin now gives it one (plugin/engine.c).
// Want: the engine alive through every reload and exiting cleanly, the
// worker threads not growing, and no line written twice (a record the
// forward input refused during a reload's pause is the sender's to resend).
func TestFluentBitReloadShippedConfigs(t *testing.T) {
	fb := fluentBit(t)
	so := fbtest.BuildPlugin(t)
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{"fluent-bit.conf", "fluent-bit.yaml"} {
		t.Run(conf, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			port := fbtest.FreeTCPAddr(t)[len("127.0.0.1:"):]
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, fb, "-e", so, "-c", filepath.Join(root, "conf", conf), "-Y")
			cmd.Dir = filepath.Join(root, "conf")
			cmd.Env = append(os.Environ(), "FLATSTORE_OUT="+out, "FLATSTORE_CONTROL=off",
				"FLATSTORE_DEMO_IN="+filepath.Join(dir, "none-*.jsonl"), "FLATSTORE_EXIT_ON_EOF=off",
				"FLATSTORE_FORWARD_LISTEN=127.0.0.1", "FLATSTORE_FORWARD_PORT="+port)
			var log fbtest.SyncBuffer
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer cmd.Process.Kill()
			addr := "127.0.0.1:" + port
			waitAccepting(t, addr)

			// The sender: batches of 200 numbered records, each batch on a
			// new connection, until told to stop; a batch the input refused
			// (a reload's pause) is not counted as sent.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			sent := 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; ; b++ {
					select {
					case <-stop:
						return
					default:
					}
					if forwardTry(addr, "reload.test", b*200, 200) {
						mu.Lock()
						sent = max(sent, b*200+200)
						mu.Unlock()
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			maxThreads := 0
			count := func(s string) int { return strings.Count(log.String(), s) }
			for i := 0; i < 20; i++ {
				time.Sleep(1200 * time.Millisecond)
				select {
				case err := <-done:
					t.Fatalf("fluent-bit exited during reload %d: %v\n%s", i, err, tail(log.String(), 3000))
				default:
				}
				// Counted between reloads: while one runs, the old
				// generation's threads end as the new one's start.
				if n := outputThreads(cmd.Process.Pid); n > maxThreads {
					maxThreads = n
				}
				// The engine picks a SIGHUP up within a second and refuses
				// one while a reload runs ("reloading in progress"): send
				// again until this reload has begun its new generation.
				for deadline := time.Now().Add(60 * time.Second); count("[reload] start everything") <= i; {
					if time.Now().After(deadline) {
						t.Fatalf("reload %d never began:\n%s", i+1, tail(log.String(), 3000))
					}
					refused := count("reloading in progress")
					if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
						t.Fatal(err)
					}
					for wait := time.Now().Add(10 * time.Second); count("[reload] start everything") <= i &&
						count("reloading in progress") == refused && time.Now().Before(wait); {
						time.Sleep(20 * time.Millisecond)
					}
				}
			}
			time.Sleep(2 * time.Second)
			if n := outputThreads(cmd.Process.Pid); n > maxThreads {
				maxThreads = n
			}
			close(stop)
			wg.Wait()
			time.Sleep(2500 * time.Millisecond) // the last flush
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("fluent-bit exited with %v after 20 reloads:\n%s", err, tail(log.String(), 3000))
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("fluent-bit did not exit:\n%s", tail(log.String(), 3000))
			}
			if strings.Contains(log.String(), "SIGSEGV") {
				t.Errorf("the engine crashed:\n%s", tail(log.String(), 3000))
			}
			if c := strings.Count(log.String(), "[reload] start everything"); c < 20 {
				t.Errorf("%d reloads logged, want 20:\n%s", c, tail(log.String(), 3000))
			}
			// Workers 2 in one output: two worker threads, not two more per reload.
			if maxThreads > 2 {
				t.Errorf("%d flatstore worker threads at once, want at most 2 (Workers 2)", maxThreads)
			}
			seen := map[int]int{}
			for _, l := range fbtest.ReadLines(t, filepath.Join(out, "events.log")) {
				f := strings.Split(l, ",")
				n, err := strconv.Atoi(f[len(f)-1])
				if err != nil || f[0] != "E_FWD" {
					t.Fatalf("bad line %q", l)
				}
				seen[n]++
			}
			doubled := 0
			for _, c := range seen {
				if c > 1 {
					doubled++
				}
			}
			mu.Lock()
			t.Logf("%s: %d records sent and acknowledged by the input's connection, %d written, %d written twice; at most %d worker threads",
				conf, sent, len(seen), doubled, maxThreads)
			mu.Unlock()
			if doubled != 0 {
				t.Errorf("%d records written twice across the reloads", doubled)
			}
			if len(seen) == 0 {
				t.Errorf("nothing written")
			}
		})
	}
}

// forwardTry sends n records {"event":"E_FWD","seq":first+i} in one
// Forward-mode message on a new connection and reports whether it went
// out whole.
func forwardTry(addr, tag string, first, n int) bool {
	c, err := dialForward(addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Write(forwardMessage(tag, first, n))
	return err == nil
}

// outputThreads counts the process's threads named flb-out-*.
func outputThreads(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/comm", pid, e.Name()))
		if err == nil && strings.HasPrefix(string(b), "flb-out-flatsto") {
			n++
		}
	}
	return n
}
