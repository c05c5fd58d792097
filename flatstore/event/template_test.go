package event_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/records"
)

func TestTemplateRender(t *testing.T) {
	body := records.AppendKV(nil, records.KV{
		"event", "E_CALL", "user", "alice", "n", 42, "f", 1.5, "ok", true, "nil", nil,
		"call-id", "abc@host", "sip", records.KV{"from", "bob", "to", records.KV{"uri", "sip:x"}}, "list", []any{1},
		"bad", "a/../../b", "dots", "..", "dot", ".", "empty", "", "bin", []byte("b/in"),
	})
	cases := []struct {
		tmpl, tag, want string
	}{
		{"/d/$TAG.log", "app.sip.x", "/d/app.sip.x.log"},
		{"/d/$TAG[0]-$TAG[1]-$TAG[2].log", "app.sip.x", "/d/app-sip-x.log"},
		{"/d/$TAG[3].log", "app.sip.x", "/d/_.log"},
		{"/d/$TAG-events.log", "app", "/d/app-events.log"},
		{"/d/$EVENT.log", "t", "/d/E_CALL.log"},
		{"/d/$EVENT-x.log", "t", "/d/E_CALL-x.log"},
		{"/d/$user.log", "t", "/d/alice.log"},
		{"/d/$n-$f-$ok.log", "t", "/d/42-1.5-true.log"},
		{"/d/$call-id.log", "t", "/d/abc@host.log"},
		{"/d/$sip['from'].log", "t", "/d/bob.log"},
		{`/d/$sip["to"]['uri'].log`, "t", "/d/sip:x.log"},
		{"/d/$sip['none'].log", "t", "/d/_.log"},
		{"/d/$sip.log", "t", "/d/_.log"},
		{"/d/$list.log", "t", "/d/_.log"},
		{"/d/$nil.log", "t", "/d/_.log"},
		{"/d/$missing.log", "t", "/d/_.log"},
		{"/d/$user['x'].log", "t", "/d/_.log"},
		{"/d/$empty.log", "t", "/d/_.log"},
		{"/d/$bin.log", "t", "/d/b_in.log"},
		{"/d/$bad.log", "t", "/d/a_______b.log"},
		{"/d/$dots/x", "t", "/d/__/x"},
		{"/d/$dot/x", "t", "/d/_/x"},
		{"/d/$TAG/x", "../../etc/x", "/d/______etc_x/x"},
		{"/d/$TAG/x", "..", "/d/__/x"},
		{"/d/$TAG/x", "", "/d/_/x"},
		{"/d/$TAG/x", "a\x00b", "/d/a_b/x"},
		{"/d/cost$/$TAG", "t", "/d/cost$/t"},
		{"/d/$", "t", "/d/$"},
	}
	for _, c := range cases {
		tp, err := event.ParseTemplate(c.tmpl, nil)
		if err != nil {
			t.Errorf("ParseTemplate(%q): %v", c.tmpl, err)
			continue
		}
		got := string(tp.Render(nil, []byte(c.tag), []byte("E_CALL"), body, event.Time{}, nil))
		if got != c.want {
			t.Errorf("%q with tag %q: got %q, want %q", c.tmpl, c.tag, got, c.want)
		}
		if !strings.HasPrefix(filepath.Clean(got), tp.StaticDir()+"/") {
			t.Errorf("%q rendered %q: outside %q", c.tmpl, got, tp.StaticDir())
		}
	}
}

func TestTemplateStatic(t *testing.T) {
	cases := []struct {
		tmpl      string
		static    bool
		dir       string
		dynDir    bool
		perRecord bool
	}{
		{"/var/log/e.log", true, "/var/log", false, false},
		{"/var/log/cost$.log", true, "/var/log", false, false},
		{"/var/log/$TAG.log", false, "/var/log", false, false},
		{"/var/log/ev-$TAG.log", false, "/var/log", false, false},
		{"/var/log/$TAG/e.log", false, "/var/log", true, false},
		{"/var/log/x$TAG/$EVENT.log", false, "/var/log", true, true},
		{"/var/log/$/x/$TAG.log", false, "/var/log/$/x", false, false},
		{"/var/log/$TAG[1]-$user.log", false, "/var/log", false, true},
		{"/var/log/%Y-%m-%d/e.log", false, "/var/log", true, true},
		{"/var/log/e-%F.log", false, "/var/log", false, true},
		{"/var/log/100%%/e.log", true, "/var/log/100%", false, false},
		{"/var/100%%/$TAG/%H.log", false, "/var/100%", true, true},
	}
	for _, c := range cases {
		tp, err := event.ParseTemplate(c.tmpl, nil)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", c.tmpl, err)
		}
		if tp.Static() != c.static || tp.StaticDir() != c.dir || tp.DynamicDir() != c.dynDir || tp.PerRecord() != c.perRecord || tp.String() != c.tmpl {
			t.Errorf("%q: Static %v StaticDir %q DynamicDir %v PerRecord %v; want %v %q %v %v",
				c.tmpl, tp.Static(), tp.StaticDir(), tp.DynamicDir(), tp.PerRecord(), c.static, c.dir, c.dynDir, c.perRecord)
		}
	}
}

// TestTemplateTime: conversions render the record's time in the template's
// zone (UTC without one), the same instant in every zone for %s; and the
// untimed rendering leaves them as written.
func TestTemplateTime(t *testing.T) {
	at := event.Time{Sec: 1796601598, Nsec: 999999999} // 2026-12-06 23:59:58.999999999 UTC
	const tmpl = "/var/log/%Y-%m-%d/$EVENT-%H%M%S-%j-%y-%b-%z-%s-%T-%%.log"
	for _, c := range []struct {
		loc  *time.Location
		want string
	}{
		{nil, "/var/log/2026-12-06/E_CALL-235958-340-26-Dec-+0000-1796601598-23:59:58-%.log"},
		{time.FixedZone("", 3600), "/var/log/2026-12-07/E_CALL-005958-341-26-Dec-+0100-1796601598-00:59:58-%.log"},
		{time.FixedZone("", -10*3600), "/var/log/2026-12-06/E_CALL-135958-340-26-Dec--1000-1796601598-13:59:58-%.log"},
	} {
		tp, err := event.ParseTemplate(tmpl, c.loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tp.Render(nil, []byte("t"), []byte("E_CALL"), nil, at, nil)); got != c.want {
			t.Errorf("in %v: %q, want %q", c.loc, got, c.want)
		}
		if got, want := string(tp.RenderUntimed(nil, []byte("t"), []byte("E_CALL"), nil)), "/var/log/%Y-%m-%d/E_CALL-%H%M%S-%j-%y-%b-%z-%s-%T-%.log"; got != want {
			t.Errorf("untimed: %q, want %q", got, want)
		}
	}
	for _, bad := range []string{"/var//log/$TAG.log", "/var/./log/%F.log", "/var/log/../x/$TAG.log", "/var/log/%%/../$TAG.log",
		"/x/%Q.log", "/x/a%", "/x/%/y", "/x/%E", "/x/%c.log", "/x/%x", "/x/%n", "/x/%t"} {
		if _, err := event.ParseTemplate(bad, nil); err == nil {
			t.Errorf("ParseTemplate(%q) accepted it", bad)
		}
	}
}

// TestTemplateTimeCache: a TimeCache gives the same paths as none, across
// a change of second (and of day), and between templates of two zones.
func TestTemplateTimeCache(t *testing.T) {
	utc, err := event.ParseTemplate("/x/%F/%T.log", nil)
	if err != nil {
		t.Fatal(err)
	}
	east, err := event.ParseTemplate("/x/%F/%T.log", time.FixedZone("", 3600))
	if err != nil {
		t.Fatal(err)
	}
	var c event.TimeCache
	for _, r := range []struct {
		tp   *event.Template
		sec  int64
		want string
	}{
		{utc, 1796601599, "/x/2026-12-06/23:59:59.log"},
		{utc, 1796601599, "/x/2026-12-06/23:59:59.log"},
		{east, 1796601599, "/x/2026-12-07/00:59:59.log"},
		{utc, 1796601599, "/x/2026-12-06/23:59:59.log"},
		{utc, 1796601600, "/x/2026-12-07/00:00:00.log"},
		{utc, 1796601599, "/x/2026-12-06/23:59:59.log"},
	} {
		at := event.Time{Sec: r.sec, Nsec: 999999999}
		if got := string(r.tp.Render(nil, nil, nil, nil, at, &c)); got != r.want {
			t.Errorf("%d with the cache: %q, want %q", r.sec, got, r.want)
		}
		if got := string(r.tp.Render(nil, nil, nil, nil, at, nil)); got != r.want {
			t.Errorf("%d: %q, want %q", r.sec, got, r.want)
		}
	}
}
