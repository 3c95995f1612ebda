package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/cuttledeploy/cuttle/agentapi"
)

// partialFile is where the file a ReceiveFile or DeployPackage command
// fetches grows, in its journal folder.
const partialFile = "receive.partial"

// stallGuard ends a transfer when no byte has moved through it for a while.
type stallGuard struct {
	timer *time.Timer
	after time.Duration
}

// guardStall returns a context, a child of ctx, that ends once no byte has
// moved through the guard's readers for d, and the function that releases
// it; context.Cause tells the stall.
func guardStall(ctx context.Context, d time.Duration) (context.Context, *stallGuard, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	g := &stallGuard{after: d}
	g.timer = time.AfterFunc(d, func() { cancel(fmt.Errorf("the transfer stalled: no byte moved for %v", d)) })
	return ctx, g, func() {
		g.timer.Stop()
		cancel(nil)
	}
}

func (g *stallGuard) reader(r io.Reader) io.Reader { return &stallReader{r: r, guard: g} }

type stallReader struct {
	r     io.Reader
	guard *stallGuard
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.guard.timer.Reset(s.guard.after)
	}
	return n, err
}

// transferError returns the error of a request of a transfer: the stall
// when the guard ended it, err otherwise.
func transferError(ctx, guarded context.Context, err error) error {
	if err != nil && guarded.Err() != nil && ctx.Err() == nil {
		return context.Cause(guarded)
	}
	return err
}

// localError is a failure of the agent's own files, which trying again
// would not mend.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

type localWriter struct{ w io.Writer }

func (w localWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = &localError{err}
	}
	return n, err
}

// giveUp reports whether a transfer that failed with err must not be tried
// again: the agent's own files failed, the command's context ended, or the
// cluster answered 4xx other than 429 (busy), such as 409 for a command no
// longer in progress.
func giveUp(ctx context.Context, err error) bool {
	var local *localError
	var se *statusError
	return errors.As(err, &local) || ctx.Err() != nil ||
		(answered(err) && errors.As(err, &se) && se.status != http.StatusTooManyRequests)
}

func isSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// Receiving a file is a pipeline of three goroutines passing chunks: one
// reads the body (TLS decryption), one writes the partial file, one hashes
// what was written, so that each step runs beside the others, on the
// cores there are, and the slowest alone sets the pace. The chunks are
// written with direct I/O where the file system takes it (see
// partialWriter), through the page cache otherwise.
const (
	receiveChunk  = 1 << 20
	receiveChunks = 16
	// writebackEvery is how many bytes written through the page cache
	// start their writeback to disk, so that the final fsync has little
	// left to do.
	writebackEvery = 8 << 20
	// directAlign is the alignment of direct I/O's offsets, lengths and
	// buffers: a multiple of every device's logical block size.
	directAlign = 4096
)

// partialWriter writes a partial file at increasing offsets. Where the
// offset and the length are multiples of directAlign it writes through a
// descriptor opened with O_DIRECT: the bytes go from the chunk to the disk
// without being copied into the page cache, which on some machines costs
// more CPU than all the rest of a transfer. Otherwise (an unaligned resume
// or last chunk, or a file system without direct I/O) it writes through
// f, starting the writeback every writebackEvery bytes. Either way the
// caller's fsync of f makes the bytes durable.
type partialWriter struct {
	f         *os.File
	direct    *os.File // nil once direct I/O is not used
	off       int64
	unflushed int64
}

func newPartialWriter(f *os.File, at int64) *partialWriter {
	w := &partialWriter{f: f, off: at}
	if at%directAlign == 0 {
		w.direct = openDirect(f.Name())
	}
	return w
}

// write writes p at the writer's offset; p's address is a multiple of
// directAlign. A failure is a localError.
func (w *partialWriter) write(p []byte) error {
	if n := len(p) - len(p)%directAlign; w.direct != nil && n > 0 {
		if _, err := w.direct.WriteAt(p[:n], w.off); err != nil {
			// The file system took the descriptor but not the write:
			// write it all through the page cache, and go on so.
			w.stopDirect()
		} else {
			w.off += int64(n)
			p = p[n:]
		}
	}
	if len(p) == 0 {
		return nil
	}
	w.stopDirect() // past an unaligned length no offset is aligned
	if _, err := w.f.WriteAt(p, w.off); err != nil {
		return &localError{err}
	}
	w.off += int64(len(p))
	if w.unflushed += int64(len(p)); w.unflushed >= writebackEvery {
		startWriteback(w.f, w.off-w.unflushed, w.unflushed)
		w.unflushed = 0
	}
	return nil
}

func (w *partialWriter) stopDirect() {
	if w.direct != nil {
		w.direct.Close()
		w.direct = nil
	}
}

// alignedChunk returns a slice of n bytes whose address is a multiple of
// directAlign.
func alignedChunk(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+n : skip+n]
}

// receiveInto copies r to f from offset at, and the same bytes to h, until
// r ends or fails; it returns the bytes written to f once h has hashed all
// of them. A failure to write f is a localError.
func receiveInto(f *os.File, at int64, h hash.Hash, r io.Reader) (int64, error) {
	free := make(chan []byte, receiveChunks)
	for range receiveChunks {
		free <- alignedChunk(receiveChunk)
	}
	toWrite := make(chan []byte, receiveChunks)
	toHash := make(chan []byte, receiveChunks)
	var (
		written  int64 // by the writer: the bytes in f, all hashed when hashed is closed
		writeErr error // by the writer, read once hashed is closed
		failed   = make(chan struct{})
		hashed   = make(chan struct{})
	)
	go func() {
		defer close(toHash)
		pw := newPartialWriter(f, at)
		defer pw.stopDirect()
		for chunk := range toWrite {
			if writeErr != nil {
				free <- chunk[:cap(chunk)]
				continue
			}
			if err := pw.write(chunk); err != nil {
				writeErr = err
				close(failed)
				free <- chunk[:cap(chunk)]
				continue
			}
			written += int64(len(chunk))
			toHash <- chunk
		}
	}()
	go func() {
		defer close(hashed)
		for chunk := range toHash {
			h.Write(chunk)
			free <- chunk[:cap(chunk)]
		}
	}()
	var readErr error
	for readErr == nil {
		var chunk []byte
		select {
		case chunk = <-free:
		case <-failed:
			readErr = io.EOF // the write's error is returned
			continue
		}
		got, err := fill(r, chunk)
		if got > 0 {
			toWrite <- chunk[:got]
		} else {
			free <- chunk
		}
		readErr = err
	}
	if readErr == io.EOF {
		readErr = nil
	}
	close(toWrite)
	<-hashed
	if writeErr != nil {
		return written, writeErr
	}
	return written, readErr
}

// fill reads r into b until b is full or r fails; unlike io.ReadFull it
// returns r's error as it is (io.EOF at the end; a body cut short fails
// with io.ErrUnexpectedEOF of its own).
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// download is a file a command fetches from the cluster: GET PathFile
// with the command's UID.
type download struct {
	name   string // what messages call it: a path, or a package's file name
	size   int64
	sha256 string // lower-case hex
}

// newDownload returns the download of a command of kind with the file's
// size and SHA-256 (hex, in any case), or the command's failure if they
// are not valid.
func newDownload(kind, name string, size int64, sha string) (download, error) {
	d := download{name: name, size: size, sha256: strings.ToLower(sha)}
	if size < 0 || !isSHA256(d.sha256) {
		return d, fmt.Errorf("a %s command needs a Size of 0 or more and a SHA256 of 64 hex digits; this one has %d and %q", kind, size, sha)
	}
	return d, nil
}

// fetch fetches the command's file (d) into a partial file at
// partialPath, which it creates, emptied. It streams the body into it
// (receiveInto) on any link that works, the one that handed the command
// out first; resumes a transfer that broke from the bytes the partial file
// holds (a Range request), at once while bytes keep coming, with backoff
// while none do; and cuts a transfer that moves no byte for the stall
// timing, to resume it. Then it checks the size and the SHA-256 and syncs
// the file. It returns how many transfers resumed. On success the partial
// file holds the file for the caller to move into place (a rename, in the
// same file system); on failure the caller removes it. The error is the
// command's failure, which names d.name.
func (a *Agent) fetch(ctx context.Context, c *command, d download, partialPath string) (resumes int, err error) {
	log := c.log
	f, err := os.OpenFile(partialPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("creating the partial file: %v", err)
	}
	defer f.Close()

	hash := sha256.New()
	var received int64 // the bytes in the partial file
	get := func(l *link) error {
		if received > 0 && received >= d.size {
			return nil // all there: the transfer broke after the last byte
		}
		guarded, guard, release := guardStall(ctx, a.timing.stall)
		defer release()
		req, err := http.NewRequestWithContext(guarded, http.MethodGet, l.baseURL+agentapi.CommandPath(agentapi.PathFile, c.uid), nil)
		if err != nil {
			return err
		}
		if received > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", received))
		}
		resp, err := l.do(ctx, req)
		if err != nil {
			return transferError(ctx, guarded, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && received > 0:
			if !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", received)) {
				return fmt.Errorf("the %s resumed the file at the wrong byte (Content-Range %q, want byte %d)", l.name, resp.Header.Get("Content-Range"), received)
			}
			// The hash goes on from the bytes the partial file holds,
			// which are all that counts.
			resumes++
			log.Info(fmt.Sprintf("resuming the transfer of %s at byte %d", d.name, received), "from", l.name)
			c.info("resuming the transfer of %s at byte %d", d.name, received)
			hash.Reset()
			if _, err := io.Copy(hash, io.NewSectionReader(f, 0, received)); err != nil {
				return &localError{err}
			}
		case resp.StatusCode == http.StatusOK:
			if received > 0 {
				log.Info("the node sent the whole file instead of the rest; starting over", "file", d.name, "from", l.name)
				received = 0
				hash.Reset()
				if err := f.Truncate(0); err != nil {
					return &localError{err}
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return &localError{err}
				}
			}
		default:
			return fmt.Errorf("the %s answered %s to a file request", l.name, resp.Status)
		}
		n, err := receiveInto(f, received, hash, guard.reader(resp.Body))
		received += n
		return transferError(ctx, guarded, err)
	}
	retry := a.newBackoff()
	for {
		before := received
		err := a.try(ctx, c.origin, get)
		if err == nil {
			break
		}
		if giveUp(ctx, err) {
			return resumes, fmt.Errorf("receiving %s: %v", d.name, err)
		}
		if received > before { // it moves: go on at once
			retry.reset()
			continue
		}
		log.Debug("fetching a file failed; retrying", "file", d.name, "err", err)
		pause(ctx, retry.delay(), a.links.whenAdded(), nil)
	}

	sum := hex.EncodeToString(hash.Sum(nil))
	switch {
	case received != d.size:
		return resumes, fmt.Errorf("the cluster sent %d bytes for %s, but the command says the file has %d", received, d.name, d.size)
	case sum != d.sha256:
		return resumes, fmt.Errorf("the file received for %s has SHA-256 %s, but the command expects %s; it was not saved", d.name, sum, d.sha256)
	}
	if err := f.Sync(); err != nil {
		return resumes, fmt.Errorf("writing %s: %v", d.name, err)
	}
	return resumes, nil
}

// receiveFile runs a ReceiveFile command (agentapi.ReceiveFile).
func (a *Agent) receiveFile(ctx context.Context, c *command) outcome {
	var p agentapi.ReceiveFile
	if err := decodePayload(c, &p); err != nil {
		return failed("%v", err)
	}
	d, err := newDownload(c.kind, p.Path, p.Size, p.SHA256)
	if err != nil {
		return failed("%v", err)
	}
	target, err := a.resolve(p.Path)
	if err != nil {
		return refusePath(c, err)
	}
	partialPath := filepath.Join(c.dir, partialFile)
	defer os.Remove(partialPath) // gone already once moved into place
	resumes, err := a.fetch(ctx, c, d, partialPath)
	if err != nil {
		return failed("%v", err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return failed("creating the folder of %s: %v", p.Path, err)
	}
	if err := os.Rename(partialPath, target); err != nil {
		return failed("moving the file received into place: %v", err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return failed("writing %s: %v", p.Path, err)
	}
	return succeeded(agentapi.ReceiveFileResult{Size: d.size, SHA256: d.sha256, Resumes: resumes})
}

// sendFile runs a SendFile command (agentapi.SendFile).
func (a *Agent) sendFile(ctx context.Context, c *command) outcome {
	var p agentapi.SendFile
	if err := decodePayload(c, &p); err != nil {
		return failed("%v", err)
	}
	path, err := a.resolve(p.Path)
	if err != nil {
		return refusePath(c, err)
	}
	u, err := openUpload(path, p.Path)
	if err != nil {
		return failed("%v", err)
	}
	defer u.close()
	stored, err := a.upload(ctx, c, u, "")
	if err != nil {
		return failed("%v", err)
	}
	return succeeded(stored)
}

// pendingUpload is a file a command sends to the cluster (PUT PathFile
// with the command's UID), open and hashed.
type pendingUpload struct {
	name   string // what messages call it: a path, or an artifact's name
	f      *os.File
	info   os.FileInfo // when it was hashed
	size   int64
	sha256 string // lower-case hex
}

// openUpload opens the regular file at path and hashes it; the error is
// the command's failure, which names the file by name.
func openUpload(path, name string) (*pendingUpload, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the file to send: %v", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening the file to send: %v", err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a file", name)
	}
	hash := sha256.New()
	size, err := io.Copy(hash, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %v", name, err)
	}
	return &pendingUpload{name: name, f: f, info: info, size: size, sha256: hex.EncodeToString(hash.Sum(nil))}, nil
}

func (u *pendingUpload) close() { u.f.Close() }

// upload sends u to the cluster, with query (such as "name=..."; empty for
// none) added to PathFile: streamed from the file, with HeaderSHA256, on
// any link that works, the one that handed the command out first, retried
// with backoff until the cluster takes it, refuses it (4xx, see giveUp) or
// ctx ends, and cut when no byte moves for the stall timing. A file that
// changed since it was hashed is not sent. It returns what the cluster
// stored, checked against the file; the error names u.name.
func (a *Agent) upload(ctx context.Context, c *command, u *pendingUpload, query string) (agentapi.FileResult, error) {
	target := agentapi.CommandPath(agentapi.PathFile, c.uid)
	if query != "" {
		target += "?" + query
	}
	var stored agentapi.FileResult
	send := func(l *link) error {
		if now, err := u.f.Stat(); err != nil || now.Size() != u.size || !now.ModTime().Equal(u.info.ModTime()) {
			return &localError{fmt.Errorf("%s changed while it was being sent", u.name)}
		}
		guarded, guard, release := guardStall(ctx, a.timing.stall)
		defer release()
		var body io.Reader = http.NoBody
		if u.size > 0 {
			body = guard.reader(io.NewSectionReader(u.f, 0, u.size))
		}
		req, err := http.NewRequestWithContext(guarded, http.MethodPut, l.baseURL+target, body)
		if err != nil {
			return err
		}
		req.ContentLength = u.size
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set(agentapi.HeaderSHA256, u.sha256)
		resp, err := l.do(ctx, req)
		if err != nil {
			return transferError(ctx, guarded, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&stored); err != nil {
			return fmt.Errorf("reading the answer of the %s to an upload: %w", l.name, transferError(ctx, guarded, err))
		}
		return nil
	}
	retry := a.newBackoff()
	for {
		err := a.try(ctx, c.origin, send)
		if err == nil {
			break
		}
		if giveUp(ctx, err) {
			return stored, fmt.Errorf("sending %s: %v", u.name, err)
		}
		c.log.Debug("sending a file failed; retrying", "file", u.name, "err", err)
		pause(ctx, retry.delay(), a.links.whenAdded(), nil)
	}
	if stored.Size != u.size || !strings.EqualFold(stored.SHA256, u.sha256) {
		return stored, fmt.Errorf("the cluster stored %d bytes with SHA-256 %s for %s, which has %d bytes with SHA-256 %s", stored.Size, stored.SHA256, u.name, u.size, u.sha256)
	}
	return stored, nil
}
