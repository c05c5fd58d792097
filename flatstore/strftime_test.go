package flatstore_test

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below, whatever the machine has

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/records"
)

// TestPathStrftimeRefused: a '%' in path that is not a date or time
// conversion, or %% , and a time_zone that names no zone, fail the
// configuration with the key, the value and what is allowed.
func TestPathStrftimeRefused(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		kv   []string
		want string
	}{
		{[]string{"path", dir + "/%Q.log"}, `path "` + dir + `/%Q.log": %Q is not a supported date or time conversion; use %Y %m %d %H %M %S %y %j %s %F %T %b %e %z, or %% for a literal %`},
		{[]string{"path", dir + "/x.log%"}, `ends with a lone %: write %% for a literal %`},
		{[]string{"path", dir + "/a%/b.log", "mkdir", "true"}, `%/ is not a supported date or time conversion`},
		{[]string{"path", dir + "/%E.log"}, `%E is not a supported`},
		{[]string{"path", dir + "/100%.log"}, `%. is not a supported`},
		{[]string{"path", dir + "/%Y/x.log"}, `a template in a directory component needs mkdir true`},
		{[]string{"path", dir + "/%Y/../x.log", "mkdir", "true"}, `".." after a substitution`},
		{[]string{"path", dir + "/%Y//x.log", "mkdir", "true"}, `"" after a substitution`},
		{[]string{"path", dir + "/x.log", "time_zone", "Mars/Olympus_Mons"}, `time_zone "Mars/Olympus_Mons": unknown time zone: use UTC, local, or a name of the tz database such as Europe/Paris`},
		{[]string{"path", dir + "/x.log", "time_zone", "../../etc/passwd"}, `time_zone "../../etc/passwd": unknown time zone`},
		{[]string{"path", dir + "/x.log", "time_zone", "/etc/localtime"}, `time_zone "/etc/localtime": unknown time zone`},
	}
	for _, c := range cases {
		g := flatstore.MapGetter{}
		for i := 0; i < len(c.kv); i += 2 {
			g[c.kv[i]] = c.kv[i+1]
		}
		_, err := flatstore.ParseConfig(g)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.kv, err, c.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("a refused configuration created %d entries in its directory", len(entries))
	}
}

// TestPathStrftimeStaticDir: the static directory ends before the first
// component with a conversion, and %% is a literal % wherever it stands.
func TestPathStrftimeStaticDir(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ path, static string }{
		{dir + "/events/%Y-%m-%d/$EVENT.log", dir + "/events"},
		{dir + "/events/x-%F.log", dir + "/events"},
		{dir + "/100%%/%Y/x.log", dir + "/100%"},
		{dir + "/a/$TAG/%Y/x.log", dir + "/a"},
	} {
		cfg := config(t, "path", c.path, "mkdir", "true")
		if cfg.Template.Static() || cfg.Template.StaticDir() != c.static {
			t.Errorf("%s: static %v, StaticDir %q, want a template beneath %q", c.path, cfg.Template.Static(), cfg.Template.StaticDir(), c.static)
		}
	}
	// A path whose only '%' are %% is a static file of that name.
	in, _ := newInstance(t, "path", dir+"/100%%.log")
	if r := in.Flush(records.Records(records.Record{Time: recTime, Body: records.KV{"event", "E", "x", 1}}), "t"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got := readFile(t, dir+"/100%.log"); got != "E,1\n" {
		t.Errorf("100%%.log holds %q, want E,1", got)
	}
}

// midnight is a stream of n records, one a second from 23:59:58 UTC on 6
// December 2026, numbered from 0: the third crosses midnight.
func midnight(n int) []byte {
	start := time.Date(2026, 12, 6, 23, 59, 58, 250000000, time.UTC)
	var recs []records.Record
	for i := range n {
		recs = append(recs, records.Record{Time: start.Add(time.Duration(i) * time.Second), Body: records.KV{"event", "E_CALL", "n", i}})
	}
	return records.Records(recs...)
}

// files returns every file beneath dir (its path relative to dir) with its
// content, but flatstore's own state (.flatstore/).
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".flatstore" {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = readFile(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPathStrftimeMidnight: each record goes to the file of its own day,
// in UTC by default and in time_zone when set, with its directory created
// beneath the static one.
func TestPathStrftimeMidnight(t *testing.T) {
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString("E_CALL," + itoa(i) + "\n")
		}
		return b.String()
	}
	for _, c := range []struct {
		zone string
		want map[string]string
	}{
		{"", map[string]string{"2026-12-06/E_CALL.log": lines(0, 2), "2026-12-07/E_CALL.log": lines(2, 5)}},
		{"UTC", map[string]string{"2026-12-06/E_CALL.log": lines(0, 2), "2026-12-07/E_CALL.log": lines(2, 5)}},
		// 23:59:58 UTC is 08:59:58 in Tokyo: one day for the five.
		{"Asia/Tokyo", map[string]string{"2026-12-07/E_CALL.log": lines(0, 5)}},
		// 18:59:58 in New York (EST, UTC-5): one day too.
		{"America/New_York", map[string]string{"2026-12-06/E_CALL.log": lines(0, 5)}},
	} {
		t.Run("zone="+c.zone, func(t *testing.T) {
			dir := t.TempDir()
			kv := []string{"path", dir + "/events/%Y-%m-%d/$EVENT.log", "mkdir", "true"}
			if c.zone != "" {
				kv = append(kv, "time_zone", c.zone)
			}
			in, _ := newInstance(t, kv...)
			if r := in.Flush(midnight(5), "t"); r != flatstore.OK {
				t.Fatalf("Flush = %v", r)
			}
			got := files(t, dir+"/events")
			if len(got) != len(c.want) {
				t.Errorf("files %v, want %v", keys(got), keys(c.want))
			}
			for name, want := range c.want {
				if got[name] != want {
					t.Errorf("%s: %q, want %q", name, got[name], want)
				}
			}
			if top := files(t, dir); len(top) != len(got) {
				t.Errorf("files outside events/: %v", keys(top))
			}
		})
	}
}

// TestPathStrftimeZoneConversions: the hour, the offset and %s in a zone
// with a half-hour offset.
func TestPathStrftimeZoneConversions(t *testing.T) {
	dir := t.TempDir()
	in, _ := newInstance(t, "path", dir+"/%F_%H-%M_%z_%s.log", "time_zone", "Asia/Kolkata")
	data := records.Records(records.Record{Time: time.Date(2026, 12, 6, 23, 59, 58, 0, time.UTC), Body: records.KV{"event", "E", "x", 1}})
	if r := in.Flush(data, "t"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	name := "2026-12-07_05-29_+0530_1796601598.log"
	if got := files(t, dir); len(got) != 1 || got[name] != "E,1\n" {
		t.Errorf("files %v (%q), want %s holding E,1", keys(got), got[name], name)
	}
}

// TestPathStrftimeMaxDynamicFiles: the time does not count against
// max_dynamic_files — a path that changes every hour writes on after as
// many hours as the bound — while the record values still do.
func TestPathStrftimeMaxDynamicFiles(t *testing.T) {
	dir := t.TempDir()
	in, _ := newInstance(t, "path", dir+"/$EVENT-%Y%m%d%H.log", "max_dynamic_files", "1")
	start := time.Date(2026, 12, 6, 0, 30, 0, 0, time.UTC)
	var recs []records.Record
	for h := range 30 {
		recs = append(recs, records.Record{Time: start.Add(time.Duration(h) * time.Hour), Body: records.KV{"event", "E_A", "h", h}})
	}
	recs = append(recs, records.Record{Time: start, Body: records.KV{"event", "E_B", "h", 0}})
	if r := in.Flush(records.Records(recs...), "t"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	got := files(t, dir)
	if len(got) != 30 {
		t.Errorf("%d files, want 30 (one an hour of E_A): %v", len(got), keys(got))
	}
	if got["E_A-2026120705.log"] != "E_A,29\n" {
		t.Errorf("E_A-2026120705.log: %q, want E_A,29", got["E_A-2026120705.log"])
	}
	if in.Dropped() != 1 {
		t.Errorf("dropped %d, want 1 (E_B, a second distinct path past max_dynamic_files 1)", in.Dropped())
	}
}

// TestPathStrftimeRotate: a day's file is rotated by its rendered name;
// another day's name that was never written is not managed.
func TestPathStrftimeRotate(t *testing.T) {
	dir := t.TempDir()
	in, _ := newInstance(t, "path", dir+"/%Y-%m-%d/e.log", "mkdir", "true")
	if r := in.Flush(midnight(5), "t"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	day := dir + "/2026-12-07/e.log"
	if err := os.Rename(day, day+".1"); err != nil {
		t.Fatal(err)
	}
	if err := in.Rotate(day); err != nil {
		t.Fatalf("Rotate(%q): %v", day, err)
	}
	if err := in.Rotate(dir + "/2026-12-08/e.log"); err != flatstore.ErrNotManaged {
		t.Errorf("Rotate of a day never written: %v, want %v", err, flatstore.ErrNotManaged)
	}
	if r := in.Flush(midnight(5), "t"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got, want := readFile(t, day+".1"), "E_CALL,2\nE_CALL,3\nE_CALL,4\n"; got != want {
		t.Errorf("rotated day: %q, want %q", got, want)
	}
	if got, want := readFile(t, day), "E_CALL,2\nE_CALL,3\nE_CALL,4\n"; got != want {
		t.Errorf("day after the rotate: %q, want %q", got, want)
	}
}

// TestSuffixTimeZone: suffix renders in time_zone too.
func TestSuffixTimeZone(t *testing.T) {
	dir := t.TempDir()
	in, _ := newInstance(t, "path", dir+"/e.log", "suffix", ".%z", "time_zone", "Etc/GMT-3")
	if r := in.Flush(midnight(1), "t"); r != flatstore.OK {
		t.Fatalf("Flush = %v", r)
	}
	if got := readFile(t, dir+"/e.log.+0300"); got != "E_CALL,0\n" {
		t.Errorf("e.log.+0300: %q, want E_CALL,0 (files: %v)", got, keys(files(t, dir)))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestTimeZoneSharedPath: two outputs writing one path must name its files
// alike: with a suffix they must agree on time_zone; without one the zone
// names nothing and they may differ.
func TestTimeZoneSharedPath(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		suffix string
		fails  bool
	}{{".%Y%m%d", true}, {"", false}} {
		proc := flatstore.NewProcess()
		var ins []*flatstore.Instance
		var err error
		for i, zone := range []string{"UTC", "Asia/Tokyo"} {
			cfg := config(t, "path", dir+"/shared.log", "suffix", c.suffix, "time_zone", zone)
			var in *flatstore.Instance
			in, err = flatstore.NewInstance(proc, cfg, "out"+strconv.Itoa(i), logger.New("test", logger.NewWriterSink(io.Discard, logger.LevelDebug)))
			if err != nil {
				break
			}
			ins = append(ins, in)
		}
		for _, in := range ins {
			in.Close()
		}
		switch {
		case c.fails && (err == nil || !strings.Contains(err.Error(), "time_zone Asia/Tokyo")):
			t.Errorf("suffix %q, zones UTC and Asia/Tokyo: %v, want a refusal naming time_zone Asia/Tokyo", c.suffix, err)
		case !c.fails && err != nil:
			t.Errorf("suffix %q: %v, want both outputs", c.suffix, err)
		}
	}
}
