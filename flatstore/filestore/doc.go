// Package filestore keeps flatstore's event files on disk: which files are
// open, each file's writes, its rotation and what happens to the files it
// rotated. It knows no msgpack and no flatstore.Config: an output describes how
// its files are written with Options, and the store reports what it does by
// itself (rotations, deletions) to a Counter, which the metrics implement.
//
// # The door
//
// A Store is the process's set of files: one File (one handle, one lock) per
// path, shared by every output that writes the path, so that their lines never
// interleave. The flush sees it through five calls, as Fluent Bit's out_file
// sees its file_rotate.h:
//
//   - Store.Pin returns the File of a path, pinned for one write (it is not
//     closed for a slot nor forgotten meanwhile); it refuses a path that is
//     another output's file.
//   - File.Write appends lines as one write(2), or one per file when
//     rotate_count or rotate_size splits them, and cuts back what it wrote
//     on error; it returns the rotations it made.
//   - Store.Unpin ends the write.
//   - File.Reopen closes the file for a rotation asked from outside
//     (logrotate's rotate call): the next write opens the path afresh.
//   - File.Status reports the file.
//
// An output's configured path is held for its life with Store.Acquire and
// Store.Release; Store.Start and Store.Stop count the outputs and run the
// maintenance goroutine (idle_timeout, rotate_period, reopen_check,
// rotate_max_age) while there is one. It sleeps until the earliest
// deadline its last round found (Store.Tick returns it), at most a minute
// (a step of the wall clock is noticed within it), or until a file or a
// journal opens; with nothing open and no rotate_max_age to apply it has no
// timer at all, so an idle process is not woken (a file found busy is looked
// at again after Env.Retry).
//
// # Slots and the lock order
//
// max_open_sockets bounds the files one output keeps open at once, as a
// cache: each output has its own Slots, and one output's files never count
// against another's. A File takes a slot of the output that writes it before
// it opens; when that output has none free, its own least recently used open
// file that no flush is writing is closed (its next write reopens the same
// file, O_APPEND), so a flush that needs more files than the limit writes them
// in waves. Only when every slot of that output is held by a write in
// progress does Write (or Append) return ErrNoSlot (the flush answers RETRY); another
// output is never refused, nor has its files closed, because of it.
//
// A flush holds the Files of its chunk (File.Hold) until it knows the
// outcome, then commits or aborts them all. When it needs more files than
// the limit, it closes the descriptors of the files it holds already
// (File.CloseHeld) to open the next; File.Abort reopens those by name to
// cut them back.
//
// Lock order: Files' locks in the order of their paths (a flush holds
// several), then the Store's. A victim closed for a slot (open, and pinned
// by no flush) is taken with TryLock, never waited for: its lock may be
// held by a flush that waits for one its evictor holds. The Store never
// takes a File's lock while holding its own. A File's rotation state (policy) and its series of
// rotated files are guarded by the File's lock and the series' own.
//
// # The journal
//
// A flush that holds its Files journals each write before making it
// (File.Append with a GroupIntent, journal.go), in the output's Journal:
// where the bytes of which chunk go. A flush over several Files prepares
// them all first (File.Prepare: the checks, the open and the intent of the
// first write), so that under sync flush one fdatasync of the journal
// covers every intent before the first byte. The records are stores into
// a mapping of the journal's preallocated file; a fault of one panics
// (debug.SetPanicOnFault, on from Tx.Begin to Tx.End) and the flush hands
// it to Tx.Fault, which turns the journal to pwrite. After a restart,
// File.Replayed reads the records back from disk to tell what of a
// replayed chunk had landed.
//
// # Opening a file
//
// How an event file is opened (docs/rotation.md):
//
//   - for appending, O_WRONLY|O_APPEND|O_CLOEXEC, created with O_EXCL first
//     so that this open knows whether it made the file (a new file gets
//     exactly file_permissions, whatever the umask; an existing one keeps
//     its mode);
//   - with O_NONBLOCK, so that a FIFO at the path never blocks the open,
//     then checked with fstat: anything but a regular file is refused
//     (errNotRegular) and the flag is cleared for the regular file;
//   - a configured path is opened as written: its directories may be
//     symlinks, as administrators use them;
//   - a path rendered from a template is resolved beneath the template's
//     static directory, one component at a time, each with openat2's
//     RESOLVE_BENEATH, so no symlink can lead out of it; directories that
//     mkdir creates are created beneath the same descriptors (mkdirat).
//     The file itself is opened with O_NOFOLLOW, and one with more than
//     one hard link is refused: a link planted at a rendered name never
//     steers lines into another file, another output's included.
//     Without openat2 (Linux before 5.6, or a seccomp filter refusing it)
//     every rendered component is opened with O_NOFOLLOW: no symlink at
//     all is followed there.
//   - a rendered part with a component named .flatstore (in any case: a
//     case-folding directory would find the state directory under
//     .FlatStore) is refused (errReserved, a bad path): that is where
//     flatstore keeps its own state (Retention, below), and no record may name
//     it.
//
// # Rotation
//
// Rotation in flatstore is closing a file so that the next write opens it
// again (docs/rotation.md). policy.go holds the policy — when a file rotates
// and what the next one is called — as the state of one path, policy, which
// the File (file.go) consults under its lock and which does no I/O of its own.
//
//   - Names without a suffix. The live file is always the path itself. A
//     built-in rotation (period, count, size) closes it and renames it
//     aside to path.YYYYMMDD-HHMMSS (UTC, the time of the rotation; _001,
//     _002… when several fall in one second, see policy.asideName), so `tail -f path`
//     follows the stream and the rotated files sort as they were written.
//     The next line creates the path again.
//   - Names with a suffix (OpenSIPS 3.6's way). Each open computes name =
//     path + strftime(suffix, now), in RotateOptions.Location (time_zone;
//     UTC by default), and writes under that name. A
//     normal open (first write, after an mi rotate, after reopen_check)
//     appends to that name. An open after a built-in rotation takes the
//     first of name, name.1, name.2… that does not exist and was not
//     rotated before (compressed or not), so nothing is overwritten or
//     appended to, even when two rotations fall in the same second. An
//     open after a close of our own (idle_timeout, eviction by
//     max_open_sockets, instance exit) with the same name goes on in the
//     file that was open (name.2, say), if nobody moved it. A template
//     path's File that the pool forgets when its file closes hands this on
//     to the next File of that path (its memory).
//   - Every built-in rotation is logged with the old and the new name, and
//     recorded for retention and compression (Retention, below).
//   - mi (external): logrotate moves the file and asks the control endpoint
//     to rotate it: the handle closes at once (waiting for a write in
//     progress) and nothing is created until the next write.
//   - reopen_check: at a write or a maintenance tick at least reopen_check
//     after the last check, a path that names another inode or nothing is
//     closed and opened again (a normal open), with a warning that the
//     rotate call is missing. A move younger than a second is left for the
//     next check, so that logrotate's own rotate call, on its way, is not
//     taken for missing.
//   - rotate_count, rotate_size: the line that reaches the limit stays in
//     the old file, which is closed then; the next file is created only
//     when the next line comes, so no empty file is left behind. One flush
//     may span several files, one write(2) each. rotate_size counts from
//     the file's real size at open, and an existing file already at the
//     limit is not appended to. rotate_count counts lines written since the
//     open (and on across a reopen of the very same, unchanged file).
//   - rotate_period: periods are aligned to the epoch (index = unix/period).
//     Lines written in different periods never share a file, and every
//     period that received lines has its own file. A write checks the
//     period under the file's lock with the clock read after taking it, so
//     a write that waited behind a stalled one, or a maintenance tick that
//     skipped a busy file, still rotates at its first write in the new
//     period; the lines of a write belong to the period in which it took the
//     lock. The maintenance tick closes a file whose period ended, so the
//     rotation does not wait for the next line. Periods with no line create
//     no file, and several boundaries crossed with no line in between make
//     one rotation. An existing non-empty file last modified (mtime) in an
//     earlier period is not appended to by a normal open either (after
//     idle_timeout, a restart…). A clock stepped back never rotates; it
//     re-arms the period, so rotation resumes at the next boundary the
//     clock crosses (a step of a year ahead and back costs one rotation,
//     not a year of them).
//
// Every rotation is counted in flatstore_rotations_total{reason} and kept
// as the file's last rotation for Status; it is logged by the instance that
// made it (or, for the maintenance tick, the first instance of the path).
//
// # Retention and the manifest
//
// Retention and compression of the files flatstore rotates (docs/rotation.md):
// rotate_max_files keeps at most N rotated files of a path, rotate_max_age
// deletes those rotated longer ago than that, and compress gzips or zstds
// each rotated file in the background (compress.go).
//
// Only files that flatstore itself rotated are ever compressed or deleted,
// and it tells them by a manifest, not by their names. A record is data,
// never a command, so the manifest lives where no record can reach and
// carries a proof that only flatstore can make:
//
//   - State directory. Each log directory with retention or compression
//     has a private directory, DIR/.flatstore (mode 0700), made with mkdirat
//     and opened with O_NOFOLLOW. It is used only when fstat shows a
//     directory owned by the running user with no group or other
//     permission; otherwise retention and compression do nothing for that
//     directory, with a warning. No rendered path may name it (Opening a file:
//     errReserved), so no record reaches a file in it.
//   - Manifests. The manifest of a path is DIR/.flatstore/H.json, H the hex
//     of the first 16 bytes of SHA-256 of the full path (any path length
//     fits a name). It holds the path and the files rotated from it — name,
//     inode, size and mtime, time and reason of the rotation, compression —
//     then a line with an HMAC-SHA256 of all that under a 32-byte random key
//     kept in DIR/.flatstore/key (0600). It is written whole under a
//     temporary name (created O_EXCL|O_NOFOLLOW, fchmod'ed, fsync'd) and
//     renamed. A manifest that does not verify — not JSON, another path,
//     a bad MAC, anything appended — is ignored with a warning and never
//     acted on. Manifests of earlier versions (DIR/.NAME.flatstore) are
//     ignored the same way: the files they list are left alone.
//   - Acting on a file. An entry names a plain file of the path's directory
//     whose name begins with the path's own name. Before it is deleted or
//     compressed, fstatat (not following links) must show a regular file
//     with the recorded device, inode, size and mtime, one link, owned by
//     the running user; compression reads the very descriptor it checked
//     (O_NOFOLLOW), writes the compressed file in the state directory
//     (O_EXCL|O_NOFOLLOW) with the source's mode (fchmod), renames it into
//     place without replacing anything, and unlinks the source after
//     checking it again. unlinkat removes a name, never what a link points
//     to. A file that fails a check is forgotten and left as it is.
//   - Crash recovery. Every step that moves a file is recorded before it is
//     made: the intent to rename the live file aside (its inode, from the
//     open descriptor) before the rename, and the compressed file's
//     identity before it is renamed into place. At the first open of a
//     path after a start its manifest is read: an intent whose target now
//     holds that inode is confirmed (and compressed, retained), otherwise
//     dropped; a compression whose result is in place is finished (the
//     original, if still the recorded file, removed), otherwise its
//     temporary file is removed and it is done again.
//   - Ages. rotate_max_age ages a file by CLOCK_BOOTTIME, which a step of
//     the wall clock does not move: a file rotated in this boot ages from
//     the boottime recorded at its rotation; one from an earlier boot by
//     the wall clock between its rotation and the load (never less than
//     zero), then by boottime. A wall clock stepped 8 days ahead deletes
//     nothing that real time would not have.
//
// Retention counts compressed files, in the order they were rotated (the
// manifest's order, not their wall-clock times).
//
// # What a failure means
//
// What a failed open, write or sync means, sorted by what a retry can fix
// (docs/delivery.md):
//
//   - The rendered name itself is impossible: it is too long, a component
//     is not a directory, it names a directory, a FIFO or a device, it
//     leads out of the template's directory through a link, or the file
//     system refuses the name. Retrying the same record renders the same
//     name, so the records bound for that path are dropped (reason
//     bad_path) and the rest of the chunk is written.
//   - Everything else belongs to the file system (ENOSPC, EDQUOT, EIO,
//     EROFS, EACCES, EMFILE, ENFILE…): it may pass, so the flush answers
//     RETRY, with what it wrote of the failing file cut back.
//
// A configured static path is never dropped: an error there is always a
// RETRY, because every record of the output goes there and an operator can
// fix the path (say, remove a directory created in its place).
package filestore
