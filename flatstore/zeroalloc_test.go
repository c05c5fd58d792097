package flatstore_test

import (
	"os"
	"runtime"
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

// TestFlushKeepsBuffersAcrossGC: a flush's buffers outlive garbage
// collections. Inside Fluent Bit a flush comes on whichever of the Go
// runtime's processors is idle, and a collection empties sync.Pool: a
// pool alone would make the next flush build its buffers again (a chunk's
// worth of lines, grown by doubling), which brings the next collection
// closer — the runtime's main cost outside the flush. Two collections
// between flushes must cost the next flush nothing.
func TestFlushKeepsBuffersAcrossGC(t *testing.T) {
	in, path := newInstance(t)
	var rs []records.Record
	for i := 0; i < 2000; i++ {
		rs = append(rs, records.Record{Time: recTime, Body: sipEvent})
	}
	chunk := records.Records(rs...)
	for i := 0; i < 2; i++ { // warm: the file, the buffers
		if r := in.Flush(chunk, "sip.proxy"); r != flatstore.OK {
			t.Fatalf("Flush = %v", r)
		}
	}
	const most = 16 << 10 // a chunk's lines are some 300 KB
	for round := 0; round < 3; round++ {
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if r := in.Flush(chunk, "sip.proxy"); r != flatstore.OK {
			t.Fatalf("Flush = %v", r)
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > most {
			t.Errorf("round %d: the flush after two collections allocated %d bytes, want at most %d", round, n, most)
		}
	}
}

// TestFirstFlushAllocatesAboutItsChunk: the first flush of an output
// allocates its lines' buffer once, about the chunk's size, not through a
// chain of doublings (twice the lines, in garbage that brings the runtime's
// first collections while Fluent Bit's first chunks come).
func TestFirstFlushAllocatesAboutItsChunk(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates beside the flush")
	}
	in, _ := newInstance(t)
	var rs []records.Record
	for i := 0; i < 4000; i++ {
		rs = append(rs, records.Record{Time: recTime, Body: sipEvent})
	}
	chunk := records.Records(rs...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if r := in.Flush(chunk, "sip.proxy"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	runtime.ReadMemStats(&after)
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("the first flush of a %d-byte chunk allocated %d bytes", len(chunk), n)
	if most := uint64(len(chunk)) * 3 / 2; n > most {
		t.Errorf("the first flush of a %d-byte chunk allocated %d bytes, want at most %d", len(chunk), n, most)
	}
}
