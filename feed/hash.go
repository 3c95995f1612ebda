package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Hashing beside the copy: an upload reads its body (HTTP and multipart
// parsing), hashes it (SHA-256, about 1.5 GB/s on one core) and writes it
// to storage. Done in one goroutine the three add up; here a reader
// goroutine fills chunks, a hasher goroutine hashes them and the copy to
// storage writes them, each on a core of its own where there are cores.
// A chunk goes back to the pool once both the hasher and the writer are
// done with it, so an upload holds at most chunks × chunkSize bytes.
const (
	chunkSize = 1 << 20
	chunks    = 4
)

type chunk struct {
	b    []byte
	refs atomic.Int32
}

// hashedBody is a body read ahead in chunks and hashed on the side.
type hashedBody struct {
	out  chan *chunk // to the copy, in order; closed at the end of the body
	free chan *chunk
	cur  *chunk
	off  int

	done    chan struct{} // closed once the hasher has hashed every chunk
	sum     string
	errMu   sync.Mutex
	bodyErr error // the body's error, if it failed (not io.EOF)
	stop    chan struct{}
	once    sync.Once
}

// hashBeside starts reading body ahead and hashing it; the caller copies
// the returned body to storage, then calls wait for its SHA-256, and
// close in every case (it stops the reader goroutine if the copy stopped
// early).
func hashBeside(body io.Reader) *hashedBody {
	h := &hashedBody{out: make(chan *chunk, chunks), free: make(chan *chunk, chunks), done: make(chan struct{}), stop: make(chan struct{})}
	for range chunks {
		h.free <- &chunk{b: make([]byte, chunkSize)}
	}
	toHash := make(chan *chunk, chunks)
	go func() { // the hasher
		defer close(h.done)
		d := sha256.New()
		for c := range toHash {
			d.Write(c.b)
			h.release(c)
		}
		h.sum = hex.EncodeToString(d.Sum(nil))
	}()
	go func() { // the reader
		defer close(toHash)
		defer close(h.out)
		for {
			var c *chunk
			select {
			case c = <-h.free:
			case <-h.stop:
				return
			}
			n, err := fill(body, c.b[:chunkSize])
			if n > 0 {
				c.b = c.b[:n]
				c.refs.Store(2)
				toHash <- c
				select {
				case h.out <- c:
				case <-h.stop:
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				h.errMu.Lock()
				h.bodyErr = err
				h.errMu.Unlock()
				return
			}
		}
	}()
	return h
}

// fill reads into b until it is full or body fails; io.EOF only at the
// body's end (unlike io.ReadFull, a body's own io.ErrUnexpectedEOF, a
// multipart part cut off, stays a failure).
func fill(body io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := body.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (h *hashedBody) release(c *chunk) {
	if c.refs.Add(-1) == 0 {
		c.b = c.b[:cap(c.b)]
		h.free <- c
	}
}

// err returns the body's error, if it failed.
func (h *hashedBody) err() error {
	h.errMu.Lock()
	defer h.errMu.Unlock()
	return h.bodyErr
}

// errCutOff ends the copy of a body that failed before its end.
var errCutOff = errors.New("the upload was cut off")

// next returns the next chunk, nil at the end.
func (h *hashedBody) next() (*chunk, error) {
	c, ok := <-h.out
	if ok {
		return c, nil
	}
	if err := h.err(); err != nil {
		return nil, errors.Join(errCutOff, err)
	}
	return nil, io.EOF
}

// Read copies the body's bytes into p.
func (h *hashedBody) Read(p []byte) (int, error) {
	if h.cur == nil {
		c, err := h.next()
		if err != nil {
			return 0, err
		}
		h.cur, h.off = c, 0
	}
	n := copy(p, h.cur.b[h.off:])
	if h.off += n; h.off == len(h.cur.b) {
		h.release(h.cur)
		h.cur = nil
	}
	return n, nil
}

// WriteTo writes the body's chunks to w whole: io.Copy uses it, so a
// chunk goes to storage in one write.
func (h *hashedBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if h.cur == nil {
			c, err := h.next()
			if err == io.EOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
			h.cur, h.off = c, 0
		}
		n, err := w.Write(h.cur.b[h.off:])
		total += int64(n)
		h.release(h.cur)
		h.cur = nil
		if err != nil {
			return total, err
		}
	}
}

// wait returns the SHA-256 of the whole body, once hashed.
func (h *hashedBody) wait() string {
	<-h.done
	return h.sum
}

// close stops the reader goroutine (a copy that ended early) and lets the
// hasher finish.
func (h *hashedBody) close() {
	h.once.Do(func() { close(h.stop) })
	for c := range h.out { // drain what the reader queued
		h.release(c)
	}
	<-h.done
}
