package event

// The memory of one flush is bounded by the chunk it renders, whatever its
// records hold. MaxLineBytes bounds each line; the budget bounds the lines
// of a flush together: the lines kept up to any record are at most
// budgetFactor bytes per byte of the chunk up to the end of that record,
// plus budgetSlack. A record whose line does not fit is skipped (reason
// too_large) and costs nothing; the records after it are rendered as
// usual. So a record whose line is at most budgetFactor times its own
// msgpack (any string value, whatever escape backslash or csv makes of it)
// is never skipped for the budget, however the records before it grew;
// only what renders larger than that (JSON of many small values, control
// bytes inside a map used as a key: up to nine bytes a byte) draws on the
// slack, and once that is spent it is skipped.
//
// While a line grows the encoder never takes room past what is left of the
// whole chunk's budget (and with a path rendered per record, whose line is
// rendered aside and then copied into its file's buffer, past half of it),
// so a flush holds at most budgetFactor×chunk + budgetSlack bytes of lines,
// whichever record is refused, and the encoder's own scratch is a constant
// (the values' side buffer, about bigValue).
const (
	// budgetFactor is twice the chunk: every value doubled by escape
	// backslash, or quoted with its quotes doubled by csv.
	budgetFactor = 2
	// budgetSlack is what a chunk may render beyond that: the event name
	// and record time of small records, the JSON of maps and arrays. For a
	// chunk of Fluent Bit's usual 2 MiB it allows six times the chunk.
	budgetSlack = 8 << 20
)

// Budget follows the lines one flush keeps against its chunk.
type Budget struct {
	chunk int // bytes of the chunk
	used  int // bytes of the lines kept
}

// NewBudget returns the budget of a chunk of chunk bytes.
func NewBudget(chunk int) Budget { return Budget{chunk: chunk} }

// Room is the longest line the next record may render: what is left of
// the chunk's budget, half of it when the line is rendered aside.
func (b *Budget) Room(aside bool) int {
	left := budgetFactor*b.chunk + budgetSlack - b.used
	if aside {
		left /= 2
	}
	return max(left, 0)
}

// Keep reports whether a line of n bytes, for the record that ends end
// bytes into the chunk, fits what the chunk up to there allows, and counts
// it when it does.
func (b *Budget) Keep(n, end int) bool {
	if b.used+n > budgetFactor*end+budgetSlack {
		return false
	}
	b.used += n
	return true
}
