package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	jsoniter "github.com/json-iterator/go"
	"github.com/tinylib/msgp/msgp"
)

// JSONToMsgpack converts one JSON value to msgpack as Fluent Bit's JSON
// packer does (src/flb_pack.c, used by the tcp and udp inputs with format
// json, the json parser, …): an object becomes a map holding its pairs in
// the order written (duplicates kept), an array an array, a string str, true,
// false and null themselves. A number with a '.', or an 'e'/'E' followed by a
// sign or a digit, is a float64; any other number an integer — a
// non-negative one in msgpack-c's unsigned forms (uint64 past
// math.MaxInt64), a negative one in the signed forms — and an integer out of
// 64-bit range a float64 as well. The input must be valid UTF-8 JSON holding
// exactly one value.
func JSONToMsgpack(js []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	out, err := appendJSONValue(nil, dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("records: JSON: more than one value")
	}
	return out, nil
}

// JSONRecordBody is JSONToMsgpack for a value that must be an object: the
// body of the record Fluent Bit's tcp and udp inputs make of it. It panics
// on bad input (a test's own data).
func JSONRecordBody(js []byte) Raw {
	b, err := JSONToMsgpack(js)
	if err != nil {
		panic(fmt.Sprintf("records: %q: %v", js, err))
	}
	if msgp.NextType(b) != msgp.MapType {
		panic(fmt.Sprintf("records: %q is not a JSON object", js))
	}
	return Raw(b)
}

func appendJSONValue(dst []byte, dec *json.Decoder) ([]byte, error) {
	tok, err := dec.Token()
	if err != nil {
		return dst, fmt.Errorf("records: JSON: %w", err)
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			var body []byte
			n := uint32(0)
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return dst, fmt.Errorf("records: JSON: %w", err)
				}
				ks, ok := k.(string)
				if !ok {
					return dst, fmt.Errorf("records: JSON: object key %v", k)
				}
				body = msgp.AppendString(body, ks)
				if body, err = appendJSONValue(body, dec); err != nil {
					return dst, err
				}
				n++
			}
			if _, err := dec.Token(); err != nil { // '}'
				return dst, fmt.Errorf("records: JSON: %w", err)
			}
			return append(msgp.AppendMapHeader(dst, n), body...), nil
		case '[':
			var body []byte
			n := uint32(0)
			for dec.More() {
				if body, err = appendJSONValue(body, dec); err != nil {
					return dst, err
				}
				n++
			}
			if _, err := dec.Token(); err != nil { // ']'
				return dst, fmt.Errorf("records: JSON: %w", err)
			}
			return append(msgp.AppendArrayHeader(dst, n), body...), nil
		}
		return dst, fmt.Errorf("records: JSON: unexpected %v", v)
	case string:
		return msgp.AppendString(dst, v), nil
	case bool:
		return msgp.AppendBool(dst, v), nil
	case nil:
		return msgp.AppendNil(dst), nil
	case json.Number:
		return appendJSONNumber(dst, string(v)), nil
	}
	return dst, fmt.Errorf("records: JSON: unexpected token %v", tok)
}

// appendJSONNumber follows flb_pack.c's pack_numeric_token.
func appendJSONNumber(dst []byte, s string) []byte {
	isFloat := strings.Contains(s, ".")
	for i := 0; i+1 < len(s) && !isFloat; i++ {
		if c := s[i+1]; (s[i] == 'e' || s[i] == 'E') && (c == '+' || c == '-' || c >= '0' && c <= '9') {
			isFloat = true
		}
	}
	float := func() []byte {
		f, _ := strconv.ParseFloat(s, 64) // out of range: ±Inf, as strtod
		return msgp.AppendFloat64(dst, f)
	}
	if isFloat {
		return float()
	}
	if strings.HasPrefix(s, "-") {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return float()
		}
		return msgp.AppendInt64(dst, i) // negative: the signed forms, as msgpack-c
	}
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return float()
	}
	return msgp.AppendUint64(dst, u) // msgpack-c packs a non-negative int64 unsigned
}

// AppendJSON appends an event body (KV, whose values are string,
// int, int64, float64, bool, nil, KV or []any) as JSON, keys in order;
// jsoniter quotes strings (invalid UTF-8 becomes U+FFFD); floats always carry
// a '.', so Fluent Bit's JSON parser reads them back as floats.
func AppendJSON(b []byte, v any) []byte {
	st := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(st)
	st.SetBuffer(b)
	writeJSON(st, v)
	b = st.Buffer()
	st.SetBuffer(nil) // the pooled stream must not keep our buffer
	return b
}

func writeJSON(st *jsoniter.Stream, v any) {
	switch v := v.(type) {
	case KV:
		st.WriteObjectStart()
		for i := 0; i+1 < len(v); i += 2 {
			if i > 0 {
				st.WriteMore()
			}
			st.WriteObjectField(v[i].(string))
			writeJSON(st, v[i+1])
		}
		st.WriteObjectEnd()
	case []any:
		st.WriteArrayStart()
		for i, e := range v {
			if i > 0 {
				st.WriteMore()
			}
			writeJSON(st, e)
		}
		st.WriteArrayEnd()
	case float64:
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.ContainsRune(s, '.') {
			s += ".0"
		}
		st.WriteRaw(s)
	default: // string, int64, bool, nil
		st.WriteVal(v)
	}
}
