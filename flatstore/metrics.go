package flatstore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Rotation reasons, as counted and reported by status.
const (
	ReasonMI          = "mi"
	ReasonPeriod      = "period"
	ReasonCount       = "count"
	ReasonSize        = "size"
	ReasonReopenCheck = "reopen_check"
)

// Drop reasons for records that are skipped.
const (
	DropNotRecord = "not_record"   // not [time, body] / [[time, meta], body]
	DropBadTime   = "bad_time"     // time is not ext 0, an integer or a float
	DropNotMap    = "body_not_map" // body is not a map
	DropTruncated = "truncated"    // the buffer ends inside a record
	DropTooDeep   = "too_deep"     // nesting deeper than MaxDepth
	DropTooLarge  = "too_large"    // one line longer than MaxLineBytes
)

// metrics holds the process-wide Prometheus collectors. They live in their
// own registry, served by the control endpoint's /metrics.
type metrics struct {
	registry      *prometheus.Registry
	records       *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	writeErrors   *prometheus.CounterVec
	rotations     *prometheus.CounterVec
	retries       *prometheus.CounterVec
	openFiles     prometheus.GaugeFunc
	flushDuration *prometheus.HistogramVec
}

var m = newMetrics()

func newMetrics() *metrics {
	r := prometheus.NewRegistry()
	mm := &metrics{
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
		openFiles: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flatstore_open_files", Help: "Event files open now in this process.",
		}, func() float64 { return float64(pool.OpenCount()) }),
		flushDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flatstore_flush_duration_seconds",
			Help:    "Time spent in one flush.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"instance"}),
	}
	r.MustRegister(mm.records, mm.bytes, mm.dropped, mm.writeErrors, mm.rotations,
		mm.retries, mm.openFiles, mm.flushDuration)
	return mm
}

// Gatherer returns the registry that holds every flatstore metric.
func Gatherer() prometheus.Gatherer { return m.registry }
