package event

// The reasons a record is skipped, as the drop counters and the warnings
// name them. A record that cannot become a line costs nothing but its
// count: the records around it are written as usual.
const (
	DropNotRecord = "not_record"   // not [time, body] / [[time, meta], body]
	DropBadTime   = "bad_time"     // time is not ext 0, an integer or a float
	DropNotMap    = "body_not_map" // body is not a map
	DropTruncated = "truncated"    // the buffer ends inside a record
	DropTooDeep   = "too_deep"     // nesting deeper than MaxDepth
	DropTooLarge  = "too_large"    // one line longer than MaxLineBytes, or past the chunk's budget
)

// DropReasons lists every reason a record of a chunk can be skipped for.
func DropReasons() []string {
	return []string{DropNotRecord, DropBadTime, DropNotMap, DropTruncated, DropTooDeep, DropTooLarge}
}

// DropError is a record-level problem: the record is skipped and counted
// under its reason (the string), the rest of the chunk goes on — except
// after ErrTruncated, past which the chunk cannot be walked.
type DropError string

func (e DropError) Error() string { return "record skipped: " + string(e) }

// The errors AppendLine returns.
const (
	ErrTruncated = DropError(DropTruncated)
	ErrTooDeep   = DropError(DropTooDeep)
	ErrTooLarge  = DropError(DropTooLarge)
)
