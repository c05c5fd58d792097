package main

/*
#include <stdlib.h>
#include "engine.h"
*/
import "C"

import (
	"sync"
	"unsafe"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/logger"
)

// engineMetrics is the output instance's cmetrics context in Fluent Bit
// (struct flb_api's output_get_cmt_instance), which the engine's HTTP
// server serves at /api/v2/metrics/prometheus: the core creates its series
// there (flatstore.EngineMetrics) and then adds to them — a cgo call per
// series changed, a few per flush, none per record. It keeps the series'
// C memory until free, which runs after the core's Close (the core never
// touches a series after it).
type engineMetrics struct {
	cmt    unsafe.Pointer
	mu     sync.Mutex
	series []unsafe.Pointer
}

var noEngineMetrics sync.Once

// newEngineMetrics returns the instance's context, or nil (said once per
// process) when the engine hands none or does not export the cmetrics
// functions: the control endpoint's /metrics still has every series.
func newEngineMetrics(plugin unsafe.Pointer, log *logger.Logger) *engineMetrics {
	if C.flatstore_cmt_resolve() == 0 {
		noEngineMetrics.Do(func() {
			log.Infof("this engine does not export the cmetrics functions (cmt_counter_create…): " +
				"flatstore's series are not in its metrics endpoint, only on the control endpoint's /metrics (control_listen)")
		})
		return nil
	}
	cmt := C.flatstore_cmt_context(C.flatstore_plugin_api(plugin), C.flatstore_plugin_ins(plugin))
	if cmt == nil {
		noEngineMetrics.Do(func() {
			log.Infof("the engine hands this output no metrics context (built without metrics?): " +
				"flatstore's series are not in its metrics endpoint, only on the control endpoint's /metrics (control_listen)")
		})
		return nil
	}
	return &engineMetrics{cmt: cmt}
}

// cstrings returns ss as C strings and a function that frees them.
func cstrings(ss []string) ([]*C.char, func()) {
	cs := make([]*C.char, len(ss)+1) // never empty: &cs[0] is valid
	for i, s := range ss {
		cs[i] = C.CString(s)
	}
	return cs, func() {
		for _, c := range cs {
			C.free(unsafe.Pointer(c))
		}
	}
}

func (em *engineMetrics) metric(gauge bool, name, help string, keys []string) flatstore.EngineMetric {
	cname, chelp := C.CString(name), C.CString(help)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(chelp))
	ckeys, free := cstrings(keys)
	defer free()
	g := C.int(0)
	if gauge {
		g = 1
	}
	m := C.flatstore_cmt_metric(em.cmt, g, cname, chelp, C.int(len(keys)), &ckeys[0])
	if m == nil {
		return nil
	}
	return &engineMetric{em: em, m: m, gauge: g}
}

func (em *engineMetrics) Counter(name, help string, keys ...string) flatstore.EngineMetric {
	return em.metric(false, name, help, keys)
}

func (em *engineMetrics) Gauge(name, help string, keys ...string) flatstore.EngineMetric {
	return em.metric(true, name, help, keys)
}

// free releases the series' C memory; the engine frees the context itself.
func (em *engineMetrics) free() {
	if em == nil {
		return
	}
	em.mu.Lock()
	defer em.mu.Unlock()
	for _, s := range em.series {
		C.flatstore_cmt_free(s)
	}
	em.series = nil
}

type engineMetric struct {
	em    *engineMetrics
	m     unsafe.Pointer
	gauge C.int
}

func (m *engineMetric) With(values ...string) flatstore.EngineSeries {
	cvals, free := cstrings(values)
	defer free()
	s := C.flatstore_cmt_series(m.m, m.gauge, C.int(len(values)), &cvals[0])
	if s == nil {
		return nil
	}
	m.em.mu.Lock()
	m.em.series = append(m.em.series, s)
	m.em.mu.Unlock()
	return engineSeries{s}
}

// engineSeries is one series of the engine's context.
type engineSeries struct{ p unsafe.Pointer }

func (s engineSeries) Add(v float64) { C.flatstore_cmt_add(s.p, C.double(v)) }
func (s engineSeries) Set(v float64) { C.flatstore_cmt_set(s.p, C.double(v)) }
