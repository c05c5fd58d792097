package flatstore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/flatstore/flatstore/internal/bench"
)

// BenchmarkFlushTemplate is BenchmarkFlush through a template of the tag
// and event name, and through the same with a date in it (%F, the
// record's own day): what the strftime conversions cost per record.
func BenchmarkFlushTemplate(b *testing.B) {
	for _, c := range []struct{ name, path string }{{"tag", "$TAG-$EVENT.log"}, {"date", "%F-$TAG-$EVENT.log"}} {
		path := c.path
		for _, n := range benchSizes {
			// The name is the test's, and so of its temporary directory:
			// no '$' or '%' in it.
			b.Run(fmt.Sprintf("path=%s/records=%d", c.name, n), func(b *testing.B) {
				chunk := bench.Chunk(n, false)
				dir := b.TempDir()
				in, _ := benchInstance(b, dir, path)
				if r := in.Flush(chunk, "sip"); r != OK {
					b.Fatalf("Flush = %v", r)
				}
				files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
				var size int64
				for _, f := range files {
					if fi, err := os.Stat(f); err == nil {
						size += fi.Size()
					}
				}
				b.SetBytes(size)
				b.ResetTimer()
				written := int64(0)
				for i := 0; i < b.N; i++ {
					if r := in.Flush(chunk, "sip"); r != OK {
						b.Fatalf("Flush = %v", r)
					}
					if written += size; written > truncateEvery {
						b.StopTimer()
						for _, f := range files {
							if err := os.Truncate(f, 0); err != nil {
								b.Fatal(err)
							}
						}
						written = 0
						b.StartTimer()
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
			})
		}
	}
}
