package event

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

// TestFastPairsMatchesGeneral: the line fastPairs writes is the line the
// general walk writes, byte for byte, with the same error and the same rest,
// for random records (strings of every length around the word size and
// shortValue, holding every special byte; integers of every form; floats,
// binaries, nil, nested maps and arrays; non-string keys; the event key
// anywhere, twice, or holding a non-string; truncated chunks) under every
// escape mode, several delimiters, params, params_key, time formats and
// line limits, several records into one buffer of random capacity.
func TestFastPairsMatchesGeneral(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 23))
	delims := []string{",", "|", "::", "\t", ";", "ab", "\x00", "\xa7"}
	escs := []Escape{EscapeOpenSIPS, EscapeNone, EscapeBackslash, EscapeCSV, EscapeOpenSIPSExact}
	for it := 0; it < 40000; it++ {
		opt := Options{Delimiter: delims[r.IntN(len(delims))], Escape: escs[r.IntN(len(escs))], EventKey: []string{"event", "ev", "a"}[r.IntN(3)]}
		opt.SuppressEventName = r.IntN(3) == 0
		if r.IntN(4) == 0 {
			opt.TimeFormat = TimeFormat(r.IntN(6))
		}
		switch r.IntN(8) {
		case 0:
			opt.Params = []string{"a", "code", "zz", "a"}
		case 1:
			opt.ParamsKey = "pk"
		case 2:
			opt.ParamsKey = "pk"
			opt.Params = []string{"a", "b"}
		}
		if opt.Escape == EscapeOpenSIPS && len(opt.Delimiter) == 1 && r.IntN(3) == 0 {
			opt.EscapeDelimiter = "_"
		}
		if len(opt.Check()) > 0 {
			continue
		}
		fast, general := NewEncoder(opt), NewEncoder(opt)
		general.fast = false
		var chunk []byte
		var bodies []int
		for k := 0; k < 1+r.IntN(3); k++ {
			bodies = append(bodies, len(chunk))
			chunk = append(chunk, rndBody(r)...)
		}
		if r.IntN(3) == 0 {
			chunk = chunk[:r.IntN(len(chunk)+1)] // truncated
		}
		dst := append(make([]byte, 0, r.IntN(200)), "prefix\n"...)
		gdst := append([]byte(nil), "prefix\n"...)
		tm := Time{Sec: r.Int64N(2e9), Nsec: r.Int64N(2e9) - 5e8}
		for _, off := range bodies {
			if off > len(chunk) {
				break
			}
			body := chunk[off:]
			mx := MaxLineBytes
			if r.IntN(3) == 0 {
				mx = r.IntN(200)
			}
			out, rest, ev, err := fast.AppendLineMax(dst, tm, body, []byte("tag,x"), mx)
			gout, grest, gev, gerr := general.AppendLineMax(gdst, tm, body, []byte("tag,x"), mx)
			if !bytes.Equal(out, gout) || len(rest) != len(grest) || !bytes.Equal(ev, gev) || err != gerr {
				t.Fatalf("options %+v, body % x, max %d:\n got %q, %d left, %q, %v\nwant %q, %d left, %q, %v",
					opt, body, mx, out, len(rest), ev, err, gout, len(grest), gev, gerr)
			}
			dst, gdst = out, gout
		}
	}
}

func rndStr(r *rand.Rand) string {
	alpha := []string{"a", "b", "x", ",", "|", ";", "\r", "\n", "\\", "\"", "\t", "\x00", "é", "0", "9", "-", ":", " ", "\xff", "ab", "abcdefgh"}
	n := r.IntN(6)
	switch r.IntN(5) {
	case 0:
		n = r.IntN(80)
	case 1:
		n = r.IntN(300)
	}
	var b []byte
	for len(b) < n {
		if r.IntN(4) == 0 {
			b = append(b, alpha[r.IntN(len(alpha))]...)
		} else {
			b = append(b, byte('a'+r.IntN(26)))
		}
	}
	return string(b)
}

func rndVal(r *rand.Rand, b []byte, depth int) []byte {
	switch r.IntN(14) {
	case 0, 1, 2, 3:
		return msgp.AppendString(b, rndStr(r))
	case 4:
		return msgp.AppendInt64(b, int64(r.Uint64()>>uint(r.IntN(64)))*int64(1-2*r.IntN(2)))
	case 5:
		return msgp.AppendUint64(b, r.Uint64()>>uint(r.IntN(64)))
	case 6:
		return msgp.AppendInt(b, r.IntN(200)-100)
	case 7:
		return msgp.AppendFloat64(b, r.NormFloat64()*1e5)
	case 8:
		return msgp.AppendBool(b, r.IntN(2) == 0)
	case 9:
		return msgp.AppendNil(b)
	case 10:
		return msgp.AppendBytes(b, []byte(rndStr(r)))
	case 11:
		if depth < 3 {
			n := r.IntN(4)
			b = msgp.AppendMapHeader(b, uint32(n))
			for i := 0; i < n; i++ {
				b = msgp.AppendString(b, rndStr(r))
				b = rndVal(r, b, depth+1)
			}
			return b
		}
	case 12:
		if depth < 3 {
			n := r.IntN(4)
			b = msgp.AppendArrayHeader(b, uint32(n))
			for i := 0; i < n; i++ {
				b = rndVal(r, b, depth+1)
			}
			return b
		}
	}
	return msgp.AppendInt(b, r.IntN(100000))
}

func rndBody(r *rand.Rand) []byte {
	keys := []string{"event", "ev", "a", "b", "pk", "method", "code", "c", "event"}
	n := r.IntN(12)
	b := msgp.AppendMapHeader(nil, uint32(n))
	if r.IntN(10) == 0 {
		b = []byte{0xde, 0, byte(n)}
	}
	for i := 0; i < n; i++ {
		switch r.IntN(12) {
		case 0:
			b = msgp.AppendInt(b, r.IntN(5))
		case 1:
			b = msgp.AppendString(b, rndStr(r))
		default:
			k := keys[r.IntN(len(keys))]
			if r.IntN(6) == 0 {
				b = append(b, 0xd9, byte(len(k)))
				b = append(b, k...)
			} else {
				b = msgp.AppendString(b, k)
			}
		}
		b = rndVal(r, b, 0)
	}
	return b
}

// TestFastPairsNonASCIIDelimiter: fastPairs' one-mask test would flag most
// ASCII bytes as special under a delimiter at or past 0x80, so such a
// delimiter takes the general walk (output alike either way: the test only
// ever flags too many lanes, never too few).
func TestFastPairsNonASCIIDelimiter(t *testing.T) {
	for _, d := range []string{"\xa7", "\x80", "\xff"} {
		if e := NewEncoder(Options{Delimiter: d, Escape: EscapeOpenSIPS}); e.fast {
			t.Errorf("delimiter %q: fast walk on, want the general walk", d)
		}
	}
	for _, d := range []string{",", "|", "\x7f"} {
		if e := NewEncoder(Options{Delimiter: d, Escape: EscapeOpenSIPS}); !e.fast {
			t.Errorf("delimiter %q: general walk, want the fast walk", d)
		}
	}
}

// TestFastPairsIntegerDigits: every integer fastPairs writes itself (32 bits
// at most, each msgpack form) at each digit count's edges comes out as
// strconv writes it, and as the general walk does.
func TestFastPairsIntegerDigits(t *testing.T) {
	var vals []int64
	for p := int64(1); p <= 1e10; p *= 10 {
		vals = append(vals, p-1, p, p+1, -p, -p+1, -p-1)
	}
	vals = append(vals, 0, 127, 128, 255, 256, 65535, 65536, 1<<32-1, -32, -33, -128, -129, -32768, -32769, -1<<31)
	fast := NewEncoder(Options{Delimiter: ",", Escape: EscapeOpenSIPS})
	general := NewEncoder(Options{Delimiter: ",", Escape: EscapeOpenSIPS})
	general.fast = false
	for _, v := range vals {
		if v < -1<<31 || v >= 1<<32 {
			continue
		}
		var forms [][]byte
		forms = append(forms, msgp.AppendInt64(nil, v)) // smallest signed form
		if v >= 0 {
			forms = append(forms, msgp.AppendUint64(nil, uint64(v))) // smallest unsigned form
		}
		for _, f := range forms {
			body := append(msgp.AppendMapHeader(nil, 3), "\xa1e\xa1E\xa1a"...)
			body = append(append(body, f...), "\xa1b\xa1x"...)
			want := ",E," + strconv.FormatInt(v, 10) + ",x\n" // no event key: an empty name, then the three values
			out, _, _, err := fast.AppendLineMax(nil, Time{}, body, nil, MaxLineBytes)
			gout, _, _, gerr := general.AppendLineMax(nil, Time{}, body, nil, MaxLineBytes)
			if err != nil || gerr != nil || string(out) != want || string(gout) != want {
				t.Errorf("%d as % x: fast %q (%v), general %q (%v), want %q", v, f, out, err, gout, gerr, want)
			}
		}
	}
}
