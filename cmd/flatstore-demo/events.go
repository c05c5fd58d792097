package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/tinylib/msgp/msgp"
)

// A value in an event body: string, int64, float64, bool, nil, obj or []any.
// Bodies are obj, never Go maps, so both encodings keep the key order.
type field struct {
	key string
	val any
}

type obj []field

// eventTime is Fluent Bit's EventTime: msgpack ext type 0, 8 bytes, seconds
// then nanoseconds, big endian.
type eventTime struct{ sec, nsec uint32 }

func (eventTime) ExtensionType() int8 { return 0 }
func (eventTime) Len() int            { return 8 }
func (t eventTime) MarshalBinaryTo(b []byte) error {
	binary.BigEndian.PutUint32(b[0:4], t.sec)
	binary.BigEndian.PutUint32(b[4:8], t.nsec)
	return nil
}
func (t *eventTime) UnmarshalBinary(b []byte) error {
	if len(b) != 8 {
		return fmt.Errorf("eventTime: %d bytes, want 8", len(b))
	}
	t.sec, t.nsec = binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
	return nil
}

// appendRecord appends one record in Fluent Bit's form
// [[EventTime, {}], body].
func appendRecord(b []byte, ts time.Time, body obj) ([]byte, error) {
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendArrayHeader(b, 2)
	b, err := msgp.AppendExtension(b, &eventTime{uint32(ts.Unix()), uint32(ts.Nanosecond())})
	if err != nil {
		return b, err
	}
	b = msgp.AppendMapHeader(b, 0)
	return appendMsgpack(b, body)
}

func appendMsgpack(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case string:
		b = msgp.AppendString(b, v)
	case int64:
		b = msgp.AppendInt64(b, v)
	case int:
		b = msgp.AppendInt64(b, int64(v))
	case float64:
		b = msgp.AppendFloat64(b, v)
	case bool:
		b = msgp.AppendBool(b, v)
	case nil:
		b = msgp.AppendNil(b)
	case obj:
		b = msgp.AppendMapHeader(b, uint32(len(v)))
		for _, f := range v {
			b = msgp.AppendString(b, f.key)
			if b, err = appendMsgpack(b, f.val); err != nil {
				return b, err
			}
		}
	case []any:
		b = msgp.AppendArrayHeader(b, uint32(len(v)))
		for _, e := range v {
			if b, err = appendMsgpack(b, e); err != nil {
				return b, err
			}
		}
	default:
		return b, fmt.Errorf("appendMsgpack: unsupported %T", v)
	}
	return b, nil
}

// appendJSON appends v as JSON, keys in order. Floats always carry a '.', so
// Fluent Bit's JSON parser reads them back as floats, not integers.
func appendJSON(b []byte, v any) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case string:
		b = appendJSONString(b, v)
	case int64:
		b = strconv.AppendInt(b, v, 10)
	case int:
		b = strconv.AppendInt(b, int64(v), 10)
	case float64:
		s := strconv.FormatFloat(v, 'f', -1, 64)
		b = append(b, s...)
		if !strings.ContainsRune(s, '.') {
			b = append(b, ".0"...)
		}
	case bool:
		b = strconv.AppendBool(b, v)
	case nil:
		b = append(b, "null"...)
	case obj:
		b = append(b, '{')
		for i, f := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f.key)
			b = append(b, ':')
			if b, err = appendJSON(b, f.val); err != nil {
				return b, err
			}
		}
		b = append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	default:
		return b, fmt.Errorf("appendJSON: unsupported %T", v)
	}
	return b, nil
}

// appendJSONString quotes s as JSON; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	st := jsonStrings.BorrowStream(nil)
	st.SetBuffer(b)
	st.WriteString(s)
	b = st.Buffer()
	st.SetBuffer(nil) // the pooled stream must not keep our buffer
	jsonStrings.ReturnStream(st)
	return b
}

// jsonStrings validates UTF-8 as it quotes (it also writes <, > and & as
// \u003c…, which JSON parsers read back as the same characters).
var jsonStrings = jsoniter.ConfigCompatibleWithStandardLibrary

// generator makes a reproducible stream of SIP-style events: calls that
// start, change dialog state, end and are rated, between registrations and
// the odd blocked flood.
type generator struct {
	rnd   *rand.Rand
	t     time.Time
	calls []call // calls in progress
	n     int
}

type call struct {
	id, from, to, fromTag string
	start                 time.Time
	state                 int64
}

var (
	users = []string{"alice", "bob", "carol", "dave", "erin", "frank", "josé", "zoë", "hiro", "李雷"}
	hosts = []string{"atlanta.example.com", "biloxi.example.com", "paris.example.fr", "tokyo.example.jp"}
	uas   = []string{
		"Linphone/5.2.5 (belle-sip/5.2.94), Desktop",
		"Grandstream GXP2170 1.0.11.23",
		"Zoiper rv2.10.20.3",
		"Obi200/3.2.2, \"home\" line",
		"MicroSIP/3.21.3",
	}
	hangups = []string{"Normal call clearing", "Busy Here, try later", "Request Terminated", "Temporarily Unavailable"}
	names   = []string{"José Müller", "Zoë Ødegaard", "日本 太郎", "Ana, Maria", "Bob \"the builder\""}
	regions = []string{"eu-west", "us-east", "ap-northeast (東京)"}
)

func newGenerator(seed uint64) *generator {
	return &generator{
		rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		t:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func (g *generator) pick(s []string) string { return s[g.rnd.IntN(len(s))] }

func (g *generator) uri() string { return "sip:" + g.pick(users) + "@" + g.pick(hosts) }

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rnd.IntN(16)]
	}
	return string(b)
}

// next returns the time and body of the next event.
func (g *generator) next() (time.Time, obj) {
	g.n++
	g.t = g.t.Add(time.Duration(500+g.rnd.IntN(4000)) * time.Microsecond)
	r := g.rnd.IntN(100)
	switch {
	case r < 25 || len(g.calls) == 0:
		return g.t, g.callStart()
	case r < 45:
		return g.t, g.dialogState()
	case r < 65:
		return g.t, g.callEnd()
	case r < 85:
		return g.t, g.register()
	case r < 97:
		return g.t, g.accCDR()
	default:
		return g.t, g.pikeBlocked()
	}
}

func (g *generator) callStart() obj {
	c := call{
		id:      g.hex(16) + "@" + g.pick(hosts),
		from:    g.uri(),
		fromTag: g.hex(8),
		start:   g.t,
		state:   1,
	}
	for c.to = g.uri(); c.to == c.from; c.to = g.uri() {
	}
	if len(g.calls) < 64 {
		g.calls = append(g.calls, c)
	}
	codecs := []any{"PCMU", "PCMA"}
	if g.rnd.IntN(2) == 0 {
		codecs = append(codecs, "opus")
	}
	return obj{
		{"event", "E_CALL_START"},
		{"call_id", c.id},
		{"from_uri", c.from},
		{"to_uri", c.to},
		{"from_tag", c.fromTag},
		{"src_ip", fmt.Sprintf("192.0.2.%d", 1+g.rnd.IntN(254))},
		{"src_port", int64(5060 + g.rnd.IntN(40))},
		{"user_agent", g.pick(uas)},
		{"codecs", codecs},
	}
}

func (g *generator) someCall() *call { return &g.calls[g.rnd.IntN(len(g.calls))] }

func (g *generator) dialogState() obj {
	c := g.someCall()
	old := c.state
	if c.state < 4 {
		c.state++
	}
	return obj{
		{"event", "E_DIALOG_STATE"},
		{"call_id", c.id},
		{"state", c.state},
		{"old_state", old},
		{"hash_entry", int64(g.rnd.IntN(4096))},
		{"hash_id", int64(g.rnd.Uint32())},
		{"callee_display", g.pick(names)},
		{"early", c.state < 3},
	}
}

func (g *generator) callEnd() obj {
	i := g.rnd.IntN(len(g.calls))
	c := g.calls[i]
	g.calls = append(g.calls[:i], g.calls[i+1:]...)
	status := int64(200)
	switch g.rnd.IntN(10) {
	case 0:
		status = 486
	case 1:
		status = 487
	case 2:
		status = 480
	}
	// A duration in seconds with a fraction, as billing systems report it.
	dur := float64(g.t.Sub(c.start).Microseconds())/1e6 + float64(g.rnd.IntN(600)) + 0.25
	return obj{
		{"event", "E_CALL_END"},
		{"call_id", c.id},
		{"from_uri", c.from},
		{"to_uri", c.to},
		{"status", status},
		{"duration", dur},
		{"billed_seconds", int64(dur) + 1},
		{"reason", g.pick(hangups)},
		{"hangup_by", []string{"caller", "callee"}[g.rnd.IntN(2)]},
	}
}

func (g *generator) register() obj {
	u := g.pick(users)
	h := g.pick(hosts)
	expires := int64(3600)
	if g.rnd.IntN(8) == 0 {
		expires = 0 // an unregister
	}
	return obj{
		{"event", "E_REGISTER"},
		{"aor", "sip:" + u + "@" + h},
		{"contact", fmt.Sprintf("<sip:%s@198.51.100.%d:%d;transport=tcp>", u, 1+g.rnd.IntN(254), 5060+g.rnd.IntN(10))},
		{"expires", expires},
		{"user_agent", g.pick(uas)},
		{"registered", expires > 0},
	}
}

func (g *generator) accCDR() obj {
	c := g.someCall()
	setup := int64(1 + g.rnd.IntN(5))
	dur := int64(g.rnd.IntN(3600))
	notes := "answered"
	if g.rnd.IntN(4) == 0 {
		notes = "transferred\nto voicemail"
	}
	var account any // a null when the caller is not a customer
	if g.rnd.IntN(3) > 0 {
		account = "ACC-" + g.hex(6)
	}
	return obj{
		{"event", "E_ACC_CDR"},
		{"call_id", c.id},
		{"method", "INVITE"},
		{"from_tag", c.fromTag},
		{"to_tag", g.hex(8)},
		{"sip_code", "200"},
		{"sip_reason", "OK"},
		{"setuptime", setup},
		{"duration", dur},
		{"cost", float64(dur)*0.00037 + 0.0005},
		{"currency", "€"},
		{"extra", obj{{"carrier", "Example Telecom, Inc."}, {"region", g.pick(regions)}, {"trunk", int64(1 + g.rnd.IntN(8))}}},
		{"notes", notes},
		{"rated", g.rnd.IntN(5) > 0},
		{"account", account},
	}
}

func (g *generator) pikeBlocked() obj {
	return obj{
		{"event", "E_PIKE_BLOCKED"},
		{"ip", fmt.Sprintf("203.0.113.%d", 1+g.rnd.IntN(254))},
		{"requests", int64(100 + g.rnd.IntN(5000))},
		{"window_s", 2.5},
		{"reason", "too many requests; blocked, flood"},
	}
}
