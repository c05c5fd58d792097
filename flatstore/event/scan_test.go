package event

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// tablePrefix is the byte-at-a-time scan cleanPrefix replaces.
func tablePrefix(t *[256]bool, v []byte) int {
	i := 0
	for i < len(v) && !t[v[i]] {
		i++
	}
	return i
}

func swarTables() map[string]*[256]bool {
	tables := map[string]*[256]bool{}
	for _, esc := range []string{"opensips", "none", "backslash", "csv"} {
		for _, d := range []string{",", "|", "\t", "\"", "\\", "::", "\x00", "\xff"} {
			opt := Options{Delimiter: d, Escape: escapeNamed(esc)}
			if len(opt.Check()) > 0 {
				continue
			}
			tables[esc+" "+d] = &NewEncoder(opt).special
		}
	}
	var five [256]bool
	for _, c := range "\r\n,;\\" {
		five[c] = true
	}
	tables["five bytes"] = &five
	var four [256]bool // four special bytes of 0x20 and above: the table alone
	for _, c := range ",;|\"" {
		four[c] = true
	}
	tables["four printable"] = &four
	var zero [256]bool
	zero[0], zero[0x80] = true, true
	tables["nul and 0x80"] = &zero
	return tables
}

// TestCleanPrefix checks the word-at-a-time scan against the byte table at
// every length and every position of the first special byte.
func TestCleanPrefix(t *testing.T) {
	for name, table := range swarTables() {
		s := newSwarSet(table)
		var specials, plain []byte
		for c := 0; c < 256; c++ {
			if table[c] {
				specials = append(specials, byte(c))
			} else {
				plain = append(plain, byte(c))
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for n := 0; n <= 40; n++ {
			for pos := -1; pos < n; pos++ {
				for try := 0; try < 8; try++ {
					v := make([]byte, n)
					for i := range v {
						v[i] = plain[rng.IntN(len(plain))]
					}
					if pos >= 0 && len(specials) > 0 {
						v[pos] = specials[rng.IntN(len(specials))]
						// bytes after the first special: anything
						for i := pos + 1; i < n; i++ {
							v[i] = byte(rng.IntN(256))
						}
					}
					if got, want := s.cleanPrefix(table, v), tablePrefix(table, v); got != want {
						t.Fatalf("%s: cleanPrefix(%q) = %d, want %d", name, v, got, want)
					}
				}
			}
		}
	}
}

func FuzzCleanPrefix(f *testing.F) {
	f.Add([]byte("sip:alice@atlanta.example.com, ok\r\n"))
	f.Add([]byte("\x80\x81\x00,,\"\\"))
	tables := swarTables()
	f.Fuzz(func(t *testing.T, v []byte) {
		for name, table := range tables {
			s := newSwarSet(table)
			if got, want := s.cleanPrefix(table, v), tablePrefix(table, v); got != want {
				t.Fatalf("%s: cleanPrefix(%q) = %d, want %d", name, v, got, want)
			}
		}
	})
}

// BenchmarkCleanPrefix scans the values of a SIP-style event (escape
// opensips, delimiter ","), and a long value such as a User-Agent or a
// rendered JSON object.
func BenchmarkCleanPrefix(b *testing.B) {
	// The defaults: escape opensips, delimiter ",".
	e := NewEncoder(Options{Delimiter: ",", EventKey: "event"})
	sets := []struct {
		name string
		vals [][]byte
	}{
		{"sip", [][]byte{[]byte("1234-a84b4c76e667@pc33.example.com"), []byte("sip:alice123@atlanta.example.com"),
			[]byte("sip:bob@biloxi.example.org"), []byte("Busy Here, retry later"), []byte("E_SIP_INVITE"),
			[]byte("192.0.2.123"), []byte("INVITE")}},
		{"long", [][]byte{[]byte("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML like Gecko) Chrome/120.0.0.0 Safari/537.36 " +
			"{\"user\":\"alice\";\"realm\":\"atlanta.example.com\";\"contact\":\"<sip:alice@192.0.2.4:5060;transport=tcp>\"}")}},
	}
	for _, set := range sets {
		b.Run(set.name, func(b *testing.B) {
			n := 0
			for _, v := range set.vals {
				n += len(v)
			}
			b.SetBytes(int64(n))
			for i := 0; i < b.N; i++ {
				for _, v := range set.vals {
					n += e.scan.cleanPrefix(&e.special, v)
				}
			}
			if n == 0 {
				b.Fatal("nothing scanned")
			}
		})
	}
}

// TestAppendInt checks the inline integer decoder against appendScalar for
// every msgpack integer form, at and around each form's limits.
func TestAppendInt(t *testing.T) {
	var vals []int64
	for _, v := range []int64{0, 1, 9, 10, 31, 32, 127, 128, 255, 256, 65535, 65536, 1<<31 - 1, 1 << 31,
		1<<32 - 1, 1 << 32, 1<<63 - 1} {
		vals = append(vals, v, -v, v-1, -v+1)
	}
	vals = append(vals, -1<<63)
	var bufs [][]byte
	for _, v := range vals {
		bufs = append(bufs, msgp.AppendInt64(nil, v), msgp.AppendInt8(nil, int8(v)), msgp.AppendInt16(nil, int16(v)),
			msgp.AppendInt32(nil, int32(v)))
		if v >= 0 {
			bufs = append(bufs, msgp.AppendUint64(nil, uint64(v)), msgp.AppendUint8(nil, uint8(v)),
				msgp.AppendUint16(nil, uint16(v)), msgp.AppendUint32(nil, uint32(v)))
		}
	}
	bufs = append(bufs, msgp.AppendUint64(nil, 1<<64-1), []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	// Every form explicitly, whatever msgp picks.
	for c := 0xcc; c <= 0xd3; c++ {
		n := 1 << (c & 3)
		for _, fill := range []byte{0x00, 0x7f, 0x80, 0xff} {
			b := []byte{byte(c)}
			for i := 0; i < n; i++ {
				b = append(b, fill)
			}
			bufs = append(bufs, b, b[:len(b)-1]) // whole and truncated
		}
	}
	for _, b := range bufs {
		b = append(b, 0xc0) // something after it
		got, grest, ok := appendInt([]byte("x"), b)
		want, wrest, err := appendScalar([]byte("x"), b)
		if !ok {
			if err == nil && msgp.NextType(b) != msgp.Float64Type {
				t.Errorf("appendInt(% x) failed, appendScalar gives %q", b, want)
			}
			if string(got) != "x" || len(grest) != len(b) {
				t.Errorf("appendInt(% x) failed but changed its result: %q, %d left", b, got, len(grest))
			}
			continue
		}
		if err != nil || string(got) != string(want) || len(grest) != len(wrest) {
			t.Errorf("appendInt(% x) = %q, %d left; appendScalar = %q, %d left, %v", b, got, len(grest), want, len(wrest), err)
		}
	}
}

// TestAppendUint checks the two-digits-a-step formatter against strconv at
// every power of ten and its neighbours, and over a spread of values.
func TestAppendUint(t *testing.T) {
	check := func(u uint64) {
		if got, want := string(appendUint([]byte("x"), u)), "x"+strconv.FormatUint(u, 10); got != want {
			t.Errorf("appendUint(%d) = %q, want %q", u, got, want)
		}
		v := int64(u)
		if got, want := string(appendInt64([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Errorf("appendInt64(%d) = %q, want %q", v, got, want)
		}
	}
	for p := uint64(1); ; p *= 10 {
		check(p - 1)
		check(p)
		check(p + 1)
		if p > (1<<64-1)/10 {
			break
		}
	}
	check(1<<64 - 1)
	check(1 << 63)
	for u := uint64(1); u < 1<<62; u = u*3 + 7 {
		check(u)
		check(-u)
	}
}

// escapeNamed is the escape mode a config names.
func escapeNamed(name string) Escape {
	for _, e := range Escapes() {
		if e.String() == name {
			return e
		}
	}
	panic("no escape " + name)
}
