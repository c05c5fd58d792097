package fbtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/flatstore/flatstore/internal/records"
	"github.com/flatstore/flatstore/internal/repo"
)

// The OpenSIPS vectors (flatstore/testdata/opensips, described by the README
// there): what a real OpenSIPS wrote, the one source of every test that
// compares flatstore with it.

// VectorDir is the vectors' directory, relative to the repository root.
const VectorDir = "flatstore/testdata/opensips"

// WireCase is one event as OpenSIPS's event_stream and event_datagram send
// it, with what event_flatstore wrote for it.
type WireCase struct {
	Name string `json:"name"`
	// Wire is the JSON-RPC notification, byte for byte as sent.
	Wire json.RawMessage `json:"wire"`
	// OpenSIPS is what event_flatstore wrote (flatstore's bytes under
	// escape opensips_exact).
	OpenSIPS string `json:"opensips"`
	// OneLine is what flatstore writes under the default escape opensips
	// (OpenSIPS when the file has none).
	OneLine *string `json:"flatstore"`
}

// Flatstore returns the bytes flatstore writes for c under escape opensips.
func (c WireCase) Flatstore() string { return orSame(c.OneLine, c.OpenSIPS) }

// OracleCase is one row of the oracle: an event's parameters and settings,
// and what OpenSIPS and flatstore write for it.
type OracleCase struct {
	Name string `json:"name"`
	// Params are the event's parameters in order, as JSON values (object
	// keys in their order).
	Params []json.RawMessage `json:"params"`
	// Settings are flatstore properties standing for OpenSIPS's modparams.
	Settings map[string]string `json:"settings"`
	// OpenSIPS is the bytes OpenSIPS wrote.
	OpenSIPS string `json:"opensips"`
	// Default and Exact are flatstore's bytes under escape opensips and
	// opensips_exact, when they differ from OpenSIPS's.
	Default *string `json:"flatstore"`
	Exact   *string `json:"flatstore_exact"`
	// ExactRefused is the configuration error escape opensips_exact gives
	// with these settings ("": none).
	ExactRefused string `json:"exact_refused"`
	// StartError is what both OpenSIPS's start-up and flatstore's Init
	// fail with ("": both start).
	StartError string `json:"start_error"`
}

// Flatstore returns the bytes flatstore writes for c (escape opensips).
func (c OracleCase) Flatstore() string { return orSame(c.Default, c.OpenSIPS) }

// FlatstoreExact returns the bytes flatstore writes for c with escape
// opensips_exact.
func (c OracleCase) FlatstoreExact() string { return orSame(c.Exact, c.OpenSIPS) }

// ParamValues returns the parameters as msgpack values (Raw), converted as
// Fluent Bit converts JSON.
func (c OracleCase) ParamValues() ([]any, error) {
	out := make([]any, len(c.Params))
	for i, p := range c.Params {
		b, err := records.JSONToMsgpack(p)
		if err != nil {
			return nil, fmt.Errorf("%s: parameter %d: %w", c.Name, i+1, err)
		}
		out[i] = records.Raw(b)
	}
	return out, nil
}

// Body returns the record of c: {"event": "E_TEST", "p01": …, "p02": …}.
func (c OracleCase) Body() (records.KV, error) {
	vals, err := c.ParamValues()
	if err != nil {
		return nil, err
	}
	kv := records.KV{"event", "E_TEST"}
	for i, v := range vals {
		kv = append(kv, fmt.Sprintf("p%02d", i+1), v)
	}
	return kv, nil
}

// Oracle is oracle.json: the default-settings rows and the other settings.
type Oracle struct {
	Recorded string       `json:"recorded"` // how and with what it was recorded
	Values   []OracleCase `json:"values"`
	Settings []OracleCase `json:"settings"`
}

func orSame(p *string, same string) string {
	if p != nil {
		return *p
	}
	return same
}

// LoadWireCases reads event_stream.json.
func LoadWireCases(t testing.TB) []WireCase {
	t.Helper()
	var f struct {
		Recorded string     `json:"recorded"`
		Cases    []WireCase `json:"cases"`
	}
	loadVectors(t, "event_stream.json", &f)
	if len(f.Cases) == 0 {
		t.Fatal("fbtest: event_stream.json holds no cases")
	}
	return f.Cases
}

// LoadOracle reads oracle.json.
func LoadOracle(t testing.TB) Oracle {
	t.Helper()
	var o Oracle
	loadVectors(t, "oracle.json", &o)
	if len(o.Values) == 0 || len(o.Settings) == 0 {
		t.Fatal("fbtest: oracle.json lacks values or settings")
	}
	return o
}

func loadVectors(t testing.TB, name string, v any) {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, VectorDir, name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// A misspelt field must not pass for an absent one ("the same as
	// opensips").
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("fbtest: %s: %v", p, err)
	}
}
