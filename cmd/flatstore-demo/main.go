// Command flatstore-demo shows flatstore at work on a realistic stream of
// SIP events.
//
// It generates the events (E_CALL_START, E_CALL_END, E_REGISTER,
// E_DIALOG_STATE, E_ACC_CDR, E_PIKE_BLOCKED, with Call-IDs, SIP URIs, status
// codes, durations, values holding the delimiter, newlines, UTF-8, a nested
// map, an array, booleans and nulls), writes them both as raw Fluent Bit
// records (events.msgpack) and as JSON lines (events.jsonl), then runs the
// pipeline of conf/fluent-bit.conf on them:
//
//   - with a real Fluent Bit when one is on PATH or FLUENT_BIT names it (it
//     reads events.jsonl through the tail input and stops at its end);
//   - otherwise with the project's test host, build/flbhost, which loads
//     build/out_flatstore.so as Fluent Bit does and feeds it events.msgpack.
//
// Then it reports what was written, file by file, and checks that every
// line is whole and that every flatstore output wrote one line per record.
// It exits non-zero when a check fails.
//
// Usage (from the repository root, after building the .so and the host):
//
//	go run ./cmd/flatstore-demo [-n 300000] [-out demo/out] [-workers N]
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flatstore/flatstore/internal/hostout"

	"github.com/flatstore/flatstore/conf"
)

// The tag of the demo's records: the tail input's Tag in conf/fluent-bit.conf.
const demoTag = "sip.events"

type options struct {
	n       int
	so      string
	host    string
	conf    string
	out     string
	data    string
	workers int
	chunk   int
	engine  string
	samples int
	seed    uint64
	verbose bool
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
	flag.IntVar(&o.samples, "samples", 5, "sample lines to print from the first output's file")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the event generator (same seed, same events)")
	flag.BoolVar(&o.verbose, "v", false, "show the engine's log even when all went well")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "flatstore-demo: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "flatstore-demo:", err)
		os.Exit(1)
	}
}

func run(o options, w io.Writer) error {
	if o.n < 1 {
		return errors.New("-n must be at least 1")
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(cwd, p)
	}
	data, out, confPath := abs(o.data), abs(o.out), abs(o.conf)
	engine, err := pickEngine(o.engine, abs(o.host))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}

	// 1. The events.
	msgpackPath := filepath.Join(data, "events.msgpack")
	jsonlPath := filepath.Join(data, "events.jsonl")
	counts, err := writeEvents(o.n, o.seed, msgpackPath, jsonlPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "generated %d events → %s (%s), %s (%s)\n", o.n,
		rel(cwd, msgpackPath), human(fileSize(msgpackPath)), rel(cwd, jsonlPath), human(fileSize(jsonlPath)))
	fmt.Fprintf(w, "  %s\n", formatCounts(counts))

	// 2. The output directory, cleared.
	if err := clearDir(out, cwd); err != nil {
		return err
	}

	// 3. The environment the configuration reads.
	env := map[string]string{
		"FLATSTORE_OUT":            out,
		"FLATSTORE_DEMO_IN":        jsonlPath,
		"FLATSTORE_EXIT_ON_EOF":    "on",
		"FLATSTORE_FORWARD_LISTEN": "127.0.0.1",
	}
	if v, ok := os.LookupEnv("FLATSTORE_CONTROL"); ok {
		env["FLATSTORE_CONTROL"] = v
	} else {
		sock := filepath.Join(data, "control.sock")
		if len(sock) >= 100 { // sun_path holds 108 bytes
			env["FLATSTORE_CONTROL"] = "off"
		} else {
			env["FLATSTORE_CONTROL"] = "unix:" + sock
			if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
				os.Remove(sock) // left by an earlier run that was killed
			}
		}
	}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	cfg, err := conf.LoadClassic(confPath, lookup)
	if err != nil {
		return err
	}
	if len(cfg.Unset) > 0 {
		return fmt.Errorf("%s reads %s, which neither the demo nor the environment sets (Fluent Bit would use \"\")",
			o.conf, strings.Join(cfg.Unset, ", "))
	}
	outputs := cfg.Outputs("flatstore")
	if len(outputs) == 0 {
		return fmt.Errorf("%s: no [OUTPUT] with Name flatstore", o.conf)
	}
	environ := os.Environ()
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	// 4. The pipeline.
	var sum *hostout.Summary
	var wall float64
	engineDir := cwd
	switch engine.kind {
	case "host":
		sum, err = runHost(o, engine.path, abs(o.so), confPath, msgpackPath, environ, w)
		if err != nil {
			return err
		}
		wall = sum.WallS
	case "fluent-bit":
		engineDir = data
		wall, err = runFluentBit(engine.path, abs(o.so), confPath, data, environ, o.verbose, w)
		if err != nil {
			return err
		}
	}

	// 5. What was written, and the checks.
	return report(w, o, cwd, engineDir, engine.kind, outputs, sum, wall)
}

type engine struct{ kind, path string }

func pickEngine(choice, host string) (engine, error) {
	findFB := func() (string, bool) {
		if p := os.Getenv("FLUENT_BIT"); p != "" {
			return p, true
		}
		p, err := exec.LookPath("fluent-bit")
		return p, err == nil
	}
	switch choice {
	case "host":
		return engine{"host", host}, nil
	case "fluent-bit":
		p, ok := findFB()
		if !ok {
			return engine{}, errors.New("-engine fluent-bit: no fluent-bit on PATH and FLUENT_BIT is not set")
		}
		return engine{"fluent-bit", p}, nil
	case "auto":
		if p, ok := findFB(); ok {
			return engine{"fluent-bit", p}, nil
		}
		return engine{"host", host}, nil
	}
	return engine{}, fmt.Errorf("-engine %q: want auto, host or fluent-bit", choice)
}

func runHost(o options, host, so, confPath, in string, environ []string, w io.Writer) (*hostout.Summary, error) {
	for _, f := range []string{host, so} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%v (build the plugin and the host first: make build, or go build -buildmode=c-shared -o build/out_flatstore.so ./plugin && cc -O2 -o build/flbhost host/flbhost.c -ldl -lpthread)", err)
		}
	}
	args := []string{"-so", so, "-conf", confPath, "-in", in, "-tag", demoTag}
	if o.workers >= 0 {
		args = append(args, "-workers", fmt.Sprint(o.workers))
	}
	if o.chunk > 0 {
		args = append(args, "-chunk", fmt.Sprint(o.chunk))
	}
	fmt.Fprintf(w, "running %s %s\n", host, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, host, args...)
	cmd.Env = environ
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if o.verbose || runErr != nil {
		w.Write(stderr.Bytes())
	}
	sum, err := hostout.Parse(stdout.Bytes())
	if err != nil || !sum.Found {
		if runErr != nil {
			return nil, fmt.Errorf("%s: %v", host, runErr)
		}
		return nil, fmt.Errorf("%s printed no summary (%v): %q", host, err, stdout.String())
	}
	if runErr != nil {
		// The summary says what failed; report() shows it and fails.
		fmt.Fprintf(w, "%s: %v\n", host, runErr)
	}
	return &sum, nil
}

func runFluentBit(fb, so, confPath, dir string, environ []string, verbose bool, w io.Writer) (float64, error) {
	// Fluent Bit reads Plugins_File from the working directory first: this
	// one names the .so just built instead of the container's path.
	plugins := "# written by flatstore-demo\n[PLUGINS]\n    Path " + so + "\n"
	if err := os.WriteFile(filepath.Join(dir, "plugins.conf"), []byte(plugins), 0o644); err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "running %s -c %s (in %s)\n", fb, confPath, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, fb, "-c", confPath)
	cmd.Dir = dir
	cmd.Env = environ
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start).Seconds()
	if verbose || err != nil {
		w.Write(log.Bytes())
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %v", fb, err)
	}
	return wall, nil
}

// writeEvents writes n events to both files and returns how many of each
// event there are.
func writeEvents(n int, seed uint64, msgpackPath, jsonlPath string) (map[string]int, error) {
	mf, err := os.Create(msgpackPath)
	if err != nil {
		return nil, err
	}
	defer mf.Close()
	jf, err := os.Create(jsonlPath)
	if err != nil {
		return nil, err
	}
	defer jf.Close()
	mw, jw := bufio.NewWriterSize(mf, 1<<20), bufio.NewWriterSize(jf, 1<<20)
	g := newGenerator(seed)
	counts := map[string]int{}
	var mb, jb []byte
	for range n {
		ts, body := g.next()
		counts[body[0].val.(string)]++
		if mb, err = appendRecord(mb[:0], ts, body); err != nil {
			return nil, err
		}
		if jb, err = appendJSON(jb[:0], body); err != nil {
			return nil, err
		}
		jb = append(jb, '\n')
		mw.Write(mb)
		jw.Write(jb)
	}
	for _, f := range []struct {
		w *bufio.Writer
		f *os.File
	}{{mw, mf}, {jw, jf}} {
		if err := f.w.Flush(); err != nil {
			return nil, err
		}
		if err := f.f.Close(); err != nil {
			return nil, err
		}
	}
	return counts, nil
}

func formatCounts(c map[string]int) string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, c[k])
	}
	return strings.Join(parts, ", ")
}

// clearDir empties dir (creating it), refusing anything that holds the
// working directory.
func clearDir(dir, cwd string) error {
	if dir == "/" || dir == cwd || strings.HasPrefix(cwd+"/", dir+"/") {
		return fmt.Errorf("-out %s: refusing to clear a directory that holds the working directory", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// templateGlob turns a flatstore path template into a glob: every $TAG,
// $TAG[n], $EVENT, $key and $key['sub'] becomes '*'.
func templateGlob(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] != '$' {
			if strings.IndexByte("*?[\\", p[i]) >= 0 {
				b.WriteByte('\\')
			}
			b.WriteByte(p[i])
			i++
			continue
		}
		j := i + 1
		for j < len(p) && (p[j] == '_' || p[j] >= 'a' && p[j] <= 'z' || p[j] >= 'A' && p[j] <= 'Z' || p[j] >= '0' && p[j] <= '9') {
			j++
		}
		if j == i+1 {
			b.WriteByte('$')
			i++
			continue
		}
		for j < len(p) && p[j] == '[' {
			end := strings.IndexByte(p[j:], ']')
			if end < 0 {
				break
			}
			j += end + 1
		}
		b.WriteByte('*')
		i = j
	}
	return b.String()
}

// tagMatches reports whether a Fluent Bit Match pattern ('*' wildcards)
// routes tag to the output.
func tagMatches(pattern, tag string) bool {
	ok, err := path.Match(pattern, tag)
	return err == nil && ok
}

type fileStat struct {
	path         string
	lines, bytes int64
	whole        bool
}

func countFile(p string) (fileStat, error) {
	f, err := os.Open(p)
	if err != nil {
		return fileStat{}, err
	}
	defer f.Close()
	st := fileStat{path: p, whole: true}
	buf := make([]byte, 1<<20)
	var last byte = '\n'
	for {
		n, err := f.Read(buf)
		if n > 0 {
			st.bytes += int64(n)
			st.lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			last = buf[n-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
	}
	st.whole = last == '\n'
	return st, nil
}

func report(w io.Writer, o options, cwd, engineDir, kind string, outputs []*conf.Section, sum *hostout.Summary, wall float64) error {
	var problems []string
	if sum != nil && len(sum.Instances) != len(outputs) {
		problems = append(problems, fmt.Sprintf("the host ran %d instances, the configuration has %d flatstore outputs", len(sum.Instances), len(outputs)))
	}
	owner := map[string][]int{} // file → instances whose template it matches
	files := make([][]fileStat, len(outputs))
	var totalLines, totalBytes int64
	for i, s := range outputs {
		p := strings.TrimPrefix(s.Value("path"), "flatstore:")
		if !filepath.IsAbs(p) {
			p = filepath.Join(engineDir, p)
		}
		pattern := templateGlob(p)
		rotating := false
		for _, k := range []string{"suffix", "rotate_size", "rotate_count", "rotate_period"} {
			if v := s.Value(k); v != "" && v != "0" {
				rotating = true
			}
		}
		if rotating {
			pattern += "*"
		}
		matches, _ := filepath.Glob(pattern)
		sort.Strings(matches)
		name := fmt.Sprintf("flatstore.%d", i)
		if sum != nil && i < len(sum.Instances) {
			name = sum.Instances[i].Name
		}
		fmt.Fprintf(w, "\n%s  path %s  match %s\n", name, s.Value("path"), s.Value("match"))
		var lines, size int64
		for _, m := range matches {
			fi, err := os.Stat(m)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			st, err := countFile(m)
			if err != nil {
				return err
			}
			owner[m] = append(owner[m], i)
			files[i] = append(files[i], st)
			fmt.Fprintf(w, "  %-44s %10d lines %12s\n", rel(cwd, m), st.lines, human(st.bytes))
			if !st.whole {
				problems = append(problems, fmt.Sprintf("%s: the last line has no newline (a line was cut)", rel(cwd, m)))
			}
			lines += st.lines
			size += st.bytes
		}
		if s.Value("header") != "" {
			lines -= int64(len(files[i])) // one header line per file
		}
		totalLines += lines
		totalBytes += size
		want := int64(0)
		if kind == "host" || tagMatches(s.Value("match"), demoTag) {
			want = int64(o.n)
		}
		if sum != nil && i < len(sum.Instances) {
			in := sum.Instances[i]
			fmt.Fprintf(w, "  host: %d chunks, %d records, ok %d, retries %d, errors %d, dropped %d\n",
				in.Chunks, in.Records, in.OKRecords, in.Retries, in.Errors, in.DroppedRecords)
			if in.Records != int64(o.n) || in.OKRecords != int64(o.n) || in.Errors != 0 || in.DroppedRecords != 0 {
				problems = append(problems, fmt.Sprintf("%s: %d of %d records flushed OK (errors %d, dropped %d)",
					name, in.OKRecords, o.n, in.Errors, in.DroppedRecords))
			}
		}
		fmt.Fprintf(w, "  %d files, %d lines, %s; records in %d\n", len(files[i]), lines, human(size), want)
		if lines != want {
			problems = append(problems, fmt.Sprintf("%s: %d lines for %d records", name, lines, want))
		}
	}
	for f, ins := range owner {
		if len(ins) > 1 {
			problems = append(problems, fmt.Sprintf("%s is written by several outputs %v: the counts above overlap", rel(cwd, f), ins))
		}
	}

	fmt.Fprintf(w, "\ntotal: %d records in, %d outputs, %d lines, %s", o.n, len(outputs), totalLines, human(totalBytes))
	if wall > 0 {
		fmt.Fprintf(w, ", %.3f s, %.0f records/s (%.0f lines/s)", wall, float64(o.n)/wall, float64(totalLines)/wall)
		if kind == "fluent-bit" {
			fmt.Fprint(w, " (wall time includes Fluent Bit's start and stop)")
		}
	}
	fmt.Fprintln(w)
	if sum != nil {
		fmt.Fprintf(w, "host: cpu user %.3f s, sys %.3f s, max rss %d KiB\n", sum.CPUUserS, sum.CPUSysS, sum.MaxRSSKB)
	}

	if len(files) > 0 && len(files[0]) > 0 && o.samples > 0 {
		fmt.Fprintf(w, "\nfirst lines of %s:\n", rel(cwd, files[0][0].path))
		if err := printHead(w, files[0][0].path, o.samples); err != nil {
			return err
		}
	}

	if len(problems) > 0 {
		fmt.Fprintln(w, "\nFAILED:")
		for _, p := range problems {
			fmt.Fprintln(w, "  "+p)
		}
		return fmt.Errorf("%d check(s) failed", len(problems))
	}
	fmt.Fprintln(w, "\nOK: every line is whole, and every output wrote one line per record")
	return nil
}

func printHead(w io.Writer, p string, n int) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		line := sc.Text()
		if len(line) > 240 {
			cut := 240
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			line = line[:cut] + "…"
		}
		fmt.Fprintln(w, "  "+line)
	}
	return sc.Err()
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func human(n int64) string {
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

func rel(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
