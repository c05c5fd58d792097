// Package conf holds the Fluent Bit configurations that ship with flatstore
// (fluent-bit.conf, fluent-bit.yaml, plugins.conf, parsers.conf, app.yaml)
// and a reader for Fluent Bit's classic format, enough for the demo driver
// and the tests to find the flatstore outputs and check them.
//
// The reader follows Fluent Bit's own rules where they matter for these
// files: sections in brackets, one "Key value" per line (the first space
// separates them), one indentation per file, '#' comments, @INCLUDE (globs
// allowed), @SET and ${VAR} (from @SET first, then the environment; an
// unknown variable becomes "", as in Fluent Bit). Groups (indented
// [sub-sections]) are not supported: flatstore's files have none.
package conf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Prop is one key and its value, as written (after ${VAR} expansion).
type Prop struct {
	Key   string
	Value string
	Line  int
}

// Section is one [NAME] section of a classic file.
type Section struct {
	Name  string // as written, e.g. "OUTPUT"
	File  string
	Line  int
	Props []Prop
}

// Get returns the value of key (case-insensitive; the last one wins, as a
// repeated key replaces the earlier one) and whether the section has it.
func (s *Section) Get(key string) (string, bool) {
	for i := len(s.Props) - 1; i >= 0; i-- {
		if strings.EqualFold(s.Props[i].Key, key) {
			return s.Props[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of key, or "".
func (s *Section) Value(key string) string {
	v, _ := s.Get(key)
	return v
}

// Map returns the section's keys, lower-cased, with their values.
func (s *Section) Map() map[string]string {
	m := make(map[string]string, len(s.Props))
	for _, p := range s.Props {
		m[strings.ToLower(p.Key)] = p.Value
	}
	return m
}

// Classic is a parsed classic configuration with its includes.
type Classic struct {
	Sections []Section
	// Files lists every file read, the top one first.
	Files []string
	// Vars holds the @SET variables.
	Vars map[string]string
	// Unset lists the ${VAR} names that were neither @SET nor in the
	// environment (each expanded to "").
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

// LoadClassic reads a classic file and its includes. env looks a variable
// up (os.LookupEnv when nil).
func LoadClassic(path string, env func(string) (string, bool)) (*Classic, error) {
	if env == nil {
		env = os.LookupEnv
	}
	r := &reader{c: &Classic{Vars: map[string]string{}}, env: env, unset: map[string]bool{}}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	r.root = filepath.Dir(abs)
	if err := r.file(abs, 0); err != nil {
		return nil, err
	}
	for v := range r.unset {
		r.c.Unset = append(r.c.Unset, v)
	}
	sort.Strings(r.c.Unset)
	return r.c, nil
}

type reader struct {
	c     *Classic
	env   func(string) (string, bool)
	root  string
	unset map[string]bool
	cur   *Section
}

func (r *reader) file(path string, depth int) error {
	if depth > 16 {
		return fmt.Errorf("%s: @INCLUDE nested too deep", path)
	}
	for _, f := range r.c.Files {
		if f == path {
			return fmt.Errorf("%s: included twice", path)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r.c.Files = append(r.c.Files, path)
	r.cur = nil // a section never spans files
	indent := ""
	haveIndent := false
	for n, line := range strings.Split(string(data), "\n") {
		lineNo := n + 1
		line = strings.TrimSuffix(line, "\r")
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, lineNo, fmt.Sprintf(format, a...))
		}
		if strings.TrimSpace(line) == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "@") {
			directive, arg, _ := strings.Cut(line, " ")
			arg = strings.TrimSpace(arg)
			switch strings.ToUpper(directive) {
			case "@INCLUDE":
				if err := r.include(path, arg, depth); err != nil {
					return bad("%v", err)
				}
			case "@SET":
				k, v, ok := strings.Cut(arg, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return bad("@SET needs KEY=VALUE")
				}
				r.c.Vars[strings.TrimSpace(k)] = r.expand(strings.TrimSpace(v))
			default:
				return bad("unknown directive %s", directive)
			}
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return bad("bad section header %q", line)
			}
			r.c.Sections = append(r.c.Sections, Section{
				Name: strings.TrimSpace(line[1:end]), File: path, Line: lineNo,
			})
			r.cur = &r.c.Sections[len(r.c.Sections)-1]
			continue
		}
		// A key line: Fluent Bit takes the first one's leading blanks as
		// the file's indentation and wants every key line to use it.
		body := strings.TrimLeft(line, " \t")
		lead := line[:len(line)-len(body)]
		if !haveIndent {
			indent, haveIndent = lead, true
		}
		if lead != indent {
			return bad("indentation %q differs from this file's %q", lead, indent)
		}
		if body[0] == '#' {
			continue
		}
		if r.cur == nil {
			return bad("key outside of a section: %q", body)
		}
		// Fluent Bit splits at the first space (a tab does not separate).
		k, v, _ := strings.Cut(body, " ")
		v = strings.TrimSpace(v)
		if v == "" || strings.ContainsAny(k, "\t") {
			return bad("key %q has no value (key and value are separated by a space)", k)
		}
		if strings.HasPrefix(k, "[") {
			return bad("groups are not supported: %q", body)
		}
		r.cur.Props = append(r.cur.Props, Prop{Key: k, Value: r.expand(v), Line: lineNo})
	}
	r.cur = nil
	return nil
}

func (r *reader) include(from, pattern string, depth int) error {
	if pattern == "" {
		return errors.New("@INCLUDE needs a file")
	}
	p := r.expand(pattern)
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.root, p)
	}
	files := []string{p}
	if strings.ContainsAny(p, "*?[") {
		m, err := filepath.Glob(p)
		if err != nil {
			return fmt.Errorf("@INCLUDE %s: %v", pattern, err)
		}
		sort.Strings(m)
		files = m
	}
	for _, f := range files {
		if err := r.file(f, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// expand replaces every ${VAR}.
func (r *reader) expand(s string) string {
	return Expand(s, func(name string) (string, bool) {
		if v, ok := r.c.Vars[name]; ok {
			return v, true
		}
		v, ok := r.env(name)
		if !ok {
			r.unset[name] = true
		}
		return v, ok
	})
}

// Expand replaces every ${VAR} in s with lookup(VAR), or "" when lookup
// finds nothing, as Fluent Bit does. A "$" not followed by "{" is kept, so
// flatstore's $TAG and $EVENT pass through.
func Expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		v, _ := lookup(s[i+2 : i+j])
		b.WriteString(v)
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}
