package configs_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/fbconf"
	"github.com/flatstore/flatstore/internal/fbtest"
	"github.com/flatstore/flatstore/internal/records"
)

// --- conf/opensips-sidecar.conf and .yaml: flatstore as OpenSIPS's sidecar ----------------

// The ports OpenSIPS's subscriptions name when the variables are not set.
const (
	defaultStreamPort   = "5170"
	defaultDatagramPort = "5171"
)

// sidecarPipeline is one of the sidecar's twins, read with env.
type sidecarPipeline struct {
	file            string
	inputs, outputs []fbconf.Section
	service         map[string]string
}

func loadSidecar(t *testing.T, env map[string]string) []sidecarPipeline {
	t.Helper()
	lookup := lookupIn(env)
	c, err := fbconf.LoadClassic("opensips-sidecar.conf", lookup)
	if err != nil {
		t.Fatal(err)
	}
	deref := func(ss []*fbconf.Section) []fbconf.Section {
		var out []fbconf.Section
		for _, s := range ss {
			out = append(out, *s)
		}
		return out
	}
	root := loadYAML(t, "opensips-sidecar.yaml")
	ys := map[string]string{}
	for _, p := range scalars(t, child(root, "service")) {
		ys[p.Key] = p.Value
	}
	return []sidecarPipeline{
		{"opensips-sidecar.conf", deref(c.Find("INPUT")), deref(c.Find("OUTPUT")), c.Find("SERVICE")[0].Map()},
		{"opensips-sidecar.yaml", yamlSections(t, root, "inputs", lookup), yamlSections(t, root, "outputs", lookup), ys},
	}
}

// sidecarInputs returns the pipeline's tcp and udp inputs, failing unless
// it has exactly those two.
func sidecarInputs(t *testing.T, p sidecarPipeline) (tcp, udp fbconf.Section) {
	t.Helper()
	if len(p.inputs) != 2 || p.inputs[0].Value("name") != "tcp" || p.inputs[1].Value("name") != "udp" {
		t.Fatalf("%s: want a tcp input (event_stream) and a udp input (event_datagram), got %d inputs", p.file, len(p.inputs))
	}
	return p.inputs[0], p.inputs[1]
}

// TestSidecarConfig: the sidecar's pipeline, in both formats: event_stream
// over TCP and event_datagram over UDP, decoded as JSON, on loopback, on the
// ports the variables give (5170 and 5171 when unset), with the sizes a
// large event needs; one flatstore output that takes both inputs' records,
// reads OpenSIPS's notifications, writes event_flatstore's bytes and rotates
// by itself.
func TestSidecarConfig(t *testing.T) {
	dir := t.TempDir()
	env := envFor(dir)
	set := maps.Clone(env)
	set["FLATSTORE_STREAM_PORT"], set["FLATSTORE_DATAGRAM_PORT"] = "15170", "15171"
	for _, run := range []struct {
		env                   map[string]string
		streamPort, dgramPort string
	}{{env, defaultStreamPort, defaultDatagramPort}, {set, "15170", "15171"}} {
		for _, p := range loadSidecar(t, run.env) {
			tcp, udp := sidecarInputs(t, p)
			for _, c := range []struct {
				in   fbconf.Section
				port string
			}{{tcp, run.streamPort}, {udp, run.dgramPort}} {
				name := p.file + " " + c.in.Value("name")
				if c.in.Value("format") != "json" {
					t.Errorf("%s: format %q, want json (OpenSIPS sends JSON-RPC)", name, c.in.Value("format"))
				}
				if c.in.Value("listen") != "127.0.0.1" {
					t.Errorf("%s: listen %q: the inputs take events from anyone who reaches them; keep them on loopback", name, c.in.Value("listen"))
				}
				if c.in.Value("port") != c.port {
					t.Errorf("%s: port %q, want %s", name, c.in.Value("port"), c.port)
				}
				if c.in.Value("tag") == "" {
					t.Errorf("%s: no tag", name)
				}
			}
			kb := func(s fbconf.Section, k string) int {
				n, err := strconv.Atoi(s.Value(k))
				if err != nil {
					t.Errorf("%s %s %s = %q: want a number of KB", p.file, s.Value("name"), k, s.Value(k))
				}
				return n
			}
			if n := kb(tcp, "buffer_size"); n <= 32 {
				t.Errorf("%s tcp: buffer_size %d KB: at 32 KB or less an event larger than that drops the connection", p.file, n)
			}
			if n := kb(udp, "chunk_size"); n < 64 {
				t.Errorf("%s udp: chunk_size %d KB: a datagram larger than that is cut and dropped", p.file, n)
			}

			if len(p.outputs) != 1 || p.outputs[0].Value("name") != "flatstore" {
				t.Fatalf("%s: want one output, flatstore", p.file)
			}
			out := p.outputs[0]
			for _, in := range p.inputs {
				if ok, _ := filepath.Match(out.Value("match"), in.Value("tag")); !ok {
					t.Errorf("%s: the output's match %q does not take the %s input's tag %q", p.file, out.Value("match"), in.Value("name"), in.Value("tag"))
				}
			}
			g := flatstore.MapGetter{}
			for k, v := range out.Map() {
				if !reservedKey(k) {
					g[k] = v
				}
			}
			cfg, err := flatstore.ParseConfig(g)
			if err != nil {
				t.Errorf("%s: ParseConfig: %v", p.file, err)
				continue
			}
			if cfg.EventKey != "method" || cfg.ParamsKey != "params" {
				t.Errorf("%s: event_key %q, params_key %q: OpenSIPS's notifications name the event in method, the parameters in params", p.file, cfg.EventKey, cfg.ParamsKey)
			}
			if cfg.Escape != event.EscapeOpenSIPSExact {
				t.Errorf("%s: escape %s, want opensips_exact (the bytes event_flatstore wrote)", p.file, cfg.Escape)
			}
			if !strings.HasPrefix(cfg.Path, env["FLATSTORE_OUT"]+"/") || !cfg.Mkdir {
				t.Errorf("%s: path %s: want a file under FLATSTORE_OUT %s, with mkdir true", p.file, cfg.Path, env["FLATSTORE_OUT"])
			}
			if cfg.ControlListen.String() != env["FLATSTORE_CONTROL"] {
				t.Errorf("%s: control_listen %q, want FLATSTORE_CONTROL %q", p.file, cfg.ControlListen, env["FLATSTORE_CONTROL"])
			}
			if cfg.RotatePeriod <= 0 || !strings.Contains(cfg.Suffix, "%") {
				t.Errorf("%s: rotate_period %v, suffix %q: a sidecar rotates by itself, into files named by time", p.file, cfg.RotatePeriod, cfg.Suffix)
			}
			if cfg.FilePerm != 0o640 {
				t.Errorf("%s: file_permissions %o, want 0640", p.file, cfg.FilePerm)
			}
		}
	}
	// The classic file parses with the same variables (it loads no plugin by
	// itself either: TestConfigsNameNoPluginPath).
	if _, err := fbconf.LoadClassic("opensips-sidecar.conf", lookupIn(env)); err != nil {
		t.Fatal(err)
	}
}

// TestSidecarConfigThroughHost: conf/opensips-sidecar.conf's output, turned
// into the host's arguments as the demo does, through the real plugin: the
// recorded notifications, as Fluent Bit's inputs make records of them, give
// exactly what event_flatstore wrote, in the file the configuration names.
func TestSidecarConfigThroughHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin and the host")
	}
	dir := t.TempDir()
	env := envFor(dir)
	c, err := fbconf.LoadClassic("opensips-sidecar.conf", lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	cases := fbtest.LoadWireCases(t)
	var chunk []byte
	var want string
	for i, wc := range cases {
		chunk = records.AppendRecord(chunk, records.Record{Time: time.Unix(1700000000, int64(i)), Body: records.JSONRecordBody(wc.Wire)})
		want += wc.OpenSIPS
	}
	in := filepath.Join(dir, "in.chunks")
	if err := os.WriteFile(in, records.Frames(chunk, chunk), 0o644); err != nil {
		t.Fatal(err)
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	args := append(c.HostArgs("flatstore"), "-in-chunks", in, "-tag", "opensips.stream")
	s, stderr, code := fbtest.RunHostWith(t, fbtest.HostConfig{Env: envList}, args...)
	if code != 0 || len(s.Instances) != 1 || s.Instances[0].OKRecords != int64(2*len(cases)) {
		t.Fatalf("exit %d, summary %+v; stderr:\n%s", code, s, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(env["FLATSTORE_OUT"], "opensips", "events.log.*"))
	if len(files) != 1 {
		t.Fatalf("files %v: want one events.log.YYYYMMDD", files)
	}
	if got := fbtest.ReadText(t, files[0]); got != want+want {
		t.Errorf("%s holds\n%q\nwant\n%q", files[0], got, want+want)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: %v %v, want mode 0640", files[0], fi.Mode(), err)
	}
}

// --- docker-compose.yml's opensips profile ------------------------------------------------

// subscription is one subscribe_event of opensips.cfg's startup_route.
type subscription struct {
	event, proto, host, port string
}

// opensipsConfig reads conf/opensips.cfg: the modules it loads and the
// subscriptions its startup_route makes (comments dropped).
func opensipsConfig(t *testing.T) (modules []string, subs []subscription) {
	t.Helper()
	data, err := os.ReadFile("opensips.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	text := strings.Join(lines, "\n")
	for _, m := range regexp.MustCompile(`(?m)^\s*loadmodule\s+"([^"]+)"`).FindAllStringSubmatch(text, -1) {
		modules = append(modules, m[1])
	}
	sr := regexp.MustCompile(`(?s)\bstartup_route\s*\{(.*?)\n\}`).FindStringSubmatch(text)
	if sr == nil {
		t.Fatal("opensips.cfg has no startup_route")
	}
	sub := regexp.MustCompile(`subscribe_event\(\s*"([A-Z0-9_]+)"\s*,\s*"(tcp|udp):([^:"]+):(\d+)(?:/[^"]*)?"\s*(?:,[^)]*)?\)`)
	for _, m := range sub.FindAllStringSubmatch(sr[1], -1) {
		subs = append(subs, subscription{m[1], m[2], m[3], m[4]})
	}
	if n := strings.Count(text, "subscribe_event("); n != len(subs) {
		t.Errorf("opensips.cfg: %d subscribe_event calls, %d of them in startup_route with a tcp: or udp: socket", n, len(subs))
	}
	return modules, subs
}

// TestComposeOpenSIPSProfile: the opensips profile is one consistent
// deployment: OpenSIPS from the official image runs conf/opensips.cfg,
// which loads event_stream and event_datagram (not event_flatstore) and
// subscribes its events to loopback ports that are exactly the sidecar's
// tcp and udp inputs (the sidecar shares OpenSIPS's network namespace); the
// sidecar runs opensips-sidecar.yaml from the image and writes into a named
// volume; its healthcheck asks its own control endpoint.
func TestComposeOpenSIPSProfile(t *testing.T) {
	c := loadCompose(t)
	d := parseDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
	sip, ok1 := c.Services["opensips"]
	fb, ok2 := c.Services["opensips-fluent-bit"]
	if !ok1 || !ok2 {
		t.Fatal("docker-compose.yml: want services opensips and opensips-fluent-bit")
	}
	for name, s := range c.Services {
		in := slices.Contains(s.Profiles, "opensips")
		if in != (name == "opensips" || name == "opensips-fluent-bit") {
			t.Errorf("service %s: profiles %v: only the OpenSIPS pair belongs to the opensips profile", name, s.Profiles)
		}
	}

	// OpenSIPS runs the repository's opensips.cfg.
	if !strings.HasPrefix(sip.Image, "opensips/opensips:") {
		t.Errorf("opensips: image %s, want the official opensips/opensips", sip.Image)
	}
	if src := mounts(sip.Volumes)["/etc/opensips/opensips.cfg"]; src != "./conf/opensips.cfg" {
		t.Errorf("opensips: /etc/opensips/opensips.cfg is mounted from %q, want ./conf/opensips.cfg", src)
	}
	if nofile, ok := sip.Ulimits["nofile"].(map[string]any); !ok || nofile["soft"] == nil {
		t.Error("opensips: set ulimits nofile: event_stream's sender costs more per event the higher the limit (docs/sidecar.md)")
	} else if soft, _ := nofile["soft"].(int); soft <= 0 || soft > 1024 {
		t.Errorf("opensips: ulimits nofile soft %v: above 1 024 event_stream fell behind a burst", nofile["soft"])
	}
	modules, subs := opensipsConfig(t)
	for _, m := range []string{"event_stream.so", "event_datagram.so"} {
		if !slices.Contains(modules, m) {
			t.Errorf("opensips.cfg does not load %s", m)
		}
	}
	if slices.Contains(modules, "event_flatstore.so") {
		t.Error("opensips.cfg loads event_flatstore.so: the sidecar writes the files")
	}

	// The sidecar: the image's own configuration, in OpenSIPS's network namespace.
	if fb.Build == nil || fb.Build.Target != "runtime" {
		t.Errorf("opensips-fluent-bit: build %+v, want the Dockerfile's runtime stage", fb.Build)
	}
	if got := strings.Join(fb.Command, " "); got != "-c /fluent-bit/etc/opensips-sidecar.yaml" {
		t.Errorf("opensips-fluent-bit: command %q, want -c /fluent-bit/etc/opensips-sidecar.yaml", got)
	}
	copied := false
	for _, cp := range d.copies {
		copied = copied || cp.stage == "runtime" && cp.dest == "/fluent-bit/etc/" && slices.Contains(cp.srcs, "conf/opensips-sidecar.yaml")
	}
	if !copied {
		t.Error("the runtime stage does not copy conf/opensips-sidecar.yaml to /fluent-bit/etc/")
	}
	if fb.NetworkMode != "service:opensips" {
		t.Errorf("opensips-fluent-bit: network_mode %q, want service:opensips: its inputs listen on loopback", fb.NetworkMode)
	}
	if _, ok := fb.DependsOn["opensips"]; !ok {
		t.Error("opensips-fluent-bit must depend on opensips, whose network namespace it joins")
	}

	// The ports agree: each subscription names the input of its transport.
	env := maps.Clone(d.env["runtime"])
	maps.Copy(env, fb.Environment)
	var p sidecarPipeline
	for _, sp := range loadSidecar(t, env) {
		if sp.file == "opensips-sidecar.yaml" {
			p = sp
		}
	}
	tcp, udp := sidecarInputs(t, p)
	seen := map[string]bool{}
	for _, s := range subs {
		seen[s.proto] = true
		in := map[string]fbconf.Section{"tcp": tcp, "udp": udp}[s.proto]
		if s.host != "127.0.0.1" || s.port != in.Value("port") {
			t.Errorf("opensips.cfg subscribes %s to %s:%s:%s; the sidecar's %s input listens on %s:%s", s.event, s.proto, s.host, s.port, s.proto, in.Value("listen"), in.Value("port"))
		}
	}
	if !seen["tcp"] || !seen["udp"] {
		t.Errorf("opensips.cfg subscribes over %v: want event_stream (tcp:) and event_datagram (udp:) both", seen)
	}

	// The paths agree: the files land in the named volume, the control
	// endpoint is the one the healthcheck asks, in a directory the image
	// gives the user it runs as.
	out := env["FLATSTORE_OUT"]
	vol := mounts(fb.Volumes)[out]
	if _, ok := c.Volumes[vol]; vol == "" || !ok {
		t.Errorf("opensips-fluent-bit: FLATSTORE_OUT %s is not a named volume (mounts %v)", out, fb.Volumes)
	}
	g := flatstore.MapGetter{}
	for k, v := range p.outputs[0].Map() {
		if !reservedKey(k) {
			g[k] = v
		}
	}
	if path := strings.TrimPrefix(g.Get("path"), "flatstore:"); !strings.HasPrefix(path, out+"/") {
		t.Errorf("the sidecar writes %s, outside FLATSTORE_OUT %s", path, out)
	}
	listen := g.Get("control_listen")
	if hc := fb.Healthcheck; hc == nil || !slices.Contains(hc.Test, listen) {
		t.Errorf("opensips-fluent-bit's healthcheck should ask flatstore-ctl at %s", listen)
	}
	sockDir := filepath.Dir(strings.TrimPrefix(listen, "unix:"))
	owned := false
	for _, cp := range d.copies {
		owned = owned || cp.stage == "runtime" && strings.TrimSuffix(cp.dest, "/") == sockDir && cp.chown == "65532:65532"
	}
	if !strings.HasPrefix(listen, "unix:") || !owned {
		t.Errorf("control_listen %s: want a unix socket in a directory the runtime image creates for 65532", listen)
	}
}
