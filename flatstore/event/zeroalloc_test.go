package event_test

import (
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/records"
)

// sipEvent is a typical SIP event of ten fields.
var sipEvent = records.SIPEvent()

// TestAppendLineZeroAllocs: encoding a record into a reused buffer never
// allocates, in every escape mode, with params, a time and nested values.
func TestAppendLineZeroAllocs(t *testing.T) {
	nested := append(records.KV{}, sipEvent...)
	nested = append(nested, "hdrs", records.KV{"via", []any{"SIP/2.0/UDP a", "SIP/2.0/UDP b"}, "max-forwards", 70, "t", time.Unix(1700000000, 5)})
	cases := []struct {
		name string
		kv   []string
		body records.KV
	}{
		{"opensips", nil, sipEvent},
		{"none", []string{"escape", "none"}, sipEvent},
		{"backslash", []string{"escape", "backslash"}, sipEvent},
		{"csv", []string{"escape", "csv"}, sipEvent},
		{"escape_delimiter", []string{"escape_delimiter", ";"}, sipEvent},
		{"params", []string{"params", "call-id,status,missing,from"}, sipEvent},
		{"rfc3339_nano", []string{"time_format", "rfc3339_nano"}, sipEvent},
		{"nested json", nil, nested},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := event.NewEncoder(config(t, c.kv...).Options)
			body := records.AppendKV(nil, c.body)
			tag := []byte("sip.proxy")
			var dst []byte
			allocs := testing.AllocsPerRun(200, func() {
				var err error
				dst, _, _, err = enc.AppendLine(dst[:0], t0, body, tag)
				if err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("AppendLine allocates %v times per record, want 0 (line %q)", allocs, dst)
			}
		})
	}
}

func TestTemplateRenderZeroAllocs(t *testing.T) {
	tp, err := event.ParseTemplate("/var/log/$TAG[1]/$EVENT-$status-$duration-$call-id.log", nil)
	if err != nil {
		t.Fatal(err)
	}
	body := records.AppendKV(nil, sipEvent)
	var dst []byte
	allocs := testing.AllocsPerRun(200, func() {
		dst = tp.Render(dst[:0], []byte("sip.proxy"), []byte("E_SIP_REPLY"), body, event.Time{}, nil)
	})
	if want := "/var/log/proxy/E_SIP_REPLY-200-12.5-a84b4c76e66710@pc33.a.example.log"; string(dst) != want {
		t.Fatalf("Render = %q, want %q", dst, want)
	}
	if allocs != 0 {
		t.Errorf("Render allocates %v times, want 0", allocs)
	}
}

// TestTemplateRenderTimeZeroAllocs: strftime conversions in a zone cost no
// allocation either.
func TestTemplateRenderTimeZeroAllocs(t *testing.T) {
	tp, err := event.ParseTemplate("/var/log/%Y-%m-%d/$EVENT-%H.log", time.FixedZone("", 3600))
	if err != nil {
		t.Fatal(err)
	}
	var dst []byte
	allocs := testing.AllocsPerRun(200, func() {
		dst = tp.Render(dst[:0], []byte("sip.proxy"), []byte("E_SIP_REPLY"), nil, event.Time{Sec: 1796601598}, nil)
	})
	if want := "/var/log/2026-12-07/E_SIP_REPLY-00.log"; string(dst) != want {
		t.Fatalf("Render = %q, want %q", dst, want)
	}
	if allocs != 0 {
		t.Errorf("Render allocates %v times, want 0", allocs)
	}
}
