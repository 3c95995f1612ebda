package testcluster

// This file holds helpers for tests of the built-in package repository
// across node processes: uploads sent as the official client sends them,
// downloads streamed to a writer, and large deterministic content
// generated on the fly.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/cuttledeploy/cuttle/client"
)

// UploadAnswer is a node's answer to a package upload.
type UploadAnswer struct {
	Status  int
	Package client.Package // when Status is 200 or 201
	Body    string         // the error answer's message
}

// transfers is the HTTP client of uploads and downloads: no overall
// timeout (a transfer takes as long as its file), only the caller's
// context.
var transfers = &http.Client{}

// UploadPackage sends a package file to the built-in feed through cl's node
// as the official client sends it (client.UploadPackage: a streamed,
// chunked multipart body). An answer of any status is returned as an
// UploadAnswer; the error is the transport's (the connection failed, ctx
// ended).
func UploadPackage(ctx context.Context, cl *client.Client, fileName, mode string, body io.Reader) (UploadAnswer, error) {
	p, kept, err := cl.UploadPackage(ctx, fileName, body, mode)
	var answer *client.Error
	switch {
	case errors.As(err, &answer):
		return UploadAnswer{Status: answer.Status, Body: answer.Error()}, nil
	case err != nil:
		return UploadAnswer{}, err
	case kept:
		return UploadAnswer{Status: http.StatusOK, Package: p}, nil
	}
	return UploadAnswer{Status: http.StatusCreated, Package: p}, nil
}

// DownloadAnswer is a node's answer to a download.
type DownloadAnswer struct {
	Status int
	Header http.Header
	Bytes  int64  // copied to the writer (a success only)
	Body   string // the body of an error answer (at most 1 MiB)
}

// Download sends GET path (such as
// /api/Spaces-1/packages/packages-app.1.0.0/raw) through cl's node with its
// API key, and a Range header if rangeSpec is not empty (such as
// "bytes=0-99"). It streams the body of a success (a status below 300) to
// w as it arrives; an error answer's body is kept in Body. The error is the
// transport's or w's.
func Download(ctx context.Context, cl *client.Client, path, rangeSpec string, w io.Writer) (DownloadAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cl.BaseURL, "/")+path, nil)
	if err != nil {
		return DownloadAnswer{}, err
	}
	req.Header.Set("X-Octopus-ApiKey", cl.APIKey)
	if rangeSpec != "" {
		req.Header.Set("Range", rangeSpec)
	}
	resp, err := transfers.Do(req)
	if err != nil {
		return DownloadAnswer{}, err
	}
	defer resp.Body.Close()
	a := DownloadAnswer{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode >= 300 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		a.Body = string(b)
		return a, err
	}
	a.Bytes, err = io.Copy(w, resp.Body)
	return a, err
}

// PseudoRandom returns a reader of size pseudo-random bytes that seed
// decides: the same seed yields the same bytes whatever the sizes of the
// reads, so that a test can stream a large file it never holds, and
// generate any prefix of it again to check a part. It generates more than
// a GiB a second.
func PseudoRandom(seed uint64, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), size)
}
