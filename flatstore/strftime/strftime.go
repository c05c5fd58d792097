// Package strftime is the one strftime grammar of flatstore: the suffix
// key's names (package filestore) and the date and time conversions of the
// path key (package event's templates). It imports nothing of the project.
//
// The conversions are dates and times only, none of which can render a
// '/', a '.', nothing at all, or anything a locale changes: %Y %m %d %H %M
// %S %y %j %s %F %T %b %e %z, and %% for a literal '%'. A time is rendered
// in the location of the time.Time given (the time_zone key: UTC unless
// set).
package strftime

import (
	"fmt"
	"strconv"
	"time"
)

// Conversions lists the letters that may follow '%'.
const Conversions = "YmdHMSyjsFTbez%"

// IsConversion reports whether %c is a supported conversion.
func IsConversion(c byte) bool {
	for j := 0; j < len(Conversions); j++ {
		if c == Conversions[j] {
			return true
		}
	}
	return false
}

// ErrUnsupported is the text of the error for %c, which is not supported.
func ErrUnsupported(c byte) error {
	return fmt.Errorf("%%%c is not a supported date or time conversion; use %%Y %%m %%d %%H %%M %%S %%y %%j %%s %%F %%T %%b %%e %%z, or %%%% for a literal %%", c)
}

// CheckSuffix checks a suffix pattern: supported conversions, no lone '%'
// and no '/' (the suffix is appended to the file's name).
func CheckSuffix(p string) error {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return fmt.Errorf("must not contain '/': the suffix is appended to the file name")
		}
		if p[i] != '%' {
			continue
		}
		if i+1 >= len(p) {
			return fmt.Errorf("ends with a lone %%: write %%%% for a literal %%")
		}
		i++
		if !IsConversion(p[i]) {
			return ErrUnsupported(p[i])
		}
	}
	return nil
}

// Append appends pattern p formatted for t, in t's location, to dst.
func Append(dst []byte, p string, t time.Time) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 >= len(p) {
			dst = append(dst, p[i])
			continue
		}
		i++
		dst = AppendConv(dst, p[i], t)
	}
	return dst
}

// AppendConv appends the conversion %c of t, in t's location, to dst; an
// unsupported c is appended as itself.
func AppendConv(dst []byte, c byte, t time.Time) []byte {
	two := func(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }
	switch c {
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
		y := t.Year() % 100
		if y < 0 {
			y = -y
		}
		dst = two(dst, y)
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
		dst = t.AppendFormat(dst, "-0700")
	default:
		dst = append(dst, c)
	}
	return dst
}

// Format is pattern p formatted for t, in t's location.
func Format(p string, t time.Time) string { return string(Append(nil, p, t)) }
