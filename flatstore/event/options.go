package event

import (
	"fmt"
	"strconv"
	"strings"
)

// Options are the settings that shape a line: what the keys delimiter,
// escape, escape_delimiter, event_key, params_key, params, time_format,
// suppress_event_name and header of the output say (README: Configuration). The
// zero value is not usable: Delimiter must hold at least one byte.
type Options struct {
	// EventKey names the record key whose string value is the event name
	// (else the tag is).
	EventKey string
	// ParamsKey, when set, names the record key whose value holds the
	// parameters (a map's values, or an array's elements); the record's
	// other keys are not parameters.
	ParamsKey string
	// Params, when set, names the keys whose values are the parameters, in
	// that order; else every key of the record but EventKey is one.
	Params []string
	// EventParams, with ParamsKey, names the parameters of the events it
	// lists, in order: for such an event the columns are these keys of its
	// named parameters (an absent one is an empty field), whatever Params
	// says. OpenSIPS 4.0 leaves a parameter with no value off the wire, so
	// without it the sidecar's lines would be shorter than event_flatstore's.
	EventParams       map[string][]string
	Delimiter         string
	Escape            Escape
	EscapeDelimiter   string // what replaces the delimiter with escape opensips; "" for a space
	SuppressEventName bool
	TimeFormat        TimeFormat
	Header            string // "" none, "auto", or literal text
}

// Escape selects what happens to a delimiter, CR or LF inside a value.
type Escape int

// The escape modes (README: Escape modes).
const (
	EscapeOpenSIPS  Escape = iota // delimiter's first byte, CR and LF become a space
	EscapeNone                    // raw bytes, as OpenSIPS ≤ 3.5
	EscapeBackslash               // reversible backslash escapes
	EscapeCSV                     // RFC 4180 quoting
	// EscapeOpenSIPSExact is OpenSIPS ≥ 3.6 byte for byte: the delimiter's
	// first byte becomes a space, CR and LF stay raw (an event may span
	// lines), the event name is written as it is, and with
	// suppress_event_name the delimiters of leading empty values are left
	// out.
	EscapeOpenSIPSExact
)

func (e Escape) String() string {
	names := [...]string{EscapeOpenSIPS: "opensips", EscapeNone: "none", EscapeBackslash: "backslash",
		EscapeCSV: "csv", EscapeOpenSIPSExact: "opensips_exact"}
	if e >= 0 && int(e) < len(names) {
		return names[e]
	}
	return "escape(" + strconv.Itoa(int(e)) + ")"
}

// Escapes lists the modes in the order the documentation gives them.
func Escapes() []Escape {
	return []Escape{EscapeOpenSIPS, EscapeOpenSIPSExact, EscapeNone, EscapeBackslash, EscapeCSV}
}

// TimeFormat selects how the record time is written as the first parameter.
type TimeFormat int

// The time formats (README: What it writes).
const (
	TimeNone TimeFormat = iota
	TimeUnix
	TimeUnixMs
	TimeUnixNs
	TimeRFC3339
	TimeRFC3339Nano
)

func (t TimeFormat) String() string {
	names := [...]string{TimeNone: "none", TimeUnix: "unix", TimeUnixMs: "unix_ms", TimeUnixNs: "unix_ns",
		TimeRFC3339: "rfc3339", TimeRFC3339Nano: "rfc3339_nano"}
	if t >= 0 && int(t) < len(names) {
		return names[t]
	}
	return "time_format(" + strconv.Itoa(int(t)) + ")"
}

// TimeFormats lists every time format.
func TimeFormats() []TimeFormat {
	return []TimeFormat{TimeNone, TimeUnix, TimeUnixMs, TimeUnixNs, TimeRFC3339, TimeRFC3339Nano}
}

// Check returns a problem for every combination of delimiter, escape and
// escape_delimiter that cannot write a line the escape mode promises (a
// csv or backslash line that reads back), each naming its key and value.
func (o Options) Check() []error {
	var errs []error
	bad := func(key, val, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s %q: %s", key, val, fmt.Sprintf(format, a...)))
	}
	if ed := o.EscapeDelimiter; ed != "" {
		switch {
		case len(ed) != len(o.Delimiter):
			// The words OpenSIPS uses.
			errs = append(errs, fmt.Errorf("%q length (%d) must match %q length (%d)",
				"escape_delimiter", len(ed), "delimiter", len(o.Delimiter)))
		case o.Escape != EscapeOpenSIPS:
			bad("escape_delimiter", ed, "only applies with escape opensips (escape is %s)", o.Escape)
		}
	}
	if o.Escape == EscapeCSV && len(o.Delimiter) != 1 {
		bad("delimiter", o.Delimiter, "escape csv needs a single-byte delimiter")
	}
	if o.Escape == EscapeCSV && o.Delimiter == `"` {
		bad("delimiter", o.Delimiter, "escape csv cannot use the quote character as delimiter")
	}
	if o.Escape == EscapeBackslash && strings.HasPrefix(o.Delimiter, `\`) {
		bad("delimiter", o.Delimiter, "escape backslash cannot use a delimiter that starts with a backslash")
	}
	if o.Escape == EscapeBackslash && (o.Delimiter[0] == 'n' || o.Delimiter[0] == 'r') {
		// Its escape, \n or \r, would read back as LF or CR.
		bad("delimiter", o.Delimiter, "escape backslash cannot use a delimiter that starts with n or r: its escape would read as \\n or \\r")
	}
	return errs
}
