package tasklog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle/blob"
)

func readAll(t *testing.T, s Store, id int64, cur Cursor) ([]string, Cursor) {
	t.Helper()
	var got []string
	cur, err := s.Read(id, cur, func(l Line) error {
		got = append(got, string(l.Category)+":"+l.Text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, cur
}

func TestSegmentsMergeInEpochOrder(t *testing.T) {
	s := folderStore(t, 0)
	if got, _ := readAll(t, s, 7, Cursor{}); len(got) != 0 {
		t.Fatalf("a task with no log reads %v", got)
	}
	w1 := s.Writer(7, 1, nil)
	if _, err := os.Stat(filepath.Join(s.Files.(*blob.Folder).Root, "7")); !os.IsNotExist(err) {
		t.Fatal("a writer created its file before its first line")
	}
	w1.Logf(Info, "one")
	w1.Write(Line{Category: Error, Text: "two\nstill two"})
	w1.Close()
	got, cur := readAll(t, s, 7, Cursor{})
	if strings.Join(got, "|") != "Info:one|Error:two\nstill two" || cur.Line != 2 {
		t.Fatalf("epoch 1: %q at %+v", got, cur)
	}
	w10 := s.Writer(7, 10, nil) // sorts after epoch 2 only with zero padding
	w2 := s.Writer(7, 2, nil)
	w10.Logf(Info, "ten")
	w2.Logf(Warning, "two-a")
	if !w2.HasWarningsOrErrors() || w10.HasWarningsOrErrors() {
		t.Error("HasWarningsOrErrors is wrong")
	}
	more, cur := readAll(t, s, 7, cur)
	if strings.Join(more, "|") != "Warning:two-a|Info:ten" || cur.Line != 4 {
		t.Fatalf("after the cursor: %q at %+v", more, cur)
	}
	w2.Logf(Info, "late in epoch 2")
	if again, _ := readAll(t, s, 7, cur); len(again) != 0 {
		t.Fatalf("a reader past epoch 2 re-read it: %q", again)
	}
}

func TestPartialLineWaitsForItsNewline(t *testing.T) {
	s := folderStore(t, 0)
	w := s.Writer(1, 1, nil)
	w.Logf(Info, "whole")
	path := filepath.Join(s.Files.(*blob.Folder).Root, "1", segmentName(1))
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"t":"2026-01-01T00:00:00Z","c":"Info","m":"half`)
	got, cur := readAll(t, s, 1, Cursor{})
	if len(got) != 1 {
		t.Fatalf("read %q; the partial line must wait", got)
	}
	f.WriteString("\"}\n")
	f.Close()
	got, _ = readAll(t, s, 1, cur)
	if len(got) != 1 || got[0] != "Info:half" {
		t.Fatalf("after the newline: %q", got)
	}
}

func TestFencedWriterWritesNothing(t *testing.T) {
	s := folderStore(t, 0)
	allowed := true
	w := s.Writer(3, 1, func() bool { return allowed })
	w.Logf(Info, "before")
	allowed = false
	if err := w.Logf(Info, "after"); !errors.Is(err, ErrFenced) {
		t.Fatalf("write after fencing: %v, want ErrFenced", err)
	}
	if got, _ := readAll(t, s, 3, Cursor{}); len(got) != 1 {
		t.Fatalf("log after fencing: %q", got)
	}
}

// TestWrittenTellsOfStoredLines: Written hears of every write that stored
// lines, with the task's id, and of no fenced one.
func TestWrittenTellsOfStoredLines(t *testing.T) {
	s := folderStore(t, 0)
	var heard []int64
	s.Written = func(id int64) { heard = append(heard, id) }
	allowed := true
	w := s.Writer(9, 1, func() bool { return allowed })
	w.Logf(Info, "one")
	w.Write(Line{Text: "two"}, Line{Text: "three"})
	allowed = false
	w.Logf(Info, "fenced")
	if !slices.Equal(heard, []int64{9, 9}) {
		t.Fatalf("Written heard %v; want task 9 twice", heard)
	}
}

// TestLongLineIsCut: a line over the limit is cut with a mark, and "<"
// is stored as one byte, not JSON's six.
func TestLongLineIsCut(t *testing.T) {
	s := folderStore(t, 4<<10)
	w := s.Writer(4, 1, nil)
	long := strings.Repeat("<", 200<<10)
	w.Logf(Info, "%s", long)
	w.Logf(Info, "next")
	w.Close()
	got, _ := readAll(t, s, 4, Cursor{})
	want := "Info:" + strings.Repeat("<", 4<<10) + "… [line cut: 200704 more bytes not kept]"
	if len(got) != 2 || got[0] != want || got[1] != "Info:next" {
		t.Fatalf("long line read back as %d lines, the first of %d bytes; want it cut to 4 KiB with a mark", len(got), len(got[0]))
	}
	info, err := os.Stat(filepath.Join(s.Files.(*blob.Folder).Root, "4", segmentName(1)))
	if err != nil || info.Size() > 5<<10 {
		t.Errorf("the segment holds %v bytes (%v); want the cut line stored unescaped, under 5 KiB", info.Size(), err)
	}
}

func TestCutKeepsWholeCharacters(t *testing.T) {
	for _, c := range []struct {
		text  string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"ééé", 3, "é… [line cut: 4 more bytes not kept]"}, // 2 bytes each: the cut moves back to a boundary
		{"abcdef", 4, "abcd… [line cut: 2 more bytes not kept]"},
	} {
		if got := Cut(c.text, c.limit); got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.text, c.limit, got, c.want)
		}
	}
}

// TestOverLongStoredLine: a segment written before lines were cut may
// hold a line too long to gather; a reader passes over it, says so, and
// reads on.
func TestOverLongStoredLine(t *testing.T) {
	s := folderStore(t, 0)
	dir := filepath.Join(s.Files.(*blob.Folder).Root, "5")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	huge := `{"t":"2026-01-01T00:00:00Z","c":"Info","m":"` + strings.Repeat("x", 3<<20) + "\"}\n"
	next := `{"t":"2026-01-01T00:00:01Z","c":"Info","m":"next"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), []byte(huge+next), 0o640); err != nil {
		t.Fatal(err)
	}
	got, cur := readAll(t, s, 5, Cursor{})
	if len(got) != 2 || !strings.Contains(got[0], "too long to show") || got[1] != "Info:next" {
		t.Errorf("read %q", got)
	}
	if cur.Offset != int64(len(huge)+len(next)) {
		t.Errorf("cursor at %d, want %d", cur.Offset, len(huge)+len(next))
	}
}

// TestCopiedLinesOnce: lines copied from a source are read once each, in
// the order of their Seq, even when a later owner copies them again.
func TestCopiedLinesOnce(t *testing.T) {
	s := folderStore(t, 0)
	first, second := s.Writer(7, 1, nil), s.Writer(7, 2, nil)
	line := func(seq int64) Line {
		return Line{Category: Info, Text: fmt.Sprintf("out %d", seq), Block: "web", Source: "cmd-1", Seq: seq}
	}
	first.Write(line(1), line(2), line(3))
	first.Write(Line{Category: Info, Text: "owner 1 stops"})
	end, err := s.End(7)
	if err != nil || end.LastSeq("cmd-1") != 3 || end.LastSeq("other") != 0 {
		t.Fatalf("End: LastSeq %d, %v; want 3", end.LastSeq("cmd-1"), err)
	}
	second.Write(line(2), line(3), line(4)) // the new owner copies from an older point
	first.Close()
	second.Close()
	var texts []string
	if _, err := s.Read(7, Cursor{}, func(l Line) error {
		texts = append(texts, l.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"out 1", "out 2", "out 3", "owner 1 stops", "out 4"}
	if !slices.Equal(texts, want) {
		t.Errorf("read %q, want %q", texts, want)
	}
}

func TestMask(t *testing.T) {
	s := folderStore(t, 0)
	w := s.Writer(6, 1, nil)
	w.SetMask(func(text string) string { return strings.ReplaceAll(text, "hunter2", "********") })
	w.Logf(Info, "the password is hunter2")
	w.Close()
	if got, _ := readAll(t, s, 6, Cursor{}); len(got) != 1 || got[0] != "Info:the password is ********" {
		t.Errorf("read %q", got)
	}
}

// folderStore returns a Store in a fresh folder.
func folderStore(t *testing.T, lineLimit int) Store {
	f, err := blob.NewFolder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return Store{Files: f, LineLimit: lineLimit}
}

// chunked hides a folder's Append, so that a Store on it writes chunks as
// it does in an object store.
type chunked struct{ blob.Store }

func TestChunksMergeInOrder(t *testing.T) {
	s := folderStore(t, 0)
	s.Files = chunked{s.Files}
	w1 := s.Writer(3, 1, nil)
	w1.Logf(Info, "one")
	w1.Logf(Info, "two")
	w1.Close()
	again := s.Writer(3, 1, nil) // the same epoch resumed: its chunks go after
	again.Logf(Info, "three")
	w2 := s.Writer(3, 2, nil)
	for i := 4; i <= 12; i++ {
		w2.Logf(Info, "%d", i)
	}
	var got []string
	cur, err := s.Read(3, Cursor{}, func(l Line) error { got = append(got, l.Text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := "one two three 4 5 6 7 8 9 10 11 12"
	if strings.Join(got, " ") != want {
		t.Fatalf("read %q, want %q", strings.Join(got, " "), want)
	}
	w2.Logf(Info, "13")
	got = nil
	if _, err := s.Read(3, cur, func(l Line) error { got = append(got, l.Text); return nil }); err != nil || strings.Join(got, " ") != "13" {
		t.Fatalf("read from the cursor: %q, %v; want 13", got, err)
	}
	if err := s.Remove(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if segs, _ := s.segments(3); len(segs) != 0 {
		t.Fatalf("after Remove: %v", segs)
	}
}
