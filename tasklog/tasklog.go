// Package tasklog keeps task logs in shared storage. Each ownership of a
// task (its epoch) writes its own segment, so there is one writer per
// segment and a node that lost a task never writes into the segment of the
// node that took it over. A reader merges a task's segments in epoch order
// and streams them without holding a log in memory.
//
// Keys in the task-logs store: in a folder (a blob.Appender) a segment is
// one file, <task id>/<epoch, 8 digits>.log, that each write appends to. In
// an object store, whose objects cannot grow, each write stores one
// immutable chunk, <task id>/<epoch>/<chunk, 8 digits>.log, and a reader
// takes the chunks of an epoch in order as its segment. Either way a line
// written is stored when its write returns, so it outlives the node's
// process. Each line is one JSON object: {"t": time, "c": category,
// "m": text, "b": block, "s": source, "n": seq}.
package tasklog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
)

// Category classifies a log line.
type Category string

// Categories, as Octopus names them.
const (
	Verbose Category = "Verbose"
	Info    Category = "Info"
	Warning Category = "Warning"
	Error   Category = "Error"
)

// ParseCategory returns the category named s, case-insensitively.
func ParseCategory(s string) (Category, bool) {
	for _, c := range []Category{Verbose, Info, Warning, Error} {
		if strings.EqualFold(s, string(c)) {
			return c, true
		}
	}
	return "", false
}

// Line is one log line.
type Line struct {
	Time     time.Time `json:"t"`
	Category Category  `json:"c"`
	Text     string    `json:"m"`
	// Block names the part of the task the line belongs to, such as one
	// target of a deployment; empty for the task itself.
	Block string `json:"b,omitempty"`
	// Source and Seq name a line copied from elsewhere, such as line Seq of
	// an agent command's output: a reader shows each (Source, Seq) once, in
	// the order of Seq, so an owner that takes a task over may copy again
	// what its predecessor may already have copied.
	Source string `json:"s,omitempty"`
	Seq    int64  `json:"n,omitempty"`
}

// Store is the task logs of shared storage.
type Store struct {
	// Files is the task-logs store of shared storage, which takes keys
	// without the tasklogs/ prefix.
	Files blob.Store
	// LineLimit bounds the bytes of a line's text: a writer cuts a longer
	// one and marks the cut (see Cut). Zero is cuttle.DefaultLogLineBytes.
	LineLimit int
	// Written, if set, is called with the task's id after each write that
	// stored lines (live.LogNotifier); it must not block.
	Written func(taskID int64)
}

// lineLimit returns s.LineLimit or its default.
func (s Store) lineLimit() int {
	if s.LineLimit <= 0 {
		return cuttle.DefaultLogLineBytes
	}
	return s.LineLimit
}

// Cut returns text whole if it has at most limit bytes, or else its first
// limit bytes (at a character boundary) and a mark that says how many
// bytes were cut.
func Cut(text string, limit int) string {
	if len(text) <= limit {
		return text
	}
	keep := limit
	for keep > 0 && !utf8.RuneStart(text[keep]) {
		keep--
	}
	return fmt.Sprintf("%s… [line cut: %d more bytes not kept]", text[:keep], len(text)-keep)
}

// dir returns the prefix of a task's keys.
func dir(taskID int64) string { return strconv.FormatInt(taskID, 10) + "/" }

func segmentName(epoch int64) string { return fmt.Sprintf("%08d.log", epoch) }

// Writer appends lines to one segment. Every Write reaches the operating
// system before it returns (no buffering in the process), so a line
// written is kept if the node's process dies; Close syncs the file to
// disk. It is safe for concurrent use; the zero value is not usable.
type Writer struct {
	mu       sync.Mutex
	files    blob.Store
	task     int64
	written  func(taskID int64)
	key      string          // the segment's key; its chunks' prefix is key without ".log"
	f        blob.AppendFile // the open segment, in a folder
	chunk    int             // the last chunk stored, in an object store; -1 before it is looked up
	limit    int
	buf      bytes.Buffer
	enc      *json.Encoder
	warnings bool
	closed   bool
	// Allow, if set, is asked before each write; a write it refuses fails
	// with ErrFenced and writes nothing.
	allow func() bool
	// mask, if set, rewrites each line's text before it is stored.
	mask func(string) string
}

// SetMask makes every later line's text pass through mask before it is
// stored: a deployment hides its sensitive values so.
func (w *Writer) SetMask(mask func(string) string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mask = mask
}

// ErrFenced is returned by a write the writer's Allow refused: the node
// may no longer own the task.
var ErrFenced = errors.New("tasklog: this node may no longer own the task")

// Writer returns the writer of the segment of taskID's epoch. The file and
// its folder are created by the first write, so a task that logs nothing
// costs no file. allow, if not nil, is asked before every write.
func (s Store) Writer(taskID, epoch int64, allow func() bool) *Writer {
	w := &Writer{files: s.Files, task: taskID, written: s.Written, key: dir(taskID) + segmentName(epoch), chunk: -1, limit: s.lineLimit(), allow: allow}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false) // "<" stays one byte, not six
	return w
}

// Write appends lines in one write call.
func (w *Writer) Write(lines ...Line) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	if w.allow != nil && !w.allow() {
		return ErrFenced
	}
	w.buf.Reset()
	for _, l := range lines {
		if l.Time.IsZero() {
			l.Time = time.Now()
		}
		l.Time = l.Time.UTC()
		if w.mask != nil {
			l.Text = w.mask(l.Text)
		}
		l.Text = Cut(l.Text, w.limit)
		if l.Category == Warning || l.Category == Error {
			w.warnings = true
		}
		if err := w.enc.Encode(l); err != nil { // one line, and its newline
			return err
		}
	}
	err := w.store(w.buf.Bytes())
	if w.buf.Cap() > 1<<20 {
		w.buf = bytes.Buffer{} // a large batch leaves no large buffer behind
	}
	if err == nil && w.written != nil && len(lines) > 0 {
		w.written(w.task)
	}
	return err
}

// store appends b to the segment in a folder, or stores it as the
// segment's next chunk in an object store.
func (w *Writer) store(b []byte) error {
	a, ok := w.files.(blob.Appender)
	if ok {
		if w.f == nil {
			f, err := a.Append(w.key)
			if err != nil {
				return err
			}
			w.f = f
		}
		_, err := w.f.Write(b)
		return err
	}
	// A chunk is never replaced: a writer of an epoch whose earlier
	// writer stored chunks (the same node, resumed) goes on after them.
	ctx := context.Background()
	prefix := strings.TrimSuffix(w.key, ".log") + "/"
	if w.chunk < 0 {
		w.chunk = 0
		err := w.files.List(ctx, prefix, func(info blob.Info) error {
			if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(info.Key, prefix), ".log")); err == nil && n > w.chunk {
				w.chunk = n
			}
			return nil
		})
		if err != nil {
			w.chunk = -1
			return err
		}
	}
	if _, err := w.files.Put(ctx, prefix+segmentName(int64(w.chunk+1)), bytes.NewReader(b)); err != nil {
		return err
	}
	w.chunk++
	return nil
}

// Logf appends one formatted line.
func (w *Writer) Logf(c Category, format string, args ...any) error {
	return w.Write(Line{Category: c, Text: fmt.Sprintf(format, args...)})
}

// HasWarningsOrErrors reports whether a Warning or Error line was written.
func (w *Writer) HasWarningsOrErrors() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.warnings
}

// Close syncs the segment to disk and closes it.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if w.f == nil {
		return nil
	}
	return errors.Join(w.f.Sync(), w.f.Close())
}

// segments returns the keys of a task's segments (and chunks), relative
// to the task's prefix, in order: zero-padded epochs and chunks sort so,
// and "00000001.log" sorts before "00000001/...".
func (s Store) segments(taskID int64) ([]string, error) {
	var names []string
	err := s.Files.List(context.Background(), dir(taskID), func(info blob.Info) error {
		if name := strings.TrimPrefix(info.Key, dir(taskID)); strings.HasSuffix(name, ".log") {
			names = append(names, name)
		}
		return nil
	})
	return names, err
}

// Cursor is a position in a task's log: the segment (or chunk) and the
// byte offset in it.
type Cursor struct {
	Segment string // key of the segment or chunk within the task's; empty before the first
	Offset  int64
	Line    int // lines read so far
	// seen is the last Seq read of each Source.
	seen map[string]int64
}

// LastSeq returns the highest Seq of the lines of source read so far (0 if none).
func (c Cursor) LastSeq(source string) int64 { return c.seen[source] }

// Read calls fn for each complete line after cur, in order, and returns the
// cursor after the last line read. A line still being written (no newline
// yet) is left for the next Read; a copied line (see Line.Source) at or
// below the last Seq read of its source is passed over. fn returning an
// error stops the read.
func (s Store) Read(taskID int64, cur Cursor, fn func(Line) error) (Cursor, error) {
	segs, err := s.segments(taskID)
	if err != nil {
		return cur, err
	}
	cur.seen = maps.Clone(cur.seen) // the caller's cursor stays as it was
	for _, name := range segs {
		if cur.Segment != "" && name < cur.Segment {
			continue
		}
		if name != cur.Segment {
			cur = Cursor{Segment: name, Line: cur.Line, seen: cur.seen}
		}
		next, err := s.readSegment(dir(taskID)+name, cur, fn)
		cur = next
		if err != nil {
			return cur, err
		}
	}
	return cur, nil
}

func (s Store) readSegment(key string, cur Cursor, fn func(Line) error) (Cursor, error) {
	f, err := s.Files.Open(context.Background(), key)
	if errors.Is(err, fs.ErrNotExist) {
		return cur, nil // removed meanwhile
	}
	if err != nil {
		return cur, err
	}
	defer f.Close()
	if _, err := f.Seek(cur.Offset, io.SeekStart); err != nil {
		return cur, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		raw, size, err := readLine(r)
		if err == io.EOF {
			return cur, nil // an incomplete last line waits for its newline
		}
		if err != nil {
			return cur, err
		}
		var l Line
		switch {
		case raw == nil:
			l = Line{Category: Warning, Text: fmt.Sprintf("(a log line of %d bytes is too long to show)", size)}
		case json.Unmarshal(raw, &l) != nil:
			l = Line{Category: Error, Text: "(unreadable log line)"}
		}
		cur.Offset += size
		if l.Source != "" && l.Seq > 0 {
			if l.Seq <= cur.seen[l.Source] {
				continue
			}
			if cur.seen == nil {
				cur.seen = map[string]int64{}
			}
			cur.seen[l.Source] = l.Seq
		}
		cur.Line++
		if err := fn(l); err != nil {
			return cur, err
		}
	}
}

// maxStoredLine bounds the bytes of one stored line a reader gathers: a
// line that a writer cut is far shorter, but segments written before lines
// were cut may hold longer ones.
const maxStoredLine = 1 << 20

// readLine returns the next line of r with its newline, and its size. A
// line longer than maxStoredLine is read past and returned as nil, with its
// size. io.EOF if no complete line is left (r has then consumed what there
// was, so read again from the cursor, not from r).
func readLine(r *bufio.Reader) (raw []byte, size int64, err error) {
	raw, err = r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return raw, int64(len(raw)), err
	}
	// A line longer than the buffer: gather it, up to maxStoredLine.
	long := append([]byte(nil), raw...)
	size = int64(len(raw))
	for err == bufio.ErrBufferFull {
		raw, err = r.ReadSlice('\n')
		size += int64(len(raw))
		if long != nil && len(long)+len(raw) <= maxStoredLine {
			long = append(long, raw...)
		} else {
			long = nil
		}
	}
	if err != nil {
		return nil, size, err
	}
	return long, size, nil
}

// End returns the cursor after the last complete line of a task's log: its
// LastSeq tells an owner taking a task over what was copied before.
func (s Store) End(taskID int64) (Cursor, error) {
	return s.Read(taskID, Cursor{}, func(Line) error { return nil })
}

// Remove deletes a task's log.
func (s Store) Remove(ctx context.Context, taskID int64) error {
	var keys []string
	err := s.Files.List(ctx, dir(taskID), func(info blob.Info) error {
		keys = append(keys, info.Key)
		return nil
	})
	for _, k := range keys {
		if err != nil {
			break
		}
		err = s.Files.Delete(ctx, k)
	}
	return err
}
