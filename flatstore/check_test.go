package flatstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore"
)

// TestCheckConfigEveryProblemOnce: what Init checks comes in one error, one
// problem a line, each once: a file the user cannot append to is reported
// beside a bad value of another key; a path ParseConfig refuses is not
// reported again by the file system's checks; a sound configuration
// passes with its Config.
func TestCheckConfigEveryProblemOnce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "e.log")
	if err := os.WriteFile(file, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The user Fluent Bit runs as (flatstore-ctl check -user) may create
	// files in dir but not write this one.
	access := func(p string, mode uint32) error {
		if p == file {
			return unix.EACCES
		}
		return nil
	}
	lines := func(err error) []string {
		if err == nil {
			return nil
		}
		return strings.Split(err.Error(), "\n")
	}

	cfg, err := flatstore.CheckConfig(flatstore.MapGetter{"path": file, "file_permissions": "64x", "control_listen": "off"}, access)
	want := []string{
		`file_permissions "64x": must be an octal mode such as 644 or 0640`,
		`path "` + file + `": the file exists and the user Fluent Bit runs as cannot append to it (permission denied): give that user write access to it (chown, chmod or setfacl), or choose another path`,
	}
	if got := lines(err); cfg != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("bad value and locked file: cfg %v, problems:\n%s\nwant:\n%s", cfg != nil, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	missing := filepath.Join(dir, "nowhere", "e.log")
	_, err = flatstore.CheckConfig(flatstore.MapGetter{"path": missing, "rotate_size": "lots", "control_listen": "off"}, access)
	if got := lines(err); len(got) != 2 || !strings.Contains(got[1], "does not exist (create it, or set mkdir true)") {
		t.Errorf("missing directory: want the bad size and the directory once each, got:\n%s", strings.Join(got, "\n"))
	}

	cfg, err = flatstore.CheckConfig(flatstore.MapGetter{"path": file, "control_listen": "off"}, flatstore.ProcessAccess)
	if err != nil || cfg == nil || cfg.Path != file {
		t.Errorf("a sound configuration: %v", err)
	}
}

// TestKeyTypesReadAsTheEngineReads pins what KeyType promises of the types
// registered with Fluent Bit: an integer key takes no value that overflows
// the engine's C int (atoi), a boolean key takes each of flb_utils_bool's
// words in any case with the engine's meaning, and a boolean default is
// one of them. Sizes and durations stay strings (their grammars differ).
func TestKeyTypesReadAsTheEngineReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.log")
	engineBool := map[string]bool{"true": true, "On": true, "YES": true, "false": false, "Off": false, "NO": false}
	for _, k := range flatstore.Keys() {
		switch k.Type {
		case flatstore.KeyInt:
			for _, v := range []string{"2147483648", "4294967297", "-2147483649"} {
				if _, err := flatstore.ParseConfig(flatstore.MapGetter{"path": path, k.Name: v}); err == nil {
					t.Errorf("%s takes %s, which a C int does not hold", k.Name, v)
				}
			}
		case flatstore.KeyBool:
			if _, ok := engineBool[k.Default]; !ok {
				t.Errorf("%s: default %q is not a word of flb_utils_bool", k.Name, k.Default)
			}
			for w, want := range engineBool {
				g := flatstore.MapGetter{"path": path}
				g[k.Name] = w
				cfg, err := flatstore.ParseConfig(g)
				if err != nil {
					t.Errorf("%s %q: %v", k.Name, w, err)
					continue
				}
				got := map[string]bool{"mkdir": cfg.Mkdir, "suppress_event_name": cfg.SuppressEventName}
				if v, ok := got[k.Name]; !ok {
					t.Errorf("boolean key %s: add it to this test", k.Name)
				} else if v != want {
					t.Errorf("%s %q reads %v, the engine reads %v", k.Name, w, v, want)
				}
			}
		}
		for _, sized := range []string{"rotate_size", "rotate_period", "rotate_max_age", "idle_timeout", "reopen_check", "rotate_count"} {
			if k.Name == sized && k.Type != flatstore.KeyString {
				t.Errorf("%s is registered as %v: its grammar is not the engine's (see KeyType)", k.Name, k.Type)
			}
		}
	}
}
