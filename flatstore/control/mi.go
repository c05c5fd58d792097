package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/flatstore/flatstore/flatstore"
	jsoniter "github.com/json-iterator/go"
)

// JSON-RPC error codes and messages, as OpenSIPS mi/mi.h.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602

	dataParamCount = "Too few or too many parameters"
	dataParamNames = "Named parameters do not match"
	dataParamType  = "Bad type for parameter 'path_to_file'"

	// codeNotFound is event_flatstore's own error code for an unknown path.
	codeNotFound = 400
	// codeFailed is used when a backend fails to rotate a file it manages.
	codeFailed = 500
)

// MI method names. OpenSIPS 4 calls it event_flatstore:rotate and keeps
// evi_flat_rotate as an alias; "rotate" is the short form it accepts while
// no other module exports a rotate.
func isRotateMethod(m string) bool {
	switch m {
	case "event_flatstore:rotate", "evi_flat_rotate", "rotate":
		return true
	}
	return false
}

const statusMethod = "event_flatstore:status"

const rotateParam = "path_to_file"

// member is one object member (key set) or array element (key empty), with
// its raw JSON text.
type member struct {
	key string
	raw []byte
}

// miRequest is a request after the JSON-RPC checks.
type miRequest struct {
	parsed  bool     // the body is one well-formed JSON value
	invalid bool     // not a valid JSON-RPC 2.0 request object
	id      []byte   // raw id text; nil when absent (or invalid)
	hasID   bool     // an id member was present (a valid request without one is a notification)
	method  string   //
	named   bool     // params was an object
	args    []member // params; empty when absent, {} or []
}

// miReply is a result (raw JSON) or an error.
type miReply struct {
	result  []byte
	code    int
	message string
	data    string
}

func miError(code int, message, data string) miReply {
	return miReply{code: code, message: message, data: data}
}

// serveMI is POST /mi.
func (s *server) serveMI(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	status, out := s.handleMI(body, s.peer(r))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// handleMI answers one request body with an HTTP status and reply bytes.
func (s *server) handleMI(body []byte, from string) (int, []byte) {
	if len(bytes.TrimSpace(body)) == 0 {
		return http.StatusBadRequest, encodeReply(miError(codeParseError, "Parse error", ""), nil)
	}
	req := parseMI(body)
	rep := s.execMI(req, from)
	if !req.hasID && req.parsed && !req.invalid {
		return http.StatusAccepted, nil // a notification gets no reply
	}
	return http.StatusOK, encodeReply(rep, req.id)
}

func parseMI(body []byte) miRequest {
	var req miRequest
	if !json.Valid(body) || hasNUL(body) {
		return req
	}
	req.parsed = true
	obj, ok := objectMembers(body)
	if !ok {
		req.invalid = true
		return req
	}
	if raw := lookup(obj, "id"); raw != nil {
		req.hasID = true
		switch raw[0] {
		case '"':
			req.id = rawUTF8(raw)
		case 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			req.id = raw
		default:
			req.invalid = true
		}
	}
	if v, ok := stringValue(lookup(obj, "jsonrpc")); !ok || v != "2.0" {
		req.invalid = true
	}
	if v, ok := stringValue(lookup(obj, "method")); ok {
		req.method = v
	} else {
		req.invalid = true
	}
	if raw := lookup(obj, "params"); raw != nil {
		switch raw[0] {
		case '{':
			req.named = true
			req.args, _ = objectMembers(raw)
		case '[':
			req.args = arrayElements(raw)
		default:
			req.invalid = true
		}
	}
	return req
}

func (s *server) execMI(req miRequest, from string) miReply {
	switch {
	case !req.parsed:
		return miError(codeParseError, "Parse error", "")
	case req.invalid:
		return miError(codeInvalidRequest, "Invalid Request", "")
	case isRotateMethod(req.method):
		if len(req.args) != 1 {
			return miError(codeInvalidParams, "Invalid params", dataParamCount)
		}
		arg := req.args[0]
		if req.named && arg.key != rotateParam {
			return miError(codeInvalidParams, "Invalid params", dataParamNames)
		}
		path, ok := stringValue(arg.raw)
		if !ok && isNumber(arg.raw) {
			path, ok = string(arg.raw), true // as OpenSIPS: a number is taken as its text
		}
		if !ok {
			return miError(codeInvalidParams, "Invalid params", dataParamType)
		}
		err := s.rotate(path, "mi", from)
		switch {
		case err == nil:
			return miReply{result: []byte(`"OK"`)}
		case errors.Is(err, flatstore.ErrNotManaged):
			return miError(codeNotFound, "File not found", "")
		default:
			return miError(codeFailed, err.Error(), "")
		}
	case req.method == statusMethod:
		if len(req.args) != 0 {
			return miError(codeInvalidParams, "Invalid params", dataParamCount)
		}
		return miReply{result: s.statusJSON()}
	default:
		return miError(codeMethodNotFound, "Method not found", "")
	}
}

// encodeReply writes the reply in OpenSIPS's member order:
// {"jsonrpc":"2.0","result":...,"id":ID} or
// {"jsonrpc":"2.0","error":{"code":C,"message":M[,"data":D]},"id":ID}.
// id nil means null.
func encodeReply(rep miReply, id []byte) []byte {
	b := make([]byte, 0, 96+len(rep.result))
	b = append(b, `{"jsonrpc":"2.0",`...)
	if rep.result != nil {
		b = append(b, `"result":`...)
		b = append(b, rep.result...)
	} else {
		b = append(b, `"error":{"code":`...)
		b = strconv.AppendInt(b, int64(rep.code), 10)
		b = append(b, `,"message":`...)
		b = appendString(b, rep.message)
		if rep.data != "" {
			b = append(b, `,"data":`...)
			b = appendString(b, rep.data)
		}
		b = append(b, '}')
	}
	b = append(b, `,"id":`...)
	if id == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, id...)
	}
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	q, err := jsoniter.ConfigCompatibleWithStandardLibrary.Marshal(s)
	if err != nil { // cannot happen for a string
		return append(b, `""`...)
	}
	return append(b, q...)
}

// objectMembers lists the members of a JSON object in order, duplicates
// kept. raw must be valid JSON.
func objectMembers(raw []byte) ([]member, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	it := jsoniter.ConfigDefault.BorrowIterator(raw)
	defer jsoniter.ConfigDefault.ReturnIterator(it)
	var ms []member
	it.ReadObjectCB(func(it *jsoniter.Iterator, key string) bool {
		ms = append(ms, member{key: key, raw: bytes.TrimSpace(it.SkipAndReturnBytes())})
		return true
	})
	return ms, it.Error == nil
}

// arrayElements lists the elements of a JSON array. raw must be valid JSON.
func arrayElements(raw []byte) []member {
	it := jsoniter.ConfigDefault.BorrowIterator(bytes.TrimSpace(raw))
	defer jsoniter.ConfigDefault.ReturnIterator(it)
	var ms []member
	it.ReadArrayCB(func(it *jsoniter.Iterator) bool {
		ms = append(ms, member{raw: bytes.TrimSpace(it.SkipAndReturnBytes())})
		return true
	})
	return ms
}

// lookup returns the raw value of the first member whose key equals name
// ignoring ASCII case, as cJSON_GetObjectItem does; nil when there is none.
func lookup(ms []member, name string) []byte {
	for _, m := range ms {
		if asciiEqualFold(m.key, name) {
			return m.raw
		}
	}
	return nil
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// stringValue decodes a raw JSON string; ok is false for any other value.
func stringValue(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := jsoniter.ConfigDefault.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// isNumber reports whether raw (valid JSON) is a number.
func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || ('0' <= raw[0] && raw[0] <= '9'))
}

// hasNUL reports whether body (valid JSON) holds a NUL: a raw byte, or the
// escape \u0000 inside a string.
func hasNUL(body []byte) bool {
	if bytes.IndexByte(body, 0) >= 0 {
		return true
	}
	in := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case !in:
			in = c == '"'
		case c == '"':
			in = false
		case c == '\\':
			if i+5 < len(body) && body[i+1] == 'u' && string(body[i+2:i+6]) == "0000" {
				return true
			}
			i++ // the escaped byte; a \uXXXX's hex digits are never '"' or '\\'
		}
	}
	return false
}

// rawUTF8 rewrites a JSON string token (valid JSON) so that every \uXXXX
// escape of a non-ASCII character (a surrogate pair counting as one) becomes
// that character's UTF-8 bytes, as OpenSIPS prints an id it parsed. Every
// other byte and escape is kept as sent. raw itself is returned when there
// is nothing to rewrite.
func rawUTF8(raw []byte) []byte {
	if !bytes.Contains(raw, []byte(`\u`)) {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			out = append(out, c)
			continue
		}
		if raw[i+1] != 'u' {
			out = append(out, raw[i:i+2]...)
			i++
			continue
		}
		r, n := unicodeEscape(raw[i:])
		if r < 0x80 || n == 0 {
			out = append(out, raw[i:i+6]...) // ASCII, or a lone surrogate: as sent
			i += 5
			continue
		}
		out = utf8.AppendRune(out, r)
		i += n - 1
	}
	return out
}

// unicodeEscape decodes the \uXXXX escape at the start of b, and the low
// half that must follow a high surrogate. n is the bytes it spans (6 or 12),
// or 0 for a lone surrogate.
func unicodeEscape(b []byte) (r rune, n int) {
	hi, ok := hex4(b[2:])
	if !ok {
		return 0, 0
	}
	switch {
	case !utf16.IsSurrogate(hi):
		return hi, 6
	case hi >= 0xDC00: // a low half first
		return hi, 0
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return hi, 0
	}
	lo, ok := hex4(b[8:])
	if !ok || lo < 0xDC00 || lo > 0xDFFF {
		return hi, 0
	}
	return utf16.DecodeRune(hi, lo), 12
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
