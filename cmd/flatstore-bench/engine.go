package main

// Inside a real Fluent Bit: the same tail input of JSON lines into the null
// output, the engine's own out_file (csv) and flatstore. Two measures:
//
//   - CPU time (user+sys) of the whole process, each output run in turn
//     -engine-runs times: medians and their spread (min–max), and the
//     outputs' cost above null as ratios, per run;
//   - instructions, counted by valgrind's callgrind over -engine-cg-records
//     records, each output -engine-cg-runs times in turn (medians and
//     range): per record, each output's flush (inclusive: out_file's
//     cb_file_flush, flatstore's Go side of FLBPluginFlushCtx) and the
//     whole process above null, and the process's fixed cost (an empty
//     input) above null's. Instructions do not move with the neighbours
//     of a shared machine; CPU seconds do.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flatstore/flatstore/internal/bench"
	rec "github.com/flatstore/flatstore/internal/records"
)

var engineOutputs = []string{"null", "file", "flatstore"}

// engineResult is the CPU each output costs inside a real Fluent Bit.
type engineResult struct {
	records      int
	version      string
	cpu          map[string][]float64 // output → seconds of each run, in run order
	wall         map[string]float64   // output → median seconds
	runs         int
	inputBytes   int64
	outputsBytes map[string]int64
}

// engineSetup is a temporary directory holding the input and the parsers.
type engineSetup struct {
	fb, so, tmp, in, parsers string
	inputBytes               int64
}

func newEngineSetup(fb, so, dir string, records int) (*engineSetup, error) {
	tmp, err := os.MkdirTemp(dir, "flatstore-bench-engine-")
	if err != nil {
		return nil, err
	}
	e := &engineSetup{fb: fb, so: so, tmp: tmp, in: filepath.Join(tmp, "events.jsonl"), parsers: filepath.Join(tmp, "parsers.conf")}
	if e.inputBytes, err = writeJSONLines(e.in, records); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := os.WriteFile(e.parsers, []byte("[PARSER]\n    Name json\n    Format json\n"), 0o644); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return e, nil
}

func engineVersion(fb string) string {
	if out, err := exec.Command(fb, "--version").Output(); err == nil {
		return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	return "Fluent Bit"
}

func runEngine(fb, so, dir string, records, runs int) (engineResult, error) {
	r := engineResult{records: records, runs: runs, cpu: map[string][]float64{}, wall: map[string]float64{}, outputsBytes: map[string]int64{},
		version: engineVersion(fb)}
	e, err := newEngineSetup(fb, so, dir, records)
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(e.tmp)
	r.inputBytes = e.inputBytes
	walls := map[string][]float64{}
	for i := 0; i < runs; i++ {
		for _, o := range engineOutputs { // in turn, so a drift of the machine touches each alike
			run, err := e.run(o, records, nil)
			if err != nil {
				return r, err
			}
			r.cpu[o] = append(r.cpu[o], run.cpu)
			walls[o] = append(walls[o], run.wall)
			r.outputsBytes[o] = run.size
		}
	}
	for o, w := range walls {
		r.wall[o] = medianOf(w)
	}
	return r, nil
}

// writeJSONLines writes the benchmark's events as JSON lines, keys in the
// records' order.
func writeJSONLines(path string, records int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	for i := 0; i < records; i++ {
		line = append(rec.AppendJSON(line[:0], bench.Event(i, false).Body), '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	st, _ := f.Stat()
	return st.Size(), f.Close()
}

// engineRun is one run of Fluent Bit.
type engineRun struct {
	cpu, wall float64 // seconds
	size      int64   // the output's bytes
}

// run runs Fluent Bit over the first records lines of the input (all of
// them, or none when records is 0) into one output, under the command
// wrap when given (valgrind), and checks that every record came out.
func (e *engineSetup) run(output string, records int, wrap []string) (engineRun, error) {
	work, err := os.MkdirTemp(e.tmp, output+"-")
	if err != nil {
		return engineRun{}, err
	}
	defer os.RemoveAll(work)
	in := e.in
	if records == 0 {
		in = filepath.Join(work, "empty.jsonl")
		if err := os.WriteFile(in, nil, 0o644); err != nil {
			return engineRun{}, err
		}
	}
	outConf := map[string]string{
		"null":      "    Name null\n    Match *\n",
		"file":      "    Name file\n    Match *\n    Path " + work + "\n    File out.csv\n    Format csv\n",
		"flatstore": "    Name flatstore\n    Match *\n    path " + filepath.Join(work, "out.log") + "\n    control_listen off\n",
	}[output]
	conf := fmt.Sprintf(`[SERVICE]
    Flush 1
    Grace 30
    Log_Level warn
    Parsers_File %s
[INPUT]
    Name tail
    Path %s
    Parser json
    Read_from_Head On
    Exit_On_Eof On
    Buffer_Chunk_Size 1M
    Buffer_Max_Size 1M
[OUTPUT]
%s`, e.parsers, in, outConf)
	cf := filepath.Join(work, "fluent-bit.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return engineRun{}, err
	}
	args := []string{"-c", cf}
	if output == "flatstore" {
		args = append([]string{"-e", e.so}, args...)
	}
	args = append(append(append([]string{}, wrap...), e.fb), args...)
	logf("%s (%s, %d records)", strings.Join(args, " "), output, records)
	cmd := exec.Command(args[0], args[1:]...)
	if wrap != nil {
		// The Go runtime's preemption signals and RDTSCP, which
		// valgrind 3.19 does not know, off.
		cmd.Env = append(os.Environ(), "GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off")
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return engineRun{}, fmt.Errorf("fluent-bit (%s): %v\n%s", output, err, stderr.Bytes())
	}
	run := engineRun{wall: time.Since(start).Seconds(), cpu: (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()}
	if output != "null" {
		name := map[string]string{"file": "out.csv", "flatstore": "out.log"}[output]
		lines, n, err := countLines(filepath.Join(work, name))
		if err != nil && !(records == 0 && os.IsNotExist(err)) {
			return engineRun{}, err
		}
		if lines != int64(records) {
			return engineRun{}, fmt.Errorf("fluent-bit's %s output wrote %d lines, want %d", output, lines, records)
		}
		run.size = n
	}
	return run, nil
}

// medianOf returns the median of v (v is sorted in place).
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// spread formats the median of v and its range: "0.312 (0.301–0.330)".
func spread(v []float64, scale float64, format string) string {
	if len(v) == 0 {
		return "-"
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	f := func(x float64) string { return fmt.Sprintf(format, x*scale) }
	return fmt.Sprintf("%s (%s–%s)", f(medianOf(v)), f(lo), f(hi))
}

func printEngine(w io.Writer, r engineResult) {
	fmt.Fprintf(w, "\ninside %s: tail of %d JSON lines (%d MB) into one output; CPU time (user+sys) of the whole process, "+
		"median (min–max) of %d runs, the outputs in turn\n", r.version, r.records, r.inputBytes>>20, r.runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	perRec := 1e6 / float64(r.records)
	// Each run's figures against the null run of the same round.
	above := func(o string) []float64 {
		var v []float64
		for i := range r.cpu[o] {
			v = append(v, r.cpu[o][i]-r.cpu["null"][i])
		}
		return v
	}
	ratio := func(num, den []float64) []float64 {
		var v []float64
		for i := range num {
			if den[i] > 0 {
				v = append(v, num[i]/den[i])
			}
		}
		return v
	}
	row("output", "null", "file (csv)", "flatstore")
	row("CPU s, whole process", spread(r.cpu["null"], 1, "%.3f"), spread(r.cpu["file"], 1, "%.3f"), spread(r.cpu["flatstore"], 1, "%.3f"))
	row("CPU µs/record, whole process", spread(r.cpu["null"], perRec, "%.3f"), spread(r.cpu["file"], perRec, "%.3f"), spread(r.cpu["flatstore"], perRec, "%.3f"))
	row("CPU µs/record above null (same round)", "-", spread(above("file"), perRec, "%.3f"), spread(above("flatstore"), perRec, "%.3f"))
	row("whole process / null (same round)", "-", spread(ratio(r.cpu["file"], r.cpu["null"]), 1, "%.2f×"), spread(ratio(r.cpu["flatstore"], r.cpu["null"]), 1, "%.2f×"))
	row("flatstore / out_file, above null (same round)", "", "", spread(ratio(above("flatstore"), above("file")), 1, "%.2f×"))
	row("wall s (median)", fmt.Sprintf("%.2f", r.wall["null"]), fmt.Sprintf("%.2f", r.wall["file"]), fmt.Sprintf("%.2f", r.wall["flatstore"]))
	row("output MB", "-", fmt.Sprintf("%.0f", float64(r.outputsBytes["file"])/(1<<20)), fmt.Sprintf("%.0f", float64(r.outputsBytes["flatstore"])/(1<<20)))
	tw.Flush()
}

// ---- instructions (callgrind) ----

// cgResult is the instructions each output costs, counted by callgrind,
// one value a run.
type cgResult struct {
	records int
	total   map[string][]float64 // output → instructions of the whole process, a run each
	empty   map[string]float64   // output → the same over an empty input
	flush   map[string][]float64 // output → instructions of its flush, inclusive, a run each
}

// flushFunction is how callgrind_annotate names each output's flush: out_file's
// callback, and the Go function FLBPluginFlushCtx calls (its C side is the
// proxy's; the Go side, on its own stack, is counted whole).
var flushFunction = map[string]*regexp.Regexp{
	"file":      regexp.MustCompile(`^\s*([\d,]+) .*/out_file/file\.c:cb_file_flush \[`),
	"flatstore": regexp.MustCompile(`^\s*([\d,]+) .*:main\.flatstoreGoFlushCtx \[`),
}

// haveCallgrind reports whether valgrind and callgrind_annotate can be run.
func haveCallgrind() error {
	for _, p := range []string{"valgrind", "callgrind_annotate"} {
		if _, err := exec.LookPath(p); err != nil {
			return err
		}
	}
	return nil
}

// runCallgrind runs each output runs times under callgrind over records,
// the outputs in turn, and null and flatstore once more over an empty
// input.
func runCallgrind(fb, so, dir string, records, runs int) (cgResult, error) {
	r := cgResult{records: records, total: map[string][]float64{}, empty: map[string]float64{}, flush: map[string][]float64{}}
	e, err := newEngineSetup(fb, so, dir, records)
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(e.tmp)
	type job struct {
		output  string
		records int
	}
	var jobs []job
	for range max(runs, 1) {
		jobs = append(jobs, job{"null", records}, job{"file", records}, job{"flatstore", records})
	}
	jobs = append(jobs, job{"null", 0}, job{"flatstore", 0})
	for i, j := range jobs {
		out := filepath.Join(e.tmp, fmt.Sprintf("callgrind.%d.out", i))
		if _, err := e.run(j.output, j.records, []string{"valgrind", "--tool=callgrind", "--trace-children=no", "--callgrind-out-file=" + out}); err != nil {
			return r, err
		}
		total, flush, err := annotate(out, flushFunction[j.output])
		os.Remove(out)
		if err != nil {
			return r, err
		}
		if j.records == 0 {
			r.empty[j.output] = total
			continue
		}
		r.total[j.output] = append(r.total[j.output], total)
		if flushFunction[j.output] != nil {
			if flush == 0 {
				return r, fmt.Errorf("callgrind: no %s in the %s run's profile", flushFunction[j.output], j.output)
			}
			r.flush[j.output] = append(r.flush[j.output], flush)
		}
	}
	return r, nil
}

// annotate reads a callgrind profile: the program's total instructions,
// and the inclusive instructions of the function fn matches (0: none).
func annotate(profile string, fn *regexp.Regexp) (total, flush float64, err error) {
	out, err := exec.Command("callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", profile).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("callgrind_annotate %s: %v", profile, err)
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64); return v }
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasSuffix(l, "PROGRAM TOTALS") {
			total = num(strings.Fields(l)[0])
		}
		if fn != nil && flush == 0 {
			if m := fn.FindStringSubmatch(l); m != nil {
				flush = num(m[1])
			}
		}
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("callgrind_annotate %s: no total", profile)
	}
	return total, flush, nil
}

func printCallgrind(w io.Writer, r cgResult) {
	runs := len(r.total["null"])
	fmt.Fprintf(w, "\ninstructions (valgrind --tool=callgrind), %d run(s) of each output in turn over %d records (fewer than above: callgrind is some 30× slower); "+
		"per record, median (min–max)\n", runs, r.records)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	n := float64(r.records)
	null := medianOf(r.total["null"])
	// each run's figures, per record; above null against null's median
	// (null repeats to 0.01 %)
	each := func(o string, f func(i int) float64) []float64 {
		var v []float64
		for i := range r.total[o] {
			v = append(v, f(i))
		}
		return v
	}
	whole := func(o string) []float64 { return each(o, func(i int) float64 { return r.total[o][i] / n }) }
	above := func(o string) []float64 { return each(o, func(i int) float64 { return (r.total[o][i] - null) / n }) }
	flush := func(o string) []float64 { return each(o, func(i int) float64 { return r.flush[o][i] / n }) }
	outside := func(o string) []float64 {
		return each(o, func(i int) float64 { return (r.total[o][i] - null - r.flush[o][i]) / n })
	}
	ratio := func(o string) []float64 {
		return each(o, func(i int) float64 { return (r.total[o][i] - null) / r.flush[o][i] })
	}
	num, x := "%.0f", "%.3f×"
	row("output", "null", "file (csv)", "flatstore")
	row("whole process", spread(whole("null"), 1, num), spread(whole("file"), 1, num), spread(whole("flatstore"), 1, num))
	row("the output's flush (inclusive)", "-", spread(flush("file"), 1, num), spread(flush("flatstore"), 1, num))
	row("whole process above null", "-", spread(above("file"), 1, num), spread(above("flatstore"), 1, num))
	row("  outside the flush", "-", spread(outside("file"), 1, num), spread(outside("flatstore"), 1, num))
	row("  of which the start and stop (an empty input, above null's)", "-", "-", fmt.Sprintf(num, (r.empty["flatstore"]-r.empty["null"])/n))
	row("whole above null / flush", "-", spread(ratio("file"), 1, x), spread(ratio("flatstore"), 1, x))
	fileFlush, fileAbove := medianOf(flush("file")), medianOf(above("file"))
	row("flatstore / out_file (medians)", "", "", fmt.Sprintf("flush %.3f×, above null %.3f×",
		medianOf(flush("flatstore"))/fileFlush, medianOf(above("flatstore"))/fileAbove))
	tw.Flush()
}
