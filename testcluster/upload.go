package testcluster

// This file holds helpers for tests of the built-in package repository
// across node processes: uploads sent as the official client sends them,
// downloads streamed to a writer, and large deterministic content
// generated on the fly.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle/client"
)

// Package is a package version of the built-in feed as the API answers it.
type Package struct {
	Id               string
	PackageId        string
	Version          string
	Published        time.Time
	PackageSizeBytes int64
	Hash             string // lower-case hex SHA-256 of the file
	FileExtension    string
}

// UploadAnswer is a node's answer to a package upload.
type UploadAnswer struct {
	Status  int
	Package Package // decoded when Status is 200 or 201
	Body    string  // the answer's body (at most 1 MiB), for messages
}

// transfers is the HTTP client of uploads and downloads: no overall
// timeout (a transfer takes as long as its file), only the caller's
// context.
var transfers = &http.Client{}

// errAnswered stops the goroutine that writes an upload's body once the
// node has answered.
var errAnswered = errors.New("the node answered the upload")

// UploadPackage sends a package file to the built-in feed through cl's node
// as the official client sends it: POST
// /api/Spaces-1/packages/raw?overwriteMode=mode with cl's API key, a
// multipart/form-data body with one part name="file" filename=fileName
// that streams body, in chunked transfer encoding (no Content-Length). It
// holds no more of the file than a copy buffer. An answer of any status is
// returned as an UploadAnswer; the error is the transport's (the
// connection failed, ctx ended). If the node answers before it has read
// the whole body (a 409 for a version that exists), the rest of body is
// not read.
func UploadPackage(ctx context.Context, cl *client.Client, fileName, mode string, body io.Reader) (UploadAnswer, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	written := make(chan struct{})
	go func() {
		defer close(written)
		part, err := mw.CreateFormFile("file", fileName)
		if err == nil {
			_, err = io.Copy(part, body)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err) // nil: the request's body ends with io.EOF
	}()
	defer func() {
		pr.CloseWithError(errAnswered) // stops the writer if the node answered before the end
		<-written
	}()
	path := strings.TrimRight(cl.BaseURL, "/") + "/api/Spaces-1/packages/raw?" + url.Values{"overwriteMode": {mode}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, pr)
	if err != nil {
		return UploadAnswer{}, err
	}
	req.ContentLength = -1 // unknown: chunked
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Octopus-ApiKey", cl.APIKey)
	resp, err := transfers.Do(req)
	if err != nil {
		return UploadAnswer{}, err
	}
	defer resp.Body.Close()
	// The answer is read whole before the writer is stopped: stopping it
	// fails the request's write, which closes the connection.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return UploadAnswer{}, err
	}
	a := UploadAnswer{Status: resp.StatusCode, Body: string(b)}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(b, &a.Package); err != nil {
			return a, err
		}
	}
	return a, nil
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
