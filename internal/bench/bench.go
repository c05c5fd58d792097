// Package bench makes the realistic input the project's benchmarks share: a
// stream of SIP-style events of ten fields each, as Fluent Bit hands them to
// an output plugin. The flatstore benchmarks (flatstore/bench_test.go), the
// fluent-bit-go baseline (this package's tests) and cmd/flatstore-bench all
// walk the very same bytes. ParsedChunk holds the same events as Fluent Bit
// 5.1 hands them over after parsing them from JSON (BenchmarkFlush
// form=parsed, the shape of cmd/flatstore-bench's engine comparison).
package bench

import (
	"strconv"
	"time"

	"github.com/flatstore/flatstore/internal/records"
)

// Fields is the number of keys in every event body (the event name included).
const Fields = 10

var (
	methods = []string{"INVITE", "ACK", "BYE", "REGISTER", "OPTIONS", "CANCEL"}
	codes   = []int{100, 180, 200, 200, 200, 404, 486, 487}
	// Every reason holds the default delimiter: one value per line that the
	// escape has to rewrite.
	reasons = []string{"Trying, please wait", "Ringing, early media", "OK, answered", "OK, registered",
		"OK, alive", "Not Found, user unknown", "Busy Here, retry later", "Request Terminated, by caller"}
	base = time.Unix(1_700_000_000, 0)
)

// Event returns the i-th event: short strings, integers, and one value (the
// reason) that contains a comma.
func Event(i int, legacy bool) records.Record {
	m := methods[i%len(methods)]
	c := i % len(codes)
	n := strconv.Itoa(i)
	return records.Record{
		Time:   base.Add(time.Duration(i) * time.Millisecond),
		Legacy: legacy,
		Body: records.KV{
			"event", "E_SIP_" + m,
			"method", m,
			"call_id", n + "-a84b4c76e667@pc33.example.com",
			"from", "sip:alice" + strconv.Itoa(i%500) + "@atlanta.example.com",
			"to", "sip:bob@biloxi.example.org",
			"src_ip", "192.0.2." + strconv.Itoa(1+i%250),
			"src_port", 5060 + i%16,
			"code", codes[c],
			"reason", reasons[c],
			"duration_ms", (i * 7919) % 600_000,
		},
	}
}

// Append appends events from, from+1, … from+n-1 to dst.
func Append(dst []byte, from, n int, legacy bool) []byte {
	for i := from; i < from+n; i++ {
		dst = records.AppendRecord(dst, Event(i, legacy))
	}
	return dst
}

// Chunk returns a flush buffer of n events.
func Chunk(n int, legacy bool) []byte { return Append(nil, 0, n, legacy) }

// Parsed returns the i-th event as Fluent Bit hands it on after its tail
// input read it as a JSON line (cmd/flatstore-bench's engine comparison):
// its JSON parser packs a non-negative integer in the smallest unsigned
// form (0xcc, 0xcd, 0xce), where Event's Go ints are packed signed (0xd1,
// 0xd2). ParsedChunk adds the rest of that shape.
func Parsed(i int) records.Record {
	r := Event(i, false)
	kv := r.Body.(records.KV)
	for j := 1; j < len(kv); j += 2 {
		if v, ok := kv[j].(int); ok && v >= 0 {
			kv[j] = uint64(v)
		}
	}
	return r
}

// ParsedChunk returns a flush buffer of n events as Fluent Bit 5.1's log
// event encoder writes them (seen in its out_file's msgpack format):
// [[event time, {}], body], the metadata and the body each under a map32
// header (0xdf), whose count the encoder patches in after the fact.
func ParsedChunk(n int) []byte {
	var dst []byte
	for i := 0; i < n; i++ {
		r := Parsed(i)
		kv := r.Body.(records.KV)
		dst = append(dst, 0x92, 0x92)
		dst = records.AppendTimeValue(dst, r.Time, records.EventTime)
		dst = append(dst, 0xdf, 0, 0, 0, 0, 0xdf, 0, 0, 0, byte(len(kv)/2))
		for _, v := range kv {
			dst = records.AppendValue(dst, v)
		}
	}
	return dst
}
