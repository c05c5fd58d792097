package event

import "math"

// Columns names the fields of a line that opt writes: "event" (unless
// suppress_event_name), "time" (with a time_format), then the params, if
// named.
func Columns(opt Options) []string {
	var cols []string
	if !opt.SuppressEventName {
		cols = append(cols, "event")
	}
	if opt.TimeFormat != TimeNone {
		cols = append(cols, "time")
	}
	return append(cols, opt.Params...)
}

// HeaderLine returns the header for opt (without its newline): the literal
// text, or for "auto" the column names joined by the delimiter.
func HeaderLine(opt Options) []byte {
	switch opt.Header {
	case "":
		return nil
	case "auto":
		e := NewEncoder(opt)
		var out []byte
		for i, c := range Columns(opt) {
			if i > 0 {
				out = append(out, e.delim...)
			}
			out, _ = e.appendEscaped(out, []byte(c), math.MaxInt)
		}
		return out
	}
	return []byte(opt.Header)
}
