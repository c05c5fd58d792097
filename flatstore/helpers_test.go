package flatstore_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/configtest"
)

// config parses kv (key, value, key, value…) with path set to a file in a
// fresh temporary directory unless kv sets it.
func config(t testing.TB, kv ...string) *flatstore.Config { return configtest.Parse(t, kv...) }

// newInstance builds an Instance writing into a temporary directory and
// returns it with the path of its file. It is closed at the end of the test.
func newInstance(t testing.TB, kv ...string) (*flatstore.Instance, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.log")
	cfg := config(t, append([]string{"path", path}, kv...)...)
	in, err := flatstore.NewInstance(flatstore.NewProcess(), cfg, "test", logger.New("test", logger.NewWriterSink(io.Discard, logger.LevelDebug)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	return in, path
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// t0 is the record time of the tests' records.
var t0 = event.Time{Sec: 1700000000, Nsec: 123456789}
