// Package hostout reads what the project's test host (host/flbhost.c)
// prints at the end of a run: one JSON line of counters per instance, wall
// and CPU time, and peak memory. The demo, the benchmarks and the tests read
// it through this package.
package hostout

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// InstanceSummary is one instance's counters in the host's summary.
type InstanceSummary struct {
	Name           string `json:"name"`
	Chunks         int64  `json:"chunks"`
	Records        int64  `json:"records"`
	OKChunks       int64  `json:"ok_chunks"`
	OKRecords      int64  `json:"ok_records"`
	Retries        int64  `json:"retries"`
	Errors         int64  `json:"errors"`
	DroppedChunks  int64  `json:"dropped_chunks"`
	DroppedRecords int64  `json:"dropped_records"`
	UnsentChunks   int64  `json:"unsent_chunks"`
}

// Summary is the JSON line the host prints at the end of a run.
type Summary struct {
	Instances []InstanceSummary `json:"instances"`
	WallS     float64           `json:"wall_s"`
	// FlushWallS is the time spent flushing, without loading the input.
	FlushWallS float64 `json:"flush_wall_s"`
	FlushCPUS  float64 `json:"flush_cpu_s"` // the process's CPU over the flush spans
	CPUUserS   float64 `json:"cpu_user_s"`
	CPUSysS    float64 `json:"cpu_sys_s"`
	MaxRSSKB   int64   `json:"max_rss_kb"`
	// Found is false when stdout held no summary (-q, or the host died).
	Found bool `json:"-"`
}

// Parse finds the last summary line in the host's stdout.
func Parse(stdout []byte) (Summary, error) {
	var s Summary
	lines := bytes.Split(stdout, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := bytes.TrimSpace(lines[i])
		if !bytes.HasPrefix(l, []byte(`{"instances":`)) {
			continue
		}
		if err := json.Unmarshal(l, &s); err != nil {
			return s, fmt.Errorf("bad host summary %q: %w", l, err)
		}
		s.Found = true
		return s, nil
	}
	return s, nil
}
