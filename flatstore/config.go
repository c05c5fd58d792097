package flatstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/strftime"
)

// Getter reads one configuration key. Fluent Bit's property lookup is one
// implementation (case-insensitive, "" when the key is absent or empty);
// MapGetter is another, for tests and tools.
type Getter interface {
	Get(key string) string
}

// MapGetter is a Getter over a map. Keys are matched case-insensitively, as
// Fluent Bit does; an empty value is an absent key, as through Fluent Bit.
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

// Config is a validated flatstore output configuration.
type Config struct {
	// Path is the absolute path, or path template, of the event file.
	Path string
	// RawPath is the value as configured (with any "flatstore:" prefix removed,
	// before resolving a relative path); the control endpoint accepts it too.
	RawPath string
	// Template is the parsed Path; Template.Static() reports whether it has
	// no substitution.
	Template *event.Template

	// Options are the keys that shape a line (package event): event_key,
	// params_key, params, delimiter, escape, escape_delimiter,
	// suppress_event_name, time_format and header.
	event.Options
	// EventParamsFile is event_params_file, read into
	// Options.EventParams.
	EventParamsFile string
	FilePerm        os.FileMode
	Mkdir           bool
	MaxOpenSockets  int
	MaxDynamicFiles int // 0: no bound
	IdleTimeout     time.Duration
	SyncFlush       bool
	ReopenCheck     time.Duration
	RotatePeriod    time.Duration
	RotateCount     int64
	RotateSize      int64
	Suffix          string
	// TimeZone is time_zone as configured, Location what it names: the
	// zone of the strftime conversions in path and suffix.
	TimeZone       string
	Location       *time.Location
	RotateMaxFiles int
	RotateMaxAge   time.Duration
	Compress       string // filestore.CompressNone, filestore.CompressGzip or filestore.CompressZstd

	ControlListen Listen
	ControlToken  string
	// ControlListenDefault is true when control_listen was not set: failing to
	// bind it is a warning, not an error.
	ControlListenDefault bool

	effective []string // every key=value in effect, for Settings
}

// effectiveSettings is every key of Keys with the value in effect, as the
// configuration gave it or its default; the token is redacted.
func effectiveSettings(g Getter) []string {
	var out []string
	for _, k := range Keys() {
		v := g.Get(k.Name)
		if v == "" {
			v = k.Default
		}
		switch {
		case k.Name == "path":
			continue // the line names it first
		case k.Name == "control_token" && v != "":
			v = "(set)"
		}
		out = append(out, k.Name+"="+strconv.Quote(v))
	}
	return out
}

// Settings is every key with the value in effect (the token redacted), in
// the order of Keys, for the start-up line.
func (c *Config) Settings() string { return strings.Join(c.effective, " ") }

// KeyType is the kind of value a key takes, as Fluent Bit's config map
// shows it (fluent-bit -o flatstore -h).
//
// Fluent Bit 5.1.1 parses none of a Go output's values: start-up and
// --dry-run check each property's name and that it is set once, and
// flb_config_map_set, which parses typed values for native plugins (and
// refuses only a bad boolean even there), is never called for a proxy.
// What the engine does with a type is show it in -h and judge the
// defaults (a boolean default must be one of its words). So a type here is
// the engine's only where every value flatstore takes means the same to
// the engine's parser for that type, so that an engine which did parse
// them would neither refuse nor misread one, with one exception:
//
//   - KeyInt (FLB_CONFIG_MAP_INT, atoi): every integer flatstore takes for
//     these keys reads the same through atoi and fits a C int. atoi
//     refuses nothing ("abc" is 0); flatstore's Init refuses it.
//     rotate_count is a string: it takes counts beyond a C int.
//   - KeyBool (FLB_CONFIG_MAP_BOOL, flb_utils_bool): true, on, yes, false,
//     off, no in any case mean the same to both; flatstore also takes 1
//     and 0 (as OpenSIPS's modparams write them), which flb_utils_bool
//     refuses. The defaults are its words.
//   - KeyList (FLB_CONFIG_MAP_CLIST): split at commas by both.
//   - Sizes and durations are strings: flb_utils_size_to_bytes reads k as
//     1000 where flatstore reads 1024, and takes 1.5m and false;
//     flb_utils_time_to_seconds reads 500ms as 500 s and 1m30s as 1 s.
type KeyType int

// The key types.
const (
	KeyString KeyType = iota
	KeyBool
	KeyInt
	KeyList // comma-separated
)

// Key describes one configuration key. The table Keys returns is the one
// source of the keys: ParseConfig reads it, package plugin registers it as
// Fluent Bit's config map, and a test checks the README's key table
// against it.
type Key struct {
	Name string
	// Default is the value that applies when the key is not set, as a
	// config would write it ("" when there is none); ParseConfig parses it
	// like any value.
	Default string
	Type    KeyType
	// Help is one line for -h and the README.
	Help string
	// set reads a value into c; its error says what is allowed (the key and
	// the value are added to it).
	set func(c *Config, v string) error
}

// Keys returns every key the plugin reads, in the order the README
// documents them.
func Keys() []Key {
	return []Key{
		{"path", "", KeyString,
			"file to append events to: flatstore:/path or /path; may hold $TAG, $TAG[n], $EVENT, $key, $key['sub'] and strftime conversions of the record's time (%Y-%m-%d; %% for a literal %)",
			nil}, // read last, by parsePath: its checks need the rest
		{"event_key", "event", KeyString,
			"record key whose string value names the event; otherwise the tag",
			func(c *Config, v string) error { c.EventKey = v; return nil }},
		{"params_key", "", KeyString,
			"record key whose value holds the parameters: a map (its values, in order) or an array (its elements); other keys are ignored",
			func(c *Config, v string) error { c.ParamsKey = v; return nil }},
		{"params", "", KeyList,
			"comma-separated keys written as parameters, in this order; default: every key in record order",
			setParams},
		{"event_params_file", "", KeyString,
			"with params_key: a file of lines EVENT key1,key2,... naming each listed event's columns, in order (OpenSIPS 4.0 leaves unset parameters off the wire)",
			setEventParamsFile},
		{"delimiter", ",", KeyString,
			"separator between event and parameters; aliases tab, space, comma, semicolon, pipe, \\t",
			func(c *Config, v string) (err error) { c.Delimiter, err = parseDelimiter(v); return err }},
		{"escape", "opensips", KeyString,
			"opensips | opensips_exact | none | backslash | csv: what a delimiter, CR or LF inside a value becomes",
			setEscape},
		{"escape_delimiter", "", KeyString,
			"with escape opensips: replacement for the whole delimiter (same length)",
			func(c *Config, v string) (err error) { c.EscapeDelimiter, err = parseDelimiter(v); return err }},
		{"suppress_event_name", "false", KeyBool,
			"write only the parameters",
			func(c *Config, v string) (err error) { c.SuppressEventName, err = parseBool(v); return err }},
		{"time_format", "none", KeyString,
			"none | unix | unix_ms | unix_ns | rfc3339 | rfc3339_nano: record time as first parameter",
			setTimeFormat},
		{"header", "", KeyString,
			"line written first into every new empty file: text, or auto (event and params names)",
			setHeader},
		{"file_permissions", "644", KeyString,
			"octal mode of newly created files, exact whatever the umask",
			func(c *Config, v string) (err error) { c.FilePerm, err = parsePerm(v); return err }},
		{"mkdir", "false", KeyBool,
			"create missing parent directories (0755)",
			func(c *Config, v string) (err error) { c.Mkdir, err = parseBool(v); return err }},
		{"max_open_sockets", "100", KeyInt,
			"most files this output keeps open at once (1..65535); its least recently used idle one is closed for a new one",
			func(c *Config, v string) (err error) {
				c.MaxOpenSockets, err = intIn(v, 1, 65535, "must be an integer from 1 to 65535")
				return err
			}},
		{"max_dynamic_files", "1024", KeyInt,
			"most distinct files a template path may write while the output runs; records for more are dropped (0 = no bound)",
			func(c *Config, v string) (err error) {
				c.MaxDynamicFiles, err = intIn(v, 0, 1<<24, "must be a number of files from 0 to 16777216 (0 = no bound)")
				return err
			}},
		{"idle_timeout", "60s", KeyString,
			"close files not written for this long (0 = never)",
			func(c *Config, v string) (err error) { c.IdleTimeout, err = parseDuration(v); return err }},
		{"sync", "none", KeyString,
			"none | flush: fdatasync before a flush returns OK",
			setSync},
		{"reopen_check", "5s", KeyString,
			"reopen a file whose path names another inode or nothing (moved without a rotate call), checked this often; at most 10s, 0 = off",
			setReopenCheck},
		{"rotate_period", "0", KeyString,
			"rotate every N seconds (or a duration such as 1h), boundaries aligned to the epoch (0 = off)",
			setRotatePeriod},
		{"rotate_count", "0", KeyString,
			"rotate after N lines (0 = off)",
			func(c *Config, v string) (err error) {
				c.RotateCount, err = intIn[int64](v, 0, math.MaxInt64, "must be a number of lines, 0 or more (0 = off)")
				return err
			}},
		{"rotate_size", "0", KeyString,
			"rotate after N bytes; k, m, g = x1024 (0 = off)",
			func(c *Config, v string) (err error) { c.RotateSize, err = parseSize(v); return err }},
		{"rotate_max_files", "0", KeyInt,
			"keep at most N files rotated by flatstore, deleting the oldest (0 = keep all)",
			func(c *Config, v string) (err error) {
				c.RotateMaxFiles, err = intIn(v, 0, 1<<20, "must be a number of files, 0 or more (0 = keep all)")
				return err
			}},
		{"rotate_max_age", "0", KeyString,
			"delete files rotated by flatstore longer ago than this, e.g. 7d or 168h (0 = never)",
			setMaxAge},
		{"compress", "none", KeyString,
			"none | gzip | zstd: compress each rotated file in the background",
			setCompress},
		{"suffix", "", KeyString,
			"strftime pattern appended to the path at each open, e.g. .%Y%m%d-%H%M%S (in time_zone)",
			func(c *Config, v string) error { c.Suffix = v; return strftime.CheckSuffix(v) }},
		{"time_zone", "UTC", KeyString,
			"time zone of the strftime conversions in path and suffix: UTC, local (the system's, or TZ) or a tz database name such as Europe/Paris",
			setTimeZone},
		{"control_listen", "127.0.0.1:2021", KeyString,
			"control endpoint: HOST:PORT | unix:/path.sock | off",
			func(c *Config, v string) error { c.ControlListen = ParseListen(v); return c.ControlListen.Check() }},
		{"control_token", "", KeyString,
			"bearer token (16 bytes or more) every control request must carry; needed off loopback",
			setToken},
	}
}

// KnownKeys returns the names of every key the plugin reads.
func KnownKeys() []string {
	keys := Keys()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Name
	}
	return out
}

// ParseConfig reads and validates every key. It returns one error listing
// every problem, each naming the key, the value and what is allowed.
func ParseConfig(g Getter) (*Config, error) {
	var errs []error
	c := &Config{}
	for _, k := range Keys() {
		if k.set == nil {
			continue
		}
		if k.Default != "" {
			if err := k.set(c, k.Default); err != nil { // a bug in the table
				panic(fmt.Sprintf("flatstore: default %s %q: %v", k.Name, k.Default, err))
			}
		}
		v := g.Get(k.Name)
		if v == "" {
			continue
		}
		if err := k.set(c, v); err != nil {
			shown := v
			if k.Name == "control_token" {
				shown = "(redacted)"
			}
			errs = append(errs, fmt.Errorf("%s %q: %v", k.Name, shown, err))
		}
	}
	c.ControlListenDefault = g.Get("control_listen") == ""
	c.effective = effectiveSettings(g)
	errs = append(errs, c.check()...)
	// path last: the template checks need the rest.
	errs = append(errs, c.parsePath(g.Get("path"))...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// check validates the keys that depend on each other.
func (c *Config) check() []error {
	var errs []error
	bad := func(key, val, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s %q: %s", key, val, fmt.Sprintf(format, a...)))
	}
	errs = append(errs, c.Options.Check()...)
	if c.RotatePeriod == 0 && c.RotateCount == 0 && c.RotateSize == 0 {
		const why = "acts only on the files flatstore rotates: set rotate_period, rotate_count or rotate_size too (files moved by logrotate are logrotate's to keep)"
		if c.RotateMaxFiles > 0 {
			bad("rotate_max_files", strconv.Itoa(c.RotateMaxFiles), why)
		}
		if c.RotateMaxAge > 0 {
			bad("rotate_max_age", c.RotateMaxAge.String(), why)
		}
		if c.Compress != filestore.CompressNone {
			bad("compress", c.Compress, why)
		}
	}
	if c.EventParamsFile != "" && c.ParamsKey == "" {
		bad("event_params_file", c.EventParamsFile, "applies only with params_key (the named parameters of the sidecar's events)")
	}
	if c.ControlToken == "" && !c.ControlListen.IsLocal() {
		bad("control_listen", c.ControlListen.String(), "a non-loopback address needs control_token")
	}
	return errs
}

// CheckListenDir reports a control_listen unix socket whose directory does
// not exist. The plugin's Init joins it to ParseConfig's problems, so that
// it is reported with every other one and not only once the rest is fixed
// and the endpoint tries to bind; it is apart from ParseConfig, which reads
// configurations meant for other machines too (flatstore-ctl read).
func CheckListenDir(v string) error {
	sock, ok := ParseListen(v).Unix()
	if !ok || sock == "" {
		return nil
	}
	sdir := filepath.Dir(sock)
	if isDir(sdir) {
		return nil
	}
	hint := ""
	if sdir == "/run" || strings.HasPrefix(sdir, "/run/") {
		hint = "; /run is emptied at boot: under systemd, RuntimeDirectory= in the unit or a tmpfiles.d entry creates it at every start"
	}
	return fmt.Errorf("control_listen %q: the socket's directory %q does not exist: create it%s", v, sdir, hint)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// setEventParamsFile reads event_params_file: one event a line, its name
// then its parameters' keys, comma-separated ("E_PROFILING_PROC sec, usec,
// session, verb, name, type, depth, file, line, status"); blank lines and
// lines starting with # are skipped. Every problem is named with its line.
func setEventParamsFile(c *Config, v string) error {
	f, err := os.Open(v)
	if err != nil {
		return fmt.Errorf("cannot read it: %v", errnoOf(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return errors.New("must be a regular file")
	}
	const most = 1 << 20 // some 10 000 events
	data, err := io.ReadAll(io.LimitReader(f, most+1))
	if err != nil {
		return fmt.Errorf("cannot read it: %v", errnoOf(err))
	}
	if len(data) > most {
		return errors.New("is larger than 1 MiB")
	}
	m := map[string][]string{}
	var errs []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		ev, list, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(ev, '\t'); i >= 0 {
			ev, list = ev[:i], ev[i+1:]+" "+list
		}
		var keys []string
		for _, k := range strings.Split(list, ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
		switch {
		case len(keys) == 0:
			errs = append(errs, fmt.Sprintf("line %d: %q names no parameters (EVENT key1,key2,...)", i+1, ev))
		case m[ev] != nil:
			errs = append(errs, fmt.Sprintf("line %d: %s is listed twice", i+1, ev))
		default:
			m[ev] = keys
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	if len(m) == 0 {
		return errors.New("it lists no event")
	}
	c.EventParamsFile, c.EventParams = v, m
	return nil
}

func errnoOf(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func setParams(c *Config, v string) error {
	c.Params = nil
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			c.Params = nil
			return errors.New("must be a comma-separated list of record keys, with no empty name")
		}
		c.Params = append(c.Params, p)
	}
	return nil
}

func setEscape(c *Config, v string) (err error) {
	c.Escape, err = oneOf(v, event.Escapes())
	return err
}

func setTimeFormat(c *Config, v string) (err error) {
	c.TimeFormat, err = oneOf(v, event.TimeFormats())
	return err
}

// oneOf returns the member of all named v (ignoring case and surrounding
// spaces), or an error that lists the names.
func oneOf[T fmt.Stringer](v string, all []T) (T, error) {
	var names []string
	for _, x := range all {
		if strings.EqualFold(strings.TrimSpace(v), x.String()) {
			return x, nil
		}
		names = append(names, x.String())
	}
	var none T
	return none, errors.New("must be one of " + strings.Join(names, ", "))
}

func setHeader(c *Config, v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return errors.New("must be one line (no CR or LF)")
	}
	c.Header = v
	return nil
}

// intIn parses v (spaces around it allowed) as an integer from lo to hi;
// otherwise the error says what the key takes (why).
func intIn[T ~int | ~int64](v string, lo, hi T, why string) (T, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || T(n) < lo || T(n) > hi || int64(T(n)) != n {
		return 0, errors.New(why)
	}
	return T(n), nil
}

func setSync(c *Config, v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "none":
		c.SyncFlush = false
	case "flush":
		c.SyncFlush = true
	default:
		return errors.New("must be none or flush")
	}
	return nil
}

// MaxReopenCheck is the longest reopen_check: a moved file is found again
// within it.
const MaxReopenCheck = 10 * time.Second

func setReopenCheck(c *Config, v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	if d > MaxReopenCheck {
		return fmt.Errorf("must be at most %v (0 = off): lines written after a move without a rotate call go into the moved file until the check", MaxReopenCheck)
	}
	c.ReopenCheck = d
	return nil
}

func setRotatePeriod(c *Config, v string) error {
	d, err := parseDuration(v)
	if err != nil {
		return err
	}
	if d%time.Second != 0 {
		return errors.New("must be a whole number of seconds")
	}
	c.RotatePeriod = d
	return nil
}

func setMaxAge(c *Config, v string) error {
	s := strings.TrimSpace(v)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		// Days, which Go's durations lack.
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 36500 {
			return errors.New("must be a duration such as 7d, 168h or 30m, or whole seconds (0 = never)")
		}
		c.RotateMaxAge = time.Duration(n) * 24 * time.Hour
		return nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return errors.New("must be a duration such as 7d, 168h or 30m, or whole seconds (0 = never)")
	}
	c.RotateMaxAge = d
	return nil
}

func setCompress(c *Config, v string) error {
	switch s := strings.ToLower(strings.TrimSpace(v)); s {
	case filestore.CompressNone, filestore.CompressGzip, filestore.CompressZstd:
		c.Compress = s
		return nil
	}
	return errors.New("must be none, gzip or zstd")
}

// MinTokenBytes is the shortest control_token accepted.
const MinTokenBytes = 16

func setToken(c *Config, v string) error {
	if strings.ContainsAny(v, " \t\r\n") {
		return errors.New("must not contain white space")
	}
	if len(v) < MinTokenBytes {
		return fmt.Errorf("must be at least %d bytes (it is %d): a short token can be guessed", MinTokenBytes, len(v))
	}
	c.ControlToken = v
	return nil
}

// setTimeZone reads time_zone: UTC, local (the process's zone: TZ, else
// /etc/localtime) or a name of the tz database.
func setTimeZone(c *Config, v string) error {
	c.TimeZone = v
	switch {
	case strings.EqualFold(v, "UTC"):
		c.Location = time.UTC
		return nil
	case strings.EqualFold(v, "local"):
		c.Location = time.Local
		return nil
	}
	loc, err := time.LoadLocation(v)
	if err != nil || v == "" {
		return errors.New("unknown time zone: use UTC, local, or a name of the tz database such as Europe/Paris")
	}
	c.Location = loc
	return nil
}

// TrimPathPrefix returns a path setting without the "flatstore:" of
// OpenSIPS's socket syntax (flatstore:/var/log/events.log), which it may
// carry.
func TrimPathPrefix(v string) string { return strings.TrimPrefix(v, "flatstore:") }

// parsePath reads the path key, resolved and checked: the directory must
// exist (or mkdir be set) and be writable, and the path must not be a
// directory or anything but a regular file.
func (c *Config) parsePath(v string) []error {
	raw := TrimPathPrefix(v)
	switch {
	case v == "":
		return []error{errors.New(`path "": required: the file to write, as flatstore:/var/log/events.log or /var/log/events.log`)}
	case raw == "":
		return []error{fmt.Errorf("path %q: no socket specified: give a file after the flatstore: prefix", v)}
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
	t, err := event.ParseTemplate(abs, c.Location)
	if err != nil {
		return []error{fmt.Errorf("path %q: %v", v, err)}
	}
	if t.Static() {
		abs = t.StaticPath() // %% is a literal %
	}
	c.Path, c.RawPath, c.Template = abs, raw, t
	if strings.HasSuffix(abs, "/") {
		return []error{fmt.Errorf("path %q: is a directory", v)}
	}
	dir := t.StaticDir()
	if t.DynamicDir() && !c.Mkdir {
		return []error{fmt.Errorf("path %q: a template in a directory component needs mkdir true", v)}
	}
	if t.Static() {
		if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
			return []error{fmt.Errorf("path %q: path is a directory", v)}
		} else if err == nil && !fi.Mode().IsRegular() {
			return []error{fmt.Errorf("path %q: is %s, not a regular file", v, filestore.FileKind(fi.Mode()))}
		}
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err) && c.Mkdir:
		return nil // created at the first write
	case err != nil && os.IsNotExist(err):
		return []error{fmt.Errorf("path %q: invalid directory name: %q does not exist (create it, or set mkdir true)", v, dir)}
	case err != nil:
		return []error{fmt.Errorf("path %q: directory %q: %v", v, dir, filestore.ErrnoOf(err))}
	case !fi.IsDir():
		return []error{fmt.Errorf("path %q: invalid directory name: %q is not a directory", v, dir)}
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return []error{fmt.Errorf("path %q: directory %q is not writable: %v", v, dir, err)}
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "on", "yes", "1":
		return true, nil
	case "false", "off", "no", "0":
		return false, nil
	}
	return false, errors.New("must be a boolean: true, false, on, off, yes, no, 1 or 0")
}

// parseDuration accepts a Go duration ("60s", "1m30s") or whole seconds ("60").
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 || n > int64(100*365*24*3600) {
			return 0, errors.New("must be 0 or a positive number of seconds")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("must be a duration such as 30s, 5m or 1h, or whole seconds (0 = off)")
	}
	return d, nil
}

// parseDelimiter reads a delimiter: an alias (Fluent Bit out_file's names
// and the escape \t) or the text itself.
func parseDelimiter(v string) (string, error) {
	switch strings.ToLower(v) {
	case "tab", `\t`:
		return "\t", nil
	case "space":
		return " ", nil
	case "comma":
		return ",", nil
	case "semicolon":
		return ";", nil
	case "pipe":
		return "|", nil
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", errors.New("must not contain CR or LF")
	}
	if v == "" {
		return "", errors.New("must not be empty")
	}
	if v == `""` || v == "''" {
		// Fluent Bit's classic format keeps quotes as they are.
		return "", errors.New("is two quote characters (the classic format does not strip quotes), and an empty delimiter is not allowed")
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
	if err == nil && n > 0o777 && n <= 0o7777 {
		return 0, errors.New("setuid, setgid and sticky bits are refused for event files: give the permission bits alone, such as 0640")
	}
	if err != nil || n > 0o777 {
		return 0, errors.New(msg)
	}
	return os.FileMode(n), nil
}

func parseSize(v string) (int64, error) {
	const msg = "must be a number of bytes, optionally with k, m or g (x1024), 0 = off"
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

// MaxUnixPath is the longest unix socket path bind(2) and connect(2) take
// on Linux: sun_path holds 108 bytes, the last one the terminating NUL.
const MaxUnixPath = 107

// Listen is a control_listen value, parsed once: off, a unix socket, or a
// TCP address. The plugin, the control endpoint and its client all take
// it from here; none reads the grammar again.
type Listen struct {
	raw      string
	off      bool
	unixPath string // after "unix:"
}

// ParseListen splits v by control_listen's grammar: "off" (in any case) or
// "" is no listener, "unix:PATH" a unix socket, anything else HOST:PORT.
// It judges nothing (Check does), so that the client can reach any address
// the endpoint could have bound.
func ParseListen(v string) Listen {
	l := Listen{raw: v, off: v == "" || strings.EqualFold(v, "off")}
	if p, ok := strings.CutPrefix(v, "unix:"); ok {
		l.unixPath = p
	}
	return l
}

// String returns the value as it was written.
func (l Listen) String() string { return l.raw }

// Off reports whether l names no listener.
func (l Listen) Off() bool { return l.off }

// Unix returns the socket path of a unix:PATH value.
func (l Listen) Unix() (path string, ok bool) {
	return l.unixPath, !l.off && strings.HasPrefix(l.raw, "unix:")
}

// Check reports what control_listen refuses: a unix socket path that is
// not absolute or longer than sun_path takes, an address with no port or
// one out of range.
func (l Listen) Check() error {
	if l.off {
		return nil
	}
	if p, ok := l.Unix(); ok {
		if !filepath.IsAbs(p) {
			return errors.New("a unix socket needs an absolute path: unix:/run/flatstore.sock")
		}
		if len(p) > MaxUnixPath {
			return fmt.Errorf("a unix socket path holds at most %d bytes (sun_path); this one has %d", MaxUnixPath, len(p))
		}
		return nil
	}
	v := l.raw
	i := strings.LastIndex(v, ":")
	if i < 0 {
		return errors.New("must be HOST:PORT, unix:/path.sock or off")
	}
	if n, err := strconv.Atoi(v[i+1:]); err != nil || n < 0 || n > 65535 {
		return errors.New("must be HOST:PORT with a port from 0 to 65535, unix:/path.sock or off")
	}
	return nil
}

// IsLocal reports whether l can only be reached from this host: off, a
// unix socket, or an address whose every IP is a loopback one. A name
// (localhost included) is resolved, with a time limit: what it resolves to
// decides, not how it is spelled.
func (l Listen) IsLocal() bool {
	if _, unix := l.Unix(); l.off || unix {
		return true
	}
	host, _, err := net.SplitHostPort(l.raw)
	if err != nil || host == "" {
		return false // ":2021" listens on every interface
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	if strings.EqualFold(host, "localhost") {
		return true // whatever the resolver says (RFC 6761)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false
		}
	}
	return true
}

// formatSettings are the settings that shape a file's bytes, as key=value.
func formatSettings(c *Config) []string {
	return []string{
		fmt.Sprintf("delimiter %q", c.Delimiter),
		fmt.Sprintf("escape %s", c.Escape),
		fmt.Sprintf("escape_delimiter %q", c.EscapeDelimiter),
		fmt.Sprintf("suppress_event_name %v", c.SuppressEventName),
		fmt.Sprintf("time_format %s", c.TimeFormat),
		fmt.Sprintf("header %q", c.Header),
		fmt.Sprintf("file_permissions %04o", c.FilePerm),
		fmt.Sprintf("sync %v", map[bool]string{false: "none", true: "flush"}[c.SyncFlush]),
		fmt.Sprintf("suffix %q", c.Suffix),
		fmt.Sprintf("time_zone %s", suffixZone(c)),
		fmt.Sprintf("rotate_period %v", c.RotatePeriod),
		fmt.Sprintf("rotate_count %d", c.RotateCount),
		fmt.Sprintf("rotate_size %d", c.RotateSize),
		fmt.Sprintf("reopen_check %v", c.ReopenCheck),
		fmt.Sprintf("rotate_max_files %d", c.RotateMaxFiles),
		fmt.Sprintf("rotate_max_age %v", c.RotateMaxAge),
		fmt.Sprintf("compress %s", c.Compress),
		fmt.Sprintf("idle_timeout %v", c.IdleTimeout),
	}
}

// suffixZone is the time_zone that names c's files: the suffix's (the
// path's own conversions render into the path, which is compared whole).
func suffixZone(c *Config) string {
	if c.Suffix == "" || c.Location == nil {
		return "-"
	}
	return c.Location.String()
}

func formatOf(c *Config) string { return strings.Join(formatSettings(c), ", ") }

// formatDiff lists the settings of a that differ from b's.
func formatDiff(a, b *Config) string {
	sa, sb := formatSettings(a), formatSettings(b)
	var out []string
	for i := range sa {
		if sa[i] != sb[i] {
			out = append(out, sa[i])
		}
	}
	return strings.Join(out, ", ")
}
