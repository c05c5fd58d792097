package flatstore_test

import (
	"os"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/records"
)

// sipEvent is a typical SIP event of ten fields.
var sipEvent = records.SIPEvent()

// templates are the paths the allocation tests write, beneath a temporary
// directory: "" is a static path.
var templates = []string{"", "/$TAG[1]-$EVENT.log", "/%Y-%m-%d/$TAG[1]-$EVENT-%H.log"}

// TestFlushAllocsIndependentOfRecords: a flush allocates a few times per
// chunk, never per record: 1 000 and 10 000 records cost the same small
// number, for a static path, a template and a template with strftime
// conversions.
func TestFlushAllocsIndependentOfRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few MB")
	}
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	const maxAllocs = 10
	for _, template := range templates {
		for _, n := range []int{1000, 10000} {
			in, path := newInstance(t)
			if template != "" {
				// A template over the tag and event name (and the time):
				// one file here.
				in, _ = newInstance(t, "path", t.TempDir()+template, "params", "method,status,call-id", "mkdir", "true")
				path = ""
			}
			var rs []records.Record
			for i := 0; i < n; i++ {
				rs = append(rs, records.Record{Time: recTime, Body: sipEvent})
			}
			chunk := records.Records(rs...)
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
			t.Logf("template=%q records=%d: %v allocs per flush", template, n, allocs)
			if allocs > maxAllocs {
				t.Errorf("template=%q: a flush of %d records allocates %v times, want at most %d", template, n, allocs, maxAllocs)
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
	for _, template := range templates {
		for _, n := range []int{1, 100} {
			kv := []string{}
			if template != "" {
				kv = []string{"path", t.TempDir() + template, "params", "method,status,call-id", "mkdir", "true"}
			}
			in, _ := newInstance(t, kv...)
			var rs []records.Record
			for i := 0; i < n; i++ {
				rs = append(rs, records.Record{Time: recTime, Body: sipEvent})
			}
			chunk := records.Records(rs...)
			for i := 0; i < 3; i++ { // warm: the pool, the file, the buffers
				in.Flush(chunk, "sip.proxy")
			}
			allocs := testing.AllocsPerRun(200, func() {
				if r := in.Flush(chunk, "sip.proxy"); r != flatstore.OK {
					t.Fatalf("Flush = %v", r)
				}
			})
			if allocs != 0 {
				t.Errorf("template=%q records=%d: a warm flush allocates %v times, want 0", template, n, allocs)
			}
		}
	}
}
