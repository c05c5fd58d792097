package flatstore

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Process is what the flatstore outputs of one process share: the event
// files (one handle and one lock per path, max_open_sockets), the metrics
// and the maintenance goroutine. Package plugin makes one per process and
// hands it to every instance; tests make their own.
type Process struct {
	pool    *pool
	metrics *Metrics

	mu        sync.Mutex
	instances map[*Instance]struct{} // live, for the checks between outputs
}

// NewProcess returns the shared state of a new process.
func NewProcess() *Process { return newProcess(realOps(), time.Now) }

// newProcess is NewProcess with the system calls and the clock given.
func newProcess(sys *sysOps, now func() time.Time) *Process {
	p := &Process{instances: map[*Instance]struct{}{}}
	p.metrics = NewMetrics(func() float64 { return float64(p.pool.openCount()) })
	p.pool = newPool(sys, now, p.metrics)
	return p
}

// Gatherer returns the registry that holds every metric of the process,
// for /metrics.
func (p *Process) Gatherer() prometheus.Gatherer { return p.metrics.Gatherer() }

// OpenFiles is the number of event files open (or about to open) now.
func (p *Process) OpenFiles() int { return p.pool.openCount() }
