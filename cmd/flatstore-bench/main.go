// Command flatstore-bench measures the flush path and prints one table:
// the Go benchmarks of flatstore's Flush against write(2) of the same bytes
// (the physical limit) and against fluent-bit-go's GetRecord over the same
// chunks; how the cost grows with records per chunk, fields, value length,
// the event key's place and flush workers; compression; then the built
// plugin end to end in the project's C host with 0, 1, 2 and 4 flush
// workers against the host's null output (medians of -e2e-runs runs), the
// host's peak memory for ten times as many records, and, given a real
// Fluent Bit (-fluent-bit or FLUENT_BIT), flatstore inside it beside the
// engine's own out_file and null outputs: CPU time over -engine-runs
// alternated runs (medians and spread), and, when valgrind is installed,
// instructions per record counted by callgrind over -engine-cg-records
// records, -engine-cg-runs runs of each output (engine.go).
//
// make bench runs it with FLATSTORE_SO and FLATSTORE_HOST set to the built
// plugin and host. Usage:
//
//	flatstore-bench [-quick] [-count N] [-benchtime D] [-records N] [-e2e-runs N] [-dir DIR] [-fluent-bit PATH]
//	                [-engine-records N] [-engine-runs N] [-engine-cg-records N] [-engine-cg-runs N] [-skip-go] [-skip-e2e]
//	flatstore-bench -against REF [-count N] [-benchtime D] [-against-bench REGEXP]
//
// -against REF compares the core's benchmarks of the working tree with those
// of the commit REF (make bench-against REF=…), in alternated runs.
//
// -quick runs short benchmarks and 100 000 / 1 000 000 records instead of
// 1 000 000 / 10 000 000. The plugin writes into a temporary directory under
// -dir (default: the system's temporary directory), which is removed.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flatstore/flatstore/internal/bench"
	"github.com/flatstore/flatstore/internal/hostout"
	"github.com/flatstore/flatstore/internal/repo"
)

func main() {
	quick := flag.Bool("quick", false, "short benchmarks and 10 times fewer records")
	count := flag.Int("count", 1, "runs of each Go benchmark (the median is shown)")
	benchtime := flag.String("benchtime", "", "go test -benchtime (default 1s, 0.2s with -quick)")
	nRecords := flag.Int("records", 0, "records end to end (default 1000000, 100000 with -quick); the memory run uses 10 times as many")
	chunk := flag.Int("chunk", 1000, "records per chunk end to end")
	e2eRuns := flag.Int("e2e-runs", 0, "end-to-end runs of each output and worker count, the median shown (default 3, 1 with -quick)")
	dir := flag.String("dir", "", "where the plugin writes (a temporary directory is made in it)")
	so := flag.String("so", os.Getenv("FLATSTORE_SO"), "the plugin .so (env FLATSTORE_SO)")
	host := flag.String("host", os.Getenv("FLATSTORE_HOST"), "the host program (env FLATSTORE_HOST)")
	skipGo := flag.Bool("skip-go", false, "skip the Go benchmarks")
	skipE2E := flag.Bool("skip-e2e", false, "skip the end-to-end runs")
	fluentBit := flag.String("fluent-bit", os.Getenv("FLUENT_BIT"), "a real Fluent Bit to measure inside (env FLUENT_BIT); none: skipped")
	engineRecords := flag.Int("engine-records", 600_000, "records through the real Fluent Bit")
	engineRuns := flag.Int("engine-runs", 5, "runs of each output in the real Fluent Bit, in turn (the median and spread are shown)")
	engineCG := flag.Int("engine-cg-records", 60_000, "records through the real Fluent Bit under callgrind (0: no instruction counts)")
	engineCGRuns := flag.Int("engine-cg-runs", 3, "runs of each output under callgrind, in turn (the median and range are shown)")
	against := flag.String("against", "", "a git commit: compare the core's benchmarks with it instead (alternated runs, -count each, default 5)")
	againstRe := flag.String("against-bench", againstBench, "the benchmarks -against runs")
	flag.Parse()
	if *against != "" {
		n := *count
		if n == 1 {
			n = 5
		}
		bt := *benchtime
		if bt == "" {
			bt = "1s"
		}
		if err := runAgainst(os.Stdout, *against, *againstRe, bt, n); err != nil {
			fatalf("%v", err)
		}
		return
	}
	if *benchtime == "" {
		*benchtime = "1s"
		if *quick {
			*benchtime = "0.2s"
		}
	}
	if *e2eRuns <= 0 {
		*e2eRuns = 3
		if *quick {
			*e2eRuns = 1
		}
	}
	if *nRecords == 0 {
		*nRecords = 1_000_000
		if *quick {
			*nRecords = 100_000
		}
	}
	if !*skipE2E && (*so == "" || *host == "") {
		fatalf("set -so and -host (or FLATSTORE_SO and FLATSTORE_HOST; make bench does)")
	}

	var res goResults
	if !*skipGo {
		var err error
		if res, err = runGoBenchmarks(*benchtime, *count); err != nil {
			fatalf("%v", err)
		}
	}
	var e2e []e2eRun
	var mem [2]e2eRun
	if !*skipE2E {
		var err error
		if e2e, mem, err = runE2E(*so, *host, *dir, *nRecords, *chunk, *e2eRuns); err != nil {
			fatalf("%v", err)
		}
	}
	printTable(os.Stdout, res, e2e, mem, *benchtime, *count, *chunk)
	if *fluentBit != "" && *so != "" {
		r, err := runEngine(*fluentBit, *so, *dir, *engineRecords, *engineRuns)
		if err != nil {
			fatalf("%v", err)
		}
		printEngine(os.Stdout, r)
		switch err := haveCallgrind(); {
		case *engineCG <= 0:
		case err != nil:
			fmt.Printf("\n(instructions not counted: %v; install valgrind to count them with callgrind)\n", err)
		default:
			cg, err := runCallgrind(*fluentBit, *so, *dir, *engineCG, *engineCGRuns)
			if err != nil {
				fatalf("%v", err)
			}
			printCallgrind(os.Stdout, cg)
		}
	} else {
		fmt.Println("\n(no real Fluent Bit given: set FLUENT_BIT=/path/to/fluent-bit to measure inside the engine, beside its own out_file)")
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "flatstore-bench: "+format+"\n", a...)
	os.Exit(1)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "flatstore-bench: "+format+"\n", a...)
}

// ---- Go benchmarks ----

// goResults maps "Flush/form=meta/records=100" to its metrics (unit → value).
type goResults map[string]map[string]float64

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func runGoBenchmarks(benchtime string, count int) (goResults, error) {
	root, err := repo.Root()
	if err != nil {
		return nil, err
	}
	args := []string{"test", "-run", "^$", "-bench", "^Benchmark(Flush|RawWrite|GetRecord|Scale|Workers|Compress|FlushWhileCompressing)$", "-benchmem",
		"-benchtime", benchtime, "-count", strconv.Itoa(count), "./flatstore/", "./internal/bench/"}
	logf("go %s", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		os.Stderr.Write(out)
		return nil, fmt.Errorf("go test: %v", err)
	}
	return parseBench(out), nil
}

// parseBench reads go test -bench output; repeated runs keep the median.
func parseBench(out []byte) goResults {
	all := map[string]map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		if all[m[1]] == nil {
			all[m[1]] = map[string][]float64{}
		}
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				all[m[1]][f[i+1]] = append(all[m[1]][f[i+1]], v)
			}
		}
	}
	res := goResults{}
	for name, units := range all {
		res[name] = map[string]float64{}
		for u, vs := range units {
			sort.Float64s(vs)
			res[name][u] = vs[len(vs)/2]
		}
	}
	return res
}

// ---- end to end ----

// buildNull compiles the null output (internal/bench/testdata/null_output.c:
// it takes every chunk and does nothing) into dir and returns the .so's
// path. Run through the same host over the same input, it is the baseline
// the end-to-end figures are measured above, as Fluent Bit's own figures are
// measured above its null output.
func buildNull(dir string) (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "internal", "bench", "testdata", "null_output.c")
	so := filepath.Join(dir, "out_null.so")
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if out, err := exec.Command(cc, "-O2", "-shared", "-fPIC", "-o", so, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the null output: %v\n%s", err, out)
	}
	return so, nil
}

type e2eRun struct {
	workers, records int
	inputBytes       int64
	wall, cpu        float64 // seconds
	flushWall        float64 // seconds spent flushing (without loading the input)
	flushCPU         float64 // the process's CPU seconds while flushing
	rssKB            int64
	nullCPU          float64 // seconds: the same run with the null output
	nullFlushCPU     float64 // seconds: flushCPU of the same run with the null output
}

// median returns the run whose flushCPU is the median of runs.
func median(runs []e2eRun) e2eRun {
	sort.Slice(runs, func(i, j int) bool { return runs[i].flushCPU < runs[j].flushCPU })
	return runs[len(runs)/2]
}

func runE2E(so, host, dir string, records, chunk, count int) ([]e2eRun, [2]e2eRun, error) {
	var mem [2]e2eRun
	tmp, err := os.MkdirTemp(dir, "flatstore-bench-")
	if err != nil {
		return nil, mem, err
	}
	defer os.RemoveAll(tmp)

	// The input: records SIP-style events, generated once.
	logf("generating %d records", records)
	in := make([]byte, 0, records*240)
	for i := 0; i < records; i += 10_000 {
		in = bench.Append(in, i, min(10_000, records-i), false)
	}
	// Every run streams the input to the host's standard input, so nothing
	// but the plugin's output lands on disk (and that is removed after each
	// run). The host reads its whole input before it flushes.
	feed := func(times int) func(io.Writer) error {
		return func(w io.Writer) error {
			for i := 0; i < times; i++ {
				if _, err := w.Write(in); err != nil {
					return err
				}
			}
			return nil
		}
	}
	null, err := buildNull(tmp)
	if err != nil {
		return nil, mem, err
	}
	var runs []e2eRun
	var outSize int64
	for _, w := range []int{0, 1, 2, 4} {
		// The plugin and the null output in turn, count times each: the
		// medians are compared.
		var rs, nrs []e2eRun
		var size int64
		for range count {
			r, sz, err := runHost(so, host, tmp, feed(1), records, chunk, w)
			if err != nil {
				return nil, mem, err
			}
			nr, _, err := runHost(null, host, tmp, feed(1), records, chunk, w)
			if err != nil {
				return nil, mem, err
			}
			rs, nrs, size = append(rs, r), append(nrs, nr), sz
		}
		r, nr := median(rs), median(nrs)
		r.nullCPU, r.nullFlushCPU = nr.cpu, nr.flushCPU
		if outSize != 0 && size != outSize {
			return nil, mem, fmt.Errorf("workers=%d wrote %d bytes, workers=0 wrote %d", w, size, outSize)
		}
		outSize = size
		r.inputBytes = int64(len(in))
		runs = append(runs, r)
	}
	mem[0] = runs[1]

	// Ten times as many records: the same bytes ten times over.
	logf("streaming %d records", 10*records)
	big, size, err := runHost(so, host, tmp, feed(10), 10*records, chunk, 1)
	if err != nil {
		return nil, mem, err
	}
	if size != 10*outSize {
		return nil, mem, fmt.Errorf("%d records wrote %d bytes, want %d", 10*records, size, 10*outSize)
	}
	big.inputBytes = 10 * int64(len(in))
	mem[1] = big
	return runs, mem, nil
}

// runHost runs the host over what feed writes to its standard input, with
// the plugin writing into a new directory in dir; it checks every record
// was written and returns the run and the size of the output, which it
// then removes. Each run has a directory of its own: every run feeds the
// same chunks, and in one directory the next process would take them, by
// its journal (docs/delivery.md), for the replay of the chunks the last
// one wrote — whose file is gone — and skip them.
func runHost(so, host, dir string, feed func(io.Writer) error, records, chunk, workers int) (e2eRun, int64, error) {
	dir, err := os.MkdirTemp(dir, "run-")
	if err != nil {
		return e2eRun{}, 0, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "events.log")
	args := []string{"-so", so, "-in", "-", "-chunk", strconv.Itoa(chunk), "-workers", strconv.Itoa(workers),
		"-tag", "sip", "-p", "path=" + out, "-p", "control_listen=off"}
	logf("%s %s", host, strings.Join(args, " "))
	cmd := exec.Command(host, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return e2eRun{}, 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return e2eRun{}, 0, err
	}
	ferr := feed(stdin)
	stdin.Close()
	if ferr != nil {
		cmd.Wait()
		return e2eRun{}, 0, fmt.Errorf("feeding the host: %v\n%s", ferr, stderr.Bytes())
	}
	if err := cmd.Wait(); err != nil {
		return e2eRun{}, 0, fmt.Errorf("host: %v\n%s", err, stderr.Bytes())
	}
	s, err := hostout.Parse(stdout.Bytes())
	if err != nil || !s.Found || len(s.Instances) != 1 {
		return e2eRun{}, 0, fmt.Errorf("host summary: %v (%q)", err, stdout.Bytes())
	}
	if got := s.Instances[0].OKRecords; got != int64(records) {
		return e2eRun{}, 0, fmt.Errorf("host wrote %d records, want %d", got, records)
	}
	run := e2eRun{workers: workers, records: records, wall: s.WallS, flushWall: s.FlushWallS, flushCPU: s.FlushCPUS, cpu: s.CPUUserS + s.CPUSysS, rssKB: s.MaxRSSKB}
	if filepath.Base(so) == "out_null.so" {
		return run, 0, nil
	}
	lines, size, err := countLines(out)
	if err != nil {
		return e2eRun{}, 0, err
	}
	if lines != int64(records) {
		return e2eRun{}, 0, fmt.Errorf("%s has %d lines, want %d", out, lines, records)
	}
	os.Remove(out)
	logf("  %d records in %.2fs (wall %s)", records, s.WallS, time.Since(start).Round(time.Millisecond))
	return run, size, nil
}

func countLines(path string) (lines, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		size += int64(n)
		if err == io.EOF {
			return lines, size, nil
		}
		if err != nil {
			return lines, size, err
		}
	}
}

// ---- the table ----

func printTable(w io.Writer, res goResults, e2e []e2eRun, mem [2]e2eRun, benchtime string, count, chunk int) {
	fmt.Fprintf(w, "flatstore benchmark — %s/%s, %d CPUs, %s; SIP-style events of %d fields, delimiter \",\", escape opensips\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), bench.Fields)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	if len(res) > 0 {
		cases := []string{}
		head := []string{fmt.Sprintf("Go benchmarks (-benchtime %s, median of %d)  form/records per chunk:", benchtime, count)}
		for _, f := range []string{"meta", "legacy"} {
			for _, n := range []int{1, 100, 10000} {
				cases = append(cases, fmt.Sprintf("form=%s/records=%d", f, n))
				head = append(head, fmt.Sprintf("%s/%d", f, n))
			}
		}
		row(head...)
		metric := func(label, bench, unit, format string) {
			cells := []string{label}
			for _, c := range cases {
				cells = append(cells, cell(res, bench+"/"+c, unit, format))
			}
			row(cells...)
		}
		ratio := func(label, num, den, unit string) {
			cells := []string{label}
			for _, c := range cases {
				a, ok1 := res[num+"/"+c][unit]
				b, ok2 := res[den+"/"+c][unit]
				if ok1 && ok2 && b > 0 {
					cells = append(cells, fmt.Sprintf("%.2f×", a/b))
				} else {
					cells = append(cells, "-")
				}
			}
			row(cells...)
		}
		metric("flatstore Flush, CPU ns/record (process)", "Flush", "cpu-ns/record", "%.0f")
		metric("flatstore Flush, wall ns/record", "Flush", "ns/record", "%.0f")
		metric("flatstore output, MB/s", "Flush", "MB/s", "%.0f")
		metric("flatstore allocs/record", "Flush", "allocs/record", "%.4f")
		metric("flatstore write(2) per flush", "Flush", "writes/flush", "%.0f")
		metric("raw write(2) of the same bytes, CPU ns/record", "RawWrite", "cpu-ns/record", "%.0f")
		metric("raw write(2) of the same bytes, wall ns/record", "RawWrite", "ns/record", "%.0f")
		ratio("flatstore / raw write (CPU)", "Flush", "RawWrite", "cpu-ns/record")
		metric("fluent-bit-go GetRecord only, CPU ns/record", "GetRecord", "cpu-ns/record", "%.0f")
		metric("fluent-bit-go GetRecord only, wall ns/record", "GetRecord", "ns/record", "%.0f")
		metric("GetRecord allocs/record", "GetRecord", "allocs/record", "%.1f")
		ratio("GetRecord / flatstore (CPU)", "GetRecord", "Flush", "cpu-ns/record")
		printScale(row, res)
	}
	if len(e2e) > 0 {
		row(fmt.Sprintf("end to end: host + .so, %d records, chunks of %d records", e2e[0].records, chunk), "workers=0", "workers=1", "workers=2", "workers=4")
		e2eRow := func(label string, f func(r e2eRun) string) {
			cells := []string{label}
			for _, r := range e2e {
				cells = append(cells, f(r))
			}
			row(cells...)
		}
		e2eRow("records/s (whole run, loading the input included)", func(r e2eRun) string { return fmt.Sprintf("%.0f", float64(r.records)/r.wall) })
		e2eRow("records/s while flushing", func(r e2eRun) string { return fmt.Sprintf("%.0f", float64(r.records)/r.flushWall) })
		e2eRow("CPU µs/record, whole process (user+sys)", func(r e2eRun) string { return fmt.Sprintf("%.3f", r.cpu/float64(r.records)*1e6) })
		e2eRow("CPU µs/record, same host with a null output", func(r e2eRun) string { return fmt.Sprintf("%.3f", r.nullCPU/float64(r.records)*1e6) })
		e2eRow("CPU µs/record above the null output", func(r e2eRun) string {
			return fmt.Sprintf("%.3f", (r.cpu-r.nullCPU)/float64(r.records)*1e6)
		})
		e2eRow("CPU µs/record while flushing (median run)", func(r e2eRun) string { return fmt.Sprintf("%.3f", r.flushCPU/float64(r.records)*1e6) })
		e2eRow("  the same with the null output", func(r e2eRun) string { return fmt.Sprintf("%.3f", r.nullFlushCPU/float64(r.records)*1e6) })
		e2eRow("  flatstore's CPU µs/record above the null output", func(r e2eRun) string {
			return fmt.Sprintf("%.3f", (r.flushCPU-r.nullFlushCPU)/float64(r.records)*1e6)
		})
		e2eRow("peak RSS, MB", func(r e2eRun) string { return fmt.Sprintf("%.0f", float64(r.rssKB)/1024) })
		row("memory (workers=1; the host holds its whole input, streamed to it)", fmtCount(mem[0].records), fmtCount(mem[1].records))
		row("peak RSS, MB", fmt.Sprintf("%.0f", float64(mem[0].rssKB)/1024), fmt.Sprintf("%.0f", float64(mem[1].rssKB)/1024))
		row("input held by the host, MB", fmt.Sprintf("%.0f", float64(mem[0].inputBytes)/(1<<20)), fmt.Sprintf("%.0f", float64(mem[1].inputBytes)/(1<<20)))
		row("peak RSS − input, MB", fmt.Sprintf("%.0f", float64(mem[0].rssKB)/1024-float64(mem[0].inputBytes)/(1<<20)),
			fmt.Sprintf("%.0f", float64(mem[1].rssKB)/1024-float64(mem[1].inputBytes)/(1<<20)))
		row("CPU µs/record", fmt.Sprintf("%.3f", mem[0].cpu/float64(mem[0].records)*1e6), fmt.Sprintf("%.3f", mem[1].cpu/float64(mem[1].records)*1e6))
	}
	tw.Flush()
}

// scaleRows are BenchmarkScale's cases, in the order shown.
var scaleRows = []string{
	"records=1", "records=10", "records=100", "records=1000", "records=10000",
	"fields=1", "fields=10", "fields=100",
	"value=8B", "value=256B", "value=4KiB", "value=64KiB",
	"event=first", "event=last", "event=absent",
}

// printScale prints how the cost grows with the work (BenchmarkScale),
// with the flush workers (BenchmarkWorkers) and what compression costs
// (BenchmarkCompress, BenchmarkFlushWhileCompressing).
func printScale(row func(...string), res goResults) {
	if _, ok := res["Scale/records=1"]; ok {
		row("how the cost grows (one flush per chunk; ×raw: over write(2) of the same bytes, same run)",
			"records/s", "MB/s", "ns/record", "allocs/record", "×raw")
		for _, c := range scaleRows {
			r, ok := res["Scale/"+c]
			if !ok {
				continue
			}
			row("  "+c, fmt.Sprintf("%.0f", 1e9/r["ns/record"]), fmt.Sprintf("%.0f", r["MB/s"]),
				fmt.Sprintf("%.0f", r["ns/record"]), fmt.Sprintf("%.4f", r["allocs/record"]), fmt.Sprintf("%.2f×", r["x-raw"]))
		}
	}
	if w1, ok := res["Workers/file=shared/workers=1"]; ok {
		row("flush workers (chunks of 1000 SIP events)", "records/s", "wall ns/record", "CPU ns/record", "speed-up over 1")
		for _, f := range []string{"shared", "own"} {
			base := w1
			if f == "own" {
				base = res["Workers/file=own/workers=1"]
			}
			for _, w := range []string{"1", "2"} {
				r := res["Workers/file="+f+"/workers="+w]
				row(fmt.Sprintf("  %s file, workers=%s", f, w), fmt.Sprintf("%.0f", 1e9/r["ns/record"]),
					fmt.Sprintf("%.0f", r["ns/record"]), fmt.Sprintf("%.0f", r["cpu-ns/record"]),
					fmt.Sprintf("%.2f×", base["ns/record"]/r["ns/record"]))
			}
		}
	}
	if _, ok := res["Compress/algo=gzip"]; ok {
		row("compression after rotation (16 MiB of lines)", "input MB/s", "ratio")
		for _, a := range []string{"gzip", "zstd"} {
			r := res["Compress/algo="+a]
			row("  "+a, fmt.Sprintf("%.0f", r["MB/s"]), fmt.Sprintf("%.1f", r["ratio"]))
		}
	}
	if c, ok := res["FlushWhileCompressing"]; ok {
		f := res["Flush/form=meta/records=10000"]
		row("flush of 10 000 records while gzip runs beside it", "wall ns/record", "CPU ns/record", "wall vs alone")
		row("  flatstore Flush", fmt.Sprintf("%.0f", c["ns/record"]), fmt.Sprintf("%.0f", c["cpu-ns/record"]),
			fmt.Sprintf("%.2f×", c["ns/record"]/f["ns/record"]))
	}
}

func cell(res goResults, name, unit, format string) string {
	v, ok := res[name][unit]
	if !ok {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func fmtCount(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM records", n/1_000_000)
	case n%1_000 == 0:
		return fmt.Sprintf("%dk records", n/1_000)
	}
	return fmt.Sprintf("%d records", n)
}
