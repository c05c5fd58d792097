package flatstore_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/records"
)

// config parses kv (key, value, key, value…) with path set to a file in a
// fresh temporary directory unless kv sets it.
func config(t testing.TB, kv ...string) *flatstore.Config {
	t.Helper()
	m := flatstore.MapGetter{"path": filepath.Join(t.TempDir(), "events.log")}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	cfg, err := flatstore.ParseConfig(m)
	if err != nil {
		t.Fatalf("ParseConfig(%v): %v", m, err)
	}
	return cfg
}

// encode returns the line the encoder writes for body with tag "tag.x".
func encode(t testing.TB, cfg *flatstore.Config, et event.Time, body records.KV) string {
	t.Helper()
	b := records.AppendKV(nil, body)
	enc := event.NewEncoder(cfg.Options)
	out, rest, _, err := enc.AppendLine(nil, et, b, []byte("tag.x"))
	if err != nil {
		t.Fatalf("AppendLine(%v): %v", body, err)
	}
	if len(rest) != 0 {
		t.Fatalf("AppendLine(%v): %d bytes left after the map", body, len(rest))
	}
	return string(out)
}

// params builds a body {"event": event, "p1": v1, "p2": v2, …}.
func params(event string, vals ...any) records.KV {
	kv := records.KV{"event", event}
	for i, v := range vals {
		kv = append(kv, "p"+itoa(i+1), v)
	}
	return kv
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

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
