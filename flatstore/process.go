package flatstore

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatstore/flatstore/flatstore/filestore"
)

// Process is what the flatstore outputs of one process share: the event
// files (one handle and one lock per path, max_open_sockets), the metrics
// and the maintenance goroutine. Package plugin makes one per process and
// hands it to every instance; tests make their own.
type Process struct {
	store   *filestore.Store
	metrics *Metrics

	mu      sync.Mutex
	outputs map[*output]struct{} // live instances, for the checks between outputs
	// statics is the configured paths of the live outputs, rebuilt when
	// one comes or goes, read without a lock by every flush of a template.
	statics atomic.Pointer[[]*output]
}

// output is a live instance as its process knows it.
type output struct {
	name   string
	cfg    *Config
	format string // formatOf(cfg)
}

// NewProcess returns the shared state of a new process.
func NewProcess() *Process { return newProcess(filestore.Env{}) }

// newProcess is NewProcess with the file store's environment given (the
// system calls, the clock, the tick: tests give their own).
func newProcess(env filestore.Env) *Process {
	p := &Process{outputs: map[*output]struct{}{}}
	p.metrics = NewMetrics(func() float64 { return float64(p.store.OpenCount()) })
	env.Counter = p.metrics
	p.store = filestore.New(env)
	return p
}

// Gatherer returns the registry that holds every metric of the process,
// for /metrics.
func (p *Process) Gatherer() prometheus.Gatherer { return p.metrics.Gatherer() }

// register records a new instance, refusing it when another live one
// writes the same path with settings that shape the file differently.
func (p *Process) register(name string, cfg *Config, format string) (*output, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for o := range p.outputs {
		if o.cfg.Path == cfg.Path && o.format != format {
			return nil, fmt.Errorf("path %q is already written by output %s with %s; this output has %s: "+
				"outputs that share a file must write it alike", cfg.Path, o.name,
				formatDiff(o.cfg, cfg), formatDiff(cfg, o.cfg))
		}
	}
	o := &output{name: name, cfg: cfg, format: format}
	p.outputs[o] = struct{}{}
	p.rebuildStaticsLocked()
	return o, nil
}

// unregister forgets a closed instance.
func (p *Process) unregister(o *output) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.outputs, o)
	p.rebuildStaticsLocked()
}

func (p *Process) rebuildStaticsLocked() {
	var s []*output
	for o := range p.outputs {
		if o.cfg.Template.Static() {
			s = append(s, o)
		}
	}
	p.statics.Store(&s)
}

// staticOwner returns the live output whose configured file a rendered
// path would write, or nil. Reserved for an output with the configured
// path P are P itself, P followed by '.' (the names of its rotations and
// compressed files), and, when it has a suffix, every name that starts with
// P (the strftime suffix can be anything).
func (p *Process) staticOwner(path string) *output {
	s := p.statics.Load()
	if s == nil {
		return nil
	}
	for _, o := range *s {
		rest, ok := strings.CutPrefix(path, o.cfg.Path)
		if ok && (rest == "" || rest[0] == '.' || o.cfg.Suffix != "") {
			return o
		}
	}
	return nil
}
