package flatstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Getter reads one configuration key. Fluent Bit's property lookup is one
// implementation (case-insensitive, "" when the key is absent); MapGetter is
// another, for tests and tools.
type Getter interface {
	Get(key string) string
}

// MapGetter is a Getter over a map. Keys are matched case-insensitively, as
// Fluent Bit does.
type MapGetter map[string]string

// Get returns the value of key, or "" when it is absent.
func (m MapGetter) Get(key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// Escape selects what happens to a delimiter, CR or LF inside a value.
type Escape int

// The escape modes (SPEC §2).
const (
	EscapeOpenSIPS  Escape = iota // delimiter's first byte, CR and LF become a space
	EscapeNone                    // raw bytes, as OpenSIPS ≤ 3.5
	EscapeBackslash               // reversible backslash escapes
	EscapeCSV                     // RFC 4180 quoting
)

var escapeNames = []string{"opensips", "none", "backslash", "csv"}

func (e Escape) String() string { return escapeNames[e] }

// TimeFormat selects how the record time is written as the first parameter.
type TimeFormat int

// The time formats (SPEC §1).
const (
	TimeNone TimeFormat = iota
	TimeUnix
	TimeUnixMs
	TimeUnixNs
	TimeRFC3339
	TimeRFC3339Nano
)

var timeFormatNames = []string{"none", "unix", "unix_ms", "unix_ns", "rfc3339", "rfc3339_nano"}

func (t TimeFormat) String() string { return timeFormatNames[t] }

// Defaults for the keys that have one.
const (
	DefaultEventKey       = "event"
	DefaultDelimiter      = ","
	DefaultFilePerm       = 0o644
	DefaultMaxOpenSockets = 100
	DefaultIdleTimeout    = 60 * time.Second
	DefaultControlListen  = "127.0.0.1:2021"
)

// Config is a validated flatstore output configuration.
type Config struct {
	// Path is the absolute path, or path template, of the event file.
	Path string
	// RawPath is the value as configured (with any "flatstore:" prefix removed,
	// before resolving a relative path); the control endpoint accepts it too.
	RawPath string
	// Template is the parsed Path; Template.Static() reports whether it has
	// no substitution.
	Template *Template

	EventKey          string
	Params            []string
	Delimiter         string
	Escape            Escape
	EscapeDelimiter   string
	SuppressEventName bool
	TimeFormat        TimeFormat
	Header            string // "" none, "auto", or literal text
	FilePerm          os.FileMode
	Mkdir             bool
	MaxOpenSockets    int
	IdleTimeout       time.Duration
	SyncFlush         bool
	ReopenCheck       time.Duration
	RotatePeriod      time.Duration
	RotateCount       int64
	RotateSize        int64
	Suffix            string

	ControlListen string // "off", "HOST:PORT" or "unix:/path"
	ControlToken  string
	// ControlListenDefault is true when control_listen was not set: failing to
	// bind it is a warning, not an error.
	ControlListenDefault bool
}

// Key describes one configuration key.
type Key struct {
	Name    string
	Default string
	Help    string
}

// Keys lists every key the plugin reads, in the order the README documents them.
var Keys = []Key{
	{"path", "", "file to append events to: flatstore:/path or /path; may hold $TAG, $TAG[n], $EVENT, $key, $key['sub']"},
	{"event_key", DefaultEventKey, "record key whose string value names the event; otherwise the tag"},
	{"params", "", "comma-separated keys written as parameters, in this order; default: every key in record order"},
	{"delimiter", DefaultDelimiter, "separator between event and parameters; aliases tab, space, comma, semicolon, pipe, \\t"},
	{"escape", "opensips", "opensips | none | backslash | csv: what a delimiter, CR or LF inside a value becomes"},
	{"escape_delimiter", "", "with escape opensips: replacement for the whole delimiter (same length)"},
	{"suppress_event_name", "false", "write only the parameters"},
	{"time_format", "none", "none | unix | unix_ms | unix_ns | rfc3339 | rfc3339_nano: record time as first parameter"},
	{"header", "", "line written first into every new empty file: text, or auto (event and params names)"},
	{"file_permissions", "644", "octal mode of newly created files, exact whatever the umask"},
	{"mkdir", "false", "create missing parent directories (0755)"},
	{"max_open_sockets", "100", "most distinct files open at once in the process (1..65535)"},
	{"idle_timeout", "60s", "close files not written for this long (0 = never)"},
	{"sync", "none", "none | flush: fdatasync before a flush returns OK"},
	{"reopen_check", "0", "reopen a file whose path names another inode or nothing, checked this often (0 = off)"},
	{"rotate_period", "0", "rotate every N seconds, boundaries aligned to the epoch (0 = off)"},
	{"rotate_count", "0", "rotate after N lines (0 = off)"},
	{"rotate_size", "0", "rotate after N bytes; k, m, g = ×1024 (0 = off)"},
	{"suffix", "", "strftime pattern appended to the path at each open, e.g. .%Y%m%d-%H%M%S"},
	{"control_listen", DefaultControlListen, "control endpoint: HOST:PORT | unix:/path.sock | off"},
	{"control_token", "", "bearer token required by the control endpoint (needed off loopback)"},
}

// KnownKeys returns the names of every key the plugin reads.
func KnownKeys() []string {
	out := make([]string, len(Keys))
	for i, k := range Keys {
		out[i] = k.Name
	}
	return out
}

// ParseConfig reads and validates every key. It returns one error listing
// every problem, each naming the key, the value and what is allowed.
func ParseConfig(g Getter) (*Config, error) {
	var errs []error
	bad := func(key, val, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s %q: %s", key, val, fmt.Sprintf(format, a...)))
	}
	c := &Config{
		EventKey:       DefaultEventKey,
		Delimiter:      DefaultDelimiter,
		FilePerm:       DefaultFilePerm,
		MaxOpenSockets: DefaultMaxOpenSockets,
		IdleTimeout:    DefaultIdleTimeout,
		ControlListen:  DefaultControlListen,
	}

	// delimiter first: other keys depend on it.
	if v, ok := lookup(g, "delimiter"); ok {
		d, err := parseDelimiter(v)
		if err != nil {
			bad("delimiter", v, "%v", err)
		} else {
			c.Delimiter = d
		}
	}
	if v, ok := lookup(g, "escape"); ok {
		i := indexFold(escapeNames, v)
		if i < 0 {
			bad("escape", v, "must be one of %s", strings.Join(escapeNames, ", "))
		} else {
			c.Escape = Escape(i)
		}
	}
	if v, ok := lookup(g, "escape_delimiter"); ok {
		ed, err := parseDelimiter(v)
		switch {
		case err != nil:
			bad("escape_delimiter", v, "%v", err)
		case len(ed) != len(c.Delimiter):
			// The words OpenSIPS uses.
			errs = append(errs, fmt.Errorf("%q length (%d) must match %q length (%d)",
				"escape_delimiter", len(ed), "delimiter", len(c.Delimiter)))
		case c.Escape != EscapeOpenSIPS:
			bad("escape_delimiter", v, "only applies with escape opensips (escape is %s)", c.Escape)
		default:
			c.EscapeDelimiter = ed
		}
	}
	if c.Escape == EscapeCSV && len(c.Delimiter) != 1 {
		bad("delimiter", c.Delimiter, "escape csv needs a single-byte delimiter")
	}
	if c.Escape == EscapeCSV && c.Delimiter == `"` {
		bad("delimiter", c.Delimiter, "escape csv cannot use the quote character as delimiter")
	}
	if c.Escape == EscapeBackslash && strings.HasPrefix(c.Delimiter, `\`) {
		bad("delimiter", c.Delimiter, "escape backslash cannot use a delimiter that starts with a backslash")
	}

	if v, ok := lookup(g, "event_key"); ok {
		c.EventKey = v
	}
	if v, ok := lookup(g, "params"); ok {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				bad("params", v, "must be a comma-separated list of record keys, with no empty name")
				c.Params = nil
				break
			}
			c.Params = append(c.Params, p)
		}
	}
	c.SuppressEventName = parseBoolKey(g, "suppress_event_name", false, bad)
	if v, ok := lookup(g, "time_format"); ok {
		i := indexFold(timeFormatNames, v)
		if i < 0 {
			bad("time_format", v, "must be one of %s", strings.Join(timeFormatNames, ", "))
		} else {
			c.TimeFormat = TimeFormat(i)
		}
	}
	if v, ok := lookup(g, "header"); ok {
		if strings.ContainsAny(v, "\r\n") {
			bad("header", v, "must be one line (no CR or LF)")
		} else {
			c.Header = v
		}
	}
	if keySet(g, "file_permissions") {
		v := g.Get("file_permissions")
		m, err := parsePerm(v)
		if err != nil {
			bad("file_permissions", v, "%v", err)
		} else {
			c.FilePerm = m
		}
	}
	c.Mkdir = parseBoolKey(g, "mkdir", false, bad)
	if v, ok := lookup(g, "max_open_sockets"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			bad("max_open_sockets", v, "must be an integer from 1 to 65535")
		} else {
			c.MaxOpenSockets = n
		}
	}
	c.IdleTimeout = parseDurationKey(g, "idle_timeout", DefaultIdleTimeout, bad)
	if v, ok := lookup(g, "sync"); ok {
		switch strings.ToLower(v) {
		case "none":
		case "flush":
			c.SyncFlush = true
		default:
			bad("sync", v, "must be none or flush")
		}
	}
	c.ReopenCheck = parseDurationKey(g, "reopen_check", 0, bad)
	c.RotatePeriod = parseDurationKey(g, "rotate_period", 0, bad)
	if c.RotatePeriod > 0 && c.RotatePeriod%time.Second != 0 {
		bad("rotate_period", g.Get("rotate_period"), "must be a whole number of seconds")
	}
	if v, ok := lookup(g, "rotate_count"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			bad("rotate_count", v, "must be a number of lines, 0 or more (0 = off)")
		} else {
			c.RotateCount = n
		}
	}
	if v, ok := lookup(g, "rotate_size"); ok {
		n, err := parseSize(v)
		if err != nil {
			bad("rotate_size", v, "%v", err)
		} else {
			c.RotateSize = n
		}
	}
	if v, ok := lookup(g, "suffix"); ok {
		if err := checkStrftime(v); err != nil {
			bad("suffix", v, "%v", err)
		} else {
			c.Suffix = v
		}
	}
	if v, ok := lookup(g, "control_listen"); ok {
		if err := checkListen(v); err != nil {
			bad("control_listen", v, "%v", err)
		} else {
			c.ControlListen = v
		}
	} else {
		c.ControlListenDefault = true
	}
	c.ControlToken = g.Get("control_token")
	if strings.ContainsAny(c.ControlToken, " \t\r\n") {
		bad("control_token", "(redacted)", "must not contain white space")
	}
	if c.ControlToken == "" && !ListenIsLocal(c.ControlListen) {
		bad("control_listen", c.ControlListen, "a non-loopback address needs control_token")
	}

	// path last: the template checks need the rest.
	errs = append(errs, c.parsePath(g)...)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (c *Config) parsePath(g Getter) []error {
	v := g.Get("path")
	raw := strings.TrimPrefix(v, "flatstore:")
	switch {
	case v == "":
		return []error{errors.New(`path "": required: the file to write, as flatstore:/var/log/events.log or /var/log/events.log`)}
	case raw == "":
		return []error{fmt.Errorf("path %q: no socket specified: give a file after flatstore:", v)}
	case strings.ContainsRune(raw, 0):
		return []error{fmt.Errorf("path %q: must not contain a NUL byte", v)}
	}
	abs := raw
	if !filepath.IsAbs(abs) {
		wd, err := os.Getwd()
		if err != nil {
			return []error{fmt.Errorf("path %q: relative, and the working directory is unknown: %v", v, err)}
		}
		abs = filepath.Join(wd, abs)
	}
	t, err := ParseTemplate(abs)
	if err != nil {
		return []error{fmt.Errorf("path %q: %v", v, err)}
	}
	c.Path, c.RawPath, c.Template = abs, raw, t
	if strings.HasSuffix(abs, "/") {
		return []error{fmt.Errorf("path %q: is a directory", v)}
	}
	dir := t.StaticDir()
	if !t.Static() && t.DynamicDir() && !c.Mkdir {
		return []error{fmt.Errorf("path %q: a template in a directory component needs mkdir true", v)}
	}
	if t.Static() {
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			return []error{fmt.Errorf("path %q: path is a directory", v)}
		}
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err) && c.Mkdir:
		return nil // created at the first write
	case err != nil && os.IsNotExist(err):
		return []error{fmt.Errorf("path %q: invalid directory name: %q does not exist (create it, or set mkdir true)", v, dir)}
	case err != nil:
		return []error{fmt.Errorf("path %q: directory %q: %v", v, dir, errnoOf(err))}
	case !fi.IsDir():
		return []error{fmt.Errorf("path %q: invalid directory name: %q is not a directory", v, dir)}
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return []error{fmt.Errorf("path %q: directory %q is not writable: %v", v, dir, err)}
	}
	return nil
}

// errnoOf strips the path an *fs.PathError repeats, as the message
// already quotes it.
func errnoOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lookup returns the value of key and whether it is set (non-empty, as Fluent
// Bit hands an empty property as absent).
func lookup(g Getter, key string) (string, bool) {
	v := g.Get(key)
	return v, v != ""
}

// keySet reports whether key was given at all. Fluent Bit cannot tell an
// empty value from an absent key; a MapGetter can, so tests may check "".
func keySet(g Getter, key string) bool {
	if m, ok := g.(MapGetter); ok {
		for k := range m {
			if strings.EqualFold(k, key) {
				return true
			}
		}
		return false
	}
	return g.Get(key) != ""
}

func indexFold(names []string, v string) int {
	for i, n := range names {
		if strings.EqualFold(n, strings.TrimSpace(v)) {
			return i
		}
	}
	return -1
}

func parseBoolKey(g Getter, key string, def bool, bad func(key, val, format string, a ...any)) bool {
	v, ok := lookup(g, key)
	if !ok {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "on", "yes", "1":
		return true
	case "false", "off", "no", "0":
		return false
	}
	bad(key, v, "must be a boolean: true, false, on, off, yes, no, 1 or 0")
	return def
}

// parseDurationKey accepts a Go duration ("60s", "1m30s") or whole seconds ("60").
func parseDurationKey(g Getter, key string, def time.Duration, bad func(key, val, format string, a ...any)) time.Duration {
	v, ok := lookup(g, key)
	if !ok {
		return def
	}
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(100*365*24*3600) {
			bad(key, v, "must be 0 or a positive number of seconds")
			return def
		}
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		bad(key, v, "must be a duration such as 30s, 5m or 1h, or whole seconds (0 = off)")
		return def
	}
	return d
}

var delimiterAliases = map[string]string{
	"tab": "\t", `\t`: "\t", "space": " ", "comma": ",", "semicolon": ";", "pipe": "|",
}

func parseDelimiter(v string) (string, error) {
	if a, ok := delimiterAliases[strings.ToLower(v)]; ok {
		return a, nil
	}
	if v == `\t` {
		return "\t", nil
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", errors.New("must not contain CR or LF")
	}
	if v == "" {
		return "", errors.New("must not be empty")
	}
	return v, nil
}

func parsePerm(v string) (os.FileMode, error) {
	const msg = "must be an octal mode such as 644 or 0640"
	s := strings.TrimSpace(v)
	if len(s) < 3 || len(s) > 4 {
		return 0, errors.New(msg)
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, errors.New(msg)
	}
	return os.FileMode(n), nil
}

func parseSize(v string) (int64, error) {
	const msg = "must be a number of bytes, optionally with k, m or g (×1024), 0 = off"
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"k", 1 << 10}, {"mb", 1 << 20}, {"m", 1 << 20}, {"gb", 1 << 30}, {"g", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, errors.New(msg)
	}
	return n * mult, nil
}

func checkListen(v string) error {
	switch {
	case strings.EqualFold(v, "off"):
		return nil
	case strings.HasPrefix(v, "unix:"):
		p := strings.TrimPrefix(v, "unix:")
		if !filepath.IsAbs(p) {
			return errors.New("a unix socket needs an absolute path: unix:/run/flatstore.sock")
		}
		return nil
	}
	host, port, ok := strings.Cut(v, ":")
	if i := strings.LastIndex(v, ":"); i >= 0 {
		host, port, ok = v[:i], v[i+1:], true
	}
	if !ok {
		return errors.New("must be HOST:PORT, unix:/path.sock or off")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("must be HOST:PORT with a port from 0 to 65535, unix:/path.sock or off")
	}
	_ = host
	return nil
}

// ListenIsLocal reports whether a control_listen value can only be reached
// from this host: off, a unix socket, or a loopback address.
func ListenIsLocal(v string) bool {
	if strings.EqualFold(v, "off") || strings.HasPrefix(v, "unix:") {
		return true
	}
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return false
	}
	host := strings.Trim(v[:i], "[]")
	if host == "localhost" {
		return true
	}
	return strings.HasPrefix(host, "127.") || host == "::1"
}
