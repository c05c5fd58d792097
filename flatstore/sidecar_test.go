package flatstore_test

import (
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// sidecarConfig is the configuration of the OpenSIPS sidecar: the event
// name under "method", the parameters under "params" (conf/opensips-sidecar.*).
func sidecarConfig(t testing.TB, escape string, kv ...string) *flatstore.Config {
	t.Helper()
	return config(t, append([]string{"event_key", "method", "params_key", "params", "escape", escape}, kv...)...)
}

// TestSidecarVectors: every notification OpenSIPS's event_stream and
// event_datagram sent (flatstore/testdata/opensips/event_stream.json), as
// Fluent Bit's tcp and udp inputs with format json make a record of it,
// becomes exactly what event_flatstore wrote for the same event under
// escape opensips_exact, and the one-line form under escape opensips.
func TestSidecarVectors(t *testing.T) {
	cases := fbtest.LoadWireCases(t)
	for _, m := range []struct {
		escape string
		want   func(fbtest.WireCase) string
	}{
		{"opensips_exact", func(c fbtest.WireCase) string { return c.OpenSIPS }},
		{"opensips", fbtest.WireCase.Flatstore},
	} {
		cfg := sidecarConfig(t, m.escape)
		enc := event.NewEncoder(cfg.Options)
		var all, want []byte
		for _, c := range cases {
			body := records.JSONRecordBody(c.Wire)
			out, rest, event, err := enc.AppendLine(nil, t0, body, []byte("opensips.stream"))
			if err != nil || len(rest) != 0 {
				t.Fatalf("%s, %s: %v (%d bytes left)", m.escape, c.Name, err, len(rest))
			}
			if string(out) != m.want(c) {
				t.Errorf("%s, %s: %s\n wrote %q\n  want %q", m.escape, c.Name, c.Wire, out, m.want(c))
			}
			// The event name the path template's $EVENT sees is the method.
			if method := strings.SplitN(strings.SplitN(string(c.Wire), `"method":"`, 2)[1], `"`, 2)[0]; string(event) != method {
				t.Errorf("%s, %s: event %q, want %q", m.escape, c.Name, event, method)
			}
			// One encoder, one buffer, every case in turn: nothing of a
			// case leaks into the next.
			if all, _, _, err = enc.AppendLine(all, t0, body, []byte("opensips.stream")); err != nil {
				t.Fatal(err)
			}
			want = append(want, m.want(c)...)
		}
		if string(all) != string(want) {
			t.Errorf("%s: all cases in one buffer:\n got %q\nwant %q", m.escape, all, want)
		}
	}
}

// TestSidecarIgnoresTheEnvelope: the record's other keys are never
// parameters, wherever they stand and whatever they hold (an id from
// event_stream's reliable_mode, a source address key the input adds), and
// with params the names select from a named event.
func TestSidecarIgnoresTheEnvelope(t *testing.T) {
	for _, c := range []struct {
		json string
		kv   []string
		want string
	}{
		{`{"id":915243442,"jsonrpc":"2.0","method":"E_PIKE_BLOCKED","params":{"ip":"192.168.2.11"}}`, nil, "E_PIKE_BLOCKED,192.168.2.11\n"},
		{`{"jsonrpc":"2.0","method":"E_PIKE_BLOCKED","params":{"ip":"192.168.2.11"},"source":"127.0.0.1"}`, nil, "E_PIKE_BLOCKED,192.168.2.11\n"},
		{`{"jsonrpc":"2.0","method":"E_CALL_END","params":{"caller":"a","code":200,"reason":"Normal, clearing"}}`,
			[]string{"params", "reason,caller,missing"}, "E_CALL_END,Normal  clearing,a,\n"},
		{`{"jsonrpc":"2.0","method":"E_TEST","params":["x","y"]}`, []string{"params", "caller"}, "E_TEST,x,y\n"},
		{`{"jsonrpc":"2.0","method":"E_TEST","params":{"m":{"k":"v,w"},"l":[1,"a"]}}`, nil, `E_TEST,{"k":"v w"},[1 "a"]` + "\n"},
	} {
		cfg := sidecarConfig(t, "opensips_exact", c.kv...)
		out, _, _, err := event.NewEncoder(cfg.Options).AppendLine(nil, t0, records.JSONRecordBody([]byte(c.json)), []byte("opensips.stream"))
		if err != nil || string(out) != c.want {
			t.Errorf("%s %q: got %q, %v; want %q", c.json, c.kv, out, err, c.want)
		}
	}
}

// TestSidecarTemplates: a path template sees the notification's top-level
// keys: $EVENT and $method are the event, $params['caller'] one named
// parameter; $params itself, and a name of a positional event, render as _.
func TestSidecarTemplates(t *testing.T) {
	named := records.JSONRecordBody([]byte(`{"jsonrpc":"2.0","method":"E_CALL_END","params":{"caller":"sip:alice@example.com","code":200}}`))
	positional := records.JSONRecordBody([]byte(`{"jsonrpc":"2.0","method":"E_TEST","params":["hello","world"]}`))
	for _, c := range []struct {
		tmpl string
		body []byte
		want string
	}{
		{"/x/$EVENT/$params['caller'].log", named, "/x/E_CALL_END/sip:alice@example.com.log"},
		{"/x/$method-$params['code'].log", named, "/x/E_CALL_END-200.log"},
		{"/x/$params.log", named, "/x/_.log"},
		{"/x/$EVENT-$params['caller'].log", positional, "/x/E_TEST-_.log"},
	} {
		tp, err := event.ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		_, _, event, err := event.NewEncoder(sidecarConfig(t, "opensips_exact").Options).AppendLine(nil, t0, c.body, []byte("opensips.stream"))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tp.Render(nil, []byte("opensips.stream"), event, c.body)); got != c.want {
			t.Errorf("%s: %s, want %s", c.tmpl, got, c.want)
		}
	}
}
