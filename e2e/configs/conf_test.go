package configs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/internal/fbconf"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/repo"
)

// TestMain runs the tests in conf/, where the configurations name each other by
// relative paths (Parsers_File) as Fluent Bit reads them.
func TestMain(m *testing.M) {
	root, err := repo.Root()
	if err == nil {
		err = os.Chdir(filepath.Join(root, "conf"))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "configs:", err)
		os.Exit(1)
	}
	fbtest.Main(m)
}

// The socket through which logrotate reaches the plugin in the container.
const controlSocket = "/run/flatstore/control.sock"

// reservedKey reports whether Fluent Bit keeps key for itself: such keys
// never reach a plugin (docs/delivery.md).
func reservedKey(k string) bool {
	k = strings.ToLower(k)
	switch k {
	case "name", "match", "match_regex", "alias", "log_level", "log_suppress_interval",
		"retry_limit", "workers", "host", "port", "ipv6":
		return true
	}
	return strings.HasPrefix(k, "tls") || strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "storage.")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// --- YAML helpers ------------------------------------------------------------------------

func loadYAML(t *testing.T, path string) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: not a YAML mapping", path)
	}
	return doc.Content[0]
}

// child returns the value of key in a mapping node, or nil.
func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalars returns a mapping's scalar values as written (0640 stays "0640"),
// keys lower-cased, in order.
func scalars(t *testing.T, n *yaml.Node) []fbconf.Prop {
	t.Helper()
	var out []fbconf.Prop
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			t.Errorf("line %d: %s: want a scalar", k.Line, k.Value)
			continue
		}
		out = append(out, fbconf.Prop{Key: strings.ToLower(k.Value), Value: v.Value, Line: k.Line})
	}
	return out
}

// yamlSections returns pipeline.<kind> (inputs or outputs) as sections with
// ${VAR} expanded.
func yamlSections(t *testing.T, root *yaml.Node, kind string, env func(string) (string, bool)) []fbconf.Section {
	t.Helper()
	list := child(child(root, "pipeline"), kind)
	if list == nil || list.Kind != yaml.SequenceNode {
		t.Fatalf("pipeline.%s is not a list", kind)
	}
	var out []fbconf.Section
	for _, item := range list.Content {
		s := fbconf.Section{Name: kind, Line: item.Line}
		for _, p := range scalars(t, item) {
			p.Value = fbconf.Expand(p.Value, env)
			s.Props = append(s.Props, p)
		}
		out = append(out, s)
	}
	return out
}

func flatstoreOnly(ss []fbconf.Section) []fbconf.Section {
	var out []fbconf.Section
	for _, s := range ss {
		if strings.EqualFold(s.Value("name"), "flatstore") {
			out = append(out, s)
		}
	}
	return out
}

// --- the configurations ------------------------------------------------------------------

// twins are the classic configurations and their YAML twins: each pair must
// describe one pipeline.
var twins = []struct{ classic, yaml string }{
	{"fluent-bit.conf", "fluent-bit.yaml"},
	{"opensips-sidecar.conf", "opensips-sidecar.yaml"},
}

// envFor returns the variables the configurations read, as the demo sets
// them, under dir.
func envFor(dir string) map[string]string {
	return map[string]string{
		"FLATSTORE_OUT":            filepath.Join(dir, "out"),
		"FLATSTORE_CONTROL":        "unix:" + filepath.Join(dir, "control.sock"),
		"FLATSTORE_DEMO_IN":        filepath.Join(dir, "events.jsonl"),
		"FLATSTORE_EXIT_ON_EOF":    "on",
		"FLATSTORE_FORWARD_LISTEN": "127.0.0.1",
	}
}

func lookupIn(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestEveryFileParses(t *testing.T) {
	files, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	env := lookupIn(envFor(t.TempDir()))
	n := 0
	for _, f := range files {
		switch {
		case f == "logrotate.conf":
			// logrotate's format, not Fluent Bit's: see TestControlSocketAgrees.
		case strings.HasSuffix(f, ".conf"):
			c, err := fbconf.LoadClassic(f, env)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			if len(c.Sections) == 0 {
				t.Errorf("%s: no sections", f)
			}
			if len(c.Unset) > 0 {
				t.Errorf("%s uses variables the demo does not set: %v", f, c.Unset)
			}
			n++
		case strings.HasSuffix(f, ".yaml") || strings.HasSuffix(f, ".yml"):
			root := loadYAML(t, f)
			if child(root, "pipeline") == nil {
				t.Errorf("%s: no pipeline section", f)
			}
			n++
		}
	}
	if n < 6 {
		t.Errorf("parsed %d Fluent Bit files in conf/, want fluent-bit.conf, parsers.conf, fluent-bit.yaml, app.yaml and opensips-sidecar.conf and .yaml", n)
	}
}

func TestOutputKeysAreKnown(t *testing.T) {
	env := lookupIn(envFor(t.TempDir()))
	known := flatstore.KnownKeys()
	check := func(where string, s fbconf.Section) {
		for _, p := range s.Props {
			if !reservedKey(p.Key) && !slices.Contains(known, strings.ToLower(p.Key)) {
				t.Errorf("%s line %d: %s is neither a flatstore key (%s) nor one Fluent Bit keeps", where, p.Line, p.Key, strings.Join(known, ", "))
			}
			if p.Key != strings.ToLower(p.Key) && !reservedKey(p.Key) {
				t.Errorf("%s line %d: write flatstore's keys in lower case as documented: %s", where, p.Line, p.Key)
			}
		}
	}
	for _, tw := range twins {
		c, err := fbconf.LoadClassic(tw.classic, env)
		if err != nil {
			t.Fatal(err)
		}
		outs := c.Outputs("flatstore")
		if len(outs) == 0 {
			t.Fatalf("%s has no flatstore output", tw.classic)
		}
		for _, s := range outs {
			check(tw.classic, *s)
		}
		yo := flatstoreOnly(yamlSections(t, loadYAML(t, tw.yaml), "outputs", env))
		if len(yo) == 0 {
			t.Fatalf("%s has no flatstore output", tw.yaml)
		}
		for _, s := range yo {
			check(tw.yaml, s)
		}
	}
}

// sameValue compares two values as Fluent Bit reads them: booleans in any
// spelling, everything else byte for byte.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	boolean := func(s string) (bool, bool) {
		switch strings.ToLower(s) {
		case "on", "true", "yes":
			return true, true
		case "off", "false", "no":
			return false, true
		}
		return false, false
	}
	va, oka := boolean(a)
	vb, okb := boolean(b)
	return oka && okb && va == vb
}

func compareSections(t *testing.T, what, cname, yname string, classic []fbconf.Section, yml []fbconf.Section) {
	t.Helper()
	if len(classic) != len(yml) {
		t.Fatalf("%s: %s has %d, %s %d", what, cname, len(classic), yname, len(yml))
	}
	for i := range classic {
		cm, ym := classic[i].Map(), yml[i].Map()
		keys := map[string]bool{}
		for k := range cm {
			keys[k] = true
		}
		for k := range ym {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			cv, cok := cm[k]
			yv, yok := ym[k]
			switch {
			case !cok:
				t.Errorf("%s %d: %s is set only in %s (%q)", what, i, k, yname, yv)
			case !yok:
				t.Errorf("%s %d: %s is set only in %s (%q)", what, i, k, cname, cv)
			case !sameValue(cv, yv):
				t.Errorf("%s %d: %s is %q in %s, %q in %s", what, i, k, cv, cname, yv, yname)
			}
		}
	}
}

func TestClassicAndYAMLAreOnePipeline(t *testing.T) {
	env := lookupIn(envFor(t.TempDir()))
	for _, tw := range twins {
		c, err := fbconf.LoadClassic(tw.classic, env)
		if err != nil {
			t.Fatal(err)
		}
		root := loadYAML(t, tw.yaml)
		deref := func(ss []*fbconf.Section) []fbconf.Section {
			out := make([]fbconf.Section, len(ss))
			for i, s := range ss {
				out[i] = *s
			}
			return out
		}
		cmp := func(what string, classic, yml []fbconf.Section) {
			t.Helper()
			compareSections(t, what, tw.classic, tw.yaml, classic, yml)
		}
		cmp("flatstore output", deref(c.Outputs("flatstore")), flatstoreOnly(yamlSections(t, root, "outputs", env)))
		cmp("output", deref(c.Find("OUTPUT")), yamlSections(t, root, "outputs", env))
		cmp("input", deref(c.Find("INPUT")), yamlSections(t, root, "inputs", env))

		// [SERVICE] against service: (neither loads the plugin: TestConfigsNameNoPluginPath).
		svc := c.Find("SERVICE")
		if len(svc) != 1 {
			t.Fatalf("%s has %d [SERVICE] sections", tw.classic, len(svc))
		}
		ys := fbconf.Section{Name: "service", Props: scalars(t, child(root, "service"))}
		cmp("service", []fbconf.Section{*svc[0]}, []fbconf.Section{ys})
	}
}

func TestParseConfigAcceptsEachOutput(t *testing.T) {
	dir := t.TempDir()
	envMap := envFor(dir)
	env := lookupIn(envMap)
	c, err := fbconf.LoadClassic("fluent-bit.conf", env)
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]fbconf.Section{}
	for _, s := range c.Outputs("flatstore") {
		sets["fluent-bit.conf"] = append(sets["fluent-bit.conf"], *s)
	}
	sets["fluent-bit.yaml"] = flatstoreOnly(yamlSections(t, loadYAML(t, "fluent-bit.yaml"), "outputs", env))
	for file, outs := range sets {
		for i, s := range outs {
			g := flatstore.MapGetter{}
			for k, v := range s.Map() {
				if !reservedKey(k) {
					g[k] = v
				}
			}
			cfg, err := flatstore.ParseConfig(g)
			if err != nil {
				t.Errorf("%s output %d: ParseConfig: %v", file, i, err)
				continue
			}
			if !strings.HasPrefix(cfg.Path, envMap["FLATSTORE_OUT"]+"/") {
				t.Errorf("%s output %d: path %s is not under FLATSTORE_OUT %s", file, i, cfg.Path, envMap["FLATSTORE_OUT"])
			}
			if cfg.ControlListen.String() != envMap["FLATSTORE_CONTROL"] {
				t.Errorf("%s output %d: control_listen %q, want %q", file, i, cfg.ControlListen, envMap["FLATSTORE_CONTROL"])
			}
			if cfg.FilePerm != 0o640 {
				t.Errorf("%s output %d: file_permissions %o, want 0640", file, i, cfg.FilePerm)
			}
			if !cfg.Mkdir {
				t.Errorf("%s output %d: mkdir should be true: the container starts with an empty volume", file, i)
			}
		}
	}
	// The first output is the one file with every event; the second is a template.
	outs := sets["fluent-bit.conf"]
	if len(outs) != 2 {
		t.Fatalf("fluent-bit.conf: %d flatstore outputs, want 2", len(outs))
	}
	if p := outs[0].Value("path"); strings.Contains(strings.TrimPrefix(p, "flatstore:"), "$") {
		t.Errorf("first output's path %q should be one static file", p)
	}
	if p := outs[1].Value("path"); !strings.Contains(p, "$EVENT") {
		t.Errorf("second output's path %q should be a $EVENT template", p)
	}
}

// The container's environment (the Dockerfile's ENV) gives every variable the
// configurations use, and the plugin accepts the result.
func TestContainerEnvironmentIsComplete(t *testing.T) {
	d := parseDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
	env := d.env["runtime"]
	if len(env) == 0 {
		t.Fatal("the runtime stage sets no ENV")
	}
	var outs []*fbconf.Section
	for _, tw := range twins {
		c, err := fbconf.LoadClassic(tw.classic, lookupIn(env))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Unset) > 0 {
			t.Errorf("%s reads %v, which the runtime image does not set", tw.classic, c.Unset)
		}
		outs = append(outs, c.Outputs("flatstore")...)
		data, err := os.ReadFile(tw.yaml)
		if err != nil {
			t.Fatal(err)
		}
		// A variable with a default (${VAR:-x}) need not be set.
		for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`).FindAllStringSubmatch(string(data), -1) {
			if _, ok := env[m[1]]; !ok {
				t.Errorf("%s reads ${%s}, which the runtime image does not set", tw.yaml, m[1])
			}
		}
	}
	if env["FLATSTORE_CONTROL"] != "unix:"+controlSocket {
		t.Errorf("runtime FLATSTORE_CONTROL = %q, want unix:%s", env["FLATSTORE_CONTROL"], controlSocket)
	}
	if env["FLATSTORE_ADDR"] != env["FLATSTORE_CONTROL"] {
		t.Errorf("runtime FLATSTORE_ADDR (flatstore-ctl's default) %q differs from FLATSTORE_CONTROL %q", env["FLATSTORE_ADDR"], env["FLATSTORE_CONTROL"])
	}
	if strings.EqualFold(env["FLATSTORE_EXIT_ON_EOF"], "on") || strings.EqualFold(env["FLATSTORE_EXIT_ON_EOF"], "true") {
		t.Error("the container must not stop at the end of its spool files: FLATSTORE_EXIT_ON_EOF off")
	}
	for _, s := range outs {
		g := flatstore.MapGetter{}
		for k, v := range s.Map() {
			if !reservedKey(k) {
				g[k] = v
			}
		}
		// control_listen names a socket in a directory this machine may lack;
		// ParseConfig only checks its syntax.
		if _, err := flatstore.ParseConfig(g); err != nil {
			t.Errorf("with the container's environment: %v", err)
		}
	}
}

func TestParsers(t *testing.T) {
	c, err := fbconf.LoadClassic("fluent-bit.conf", lookupIn(envFor(t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	svc := c.Find("SERVICE")[0]
	if f := svc.Value("parsers_file"); f == "" || filepath.IsAbs(f) {
		t.Errorf("[SERVICE] parsers_file = %q: want a file beside fluent-bit.conf", f)
	} else if _, err := os.Stat(f); err != nil {
		t.Errorf("[SERVICE] parsers_file: %v", err)
	}
	parsers, err := fbconf.LoadClassic(svc.Value("parsers_file"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, p := range parsers.Find("PARSER") {
		defined[p.Value("name")] = true
	}
	for _, in := range c.Find("INPUT") {
		if p := in.Value("parser"); p != "" && !defined[p] {
			t.Errorf("input %s uses parser %q, which %s does not define", in.Value("name"), p, svc.Value("parsers_file"))
		}
	}
	if y := child(loadYAML(t, "fluent-bit.yaml"), "service"); child(y, "parsers_file") == nil ||
		child(y, "parsers_file").Value != svc.Value("parsers_file") {
		t.Errorf("fluent-bit.yaml's service.parsers_file should be %s too", svc.Value("parsers_file"))
	}
}
