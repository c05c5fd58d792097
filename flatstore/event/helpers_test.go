package event_test

import (
	"strconv"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/configtest"
	"github.com/flatstore/flatstore/internal/records"
)

// The encoder's tests take their Options from ParseConfig, as the output
// does, so that a key's spelling and its defaults are tested with it.

// config parses kv (key, value, key, value…) with path set to a file in a
// fresh temporary directory unless kv sets it.
func config(t testing.TB, kv ...string) *flatstore.Config { return configtest.Parse(t, kv...) }

// encode returns the line the encoder writes for body with tag "tag.x".
func encode(t testing.TB, cfg *flatstore.Config, et event.Time, body records.KV) string {
	t.Helper()
	b := records.AppendKV(nil, body)
	enc := event.NewEncoder(cfg.Options)
	out, rest, _, err := enc.AppendLine(nil, et, b, []byte("tag.x"))
	if err != nil {
		t.Fatalf("AppendLine(%v): %v", body, err)
	}
	if len(rest) != 0 {
		t.Fatalf("AppendLine(%v): %d bytes left after the map", body, len(rest))
	}
	return string(out)
}

// params builds a body {"event": event, "p1": v1, "p2": v2, …}.
func params(event string, vals ...any) records.KV {
	kv := records.KV{"event", event}
	for i, v := range vals {
		kv = append(kv, "p"+strconv.Itoa(i+1), v)
	}
	return kv
}
