package flatstore

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Logger writes Fluent Bit style log lines:
//
//	[2026/11/26 12:00:00] [ warn] [output:flatstore:flatstore.0] message
//
// The zero value is not usable; use NewLogger.
type Logger struct {
	name string
	mu   *sync.Mutex
	w    io.Writer

	// rate limiting of record warnings
	lastWarn   atomic.Int64 // unix nanos of the last printed limited warning
	suppressed atomic.Int64
}

var logMu sync.Mutex

// NewLogger returns a logger for the instance called name, writing to w
// (stderr when nil).
func NewLogger(name string, w io.Writer) *Logger {
	if w == nil {
		w = os.Stderr
	}
	return &Logger{name: name, mu: &logMu, w: w}
}

func (l *Logger) out(level, format string, a ...any) {
	if l == nil {
		return
	}
	msg := fmt.Sprintf(format, a...)
	ts := time.Now().Format("2006/01/02 15:04:05")
	l.mu.Lock()
	fmt.Fprintf(l.w, "[%s] [%5s] [output:flatstore:%s] %s\n", ts, level, l.name, msg)
	l.mu.Unlock()
}

// Infof logs at info level.
func (l *Logger) Infof(format string, a ...any) { l.out("info", format, a...) }

// Warnf logs at warn level.
func (l *Logger) Warnf(format string, a ...any) { l.out("warn", format, a...) }

// Errorf logs at error level.
func (l *Logger) Errorf(format string, a ...any) { l.out("error", format, a...) }

// LimitedWarnf logs at most one warning every 5 seconds; the ones it holds
// back are counted and reported with the next one printed.
func (l *Logger) LimitedWarnf(format string, a ...any) {
	if l == nil {
		return
	}
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(5*time.Second) || !l.lastWarn.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		format += fmt.Sprintf(" (%d similar warnings suppressed)", n)
	}
	l.out("warn", format, a...)
}
