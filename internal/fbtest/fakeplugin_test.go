package fbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The fake plugin is testdata/fake_plugin.c: a tiny output plugin in C that speaks
// the Go proxy ABI and logs what the host does (its header comment lists the log
// lines and the properties it reads).

// fakeSrc is resolved when the test binary starts, before any test changes
// directory.
var fakeSrc, fakeSrcErr = filepath.Abs(filepath.Join("testdata", "fake_plugin.c"))

var (
	fakeMu   sync.Mutex
	fakeDir  string
	fakeSOs  = map[string]string{}
	fakeOnce sync.Once
)

// fakeSO compiles the fake plugin with the given -D flags (once per flag set).
func fakeSO(t *testing.T, defines ...string) string {
	t.Helper()
	fakeMu.Lock()
	defer fakeMu.Unlock()
	key := strings.Join(defines, " ")
	if p, ok := fakeSOs[key]; ok {
		return p
	}
	fakeOnce.Do(func() {
		d, err := buildDir()
		if err != nil {
			t.Fatal(err)
		}
		fakeDir = d
	})
	if fakeSrcErr != nil {
		t.Fatal(fakeSrcErr)
	}
	src := fakeSrc
	out := filepath.Join(fakeDir, "fake"+strconv.Itoa(len(fakeSOs))+".so")
	args := []string{"-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out, src, "-lpthread"}
	for _, d := range defines {
		args = append(args, "-D"+d)
	}
	if msg, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
		t.Fatalf("cc fake plugin: %v\n%s", err, msg)
	}
	fakeSOs[key] = out
	return out
}

// fakeLog is the parsed log of one fake-plugin run.
type fakeLog struct {
	lines []string
}

func readFakeLog(t *testing.T, path string) fakeLog {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	AssertLinesTerminated(t, data)
	lines, _ := SplitLines(data)
	return fakeLog{lines: lines}
}

// with returns the lines that start with prefix.
func (l fakeLog) with(prefix string) []string {
	var out []string
	for _, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// index returns the position of the first line starting with prefix, or -1.
func (l fakeLog) index(prefix string) int {
	for i, s := range l.lines {
		if strings.HasPrefix(s, prefix) {
			return i
		}
	}
	return -1
}

// fields parses "word k=v k=v" into a map.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line)[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}
