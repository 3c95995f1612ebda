package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogsOncePerIntervalAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour)
	for range 5 {
		l.Warn("refused", "refused a handshake", "remote", "1.2.3.4")
	}
	l.Warn("other", "another event")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "refused a handshake") || !strings.Contains(lines[1], "another event") {
		t.Fatalf("logged %q; want one line per kind of event", lines)
	}
	// Once the interval has passed, the next line says how many were held back.
	l.events["refused"].last = time.Now().Add(-2 * time.Hour)
	l.Warn("refused", "refused a handshake")
	if got := buf.String(); !strings.Contains(got, "held_back=4") {
		t.Errorf("the line after the interval: %q; want held_back=4", got)
	}
}

func TestWriterKeysByTheCauseNotTheAddress(t *testing.T) {
	var buf bytes.Buffer
	w := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour).Writer(slog.LevelWarn)
	for port := range 5 {
		fmt.Fprintf(w, "http: TLS handshake error from 10.0.0.%d:%d: EOF\n", port, 40000+port)
	}
	fmt.Fprintf(w, "http: URL query contains semicolon\n")
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("logged %d lines; want one per cause:\n%s", n, buf.String())
	}
}
