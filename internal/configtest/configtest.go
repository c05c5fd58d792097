// Package configtest parses an output's keys for the tests of the core and
// of the encoder, which take their settings from ParseConfig as the output
// does. The core's own internal tests cannot import it (it imports the
// core); its external tests and the encoder's can.
package configtest

import (
	"path/filepath"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
)

// Parse parses kv (key, value, key, value…) with path set to a file in a
// fresh temporary directory unless kv sets it.
func Parse(t testing.TB, kv ...string) *flatstore.Config {
	t.Helper()
	m := flatstore.MapGetter{"path": filepath.Join(t.TempDir(), "events.log")}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	cfg, err := flatstore.ParseConfig(m)
	if err != nil {
		t.Fatalf("ParseConfig(%v): %v", m, err)
	}
	return cfg
}
