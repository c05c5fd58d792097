// Command plugin is the flatstore Fluent Bit output plugin, built with
// go build -buildmode=c-shared. It holds only the glue from Fluent Bit's Go
// proxy to the core (package flatstore) and the control endpoint (package
// control): the entry points (engine.c, which refuses to run Go after a
// fork, then calls the functions below), the config map, the engine's
// logger, the engine's metrics context (cmetrics.go: flatstore's series in
// Fluent Bit's own /api/v2/metrics/prometheus), configuration lookup, the
// per-instance context, return codes, and recovery from panics.
package main

/*
#include <stdlib.h>
#include <string.h>
#include "engine.h"
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
	// time_zone names a zone of the tz database; a host without
	// /usr/share/zoneinfo (a distroless image) has them here.
	_ "time/tzdata"

	"github.com/fluent/fluent-bit-go/output"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/control"
	"github.com/flatstore/flatstore/flatstore/logger"
)

// instance is what one remote_context stands for.
type instance struct {
	core    *flatstore.Instance
	control *control.Handle
	sink    *engineSink
	metrics *engineMetrics // the engine's metrics context; nil without one
	ctx     unsafe.Pointer // C memory whose address is the context
	lastTag atomic.Pointer[string]
}

// tagOf returns the chunk's tag as a Go string of its own (the core may
// keep it, to know a resend), reusing the last one the instance saw when
// the bytes are the same: the engine flushes one tag over and over, and a
// flush then allocates nothing for it.
func (inst *instance) tagOf(tag *C.char) string {
	if tag == nil {
		return ""
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(tag)), int(C.strlen(tag)))
	if last := inst.lastTag.Load(); last != nil && *last == string(b) {
		return *last
	}
	s := string(b)
	inst.lastTag.Store(&s)
	return s
}

var (
	// live maps a context's address to its instance. Flushes look it up;
	// nothing ever dereferences the C pointer, so a stale one finds nothing.
	live sync.Map // uintptr → *instance

	mu      sync.Mutex
	nextIdx int // names instances flatstore.0, flatstore.1… when the engine's name cannot be read
	count   int

	// proc is what every instance of this process shares: the files, the
	// metrics and the maintenance goroutine; controls holds the control
	// endpoints, one per address. A Go library is never unloaded, so both
	// live as long as the process, across hot reloads.
	proc     = flatstore.NewProcess()
	controls = control.NewRegistry()
)

// An instance is what the control endpoint rotates and lists.
var _ control.Backend = (*flatstore.Instance)(nil)

// getter reads Fluent Bit properties through the proxy's API.
type getter struct{ plugin unsafe.Pointer }

func (g getter) Get(key string) string { return output.FLBPluginConfigKey(g.plugin, key) }

func main() {}

//export flatstoreGoPreRegister
func flatstoreGoPreRegister(hotReload C.int) C.int { return 0 }

//export flatstoreGoRegister
func flatstoreGoRegister(def unsafe.Pointer) (ret C.int) {
	defer recoverTo("register", &ret, -1)
	if rc := output.FLBPluginRegister(def, "flatstore", "OpenSIPS event_flatstore lines in plain files"); rc != 0 {
		return C.int(rc)
	}
	C.flatstore_set_config_map(def, configMap())
	return 0
}

//export flatstoreGoInit
func flatstoreGoInit(plugin unsafe.Pointer) (ret C.int) {
	defer recoverTo("init", &ret, output.FLB_ERROR)
	name := instanceName(plugin)
	sink := newEngineSink(C.flatstore_plugin_api(plugin), C.flatstore_plugin_ins(plugin))
	log := logger.New(name, sink)
	fail := func() C.int {
		sink.detach()
		return output.FLB_ERROR
	}

	// Every problem in one message: the values, the socket's directory, and
	// what this user may do with the file and its directory.
	cfg, err := flatstore.CheckConfig(getter{plugin}, flatstore.ProcessAccess)
	if err != nil {
		log.Errorf("invalid configuration, output not started:\n    %s",
			strings.ReplaceAll(err.Error(), "\n", "\n    "))
		return fail()
	}
	core, err := flatstore.NewInstance(proc, cfg, name, log)
	if err != nil {
		log.Errorf("%v: output not started", err)
		return fail()
	}
	inst := &instance{core: core, sink: sink}
	if em := newEngineMetrics(plugin, log); em != nil {
		inst.metrics = em
		core.ExportTo(em)
	}
	if !cfg.ControlListen.Off() {
		h, err := controls.Acquire(cfg.ControlListen, core, control.Options{
			Token: cfg.ControlToken, Metrics: proc.Gatherer(), Log: log,
		})
		switch {
		case err == nil:
			inst.control = h
		case cfg.ControlListenDefault:
			log.Warnf("%v: writing on without a control endpoint (set control_listen to a free address, or off)", err)
		default:
			log.Errorf("%v: output not started", err)
			core.Close()
			inst.metrics.free()
			return fail()
		}
	}
	inst.ctx = C.malloc(1)
	live.Store(uintptr(inst.ctx), inst)
	C.flatstore_set_context(plugin, inst.ctx)
	mu.Lock()
	count++
	mu.Unlock()
	core.LogStarted() // after every step that could refuse the output
	return output.FLB_OK
}

// instanceName is the name logs and metrics give an instance, as Fluent Bit
// does: its alias when set, else the engine's own name (flatstore.0); when
// the engine's memory does not show them, a name counted here.
func instanceName(plugin unsafe.Pointer) string {
	var name, alias [256]C.char
	found := C.flatstore_instance_name(C.flatstore_plugin_ins(plugin), &name[0], C.int(len(name)), &alias[0], C.int(len(alias)))
	mu.Lock()
	defer mu.Unlock()
	switch {
	case found != 0 && alias[0] != 0:
		return C.GoString(&alias[0])
	case found != 0:
		return C.GoString(&name[0])
	}
	n := fmt.Sprintf("flatstore.%d", nextIdx)
	nextIdx++
	return n
}

//export flatstoreGoFlushCtx
func flatstoreGoFlushCtx(ctx, data unsafe.Pointer, length C.size_t, tag *C.char) (ret C.int) {
	defer recoverTo("flush", &ret, output.FLB_RETRY)
	v, ok := live.Load(uintptr(ctx))
	if !ok {
		orphanLogger().Errorf("flush for an unknown or closed instance: chunk dropped")
		return output.FLB_ERROR
	}
	return flush(v.(*instance), data, length, tag)
}

// flatstoreGoFlush is the entry point of Fluent Bit versions that do not
// pass a context: it serves the one instance there is.
//
//export flatstoreGoFlush
func flatstoreGoFlush(data unsafe.Pointer, length C.size_t, tag *C.char) (ret C.int) {
	defer recoverTo("flush", &ret, output.FLB_RETRY)
	var only *instance
	n := 0
	live.Range(func(_, v any) bool { only, n = v.(*instance), n+1; return n < 2 })
	if n != 1 {
		orphanLogger().Errorf("flush without a context and %d instances: chunk dropped", n)
		return output.FLB_ERROR
	}
	return flush(only, data, length, tag)
}

func flush(inst *instance, data unsafe.Pointer, length C.size_t, tag *C.char) C.int {
	var buf []byte
	if data != nil && length > 0 {
		buf = unsafe.Slice((*byte)(data), int(length))
	}
	switch inst.core.Flush(buf, inst.tagOf(tag)) {
	case flatstore.OK:
		return output.FLB_OK
	case flatstore.Retry:
		return output.FLB_RETRY
	}
	return output.FLB_ERROR
}

//export flatstoreGoExitCtx
func flatstoreGoExitCtx(ctx unsafe.Pointer) (ret C.int) {
	defer recoverTo("exit", &ret, output.FLB_ERROR)
	v, ok := live.LoadAndDelete(uintptr(ctx))
	if !ok {
		return output.FLB_OK // already closed
	}
	closeInstance(v.(*instance))
	return output.FLB_OK
}

//export flatstoreGoExit
func flatstoreGoExit() (ret C.int) {
	defer recoverTo("exit", &ret, output.FLB_ERROR)
	live.Range(func(k, v any) bool {
		if _, ok := live.LoadAndDelete(k); ok {
			closeInstance(v.(*instance))
		}
		return true
	})
	return output.FLB_OK
}

func closeInstance(inst *instance) {
	if inst.control != nil {
		inst.control.Release()
	}
	inst.core.Close()
	inst.metrics.free() // the core no longer touches them
	// From here the engine may free the instance: its logger goes quiet
	// (to stderr) rather than touch it.
	inst.sink.detach()
	C.free(inst.ctx)
	mu.Lock()
	count--
	if count == 0 {
		nextIdx = 0 // a hot reload names its instances from 0 again
	}
	mu.Unlock()
}

//export flatstoreGoUnregister
func flatstoreGoUnregister(def unsafe.Pointer) {
	defer func() {
		if r := recover(); r != nil {
			orphanLogger().Errorf("panic in unregister: %v\n%s", r, debug.Stack())
		}
	}()
	output.FLBPluginUnregister(def)
}

// recoverTo turns a panic into a logged error and the given return code, so
// that a bug in the plugin never takes Fluent Bit down.
func recoverTo(where string, ret *C.int, code int) {
	if r := recover(); r != nil {
		orphanLogger().Errorf("panic in %s: %v\n%s", where, r, debug.Stack())
		*ret = C.int(code)
	}
}
