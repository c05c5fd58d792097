package flatstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/event"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/bench"
	"github.com/flatstore/flatstore/internal/records"
)

// The benchmarks of the flush path over SIP-style events of ten fields
// (package bench), in both record forms and in chunks of 1, 100 and 10 000
// records. Each reports ns/record (wall), cpu-ns/record (the process's CPU
// time, steadier on a shared machine), allocs/record and writes/flush besides
// the usual figures; b.SetBytes is the output written, so MB/s is output.
// BenchmarkRawWrite is the physical limit: write(2) of the very bytes
// Flush writes, in the same chunking, to a file in the same directory.
// cmd/flatstore-bench runs them and prints the table.

var benchForms = []struct {
	name  string
	chunk func(n int) []byte
}{
	{"meta", func(n int) []byte { return bench.Chunk(n, false) }},
	{"legacy", func(n int) []byte { return bench.Chunk(n, true) }},
	// The records as the engine comparison's Fluent Bit hands them over
	// (cmd/flatstore-bench, engine.go): its JSON parser packs the integers
	// unsigned.
	{"parsed", bench.ParsedChunk},
}

var benchSizes = []int{1, 100, 10_000}

// truncateEvery bounds the benchmark files: past it, the file is emptied
// with the timer stopped, so a long run measures the page cache, not the
// disk filling up (make bench measures the disk end to end).
const truncateEvery = 256 << 20

// countWrites returns system calls that count their write(2) calls.
func countWrites() (*filestore.Sys, *atomic.Int64) {
	var n atomic.Int64
	ops := *filestore.RealSys()
	write := ops.Write
	ops.Write = func(fd int, b []byte) (int, error) {
		n.Add(1)
		return write(fd, b)
	}
	return &ops, &n
}

// benchInstance returns an instance writing dir/name with the default
// settings (delimiter ",", escape opensips) and its write counter.
func benchInstance(tb testing.TB, dir, name string) (*Instance, *atomic.Int64) {
	tb.Helper()
	cfg, err := ParseConfig(MapGetter{"path": filepath.Join(dir, name)})
	if err != nil {
		tb.Fatal(err)
	}
	sys, writes := countWrites()
	in, err := NewInstance(newProcess(filestore.Env{Sys: sys}), cfg, "bench", logger.New("bench", logger.NewWriterSink(io.Discard, logger.LevelDebug)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(in.Close)
	return in, writes
}

// formatted returns what one Flush of chunk writes.
func formatted(tb testing.TB, chunk []byte) []byte {
	tb.Helper()
	dir := tb.TempDir()
	in, _ := benchInstance(tb, dir, "scratch.log")
	if r := in.Flush(chunk, "sip"); r != OK {
		tb.Fatalf("Flush = %v", r)
	}
	out, err := os.ReadFile(filepath.Join(dir, "scratch.log"))
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// meter takes the figures a benchmark reports per record: call start just
// before b.ResetTimer and stop just after the loop.
type meter struct {
	mem runtime.MemStats
	cpu time.Duration
}

// cpuTime is the CPU time of the whole process (user and system, every
// thread, the garbage collector included). Unlike ns/record it barely moves
// when other processes compete for the cores.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *meter) start() {
	runtime.ReadMemStats(&m.mem)
	m.cpu = cpuTime()
}

// stop reports ns/record (wall), cpu-ns/record, allocs/record and
// writes/flush.
func (m *meter) stop(b *testing.B, records int, writes int64) {
	cpu := cpuTime() - m.cpu
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	total := float64(b.N) * float64(records)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/record")
	b.ReportMetric(float64(after.Mallocs-m.mem.Mallocs)/total, "allocs/record")
	if writes >= 0 {
		b.ReportMetric(float64(writes)/float64(b.N), "writes/flush")
	}
}

// flushN flushes chunk b.N times into in, whose file is path; out is what
// one flush writes. Past truncateEvery bytes the file is emptied with the
// timer stopped.
func flushN(b *testing.B, in *Instance, chunk, out []byte, path string) {
	written := 0
	for i := 0; i < b.N; i++ {
		if r := in.Flush(chunk, "sip"); r != OK {
			b.Fatalf("Flush = %v", r)
		}
		if written += len(out); written > truncateEvery {
			b.StopTimer()
			if err := os.Truncate(path, 0); err != nil {
				b.Fatal(err)
			}
			written = 0
			b.StartTimer()
		}
	}
}

func BenchmarkFlush(b *testing.B) {
	for _, form := range benchForms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("form=%s/records=%d", form.name, n), func(b *testing.B) {
				chunk := form.chunk(n)
				out := formatted(b, chunk)
				dir := b.TempDir()
				in, writes := benchInstance(b, dir, "events.log")
				path := filepath.Join(dir, "events.log")
				b.SetBytes(int64(len(out)))
				var m meter
				m.start()
				w0 := writes.Load()
				b.ResetTimer()
				flushN(b, in, chunk, out, path)
				b.StopTimer()
				m.stop(b, n, writes.Load()-w0)
			})
		}
	}
}

func BenchmarkRawWrite(b *testing.B) {
	for _, form := range benchForms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("form=%s/records=%d", form.name, n), func(b *testing.B) {
				out := formatted(b, form.chunk(n))
				path := filepath.Join(b.TempDir(), "raw.log")
				fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Close(fd)
				b.SetBytes(int64(len(out)))
				var m meter
				m.start()
				written := 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := unix.Write(fd, out); err != nil {
						b.Fatal(err)
					}
					if written += len(out); written > truncateEvery {
						b.StopTimer()
						if err := unix.Ftruncate(fd, 0); err != nil {
							b.Fatal(err)
						}
						written = 0
						b.StartTimer()
					}
				}
				b.StopTimer()
				m.stop(b, n, int64(b.N))
			})
		}
	}
}

// BenchmarkAppendLine is the encoder alone (decoder and encoder, no file),
// the part of the flush path that costs per record.
func BenchmarkAppendLine(b *testing.B) {
	cfg, err := ParseConfig(MapGetter{"path": filepath.Join(b.TempDir(), "e.log")})
	if err != nil {
		b.Fatal(err)
	}
	const n = 10_000
	chunk := bench.Chunk(n, false)
	enc := event.NewEncoder(cfg.Options)
	var dst []byte
	tag := []byte("sip")
	b.SetBytes(int64(len(formatted(b, chunk))))
	var m meter
	m.start()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dec := event.NewDecoder(chunk)
		dst = dst[:0]
		for {
			st, t, body, _ := dec.Next()
			if st == event.StatusEnd {
				break
			}
			if st != event.StatusRecord {
				b.Fatalf("record status %d", st)
			}
			var rest []byte
			if dst, rest, _, err = enc.AppendLine(dst, t, body, tag); err != nil {
				b.Fatal(err)
			}
			dec.Advance(rest)
		}
	}
	b.StopTimer()
	m.stop(b, n, -1)
}

// ---- How cost grows with the work ----

// scaleCase is one row of BenchmarkScale: a chunk and its record count.
type scaleCase struct {
	name    string
	chunk   []byte
	records int
}

// shapedChunk returns n records made by body(i), each with the event key.
func shapedChunk(n int, body func(i int) records.KV) []byte {
	var chunk []byte
	for i := 0; i < n; i++ {
		chunk = records.AppendRecord(chunk, records.Record{Time: time.Unix(1_700_000_000, int64(i)*1e6), Body: body(i)})
	}
	return chunk
}

func scaleCases() []scaleCase {
	var cases []scaleCase
	for _, n := range []int{1, 10, 100, 1000, 10_000} {
		cases = append(cases, scaleCase{fmt.Sprintf("records=%d", n), bench.Chunk(n, false), n})
	}
	// Fields: the event key and f-1 parameters, short strings and
	// integers in turn.
	for _, f := range []int{1, 10, 100} {
		chunk := shapedChunk(1000, func(i int) records.KV {
			kv := records.KV{"event", "E_FIELDS"}
			for j := 1; j < f; j++ {
				if j%2 == 1 {
					kv = append(kv, fmt.Sprintf("k%02d", j), fmt.Sprintf("value-%d-%d", i, j))
				} else {
					kv = append(kv, fmt.Sprintf("k%02d", j), i*j)
				}
			}
			return kv
		})
		cases = append(cases, scaleCase{fmt.Sprintf("fields=%d", f), chunk, 1000})
	}
	// Value length: one parameter of v bytes, a comma every 64 (the
	// escape's work grows with it); chunks of about 1 MiB.
	for _, v := range []int{8, 256, 4 << 10, 64 << 10} {
		val := []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", v/36+1)[:v])
		for i := 63; i < v; i += 64 {
			val[i] = ','
		}
		n := max(16, (1<<20)/v)
		chunk := shapedChunk(n, func(int) records.KV { return records.KV{"event", "E_VALUE", "v", string(val)} })
		cases = append(cases, scaleCase{fmt.Sprintf("value=%s", sizeName(v)), chunk, n})
	}
	// Where the event key is: first (the SIP events), last, or absent
	// (the tag names the event).
	for _, where := range []string{"first", "last", "absent"} {
		chunk := shapedChunk(1000, func(i int) records.KV {
			kv := bench.Event(i, false).Body.(records.KV)
			switch where {
			case "last":
				kv = append(append(records.KV{}, kv[2:]...), kv[0], kv[1])
			case "absent":
				kv = kv[2:]
			}
			return kv
		})
		cases = append(cases, scaleCase{"event=" + where, chunk, 1000})
	}
	return cases
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkScale shows how the cost of a flush grows with records per
// chunk, fields per record, value length and where the event key is. Each
// row reports, besides the usual figures, x-raw: the flush's time over
// write(2) of the very bytes it wrote, timed in the same run right after.
func BenchmarkScale(b *testing.B) {
	for _, c := range scaleCases() {
		b.Run(c.name, func(b *testing.B) {
			out := formatted(b, c.chunk)
			dir := b.TempDir()
			in, _ := benchInstance(b, dir, "events.log")
			path := filepath.Join(dir, "events.log")
			b.SetBytes(int64(len(out)))
			var m meter
			m.start()
			b.ResetTimer()
			flushN(b, in, c.chunk, out, path)
			b.StopTimer()
			m.stop(b, c.records, -1)
			flush := b.Elapsed()
			raw := rawWrite(b, filepath.Join(dir, "raw.log"), out, b.N)
			b.ReportMetric(float64(flush)/float64(raw), "x-raw")
		})
	}
}

// rawWrite times n write(2) calls of out to a new file at path (emptied,
// untimed, every truncateEvery bytes).
func rawWrite(tb testing.TB, path string, out []byte, n int) time.Duration {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(fd)
	var took time.Duration
	written := 0
	for i := 0; i < n; {
		t0 := time.Now()
		for ; i < n && written <= truncateEvery; i++ {
			if _, err := unix.Write(fd, out); err != nil {
				tb.Fatal(err)
			}
			written += len(out)
		}
		took += time.Since(t0)
		if err := unix.Ftruncate(fd, 0); err != nil {
			tb.Fatal(err)
		}
		written = 0
	}
	return max(took, 1)
}

// BenchmarkWorkers flushes chunks of 1000 SIP events from 1 or 2
// goroutines at once, as Fluent Bit's flush workers do: through one output
// into its file (the file's lock serializes the writes; the renders run in
// parallel) or through an output and a file each. ns/record is wall time over all the records, so
// perfect scaling halves it from workers=1 to workers=2.
func BenchmarkWorkers(b *testing.B) {
	chunk := bench.Chunk(1000, false)
	for _, files := range []string{"shared", "own"} {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("file=%s/workers=%d", files, w), func(b *testing.B) {
				dir := b.TempDir()
				// Shared: one output, its flushes on both workers (as Fluent
				// Bit's workers call one instance). Own: an output each.
				ins := make([]*Instance, w)
				for i := range ins {
					if files == "shared" && i > 0 {
						ins[i] = ins[0]
						continue
					}
					ins[i], _ = benchInstance(b, dir, fmt.Sprintf("events-%d.log", i))
				}
				b.SetBytes(int64(len(formatted(b, chunk))))
				var m meter
				m.start()
				b.ResetTimer()
				var wg sync.WaitGroup
				var failed atomic.Bool
				for i := range w {
					n := b.N / w
					if i < b.N%w {
						n++
					}
					wg.Go(func() {
						for range n {
							if ins[i].Flush(chunk, "sip") != OK {
								failed.Store(true)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				if failed.Load() {
					b.Fatal("a flush failed")
				}
				m.stop(b, 1000, -1)
			})
		}
	}
}

// BenchmarkCompress compresses 16 MiB of event lines as the archiver does
// after a rotation (compressFile: tmp file, fsync, rename); MB/s is input.
func BenchmarkCompress(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "events.log")
	one := formatted(b, bench.Chunk(10_000, false))
	var data []byte
	for len(data) < 16<<20 {
		data = append(data, one...)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, algo := range []string{filestore.CompressGzip, filestore.CompressZstd} {
		b.Run("algo="+algo, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var st unix.Stat_t
			for i := 0; i < b.N; i++ {
				dst := filepath.Join(dir, fmt.Sprintf("events.%d%s", i, filestore.CompressedExt(algo)))
				var err error
				if st, err = filestore.CompressFile(src, dst, algo, 0o644); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.Remove(dst)
				b.StartTimer()
			}
			b.ReportMetric(float64(len(data))/float64(st.Size), "ratio")
		})
	}
}

// BenchmarkFlushWhileCompressing is Flush of 10 000 SIP events while the
// archiver compresses (gzip, at its low priority) without pause beside it:
// against BenchmarkFlush, what compress costs the flushes.
func BenchmarkFlushWhileCompressing(b *testing.B) {
	dir := b.TempDir()
	chunk := bench.Chunk(10_000, false)
	out := formatted(b, chunk)
	src := filepath.Join(dir, "rotated.log")
	var data []byte
	for len(data) < 16<<20 {
		data = append(data, out...)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	arch := filestore.NewArchiver()
	stop := make(chan struct{})
	var loop func()
	loop = func() {
		select {
		case <-stop:
			return
		default:
		}
		dst := filepath.Join(dir, "rotated.log.gz")
		if _, err := filestore.CompressFile(src, dst, filestore.CompressGzip, 0o644); err == nil {
			os.Remove(dst)
		}
		arch.Enqueue(loop)
	}
	arch.Enqueue(loop)
	defer func() { close(stop); arch.Drain() }()

	in, _ := benchInstance(b, dir, "events.log")
	path := filepath.Join(dir, "events.log")
	b.SetBytes(int64(len(out)))
	var m meter
	m.start()
	b.ResetTimer()
	flushN(b, in, chunk, out, path)
	b.StopTimer()
	m.stop(b, 10_000, -1)
}
