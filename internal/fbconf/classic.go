// Package fbconf reads Fluent Bit's classic configuration format by the rules
// of Fluent Bit v5.1.1 (src/config_format/flb_cf_fluentbit.c, with the ${VAR}
// expansion of src/flb_env.c), and turns its [OUTPUT] sections into arguments
// for the project's test host.
//
// The rules, as the engine applies them:
//   - A line is a section header ("[NAME]", text after the first ']' ignored),
//     a "Key value" line, a comment ('#' in the first column, or after the
//     indentation), "@INCLUDE file", or another "@NAME args" directive (only
//     @SET does anything; others are ignored, a directive without arguments is
//     an error). Blank lines are skipped.
//   - Indentation: the first indented line of a file sets that file's
//     indentation (every blank character up to the text); every key line must
//     start with exactly it ("inconsistent use of tab and space", "indentation
//     level is too low", "extra indentation level found"), or with it twice
//     for the content of a group ("[group]" as an indented key).
//   - A key ends at the first space (a tab does not separate); the key is
//     lower-cased, key and value are trimmed; a repeated key is kept twice.
//   - @INCLUDE: a path with '*' is a glob under the main file's directory
//     (no match is an error); another path is looked up as given, then under
//     the main file's directory. A file read twice is an error. Keys after an
//     @INCLUDE still belong to the section the including file was in.
//   - @SET KEY=VALUE defines ${KEY} for every value of the configuration,
//     whatever its position (the engine runs the directives before it sets
//     any property); ${VAR} is expanded when a property is set: from @SET,
//     then the environment (an empty variable is unset), ${VAR:-default}
//     supported, an unset one expands to "".
//
// One difference: the engine reads a glob's files in directory order, which
// the file system decides; this reader reads them sorted.
package fbconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Prop is one key and its value.
type Prop struct {
	Key   string // lower-cased, as the engine keys it
	Value string // with ${VAR} expanded, as the plugin sees it
	Raw   string // as written (trimmed), as the engine hands it to a plugin's set_property
	File  string
	Line  int
}

// Group is an indented [name] block inside a section.
type Group struct {
	Name  string
	Props []Prop
}

// Section is one [NAME] section.
type Section struct {
	Name   string // as written, e.g. "OUTPUT"
	File   string
	Line   int
	Props  []Prop
	Groups []Group
	// Unset names the variables its values use that are set nowhere (no
	// @SET, not in the environment, no default), sorted.
	Unset []string
}

// Get returns the value of key (case-insensitive) and whether the section
// has it. As the engine's property lookup, a repeated key gives its first
// value.
func (s *Section) Get(key string) (string, bool) {
	for _, p := range s.Props {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// Value returns the value of key, or "".
func (s *Section) Value(key string) string {
	v, _ := s.Get(key)
	return v
}

// Map returns the section's keys with their values (the first of a repeated
// key).
func (s *Section) Map() map[string]string {
	m := make(map[string]string, len(s.Props))
	for i := len(s.Props) - 1; i >= 0; i-- {
		m[s.Props[i].Key] = s.Props[i].Value
	}
	return m
}

// Var is one @SET.
type Var struct {
	Key, Value string
}

// Classic is a parsed classic configuration with its includes.
type Classic struct {
	Sections []Section
	// Files lists every file read, the top one first.
	Files []string
	// Vars holds the @SET variables in the order set.
	Vars []Var
	// Unset lists the ${VAR} names used but neither @SET nor in the
	// environment (each expanded to "", and a warning from the engine).
	Unset []string
}

// Find returns the sections called name (case-insensitive), in file order.
func (c *Classic) Find(name string) []*Section {
	var out []*Section
	for i := range c.Sections {
		if strings.EqualFold(c.Sections[i].Name, name) {
			out = append(out, &c.Sections[i])
		}
	}
	return out
}

// Outputs returns the [OUTPUT] sections whose Name is plugin, in the order
// Fluent Bit creates their instances.
func (c *Classic) Outputs(plugin string) []*Section {
	var out []*Section
	for _, s := range c.Find("OUTPUT") {
		if strings.EqualFold(s.Value("name"), plugin) {
			out = append(out, s)
		}
	}
	return out
}

// HostArgs returns the test host's arguments for the [OUTPUT] sections whose
// Name is plugin: a -set for each @SET, then for each section its properties
// as written (-p key=value, the engine's own keys included: the host takes
// them as the engine does), sections separated by -next. The host expands
// ${VAR} itself, from the -set variables and its environment, so run it with
// the environment the configuration was loaded with.
func (c *Classic) HostArgs(plugin string) []string {
	var args []string
	for _, v := range c.Vars {
		args = append(args, "-set", v.Key+"="+v.Value)
	}
	for i, s := range c.Outputs(plugin) {
		if i > 0 {
			args = append(args, "-next")
		}
		for _, p := range s.Props {
			if p.Key == "name" { // it chose the plugin
				continue
			}
			args = append(args, "-p", p.Key+"="+p.Raw)
		}
	}
	return args
}

// ConfigError is a line the engine refuses, with the engine's message.
type ConfigError struct {
	File   string
	Line   int
	Msg    string // the engine's config_error text
	Detail string // what the engine logged before it, if anything
}

func (e *ConfigError) Error() string {
	s := fmt.Sprintf("[config] error in %s:%d: %s", e.File, e.Line, e.Msg)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// LoadClassic reads a classic file and its includes. env looks a variable up
// (os.LookupEnv when nil).
func LoadClassic(path string, env func(string) (string, bool)) (*Classic, error) {
	if env == nil {
		env = os.LookupEnv
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	r := &reader{c: &Classic{}, root: filepath.Dir(real)}
	if err := r.file(path); err != nil {
		return nil, err
	}
	r.expandAll(env)
	return r.c, nil
}

type reader struct {
	c       *Classic
	root    string
	seen    []os.FileInfo // every file read: one read twice (an include loop) is an error
	service int           // index of the [SERVICE] section + 1, 0: none yet
}

func (r *reader) file(path string) error {
	if len(r.seen) >= 1000 {
		return fmt.Errorf("[config] too many config files (limit 1000)")
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && !filepath.IsAbs(path) {
		path = filepath.Join(r.root, path)
		st, err = os.Stat(path)
	}
	if err != nil {
		return err
	}
	for _, s := range r.seen {
		if os.SameFile(s, st) {
			return fmt.Errorf("[config] Read twice. path=%s", path)
		}
	}
	r.seen = append(r.seen, st)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("[config] I cannot open %s file", path)
	}
	r.c.Files = append(r.c.Files, path)

	var (
		indent  string
		haveInd bool
		section = -1 // this file's current section (an index), as the engine's local
		group   = -1
		nKeys   = 0
	)
	lines := strings.Split(string(data), "\n")
	for n, line := range lines {
		if n == len(lines)-1 {
			if line == "" {
				break // the file ended with a newline
			}
		} else {
			line = strings.TrimSuffix(line, "\r")
		}
		lineNo := n + 1
		bad := func(msg, detail string) error {
			return &ConfigError{File: path, Line: lineNo, Msg: msg, Detail: detail}
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if len(line) > 9 && strings.EqualFold(line[:9], "@INCLUDE ") {
			if err := r.include(line[9:]); err != nil {
				return err
			}
			continue
		}
		if line[0] == '@' && len(line) > 3 {
			sp := strings.IndexByte(line, ' ')
			if sp < 0 {
				return bad("a directive needs an argument", line)
			}
			name := strings.TrimSpace(line[1:sp])
			if strings.EqualFold(name, "SET") {
				arg := strings.TrimSpace(line[sp+1:])
				k, v, ok := strings.Cut(arg, "=")
				if ok {
					r.c.Vars = append(r.c.Vars, Var{Key: k, Value: v})
				} // else the engine prints "[meta SET] invalid parameter" and goes on
			}
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end <= 0 {
				return bad("bad header definition", "")
			}
			name := line[1:end]
			if strings.EqualFold(name, "SERVICE") && r.service > 0 {
				section = r.service - 1
			} else {
				r.c.Sections = append(r.c.Sections, Section{Name: name, File: path, Line: lineNo})
				section = len(r.c.Sections) - 1
				if strings.EqualFold(name, "SERVICE") {
					r.service = section + 1
				}
			}
			group, nKeys = -1, 0
			continue
		}
		if !haveInd {
			i := 1
			for i < len(line) && isBlank(line[i]) {
				i++
			}
			indent, haveInd = line[:i], true
			if i == len(line) {
				continue
			}
		}
		level, inGroup, detail := checkIndent(line, indent)
		if detail != "" {
			return bad("invalid indentation level", detail)
		}
		if !inGroup {
			group = -1
		}
		if level == len(line) || line[level] == '#' {
			continue
		}
		body := line[level:]
		sp := strings.IndexByte(body, ' ')
		if sp < 0 {
			return bad("undefined value - check config is in valid classic format", "")
		}
		key := body[:sp]
		if key[0] == '[' {
			end := strings.IndexByte(body, ']')
			if end < 0 {
				return bad("expected a valid group name: [..]", "")
			}
			if section < 0 {
				return bad("current group don't have a parent section", "")
			}
			if group >= 0 && nKeys == 0 {
				return bad("previous group did not have keys", "")
			}
			s := &r.c.Sections[section]
			s.Groups = append(s.Groups, Group{Name: body[1:end]})
			group, nKeys = len(s.Groups)-1, 0
			continue
		}
		val := body[sp+1:]
		if val == "" {
			return bad("key has an empty value", "")
		}
		if section < 0 {
			return bad("could not allocate key value pair", "")
		}
		p := Prop{Key: strings.ToLower(strings.TrimSpace(key)), Raw: strings.TrimSpace(val),
			File: path, Line: lineNo}
		s := &r.c.Sections[section]
		if group >= 0 {
			s.Groups[group].Props = append(s.Groups[group].Props, p)
		} else {
			s.Props = append(s.Props, p)
		}
		nKeys++
	}
	return nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// checkIndent is the engine's check_indent: the position where the key
// starts, whether the line is a group's content, or what is wrong.
func checkIndent(line, indent string) (level int, group bool, problem string) {
	for level < len(indent) && level < len(line) && line[level] == indent[level] {
		level++
	}
	if level < len(indent) {
		if level < len(line) && isBlank(line[level]) {
			return 0, false, "inconsistent use of tab and space"
		}
		return 0, false, "indentation level is too low"
	}
	if level < len(line) && isBlank(line[level]) {
		extra := 0
		for level+extra < len(line) && isBlank(line[level+extra]) {
			extra++
		}
		if extra == level {
			return level + extra, true, ""
		}
		return 0, false, "extra indentation level found"
	}
	return level, false, ""
}

func (r *reader) include(pattern string) error {
	if !strings.Contains(pattern, "*") {
		return r.file(pattern)
	}
	p := pattern
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.root, p)
	}
	files, err := filepath.Glob(p)
	if err != nil {
		return fmt.Errorf("[read_glob] glob: [%s] other error", p)
	}
	if len(files) == 0 {
		return fmt.Errorf("[read_glob] glob: [%s] no match", p)
	}
	sort.Strings(files)
	for _, f := range files {
		if err := r.file(f); err != nil {
			return err
		}
	}
	return nil
}

// expandAll fills every Value from its Raw, once every @SET is known.
func (r *reader) expandAll(env func(string) (string, bool)) {
	unset := map[string]bool{}
	lookup := func(name string) (string, bool) {
		for i := len(r.c.Vars) - 1; i >= 0; i-- {
			if r.c.Vars[i].Key == name {
				return r.c.Vars[i].Value, true
			}
		}
		return Getenv(env, name)
	}
	for i := range r.c.Sections {
		s := &r.c.Sections[i]
		var mine Unset
		expand := func(v string) string {
			return ExpandReport(v, lookup, func(name string) { mine.Add(name); unset[name] = true })
		}
		for j := range s.Props {
			s.Props[j].Value = expand(s.Props[j].Raw)
		}
		for g := range s.Groups {
			for j := range s.Groups[g].Props {
				s.Groups[g].Props[j].Value = expand(s.Groups[g].Props[j].Raw)
			}
		}
		s.Unset = mine.Names()
	}
	for v := range unset {
		r.c.Unset = append(r.c.Unset, v)
	}
	sort.Strings(r.c.Unset)
}

// Getenv looks name up in env as the engine reads the environment: an
// empty variable is an unset one.
func Getenv(env func(string) (string, bool), name string) (string, bool) {
	v, ok := env(name)
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

// Unset gathers the names of variables found unset, each once.
type Unset struct{ names []string }

// Add records name.
func (u *Unset) Add(name string) {
	if !slices.Contains(u.names, name) {
		u.names = append(u.names, name)
	}
}

// Names returns the names recorded, sorted (nil for none).
func (u *Unset) Names() []string {
	sort.Strings(u.names)
	return u.names
}

// Expand replaces every ${VAR} and ${VAR:-default} in s as the engine's
// flb_env_var_translate does, looking VAR up with lookup (not found: "").
// A "$" not followed by "{" is kept, so flatstore's $TAG and $EVENT pass
// through. The engine's corners are kept: the closing brace is the first '}'
// after the position reached; text between variables is kept only when a
// variable follows it; a "${" without '}' drops the rest of the value.
func Expand(s string, lookup func(string) (string, bool)) string {
	return ExpandReport(s, lookup, func(string) {})
}

// ExpandReport is Expand, calling unset with the name of every variable
// lookup did not find and no default stood in for.
func ExpandReport(s string, lookup func(string) (string, bool), unset func(string)) string {
	return expand(s, lookup, unset)
}

func expand(value string, lookup func(string) (string, bool), unset func(string)) string {
	var b strings.Builder
	haveVar := false
	vEnd := -1 // index of the last closing brace taken, -1: none
	for i := 0; i < len(value); i++ {
		start := strings.Index(value[i:], "${")
		if start < 0 {
			break
		}
		start += i
		end := strings.IndexByte(value[i:], '}')
		if end < 0 {
			vEnd = -1
			break
		}
		end += i
		vEnd = end
		vLen := end - (start + 2)
		if vLen <= 0 || vLen >= 4096 {
			break
		}
		name := value[start+2 : end]
		haveVar = true
		def, hasDef := "", false
		if c := strings.IndexByte(name, ':'); c >= 0 && c+1 < len(name) && name[c+1] == '-' {
			def, hasDef = name[c+2:], true
			name = name[:c]
		}
		if start > i {
			b.WriteString(value[i:start])
		}
		got, ok := lookup(name)
		switch {
		case ok && !(hasDef && got == ""):
			b.WriteString(got)
		case hasDef:
			b.WriteString(def)
		default:
			unset(name)
		}
		i = end
	}
	if vEnd >= 0 && haveVar && vEnd+1 < len(value) {
		b.WriteString(value[vEnd+1:])
	}
	if b.Len() == 0 && !haveVar {
		return value
	}
	return b.String()
}
