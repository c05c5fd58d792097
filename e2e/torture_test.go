package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Issue 21: every line exactly once across retries, restarts and kill -9.
// The torture feeds numbered records through the plugin while the engine
// (the host with -storage, the stand-in for Fluent Bit's filesystem
// storage; torture_fb_test.go does the same through a real Fluent Bit) is
// killed and restarted on the same storage, one of the files on a full
// disk for a while; then it counts each number across the files.

const (
	tortureRecords  = 100000
	torturePerChunk = 500
	tortureKills    = 20 // SIGKILL
	tortureTerms    = 5  // SIGTERM
)

var tortureFiles = []string{"a", "b", "c"}

// torturePad makes the lines long enough that the full disk fills quickly.
var torturePad = strings.Repeat("p", 40)

// tortureFile is the file of record n.
func tortureFile(n int) string { return tortureFiles[n%len(tortureFiles)] }

// tortureChunks is the input: tortureRecords records {"event":"E_T",
// "f":a|b|c,"n":N,"pad":...}, torturePerChunk to a chunk; every chunk has
// lines for every file.
func tortureChunks() []byte {
	var frames [][]byte
	for first := 0; first < tortureRecords; first += torturePerChunk {
		var b []byte
		for n := first; n < first+torturePerChunk && n < tortureRecords; n++ {
			b = records.AppendRecord(b, records.Record{Time: time.Unix(1700000000, 0), Body: records.KV{
				"event", "E_T", "f", tortureFile(n), "n", n, "pad", torturePad}})
		}
		frames = append(frames, b)
	}
	return records.Frames(frames...)
}

// tally is what the files hold: how often each number is there, and every
// line that is not a whole line of the input in its file.
type tally struct {
	count   []int
	bad     []string // torn, misplaced or foreign lines (with their file)
	perFile map[string]int
	unterm  []string // files whose last line has no newline
}

// tortureCount reads each file (file name → path) and tallies the numbers.
// parse turns one line of a file into its number, or false.
func tortureCount(t *testing.T, files map[string]string, parse func(file, line string) (int, bool)) *tally {
	t.Helper()
	ty := &tally{count: make([]int, tortureRecords), perFile: map[string]int{}}
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		data, err := os.ReadFile(files[f])
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := fbtest.CheckLinesTerminated(data); err != nil {
			ty.unterm = append(ty.unterm, fmt.Sprintf("%s: %v", f, err))
		}
		lines, rest := fbtest.SplitLines(data)
		if rest != "" {
			ty.bad = append(ty.bad, fmt.Sprintf("%s: unterminated %q", f, rest))
		}
		for _, l := range lines {
			n, ok := parse(f, l)
			if !ok || n < 0 || n >= tortureRecords {
				ty.bad = append(ty.bad, fmt.Sprintf("%s: %q", f, l))
				continue
			}
			ty.count[n]++
			ty.perFile[f]++
		}
	}
	return ty
}

// parseFlatstore reads flatstore's line "E_T,<f>,<n>,<pad>" of file f.
func parseFlatstore(f, l string) (int, bool) {
	p := strings.Split(l, ",")
	if len(p) != 4 || p[0] != "E_T" || p[1] != f || p[3] != torturePad {
		return 0, false
	}
	n, err := strconv.Atoi(p[2])
	return n, err == nil && tortureFile(n) == f
}

// report counts the numbers there twice or more (and the extra lines) and
// those missing, and describes them with the first few of each.
func (ty *tally) report() (dups, extra, missing int, text string) {
	var firstDup, firstMiss []string
	for n, c := range ty.count {
		switch {
		case c == 0:
			missing++
			if len(firstMiss) < 10 {
				firstMiss = append(firstMiss, strconv.Itoa(n))
			}
		case c > 1:
			dups++
			extra += c - 1
			if len(firstDup) < 10 {
				firstDup = append(firstDup, fmt.Sprintf("%d×%d", n, c))
			}
		}
	}
	files := make([]string, 0, len(ty.perFile))
	for f, c := range ty.perFile {
		files = append(files, fmt.Sprintf("%s=%d", f, c))
	}
	sort.Strings(files)
	text = fmt.Sprintf("%d numbers written twice or more (%d extra lines; first: %s); %d missing (first: %s); "+
		"%d bad lines; lines per file %s", dups, extra, strings.Join(firstDup, " "), missing,
		strings.Join(firstMiss, " "), len(ty.bad), strings.Join(files, " "))
	if len(ty.bad) > 0 {
		text += fmt.Sprintf("; first bad: %q", ty.bad[:min(5, len(ty.bad))])
	}
	if len(ty.unterm) > 0 {
		text += fmt.Sprintf("; %q", ty.unterm)
	}
	return dups, extra, missing, text
}

// tortureSignals is the order of the signals: tortureKills SIGKILLs and
// tortureTerms SIGTERMs, shuffled.
func tortureSignals(rng *rand.Rand) []syscall.Signal {
	var sigs []syscall.Signal
	for i := 0; i < tortureKills; i++ {
		sigs = append(sigs, syscall.SIGKILL)
	}
	for i := 0; i < tortureTerms; i++ {
		sigs = append(sigs, syscall.SIGTERM)
	}
	rng.Shuffle(len(sigs), func(i, j int) { sigs[i], sigs[j] = sigs[j], sigs[i] })
	return sigs
}

// tortureRNG is seeded from FLATSTORE_TORTURE_SEED when set (to replay a
// run), else from the clock; the seed is logged.
func tortureRNG(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FLATSTORE_TORTURE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FLATSTORE_TORTURE_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (FLATSTORE_TORTURE_SEED=%d replays the same schedule)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

var replayRE = regexp.MustCompile(`-storage \S+: (\d+) chunk\(s\) to replay, input from chunk (\d+) of (\d+)`)

// TestTortureKill: 100 000 numbered records in 200 chunks through the .so in
// the host with -storage (Fluent Bit's filesystem storage: a chunk's file
// goes only after the plugin answered OK), Retry_Limit no_limits, a template
// path over three files, b's on a small tmpfs that is full for a while. The
// host is killed with SIGKILL 20 times and SIGTERM 5 times at random moments
// and restarted each time on the same storage, then runs to the end. Each
// number must be in the files exactly once, every line whole.
//
// The input side cannot double: the host persists a chunk (and how far the
// input was read) before handing it to the plugin and never takes an input
// chunk twice; what the plugin is handed twice is only what the engine
// replays from its storage.
func TestTortureKill(t *testing.T) {
	rng := tortureRNG(t)
	root := t.TempDir()
	out := filepath.Join(root, "out")
	storage := filepath.Join(root, "storage")
	for _, f := range tortureFiles {
		if err := os.MkdirAll(filepath.Join(out, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// b's directory is a small tmpfs (root only; otherwise no disk-full phase).
	var filler string
	full := tryTmpfs(t, filepath.Join(out, "b"), "4m")
	in := fbtest.WriteFile(t, "torture.chunks", tortureChunks())
	args := []string{"-in-chunks", in, "-storage", storage, "-retry-max", "1000000", "-retry-wait-ms", "20", "-chunk-delay-us", "2000",
		"-log-level", "warn",
		"-p", "path=" + filepath.Join(out, "$f", "n.log"), "-p", "mkdir=true", "-p", "sync=flush",
		"-p", "control_listen=off"}

	sigs := tortureSignals(rng)
	const fullFrom, fullUntil = 4, 11 // b's disk is full from this round to before that one
	replayed := 0
	start := time.Now()
	for round, sig := range sigs {
		if full && round == fullFrom {
			filler = fbtest.FillDisk(t, filepath.Join(out, "b"), 16<<10)
		}
		if full && round == fullUntil {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}
		h := fbtest.StartHost(t, args...)
		time.Sleep(time.Duration(50+rng.IntN(500)) * time.Millisecond)
		if err := h.Signal(sig); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		_, stderr, code := h.Wait()
		if m := replayRE.FindStringSubmatch(stderr); m != nil {
			n, _ := strconv.Atoi(m[1])
			replayed += n
			t.Logf("round %2d %-7v exit %3d: %s chunk(s) replayed, input from %s", round, sig, code, m[1], m[2])
		} else {
			t.Logf("round %2d %-7v exit %3d before reading its storage", round, sig, code)
		}
		if strings.Contains(stderr, "panic") {
			t.Fatalf("round %d: the plugin panicked:\n%s", round, stderr)
		}
	}
	sum, stderr, code := fbtest.RunHost(t, args...)
	if code != 0 || len(sum.Instances) != 1 {
		t.Fatalf("final run: exit %d, summary %+v; stderr:\n%s", code, sum, tail(stderr, 3000))
	}
	if m := replayRE.FindStringSubmatch(stderr); m != nil {
		n, _ := strconv.Atoi(m[1])
		replayed += n
	}
	left, _ := filepath.Glob(filepath.Join(storage, "*.chunk"))
	if len(left) != 0 {
		t.Errorf("the storage still holds %d chunk file(s) after the final run", len(left))
	}
	t.Logf("%d rounds and the final run in %v; %d chunk(s) replayed from the storage in all; final run: %+v",
		len(sigs), time.Since(start).Round(time.Millisecond), replayed, sum.Instances[0])

	files := map[string]string{}
	for _, f := range tortureFiles {
		files[f] = filepath.Join(out, f, "n.log")
	}
	ty := tortureCount(t, files, parseFlatstore)
	dups, _, missing, text := ty.report()
	t.Logf("flatstore through the host: %s", text)
	if dups != 0 || missing != 0 || len(ty.bad) != 0 || len(ty.unterm) != 0 {
		t.Errorf("not exactly once: %s", text)
	}
}

// tryTmpfs mounts a tmpfs of size on dir, unmounted when the test ends, and
// reports whether it could; unlike fbtest.MountTmpfsAt it never skips.
func tryTmpfs(t *testing.T, dir, size string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Logf("not root: no tmpfs on %s, the run goes without the disk-full phase", dir)
		return false
	}
	if msg, err := osexec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Logf("no tmpfs on %s (%v: %s): the run goes without the disk-full phase", dir, err, msg)
		return false
	}
	t.Cleanup(func() { osexec.Command("umount", "-l", dir).Run() })
	return true
}
