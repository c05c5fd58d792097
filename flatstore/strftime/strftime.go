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
// A byte that is not printable ASCII is shown quoted ("%\n"), so that the
// message stays one line of text.
func ErrUnsupported(c byte) error {
	conv := "%" + string(rune(c))
	if c <= ' ' || c >= 0x7f {
		conv = strconv.Quote("%" + string([]byte{c}))
	}
	return fmt.Errorf("%s is not a supported date or time conversion; use %%Y %%m %%d %%H %%M %%S %%y %%j %%s %%F %%T %%b %%e %%z, or %%%% for a literal %%", conv)
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
	var f Fields
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 >= len(p) {
			dst = append(dst, p[i])
			continue
		}
		if !f.set {
			f = FieldsOf(t)
		}
		i++
		dst = f.AppendConv(dst, p[i])
	}
	return dst
}

// Fields are the parts of one instant that the conversions render, worked
// out once (a path renders several conversions of each record's time).
type Fields struct {
	set            bool
	year, yday     int
	month, day     int
	hour, min, sec int
	unix           int64
	offset         int // seconds east of UTC
}

// FieldsOf returns the fields of t in t's location.
func FieldsOf(t time.Time) Fields {
	f := Fields{set: true, unix: t.Unix(), yday: t.YearDay()}
	var m time.Month
	f.year, m, f.day = t.Date()
	f.month = int(m)
	f.hour, f.min, f.sec = t.Clock()
	_, f.offset = t.Zone()
	return f
}

// AppendConv appends the conversion %c of t, in t's location, to dst; an
// unsupported c is appended as itself.
func AppendConv(dst []byte, c byte, t time.Time) []byte {
	f := FieldsOf(t)
	return f.AppendConv(dst, c)
}

// months are %b's names, three letters each.
const months = "JanFebMarAprMayJunJulAugSepOctNovDec"

func two(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }

// AppendConv appends the conversion %c of f to dst; an unsupported c is
// appended as itself.
func (f *Fields) AppendConv(dst []byte, c byte) []byte {
	switch c {
	case 'Y':
		dst = strconv.AppendInt(dst, int64(f.year), 10)
	case 'm':
		dst = two(dst, f.month)
	case 'd':
		dst = two(dst, f.day)
	case 'e':
		if f.day < 10 {
			dst = append(dst, ' ')
		}
		dst = strconv.AppendInt(dst, int64(f.day), 10)
	case 'H':
		dst = two(dst, f.hour)
	case 'M':
		dst = two(dst, f.min)
	case 'S':
		dst = two(dst, f.sec)
	case 'y':
		y := f.year % 100
		if y < 0 {
			y = -y
		}
		dst = two(dst, y)
	case 'j':
		d := f.yday
		dst = append(dst, byte('0'+d/100), byte('0'+d/10%10), byte('0'+d%10))
	case 's':
		dst = strconv.AppendInt(dst, f.unix, 10)
	case 'F':
		dst = f.appendYear4(dst)
		dst = append(dst, '-')
		dst = two(dst, f.month)
		dst = append(dst, '-')
		dst = two(dst, f.day)
	case 'T':
		dst = two(dst, f.hour)
		dst = append(dst, ':')
		dst = two(dst, f.min)
		dst = append(dst, ':')
		dst = two(dst, f.sec)
	case 'b':
		dst = append(dst, months[3*f.month-3:3*f.month]...)
	case 'z':
		off, sign := f.offset/60, byte('+')
		if off < 0 {
			off, sign = -off, '-'
		}
		dst = append(dst, sign)
		dst = two(dst, off/60%100)
		dst = two(dst, off%60)
	default:
		dst = append(dst, c)
	}
	return dst
}

// appendYear4 appends the year as %F writes it (Go's "2006"): at least
// four digits, a '-' before a negative one.
func (f *Fields) appendYear4(dst []byte) []byte {
	y := f.year
	if y < 0 {
		dst = append(dst, '-')
		y = -y
	}
	switch {
	case y < 10:
		dst = append(dst, "000"...)
	case y < 100:
		dst = append(dst, "00"...)
	case y < 1000:
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(y), 10)
}

// Format is pattern p formatted for t, in t's location.
func Format(p string, t time.Time) string { return string(Append(nil, p, t)) }
