package logger

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Level is a log level, numbered as Fluent Bit numbers them (FLB_LOG_ERROR
// is 1 … FLB_LOG_TRACE is 5), so that a Sink backed by Fluent Bit's logger
// passes it on unchanged.
type Level int

// The levels flatstore logs at.
const (
	LevelError Level = 1
	LevelWarn  Level = 2
	LevelInfo  Level = 3
	LevelDebug Level = 4
)

func (l Level) String() string {
	switch l {
	case LevelError:
		return "error"
	case LevelWarn:
		return "warn"
	case LevelInfo:
		return "info"
	case LevelDebug:
		return "debug"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// A Sink receives whole log messages. Inside Fluent Bit it is the engine's
// own logger (package plugin), so the engine's log level, log file and -q
// apply; elsewhere it is a WriterSink.
type Sink interface {
	// Enabled reports whether a message at level would be printed; the
	// Logger formats nothing otherwise.
	Enabled(level Level) bool
	// Print prints one message (no trailing newline).
	Print(level Level, msg string)
}

// WriterSink prints Fluent Bit style lines, with milliseconds, to a writer:
//
//	[2026/12/01 10:00:00.123] [ warn] [output:flatstore:sip_events] message
type WriterSink struct {
	mu  sync.Mutex
	w   io.Writer
	min Level
}

// NewWriterSink returns a sink that prints the messages at min or more
// severe to w (os.Stderr when nil).
func NewWriterSink(w io.Writer, min Level) *WriterSink {
	if w == nil {
		w = os.Stderr
	}
	return &WriterSink{w: w, min: min}
}

// Enabled reports whether level is at least as severe as the sink's minimum.
func (s *WriterSink) Enabled(level Level) bool { return level <= s.min }

// Print writes one line with one write call, so that lines of concurrent
// loggers never interleave.
func (s *WriterSink) Print(level Level, msg string) {
	b := make([]byte, 0, 48+len(msg))
	b = time.Now().AppendFormat(b, "[2006/01/02 15:04:05.000] ")
	b = fmt.Appendf(b, "[%5s] ", level)
	b = append(b, msg...)
	b = append(b, '\n')
	s.mu.Lock()
	_, _ = s.w.Write(b)
	s.mu.Unlock()
}

// LimitEvery is how often a rate-limited message of one key is printed.
const LimitEvery = 5 * time.Second

// Logger logs for one output instance: every message is prefixed with
// [output:flatstore:NAME], as Fluent Bit's own plugins' messages are. Its
// methods are safe for concurrent use and a nil *Logger logs nothing.
type Logger struct {
	prefix string
	sink   Sink

	mu     sync.Mutex
	limits map[string]*limit
}

// limit is the rate-limiting state of one message key.
type limit struct {
	last       time.Time
	suppressed int
}

// NewLogger returns the logger of the instance called name, printing to sink
// (a WriterSink on stderr at info level when nil).
func New(name string, sink Sink) *Logger {
	if sink == nil {
		sink = NewWriterSink(os.Stderr, LevelInfo)
	}
	return &Logger{prefix: "[output:flatstore:" + name + "] ", sink: sink, limits: map[string]*limit{}}
}

// Enabled reports whether a message at level would be printed.
func (l *Logger) Enabled(level Level) bool { return l != nil && l.sink.Enabled(level) }

func (l *Logger) logf(level Level, format string, a ...any) {
	if !l.Enabled(level) {
		return
	}
	l.sink.Print(level, l.prefix+fmt.Sprintf(format, a...))
}

// Errorf logs at error level.
func (l *Logger) Errorf(format string, a ...any) { l.logf(LevelError, format, a...) }

// Warnf logs at warn level.
func (l *Logger) Warnf(format string, a ...any) { l.logf(LevelWarn, format, a...) }

// Infof logs at info level.
func (l *Logger) Infof(format string, a ...any) { l.logf(LevelInfo, format, a...) }

// Debugf logs at debug level.
func (l *Logger) Debugf(format string, a ...any) { l.logf(LevelDebug, format, a...) }

// Limitedf logs at most one message of key every LimitEvery; the messages it
// holds back are counted and the count is added to the next one printed.
// Each key has its own budget, so a frequent message never hides another.
func (l *Logger) Limitedf(level Level, key, format string, a ...any) {
	if !l.Enabled(level) {
		return
	}
	now := time.Now()
	l.mu.Lock()
	lim := l.limits[key]
	if lim == nil {
		if len(l.limits) >= maxLimitKeys {
			clear(l.limits) // keys are a handful of reasons; never let them grow
		}
		lim = &limit{}
		l.limits[key] = lim
	}
	if !lim.last.IsZero() && now.Sub(lim.last) < LimitEvery {
		lim.suppressed++
		l.mu.Unlock()
		return
	}
	lim.last = now
	n := lim.suppressed
	lim.suppressed = 0
	l.mu.Unlock()
	msg := fmt.Sprintf(format, a...)
	if n > 0 {
		msg += fmt.Sprintf(" (%d more like this in the last %v)", n, LimitEvery)
	}
	l.sink.Print(level, l.prefix+msg)
}

// LimitedWarnf is Limitedf at warn level.
func (l *Logger) LimitedWarnf(key, format string, a ...any) {
	l.Limitedf(LevelWarn, key, format, a...)
}

// maxLimitKeys bounds the keys a Logger keeps rate-limiting state for.
const maxLimitKeys = 256
