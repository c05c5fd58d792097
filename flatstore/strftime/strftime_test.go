package strftime

import (
	"testing"
	"time"
)

func TestAppend(t *testing.T) {
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
		if err := CheckSuffix(c.pattern); err != nil {
			t.Errorf("CheckSuffix(%q): %v", c.pattern, err)
		}
		if got := string(Append([]byte("x"), c.pattern, at)); got != "x"+c.want {
			t.Errorf("Append(%q) = %q, want %q", c.pattern, got, "x"+c.want)
		}
	}
	for _, bad := range []string{"%", "x%", "%Q", "%Y/%m", "%E"} {
		if CheckSuffix(bad) == nil {
			t.Errorf("CheckSuffix(%q) = nil, want an error", bad)
		}
	}
}

// TestAppendInLocation: a time is rendered in its own location, %z
// included; %s is the same instant everywhere.
func TestAppendInLocation(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	east := at.In(time.FixedZone("X", 3600))
	if got, want := Format("%F %H %z %s", east), "2027-01-01 00 +0100 1798759800"; got != want {
		t.Errorf("in +01:00: %q, want %q", got, want)
	}
	west := at.In(time.FixedZone("W", -5*3600-1800))
	if got, want := Format("%Y-%m-%d %T %z", west), "2026-12-31 18:00:00 -0530"; got != want {
		t.Errorf("in -05:30: %q, want %q", got, want)
	}
}
