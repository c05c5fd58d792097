// Command flatstore-demo writes a realistic stream of SIP events as Fluent Bit
// records (events.msgpack) and JSON lines (events.jsonl), runs
// conf/fluent-bit.conf on them — in Fluent Bit when FLUENT_BIT names one or
// fluent-bit is on PATH, else in the project's test host (build/flbhost) — and
// reports the files each flatstore output wrote, as the plugin's own template
// parser renders their paths for the events generated.
//
//	go run ./cmd/flatstore-demo [-n 300000] [-out demo/out] [-engine auto|host|fluent-bit]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/internal/fbconf"
	"github.com/flatstore/flatstore/internal/hostout"
	"github.com/flatstore/flatstore/internal/records"
)

// The tag of the demo's records: the tail input's Tag in conf/fluent-bit.conf.
const demoTag = "sip.events"

type options struct {
	n, workers, chunk                 int
	so, host, conf, out, data, engine string
	verbose                           bool
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 300000, "number of events to generate")
	flag.StringVar(&o.so, "so", "build/out_flatstore.so", "the flatstore plugin")
	flag.StringVar(&o.host, "host", "build/flbhost", "the test host, used when no Fluent Bit is found")
	flag.StringVar(&o.conf, "conf", "conf/fluent-bit.conf", "Fluent Bit classic configuration to run")
	flag.StringVar(&o.out, "out", "demo/out", "output directory (FLATSTORE_OUT); cleared first")
	flag.StringVar(&o.data, "data", "demo", "directory for events.msgpack, events.jsonl and the control socket")
	flag.IntVar(&o.workers, "workers", -1, "flush threads per output for the test host (-1: as the configuration says)")
	flag.IntVar(&o.chunk, "chunk", 0, "records per chunk for the test host (0: its default)")
	flag.StringVar(&o.engine, "engine", "auto", "auto | host | fluent-bit: what runs the pipeline")
	flag.BoolVar(&o.verbose, "v", false, "show the engine's log even when all went well")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "flatstore-demo:", err)
		os.Exit(1)
	}
}

func run(o options, w io.Writer) error {
	cwd, err := os.Getwd()
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(cwd, p)
	}
	data, out, kind, bin := abs(o.data), abs(o.out), "host", abs(o.host)
	if fb, err := exec.LookPath(cmp.Or(os.Getenv("FLUENT_BIT"), "fluent-bit")); o.engine == "fluent-bit" || o.engine == "auto" && err == nil {
		if err != nil {
			return fmt.Errorf("-engine fluent-bit: no fluent-bit on PATH and FLUENT_BIT is not set: %v", err)
		}
		kind, bin = "fluent-bit", fb
	} else if o.engine != "auto" && o.engine != "host" {
		return fmt.Errorf("-engine %q: want auto, host or fluent-bit", o.engine)
	}
	if err := errors.Join(err, os.MkdirAll(data, 0o755), clearDir(out, cwd)); err != nil || o.n < 1 {
		return cmp.Or(err, errors.New("-n must be at least 1"))
	}
	// What the configuration reads; the forward input, which the demo does not feed, gets a free port.
	sock := filepath.Join(data, "control.sock")
	os.Remove(sock) // left by an earlier run that was killed
	env := map[string]string{"FLATSTORE_OUT": out, "FLATSTORE_DEMO_IN": filepath.Join(data, "events.jsonl"),
		"FLATSTORE_EXIT_ON_EOF": "on", "FLATSTORE_FORWARD_LISTEN": "127.0.0.1", "FLATSTORE_FORWARD_PORT": freePort(),
		"FLATSTORE_CONTROL": cmp.Or(os.Getenv("FLATSTORE_CONTROL"), "unix:"+sock)}
	environ := os.Environ()
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cfg, err := fbconf.LoadClassic(abs(o.conf), func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err == nil && len(cfg.Unset) > 0 {
		err = fmt.Errorf("%s reads %s, which neither the demo nor the environment sets", o.conf, strings.Join(cfg.Unset, ", "))
	}
	if err != nil {
		return err
	}
	// Where each output writes each event: the plugin's template, rendered.
	outputs := cfg.Outputs("flatstore")
	want := make([]map[string]int64, len(outputs)) // per output: file → records
	tpls := make([]*event.Template, len(outputs))
	for i, s := range outputs {
		p := flatstore.TrimPathPrefix(s.Value("path"))
		if !filepath.IsAbs(p) && kind == "fluent-bit" {
			p = filepath.Join(data, p) // where it runs
		}
		want[i] = map[string]int64{}
		if tpls[i], err = event.ParseTemplate(abs(p), nil); err != nil {
			return fmt.Errorf("output %d: path %q: %v", i, p, err)
		}
	}
	msgpackPath := filepath.Join(data, "events.msgpack")
	counts, err := writeEvents(o.n, 1, msgpackPath, env["FLATSTORE_DEMO_IN"], func(name string, body []byte) {
		for i, s := range outputs { // the host sends every chunk to every output
			if ok, _ := path.Match(s.Value("match"), demoTag); kind == "host" || ok {
				want[i][string(tpls[i].Render(nil, []byte(demoTag), []byte(name), body, event.Time{}, nil))]++
			}
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "generated %d events in %s: %v\n", o.n, data, counts)

	var sum *hostout.Summary
	start := time.Now()
	if kind == "host" {
		args := append(cfg.HostArgs("flatstore"), "-so", abs(o.so), "-in", msgpackPath, "-tag", demoTag)
		if o.workers >= 0 {
			args = append(args, "-workers", fmt.Sprint(o.workers))
		}
		if o.chunk > 0 {
			args = append(args, "-chunk", fmt.Sprint(o.chunk))
		}
		sum, err = runEngine(w, bin, cwd, environ, o.verbose, args...)
	} else {
		// The configuration names no plugin: -e loads it, as the image's entrypoint does.
		_, err = runEngine(w, bin, data, environ, o.verbose, "-e", abs(o.so), "-c", abs(o.conf))
	}
	if err == nil {
		report(w, o, outputs, want, sum, time.Since(start).Seconds())
		leftOnDisk(w, abs("demo"), msgpackPath, env["FLATSTORE_DEMO_IN"], out)
	}
	return err
}

// leftOnDisk says what the demo leaves behind, how big, and how to remove it:
// make clean for the default directory (demo/), rm -r for others.
func leftOnDisk(w io.Writer, demoDir string, paths ...string) {
	var total int64
	var parts []string
	removable := true
	for _, p := range paths {
		n := diskSize(p)
		total += n
		parts = append(parts, fmt.Sprintf("%s %s", p, humanBytes(n)))
		removable = removable && strings.HasPrefix(p, demoDir+"/")
	}
	how := "make clean removes them"
	if !removable {
		how = "remove them with rm -r " + strings.Join(paths, " ")
	}
	fmt.Fprintf(w, "\nleft on disk: %s (%s); %s\n", humanBytes(total), strings.Join(parts, ", "), how)
}

// diskSize is the size of the file or the tree at p (0 if absent).
func diskSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// commandLine is bin and args as a shell would take them, each ${VAR} in args
// expanded from environ as the engine does (the host expands them itself).
func commandLine(bin string, environ, args []string) string {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v // the last one wins, as in exec.Cmd
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	words := []string{shellQuote(bin)}
	for _, a := range args {
		words = append(words, shellQuote(fbconf.Expand(a, lookup)))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:@+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func freePort() string {
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		defer l.Close()
		return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	}
	return "24224"
}

// runEngine runs the engine in dir and returns the host's summary, if any.
// Its "running" line shows the arguments with the environment's ${VAR}
// expanded, as the engine reads them.
func runEngine(w io.Writer, bin, dir string, environ []string, verbose bool, args ...string) (*hostout.Summary, error) {
	fmt.Fprintf(w, "running %s\n", commandLine(bin, environ, args))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, environ
	var stdout, log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &log
	if err := cmd.Run(); verbose || err != nil {
		w.Write(log.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s: %v (make build builds the plugin and the host)", bin, err)
		}
	}
	sum, err := hostout.Parse(stdout.Bytes())
	if !sum.Found {
		return nil, err
	}
	return &sum, err
}

// writeEvents writes n events to both files, shows each to seen, and counts them.
func writeEvents(n int, seed uint64, msgpackPath, jsonlPath string, seen func(event string, body []byte)) (map[string]int, error) {
	mf, err1 := os.Create(msgpackPath)
	jf, err2 := os.Create(jsonlPath)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	mw, jw := bufio.NewWriterSize(mf, 1<<20), bufio.NewWriterSize(jf, 1<<20)
	g := newGenerator(seed)
	counts := map[string]int{}
	var mb, jb []byte
	for range n {
		ts, body := g.next()
		event := body[1].(string)
		counts[event]++
		mb = records.AppendRecord(mb[:0], records.Record{Time: ts, Body: body})
		jb = append(records.AppendJSON(jb[:0], body), '\n')
		mw.Write(mb)
		jw.Write(jb)
		seen(event, records.AppendKV(nil, body))
	}
	return counts, errors.Join(mw.Flush(), jw.Flush(), mf.Close(), jf.Close())
}

// clearDir empties dir (creating it), refusing one that holds the working directory.
func clearDir(dir, cwd string) error {
	if dir == "/" || dir == cwd || strings.HasPrefix(cwd+"/", dir+"/") {
		return fmt.Errorf("-out %s: refusing to clear a directory that holds the working directory", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// report prints, per output, each file the events were bound for and its lines;
// the checks of those files are the tests' (e2e/configs).
func report(w io.Writer, o options, outputs []*fbconf.Section, want []map[string]int64, sum *hostout.Summary, wall float64) {
	var sample []byte
	for i, s := range outputs {
		fmt.Fprintf(w, "\nflatstore.%d  path %s  match %s\n", i, s.Value("path"), s.Value("match"))
		var lines, records int64
		for _, f := range slices.Sorted(maps.Keys(want[i])) {
			data, _ := os.ReadFile(f)
			n := int64(bytes.Count(data, []byte{'\n'}))
			fmt.Fprintf(w, "  %-44s %10d lines %12d bytes\n", f, n, len(data))
			lines, records = lines+n, records+want[i][f]
			if sample == nil {
				sample = data
			}
		}
		fmt.Fprintf(w, "  %d files, %d lines for %d records\n", len(want[i]), lines, records)
		if sum != nil && i < len(sum.Instances) {
			fmt.Fprintf(w, "  host: %+v\n", sum.Instances[i])
		}
	}
	fmt.Fprintf(w, "\n%d events, %.3f s, %.0f events/s\n", o.n, wall, float64(o.n)/wall)
	for _, l := range strings.SplitN(string(sample), "\n", 4)[:min(3, strings.Count(string(sample), "\n"))] {
		fmt.Fprintln(w, "  "+strings.ToValidUTF8(l[:min(len(l), 200)], ""))
	}
}

// generator makes a reproducible stream of SIP-style events: calls that start,
// change state, end and are rated, registrations, the odd blocked flood.
type generator struct {
	rnd   *rand.Rand
	t     time.Time
	calls []call // calls in progress
}

type call struct {
	id, from, to, fromTag string
	start                 time.Time
	state                 int64
}

var (
	users   = []string{"alice", "bob", "carol", "dave", "erin", "frank", "josé", "zoë", "hiro", "李雷"}
	hosts   = []string{"atlanta.example.com", "biloxi.example.com", "paris.example.fr", "tokyo.example.jp"}
	uas     = []string{"Linphone/5.2.5 (belle-sip/5.2.94), Desktop", "Grandstream GXP2170 1.0.11.23", "Zoiper rv2.10.20.3", "Obi200/3.2.2, \"home\" line", "MicroSIP/3.21.3"}
	hangups = []string{"Normal call clearing", "Busy Here, try later", "Request Terminated", "Temporarily Unavailable"}
	names   = []string{"José Müller", "Zoë Ødegaard", "日本 太郎", "Ana, Maria", "Bob \"the builder\""}
	regions = []string{"eu-west", "us-east", "ap-northeast (東京)"}
)

func newGenerator(seed uint64) *generator {
	return &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x5eed)), t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (g *generator) pick(s []string) string { return s[g.rnd.IntN(len(s))] }
func (g *generator) uri() string            { return "sip:" + g.pick(users) + "@" + g.pick(hosts) }
func (g *generator) n(k int) int64          { return int64(g.rnd.IntN(k)) }

func (g *generator) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdef"[g.rnd.IntN(16)]
	}
	return string(b)
}

// next returns the time and body of the next event; the event name is the
// body's second element.
func (g *generator) next() (time.Time, records.KV) {
	g.t = g.t.Add(time.Duration(500+g.rnd.IntN(4000)) * time.Microsecond)
	switch r := g.rnd.IntN(100); {
	case r < 25 || len(g.calls) == 0:
		c := call{id: g.hex(16) + "@" + g.pick(hosts), from: g.uri(), fromTag: g.hex(8), start: g.t, state: 1}
		for c.to = g.uri(); c.to == c.from; c.to = g.uri() {
		}
		if len(g.calls) < 64 {
			g.calls = append(g.calls, c)
		}
		codecs := []any{"PCMU", "PCMA"}
		if g.rnd.IntN(2) == 0 {
			codecs = append(codecs, "opus")
		}
		return g.t, records.KV{"event", "E_CALL_START", "call_id", c.id, "from_uri", c.from, "to_uri", c.to,
			"from_tag", c.fromTag, "src_ip", fmt.Sprintf("192.0.2.%d", 1+g.n(254)), "src_port", 5060 + g.n(40),
			"user_agent", g.pick(uas), "codecs", codecs}
	case r < 45:
		c := &g.calls[g.rnd.IntN(len(g.calls))]
		old := c.state
		c.state = min(c.state+1, 4)
		return g.t, records.KV{"event", "E_DIALOG_STATE", "call_id", c.id, "state", c.state, "old_state", old,
			"hash_entry", g.n(4096), "hash_id", int64(g.rnd.Uint32()), "callee_display", g.pick(names), "early", c.state < 3}
	case r < 65:
		i := g.rnd.IntN(len(g.calls))
		c := g.calls[i]
		g.calls = append(g.calls[:i], g.calls[i+1:]...)
		status := []int64{486, 487, 480, 200, 200, 200, 200, 200, 200, 200}[g.rnd.IntN(10)]
		// a duration in seconds with a fraction, as billing systems report it
		dur := float64(g.t.Sub(c.start).Microseconds())/1e6 + float64(g.rnd.IntN(600)) + 0.25
		return g.t, records.KV{"event", "E_CALL_END", "call_id", c.id, "from_uri", c.from, "to_uri", c.to,
			"status", status, "duration", dur, "billed_seconds", int64(dur) + 1, "reason", g.pick(hangups),
			"hangup_by", []string{"caller", "callee"}[g.rnd.IntN(2)]}
	case r < 85:
		u, h, expires := g.pick(users), g.pick(hosts), int64(3600)
		if g.rnd.IntN(8) == 0 {
			expires = 0 // an unregister
		}
		return g.t, records.KV{"event", "E_REGISTER", "aor", "sip:" + u + "@" + h,
			"contact", fmt.Sprintf("<sip:%s@198.51.100.%d:%d;transport=tcp>", u, 1+g.n(254), 5060+g.n(10)),
			"expires", expires, "user_agent", g.pick(uas), "registered", expires > 0}
	case r < 97:
		c, dur, notes := g.calls[g.rnd.IntN(len(g.calls))], g.n(3600), "answered"
		if g.rnd.IntN(4) == 0 {
			notes = "transferred\nto voicemail"
		}
		var account any // a null when the caller is not a customer
		if g.rnd.IntN(3) > 0 {
			account = "ACC-" + g.hex(6)
		}
		return g.t, records.KV{"event", "E_ACC_CDR", "call_id", c.id, "method", "INVITE", "from_tag", c.fromTag,
			"to_tag", g.hex(8), "sip_code", "200", "sip_reason", "OK", "setuptime", 1 + g.n(5), "duration", dur,
			"cost", float64(dur)*0.00037 + 0.0005, "currency", "€",
			"extra", records.KV{"carrier", "Example Telecom, Inc.", "region", g.pick(regions), "trunk", 1 + g.n(8)},
			"notes", notes, "rated", g.rnd.IntN(5) > 0, "account", account}
	default:
		return g.t, records.KV{"event", "E_PIKE_BLOCKED", "ip", fmt.Sprintf("203.0.113.%d", 1+g.n(254)),
			"requests", 100 + g.n(5000), "window_s", 2.5, "reason", "too many requests; blocked, flood"}
	}
}
