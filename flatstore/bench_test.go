package flatstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/internal/bench"
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
	name   string
	legacy bool
}{{"meta", false}, {"legacy", true}}

var benchSizes = []int{1, 100, 10_000}

// truncateEvery bounds the benchmark files: past it, the file is emptied
// with the timer stopped, so a long run measures the page cache, not the
// disk filling up (make bench measures the disk end to end).
const truncateEvery = 256 << 20

// countWrites makes f count its write(2) calls. Call it before f is first
// written.
func countWrites(f *File) *atomic.Int64 {
	var n atomic.Int64
	ops := *f.sys
	write := ops.write
	ops.write = func(fd int, b []byte) (int, error) {
		n.Add(1)
		return write(fd, b)
	}
	f.sys, f.open.sys = &ops, &ops
	return &n
}

// benchInstance returns an instance writing dir/name with the default
// settings (delimiter ",", escape opensips) and its write counter.
func benchInstance(tb testing.TB, dir, name string) (*Instance, *atomic.Int64) {
	tb.Helper()
	cfg, err := ParseConfig(MapGetter{"path": filepath.Join(dir, name)})
	if err != nil {
		tb.Fatal(err)
	}
	in, err := NewInstance(NewProcess(), cfg, "bench", NewLogger("bench", NewWriterSink(io.Discard, LevelDebug)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(in.Close)
	return in, countWrites(in.static)
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

func BenchmarkFlush(b *testing.B) {
	for _, form := range benchForms {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("form=%s/records=%d", form.name, n), func(b *testing.B) {
				chunk := bench.Chunk(n, form.legacy)
				out := formatted(b, chunk)
				dir := b.TempDir()
				in, writes := benchInstance(b, dir, "events.log")
				path := filepath.Join(dir, "events.log")
				b.SetBytes(int64(len(out)))
				var m meter
				m.start()
				w0, written := writes.Load(), 0
				b.ResetTimer()
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
				out := formatted(b, bench.Chunk(n, form.legacy))
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
	enc := NewEncoder(cfg)
	var dst []byte
	tag := []byte("sip")
	b.SetBytes(int64(len(formatted(b, chunk))))
	var m meter
	m.start()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dec := decoder{buf: chunk}
		dst = dst[:0]
		for {
			st, t, body, _ := dec.next()
			if st == recEnd {
				break
			}
			if st != recOK {
				b.Fatalf("record status %d", st)
			}
			var rest []byte
			if dst, rest, _, err = enc.AppendLine(dst, t, body, tag); err != nil {
				b.Fatal(err)
			}
			dec.advance(rest)
		}
	}
	b.StopTimer()
	m.stop(b, n, -1)
}
