package event_test

import (
	"fmt"

	"github.com/flatstore/flatstore/flatstore/event"
)

// A line written with escape backslash, read back into its fields.
func ExampleSplit() {
	opt := event.Options{Delimiter: ",", Escape: event.EscapeBackslash}
	fields, err := event.Split(opt, []byte("E_CALL,b\\,2,line\\none\n"))
	if err != nil {
		panic(err)
	}
	for _, f := range fields {
		fmt.Printf("%q\n", f)
	}
	// Output:
	// "E_CALL"
	// "b,2"
	// "line\none"
}
