package flatstore

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flatstore/flatstore/flatstore/filestore"
)

// commonErrnos are the errno labels of flatstore_write_errors_total that
// exist, at 0, from the start, so that an alert on them has a series to
// watch before the first error.
func commonErrnos() []string {
	return []string{"ENOSPC", "EDQUOT", "EIO", "EROFS", "EACCES", "EPERM", "EMFILE", "ENFILE",
		"ENAMETOOLONG", "EISDIR", "ENOTDIR", "ELOOP", "EXDEV", "ENXIO", "EINVAL", "ENOENT"}
}

// deleteReasons are the reasons retention deletes a rotated file for.
func deleteReasons() []string { return []string{"max_files", "max_age"} }

// Metrics holds one process's Prometheus collectors in their own registry,
// which the control endpoint serves on /metrics, and copies the process's
// own series into the engine contexts of the live instances (publish).
type Metrics struct {
	registry      *prometheus.Registry
	records       *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	writeErrors   *prometheus.CounterVec
	rotations     *prometheus.CounterVec
	retries       *prometheus.CounterVec
	deleted       *prometheus.CounterVec
	flushDuration *prometheus.HistogramVec

	// The process's counts again, readable, for the engine contexts: the
	// maps are filled once and only read after.
	rotationCount map[string]*atomic.Uint64
	deleteCount   map[string]*atomic.Uint64
	openFiles     func() float64

	pubMu   sync.Mutex
	engines map[*engineSeries]struct{} // the live instances' engine series
}

// NewMetrics returns the collectors, registered; openFiles reports the
// flatstore_open_files gauge.
func NewMetrics(openFiles func() float64) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		registry: r,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_records_written_total", Help: "Event lines written.",
		}, []string{"instance"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_bytes_written_total", Help: "Bytes written to event files.",
		}, []string{"instance"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_records_dropped_total", Help: "Records skipped, by reason.",
		}, []string{"instance", "reason"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_write_errors_total", Help: "Failed writes, opens or syncs, by errno name.",
		}, []string{"instance", "errno"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_rotations_total", Help: "File rotations, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_flush_retries_total", Help: "Flushes answered RETRY, by cause.",
		}, []string{"instance", "cause"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flatstore_files_deleted_total", Help: "Rotated files deleted by retention, by reason.",
		}, []string{"reason"}),
		flushDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flatstore_flush_duration_seconds",
			Help:    "Time spent in one flush.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"instance"}),
	}
	m.openFiles = openFiles
	m.rotationCount, m.deleteCount = map[string]*atomic.Uint64{}, map[string]*atomic.Uint64{}
	m.engines = map[*engineSeries]struct{}{}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flatstore_open_files", Help: "Event files open now in this process.",
	}, openFiles)
	r.MustRegister(m.records, m.bytes, m.dropped, m.writeErrors, m.rotations,
		m.retries, m.deleted, open, m.flushDuration)
	for _, reason := range filestore.RotationReasons() {
		m.rotations.WithLabelValues(reason)
		m.rotationCount[reason] = new(atomic.Uint64)
	}
	for _, reason := range deleteReasons() {
		m.deleted.WithLabelValues(reason)
		m.deleteCount[reason] = new(atomic.Uint64)
	}
	return m
}

// Gatherer returns the registry that holds every metric of the process.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Deleted counts one rotated file deleted by retention (filestore.Counter).
func (m *Metrics) Deleted(reason string) {
	if m != nil {
		m.deleted.WithLabelValues(reason).Inc()
		if c := m.deleteCount[reason]; c != nil {
			c.Add(1)
			m.publish()
		}
	}
}

// Rotated counts one rotation (filestore.Counter).
func (m *Metrics) Rotated(reason string) {
	if m != nil {
		m.rotations.WithLabelValues(reason).Inc()
		if c := m.rotationCount[reason]; c != nil {
			c.Add(1)
			m.publish()
		}
	}
}

// OpenFiles follows a change of the open files (filestore.Counter) into
// the engine contexts; the control endpoint's gauge asks when scraped.
func (m *Metrics) OpenFiles(int) {
	if m != nil {
		m.publish()
	}
}

// attach starts copying the process's series into es, at once and then at
// each change (a rotation, a deletion, a file opened or closed): no timer
// wakes an idle process for it. Until detach.
func (m *Metrics) attach(es *engineSeries) {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	m.engines[es] = struct{}{}
	m.publishLocked(es)
}

// detach stops copying into es: once it returns, es is never touched again
// (the engine may free its context).
func (m *Metrics) detach(es *engineSeries) {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	delete(m.engines, es)
}

// publish copies the process's series into every live engine context. The
// values are read under pubMu, so the last to publish sets the newest.
func (m *Metrics) publish() {
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	for es := range m.engines {
		m.publishLocked(es)
	}
}

// publishLocked sets es's copies of the process's series. Only one
// goroutine sets them at a time (pubMu) from counts that only grow, so a
// counter in the engine never goes down.
func (m *Metrics) publishLocked(es *engineSeries) {
	for r, s := range es.rotations {
		s.Set(float64(m.rotationCount[r].Load()))
	}
	for r, s := range es.deleted {
		s.Set(float64(m.deleteCount[r].Load()))
	}
	if es.openFiles != nil && m.openFiles != nil {
		es.openFiles.Set(m.openFiles())
	}
}

// instanceMetrics are one instance's series, looked up once.
type instanceMetrics struct {
	m              *Metrics
	engine         *engineSeries // nil until exportTo
	name           string
	records, bytes prometheus.Counter
	flushTime      prometheus.Observer
	dropped        map[string]prometheus.Counter
	retries        map[string]prometheus.Counter
}

// forInstance creates every series of the instance called name with known
// label values, at 0.
func (m *Metrics) forInstance(name string) *instanceMetrics {
	im := &instanceMetrics{
		m:         m,
		name:      name,
		records:   m.records.WithLabelValues(name),
		bytes:     m.bytes.WithLabelValues(name),
		flushTime: m.flushDuration.WithLabelValues(name),
		dropped:   map[string]prometheus.Counter{},
		retries:   map[string]prometheus.Counter{},
	}
	for _, r := range DropReasons() {
		im.dropped[r] = m.dropped.WithLabelValues(name, r)
	}
	for _, c := range RetryCauses() {
		im.retries[c] = m.retries.WithLabelValues(name, c)
	}
	for _, e := range commonErrnos() {
		m.writeErrors.WithLabelValues(name, e)
	}
	return im
}

func (im *instanceMetrics) drop(reason string, n int) {
	c := im.dropped[reason]
	if c == nil {
		c = im.m.dropped.WithLabelValues(im.name, reason)
	}
	c.Add(float64(n))
	if e := im.engine; e != nil {
		add(e.dropped[reason], float64(n))
	}
}

func (im *instanceMetrics) retry(cause string) {
	im.retries[cause].Inc()
	if e := im.engine; e != nil {
		add(e.retries[cause], 1)
	}
}

func (im *instanceMetrics) countWriteError(errno string) {
	im.m.writeErrors.WithLabelValues(im.name, errno).Inc()
	if e := im.engine; e != nil {
		s, ok := e.writeErrors[errno]
		if !ok {
			s = e.writeErrors["other"]
		}
		add(s, 1)
	}
}

// written counts the lines and bytes of a flush that ended OK.
func (im *instanceMetrics) written(lines, bytes int) {
	im.records.Add(float64(lines))
	im.bytes.Add(float64(bytes))
	if e := im.engine; e != nil {
		add(e.records, float64(lines))
		add(e.bytes, float64(bytes))
	}
}

// EngineMetrics is the metrics context of the engine that runs an output —
// Fluent Bit's cmetrics context of the output instance, in package plugin —
// into which the instance copies its series, so that they are served where
// the engine serves its own (/api/v2/metrics/prometheus), beside the
// process's registry. Counter and Gauge create flatstore_<name> with the
// label keys, or return nil when the engine refuses.
type EngineMetrics interface {
	Counter(name, help string, keys ...string) EngineMetric
	Gauge(name, help string, keys ...string) EngineMetric
}

// EngineMetric is one metric of an EngineMetrics: With creates its series
// with the label values, at 0, or returns nil.
type EngineMetric interface {
	With(values ...string) EngineSeries
}

// EngineSeries is one series. Add must be safe from several threads at once
// (cmetrics adds atomically); Set is called from one goroutine at a time,
// with values that never go down for a counter.
type EngineSeries interface {
	Add(v float64)
	Set(v float64)
}

// engineErrnos are the errno labels of flatstore_write_errors_total in the
// engine's context: a series can be created only while the engine is not
// reading the context (at Init), so an errno outside these is counted
// there under "other".
func engineErrnos() []string {
	return append(commonErrnos(), "not_regular", "other_output", "other")
}

// engineSeries are one instance's series in its engine context. Every
// series is created at Init; afterwards they are only added to or set.
type engineSeries struct {
	records, bytes EngineSeries
	dropped        map[string]EngineSeries
	writeErrors    map[string]EngineSeries
	retries        map[string]EngineSeries
	// the process's series, a copy in each context: set by Metrics.publish
	rotations map[string]EngineSeries
	deleted   map[string]EngineSeries
	openFiles EngineSeries
}

// series calls With(name, v) for each value, keeping the series the
// engine made.
func series(m EngineMetric, into map[string]EngineSeries, name string, values ...string) {
	if m == nil {
		return
	}
	for _, v := range values {
		if s := m.With(name, v); s != nil {
			into[v] = s
		}
	}
}

// newEngineSeries creates every series of the instance called name in em,
// at 0: labelled name, as the engine labels its fluentbit_output_* series,
// except the process's own (rotations, deletions, open files), which have
// no output to name.
func newEngineSeries(em EngineMetrics, name string) *engineSeries {
	es := &engineSeries{dropped: map[string]EngineSeries{}, writeErrors: map[string]EngineSeries{},
		retries: map[string]EngineSeries{}, rotations: map[string]EngineSeries{}, deleted: map[string]EngineSeries{}}
	one := func(m EngineMetric, values ...string) EngineSeries {
		if m == nil {
			return nil
		}
		return m.With(values...)
	}
	es.records = one(em.Counter("records_written_total", "Event lines written.", "name"), name)
	es.bytes = one(em.Counter("bytes_written_total", "Bytes written to event files.", "name"), name)
	series(em.Counter("records_dropped_total", "Records skipped, by reason.", "name", "reason"), es.dropped, name, DropReasons()...)
	series(em.Counter("write_errors_total", "Failed writes, opens or syncs, by errno name.", "name", "errno"), es.writeErrors, name, engineErrnos()...)
	series(em.Counter("flush_retries_total", "Flushes answered RETRY, by cause.", "name", "cause"), es.retries, name, RetryCauses()...)
	if m := em.Counter("rotations_total", "File rotations in this process, by reason.", "reason"); m != nil {
		for _, r := range filestore.RotationReasons() {
			if s := m.With(r); s != nil {
				es.rotations[r] = s
			}
		}
	}
	if m := em.Counter("files_deleted_total", "Rotated files deleted by retention in this process, by reason.", "reason"); m != nil {
		for _, r := range deleteReasons() {
			if s := m.With(r); s != nil {
				es.deleted[r] = s
			}
		}
	}
	es.openFiles = one(em.Gauge("open_files", "Event files open now in this process."))
	return es
}

func add(s EngineSeries, v float64) {
	if s != nil && v != 0 {
		s.Add(v)
	}
}
