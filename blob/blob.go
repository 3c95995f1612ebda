// Package blob is cuttle's shared storage: package files, artifacts and task
// logs, addressed by relative keys with forward slashes, so that nodes on
// different operating systems share one cluster.
//
// A Store is one of two backends: a folder (Folder: a local disk for one
// node, or an NFS/SMB/CSI volume every node of a cluster mounts) or an
// S3-compatible object store (S3). Open mounts one backend per kind of file
// (packages/, artifacts/, tasklogs/) behind one Store that routes a key by
// its first part.
//
// Rules every backend keeps (the conformance suite, blobtest, checks them):
//   - A file becomes visible whole: Put writes a temporary file and renames
//     it into place (folder), or completes a multipart upload (object
//     store; a file of at most 1 MiB goes up in one PUT, as atomic). A reader never sees half a file, and a failed or cancelled Put
//     leaves what was under the key before. A crash may leave garbage (a
//     temporary file, an unfinished multipart upload), never a wrong file.
//   - Put streams: it holds at most one part (PartSize) of a file in memory
//     and nothing on the node's local disk.
//   - List returns keys in byte order.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"
)

// Key prefixes: a key names a file of shared storage by its kind and its
// path within that kind, such as "packages/app/Upload-1/app.1.0.zip",
// "artifacts/ServerTasks-7/Machines-2/log.txt" or "tasklogs/7/00000001.log".
const (
	PackagesKey  = "packages/"
	ArtifactsKey = "artifacts/"
	TaskLogsKey  = "tasklogs/"
)

// Info describes a stored file.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// File is a stored file open for reading, with Seek for ranges.
type File interface {
	io.ReadSeekCloser
	Info() Info
}

// Store is shared storage. Keys are checked by CheckKey; a method given a
// bad key fails with an error wrapping ErrBadKey.
type Store interface {
	// Put stores what r yields under key, replacing any file there, and
	// returns its Info. The file is visible whole once Put returns nil; on
	// an error (r's, the backend's or ctx's) nothing under key changed.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Open opens the file under key; an error wrapping fs.ErrNotExist if
	// there is none.
	Open(ctx context.Context, key string) (File, error)
	// Stat describes the file under key; fs.ErrNotExist if there is none.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the file under key; nil if there is none.
	Delete(ctx context.Context, key string) error
	// List calls fn with every file whose key starts with prefix, in byte
	// order of keys; an error from fn stops it and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Describe says where the store keeps its files, for logs (never a
	// credential).
	Describe() string
}

// Appender is a Store whose files can grow in place (a folder): task logs
// append to one segment per epoch there, and to immutable chunks on a
// store without it.
type Appender interface {
	// Append opens the file under key for appending, creating it.
	Append(key string) (AppendFile, error)
}

// AppendFile is a file open for appending. Each Write reaches the
// operating system before it returns; Sync makes it durable.
type AppendFile interface {
	io.WriteCloser
	Sync() error
}

// ErrBadKey is wrapped by the error of a call given a key that CheckKey
// refuses.
var ErrBadKey = errors.New("bad storage key")

// tempPrefix starts the names of a folder's temporary files: no part of a
// key may start with it.
const tempPrefix = ".cuttle-upload-"

// CheckKey returns an error wrapping ErrBadKey unless key is a clean
// relative path with forward slashes: not absolute, no empty, "." or ".."
// part, no backslash, no control character, no part starting with
// ".cuttle-upload-" (a folder's temporary files), at most 1,024 bytes. So a
// key names a file inside its store, never the store's folder itself nor
// anything outside it, on every operating system.
func CheckKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadKey, key, why) }
	switch {
	case key == "" || key == ".":
		return bad("it is empty")
	case len(key) > 1024:
		return bad("it is longer than 1,024 bytes")
	case strings.Contains(key, `\`):
		return bad("it holds a backslash")
	case !fs.ValidPath(key):
		return bad("it is not a clean relative path")
	case !utf8.ValidString(key):
		return bad("it is not UTF-8")
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return bad("it holds a control character")
		}
	}
	for _, part := range strings.Split(key, "/") {
		if strings.HasPrefix(part, tempPrefix) {
			return bad("a part starts with " + tempPrefix)
		}
	}
	return nil
}

// checkPrefix refuses a List prefix that could not start a clean key.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return CheckKey(strings.TrimSuffix(prefix, "/") + "/x")
}

// ctxReader fails a read once ctx is done, so that a Put of a slow body
// stops when its request or node stops.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := context.Cause(c.ctx); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
