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
		tp, err := event.ParseTemplate(c.tmpl, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _, evName, err := event.NewEncoder(sidecarConfig(t, "opensips_exact").Options).AppendLine(nil, t0, c.body, []byte("opensips.stream"))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tp.Render(nil, []byte("opensips.stream"), evName, c.body, event.Time{}, nil)); got != c.want {
			t.Errorf("%s: %s, want %s", c.tmpl, got, c.want)
		}
	}
}

// TestSidecarEventParams: OpenSIPS 4.0 leaves a parameter with no value
// off the wire (E_PROFILING_PROC's file, line and status, set only for some
// verbs), so its lines came out one to three fields short of
// event_flatstore's. With event_params_file naming the event's columns,
// each line has every column, in the file's order, empty where the
// parameter was left off or unset (null); an event the file does not list
// keeps the record's own order; a listed event with no parameters at all
// has its columns, empty.
func TestSidecarEventParams(t *testing.T) {
	file := fbtest.WriteFile(t, "events.params", []byte("# OpenSIPS 4.0 events\n"+
		"E_PROFILING_PROC sec, usec, session, verb, name, type, depth, file, line, status\n\n"+
		"E_EMPTY_LISTED\ta,b\n"))
	cfg := sidecarConfig(t, "opensips_exact", "event_params_file", file)
	enc := event.NewEncoder(cfg.Options)
	for _, c := range []struct{ wire, want string }{
		{`{"jsonrpc":"2.0","method":"E_PROFILING_PROC","params":{"sec":1776767469,"usec":200446,"session":3463978,"verb":"start","name":"SIP receiver udp:127.0.0.1:5060","type":1,"depth":1}}`,
			"E_PROFILING_PROC,1776767469,200446,3463978,start,SIP receiver udp:127.0.0.1:5060,1,1,,,\n"},
		{`{"jsonrpc":"2.0","method":"E_PROFILING_PROC","params":{"sec":1776767469,"usec":200471,"session":3463978,"verb":"exit","name":"route","type":1,"depth":2,"file":"opensips.cfg","line":42,"status":null}}`,
			"E_PROFILING_PROC,1776767469,200471,3463978,exit,route,1,2,opensips.cfg,42,\n"},
		{`{"jsonrpc":"2.0","method":"E_NOT_LISTED","params":{"z":"1","a":"2"}}`, "E_NOT_LISTED,1,2\n"},
		{`{"jsonrpc":"2.0","method":"E_EMPTY_LISTED"}`, "E_EMPTY_LISTED,,\n"},
		{`{"jsonrpc":"2.0","method":"E_EMPTY"}`, "E_EMPTY\n"},
	} {
		out, _, _, err := enc.AppendLine(nil, t0, records.JSONRecordBody([]byte(c.wire)), []byte("opensips.stream"))
		if err != nil || string(out) != c.want {
			t.Errorf("%s\n wrote %q (%v)\n  want %q", c.wire, out, err, c.want)
		}
	}
	for _, bad := range []struct{ body, want string }{
		{"E_X\n", `line 1: "E_X" names no parameters`},
		{"E_X a\nE_X b\n", "line 2: E_X is listed twice"},
		{"# nothing\n", "lists no event"},
	} {
		_, err := flatstore.ParseConfig(flatstore.MapGetter{"path": "/tmp/x.log", "params_key": "params",
			"event_params_file": fbtest.WriteFile(t, "bad.params", []byte(bad.body))})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.body, err, bad.want)
		}
	}
	if _, err := flatstore.ParseConfig(flatstore.MapGetter{"path": "/tmp/x.log", "event_params_file": file}); err == nil ||
		!strings.Contains(err.Error(), "applies only with params_key") {
		t.Errorf("event_params_file without params_key: %v", err)
	}
}
