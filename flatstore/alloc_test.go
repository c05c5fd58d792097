package flatstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFlushOneWrite checks that one flush of 10 000 records to one file is
// one write(2) holding every line.
func TestFlushOneWrite(t *testing.T) {
	const n = 10_000
	for _, form := range benchForms {
		dir := t.TempDir()
		in, writes := benchInstance(t, dir, "events.log")
		chunk := form.chunk(n)
		if r := in.Flush(chunk, "sip"); r != OK {
			t.Fatalf("Flush = %v", r)
		}
		if w := writes.Load(); w != 1 {
			t.Errorf("form=%s: %d write(2) calls for one flush of %d records, want 1", form.name, w, n)
		}
		got, err := os.ReadFile(filepath.Join(dir, "events.log"))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Split(bytes.TrimSuffix(got, []byte{'\n'}), []byte{'\n'})
		if len(lines) != n {
			t.Fatalf("form=%s: %d lines, want %d", form.name, len(lines), n)
		}
		// The first and last lines, as the README's What it writes shows them: the comma
		// inside the reason became a space (escape opensips).
		if want := "E_SIP_INVITE,INVITE,0-a84b4c76e667@pc33.example.com,sip:alice0@atlanta.example.com," +
			"sip:bob@biloxi.example.org,192.0.2.1,5060,100,Trying  please wait,0"; string(lines[0]) != want {
			t.Errorf("form=%s: first line\n%s\nwant\n%s", form.name, lines[0], want)
		}
		if want := "E_SIP_REGISTER,REGISTER,9999-a84b4c76e667@pc33.example.com,sip:alice499@atlanta.example.com," +
			"sip:bob@biloxi.example.org,192.0.2.250,5075,487,Request Terminated  by caller,582081"; string(lines[n-1]) != want {
			t.Errorf("form=%s: last line\n%s\nwant\n%s", form.name, lines[n-1], want)
		}
	}
}
