package filestore

import (
	"fmt"
	"strconv"
	"time"
)

// The suffix key's strftime patterns, in UTC (docs/rotation.md).

// strftime conversions supported in suffix.
const strftimeConv = "YmdHMSyjsFTbez%"

func CheckStrftime(p string) error {
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

// Strftime is the name a suffix pattern gives at t (UTC), as the next open
// of a path with that suffix would append it.
func Strftime(p string, t time.Time) string { return string(appendStrftime(nil, p, t)) }
