package main

// flatstore-ctl read: flatstore files back into JSON, one object a line.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/outputconf"
)

const readHelp = `usage: flatstore-ctl read [flags] FILE...

Reads flatstore files (plain, gzip or zstd, told by their first bytes; - is
standard input), in the order given, and prints each event as one JSON object
a line:
  {"event":"E_CALL_END","caller":"alice","status":"200"}   with -params caller,status
  {"event":"E_CALL_END","params":["alice","200"]}          without -params
The record time, when time_format is set, is the member "time" after the
event; with -suppress_event_name there is no "event". Every value is a JSON
string: the file holds text, and the reader does not guess which text was a
number.

escape backslash and csv are read back exactly: each value byte for byte as
the plugin rendered it (a value that is not UTF-8, which a JSON string cannot
hold, is printed with U+FFFD and reported). The other escapes are not
reversible: their lines are split at the delimiter as they stand, and a
warning says so.

A line that these settings could not have written is reported on stderr as
FILE:LINE: why, and reading goes on. Exit status: 0 when every line was read
back, 1 when one was not (or a file could not be read), 2 on a usage or
configuration error.

The settings come from flags, or from the Fluent Bit configuration that runs
the plugin, so that writer and reader cannot disagree:
  -config FILE -output NAME   FILE: classic .conf or .yaml/.yml, ${VAR}
                              expanded as Fluent Bit does; NAME: the output's
                              alias, its instance name (flatstore.0 is the
                              first flatstore output), or its path
Flags given with -config override the configuration's keys.

flags:
`

// readKeys are the plugin's keys that decide how a line reads; each is a
// flag of read, named as the key.
var readKeys = []struct{ name, help string }{
	{"delimiter", "the plugin's delimiter (default ,; aliases tab, space, comma, semicolon, pipe, \\t)"},
	{"escape", "the plugin's escape: backslash | csv (read back exactly) | opensips | opensips_exact | none (default opensips)"},
	{"params", "the plugin's params: comma-separated names, one for each value (default: a \"params\" array)"},
	{"time_format", "the plugin's time_format: none | unix | unix_ms | unix_ns | rfc3339 | rfc3339_nano (default none)"},
	{"header", "the plugin's header (text, or auto): skipped when it is a file's first line"},
}

// writerOnlyKeys are checked by flatstore.ParseConfig against this machine
// (a directory that must exist and be writable, an address that must
// resolve) but do not change how a line reads. The reader gives them values
// that pass, so that a config written for another machine still reads.
var writerOnlyKeys = []string{"path", "mkdir", "control_listen", "control_token"}

func runRead(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flatstore-ctl read", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "Fluent Bit configuration (classic, or .yaml/.yml) to take the settings from")
	output := fs.String("output", "", "with -config: the flatstore output, by alias, instance name (flatstore.N) or path")
	for _, k := range readKeys {
		fs.String(k.name, "", k.help)
	}
	fs.Bool("suppress_event_name", false, "the plugin's suppress_event_name: lines hold no event name")
	usage := func(w io.Writer) {
		fmt.Fprint(w, readHelp)
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "flatstore-ctl: read: %v\n", err)
		usage(stderr)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "flatstore-ctl: read: no FILE (give - for standard input)")
		return 2
	}
	if *output != "" && *configFile == "" {
		fmt.Fprintln(stderr, "flatstore-ctl: read: -output needs -config")
		return 2
	}
	settings := flatstore.MapGetter{}
	from := "from the flags"
	if *configFile != "" {
		o, err := configOutput(*configFile, *output, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "flatstore-ctl: read: -config %s: %v\n", *configFile, err)
			return 2
		}
		for _, p := range o.Props {
			if _, seen := settings[p.Key]; !seen {
				settings[p.Key] = p.Value // the first of a repeated key, as the engine's lookup
			}
		}
		from = "from " + o.Name + " in " + *configFile + " and the flags"
	}
	// The header the writer put into its files, as the configuration alone
	// makes it: a -params that renames the columns does not rename it.
	var written []byte
	if *configFile != "" {
		if wcfg, err := readConfig(settings); err == nil {
			written = event.HeaderLine(wcfg.Options)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" && f.Name != "output" {
			settings[f.Name] = f.Value.String()
		}
	})
	cfg, err := readConfig(settings)
	if err != nil {
		fmt.Fprintf(stderr, "flatstore-ctl: read: invalid settings (%s):\n    %s\n",
			from, strings.ReplaceAll(err.Error(), "\n", "\n    "))
		return 2
	}
	r, err := newLineReader(cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "flatstore-ctl: read: %v\n", err)
		return 2
	}
	if written != nil && cfg.Header != "" {
		r.headers = append(r.headers, written)
	}
	for _, name := range files {
		if !r.readFile(name, stdin) {
			break // stdout is gone
		}
	}
	return r.finish()
}

// configOutput loads the configuration and picks the output.
func configOutput(file, name string, stderr io.Writer) (*outputconf.Output, error) {
	outs, err := outputconf.Load(file, "flatstore", nil)
	if err != nil {
		return nil, err
	}
	if len(outs) == 0 {
		return nil, errors.New("no flatstore output in it")
	}
	o, err := outputconf.Select(outs, name)
	if err != nil {
		return nil, err
	}
	for _, p := range o.Props {
		if !p.Scalar && slices.Contains(flatstore.KnownKeys(), p.Key) {
			return nil, fmt.Errorf("%s:%d: %s is a list or a map, and the plugin takes text (a list such as params is one value: a, b, c)", o.File, p.Line, p.Key)
		}
	}
	for _, v := range o.Unset {
		fmt.Fprintf(stderr, "flatstore-ctl: warning: %s: ${%s} is not set here: it reads as \"\" (as Fluent Bit would read it with this environment)\n", o.Describe(), v)
	}
	return o, nil
}

// readConfig parses the settings with the plugin's own ParseConfig, so
// that a key reads the same for the reader as for the writer.
func readConfig(settings flatstore.MapGetter) (*flatstore.Config, error) {
	g := flatstore.MapGetter{}
	for k, v := range settings {
		if !slices.Contains(writerOnlyKeys, strings.ToLower(k)) {
			g[k] = v
		}
	}
	// A path template in a directory that does not exist, with mkdir: it
	// passes the path checks whatever this machine's directories (one stat
	// of a name that is not there).
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	g["path"] = filepath.Join(os.TempDir(), "flatstore-ctl-read-"+hex.EncodeToString(nonce[:]), "$TAG", "x")
	g["mkdir"] = "true"
	g["control_listen"] = "off"
	return flatstore.ParseConfig(g)
}

// lineReader turns lines into JSON objects and counts what it could not.
type lineReader struct {
	cfg     *flatstore.Config
	names   [][]byte // JSON member names of the values (quoted), nil: an array
	head    int      // fields before the values: event, time
	headers [][]byte // the header lines a file may start with
	out     *bufio.Writer
	stderr  io.Writer
	buf     []byte // the JSON of one line
	records int
	bad     int // lines not read back
	failed  int // files that could not be read to their end
	outErr  error
	warned  bool // the note on an irreversible escape was printed
}

func newLineReader(cfg *flatstore.Config, stdout, stderr io.Writer) (*lineReader, error) {
	r := &lineReader{cfg: cfg, out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr}
	r.head = len(event.Columns(cfg.Options)) - len(cfg.Params)
	for _, p := range cfg.Params {
		switch {
		case p == "event" && !cfg.SuppressEventName:
			return nil, fmt.Errorf(`params %q: "event" is the event name's member; name that column otherwise with -params`, strings.Join(cfg.Params, ","))
		case p == "time" && cfg.TimeFormat != event.TimeNone:
			return nil, fmt.Errorf(`params %q: "time" is the record time's member; name that column otherwise with -params`, strings.Join(cfg.Params, ","))
		}
		name, _ := appendJSONString(nil, []byte(p))
		r.names = append(r.names, name)
	}
	if cfg.Header != "" {
		r.headers = append(r.headers, event.HeaderLine(cfg.Options))
	}
	return r, nil
}

// warnIrreversible says once why a mode cannot be read back exactly.
func (r *lineReader) warnIrreversible() {
	if r.warned {
		return
	}
	r.warned = true
	var why string
	switch r.cfg.Escape {
	case event.EscapeOpenSIPS:
		why = "a delimiter, CR or LF inside a value was written as a space"
	case event.EscapeOpenSIPSExact:
		why = "a delimiter inside a value was written as a space, and CR or LF raw (one event over several lines)"
	case event.EscapeNone:
		why = "a delimiter inside a value was written raw (more fields), and CR or LF too (one event over several lines)"
	case event.EscapeBackslash:
		// Reversible (a delimiter that starts with n or r, which would not
		// be, is refused by ParseConfig).
		return
	default:
		return
	}
	fmt.Fprintf(r.stderr, "flatstore-ctl: warning: escape %s is not reversible: lines are split at the delimiter as they stand (%s); use escape backslash or csv for files that must read back exactly\n",
		r.cfg.Escape, why)
}

// readFile reads one file, or standard input for "-". It returns false
// when stdout cannot be written any more.
func (r *lineReader) readFile(name string, stdin io.Reader) bool {
	display := name
	var src io.Reader
	if name == "-" {
		display, src = "(stdin)", stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(r.stderr, "flatstore-ctl: %v\n", err)
			r.failed++
			return true
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			fmt.Fprintf(r.stderr, "flatstore-ctl: %s: is a directory\n", name)
			r.failed++
			return true
		}
		src = f
	}
	r.warnIrreversible() // once, before the first file that opens
	cr := &countReader{r: src}
	in, closeIn, err := decompress(bufio.NewReaderSize(cr, 64<<10), cr)
	if err != nil {
		fmt.Fprintf(r.stderr, "flatstore-ctl: %s: %v\n", display, err)
		r.failed++
		return true
	}
	defer closeIn()
	s := newScanner(in, r.cfg)
	for {
		rec, err := s.next()
		if rec.lines > 0 {
			r.record(display, rec, err != nil && !errors.Is(err, io.EOF))
			if r.outErr != nil {
				fmt.Fprintf(r.stderr, "flatstore-ctl: read: writing the output: %v\n", r.outErr)
				return false
			}
		}
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			fmt.Fprintf(r.stderr, "flatstore-ctl: %s:%d: %v\n", display, s.line, err)
			r.failed++
			return true
		}
	}
}

// decompress returns the content of br, which reads cr: gunzipped or
// zstd-decoded when it starts with their magic bytes (stopped with
// errBomb past bombRatio bytes for each byte read from cr plus bombFree),
// as it is otherwise.
func decompress(br *bufio.Reader, cr *countReader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %v", err)
		}
		return bufio.NewReaderSize(&bombGuard{r: zr, in: cr}, 64<<10), func() { zr.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		// Synchronous (no decoding goroutines), and at most zstd's own
		// default window for decompression (128 MiB), so a hostile frame
		// cannot make it allocate more.
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %v", err)
		}
		return bufio.NewReaderSize(&bombGuard{r: zr, in: cr}, 64<<10), zr.Close, nil
	}
	return br, func() {}, nil
}

// The decompressed size of a file is bounded by its own: a file of 61 KB
// that inflates to gigabytes would cost the reader's time and the output
// out of all proportion to it. Deflate cannot pass about 1032:1; zstd can
// go far beyond. A file refused here reads whole through a decompressor
// the operator trusts: zcat FILE | flatstore-ctl read -.
const (
	bombRatio = 1024    // decompressed bytes for each compressed byte
	bombFree  = 1 << 30 // decompressed bytes allowed whatever the ratio
)

// errBomb stops a decompression past the bound.
var errBomb = fmt.Errorf("decompresses to more than %d bytes for each byte of the file (and %d GiB): stopped; if you trust it, read it as zcat FILE | flatstore-ctl read -", bombRatio, bombFree>>30)

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// bombGuard ends r with errBomb once it has given more than bombRatio
// bytes for each byte read from in, plus bombFree.
type bombGuard struct {
	r   io.Reader
	in  *countReader
	out int64
}

func (g *bombGuard) Read(p []byte) (int, error) {
	if g.out > bombRatio*g.in.n+bombFree {
		return 0, errBomb
	}
	n, err := g.r.Read(p)
	g.out += int64(n)
	return n, err
}

// record prints one record or says why it cannot.
func (r *lineReader) record(file string, rec record, cut bool) {
	r.records++
	where := file + ":" + strconv.Itoa(rec.first)
	if rec.lines > 1 {
		where += "-" + strconv.Itoa(rec.first+rec.lines-1)
	}
	bad := func(format string, a ...any) {
		r.bad++
		fmt.Fprintf(r.stderr, "%s: %s\n", where, fmt.Sprintf(format, a...))
	}
	switch {
	case rec.long:
		bad("longer than the plugin's line limit (%d MiB): skipped", event.MaxLineBytes>>20)
		return
	case cut:
		bad("cut short by a read error (below): skipped")
		return
	}
	text := bytes.TrimSuffix(rec.text, []byte{'\n'})
	if rec.first == 1 && slices.ContainsFunc(r.headers, func(h []byte) bool { return bytes.Equal(text, h) }) {
		return // the header the plugin writes first into each file
	}
	switch {
	case rec.csv.broken:
		bad("not a line that escape csv writes (a quote out of place): %s", excerpt(text))
		return
	case rec.csv.open():
		bad("a quoted value is not closed before the end of the input: %s", excerpt(text))
		return
	}
	// A first walk counts the fields and the JSON they make, holding none
	// of them: a line of millions of empty fields is refused here, before
	// anything is printed or kept.
	fields, size := 0, len(`{"params":[]}`)
	for _, n := range r.names {
		size += len(n) + 2 // "name": and a comma
	}
	err := event.SplitFunc(r.cfg.Options, rec.text, func(f []byte) bool {
		fields++
		size += jsonLen(f) + 1
		return size <= maxJSONLine
	})
	switch {
	case err != nil:
		bad("not a line that escape %s writes: %s", r.cfg.Escape, excerpt(text))
		return
	case size > maxJSONLine:
		bad("its JSON would pass the reader's limit of %d MiB a line (%d fields or more): skipped", maxJSONLine>>20, fields)
		return
	case r.names != nil && fields != r.head+len(r.names):
		bad("%d fields, want %d (%s): %s", fields, r.head+len(r.names), r.columns(), excerpt(text))
		return
	case fields < r.head:
		bad("%d field, want at least %d (%s): %s", fields, r.head, r.columns(), excerpt(text))
		return
	}
	if rec.noEOL {
		fmt.Fprintf(r.stderr, "flatstore-ctl: warning: %s: the last line has no newline: it may be incomplete (a write in progress, or a cut file)\n", where)
	}
	// The second walk prints the object as it goes, a buffer at a time.
	b := append(r.buf[:0], '{')
	valid := true
	i := 0
	_ = event.SplitFunc(r.cfg.Options, rec.text, func(f []byte) bool {
		switch {
		case i == 0 && !r.cfg.SuppressEventName:
			b = append(b, `"event":`...)
		case i < r.head: // the time
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `"time":`...)
		case r.names != nil:
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, r.names[i-r.head]...)
			b = append(b, ':')
		case i == r.head:
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `"params":[`...)
		default:
			b = append(b, ',')
		}
		var ok bool
		b, ok = appendJSONString(b, f)
		valid = valid && ok
		i++
		if len(b) >= 64<<10 {
			r.write(b)
			b = b[:0]
		}
		return true
	})
	if r.names == nil {
		if i == r.head {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `"params":[`...)
		}
		b = append(b, ']')
	}
	b = append(b, '}', '\n')
	r.write(b)
	r.buf = b[:0]
	if !valid {
		bad("a value is not UTF-8, which a JSON string cannot hold: printed with U+FFFD for the bad bytes")
	}
}

// maxJSONLine bounds the JSON the reader prints for one line: twice the
// plugin's line limit. A line of text reads back to about its own length
// (its quotes and backslashes doubled at most); only a line of very many
// empty fields (three bytes of JSON each) or of control bytes (six) would
// fan out past it, and is reported instead.
const maxJSONLine = 2 * event.MaxLineBytes

// write prints b, keeping the first error.
func (r *lineReader) write(b []byte) {
	if r.outErr != nil {
		return
	}
	if _, err := r.out.Write(b); err != nil {
		r.outErr = err
	}
}

// jsonLen is the length of appendJSONString's JSON string for s.
func jsonLen(s []byte) int {
	n := len(s) + 2
	valid := utf8.Valid(s)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n++
			case c < 0x20:
				n += 5
			}
			i++
			continue
		}
		if valid {
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 5 // \ufffd for one byte
		}
		i += size
	}
	return n
}

// columns names the fields a line must have.
func (r *lineReader) columns() string { return strings.Join(event.Columns(r.cfg.Options), ", ") }

// finish flushes the output and returns the exit status.
func (r *lineReader) finish() int {
	if err := r.out.Flush(); err != nil && r.outErr == nil {
		r.outErr = err
		fmt.Fprintf(r.stderr, "flatstore-ctl: read: writing the output: %v\n", err)
	}
	if r.bad > 0 {
		fmt.Fprintf(r.stderr, "flatstore-ctl: read: %d of %d lines not read back (see above)\n", r.bad, r.records)
	}
	if r.bad > 0 || r.failed > 0 || r.outErr != nil {
		return 1
	}
	return 0
}

// excerpt quotes the start of a line for a message.
func excerpt(b []byte) string {
	const max = 80
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "…"
	}
	return strconv.Quote(string(b))
}

// appendJSONString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, and ok is false.
func appendJSONString(dst, s []byte) (out []byte, ok bool) {
	const hexDigits = "0123456789abcdef"
	ok = true
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			ok = false
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), ok
}

// record is one event's text: a line, or with escape csv the lines a quoted
// value's CR or LF spans.
type record struct {
	text  []byte // with its newline; not valid after the next call
	first int    // the number of its first line
	lines int    // how many lines it spans (0: none, the input ended)
	long  bool   // longer than event.MaxLineBytes: text dropped
	noEOL bool   // the input ended before its newline
	csv   csvState
}

// scanner cuts a stream into records, holding at most one record (up to
// the plugin's line limit) in memory.
type scanner struct {
	r     *bufio.Reader
	buf   []byte
	line  int // lines read so far
	csv   bool
	delim byte
}

func newScanner(r io.Reader, cfg *flatstore.Config) *scanner {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &scanner{r: br, csv: cfg.Escape == event.EscapeCSV, delim: cfg.Delimiter[0]}
}

// next returns the next record; io.EOF with it once the input is done
// (rec.lines is then 0, or 1 for a last line without a newline), or the
// read error that cut the input short.
func (s *scanner) next() (rec record, err error) {
	s.buf = s.buf[:0]
	rec.first = s.line + 1
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(chunk) > 0 && !rec.long {
			if len(s.buf)+len(chunk) > event.MaxLineBytes {
				rec.long, s.buf = true, s.buf[:0]
			} else {
				if cap(s.buf)-len(s.buf) < len(chunk) {
					// Doubling, up to the line limit: a long line leaves
					// copies that sum to its length, not four times it as
					// append's quarter steps would.
					s.buf = slices.Grow(s.buf, max(len(chunk), min(len(s.buf), event.MaxLineBytes-len(s.buf))))
				}
				s.buf = append(s.buf, chunk...)
				if s.csv {
					rec.csv.feed(chunk, s.delim)
				}
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == nil: // a newline
			s.line++
			if s.csv && !rec.long && rec.csv.open() {
				continue // a quoted value's LF: the record goes on
			}
			rec.text, rec.lines = s.buf, s.line-rec.first+1
			return rec, nil
		}
		// The input ended (or broke): what was read since the last newline
		// is a last line without one.
		if len(s.buf) > 0 || rec.long {
			if len(chunk) > 0 || rec.long || s.buf[len(s.buf)-1] != '\n' {
				s.line++
				rec.noEOL = true
			}
		}
		if s.line >= rec.first {
			rec.text, rec.lines = s.buf, s.line-rec.first+1
		}
		return rec, err
	}
}

// csvState follows a record through RFC 4180 quoting as escape csv writes
// it: a quote opens a value only at its start, closes it before a
// delimiter or the newline, and is doubled inside.
type csvState struct {
	quoted bool // inside a quoted value
	quote  bool // inside one, just after a quote: its end, or half of a doubled one
	mid    bool // outside quotes, not at the start of a value
	broken bool // a quote elsewhere: no quoted value spans lines
}

// open reports whether the record is inside a quoted value (its LF is part
// of the value).
func (c *csvState) open() bool { return c.quoted && !c.quote && !c.broken }

func (c *csvState) feed(b []byte, delim byte) {
	for i := 0; i < len(b) && !c.broken; i++ {
		ch := b[i]
		if c.quoted {
			switch {
			case c.quote && ch == '"': // a doubled quote
				c.quote = false
			case c.quote: // the value ended
				c.quoted, c.quote = false, false
				if ch != delim && ch != '\n' {
					c.broken = true
				}
			case ch == '"':
				c.quote = true
			}
			continue
		}
		switch {
		case ch == delim || ch == '\n':
			c.mid = false
		case ch == '"' && !c.mid:
			c.quoted = true
		case ch == '"':
			c.broken = true
		default:
			c.mid = true
		}
	}
}
