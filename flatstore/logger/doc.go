// Package logger is how every layer of flatstore logs: a Logger per output
// that prefixes its messages as Fluent Bit's own plugins do
// ([output:flatstore:NAME]), prints through a Sink (the engine's logger in
// the plugin, a WriterSink elsewhere), and rate-limits what a stream of
// records could repeat (Limitedf: one message per key every LimitEvery).
// The vocabularies of what is logged — drop reasons, rotation reasons,
// retry causes — live with the code that produces them, not here.
package logger
