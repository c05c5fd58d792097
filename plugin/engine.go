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

// configMap returns Fluent Bit's config map of flatstore's keys, made from
// the core's one key table: C memory that lives as long as the process (the
// engine keeps pointers to its descriptions), made once and handed to every
// registration, hot reloads included. The engine then checks each
// instance's properties against it at start-up and in --dry-run — their
// names and that each is set once: Fluent Bit 5.1.1 parses no value of a
// Go output, so the values are judged by Init and flatstore-ctl check —
// and -h prints it. Defaults are shown, never handed back as properties:
// the core applies its own.
var configMap = sync.OnceValue(func() unsafe.Pointer {
	keys := flatstore.Keys()
	size := C.size_t(unsafe.Sizeof(C.struct_flb_abi_config_map{}))
	m := C.calloc(C.size_t(len(keys)+1), size) // the last entry, all zero, ends it
	entries := unsafe.Slice((*C.struct_flb_abi_config_map)(m), len(keys)+1)
	for i, k := range keys {
		e := &entries[i]
		e._type = mapType(k.Type)
		e.name = C.CString(k.Name)
		if k.Default != "" {
			e.def_value = C.CString(k.Default)
		}
		e.desc = C.CString(k.Help)
	}
	return m
})

// mapType is the engine's type for a key type; flatstore.KeyType says which
// keys get one, and why sizes and durations stay strings.
func mapType(t flatstore.KeyType) C.int {
	switch t {
	case flatstore.KeyBool:
		return C.FLB_CONFIG_MAP_BOOL
	case flatstore.KeyInt:
		return C.FLB_CONFIG_MAP_INT
	case flatstore.KeyList:
		return C.FLB_CONFIG_MAP_CLIST
	}
	return C.FLB_CONFIG_MAP_STR
}

// engineSink prints through Fluent Bit's own logger (struct flb_api's
// log_print, checked first with output_log_check), so the engine's
// log_level (service and output), -q and log_file apply and the lines look
// like every other plugin's. Outside an engine that offers no logger it
// prints to stderr. Once detached (the instance exited, and the engine may
// free it) it prints to stderr too, never touching the engine's memory.
type engineSink struct {
	mu       sync.RWMutex
	api, ins unsafe.Pointer
	detached bool
	fallback *logger.WriterSink
}

func newEngineSink(api, ins unsafe.Pointer) *engineSink {
	s := &engineSink{api: api, ins: ins, fallback: logger.NewWriterSink(nil, logger.LevelInfo)}
	if C.flatstore_has_logger(api) == 0 {
		s.detached = true
	}
	return s
}

func (s *engineSink) Enabled(level logger.Level) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.detached {
		return s.fallback.Enabled(level)
	}
	return C.flatstore_log_check(s.api, s.ins, C.int(level)) != 0
}

func (s *engineSink) Print(level logger.Level, msg string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.detached {
		s.fallback.Print(level, msg)
		return
	}
	cs := C.CString(msg)
	C.flatstore_log(s.api, C.int(level), cs)
	C.free(unsafe.Pointer(cs))
}

// detach stops the sink from using the engine's pointers, waiting for a
// message being printed.
func (s *engineSink) detach() {
	s.mu.Lock()
	s.detached = true
	s.mu.Unlock()
}

// orphanLogger logs what belongs to no instance (a flush for an unknown
// context, a panic outside an instance), to stderr.
func orphanLogger() *logger.Logger { return logger.New("flatstore", nil) }
