package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// Hostile chunks through the real plugin .so in the C host (docs/delivery.md): a
// record that is not an event is skipped, the good records around it are
// written byte for byte, a chunk with nothing decodable is answered ERROR,
// and nothing crashes the host or costs unbounded memory.

func hostileGood(i int) []byte {
	return records.AppendRecord(nil, records.Record{
		Time: time.Unix(1700000000, 0),
		Body: records.KV{"event", "E_H", "i", i, "s", "ok"},
	})
}

func hostileGoodLine(i int) string { return "E_H," + strconv.Itoa(i) + ",ok\n" }

// hostileRec is a record whose body is raw msgpack.
func hostileRec(body []byte) []byte {
	return records.AppendRecord(nil, records.Record{Time: time.Unix(1700000000, 0), Body: records.Raw(body)})
}

// ext encodes a msgpack extension of type typ with payload data, in the
// smallest form (fixext1..16, ext8, ext16, ext32) unless form forces one.
func ext(form byte, typ int8, data []byte) records.Raw {
	var b []byte
	switch form {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		b = []byte{form}
	case 0xc7:
		b = []byte{0xc7, byte(len(data))}
	case 0xc8:
		b = binary.BigEndian.AppendUint16([]byte{0xc8}, uint16(len(data)))
	case 0xc9:
		b = binary.BigEndian.AppendUint32([]byte{0xc9}, uint32(len(data)))
	}
	b = append(b, byte(typ))
	return append(b, data...)
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// TestHostileChunks sends one chunk per kind of hostile input, serially, and
// compares the whole file with the exact lines of the good records.
func TestHostileChunks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hostile.log")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	var chunks [][]byte
	var want strings.Builder
	add := func(chunk []byte, lines ...string) {
		chunks = append(chunks, chunk)
		for _, l := range lines {
			want.WriteString(l)
		}
	}

	// Truncated record after a good one.
	add(cat(hostileGood(1), hostileGood(2)[:20]), hostileGoodLine(1))
	// A map that claims 2^32-1 entries and holds one.
	add(cat(hostileGood(3), hostileRec([]byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 0x01})), hostileGoodLine(3))
	// A string that claims 4 GiB.
	add(cat(hostileGood(4), hostileRec([]byte{0x81, 0xa1, 'v', 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b'})), hostileGoodLine(4))
	// A binary that claims 4 GiB.
	add(cat(hostileGood(5), hostileRec([]byte{0x81, 0xa1, 'v', 0xc6, 0xff, 0xff, 0xff, 0xff, 'a', 'b'})), hostileGoodLine(5))
	// 10 000 levels of nesting, complete: skipped (too deep), the walk goes on.
	deep := append(bytes.Repeat([]byte{0x91}, 10000), 0xc0)
	deepMap := append(bytes.Repeat([]byte{0x81, 0xa1, 'd'}, 10000), 0xc0)
	add(cat(hostileGood(6), hostileRec(append([]byte{0x81, 0xa1, 'v'}, deep...)),
		hostileRec(append([]byte{0x81, 0xa1, 'v'}, deepMap...)), hostileGood(7)),
		hostileGoodLine(6), hostileGoodLine(7))
	// Invalid UTF-8 and NUL bytes: written as given (only the delimiter,
	// CR and LF are escaped).
	add(records.AppendRecord(nil, records.Record{Body: records.KV{
		"event", "E_\xff\xfe", "u", "\xc3(\xa0\xa1", "z", "a\x00b\x00", "k\xff", "\xf0\x28\x8c\x28", "b", []byte{0, 0xff, ','},
	}}), "E_\xff\xfe,\xc3(\xa0\xa1,a\x00b\x00,\xf0\x28\x8c\x28,\x00\xff \n")
	// Extensions of every length; ext 0 of 8 bytes is a timestamp.
	extKV := records.KV{"event", "E_EXT"}
	extLine := "E_EXT"
	for _, e := range []struct {
		form byte
		n    int
	}{{0xd4, 1}, {0xd5, 2}, {0xd6, 4}, {0xd7, 8}, {0xd8, 16}, {0xc7, 0}, {0xc7, 3}, {0xc7, 255}, {0xc8, 256}, {0xc8, 65535}, {0xc9, 65536}, {0xc9, 0}} {
		extKV = append(extKV, "x"+strconv.Itoa(len(extKV)), ext(e.form, 5, seq(e.n)))
		extLine += "," + hex.EncodeToString(seq(e.n))
	}
	ts := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 1700000000), 5)
	extKV = append(extKV, "t", ext(0xd7, 0, ts), "t8", ext(0xc7, 0, ts), "a", []any{ext(0xd4, 9, []byte{0xab}), 1})
	extLine += ",2023-11-14T22:13:20.000000005Z,2023-11-14T22:13:20.000000005Z,[\"ab\" 1]\n"
	add(records.AppendRecord(nil, records.Record{Body: extKV}), extLine)
	// A body that is a string, a record that is an array of 3, then a good one.
	add(cat(hostileRec([]byte{0xa3, 'a', 'b', 'c'}), []byte{0x93, 0x01, 0x02, 0x03}, hostileGood(8)), hostileGoodLine(8))
	// A truncated buffer after two good records.
	add(cat(hostileGood(9), hostileGood(10), hostileGood(11)[:9]), hostileGoodLine(9), hostileGoodLine(10))
	// Nothing decodable: the chunk is answered ERROR.
	add([]byte{0xc1, 0xc1, 0xc1, 0xc1, 0xc1})
	// A million empty maps in one value.
	many := msgp.AppendArrayHeader(nil, 1_000_000)
	many = append(many, bytes.Repeat([]byte{0x80}, 1_000_000)...)
	add(records.AppendRecord(nil, records.Record{Body: records.KV{"event", "E_MANY", "m", records.Raw(many)}}),
		"E_MANY,["+strings.Repeat("{} ", 999_999)+"{}]\n")
	// A million records whose body is an empty map: one line each, the tag as event.
	var empties []byte
	for i := 0; i < 1_000_000; i++ {
		empties = append(empties, 0x92, 0x92, 0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 0, 0x80, 0x80)
	}
	add(empties, strings.Repeat("flatstore.test\n", 1_000_000))
	add(hostileGood(12), hostileGoodLine(12))

	in := fbtest.WriteFile(t, "hostile.chunks", records.Frames(chunks...))
	sum, stderr, code := runHostFresh(t, "-in-chunks", in, "-retry-max", "0",
		"-p", "path="+out, "-p", "control_listen=off")
	if code != 2 {
		t.Fatalf("host exit code %d, want 2 (one chunk ERROR); stderr:\n%s", code, stderr)
	}
	if len(sum.Instances) != 1 {
		t.Fatalf("summary %+v", sum)
	}
	s := sum.Instances[0]
	if s.Errors != 1 || s.OKChunks != int64(len(chunks)-1) || s.Retries != 0 || s.DroppedChunks != 0 {
		t.Errorf("summary %+v: want errors=1, ok_chunks=%d, no retry or drop", s, len(chunks)-1)
	}
	if strings.Contains(stderr, "panic") {
		t.Errorf("stderr mentions a panic:\n%s", stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if w := want.String(); string(got) != w {
		gl, _ := fbtest.SplitLines(got)
		wl, _ := fbtest.SplitLines([]byte(w))
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("line %d differs:\n got %.300q\nwant %.300q", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("file holds %d lines, want %d", len(gl), len(wl))
	}
	// Input ~16 MiB (a million records, a million maps); the largest flush
	// renders 15 MB of lines. Measured: about 120 MiB.
	const boundMiB = 200
	t.Logf("host: %+v, max_rss_kb=%d (bound %d MiB)", s, sum.MaxRSSKB, boundMiB)
	if sum.MaxRSSKB <= 0 || sum.MaxRSSKB > boundMiB<<10 {
		t.Errorf("host peak RSS %d KiB, want under %d MiB", sum.MaxRSSKB, boundMiB)
	}
}

// TestHostileNothingDecodable: a chunk from which nothing decodes is
// answered ERROR (the host counts it and exits 2), and the plugin says why.
func TestHostileNothingDecodable(t *testing.T) {
	out := filepath.Join(t.TempDir(), "none.log")
	in := fbtest.WriteFile(t, "none.chunks", records.Frames([]byte{0xc1, 0xc1}, hostileGood(1)[:12]))
	sum, stderr, code := fbtest.RunHost(t, "-in-chunks", in, "-p", "path="+out, "-p", "control_listen=off")
	if code != 2 || len(sum.Instances) != 1 || sum.Instances[0].Errors != 2 || sum.Instances[0].OKChunks != 0 {
		t.Fatalf("exit code %d, summary %+v: want 2 and errors=2; stderr:\n%s", code, sum, stderr)
	}
	if !strings.Contains(stderr, "chunk of 2 bytes (tag \"flatstore.test\") holds no msgpack record: dropped") {
		t.Errorf("stderr does not report the undecodable chunk:\n%s", stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an undecodable chunk created the file (%v)", err)
	}
}

// TestHostileHugeValue sends single 16 MiB values through the plugin, each
// case in its own host process that replays the chunk 9 times (-reload 8):
// the lines are exact, and the host's peak RSS stays under a bound that a
// buffer kept per flush (16 MiB × 9) or a blow-up per value would break.
func TestHostileHugeValue(t *testing.T) {
	const size = 16 << 20
	const generations = 9
	x := bytes.Repeat([]byte{'x'}, size)
	var parts records.KV
	var mj strings.Builder
	mj.WriteString("{")
	for i := 0; i < 16; i++ {
		k := "k" + strconv.Itoa(i)
		v := strings.Repeat("z", 1<<20)
		parts = append(parts, k, v)
		if i > 0 {
			mj.WriteString(" ") // the JSON comma, escaped as a space
		}
		mj.WriteString(`"` + k + `":"` + v + `"`)
	}
	mj.WriteString("}")
	cases := []struct {
		name string
		body records.KV
		line string
	}{
		{"string", records.KV{"event", "E_STR", "v", string(x)}, "E_STR," + string(x) + "\n"},
		{"binary", records.KV{"event", "E_BIN", "v", x}, "E_BIN," + string(x) + "\n"},
		{"ext32", records.KV{"event", "E_EXT", "v", ext(0xc9, 7, x[:size/2])}, "E_EXT," + hex.EncodeToString(x[:size/2]) + "\n"},
		{"map of 16 MiB", records.KV{"event", "E_MAP", "m", parts}, "E_MAP," + mj.String() + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "huge.log")
			chunk := bytes.Join([][]byte{hostileGood(1), records.AppendRecord(nil, records.Record{Body: c.body}), hostileGood(2)}, nil)
			in := fbtest.WriteFile(t, "huge.chunks", records.Frames(chunk))
			sum, stderr, code := runHostFresh(t, "-in-chunks", in, "-reload", strconv.Itoa(generations-1),
				"-p", "path="+out, "-p", "control_listen=off")
			if code != 0 || len(sum.Instances) != 1 || sum.Instances[0].OKChunks != generations {
				t.Fatalf("exit code %d, summary %+v; stderr:\n%s", code, sum, stderr)
			}
			want := []byte(hostileGoodLine(1) + c.line + hostileGoodLine(2))
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, len(want))
			for g := 0; g < generations; g++ {
				if _, err := io.ReadFull(f, buf); err != nil {
					t.Fatalf("generation %d: %v", g, err)
				}
				if !bytes.Equal(buf, want) {
					t.Fatalf("generation %d: lines differ", g)
				}
			}
			if n, _ := f.Read(buf[:1]); n != 0 {
				t.Fatal("file holds more than the expected lines")
			}
			// The host holds the input and a copy of the chunk (2×16 MiB);
			// the plugin renders the line once into room reserved for it
			// (a map's JSON straight into the line under escape opensips).
			// Measured: 84 MiB for the string, 127 MiB for the map, 17 MiB
			// with a tiny input. A 16 MiB buffer kept per flush would add
			// 144 MiB.
			const boundMiB = 160
			t.Logf("host max_rss_kb=%d (bound %d MiB)", sum.MaxRSSKB, boundMiB)
			if sum.MaxRSSKB <= 0 || sum.MaxRSSKB > boundMiB<<10 {
				t.Errorf("host peak RSS %d KiB over %d generations, want under %d MiB", sum.MaxRSSKB, generations, boundMiB)
			}
		})
	}
}

// runHostFresh runs the host to the end like fbtest.RunHost, but as the
// child of a forked shell. Go starts a child with clone(CLONE_VM|CLONE_VFORK)
// and Linux then charges the test process's own resident size to the child's
// ru_maxrss; a real fork in between gives the host a max_rss_kb of its own.
func runHostFresh(t *testing.T, args ...string) (fbtest.Summary, string, int) {
	t.Helper()
	so, host := fbtest.Build(t)
	ctx, cancel := context.WithTimeout(context.Background(), fbtest.HostTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `"$@" & wait $!`, "sh", host, "-so", so}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run host: %v", err)
	}
	sum, perr := fbtest.ParseSummary(stdout.Bytes())
	if perr != nil {
		t.Fatal(perr)
	}
	return sum, stderr.String(), code
}
