package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"
	"golang.org/x/sys/unix"
)

// cpuTime is the CPU time of the whole process, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGetRecord is the baseline of a plugin written the usual way with
// fluent-bit-go: output.NewDecoder over the chunk, then output.GetRecord
// until it reports the end, over the same chunks as flatstore's
// BenchmarkFlush. It only decodes — it formats and writes nothing — so
// comparing it with BenchmarkFlush flatters it.
//
// It lives here, not in plugin/ (package main, the //export functions),
// because fluent-bit-go's output package needs cgo but its callers do not:
// a test outside plugin/ keeps the plugin's test binary free of
// benchmarks and still compiles fluent-bit-go with cgo exactly as the
// plugin does.
func BenchmarkGetRecord(b *testing.B) {
	for _, form := range []struct {
		name   string
		legacy bool
	}{{"meta", false}, {"legacy", true}} {
		for _, n := range []int{1, 100, 10_000} {
			b.Run(fmt.Sprintf("form=%s/records=%d", form.name, n), func(b *testing.B) {
				chunk := Chunk(n, form.legacy)
				b.SetBytes(int64(len(chunk))) // input bytes: this baseline writes nothing
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					dec := output.NewDecoder(unsafe.Pointer(&chunk[0]), len(chunk))
					got := 0
					for {
						ret, _, rec := output.GetRecord(dec)
						if ret != 0 {
							break
						}
						if len(rec) != Fields {
							b.Fatalf("record %d has %d fields, want %d", got, len(rec), Fields)
						}
						got++
					}
					if got != n {
						b.Fatalf("decoded %d records, want %d", got, n)
					}
				}
				b.StopTimer()
				cpu := cpuTime() - cpu0
				runtime.ReadMemStats(&after)
				total := float64(b.N) * float64(n)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/record")
				b.ReportMetric(float64(cpu.Nanoseconds())/total, "cpu-ns/record")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/record")
			})
		}
	}
}
