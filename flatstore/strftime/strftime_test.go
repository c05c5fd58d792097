package strftime

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
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

// TestFieldsAgreeWithTime: every conversion, worked out once per instant,
// says what package time says, over four thousand years either side of
// the epoch and in zones east and west with odd offsets; and none renders
// a '/', a '.' or nothing.
func TestFieldsAgreeWithTime(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+45*60), time.FixedZone("", -(9*3600 + 30*60)), time.FixedZone("", 14*3600)}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		at := time.Unix(rnd.Int64N(2*130_000_000_000)-130_000_000_000, 0).In(zones[i%len(zones)])
		y := at.Year()
		yy := y % 100
		if yy < 0 {
			yy = -yy
		}
		e := strconv.Itoa(at.Day())
		if at.Day() < 10 {
			e = " " + e
		}
		want := []string{strconv.Itoa(y), at.Format("01"), at.Format("02"), at.Format("15"), at.Format("04"), at.Format("05"),
			fmt.Sprintf("%03d", at.YearDay()), at.Format("2006-01-02"), at.Format("15:04:05"), at.Format("Jan"), at.Format("-0700"),
			strconv.FormatInt(at.Unix(), 10), e, fmt.Sprintf("%02d", yy)}
		for k, c := range []byte("YmdHMSjFTbzsey") {
			got := string(AppendConv(nil, c, at))
			if got != want[k] {
				t.Fatalf("%%%c of %v = %q, want %q", c, at, got, want[k])
			}
			if got == "" || strings.ContainsAny(got, "/.") {
				t.Fatalf("%%%c of %v = %q: empty, or a '/' or '.'", c, at, got)
			}
		}
	}
}
