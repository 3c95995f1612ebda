package agent

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestReceiveIntoCopiesAndHashes: the pipeline writes every byte in order
// from the offset given, hashes the same bytes, and passes a body's own
// failure on; from an aligned offset (direct I/O, an unaligned tail
// through the page cache) as from an unaligned one (a resume).
func TestReceiveIntoCopiesAndHashes(t *testing.T) {
	t.Parallel()
	content := make([]byte, 2*receiveChunk*receiveChunks+12345) // the pipeline full, twice
	rand.Read(content)
	for _, at := range []int{0, 100, directAlign} {
		f, err := os.Create(filepath.Join(t.TempDir(), "partial"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.Write(content[:at])
		h := sha256.New()
		h.Write(content[:at])
		n, err := receiveInto(f, int64(at), h, bytes.NewReader(content[at:]))
		if err != nil || n != int64(len(content)-at) {
			t.Fatalf("from byte %d: receiveInto = %d, %v; want %d, nil", at, n, err, len(content)-at)
		}
		if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, content) {
			t.Errorf("from byte %d: the file differs from what was sent", at)
		}
		if want := sha256.Sum256(content); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("from byte %d: the hash differs from the content's", at)
		}
	}

	cut := io.MultiReader(bytes.NewReader(content[:receiveChunk+7]), errReader{io.ErrUnexpectedEOF})
	g, _ := os.Create(filepath.Join(t.TempDir(), "cut"))
	defer g.Close()
	if n, err := receiveInto(g, 0, sha256.New(), cut); !errors.Is(err, io.ErrUnexpectedEOF) || n != receiveChunk+7 {
		t.Errorf("a body cut short: %d, %v; want the bytes before the cut and io.ErrUnexpectedEOF", n, err)
	}
	if got, _ := os.ReadFile(g.Name()); !bytes.Equal(got, content[:receiveChunk+7]) {
		t.Error("a body cut short: the file differs from what was sent")
	}
}

// TestReceiveIntoStopsAtAWriteFailure: a file that cannot be written (a
// full disk: /dev/full) ends the copy with a localError, which no retry
// mends.
func TestReceiveIntoStopsAtAWriteFailure(t *testing.T) {
	t.Parallel()
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = receiveInto(f, 0, sha256.New(), io.LimitReader(rand.Reader, 64<<20))
	var local *localError
	if !errors.As(err, &local) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing to a full disk: %v, want a localError with ENOSPC", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
