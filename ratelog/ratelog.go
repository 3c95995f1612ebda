// Package ratelog logs events that an attacker or a broken client can
// repeat at will (a refused handshake, a refused report, a connection over
// its bound) at most once per interval for each kind of event, saying how
// many it held back since the last line, so that no client can fill a
// node's log or spend its time writing one.
package ratelog

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
)

// DefaultEvery is the interval of a Logger whose Every is zero.
const DefaultEvery = 10 * time.Second

// maxKeys bounds the events a Logger remembers; past it, it forgets them
// all (and may log each once more).
const maxKeys = 4096

// Logger logs each kind of event, named by a key, at most once per Every.
// The zero value is not usable; make one with New.
type Logger struct {
	log   *slog.Logger
	every time.Duration

	mu     sync.Mutex
	events map[string]*event
}

type event struct {
	last    time.Time
	skipped int
}

// New returns a Logger that writes to log at most once per every for each
// key; every zero means DefaultEvery.
func New(log *slog.Logger, every time.Duration) *Logger {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Logger{log: log, every: every, events: map[string]*event{}}
}

// Log writes msg with args at level, unless an event of key was written
// less than the interval ago; then it only counts it. A line written after
// held-back ones carries their number as "held_back".
func (l *Logger) Log(level slog.Level, key, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	e := l.events[key]
	if e != nil && now.Sub(e.last) < l.every {
		e.skipped++
		l.mu.Unlock()
		return
	}
	if e == nil {
		if len(l.events) >= maxKeys {
			l.events = map[string]*event{}
		}
		e = &event{}
		l.events[key] = e
	}
	skipped := e.skipped
	e.last, e.skipped = now, 0
	l.mu.Unlock()
	if skipped > 0 {
		args = append(args, "held_back", skipped)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// Writer returns a writer for a log.Logger (such as http.Server's
// ErrorLog) whose every write is one message logged at level through l,
// the kind of message being its text less digits (addresses and ports
// differ, the cause does not) and cut to 80 bytes.
func (l *Logger) Writer(level slog.Level) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		msg := strings.TrimSpace(string(p))
		key := strings.Map(func(r rune) rune {
			if unicode.IsDigit(r) {
				return -1
			}
			return r
		}, msg)
		if len(key) > 80 {
			key = key[:80]
		}
		l.Log(level, key, msg)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Warn is Log at slog.LevelWarn.
func (l *Logger) Warn(key, msg string, args ...any) { l.Log(slog.LevelWarn, key, msg, args...) }
