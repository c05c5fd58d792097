package flatstore

import (
	"fmt"
	"strconv"
	"time"
)

// Rotation in flatstore is closing a file so that the next write opens it
// again (SPEC §4). The mechanics live in file.go (per file) and pool.go
// (the maintenance tick); this comment is the contract, this file holds the
// suffix patterns.
//
//   - Names. Each open computes name = path + strftime(suffix, now), in UTC.
//     A normal open (first write, after an mi rotate, after reopen_check)
//     appends to that name. An open after a built-in rotation (period,
//     count, size) takes the first of name, name.1, name.2… that does not
//     exist, so nothing is overwritten or appended to, even when two
//     rotations fall in the same second. An open after a close of our own
//     (idle_timeout, instance exit) with the same name goes on in the file
//     that was open (name.2, say), if nobody moved it. A template path's
//     File that the pool forgets when its file closes hands all this on to
//     the next File of that path (pool.memo).
//   - mi (external): logrotate moves the file and asks the control endpoint
//     to rotate it: the handle closes at once (waiting for a write in
//     progress) and nothing is created until the next write.
//   - reopen_check: at a write or a maintenance tick at least reopen_check
//     after the last check, a path that names another inode or nothing is
//     closed and opened again (a normal open).
//   - rotate_count, rotate_size: the line that reaches the limit stays in
//     the old file, which is closed then; the next file is created only
//     when the next line comes, so no empty file is left behind. One flush
//     may span several files, one write(2) each. rotate_size counts from
//     the file's real size at open, and an existing file already at the
//     limit is not appended to. rotate_count counts lines written since the
//     open (and on across a reopen of the very same, unchanged file).
//   - rotate_period: periods are aligned to the epoch (index = unix/period).
//     "A boundary is never skipped" means: lines written in different
//     periods never share a file, and every period that received lines has
//     its own file. A write checks the period under the file's lock with
//     the clock read after taking it, so a write that waited behind a
//     stalled one, or a maintenance tick that skipped a busy file, still
//     rotates at its first write in the new period; the lines of a write
//     belong to the period in which it took the lock. The maintenance tick
//     closes a file whose period ended, so the rotation does not wait for
//     the next line. Periods with no line create no file, and several
//     boundaries crossed with no line in between make one rotation. An
//     existing non-empty file last modified (mtime) in an earlier period is
//     not appended to by a normal open either (after idle_timeout, a
//     restart…). A clock stepped back never rotates: periods only move
//     forward.
//
// Every rotation is counted in flatstore_rotations_total{reason} and kept
// as the file's last rotation for Status; it is logged by the instance that
// made it (or, for the maintenance tick, the first instance of the path).

// strftime conversions supported in suffix.
const strftimeConv = "YmdHMSyjsFTbez%"

func checkStrftime(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return fmt.Errorf("must not contain '/': the suffix is appended to the file name")
		}
		if p[i] != '%' {
			continue
		}
		if i+1 >= len(p) {
			return fmt.Errorf("ends with a lone %%")
		}
		i++
		ok := false
		for j := 0; j < len(strftimeConv); j++ {
			if p[i] == strftimeConv[j] {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%%%c is not supported; use %%Y %%m %%d %%H %%M %%S %%y %%j %%s %%F %%T %%b %%e %%z or %%%%", p[i])
		}
	}
	return nil
}

// appendStrftime appends pattern p formatted for t (UTC) to dst.
func appendStrftime(dst []byte, p string, t time.Time) []byte {
	t = t.UTC()
	two := func(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 >= len(p) {
			dst = append(dst, p[i])
			continue
		}
		i++
		switch p[i] {
		case 'Y':
			dst = strconv.AppendInt(dst, int64(t.Year()), 10)
		case 'm':
			dst = two(dst, int(t.Month()))
		case 'd':
			dst = two(dst, t.Day())
		case 'e':
			if t.Day() < 10 {
				dst = append(dst, ' ')
			}
			dst = strconv.AppendInt(dst, int64(t.Day()), 10)
		case 'H':
			dst = two(dst, t.Hour())
		case 'M':
			dst = two(dst, t.Minute())
		case 'S':
			dst = two(dst, t.Second())
		case 'y':
			dst = two(dst, t.Year()%100)
		case 'j':
			d := t.YearDay()
			dst = append(dst, byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10))
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'F':
			dst = t.AppendFormat(dst, "2006-01-02")
		case 'T':
			dst = t.AppendFormat(dst, "15:04:05")
		case 'b':
			dst = t.AppendFormat(dst, "Jan")
		case 'z':
			dst = append(dst, "+0000"...)
		default:
			dst = append(dst, p[i])
		}
	}
	return dst
}
