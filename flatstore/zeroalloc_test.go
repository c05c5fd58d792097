package flatstore_test

import (
	"os"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// sipEvent is a typical SIP event of ten fields.
var sipEvent = fbtest.KV{
	"event", "E_SIP_REPLY", "method", "INVITE", "from", "sip:alice@a.example;tag=1928301774",
	"to", "sip:bob@b.example", "call-id", "a84b4c76e66710@pc33.a.example", "cseq", 314159,
	"status", 200, "reason", "OK", "duration", 12.5, "answered", true,
}

// TestAppendLineZeroAllocs: encoding a record into a reused buffer never
// allocates, in every escape mode, with params, a time and nested values.
func TestAppendLineZeroAllocs(t *testing.T) {
	nested := append(fbtest.KV{}, sipEvent...)
	nested = append(nested, "hdrs", fbtest.KV{"via", []any{"SIP/2.0/UDP a", "SIP/2.0/UDP b"}, "max-forwards", 70, "t", time.Unix(1700000000, 5)})
	cases := []struct {
		name string
		kv   []string
		body fbtest.KV
	}{
		{"opensips", nil, sipEvent},
		{"none", []string{"escape", "none"}, sipEvent},
		{"backslash", []string{"escape", "backslash"}, sipEvent},
		{"csv", []string{"escape", "csv"}, sipEvent},
		{"escape_delimiter", []string{"escape_delimiter", ";"}, sipEvent},
		{"params", []string{"params", "call-id,status,missing,from"}, sipEvent},
		{"rfc3339_nano", []string{"time_format", "rfc3339_nano"}, sipEvent},
		{"nested json", nil, nested},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := flatstore.NewEncoder(config(t, c.kv...))
			body := fbtest.AppendKV(nil, c.body)
			tag := []byte("sip.proxy")
			var dst []byte
			allocs := testing.AllocsPerRun(200, func() {
				var err error
				dst, _, _, err = enc.AppendLine(dst[:0], t0, body, tag)
				if err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("AppendLine allocates %v times per record, want 0 (line %q)", allocs, dst)
			}
		})
	}
}

func TestTemplateRenderZeroAllocs(t *testing.T) {
	tp, err := flatstore.ParseTemplate("/var/log/$TAG[1]/$EVENT-$status-$duration-$call-id.log")
	if err != nil {
		t.Fatal(err)
	}
	body := fbtest.AppendKV(nil, sipEvent)
	var dst []byte
	allocs := testing.AllocsPerRun(200, func() {
		dst = tp.Render(dst[:0], []byte("sip.proxy"), []byte("E_SIP_REPLY"), body)
	})
	if want := "/var/log/proxy/E_SIP_REPLY-200-12.5-a84b4c76e66710@pc33.a.example.log"; string(dst) != want {
		t.Fatalf("Render = %q, want %q", dst, want)
	}
	if allocs != 0 {
		t.Errorf("Render allocates %v times, want 0", allocs)
	}
}

// TestFlushAllocsIndependentOfRecords: a flush allocates a few times per
// chunk, never per record: 1 000 and 10 000 records cost the same small
// number, for a static path and for a template.
func TestFlushAllocsIndependentOfRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few MB")
	}
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	const maxAllocs = 10
	for _, template := range []bool{false, true} {
		for _, n := range []int{1000, 10000} {
			in, path := newInstance(t)
			if template {
				// A template over the tag and event name: one file here.
				in, _ = newInstance(t, "path", t.TempDir()+"/$TAG[1]-$EVENT.log", "params", "method,status,call-id")
				path = ""
			}
			var rs []fbtest.Record
			for i := 0; i < n; i++ {
				rs = append(rs, fbtest.Record{Time: recTime, Body: sipEvent})
			}
			chunk := fbtest.Records(rs...)
			allocs := testing.AllocsPerRun(10, func() {
				if path != "" {
					if err := os.Truncate(path, 0); err != nil && !os.IsNotExist(err) {
						t.Fatal(err)
					}
				}
				if r := in.Flush(chunk, "sip.proxy"); r != flatstore.OK {
					t.Fatalf("Flush = %v", r)
				}
			})
			t.Logf("template=%v records=%d: %v allocs per flush", template, n, allocs)
			if allocs > maxAllocs {
				t.Errorf("template=%v: a flush of %d records allocates %v times, want at most %d", template, n, allocs, maxAllocs)
			}
		}
	}
}

// TestFlushSteadyZeroAllocs: once warm, a flush to the files of the flush
// before it allocates nothing at all, however few records it holds — the
// one-record chunks of a quiet pipeline included.
func TestFlushSteadyZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, template := range []bool{false, true} {
		for _, n := range []int{1, 100} {
			kv := []string{}
			if template {
				kv = []string{"path", t.TempDir() + "/$TAG[1]-$EVENT.log", "params", "method,status,call-id"}
			}
			in, _ := newInstance(t, kv...)
			var rs []fbtest.Record
			for i := 0; i < n; i++ {
				rs = append(rs, fbtest.Record{Time: recTime, Body: sipEvent})
			}
			chunk := fbtest.Records(rs...)
			for i := 0; i < 3; i++ { // warm: the pool, the file, the buffers
				in.Flush(chunk, "sip.proxy")
			}
			allocs := testing.AllocsPerRun(200, func() {
				if r := in.Flush(chunk, "sip.proxy"); r != flatstore.OK {
					t.Fatalf("Flush = %v", r)
				}
			})
			if allocs != 0 {
				t.Errorf("template=%v records=%d: a warm flush allocates %v times, want 0", template, n, allocs)
			}
		}
	}
}
