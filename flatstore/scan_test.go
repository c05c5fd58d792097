package flatstore

import (
	"math/rand/v2"
	"testing"
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
			cfg, err := ParseConfig(MapGetter{"path": "/tmp/x.log", "delimiter": d, "escape": esc})
			if err != nil {
				continue
			}
			tables[esc+" "+d] = &NewEncoder(cfg).special
		}
	}
	var five [256]bool
	for _, c := range "\r\n,;\\" {
		five[c] = true
	}
	tables["five bytes"] = &five
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
