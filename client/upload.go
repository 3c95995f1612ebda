package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Package is a package version of the built-in feed, as the API answers it.
type Package struct {
	Id               string
	PackageId        string
	Version          string
	Title            string
	Published        time.Time
	FeedId           string
	PackageSizeBytes int64
	Hash             string // lower-case hex SHA-256 of the file
	FileExtension    string
	Links            map[string]string
}

// errUploadEnded stops the goroutine that writes an upload's body once
// the server has answered.
var errUploadEnded = errors.New("the server answered the upload")

// UploadPackage sends a package file to the built-in feed
// (POST /api/Spaces-1/packages/raw?overwriteMode=mode): a multipart/form-data
// body, its part "file" named fileName (the file's base name, such as
// app.1.0.0.zip), streamed from body with chunked transfer encoding. It
// never holds more of the file than a copy buffer, and has no deadline but
// ctx's. It returns the package the server answered, and kept: true when
// the version existed and was kept (IgnoreIfExists, 200). An error answer
// is an *Error.
func (c *Client) UploadPackage(ctx context.Context, fileName string, body io.Reader, mode string) (p Package, kept bool, err error) {
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
		pw.CloseWithError(err) // nil: the reader sees io.EOF
	}()
	defer func() {
		pr.CloseWithError(errUploadEnded) // stops the writer if the server answered before the end
		<-written
	}()
	path := "/api/Spaces-1/packages/raw?" + url.Values{"overwriteMode": {mode}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+path, pr)
	if err != nil {
		return Package{}, false, err
	}
	req.ContentLength = -1 // unknown: chunked
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	if c.APIKey != "" {
		req.Header.Set("X-Octopus-ApiKey", c.APIKey)
	}
	resp, err := c.unbounded().Do(req)
	if err != nil {
		return Package{}, false, err
	}
	defer resp.Body.Close()
	// Read the answer whole before the writer is stopped: stopping it
	// fails the request's write, which closes the connection.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Package{}, false, err
	}
	if resp.StatusCode >= 400 {
		return Package{}, false, errorOf(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Package{}, false, fmt.Errorf("decoding the answer to POST %s: %w", path, err)
	}
	return p, resp.StatusCode == http.StatusOK, nil
}

// Download copies the body of the answer to GET path (such as an
// artifact's content) to w, with no deadline but ctx's, and returns how
// many bytes it copied. An error answer is an *Error.
func (c *Client) Download(ctx context.Context, path string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	if c.APIKey != "" {
		req.Header.Set("X-Octopus-ApiKey", c.APIKey)
	}
	resp, err := c.unbounded().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return 0, decodeError(resp)
	}
	return io.Copy(w, resp.Body)
}

// unbounded is the HTTP client without its overall timeout, for transfers
// as long as their files are.
func (c *Client) unbounded() *http.Client {
	h := *c.httpClient()
	h.Timeout = 0
	return &h
}
