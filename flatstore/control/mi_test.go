package control

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
)

func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("reply is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("reply\n got %s\nwant %s", got, want)
	}
}

func q(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestMIOracle replays the request/reply pairs recorded on a real OpenSIPS
// 3.6.8 and 4.0.1 and the JSON-RPC error cases of OpenSIPS's mi.c. Each
// reply must equal the oracle byte for byte, come with HTTP 200 and
// application/json, and a rotate must touch the file only when the answer
// is OK.
func TestMIOracle(t *testing.T) {
	t.Parallel()
	paths := tempPaths(t, "events.log")
	p := paths[0]
	dir := strings.TrimSuffix(p, "/run/events.log")
	b := newFileBackend(t, p)
	h, logs := serve(t, "", b)

	const (
		okReply       = `{"jsonrpc":"2.0","result":"OK","id":%s}`
		notFound      = `{"jsonrpc":"2.0","error":{"code":400,"message":"File not found"},"id":%s}`
		tooFew        = `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Too few or too many parameters"},"id":%s}`
		noMatch       = `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Named parameters do not match"},"id":%s}`
		badType       = `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params","data":"Bad type for parameter 'path_to_file'"},"id":%s}`
		noMethod      = `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":%s}`
		parseError    = `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`
		invalidReqFmt = `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":%s}`
	)
	f := func(format, id string) string { return strings.Replace(format, "%s", id, 1) }
	rq := func(method, id, params string) string {
		s := `{"jsonrpc":"2.0","method":` + q(method)
		if params != "" {
			s += `,"params":` + params
		}
		return s + `,"id":` + id + `}`
	}

	cases := []struct {
		name    string
		req     string
		want    string
		rotates bool
	}{
		{"evi_flat_rotate named", rq("evi_flat_rotate", "1", `{"path_to_file":`+q(p)+`}`), f(okReply, "1"), true},
		{"event_flatstore:rotate named", rq("event_flatstore:rotate", "2", `{"path_to_file":`+q(p)+`}`), f(okReply, "2"), true},
		{"rotate short name", rq("rotate", "3", `{"path_to_file":`+q(p)+`}`), f(okReply, "3"), true},
		{"positional", rq("evi_flat_rotate", "4", `[`+q(p)+`]`), f(okReply, "4"), true},
		{"string id", rq("evi_flat_rotate", `"abc"`, `[`+q(p)+`]`), f(okReply, `"abc"`), true},
		{"non-ASCII escape in a string id echoed as UTF-8", rq("evi_flat_rotate", `"\u00e9\n"`, `[`+q(p)+`]`), f(okReply, "\"\u00e9\\n\""), true},
		{"raw UTF-8 string id", rq("evi_flat_rotate", "\"h\u00e9\u20ac\"", `[`+q(p)+`]`), f(okReply, "\"h\u00e9\u20ac\""), true},
		{"surrogate pair in a string id", rq("evi_flat_rotate", `"\ud83d\ude00"`, `[`+q(p)+`]`), f(okReply, "\"\U0001F600\""), true},
		{"uppercase hex escape", rq("evi_flat_rotate", `"\u00C9"`, `[`+q(p)+`]`), f(okReply, "\"\u00c9\""), true},
		{"other escapes in a string id as sent", rq("evi_flat_rotate", `"a\"\\\/\t\u0041\u001f"`, `[`+q(p)+`]`), f(okReply, `"a\"\\\/\t\u0041\u001f"`), true},
		{"lone surrogate in a string id as sent", rq("evi_flat_rotate", `"\ud83dx\udc00"`, `[`+q(p)+`]`), f(okReply, `"\ud83dx\udc00"`), true},
		{"null id", rq("evi_flat_rotate", "null", `[`+q(p)+`]`), f(okReply, "null"), true},
		{"fraction id kept as text", rq("evi_flat_rotate", "1.50", `[`+q(p)+`]`), f(okReply, "1.50"), true},
		{"negative exponent id", rq("evi_flat_rotate", "-7e2", `[`+q(p)+`]`), f(okReply, "-7e2"), true},
		{"big id", rq("evi_flat_rotate", "123456789012345678901234567890", `[`+q(p)+`]`), f(okReply, "123456789012345678901234567890"), true},
		{"members in any case, as cJSON", `{"JSONRPC":"2.0","Method":"rotate","ID":9,"Params":[` + q(p) + `]}`, f(okReply, "9"), true},
		{"first duplicate member wins", `{"jsonrpc":"2.0","method":"rotate","method":"nope","params":[` + q(p) + `],"id":10}`, f(okReply, "10"), true},
		{"whitespace around", " \n\t" + rq("rotate", "11", `[ `+q(p)+` ]`) + "\r\n ", f(okReply, "11"), true},

		{"unknown path", rq("evi_flat_rotate", "20", `{"path_to_file":"/run/events.log"}`), f(notFound, "20"), false},
		{"relative spelling", rq("evi_flat_rotate", "21", `{"path_to_file":"run/events.log"}`), f(notFound, "21"), false},
		{"double slash", rq("evi_flat_rotate", "22", `{"path_to_file":`+q(dir+"/run//events.log")+`}`), f(notFound, "22"), false},
		{"dot segment", rq("evi_flat_rotate", "23", `{"path_to_file":`+q(dir+"/run/./events.log")+`}`), f(notFound, "23"), false},
		{"trailing slash", rq("evi_flat_rotate", "24", `[`+q(p+"/")+`]`), f(notFound, "24"), false},
		{"empty path", rq("evi_flat_rotate", "25", `{"path_to_file":""}`), f(notFound, "25"), false},
		{"escaped backslash before u0000 is no NUL", rq("evi_flat_rotate", "26", `[`+q(p+`\u0000`)+`]`), f(notFound, "26"), false},
		{"number path, named", rq("evi_flat_rotate", "27", `{"path_to_file":5}`), f(notFound, "27"), false},
		{"number path, positional", rq("event_flatstore:rotate", "28", `[-1.5e3]`), f(notFound, "28"), false},

		{"no params", rq("evi_flat_rotate", "30", ""), f(tooFew, "30"), false},
		{"empty object", rq("evi_flat_rotate", "31", `{}`), f(tooFew, "31"), false},
		{"empty array", rq("evi_flat_rotate", "32", `[]`), f(tooFew, "32"), false},
		{"extra key", rq("evi_flat_rotate", "33", `{"path_to_file":`+q(p)+`,"x":1}`), f(tooFew, "33"), false},
		{"two positional", rq("evi_flat_rotate", "34", `[`+q(p)+`,`+q(p)+`]`), f(tooFew, "34"), false},
		{"duplicate named", rq("evi_flat_rotate", "35", `{"path_to_file":`+q(p)+`,"path_to_file":`+q(p)+`}`), f(tooFew, "35"), false},
		{"wrong name", rq("evi_flat_rotate", "36", `{"path":`+q(p)+`}`), f(noMatch, "36"), false},
		{"name case matters", rq("evi_flat_rotate", "37", `{"PATH_TO_FILE":`+q(p)+`}`), f(noMatch, "37"), false},
		{"bool path", rq("evi_flat_rotate", "38", `{"path_to_file":true}`), f(badType, "38"), false},
		{"null path", rq("evi_flat_rotate", "39", `[null]`), f(badType, "39"), false},
		{"array path", rq("evi_flat_rotate", "40", `[[`+q(p)+`]]`), f(badType, "40"), false},

		{"unknown method", rq("evi_flat_rotate_all", "50", `[`+q(p)+`]`), f(noMethod, "50"), false},
		{"method case matters", rq("EVI_FLAT_ROTATE", `"m"`, `[`+q(p)+`]`), f(noMethod, `"m"`), false},
		{"status with params", rq("event_flatstore:status", "51", `["x"]`), f(tooFew, "51"), false},

		{"parse error", `{"jsonrpc":"2.0","method":"rotate","id":60,`, parseError, false},
		{"not JSON", `rotate /x`, parseError, false},
		{"trailing bytes", rq("rotate", "61", `[`+q(p)+`]`) + `}`, parseError, false},
		{"bad escape", `{"jsonrpc":"2.0","method":"rot\ate","id":62}`, parseError, false},
		{"NUL escape in the path", rq("evi_flat_rotate", "63", `[`+q(p+"\x00")+`]`), parseError, false},
		{"NUL escape in the id", rq("evi_flat_rotate", `"a\u0000"`, `[`+q(p)+`]`), parseError, false},
		{"NUL escape in a member name", `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":64,"x\u0000":1}`, parseError, false},
		{"raw NUL inside a string", rq("evi_flat_rotate", "65", `["`+p+"\x00"+`"]`), parseError, false},
		{"raw NUL after the request", rq("evi_flat_rotate", "66", `[`+q(p)+`]`) + "\x00", parseError, false},

		{"array request", `[` + rq("rotate", "70", `[`+q(p)+`]`) + `]`, f(invalidReqFmt, "null"), false},
		{"string request", `"rotate"`, f(invalidReqFmt, "null"), false},
		{"missing jsonrpc", `{"method":"rotate","params":[` + q(p) + `],"id":71}`, f(invalidReqFmt, "71"), false},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","method":"rotate","params":[` + q(p) + `],"id":72}`, f(invalidReqFmt, "72"), false},
		{"jsonrpc number", `{"jsonrpc":2.0,"method":"rotate","params":[` + q(p) + `],"id":73}`, f(invalidReqFmt, "73"), false},
		{"missing method", `{"jsonrpc":"2.0","params":[` + q(p) + `],"id":74}`, f(invalidReqFmt, "74"), false},
		{"method not a string", `{"jsonrpc":"2.0","method":7,"params":[` + q(p) + `],"id":75}`, f(invalidReqFmt, "75"), false},
		{"params a string", `{"jsonrpc":"2.0","method":"rotate","params":` + q(p) + `,"id":76}`, f(invalidReqFmt, "76"), false},
		{"id an object", `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":{"a":1}}`, f(invalidReqFmt, "null"), false},
		{"id a bool", `{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":true}`, f(invalidReqFmt, "null"), false},
		{"invalid notification still answered", `{"jsonrpc":"2.0","method":7}`, f(invalidReqFmt, "null"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.Write(t, p, "line\n") // the file is open before every request
			before := b.rotated(p)
			r := mi(t, h, c.req)
			if r.status != http.StatusOK {
				t.Fatalf("HTTP %d, want 200 (OpenSIPS answers every built reply with 200)", r.status)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q, want application/json", ct)
			}
			if r.body != c.want {
				t.Fatalf("reply\n got %s\nwant %s", r.body, c.want)
			}
			jsonEqual(t, r.body, c.want)
			if got := b.rotated(p) - before; c.rotates != (got == 1) || got > 1 {
				t.Fatalf("rotations %d, want rotated=%v", got, c.rotates)
			}
			if b.isOpen(p) == c.rotates {
				t.Fatalf("file open=%v after the request, want %v", b.isOpen(p), !c.rotates)
			}
		})
	}

	// The rotation really let go of the file: after a mv, the next write
	// creates it again (the rotate itself creates nothing).
	b.Write(t, p, "before\n")
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if r := mi(t, h, rq("evi_flat_rotate", "90", `{"path_to_file":`+q(p)+`}`)); r.body != f(okReply, "90") {
		t.Fatalf("rotate after mv: %s", r.body)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rotate created %s: %v", p, err)
	}
	b.Write(t, p, "after\n")
	if got, _ := os.ReadFile(p); string(got) != "after\n" {
		t.Fatalf("%s holds %q, want the line written after the rotate", p, got)
	}
	if got, _ := os.ReadFile(p + ".1"); !strings.HasSuffix(string(got), "before\n") {
		t.Fatalf("%s.1 holds %q", p, got)
	}
	if r := mi(t, h, rq("rotate", "91", `["/run/events.log"]`)); r.body != f(notFound, "91") {
		t.Fatalf("unknown path: %s", r.body)
	}
	if !strings.Contains(logs.String(), "control: rotate "+q(p)+" (mi from 127.0.0.1:") || !strings.Contains(logs.String(), "): OK\n") ||
		!strings.Contains(logs.String(), `control: rotate "/run/events.log" (mi from`) || !strings.Contains(logs.String(), "): File not found\n") {
		t.Fatalf("rotations not logged with path and result:\n%s", logs)
	}
}

// A request without an id is a notification: the command runs, the answer
// is HTTP 202 with no body (OpenSIPS mi_http).
func TestMINotification(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, _ := serve(t, "", b)
	r := mi(t, h, `{"jsonrpc":"2.0","method":"evi_flat_rotate","params":[`+q(p)+`]}`)
	if r.status != http.StatusAccepted || r.body != "" {
		t.Fatalf("notification: HTTP %d %q, want 202 and no body", r.status, r.body)
	}
	if b.rotated(p) != 1 {
		t.Fatal("notification did not rotate")
	}
	r = mi(t, h, `{"jsonrpc":"2.0","method":"nope"}`)
	if r.status != http.StatusAccepted || r.body != "" {
		t.Fatalf("notification of an unknown method: HTTP %d %q, want 202 and no body", r.status, r.body)
	}
}

func TestMIEmptyBody(t *testing.T) {
	t.Parallel()
	h, _ := serve(t, "", newFileBackend(t))
	for _, body := range []string{"", " \r\n"} {
		r := mi(t, h, body)
		if r.status != http.StatusBadRequest {
			t.Fatalf("empty body %q: HTTP %d, want 400 as OpenSIPS", body, r.status)
		}
		jsonEqual(t, r.body, `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`)
	}
}

func TestMIStatus(t *testing.T) {
	t.Parallel()
	ps := tempPaths(t, "a.log", "b.log", "shared.log")
	b1 := newFileBackend(t, ps[0], ps[2])
	b2 := newFileBackend(t, ps[1], ps[2])
	h, _ := serve(t, "", b1, b2)
	if err := b1.Rotate(ps[0]); err != nil {
		t.Fatal(err)
	}
	r := mi(t, h, `{"jsonrpc":"2.0","method":"event_flatstore:status","id":"s"}`)
	var rep struct {
		JSONRPC string `json:"jsonrpc"`
		Result  struct {
			Files []map[string]any `json:"files"`
		} `json:"result"`
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	if rep.JSONRPC != "2.0" || rep.ID != "s" || !strings.HasPrefix(r.body, `{"jsonrpc":"2.0","result":{"files":[`) {
		t.Fatalf("reply %s", r.body)
	}
	open := map[string]bool{}
	for _, f := range rep.Result.Files {
		if _, dup := open[f["path"].(string)]; dup {
			t.Fatalf("%s listed twice: %s", f["path"], r.body)
		}
		open[f["path"].(string)] = f["open"].(bool)
		if _, ok := f["last_rotation"]; ok {
			t.Fatalf("zero last_rotation not omitted: %s", r.body)
		}
	}
	want := map[string]bool{ps[0]: false, ps[1]: true, ps[2]: true}
	if !reflect.DeepEqual(open, want) {
		t.Fatalf("files %v, want %v", open, want)
	}
	// {} and [] are no parameters.
	for _, params := range []string{`{}`, `[]`} {
		r := mi(t, h, `{"jsonrpc":"2.0","method":"event_flatstore:status","params":`+params+`,"id":1}`)
		if !strings.HasPrefix(r.body, `{"jsonrpc":"2.0","result":{"files":[`) {
			t.Fatalf("params %s: %s", params, r.body)
		}
	}
}

// Rotate asks every instance: a path shared by two is OK; an error other
// than ErrNotManaged is code 500 with its message.
func TestMIRotateAcrossBackends(t *testing.T) {
	t.Parallel()
	ps := tempPaths(t, "a.log", "b.log", "shared.log", "broken.log")
	b1 := newFileBackend(t, ps[0], ps[2], ps[3])
	b2 := newFileBackend(t, ps[1], ps[2])
	b1.fail[ps[3]] = errors.New("close " + ps[3] + ": input/output error")
	h, logs := serve(t, "", b1, b2)
	for _, p := range ps[:3] {
		if r := mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`); r.body != `{"jsonrpc":"2.0","result":"OK","id":1}` {
			t.Fatalf("%s: %s", p, r.body)
		}
	}
	if b1.rotated(ps[0]) != 1 || b2.rotated(ps[1]) != 1 || b1.rotated(ps[2]) != 1 || b2.rotated(ps[2]) != 1 {
		t.Fatalf("rotations b1=%v b2=%v", b1.rotations, b2.rotations)
	}
	r := mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(ps[3])+`],"id":2}`)
	want := `{"jsonrpc":"2.0","error":{"code":500,"message":` + q("close "+ps[3]+": input/output error") + `},"id":2}`
	if r.body != want {
		t.Fatalf("failing backend:\n got %s\nwant %s", r.body, want)
	}
	if !strings.Contains(logs.String(), "input/output error") {
		t.Fatalf("backend error not logged:\n%s", logs)
	}
}

// mi_http serves its whole root: /mi, /mi/ and anything under it.
func TestMIPrefix(t *testing.T) {
	t.Parallel()
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	h, _ := serve(t, "", b)
	rot := []byte(`{"jsonrpc":"2.0","method":"rotate","params":[` + q(p) + `],"id":1}`)
	for _, path := range []string{"/mi", "/mi/", "/mi/x", "/mi/json/rotate", "/mi/a%20b?x=1"} {
		b.Write(t, p, "line\n")
		r := do(t, h, http.MethodPost, path, "", rot)
		if r.status != http.StatusOK || r.body != `{"jsonrpc":"2.0","result":"OK","id":1}` || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("POST %s: %d %q", path, r.status, r.body)
		}
	}
	if b.rotated(p) != 5 {
		t.Fatalf("%d rotations, want 5", b.rotated(p))
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/mi/x", http.StatusMethodNotAllowed},
		{http.MethodPut, "/mi/", http.StatusMethodNotAllowed},
		{http.MethodPost, "/mix", http.StatusNotFound},
		{http.MethodPost, "/m", http.StatusNotFound},
	} {
		if r := do(t, h, c.method, c.path, "", rot); r.status != c.status {
			t.Fatalf("%s %s: %d, want %d", c.method, c.path, r.status, c.status)
		}
	}
	if b.rotated(p) != 5 {
		t.Fatal("a request outside /mi rotated")
	}
}
