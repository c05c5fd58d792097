package flatstore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
)

// TestConfigInvalid: each invalid value fails with one message that names
// the key, the value and what is allowed.
func TestConfigInvalid(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "e.log")
	cases := []struct {
		name string
		kv   flatstore.MapGetter
		want []string // each must appear in the error
	}{
		{"perm 64x", flatstore.MapGetter{"file_permissions": "64x"}, []string{`file_permissions "64x": must be an octal mode such as 644 or 0640`}},
		{"perm 999", flatstore.MapGetter{"file_permissions": "999"}, []string{`file_permissions "999": must be an octal mode`}},
		{"perm 1777", flatstore.MapGetter{"file_permissions": "1777"}, []string{`file_permissions "1777"`}},
		{"perm 7", flatstore.MapGetter{"file_permissions": "7"}, []string{`file_permissions "7"`}},
		{"perm -644", flatstore.MapGetter{"file_permissions": "-644"}, []string{`file_permissions "-644"`}},
		{"sockets 0", flatstore.MapGetter{"max_open_sockets": "0"}, []string{`max_open_sockets "0": must be an integer from 1 to 65535`}},
		{"sockets 70000", flatstore.MapGetter{"max_open_sockets": "70000"}, []string{`max_open_sockets "70000": must be an integer from 1 to 65535`}},
		{"sockets abc", flatstore.MapGetter{"max_open_sockets": "abc"}, []string{`max_open_sockets "abc": must be an integer from 1 to 65535`}},
		{"delimiter LF", flatstore.MapGetter{"delimiter": "a\nb"}, []string{`delimiter "a\nb": must not contain CR or LF`}},
		{"escape_delimiter length", flatstore.MapGetter{"escape_delimiter": "##"}, []string{`"escape_delimiter" length (2) must match "delimiter" length (1)`}},
		{"escape_delimiter length 3", flatstore.MapGetter{"delimiter": "||", "escape_delimiter": "abc"}, []string{`"escape_delimiter" length (3) must match "delimiter" length (2)`}},
		{"escape_delimiter not opensips", flatstore.MapGetter{"escape": "csv", "escape_delimiter": "|"}, []string{`escape_delimiter "|": only applies with escape opensips`}},
		{"escape unknown", flatstore.MapGetter{"escape": "html"}, []string{`escape "html": must be one of opensips, opensips_exact, none, backslash, csv`}},
		{"csv multi-byte", flatstore.MapGetter{"escape": "csv", "delimiter": "||"}, []string{`delimiter "||": escape csv needs a single-byte delimiter`}},
		{"csv quote", flatstore.MapGetter{"escape": "csv", "delimiter": `"`}, []string{`delimiter "\"": escape csv cannot use the quote`}},
		{"backslash delimiter n", flatstore.MapGetter{"escape": "backslash", "delimiter": "n"}, []string{`delimiter "n": escape backslash cannot use a delimiter that starts with n or r`}},
		{"backslash delimiter r", flatstore.MapGetter{"escape": "backslash", "delimiter": "rs"}, []string{`delimiter "rs": escape backslash cannot use a delimiter that starts with n or r`}},
		{"backslash delimiter", flatstore.MapGetter{"escape": "backslash", "delimiter": `\|`}, []string{`delimiter "\\|": escape backslash cannot use`}},
		{"time_format", flatstore.MapGetter{"time_format": "iso"}, []string{`time_format "iso": must be one of none, unix, unix_ms, unix_ns, rfc3339, rfc3339_nano`}},
		{"params empty name", flatstore.MapGetter{"params": "a,,b"}, []string{`params "a,,b": must be a comma-separated list`}},
		{"header two lines", flatstore.MapGetter{"header": "a\nb"}, []string{`header "a\nb": must be one line`}},
		{"bool", flatstore.MapGetter{"mkdir": "maybe"}, []string{`mkdir "maybe": must be a boolean`}},
		{"suppress bool", flatstore.MapGetter{"suppress_event_name": "2"}, []string{`suppress_event_name "2": must be a boolean`}},
		{"sync", flatstore.MapGetter{"sync": "always"}, []string{`sync "always": must be none or flush`}},
		{"idle_timeout", flatstore.MapGetter{"idle_timeout": "soon"}, []string{`idle_timeout "soon": must be a duration such as 30s`}},
		{"idle_timeout negative", flatstore.MapGetter{"idle_timeout": "-5s"}, []string{`idle_timeout "-5s": must be a duration`}},
		{"reopen_check negative", flatstore.MapGetter{"reopen_check": "-1"}, []string{`reopen_check "-1": must be 0 or a positive number of seconds`}},
		{"rotate_period fraction", flatstore.MapGetter{"rotate_period": "1.5s"}, []string{`rotate_period "1.5s": must be a whole number of seconds`}},
		{"rotate_count", flatstore.MapGetter{"rotate_count": "-1"}, []string{`rotate_count "-1": must be a number of lines`}},
		{"rotate_size word", flatstore.MapGetter{"rotate_size": "big"}, []string{`rotate_size "big": must be a number of bytes`}},
		{"rotate_size unit", flatstore.MapGetter{"rotate_size": "10t"}, []string{`rotate_size "10t"`}},
		{"rotate_size double unit", flatstore.MapGetter{"rotate_size": "10kk"}, []string{`rotate_size "10kk"`}},
		{"rotate_size bk", flatstore.MapGetter{"rotate_size": "10bk"}, []string{`rotate_size "10bk"`}},
		{"rotate_size negative", flatstore.MapGetter{"rotate_size": "-1k"}, []string{`rotate_size "-1k"`}},
		{"rotate_size overflow", flatstore.MapGetter{"rotate_size": "9999999999999g"}, []string{`rotate_size "9999999999999g"`}},
		{"suffix slash", flatstore.MapGetter{"suffix": ".%Y/%m"}, []string{`suffix ".%Y/%m": must not contain '/'`}},
		{"suffix unknown", flatstore.MapGetter{"suffix": ".%Q"}, []string{`suffix ".%Q": %Q is not a supported date or time conversion`}},
		{"suffix lone %", flatstore.MapGetter{"suffix": ".%"}, []string{`suffix ".%": ends with a lone %`}},
		{"control_listen", flatstore.MapGetter{"control_listen": "nowhere"}, []string{`control_listen "nowhere": must be HOST:PORT`}},
		{"control_listen port", flatstore.MapGetter{"control_listen": "127.0.0.1:99999"}, []string{`control_listen "127.0.0.1:99999"`}},
		{"control_listen relative unix", flatstore.MapGetter{"control_listen": "unix:x.sock"}, []string{`control_listen "unix:x.sock": a unix socket needs an absolute path`}},
		{"control_listen unix too long", flatstore.MapGetter{"control_listen": "unix:/" + strings.Repeat("s", 107)}, []string{`a unix socket path holds at most 107 bytes (sun_path); this one has 108`}},
		{"control_listen public", flatstore.MapGetter{"control_listen": "0.0.0.0:2021"}, []string{`control_listen "0.0.0.0:2021": a non-loopback address needs control_token`}},
		{"token space", flatstore.MapGetter{"control_token": "a b"}, []string{`control_token "(redacted)": must not contain white space`}},
		{"token short", flatstore.MapGetter{"control_token": "s3cret"}, []string{`control_token "(redacted)": must be at least 16 bytes (it is 6)`}},
		{"reopen_check too long", flatstore.MapGetter{"reopen_check": "30s"}, []string{`reopen_check "30s": must be at most 10s (0 = off)`}},
		{"control_listen all interfaces", flatstore.MapGetter{"control_listen": ":2021"}, []string{`control_listen ":2021": a non-loopback address needs control_token`}},
		{"control_listen 127-named host", flatstore.MapGetter{"control_listen": "127.0.0.1.nip.invalid:2021"}, []string{`a non-loopback address needs control_token`}},
		{"template dot-dot after a substitution", flatstore.MapGetter{"path": dir + "/$TAG/../e.log", "mkdir": "true"}, []string{`".." after a substitution`}},
		{"template empty component", flatstore.MapGetter{"path": dir + "/$TAG//e.log", "mkdir": "true"}, []string{`"" after a substitution`}},
		{"path missing", flatstore.MapGetter{"path": ""}, []string{`path "": required`}},
		{"path flatstore: alone", flatstore.MapGetter{"path": "flatstore:"}, []string{`path "flatstore:": no socket specified`}},
		{"parent missing", flatstore.MapGetter{"path": dir + "/nope/e.log"}, []string{`path "` + dir + `/nope/e.log": invalid directory name: "` + dir + `/nope" does not exist (create it, or set mkdir true)`}},
		{"parent missing, flatstore:", flatstore.MapGetter{"path": "flatstore:" + dir + "/nope/e.log"}, []string{`path "flatstore:` + dir + `/nope/e.log": invalid directory name`}},
		{"parent a file", flatstore.MapGetter{"path": file + "/e.log"}, []string{`path "` + file + `/e.log"`, "not a directory"}},
		{"path is a directory", flatstore.MapGetter{"path": dir}, []string{`path "` + dir + `": path is a directory`}},
		{"path ends in /", flatstore.MapGetter{"path": dir + "/x/"}, []string{`path "` + dir + `/x/": is a directory`}},
		{"path NUL", flatstore.MapGetter{"path": dir + "/a\x00b"}, []string{`path "` + dir + `/a\x00b": must not contain a NUL byte`}},
		{"path LF in missing dir", flatstore.MapGetter{"path": dir + "/a\nb/e.log"}, []string{`path "` + dir + `/a\nb/e.log": invalid directory name: "` + dir + `/a\nb" does not exist`}},
		{"template dir needs mkdir", flatstore.MapGetter{"path": dir + "/$TAG/e.log"}, []string{`a template in a directory component needs mkdir true`}},
		{"template bad accessor", flatstore.MapGetter{"path": dir + "/$key[x].log"}, []string{`path "` + dir + `/$key[x].log": $key[: expected ['sub']`}},
		{"template unterminated", flatstore.MapGetter{"path": dir + "/$key['x.log"}, []string{`unterminated`}},
		{"setuid bits", flatstore.MapGetter{"file_permissions": "4777"}, []string{`file_permissions "4777": setuid, setgid and sticky bits are refused`}},
		{"classic empty delimiter", flatstore.MapGetter{"delimiter": `""`}, []string{`delimiter "\"\"": is two quote characters`}},
		{"template tag index", flatstore.MapGetter{"path": dir + "/$TAG[x].log"}, []string{`$TAG[x]: the index must be a number`}},
		{"template tag index open", flatstore.MapGetter{"path": dir + "/$TAG[1.log"}, []string{`$TAG[ without a closing ]`}},
		{"several problems joined", flatstore.MapGetter{"file_permissions": "64x", "max_open_sockets": "0", "escape": "x", "path": ""}, []string{
			`file_permissions "64x"`, `max_open_sockets "0"`, `escape "x"`, `path ""`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, set := c.kv["path"]; !set {
				c.kv["path"] = ok
			}
			cfg, err := flatstore.ParseConfig(c.kv)
			if err == nil {
				t.Fatalf("ParseConfig(%q) = %+v, want an error", c.kv, cfg)
			}
			if cfg != nil {
				t.Errorf("ParseConfig returned a config with the error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not hold %q", err, w)
				}
			}
			if strings.HasPrefix(c.name, "several") && strings.Count(err.Error(), "\n") != len(c.want)-1 {
				t.Errorf("error %q: want one problem per line", err)
			}
		})
	}
}

func TestConfigValid(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		kv    flatstore.MapGetter
		check func(*flatstore.Config) bool
	}{
		{"defaults", nil, func(c *flatstore.Config) bool {
			return c.Delimiter == "," && c.Escape == event.EscapeOpenSIPS && c.EventKey == "event" &&
				c.FilePerm == 0o644 && c.MaxOpenSockets == 100 && c.IdleTimeout == time.Minute &&
				c.ControlListen.String() == "127.0.0.1:2021" && c.ControlListenDefault && !c.SyncFlush && c.TimeFormat == event.TimeNone &&
				c.ReopenCheck == 5*time.Second
		}},
		// Through Fluent Bit an empty value arrives as no value: the default.
		{"empty is the default", flatstore.MapGetter{"file_permissions": "", "delimiter": "", "reopen_check": ""}, func(c *flatstore.Config) bool {
			return c.FilePerm == 0o644 && c.Delimiter == "," && c.ReopenCheck == 5*time.Second
		}},
		{"listen localhost", flatstore.MapGetter{"control_listen": "localhost:2021"}, func(c *flatstore.Config) bool { return c.ControlToken == "" }},
		{"listen 127.x literal", flatstore.MapGetter{"control_listen": "127.1.2.3:2021"}, func(c *flatstore.Config) bool { return c.ControlToken == "" }},
		{"reopen_check at the bound", flatstore.MapGetter{"reopen_check": "10s"}, func(c *flatstore.Config) bool { return c.ReopenCheck == 10*time.Second }},
		{"reopen_check off", flatstore.MapGetter{"reopen_check": "0"}, func(c *flatstore.Config) bool { return c.ReopenCheck == 0 }},
		{"perm 644", flatstore.MapGetter{"file_permissions": "644"}, func(c *flatstore.Config) bool { return c.FilePerm == 0o644 }},
		{"perm 0640", flatstore.MapGetter{"file_permissions": "0640"}, func(c *flatstore.Config) bool { return c.FilePerm == 0o640 }},
		{"perm 600", flatstore.MapGetter{"file_permissions": "600"}, func(c *flatstore.Config) bool { return c.FilePerm == 0o600 }},
		{"perm 664", flatstore.MapGetter{"file_permissions": "664"}, func(c *flatstore.Config) bool { return c.FilePerm == 0o664 }},
		{"sockets 1", flatstore.MapGetter{"max_open_sockets": "1"}, func(c *flatstore.Config) bool { return c.MaxOpenSockets == 1 }},
		{"sockets 65535", flatstore.MapGetter{"max_open_sockets": "65535"}, func(c *flatstore.Config) bool { return c.MaxOpenSockets == 65535 }},
		{"delimiter tab", flatstore.MapGetter{"delimiter": "tab"}, func(c *flatstore.Config) bool { return c.Delimiter == "\t" }},
		{"delimiter TAB", flatstore.MapGetter{"delimiter": "TAB"}, func(c *flatstore.Config) bool { return c.Delimiter == "\t" }},
		{`delimiter \t`, flatstore.MapGetter{"delimiter": `\t`}, func(c *flatstore.Config) bool { return c.Delimiter == "\t" }},
		{"delimiter space", flatstore.MapGetter{"delimiter": "space"}, func(c *flatstore.Config) bool { return c.Delimiter == " " }},
		{"delimiter comma", flatstore.MapGetter{"delimiter": "comma"}, func(c *flatstore.Config) bool { return c.Delimiter == "," }},
		{"delimiter semicolon", flatstore.MapGetter{"delimiter": "semicolon"}, func(c *flatstore.Config) bool { return c.Delimiter == ";" }},
		{"delimiter pipe", flatstore.MapGetter{"delimiter": "pipe"}, func(c *flatstore.Config) bool { return c.Delimiter == "|" }},
		{"delimiter ||", flatstore.MapGetter{"delimiter": "||"}, func(c *flatstore.Config) bool { return c.Delimiter == "||" }},
		{"escape upper case", flatstore.MapGetter{"escape": "CSV"}, func(c *flatstore.Config) bool { return c.Escape == event.EscapeCSV }},
		{"params trimmed", flatstore.MapGetter{"params": " a , b,c "}, func(c *flatstore.Config) bool {
			return strings.Join(c.Params, "|") == "a|b|c"
		}},
		{"durations", flatstore.MapGetter{"idle_timeout": "0", "reopen_check": "9", "rotate_period": "1h"}, func(c *flatstore.Config) bool {
			return c.IdleTimeout == 0 && c.ReopenCheck == 9*time.Second && c.RotatePeriod == time.Hour
		}},
		{"sizes", flatstore.MapGetter{"rotate_size": "10k"}, func(c *flatstore.Config) bool { return c.RotateSize == 10<<10 }},
		{"size mb", flatstore.MapGetter{"rotate_size": "3MB"}, func(c *flatstore.Config) bool { return c.RotateSize == 3<<20 }},
		{"size g", flatstore.MapGetter{"rotate_size": "1g"}, func(c *flatstore.Config) bool { return c.RotateSize == 1<<30 }},
		{"size plain", flatstore.MapGetter{"rotate_size": "1000"}, func(c *flatstore.Config) bool { return c.RotateSize == 1000 }},
		{"sync flush", flatstore.MapGetter{"sync": "flush"}, func(c *flatstore.Config) bool { return c.SyncFlush }},
		{"suffix", flatstore.MapGetter{"suffix": ".%Y%m%d-%H%M%S"}, func(c *flatstore.Config) bool { return c.Suffix == ".%Y%m%d-%H%M%S" }},
		{"listen off", flatstore.MapGetter{"control_listen": "off"}, func(c *flatstore.Config) bool { return c.ControlListen.String() == "off" && !c.ControlListenDefault }},
		{"listen public with token", flatstore.MapGetter{"control_listen": "0.0.0.0:2021", "control_token": "s3cret-s3cret-s3cret"}, func(c *flatstore.Config) bool {
			return c.ControlToken == "s3cret-s3cret-s3cret"
		}},
		{"listen unix", flatstore.MapGetter{"control_listen": "unix:/run/x.sock"}, func(c *flatstore.Config) bool { return c.ControlListen.String() == "unix:/run/x.sock" }},
		{"listen v6 loopback", flatstore.MapGetter{"control_listen": "[::1]:2021"}, func(c *flatstore.Config) bool { return true }},
		{"flatstore: prefix", flatstore.MapGetter{"path": "flatstore:" + dir + "/e.log"}, func(c *flatstore.Config) bool {
			return c.Path == dir+"/e.log" && c.RawPath == dir+"/e.log" && c.Template.Static()
		}},
		{"mkdir with missing parent", flatstore.MapGetter{"path": dir + "/a/b/e.log", "mkdir": "true"}, func(c *flatstore.Config) bool { return c.Mkdir }},
		{"template", flatstore.MapGetter{"path": dir + "/$TAG/$EVENT.log", "mkdir": "on"}, func(c *flatstore.Config) bool {
			return !c.Template.Static() && c.Template.StaticDir() == dir
		}},
		{"mixed-case key", flatstore.MapGetter{"Delimiter": ";"}, func(c *flatstore.Config) bool { return c.Delimiter == ";" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := flatstore.MapGetter{"path": filepath.Join(dir, "e.log")}
			for k, v := range c.kv {
				g[k] = v
			}
			cfg, err := flatstore.ParseConfig(g)
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", g, err)
			}
			if !c.check(cfg) {
				t.Errorf("ParseConfig(%q) = %+v", g, cfg)
			}
		})
	}
}

func TestConfigRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg, err := flatstore.ParseConfig(flatstore.MapGetter{"path": "flatstore:sub/../e.log"})
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "e.log"); cfg.Path != want {
		t.Errorf("Path = %q, want %q", cfg.Path, want)
	}
	if cfg.RawPath != "sub/../e.log" {
		t.Errorf("RawPath = %q", cfg.RawPath)
	}
}

func TestKnownKeys(t *testing.T) {
	keys := flatstore.KnownKeys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("key %q listed twice", k)
		}
		seen[k] = true
	}
	for _, k := range []string{"path", "delimiter", "escape", "escape_delimiter", "params", "event_key", "file_permissions", "max_open_sockets", "control_listen"} {
		if !seen[k] {
			t.Errorf("KnownKeys lacks %q", k)
		}
	}
	// Keys Fluent Bit keeps for itself never reach a plugin: none may be used.
	for _, k := range []string{"host", "port", "workers", "match", "alias", "log_level", "retry_limit"} {
		if seen[k] {
			t.Errorf("KnownKeys uses Fluent Bit's own key %q", k)
		}
	}
}

// TestListenLocalhostIsLoopback: localhost is loopback whatever the
// resolver says, so it needs no control_token.
func TestListenLocalhostIsLoopback(t *testing.T) {
	for _, v := range []string{"localhost:2021", "LOCALHOST:2021"} {
		if !flatstore.ParseListen(v).IsLocal() {
			t.Errorf("%s is not taken for loopback", v)
		}
	}
	if flatstore.ParseListen("0.0.0.0:2021").IsLocal() {
		t.Error("0.0.0.0 taken for loopback")
	}
}
