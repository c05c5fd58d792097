// Package flatstore is the core of the flatstore Fluent Bit output plugin: it
// turns Fluent Bit records into OpenSIPS event_flatstore lines and appends
// them to files. It knows nothing of cgo or HTTP: package plugin (the
// c-shared layer) drives it, and package control serves rotation requests.
//
// Data flows one way: a flush buffer is walked in place (record.go), each
// record becomes one line (line.go), lines are grouped by file (instance.go),
// and each file gets one write(2) under its lock (file.go, pool.go).
package flatstore
