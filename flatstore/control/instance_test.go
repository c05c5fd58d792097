package control

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// TestWithCoreInstance drives the endpoint with the core's own Instance: a
// line written, the file moved away as logrotate does, an MI rotate, the
// next line lands in a new file.
func TestWithCoreInstance(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "events.log")
	cfg, err := flatstore.ParseConfig(flatstore.MapGetter{"path": "flatstore:" + p, "control_listen": "off"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &fbtest.SyncBuffer{}
	in, err := flatstore.NewInstance(flatstore.NewProcess(), cfg, "flatstore.ctl", logger.New("flatstore.ctl", logger.NewWriterSink(logs, logger.LevelDebug)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	h, err := testRegistry().Acquire(flatstore.ParseListen("127.0.0.1:0"), in, Options{Log: logger.New("flatstore.ctl", logger.NewWriterSink(logs, logger.LevelDebug))})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()

	flush := func(v string) {
		t.Helper()
		// [time, {"event": "E_TEST", "v": v}] in the old record form
		b := msgp.AppendArrayHeader(nil, 2)
		b = msgp.AppendInt64(b, 1700000000)
		b = msgp.AppendMapHeader(b, 2)
		b = msgp.AppendString(b, "event")
		b = msgp.AppendString(b, "E_TEST")
		b = msgp.AppendString(b, "v")
		b = msgp.AppendString(b, v)
		if res := in.Flush(b, "tag"); res != flatstore.OK {
			t.Fatalf("flush: %v\n%s", res, logs)
		}
	}
	flush("one")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	flush("two") // still into the renamed file
	for _, c := range []struct{ path, want string }{
		{"/nope.log", `{"jsonrpc":"2.0","error":{"code":400,"message":"File not found"},"id":1}`},
		{dir + "//events.log", `{"jsonrpc":"2.0","error":{"code":400,"message":"File not found"},"id":1}`},
		{p, `{"jsonrpc":"2.0","result":"OK","id":1}`},
	} {
		r := mi(t, h, `{"jsonrpc":"2.0","method":"evi_flat_rotate","params":{"path_to_file":`+q(c.path)+`},"id":1}`)
		if r.body != c.want {
			t.Fatalf("rotate %s:\n got %s\nwant %s", c.path, r.body, c.want)
		}
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the rotate created %s: %v", p, err)
	}
	flush("three")
	if got, _ := os.ReadFile(p + ".1"); string(got) != "E_TEST,one\nE_TEST,two\n" {
		t.Fatalf("renamed file: %q", got)
	}
	if got, _ := os.ReadFile(p); string(got) != "E_TEST,three\n" {
		t.Fatalf("new file: %q", got)
	}
	r := do(t, h, "GET", "/status", "", nil)
	if !strings.Contains(r.body, q(p)) || !strings.Contains(r.body, `"last_rotation_reason":"mi"`) {
		t.Fatalf("status: %s", r.body)
	}
}
