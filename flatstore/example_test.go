package flatstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/records"
)

// An output from its keys, one chunk of two records, and the file it wrote.
func Example() {
	dir, err := os.MkdirTemp("", "flatstore-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "events.log")

	cfg, err := flatstore.ParseConfig(flatstore.MapGetter{
		"path":           path,
		"params":         "callid,code",
		"control_listen": "off",
	})
	if err != nil {
		panic(err)
	}
	in, err := flatstore.NewInstance(flatstore.NewProcess(), cfg, "sip",
		logger.New("sip", logger.NewWriterSink(os.Stderr, logger.LevelWarn)))
	if err != nil {
		panic(err)
	}
	chunk := records.Records(
		records.Record{Time: time.Unix(1700000000, 0), Body: records.KV{"event", "E_CALL", "callid", "a1", "code", 200}},
		records.Record{Time: time.Unix(1700000001, 0), Body: records.KV{"event", "E_CALL", "callid", "b,2", "code", 486}},
	)
	fmt.Println(in.Flush(chunk, "opensips"))
	in.Close()

	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(b))
	// Output:
	// OK
	// E_CALL,a1,200
	// E_CALL,b 2,486
}
