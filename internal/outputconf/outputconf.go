// Package outputconf finds one output plugin's settings in a Fluent Bit
// configuration, classic (through package fbconf) or YAML, so that a tool
// reading what the plugin wrote uses the very settings the plugin was given.
//
// The format is chosen as Fluent Bit chooses it: by the file's extension
// (.yaml or .yml is YAML, anything else classic). Values come with ${VAR}
// expanded as the engine expands them: classic by fbconf (@SET, then the
// environment); YAML from the env section (which the environment cannot
// override), then the environment, by the same fbconf.Expand.
//
// YAML as Fluent Bit v5.1 reads it (src/config_format/flb_cf_yaml.c):
// pipeline.outputs is a list of maps; a scalar is the text written (0640
// stays "0640", true stays "true"), trimmed; a key is trimmed and, written
// in camelCase (timeFormat), turned into snake_case (time_format);
// includes lists files read where the list stands, so their outputs count
// from there (a relative path is looked up beside the including file, then
// in the working directory; a '*' is a glob beside it; no ${VAR}); env is a
// map, or a list of {name, value}.
package outputconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbconf"
	"go.yaml.in/yaml/v3"
)

// Prop is one key of an output.
type Prop struct {
	Key   string // lower-cased, as the engine keys it
	Value string // with ${VAR} expanded
	Raw   string // as written
	// Scalar is false for a YAML list or map (Value and Raw are then "").
	Scalar bool
	Line   int
}

// Output is one output of the plugin.
type Output struct {
	// Name is the engine's instance name: the plugin's name and the
	// output's position among that plugin's outputs ("flatstore.0").
	Name  string
	Alias string // "" when none
	Path  string // the path key, expanded ("" when none)
	File  string // the file that holds it
	Line  int    // where it starts
	Props []Prop
	// Unset lists the ${VAR} names its values use that are neither set by
	// the configuration nor in the environment (each expanded to "").
	Unset []string
}

// Get returns the value of key (case-insensitive) and whether the output
// sets it; a repeated key gives its first value, as the engine's lookup.
func (o *Output) Get(key string) (string, bool) {
	for _, p := range o.Props {
		if strings.EqualFold(p.Key, key) {
			return p.Value, true
		}
	}
	return "", false
}

// Describe names the output for a person: "flatstore.1 (alias sip_events,
// path /var/log/e.log, fluent-bit.conf:12)".
func (o *Output) Describe() string {
	var parts []string
	if o.Alias != "" {
		parts = append(parts, "alias "+o.Alias)
	}
	if o.Path != "" {
		parts = append(parts, "path "+o.Path)
	}
	parts = append(parts, o.File+":"+strconv.Itoa(o.Line))
	return o.Name + " (" + strings.Join(parts, ", ") + ")"
}

// Load returns the outputs of plugin (matched case-insensitively on their
// name key) in the configuration at path, in the order the engine creates
// them. env looks a variable up (os.LookupEnv when nil).
func Load(path, plugin string, env func(string) (string, bool)) ([]Output, error) {
	if env == nil {
		env = os.LookupEnv
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return loadYAML(path, plugin, env)
	}
	c, err := fbconf.LoadClassic(path, env)
	if err != nil {
		return nil, err
	}
	var outs []Output
	for i, s := range c.Outputs(plugin) {
		o := Output{File: s.File, Line: s.Line}
		for _, p := range s.Props {
			o.Props = append(o.Props, Prop{Key: p.Key, Value: p.Value, Raw: p.Raw, Scalar: true, Line: p.Line})
		}
		o.Unset = s.Unset
		outs = append(outs, o.named(plugin, i))
	}
	return outs, nil
}

// named fills Name, Alias and Path.
func (o Output) named(plugin string, i int) Output {
	o.Name = strings.ToLower(plugin) + "." + strconv.Itoa(i)
	o.Alias, _ = o.Get("alias")
	o.Path, _ = o.Get("path")
	return o
}

// Select returns the one output that name designates: its alias, its
// instance name (plugin.N), or its path (with or without a "flatstore:"
// style prefix, as written or cleaned). With name "" and a single output,
// that one. The error lists the outputs there are.
func Select(outs []Output, name string) (*Output, error) {
	if len(outs) == 0 {
		return nil, errors.New("the configuration has no such output")
	}
	if name == "" {
		if len(outs) == 1 {
			return &outs[0], nil
		}
		return nil, fmt.Errorf("it has %d of them, name one with -output: %s", len(outs), list(outs))
	}
	var found []int
	for i := range outs {
		if matches(&outs[i], name) {
			found = append(found, i)
		}
	}
	switch len(found) {
	case 1:
		return &outs[found[0]], nil
	case 0:
		return nil, fmt.Errorf("no output has the alias, name or path %q; there are: %s", name, list(outs))
	}
	var amb []Output
	for _, i := range found {
		amb = append(amb, outs[i])
	}
	return nil, fmt.Errorf("%q names %d outputs: %s; name one by its instance name", name, len(found), list(amb))
}

func matches(o *Output, name string) bool {
	if name == o.Name || (o.Alias != "" && name == o.Alias) {
		return true
	}
	if o.Path == "" {
		return false
	}
	strip := func(p string) string {
		return filepath.Clean(flatstore.TrimPathPrefix(p))
	}
	return name == o.Path || strip(name) == strip(o.Path)
}

func list(outs []Output) string {
	var s []string
	for i := range outs {
		s = append(s, outs[i].Describe())
	}
	return strings.Join(s, "; ")
}

// maxYAMLFiles bounds includes (a cycle is also refused by name).
const maxYAMLFiles = 1000

type yamlReader struct {
	files []os.FileInfo
	outs  []Output
	vars  map[string]string
}

func loadYAML(path, plugin string, env func(string) (string, bool)) ([]Output, error) {
	r := &yamlReader{vars: map[string]string{}}
	if err := r.file(path); err != nil {
		return nil, err
	}
	lookup := func(name string) (string, bool) {
		if v, ok := r.vars[name]; ok {
			return v, true
		}
		return fbconf.Getenv(env, name)
	}
	var outs []Output
	for _, o := range r.outs {
		var unset fbconf.Unset
		for j := range o.Props {
			if o.Props[j].Scalar {
				o.Props[j].Value = fbconf.ExpandReport(o.Props[j].Raw, lookup, unset.Add)
			}
		}
		// The name is expanded like any value before it picks the plugin.
		if name, _ := o.Get("name"); !strings.EqualFold(name, plugin) {
			continue
		}
		o.Unset = unset.Names()
		outs = append(outs, o.named(plugin, len(outs)))
	}
	return outs, nil
}

func (r *yamlReader) file(path string) error {
	if len(r.files) >= maxYAMLFiles {
		return fmt.Errorf("%s: more than %d configuration files (an include cycle?)", path, maxYAMLFiles)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	for _, s := range r.files {
		if os.SameFile(s, st) {
			return fmt.Errorf("%s: included twice", path)
		}
	}
	r.files = append(r.files, st)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if doc.Kind == 0 { // an empty file
		return nil
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the configuration must be a map of sections", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := deref(root.Content[i]), deref(root.Content[i+1])
		var err error
		switch strings.ToLower(k.Value) {
		case "env":
			err = r.env(path, v)
		case "includes":
			err = r.includes(path, v)
		case "pipeline":
			err = r.pipeline(path, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func (r *yamlReader) env(path string, v *yaml.Node) error {
	switch v.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			if val := deref(v.Content[i+1]); val.Kind == yaml.ScalarNode {
				r.vars[deref(v.Content[i]).Value] = val.Value
			}
		}
	case yaml.SequenceNode:
		// The list form: {name, value} (an entry with uri instead of value
		// is a secret read from elsewhere; it is left to the environment).
		for _, e := range v.Content {
			e = deref(e)
			if e.Kind != yaml.MappingNode {
				return fmt.Errorf("%s:%d: an env list entry must be a map with name and value", path, e.Line)
			}
			name, value, has := "", "", false
			for i := 0; i+1 < len(e.Content); i += 2 {
				switch k, val := deref(e.Content[i]).Value, deref(e.Content[i+1]); k {
				case "name":
					name = val.Value
				case "value":
					value, has = val.Value, true
				}
			}
			if name != "" && has {
				r.vars[name] = value
			}
		}
	case yaml.ScalarNode:
		if v.Value != "" && v.Tag != "!!null" {
			return fmt.Errorf("%s:%d: env must be a map or a list", path, v.Line)
		}
	}
	return nil
}

func (r *yamlReader) includes(path string, v *yaml.Node) error {
	var names []*yaml.Node
	switch v.Kind {
	case yaml.SequenceNode:
		names = v.Content
	case yaml.ScalarNode:
		names = []*yaml.Node{v}
	}
	for _, n := range names {
		n = deref(n)
		if n.Kind != yaml.ScalarNode || n.Value == "" {
			return fmt.Errorf("%s:%d: an include must be a file name", path, n.Line)
		}
		p := n.Value
		if strings.Contains(p, "*") {
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			files, err := filepath.Glob(p)
			if err != nil || len(files) == 0 {
				return fmt.Errorf("%s:%d: include %q matches no file", path, n.Line, n.Value)
			}
			sort.Strings(files)
			for _, f := range files {
				if err := r.file(f); err != nil {
					return err
				}
			}
			continue
		}
		if !filepath.IsAbs(p) {
			beside := filepath.Join(filepath.Dir(path), p)
			if _, err := os.Stat(beside); err == nil {
				p = beside
			}
		}
		if err := r.file(p); err != nil {
			return fmt.Errorf("%s:%d: include: %v", path, n.Line, err)
		}
	}
	return nil
}

// yamlKey is a YAML key as the engine keys it (flb_cf_key_translate),
// lower-cased as its case-insensitive lookup sees it: trimmed; a key that
// starts with a lower-case letter and holds no '_' is camelCase, and each
// upper-case letter after the first byte starts a new snake_case word.
func yamlKey(k string) string {
	k = strings.TrimSpace(k)
	if k == "" || k[0] < 'a' || k[0] > 'z' || strings.Contains(k, "_") {
		return strings.ToLower(k)
	}
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (r *yamlReader) pipeline(path string, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		if !strings.EqualFold(deref(v.Content[i]).Value, "outputs") {
			continue
		}
		list := deref(v.Content[i+1])
		if list.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s:%d: pipeline.outputs must be a list", path, list.Line)
		}
		for _, e := range list.Content {
			e = deref(e)
			if e.Kind != yaml.MappingNode {
				return fmt.Errorf("%s:%d: an output must be a map of keys", path, e.Line)
			}
			o := Output{File: path, Line: e.Line}
			for j := 0; j+1 < len(e.Content); j += 2 {
				k, val := deref(e.Content[j]), deref(e.Content[j+1])
				p := Prop{Key: yamlKey(k.Value), Line: k.Line, Scalar: val.Kind == yaml.ScalarNode}
				if p.Scalar {
					p.Raw = strings.TrimSpace(val.Value)
				}
				o.Props = append(o.Props, p)
			}
			r.outs = append(r.outs, o)
		}
	}
	return nil
}
