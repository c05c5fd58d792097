// Package flatstore is the core of the flatstore Fluent Bit output plugin:
// it turns Fluent Bit records into OpenSIPS event_flatstore lines
// (EVENT,p1,p2\n) and appends them to files. It knows nothing of cgo or
// HTTP: package plugin (the c-shared layer) drives it, and package control
// serves the rotate requests and the status of its files.
//
// # The packages
//
// The core is this package and three below it; each imports only those
// below it, and the compiler holds them to it:
//
//	flatstore           keys and ParseConfig, Process and Instance, the flush,
//	                    the resend memory, the metrics
//	flatstore/event     records → lines and back (no I/O)
//	flatstore/filestore event files on disk (no msgpack, no Config)
//	flatstore/logger    the Logger every layer logs through
//
// plugin imports flatstore and control; control imports flatstore (for
// Listen and ErrNotManaged) and filestore (for its Status type);
// cmd/flatstore-ctl imports event (and ParseConfig, for configs). event
// imports nothing of the project, filestore only the logger, and nothing
// below plugin imports cgo (house_test.go: TestImportRules).
//
// # Using it
//
// ParseConfig reads an output's keys through a Getter (Fluent Bit's lookup
// in the plugin, a MapGetter in tests) into a validated Config. A Process
// is what the outputs of one process share (the files, the metrics, the
// maintenance goroutine); NewInstance makes an output in it. Instance.Flush
// writes one chunk and answers OK, Retry or Error, which package plugin
// maps to FLB_OK, FLB_RETRY and FLB_ERROR. Instance.Close ends it.
//
// # Data flow
//
// Data flows one way. A flush walks the chunk in place (event.Decoder);
// each record becomes one line, appended where it lies in the buffer of its
// file's group (event.Encoder: no allocation per record); the lines of a
// chunk are bounded together by event.Budget. Each group goes to its file
// through the file store's door — Store.Pin, File.Write (one write(2) per
// file and flush), Store.Unpin — so that a flush needing more files than
// max_open_sockets writes them in waves.
//
// # Results and delivery
//
// A record that cannot become a line is skipped and counted under its
// reason (event.DropReasons, DropBadPath, DropMaxFiles): the rest of the
// chunk goes on. A failure of the file system (ENOSPC, EIO…) answers Retry
// with what it wrote of the failing file cut back; a chunk with no msgpack
// at all is an Error. A chunk answered Retry is remembered — how many lines
// of each of its files landed — so that the engine's resend writes each
// line once (resend.go): exactly once while the process lives.
// docs/delivery.md is the user's side of this.
//
// # Lock order
//
// A flush holds its instance's life lock shared (Close takes it
// exclusively), then, for each file in turn, that File's lock, then
// perhaps another File's (a victim closed for a slot), then the Store's.
// The Store never takes a File's lock while holding its own, and the
// Process's lock (the outputs that are live) is never held across a write.
//
// # What it trusts
//
// Records are data, never commands: no value of a record chooses a file
// outside its template's directory, another output's file, or flatstore's
// state directory, and no record can make retention delete or compress a
// file (package filestore: Opening a file, Retention and the manifest). The
// configuration and the file system's administrator are trusted; so is
// whoever holds control_token (docs/delivery.md: what flatstore trusts).
package flatstore
