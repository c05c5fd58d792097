package flatstore_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/records"
)

// engineStore is an EngineMetrics as cmetrics is one: metrics by name,
// series by label values, safe from several threads.
type engineStore struct {
	mu     sync.Mutex
	series map[string]float64 // `flatstore_name{k="v",…}` → value
	calls  atomic.Int64       // Add and Set calls
	t      *testing.T
}

type engineMetric struct {
	s    *engineStore
	name string
	keys []string
	// counter or gauge
	counter bool
}

type engineSeriesOf struct {
	m   *engineMetric
	key string
}

func newEngineStore(t *testing.T) *engineStore {
	return &engineStore{series: map[string]float64{}, t: t}
}

func (s *engineStore) Counter(name, help string, keys ...string) flatstore.EngineMetric {
	return &engineMetric{s: s, name: "flatstore_" + name, keys: keys, counter: true}
}

func (s *engineStore) Gauge(name, help string, keys ...string) flatstore.EngineMetric {
	return &engineMetric{s: s, name: "flatstore_" + name, keys: keys}
}

func (m *engineMetric) With(values ...string) flatstore.EngineSeries {
	if len(values) != len(m.keys) {
		m.s.t.Errorf("%s: %d label values for %d keys", m.name, len(values), len(m.keys))
		return nil
	}
	var l []string
	for i, k := range m.keys {
		l = append(l, fmt.Sprintf("%s=%q", k, values[i]))
	}
	key := m.name
	if len(l) > 0 {
		key += "{" + strings.Join(l, ",") + "}"
	}
	m.s.mu.Lock()
	m.s.series[key] = 0
	m.s.mu.Unlock()
	return &engineSeriesOf{m, key}
}

func (e *engineSeriesOf) Add(v float64) {
	e.m.s.calls.Add(1)
	e.m.s.mu.Lock()
	e.m.s.series[e.key] += v
	e.m.s.mu.Unlock()
}

func (e *engineSeriesOf) Set(v float64) {
	e.m.s.calls.Add(1)
	e.m.s.mu.Lock()
	if e.m.counter && v < e.m.s.series[e.key] {
		e.m.s.t.Errorf("%s set from %v down to %v", e.key, e.m.s.series[e.key], v)
	}
	e.m.s.series[e.key] = v
	e.m.s.mu.Unlock()
}

func (s *engineStore) get(key string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.series[key]
	return v, ok
}

// TestEngineMetrics: an instance exported to an engine context creates
// every series there at 0, labelled with its name; flushes from several
// threads at once add exactly the lines and bytes written; drops count
// under their reason; after Close nothing touches the context.
func TestEngineMetrics(t *testing.T) {
	in, path := newInstance(t, "params", "a")
	em := newEngineStore(t)
	in.ExportTo(em)
	for _, k := range []string{
		`flatstore_records_written_total{name="test"}`,
		`flatstore_bytes_written_total{name="test"}`,
		`flatstore_records_dropped_total{name="test",reason="body_not_map"}`,
		`flatstore_records_dropped_total{name="test",reason="bad_path"}`,
		`flatstore_write_errors_total{name="test",errno="ENOSPC"}`,
		`flatstore_write_errors_total{name="test",errno="other"}`,
		`flatstore_flush_retries_total{name="test",cause="write_error"}`,
		`flatstore_rotations_total{reason="size"}`,
		`flatstore_files_deleted_total{reason="max_files"}`,
	} {
		if v, ok := em.get(k); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 before any record", k, v, ok)
		}
	}
	if _, ok := em.get("flatstore_open_files"); !ok {
		t.Error("flatstore_open_files is missing")
	}

	const workers, chunks, per = 4, 50, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				var recs []records.Record
				for r := range per {
					recs = append(recs, records.Record{Time: recTime, Body: records.KV{"event", "E", "a", w*100000 + c*100 + r}})
				}
				if res := in.Flush(records.Records(recs...), "tag"); res != flatstore.OK {
					t.Errorf("Flush = %v", res)
				}
			}
		}()
	}
	wg.Wait()
	// one record that is not a map: dropped, counted
	if res := in.Flush(records.AppendValue(nil, []any{int64(1), "not a map"}), "tag"); res != flatstore.OK {
		t.Fatalf("Flush = %v", res)
	}
	body := readFile(t, path)
	if v, _ := em.get(`flatstore_records_written_total{name="test"}`); v != float64(strings.Count(body, "\n")) || v != workers*chunks*per {
		t.Errorf("records_written_total = %v, the file has %d lines (%d written)", v, strings.Count(body, "\n"), workers*chunks*per)
	}
	if v, _ := em.get(`flatstore_bytes_written_total{name="test"}`); v != float64(len(body)) {
		t.Errorf("bytes_written_total = %v, the file has %d bytes", v, len(body))
	}
	if v, _ := em.get(`flatstore_records_dropped_total{name="test",reason="body_not_map"}`); v != 1 {
		t.Errorf("records_dropped_total{reason=body_not_map} = %v, want 1", v)
	}

	// The process's gauge follows the open file without a timer.
	if v, _ := em.get("flatstore_open_files"); v != 1 {
		t.Errorf("flatstore_open_files = %v with one file open, want 1", v)
	}

	in.Close()
	n := em.calls.Load()
	time.Sleep(1500 * time.Millisecond) // nothing left running may touch the context
	if m := em.calls.Load(); m != n {
		t.Errorf("%d calls into the engine context after Close", m-n)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}
