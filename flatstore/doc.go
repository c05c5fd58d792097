// Package flatstore is the core of the flatstore Fluent Bit output plugin:
// it turns Fluent Bit records into OpenSIPS event_flatstore lines
// (EVENT,p1,p2\n) and appends them to files. It knows nothing of cgo or
// HTTP: package plugin (the c-shared layer) drives it, and package control
// serves the rotate requests and the status of its files.
//
// # The packages
//
// The core is this package and four below it; each imports only those
// below it, and the compiler holds them to it:
//
//	flatstore           keys and ParseConfig, Process and Instance, the flush,
//	                    the metrics
//	flatstore/event     records → lines and back (no I/O)
//	flatstore/filestore event files on disk (no msgpack, no Config)
//	flatstore/logger    the Logger every layer logs through
//	flatstore/strftime  the one strftime grammar, of path and suffix
//
// plugin imports flatstore and control; control imports flatstore (for
// Listen and ErrNotManaged) and filestore (for its Status type);
// cmd/flatstore-ctl imports event (and ParseConfig and CheckConfig, for
// configs). event imports nothing of the project but strftime, filestore
// only the logger and strftime, and nothing below plugin imports cgo
// (house_test.go: TestImportRules).
//
// # Using it
//
// ParseConfig reads an output's keys through a Getter (Fluent Bit's lookup
// in the plugin, a MapGetter in tests) into a validated Config;
// CheckConfig, which the plugin's Init and flatstore-ctl check call, adds
// what the output needs of the file system as a given user (CheckPaths:
// the directory, an existing file to append to, the control socket's
// directory) and joins every problem in one error. A Process
// is what the outputs of one process share (the files, the metrics, the
// maintenance goroutine); NewInstance makes an output in it. Instance.Flush
// writes one chunk and answers OK, Retry or Error, which package plugin
// maps to FLB_OK, FLB_RETRY and FLB_ERROR. Instance.Close ends it.
//
// The metrics live in the Process's Prometheus registry (Process.Gatherer,
// which the control endpoint serves). Instance.ExportTo also creates the
// instance's series, at 0, in a metrics context of the engine
// (EngineMetrics: Fluent Bit's cmetrics context of the output, in package
// plugin), adds to them as it counts — once per flush for the lines and
// bytes, never per record — and copies the process's own series there
// at each change (a rotation, a deletion, a file opened or closed) until
// Close: no timer wakes an idle process for it.
//
// # Data flow
//
// Data flows one way. A flush walks the chunk in place (event.Decoder);
// each record becomes one line, appended where it lies in the buffer of its
// file's group (event.Encoder: no allocation per record); the lines of a
// chunk are bounded together by event.Budget. The groups go to their files
// in the order of their paths through the file store's door — Store.Pin,
// File.Hold, File.Append (one write(2) per file and flush), then, once
// every group is written, File.Commit (or File.Abort for all of them) and
// Store.Unpin. A flush needing more files than max_open_sockets closes the
// descriptors of the files it wrote already (File.CloseHeld: they stay
// held) to open the next.
//
// # Results and delivery
//
// A record that cannot become a line is skipped and counted under its
// reason (event.DropReasons, DropBadPath, DropMaxFiles): the rest of the
// chunk goes on, and stays dropped in a resend (it renders the same paths).
// A failure of the file system (ENOSPC, EIO…) answers Retry with what the
// flush wrote to every file of the chunk cut back (File.Abort): a chunk
// lands whole or not at all, so the engine's resend writes every line once
// and nothing needs to remember the attempt. Each output's journal
// (filestore.Journal) records every write before it is made, so that a
// chunk the engine replays after a crash writes only what had not landed.
// A chunk with no msgpack at all is an Error. Drops are counted when the chunk is done (OK), once.
// docs/delivery.md is the user's side of this.
//
// # Lock order
//
// A flush holds its instance's life lock shared (Close takes it
// exclusively), then the Files of its chunk, locked in the order of their
// paths and held until the outcome is known, then the Store's lock. A
// victim closed for a slot is only ever tried (TryLock), never waited for.
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
