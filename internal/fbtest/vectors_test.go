package fbtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestWireCasesAsRecorded: the wire bytes stand in event_stream.json as
// OpenSIPS sent them: compact, the envelope's keys in OpenSIPS's order,
// params absent, an object or an array. A reformatted file fails here.
func TestWireCasesAsRecorded(t *testing.T) {
	names := map[string]bool{}
	for _, c := range LoadWireCases(t) {
		if names[c.Name] {
			t.Errorf("%s: two cases of that name", c.Name)
		}
		names[c.Name] = true
		var compact bytes.Buffer
		if err := json.Compact(&compact, c.Wire); err != nil || !bytes.Equal(compact.Bytes(), c.Wire) {
			t.Errorf("%s: wire %s is not compact JSON (%v)", c.Name, c.Wire, err)
		}
		var keys []string
		dec := json.NewDecoder(bytes.NewReader(c.Wire))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Errorf("%s: wire %s is not an object", c.Name, c.Wire)
			continue
		}
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if k == "params" && v[0] != '{' && v[0] != '[' {
				t.Errorf("%s: params %s is neither an object nor an array", c.Name, v)
			}
		}
		if k := strings.Join(keys, ","); k != "jsonrpc,method,params" && k != "jsonrpc,method" {
			t.Errorf("%s: keys %s, want jsonrpc,method[,params]", c.Name, k)
		}
		if !strings.HasPrefix(string(c.Wire), `{"jsonrpc":"2.0","method":"E_`) {
			t.Errorf("%s: wire %s", c.Name, c.Wire)
		}
		if !strings.HasSuffix(c.OpenSIPS, "\n") || !strings.HasSuffix(c.Flatstore(), "\n") ||
			strings.Count(c.Flatstore(), "\n") != 1 || strings.Contains(c.Flatstore(), "\r") {
			t.Errorf("%s: %q / %q: the flatstore column is one line, and both end with LF", c.Name, c.OpenSIPS, c.Flatstore())
		}
	}
}

// TestOracleRows: every row is complete and its parameters convert.
func TestOracleRows(t *testing.T) {
	o := LoadOracle(t)
	names := map[string]bool{}
	for _, c := range append(o.Values, o.Settings...) {
		if names[c.Name] {
			t.Errorf("%s: two rows of that name", c.Name)
		}
		names[c.Name] = true
		switch {
		case c.StartError != "":
			if c.OpenSIPS != "" || c.Default != nil || c.Exact != nil || len(c.Params) != 0 {
				t.Errorf("%s: a start-up failure has no bytes and no parameters", c.Name)
			}
		case !strings.HasSuffix(c.OpenSIPS, "\n") || !strings.HasSuffix(c.Flatstore(), "\n"):
			t.Errorf("%s: every line ends with LF: %q, %q", c.Name, c.OpenSIPS, c.Flatstore())
		}
		if c.Default != nil && *c.Default == c.OpenSIPS || c.Exact != nil && *c.Exact == c.OpenSIPS {
			t.Errorf("%s: a flatstore column equal to opensips is written only by leaving it out", c.Name)
		}
		if _, err := c.Body(); err != nil {
			t.Error(err)
		}
	}
	for _, c := range o.Values {
		if len(c.Settings) != 0 {
			t.Errorf("%s: a values row has the default settings", c.Name)
		}
	}
	for _, c := range o.Settings {
		if len(c.Settings) == 0 {
			t.Errorf("%s: a settings row without settings", c.Name)
		}
	}
}
