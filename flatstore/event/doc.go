// Package event turns Fluent Bit records into OpenSIPS event_flatstore
// lines, and lines back into fields. It does no I/O and imports nothing of
// the project but the strftime grammar (package strftime): the output (package flatstore) feeds it chunks, and
// flatstore-ctl read uses Split.
//
// # Records to lines
//
// A Decoder walks a flush buffer — msgpack records [time, body] or
// [[time, metadata], body], group markers between them — in place, handing
// out sub-slices. An Encoder appends the line of one record to a buffer the
// caller owns: the event name (the body's event_key value, else the tag),
// the record time when time_format asks for it, then the parameters (every
// key but the event key, in record order; the params keys in their order;
// or the values under params_key), joined by the delimiter and escaped by
// the escape mode, maps and arrays as compact JSON. Options holds the keys
// that shape a line; Options.Check refuses the combinations whose lines
// could not be read back. Short values are copied eight bytes at a time:
// the encoder reads up to seven bytes past a value within the capacity of
// the buffer it was handed, and may write up to seven bytes past the
// line's end within the capacity of the caller's buffer, as spare room.
//
// # Bounds
//
// MaxDepth bounds nesting and MaxLineBytes a line, both while the line
// grows; a Budget bounds the lines of one chunk together (budget.go says
// how). A record past a bound is skipped with a DropError naming its
// reason (DropReasons); ErrTruncated means the chunk cannot be walked on.
//
// # Lines to fields
//
// Split and SplitFunc read a line back into its fields. With escape
// backslash or csv this is exact (Split(Encode(x)) == x); with the other
// modes it splits on the delimiter, which a value may have held. Columns
// names the fields, and HeaderLine renders header auto.
//
// # Path templates
//
// Template renders a path from the tag, the event name and record values
// ($TAG, $TAG[n], $EVENT, $key, $key['sub']), each value made safe as one
// path component, and from the record's time (strftime conversions such as
// %Y-%m-%d, in the template's time zone).
package event
