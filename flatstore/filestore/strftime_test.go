package filestore

import (
	"testing"
	"time"
)

func TestAppendStrftime(t *testing.T) {
	at := time.Date(2026, 3, 7, 4, 5, 9, 0, time.UTC)
	cases := []struct{ pattern, want string }{
		{".%Y%m%d-%H%M%S", ".20260307-040509"},
		{".%F_%T", ".2026-03-07_04:05:09"},
		{"-%y-%j-%b-%e", "-26-066-Mar- 7"},
		{".%s", ".1772856309"},
		{".%z", ".+0000"},
		{"%%Y", "%Y"},
		{"", ""},
		{"plain", "plain"},
	}
	for _, c := range cases {
		if err := CheckStrftime(c.pattern); err != nil {
			t.Errorf("CheckStrftime(%q): %v", c.pattern, err)
		}
		if got := string(appendStrftime([]byte("x"), c.pattern, at)); got != "x"+c.want {
			t.Errorf("appendStrftime(%q) = %q, want %q", c.pattern, got, "x"+c.want)
		}
	}
	// Another zone gives the same UTC text.
	if got := string(appendStrftime(nil, "%H", at.In(time.FixedZone("X", 3600)))); got != "04" {
		t.Errorf("%%H in +01:00 = %q, want 04 (UTC)", got)
	}
	for _, bad := range []string{"%", "x%", "%Q", "%Y/%m", "%E"} {
		if CheckStrftime(bad) == nil {
			t.Errorf("CheckStrftime(%q) = nil, want an error", bad)
		}
	}
}
