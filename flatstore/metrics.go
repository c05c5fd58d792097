package flatstore

import (
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

// Metrics holds one process's Prometheus collectors in their own registry,
// which the control endpoint serves on /metrics.
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
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flatstore_open_files", Help: "Event files open now in this process.",
	}, openFiles)
	r.MustRegister(m.records, m.bytes, m.dropped, m.writeErrors, m.rotations,
		m.retries, m.deleted, open, m.flushDuration)
	for _, reason := range filestore.RotationReasons() {
		m.rotations.WithLabelValues(reason)
	}
	for _, reason := range []string{"max_files", "max_age"} {
		m.deleted.WithLabelValues(reason)
	}
	return m
}

// Gatherer returns the registry that holds every metric of the process.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Deleted counts one rotated file deleted by retention (filestore.Counter).
func (m *Metrics) Deleted(reason string) {
	if m != nil {
		m.deleted.WithLabelValues(reason).Inc()
	}
}

// Rotated counts one rotation (filestore.Counter).
func (m *Metrics) Rotated(reason string) {
	if m != nil {
		m.rotations.WithLabelValues(reason).Inc()
	}
}

// instanceMetrics are one instance's series, looked up once.
type instanceMetrics struct {
	m              *Metrics
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
}

func (im *instanceMetrics) retry(cause string) { im.retries[cause].Inc() }

func (im *instanceMetrics) countWriteError(errno string) {
	im.m.writeErrors.WithLabelValues(im.name, errno).Inc()
}
