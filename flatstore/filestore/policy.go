package filestore

import (
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/strftime"
)

// The reasons of a rotation, as counted (flatstore_rotations_total) and
// reported by Status. Only ReasonMI comes from outside (File.Reopen); the
// others are the store's own.
const (
	ReasonMI          = "mi"           // the control endpoint's rotate: logrotate moved the file
	ReasonPeriod      = "period"       // rotate_period
	ReasonCount       = "count"        // rotate_count
	ReasonSize        = "size"         // rotate_size
	ReasonReopenCheck = "reopen_check" // the path was moved without a rotate call
)

// RotationReasons lists every rotation reason.
func RotationReasons() []string {
	return []string{ReasonMI, ReasonPeriod, ReasonCount, ReasonSize, ReasonReopenCheck}
}

// RotateOptions are the rotation keys of the instance that first uses a path.
type RotateOptions struct {
	Suffix      string         // strftime pattern appended to the path at each open
	Location    *time.Location // the suffix's time zone (time_zone); nil: UTC
	Period      time.Duration  // rotate_period (0: off)
	Count, Size int64          // rotate_count lines, rotate_size bytes (0: off)
	ReopenCheck time.Duration  // reopen_check (0: off)
}

// In is t in the suffix's time zone.
func (o *RotateOptions) In(t time.Time) time.Time {
	if o.Location == nil {
		return t.UTC()
	}
	return t.In(o.Location)
}

// asideName is the name a rotated file takes when the path has no suffix:
// path.YYYYMMDD-HHMMSS, the UTC time of the rotation, and _001, _002…
// after it when that name is taken (several rotations in one second). The
// live file keeps the path's own name. Sorted by name, the rotated files
// come in the order they were written, compressed (.gz, .zst) or not, up
// to 999 rotations in one second.
//
// The counter only goes up within a second (r remembers the last name), so
// a name retention has since deleted is never taken again for a newer file.
func (r *policy) asideName(path string, now time.Time, taken func(string) bool) string {
	base := path + "." + now.UTC().Format("20060102-150405")
	name, i := base, 0
	if base == r.asideBase {
		i = r.asideSeq + 1
		name = fmt.Sprintf("%s_%03d", base, i)
	}
	for taken(name) {
		i++
		name = fmt.Sprintf("%s_%03d", base, i)
	}
	r.asideBase, r.asideSeq = base, i
	return name
}

// builtIn reports whether the options rotate by themselves.
func (o RotateOptions) builtIn() bool { return o.Period > 0 || o.Count > 0 || o.Size > 0 }

// fileID is which file a name held when it was last open: its name, its
// inode and its size then.
type fileID struct {
	name     string
	dev, ino uint64
	size     int64
}

// sameAs reports whether st, opened as name, is the file id describes,
// unchanged.
func (id fileID) sameAs(name string, st *unix.Stat_t) bool {
	return name == id.name && sameFile(st, id.dev, id.ino) && st.Size == id.size
}

// policy is the rotation state of one path. The File that holds it
// guards it with its lock.
type policy struct {
	opt RotateOptions

	period  int64     // rotate_period index of the open file
	lines   int64     // lines written since the open
	checked time.Time // last reopen_check
	base    string    // path + suffix at the open, before any .1, .2…
	fresh   bool      // closed by a built-in rotation: the next open takes a new name
	resume  bool      // closed by us: the next open goes on in the same file
	// The last name a rotated file was set aside to: its second, and its
	// counter within that second.
	asideBase string
	asideSeq  int
}

// isBuiltIn reports whether reason is a rotation flatstore makes by itself.
func isBuiltIn(reason string) bool {
	return reason == ReasonPeriod || reason == ReasonCount || reason == ReasonSize
}

// baseName is path + suffix for now, in the suffix's time zone.
func (r *policy) baseName(path string, now time.Time) string {
	if r.opt.Suffix == "" {
		return path
	}
	return string(strftime.Append([]byte(path), r.opt.Suffix, r.opt.In(now)))
}

// pickName chooses the name the next open takes, given the file that was
// open last (prev, with its identity) and whether names exist.
func (r *policy) pickName(path string, now time.Time, prev fileID, exists func(string) bool, same func(name string, id fileID) bool) (base, name string) {
	base = r.baseName(path, now)
	name = base
	switch {
	case r.fresh:
		for i := 1; exists(name); i++ {
			name = base + "." + strconv.Itoa(i)
		}
	case r.resume && base == r.base && prev.name != base && prev.name != "":
		if same(prev.name, prev) {
			name = prev.name
		}
	}
	return base, name
}

// opened records an open of name (base + perhaps .N) at now; continued
// says whether it is the very file that was open before, unchanged, so
// that rotate_count goes on counting.
func (r *policy) opened(base string, now time.Time, continued bool) {
	if !continued {
		r.lines = 0
	}
	r.base, r.fresh, r.resume, r.checked = base, false, false, now
	if r.opt.Period > 0 {
		r.period = r.periodOf(now)
	}
}

// full tells why an existing file must not be appended to by a normal
// open: its size already reached rotate_size, or it was last written in an
// earlier rotate_period (closed by idle_timeout, a restart, or a template
// path forgotten in between: the boundary is not skipped).
func (r *policy) full(st *unix.Stat_t, now time.Time) string {
	if s := r.opt.Size; s > 0 && st.Size >= s {
		return ReasonSize
	}
	if r.opt.Period > 0 && st.Size > 0 && r.periodOf(time.Unix(st.Mtim.Unix())) < r.periodOf(now) {
		return ReasonPeriod
	}
	return ""
}

// periodEnded reports whether the open file's rotate_period is over. A
// clock stepped back does not rotate, and re-arms the period: the open
// file takes the period of now, so the next boundary the clock really
// crosses rotates it (not the one the clock had reached before its step,
// a year later perhaps).
func (r *policy) periodEnded(now time.Time) bool {
	if r.opt.Period <= 0 {
		return false
	}
	p := r.periodOf(now)
	if p < r.period {
		r.period = p
	}
	return p > r.period
}

// reopenDue reports whether a reopen_check is due, and starts the next
// interval when it is.
func (r *policy) reopenDue(now time.Time) bool {
	rc := r.opt.ReopenCheck
	if rc <= 0 || now.Sub(r.checked) < rc && !now.Before(r.checked) {
		return false
	}
	// Due, or the clock went back: a check now re-arms the interval.
	r.checked = now
	return true
}

// due returns when the open file next needs a timed check (zero: never):
// the end of its rotate_period, or its next reopen_check.
func (r *policy) due() time.Time {
	var d time.Time
	if r.opt.Period > 0 {
		p := int64(r.opt.Period / time.Second)
		d = time.Unix((r.period+1)*p, 0)
	}
	if rc := r.opt.ReopenCheck; rc > 0 {
		d = earlier(d, r.checked.Add(rc))
	}
	return d
}

// linesFitting returns how many of the lines ahead (their ends, from ends[li] on,
// the first starting at start) go into the open file of size bytes: the
// line that reaches a limit stays in it.
func (r *policy) linesFitting(ends []int, li, start int, size int64) int {
	k := len(ends) - li
	if c := r.opt.Count; c > 0 {
		k = min(k, int(max(c-r.lines, 1)))
	}
	if s := r.opt.Size; s > 0 {
		j := li
		for j < li+k-1 && size+int64(ends[j]-start) < s {
			j++
		}
		k = j - li + 1
	}
	return k
}

// wrote counts lines written and returns the reason of the rotation they
// make due, or "".
func (r *policy) wrote(lines int, size int64) string {
	r.lines += int64(lines)
	switch {
	case r.opt.Count > 0 && r.lines >= r.opt.Count:
		return ReasonCount
	case r.opt.Size > 0 && size >= r.opt.Size:
		return ReasonSize
	}
	return ""
}

// noteClose records a close for reason ("" for a close of our own).
func (r *policy) noteClose(reason string) {
	switch {
	case isBuiltIn(reason):
		r.fresh = true
	case reason == "":
		r.resume = true
	}
}

// periodOf is the rotate_period index of t: periods are aligned to the epoch.
func (r *policy) periodOf(t time.Time) int64 {
	p := int64(r.opt.Period / time.Second)
	q := t.Unix() / p
	if t.Unix() < 0 && t.Unix()%p != 0 {
		q--
	}
	return q
}
