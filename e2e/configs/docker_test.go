package configs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flatstore/flatstore/internal/fbconf"
)

// --- the Dockerfile ----------------------------------------------------------------------

type fromLine struct {
	image, tag, digest, stage string
	line                      int
}

type dockerfile struct {
	froms  []fromLine
	stages map[string]bool
	env    map[string]map[string]string // stage → ENV
	copies []copyLine
	cmd    map[string]string // stage → CMD as written
	entry  map[string]string // stage → ENTRYPOINT as written
}

type copyLine struct {
	stage, from string
	chown       string
	srcs        []string
	dest        string
	line        int
}

// parseDockerfile reads the instructions this project uses: FROM, ENV, COPY,
// CMD, ENTRYPOINT (continuation lines joined, comments dropped).
func parseDockerfile(t *testing.T, path string) *dockerfile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerfile{stages: map[string]bool{}, env: map[string]map[string]string{}, cmd: map[string]string{},
		entry: map[string]string{}}
	var instr []struct {
		text string
		line int
	}
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		instr = append(instr, struct {
			text string
			line int
		}{cur.String(), start})
		cur.Reset()
	}
	stage := ""
	for _, in := range instr {
		f := strings.Fields(in.text)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			fl := fromLine{line: in.line}
			ref := f[1]
			if len(f) >= 4 && strings.EqualFold(f[2], "AS") {
				fl.stage = f[3]
			}
			ref, fl.digest, _ = strings.Cut(ref, "@")
			if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
				fl.image, fl.tag = ref[:i], ref[i+1:]
			} else {
				fl.image = ref
			}
			d.froms = append(d.froms, fl)
			stage = fl.stage
			d.stages[stage] = true
		case "ENV":
			if d.env[stage] == nil {
				d.env[stage] = map[string]string{}
			}
			for _, kv := range f[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile:%d: ENV %q: use KEY=VALUE", in.line, kv)
				}
				d.env[stage][k] = strings.Trim(v, `"`)
			}
		case "COPY":
			c := copyLine{stage: stage, line: in.line}
			args := f[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				if v, ok := strings.CutPrefix(args[0], "--from="); ok {
					c.from = v
				}
				if v, ok := strings.CutPrefix(args[0], "--chown="); ok {
					c.chown = v
				}
				args = args[1:]
			}
			if len(args) < 2 {
				t.Fatalf("Dockerfile:%d: COPY needs a source and a destination", in.line)
			}
			c.srcs, c.dest = args[:len(args)-1], args[len(args)-1]
			d.copies = append(d.copies, c)
		case "CMD":
			d.cmd[stage] = strings.TrimSpace(in.text[3:])
		case "ENTRYPOINT":
			d.entry[stage] = strings.TrimSpace(in.text[len("ENTRYPOINT"):])
		}
	}
	return d
}

// exactTag: a version tag that names one release (x.y.z) or one dated build
// (YYYYMMDD), never a moving one such as latest, 1.26 or bookworm-slim.
var exactTag = regexp.MustCompile(`(^|[^0-9.])\d+\.\d+\.\d+([^0-9.]|$)|(^|\D)20\d{6}(\D|$)`)

func TestDockerfileBasesArePinned(t *testing.T) {
	d := parseDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
	if len(d.froms) < 3 {
		t.Fatalf("Dockerfile has %d FROM lines, want the build, logrotate, app and runtime stages", len(d.froms))
	}
	for _, f := range d.froms {
		if d.stages[f.image] && f.tag == "" {
			continue // FROM an earlier stage
		}
		switch {
		case f.tag == "" || f.tag == "latest":
			t.Errorf("Dockerfile:%d: FROM %s has no exact version tag", f.line, f.image)
		case !exactTag.MatchString(f.tag):
			t.Errorf("Dockerfile:%d: FROM %s:%s: the tag moves; pin an exact version (x.y.z or a dated build)", f.line, f.image, f.tag)
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(f.digest) {
			t.Errorf("Dockerfile:%d: FROM %s:%s: pin the digest too (@sha256:...), got %q", f.line, f.image, f.tag, f.digest)
		}
		if f.stage == "" {
			t.Errorf("Dockerfile:%d: FROM %s: name the stage (AS name) so compose can target it", f.line, f.image)
		}
	}

	// The Go toolchain is the release series go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	var golang, fluentbit *fromLine
	for i, f := range d.froms {
		switch f.image {
		case "golang":
			golang = &d.froms[i]
		case "fluent/fluent-bit", "cr.fluentbit.io/fluent/fluent-bit":
			fluentbit = &d.froms[i]
		}
	}
	if golang == nil || !strings.HasPrefix(golang.tag, string(m[1])+".") {
		t.Errorf("the build stage should use golang %s.x (go.mod), got %+v", m[1], golang)
	}
	if golang != nil && !strings.Contains(golang.tag, "bookworm") {
		t.Errorf("golang:%s: build on Debian bookworm, whose glibc (2.36) is not newer than the runtime's", golang.tag)
	}
	if fluentbit == nil || !strings.HasPrefix(fluentbit.tag, "5.1.") {
		t.Errorf("the runtime should be the official fluent/fluent-bit image at a 5.1.x tag, got %+v", fluentbit)
	}
	if last := d.froms[len(d.froms)-1]; last.stage != "runtime" {
		t.Errorf("the last stage is %q: make it runtime, so a plain docker build gives the Fluent Bit image", last.stage)
	}
}

func TestDockerfileCopiesWhatTheConfigsName(t *testing.T) {
	root := repoRoot(t)
	d := parseDockerfile(t, filepath.Join(root, "Dockerfile"))

	// Every source from the build context exists (a missing one fails the build).
	for _, c := range d.copies {
		if c.from != "" {
			continue
		}
		for _, s := range c.srcs {
			if _, err := os.Stat(filepath.Join(root, s)); err != nil {
				t.Errorf("Dockerfile:%d: COPY %s: %v", c.line, s, err)
			}
		}
	}
	// The runtime stage has the plugin where its entrypoint loads it (-e), and
	// the configuration files where fluent-bit reads them.
	soDest := ""
	etc := map[string]bool{}
	for _, c := range d.copies {
		if c.stage != "runtime" {
			continue
		}
		for _, s := range c.srcs {
			switch {
			case strings.HasSuffix(s, "out_flatstore.so"):
				soDest = c.dest
			case strings.HasPrefix(s, "conf/") && strings.HasSuffix(c.dest, "/"):
				etc[c.dest+filepath.Base(s)] = true
			}
		}
	}
	if soDest == "" {
		t.Fatal("the runtime stage does not copy out_flatstore.so")
	}
	var entry []string
	if err := json.Unmarshal([]byte(d.entry["runtime"]), &entry); err != nil {
		t.Fatalf("runtime ENTRYPOINT %s: want the exec form (a JSON array): %v", d.entry["runtime"], err)
	}
	if i := slices.Index(entry, "-e"); i < 0 || i+1 >= len(entry) || entry[i+1] != soDest {
		t.Errorf("runtime ENTRYPOINT %v should load the plugin the stage copies: -e %s", entry, soDest)
	}
	for _, f := range []string{"fluent-bit.conf", "fluent-bit.yaml", "parsers.conf", "opensips-sidecar.conf", "opensips-sidecar.yaml"} {
		if !etc["/fluent-bit/etc/"+f] {
			t.Errorf("the runtime stage does not copy conf/%s to /fluent-bit/etc/", f)
		}
	}
	cmd := d.cmd["runtime"]
	m := regexp.MustCompile(`"(/fluent-bit/etc/[^"]+)"`).FindStringSubmatch(cmd)
	if m == nil || !etc[m[1]] {
		t.Errorf("runtime CMD %s should run a configuration the image holds (%v)", cmd, etc)
	}
	if !strings.Contains(d.cmd["app"], "/fluent-bit/etc/app.yaml") {
		t.Errorf("app CMD %s should run /fluent-bit/etc/app.yaml", d.cmd["app"])
	}

	// The directories the plugin writes belong to the user it runs as.
	env := d.env["runtime"]
	for _, dir := range []string{env["FLATSTORE_OUT"], filepath.Dir(strings.TrimPrefix(env["FLATSTORE_CONTROL"], "unix:"))} {
		found := false
		for _, c := range d.copies {
			if c.stage == "runtime" && strings.TrimSuffix(c.dest, "/") == dir && c.chown == "65532:65532" {
				found = true
			}
		}
		if !found {
			t.Errorf("the runtime stage should create %s owned by 65532:65532 (the user it runs as)", dir)
		}
	}
}

// namedPlugins returns what the Fluent Bit files in conf/ load by themselves:
// a YAML file's plugins: entries and plugins_file, a classic file's Plugins_File.
// The shipped configurations load none: the command line does (-e), so that
// they run in the image and from a checkout alike.
func namedPlugins(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		switch {
		case f == "logrotate.conf":
		case strings.HasSuffix(f, ".conf"):
			c, err := fbconf.LoadClassic(f, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range c.Find("SERVICE") {
				if v, ok := s.Get("plugins_file"); ok {
					out = append(out, f+": Plugins_File "+v)
				}
			}
			if len(c.Find("PLUGINS")) > 0 {
				out = append(out, f+": [PLUGINS]")
			}
		case strings.HasSuffix(f, ".yaml"):
			root := loadYAML(t, f)
			if p := child(root, "plugins"); p != nil {
				out = append(out, f+": plugins:")
			}
			if p := child(child(root, "service"), "plugins_file"); p != nil {
				out = append(out, f+": plugins_file "+p.Value)
			}
		}
	}
	return out
}

func TestConfigsNameNoPluginPath(t *testing.T) {
	if n := namedPlugins(t); len(n) > 0 {
		t.Errorf("a shipped configuration loads a plugin by itself (load it with -e; README, Troubleshooting): %v", n)
	}
}

func noEnv(string) (string, bool) { return "", false }

// --- docker-compose.yml ------------------------------------------------------------------

type composeFile struct {
	Services map[string]struct {
		Profiles    []string       `yaml:"profiles"`
		NetworkMode string         `yaml:"network_mode"`
		Command     []string       `yaml:"command"`
		Ulimits     map[string]any `yaml:"ulimits"`
		Image       string         `yaml:"image"`
		Build       *struct {
			Context string `yaml:"context"`
			Target  string `yaml:"target"`
		} `yaml:"build"`
		Volumes     []string          `yaml:"volumes"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]any    `yaml:"depends_on"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return &c
}

// mounts returns a service's volume mounts: target → source.
func mounts(vols []string) map[string]string {
	m := map[string]string{}
	for _, v := range vols {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	d := parseDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
	for _, name := range []string{"app", "fluent-bit", "logrotate"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("docker-compose.yml: no service %q", name)
		}
	}
	for name, s := range c.Services {
		switch {
		case s.Build != nil:
			if s.Build.Context != "." {
				t.Errorf("service %s: build context %q, want . (the Dockerfile's)", name, s.Build.Context)
			}
			if s.Build.Target == "" || !d.stages[s.Build.Target] {
				t.Errorf("service %s: build target %q is not a stage of the Dockerfile (%v)", name, s.Build.Target, d.stages)
			}
		case s.Image != "":
			ref, digest, _ := strings.Cut(s.Image, "@")
			_, tag, _ := strings.Cut(ref[strings.LastIndexByte(ref, '/')+1:], ":")
			// The digest pins the image; the tag says which release it is. A
			// release series (3.6) is enough when the image publishes no
			// digest-known exact tag, and the file says which build it is.
			if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) ||
				!exactTag.MatchString(tag) && !regexp.MustCompile(`^\d+\.\d+$`).MatchString(tag) {
				t.Errorf("service %s: image %s: pin a version tag and its digest", name, s.Image)
			}
		default:
			t.Errorf("service %s: neither build nor image", name)
		}
		for _, src := range mounts(s.Volumes) {
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") || strings.HasPrefix(src, "~") {
				continue // a bind mount
			}
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %q, which is not declared under volumes:", name, src)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
	}
	for v := range c.Volumes {
		used := false
		for _, s := range c.Services {
			for _, src := range mounts(s.Volumes) {
				used = used || src == v
			}
		}
		if !used {
			t.Errorf("volume %s is declared but never mounted", v)
		}
	}
	for _, v := range []string{"flatstore-data", "flatstore-run"} {
		if _, ok := c.Volumes[v]; !ok {
			t.Errorf("docker-compose.yml: no named volume %s", v)
		}
	}
}

// The control socket is one path everywhere: where the plugin listens
// (compose, image), where flatstore-ctl connects (healthcheck, logrotate),
// and the volume that both containers share.
func TestControlSocketAgrees(t *testing.T) {
	c := loadCompose(t)
	d := parseDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
	fb, lr := c.Services["fluent-bit"], c.Services["logrotate"]
	listen := fb.Environment["FLATSTORE_CONTROL"]
	if listen == "" {
		listen = d.env[fb.Build.Target]["FLATSTORE_CONTROL"]
	}
	if listen != "unix:"+controlSocket {
		t.Fatalf("fluent-bit listens on %q, want unix:%s", listen, controlSocket)
	}
	sockDir := filepath.Dir(controlSocket)
	fm, lm := mounts(fb.Volumes), mounts(lr.Volumes)
	if fm[sockDir] == "" || fm[sockDir] != lm[sockDir] {
		t.Errorf("%s must be the same named volume in fluent-bit (%q) and logrotate (%q)", sockDir, fm[sockDir], lm[sockDir])
	}
	out := d.env["runtime"]["FLATSTORE_OUT"]
	if v := fb.Environment["FLATSTORE_OUT"]; v != "" {
		out = v
	}
	if fm[out] == "" || fm[out] != lm[out] {
		t.Errorf("%s (FLATSTORE_OUT) must be the same named volume, at the same path, in fluent-bit (%q) and logrotate (%q): logrotate names files by the paths the plugin writes", out, fm[out], lm[out])
	}
	addr := lr.Environment["FLATSTORE_ADDR"]
	if addr == "" {
		addr = d.env[lr.Build.Target]["FLATSTORE_ADDR"]
	}
	if addr != listen {
		t.Errorf("logrotate's FLATSTORE_ADDR %q differs from the plugin's %q", addr, listen)
	}
	if hc := fb.Healthcheck; hc == nil || !slices.Contains(hc.Test, "unix:"+controlSocket) {
		t.Errorf("fluent-bit's healthcheck should ask flatstore-ctl at unix:%s", controlSocket)
	}

	// conf/logrotate.conf: every address it names is the socket, and the
	// files it rotates are under FLATSTORE_OUT.
	data, err := os.ReadFile("logrotate.conf")
	if err != nil {
		t.Fatalf("conf/logrotate.conf: %v", err)
	}
	if !bytes.Contains(data, []byte("flatstore-ctl")) {
		t.Error("logrotate.conf should call flatstore-ctl in postrotate")
	}
	for _, m := range regexp.MustCompile(`unix:(/[^\s"'}$]+)`).FindAllSubmatch(data, -1) {
		if string(m[1]) != controlSocket {
			t.Errorf("logrotate.conf names unix:%s, the plugin listens on unix:%s", m[1], controlSocket)
		}
	}
	globs := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "/") {
			continue
		}
		for _, f := range strings.Fields(strings.TrimSuffix(line, "{")) {
			globs++
			if !strings.HasPrefix(f, out+"/") {
				t.Errorf("logrotate.conf rotates %s, outside FLATSTORE_OUT %s", f, out)
			}
		}
	}
	if globs == 0 {
		t.Errorf("logrotate.conf names no file under %s", out)
	}
}
