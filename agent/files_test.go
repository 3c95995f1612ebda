package agent

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestReceiveIntoCopiesAndHashes: the pipeline writes every byte in order
// from the offset given, hashes the same bytes, and passes a body's own
// failure on.
func TestReceiveIntoCopiesAndHashes(t *testing.T) {
	t.Parallel()
	content := make([]byte, 2*receiveChunk*receiveChunks+12345) // the pipeline full, twice
	rand.Read(content)
	f, err := os.Create(filepath.Join(t.TempDir(), "partial"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(content[:100])
	h := sha256.New()
	h.Write(content[:100])
	n, err := receiveInto(f, 100, h, bytes.NewReader(content[100:]))
	if err != nil || n != int64(len(content)-100) {
		t.Fatalf("receiveInto = %d, %v; want %d, nil", n, err, len(content)-100)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, content) {
		t.Error("the file differs from what was sent")
	}
	if want := sha256.Sum256(content); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Error("the hash differs from the content's")
	}

	cut := io.MultiReader(bytes.NewReader(content[:receiveChunk+7]), errReader{io.ErrUnexpectedEOF})
	g, _ := os.Create(filepath.Join(t.TempDir(), "cut"))
	defer g.Close()
	if n, err := receiveInto(g, 0, sha256.New(), cut); !errors.Is(err, io.ErrUnexpectedEOF) || n != receiveChunk+7 {
		t.Errorf("a body cut short: %d, %v; want the bytes before the cut and io.ErrUnexpectedEOF", n, err)
	}
}

// TestReceiveIntoStopsAtAWriteFailure: a file that cannot be written ends
// the copy with a localError, which no retry mends.
func TestReceiveIntoStopsAtAWriteFailure(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "partial")
	os.WriteFile(name, nil, 0o600)
	f, err := os.Open(name) // read-only
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = receiveInto(f, 0, sha256.New(), io.LimitReader(rand.Reader, 64<<20))
	var local *localError
	if !errors.As(err, &local) {
		t.Errorf("writing a read-only file: %v, want a localError", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
