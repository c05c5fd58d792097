package main

// The seed corpus runs with every go test; to search for new inputs:
//
//	go test ./cmd/flatstore-ctl/ -run '^$' -fuzz '^FuzzRead$' -fuzztime 60s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/records"
)

// fuzzModes are the settings FuzzRead reads its input with.
var fuzzModes = [][]string{
	{"-escape", "backslash"},
	{"-escape", "csv"},
	{"-escape", "backslash", "-delimiter", "||", "-params", "a,b"},
	{"-escape", "csv", "-delimiter", ";", "-params", "a,b", "-time_format", "unix"},
	{"-escape", "csv", "-suppress_event_name", "-time_format", "rfc3339"},
	{},
	{"-escape", "none", "-suppress_event_name"},
	{"-escape", "backslash", "-delimiter", "x"},
	{"-escape", "opensips_exact", "-delimiter", "tab", "-header", "event"},
}

var stdinReport = regexp.MustCompile(`(?m)^\(stdin\):\d+(?:-\d+)?: .*$`)

// FuzzRead feeds arbitrary bytes to read as standard input: it never
// panics nor exits 2, every line of its output is a JSON object of strings,
// and every line of the input is printed or reported (a value that is not
// UTF-8: both), the exit status 1 exactly when one was reported. What it
// prints with a reversible escape is what the encoder writes back and
// Split reads again.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"E_CALL_END,alice,bob\n",
		"E,a\\,b,c\\nd,\\\\\nE,\n\nE",
		"E,\"a\nb\",\"c\"\"d\"\nE,x\"y\nE,\"q\"z\nE,\"open\n",
		"E;\"1\";x||y\r\nE||a\\|\\||b\n",
		"a,b\nc\n\"x\ny\",z\n",
		"event\nE\tv\tw\n",
		"E,\xff\xfe\x00,\xc3\xa9\n",
		"\x1f\x8b\x08\x00garbage",
		"\x28\xb5\x2f\xfdgarbage",
		"\"",
		"\n\n\n",
		"EnAn\\nn\\r\n",
	} {
		for mode := range fuzzModes {
			f.Add([]byte(s), uint8(mode))
		}
	}
	f.Add(gzipped(f, []byte("E,a\nE,b\\\n")), uint8(0))
	f.Add(zstded(f, []byte("E,\"a\nb\"\n")), uint8(1))
	// One line of 60 MiB of commas in 61 KB of gzip: sixty million
	// fields, which took 4 GB; now reported (its JSON would pass 128 MiB).
	bomb := commaBomb(f, 60<<20)
	f.Add(bomb, uint8(5))
	f.Add(bomb, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		args := fuzzModes[int(mode)%len(fuzzModes)]
		if compressedOver(data, 2*event.MaxLineBytes) {
			return // a decompression bomb past two line limits: slow (as it is for zcat), and not what is tested here
		}
		r := read(t, bytes.NewReader(data), append(append([]string{}, args...), "-")...)
		if r.code != 0 && r.code != 1 {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if r.stdout != "" && !strings.HasSuffix(r.stdout, "\n") {
			t.Fatalf("output does not end in a newline: %q", r.stdout)
		}
		objects := outputLines(r.stdout)
		for _, line := range objects {
			if _, err := decodeObject(line); err != nil {
				t.Fatalf("%v", err)
			}
		}
		reports := stdinReport.FindAllString(r.stderr, -1)
		notUTF8 := 0
		for _, rep := range reports {
			if strings.Contains(rep, "is not UTF-8") {
				notUTF8++
			}
		}
		if (r.code == 1) != (len(reports) > 0 || strings.Contains(r.stderr, "flatstore-ctl: (stdin)")) {
			t.Fatalf("exit %d with %d reports; stderr:\n%s", r.code, len(reports), r.stderr)
		}
		if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			return // compressed: the lines are not these bytes
		}
		cfg, err := readConfig(fuzzSettings(args))
		if err != nil {
			t.Fatal(err)
		}
		records := fuzzRecords(t, cfg, data)
		if n := len(args); n > 1 && args[n-2] == "-header" && bytes.HasPrefix(data, []byte(args[n-1]+"\n")) {
			records-- // the header line
		}
		if got := len(objects) + len(reports) - notUTF8; got != records {
			t.Fatalf("%d objects and %d reports (%d not UTF-8) for %d records; stdout:\n%s\nstderr:\n%s",
				len(objects), len(reports), notUTF8, records, r.stdout, r.stderr)
		}
		if notUTF8 == 0 && len(args) == 2 && (cfg.Escape == event.EscapeBackslash || cfg.Escape == event.EscapeCSV) {
			for _, line := range objects {
				reencode(t, cfg, line)
			}
		}
	})
}

// compressedOver reports whether data is gzip or zstd that decompresses
// to more than limit bytes.
func compressedOver(data []byte, limit int64) bool {
	cr := &countReader{r: bytes.NewReader(data)}
	br := bufio.NewReader(cr)
	in, closeIn, err := decompress(br, cr)
	if err != nil || in == io.Reader(br) {
		return false
	}
	defer closeIn()
	n, _ := io.Copy(io.Discard, io.LimitReader(in, limit+1))
	return n > limit
}

// fuzzSettings are a mode's flags as the keys they set.
func fuzzSettings(args []string) flatstore.MapGetter {
	g := flatstore.MapGetter{}
	for i := 0; i < len(args); i++ {
		k := strings.TrimPrefix(args[i], "-")
		if k == "suppress_event_name" {
			g[k] = "true"
			continue
		}
		g[k] = args[i+1]
		i++
	}
	return g
}

// fuzzRecords counts the records of data: its lines (a last one without a
// newline included), with escape csv the lines a quoted value joins
// counting as one. The scanner's records must hold every byte of data, in
// order.
func fuzzRecords(t *testing.T, cfg *flatstore.Config, data []byte) int {
	s := newScanner(bytes.NewReader(data), cfg)
	var joined []byte
	n := 0
	for {
		rec, err := s.next()
		if rec.lines > 0 {
			n++
			joined = append(joined, rec.text...)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > len(data)+1 {
			t.Fatalf("more records than bytes")
		}
	}
	if !bytes.Equal(joined, data) {
		t.Fatalf("the records hold %q, the input %q", joined, data)
	}
	if cfg.Escape != event.EscapeCSV {
		lines := bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		if n != lines {
			t.Fatalf("%d records in %d lines", n, lines)
		}
	}
	return n
}

// reencode checks that the values of one printed object (event and
// params) are what the encoder writes and Split reads back.
func reencode(t *testing.T, cfg *flatstore.Config, line string) {
	obj, err := decodeObject(line)
	if err != nil || len(obj) != 2 {
		t.Fatalf("object %q: %v", line, err)
	}
	name := obj[0].value.(string)
	params := obj[1].value.([]string)
	kv := records.KV{"event", name}
	for i, p := range params {
		kv = append(kv, fmt.Sprintf("p%d", i), p)
	}
	out, _, _, err := event.NewEncoder(cfg.Options).AppendLine(nil, event.Time{}, records.AppendKV(nil, kv), []byte("tag"))
	if err != nil {
		t.Fatal(err)
	}
	fields, err := event.Split(cfg.Options, out)
	if err != nil {
		t.Fatalf("Split(%q) of the values of %s: %v", out, line, err)
	}
	want := append([]string{name}, params...)
	got := make([]string, len(fields))
	for i, f := range fields {
		got[i] = string(f)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s written as %q reads %q", line, out, got)
	}
}
