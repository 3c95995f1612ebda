package api_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/core"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/feeds"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/packages"
)

// storedPackages returns the package files in the node's shared storage.
func (e *env) storedPackages() []string {
	e.t.Helper()
	var files []string
	root := filepath.Join(e.dataDir, "storage", "packages")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files
}

func TestPackagesWithTheOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, _ := url.Parse(e.srv.URL)
	c, err := octoclient.NewClient(nil, u, e.adminKey, "Spaces-1")
	if err != nil {
		t.Fatal(err)
	}
	v1 := bytes.Repeat([]byte("version one "), 10_000)
	upload := func(name string, content []byte, mode packages.OverwriteMode) (*packages.PackageUploadResponse, bool, error) {
		t.Helper()
		return packages.Upload(c, "Spaces-1", name, bytes.NewReader(content), mode)
	}
	resp, created, err := upload("Acme.Web.1.0.0.zip", v1, packages.OverwriteModeFailIfExists)
	sum := sha256.Sum256(v1)
	if err != nil || !created || resp.PackageId != "Acme.Web" || resp.Version != "1.0.0" || resp.Hash != hex.EncodeToString(sum[:]) ||
		resp.PackageSizeBytes != len(v1) || resp.FileExtension != ".zip" || resp.FeedId != "feeds-builtin" {
		t.Fatalf("Upload: %+v, created %v, %v", resp, created, err)
	}
	// Each overwrite mode on a version that exists.
	if _, _, err := upload("Acme.Web.1.0.0.zip", []byte("other"), packages.OverwriteModeFailIfExists); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("FailIfExists on an existing version: %v, want 409", err)
	}
	if resp, created, err := upload("acme.web.1.0.0.zip", []byte("other"), packages.OverwriteModeIgnoreIfExists); err != nil || created || resp.Hash != hex.EncodeToString(sum[:]) {
		t.Fatalf("IgnoreIfExists (the id in another case): %+v, created %v, %v; want the stored one kept", resp, created, err)
	}
	v1b := []byte("version one, rebuilt")
	if resp, created, err := upload("Acme.Web.1.0.0.zip", v1b, packages.OverwriteModeOverwriteExisting); err != nil || !created || resp.PackageSizeBytes != len(v1b) {
		t.Fatalf("OverwriteExisting: %+v, created %v, %v", resp, created, err)
	}
	for _, name := range []string{"Acme.Web.1.2.0.tar.gz", "Acme.Web.1.10.0-beta.1.nupkg", "Acme.Db.2.0.0.tar"} {
		if _, _, err := upload(name, []byte(name), packages.OverwriteModeFailIfExists); err != nil {
			t.Fatalf("Upload %s: %v", name, err)
		}
	}
	if files := e.storedPackages(); len(files) != 4 {
		t.Fatalf("storage holds %v, want one file per version (4)", files)
	}

	// The CLI's list: one item per package, its highest version.
	list, err := packages.List(c, "Spaces-1", "", 2147483647)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range list.Items {
		got = append(got, p.PackageID+"@"+p.Version)
	}
	if strings.Join(got, " ") != "Acme.Db@2.0.0 Acme.Web@1.10.0-beta.1" {
		t.Fatalf("packages.List = %v", got)
	}
	if list, err := packages.List(c, "Spaces-1", "web", 0); err != nil || len(list.Items) != 1 {
		t.Fatalf("packages.List filtered by web: %v, %v", list, err)
	}

	// The CLI's versions: the built-in feed, then its versions search.
	fs, err := c.Feeds.Get(feeds.FeedsQuery{FeedType: "BuiltIn", Take: 1})
	if err != nil || len(fs.Items) != 1 || fs.Items[0].GetID() != "feeds-builtin" {
		t.Fatalf("Feeds.Get BuiltIn: %+v, %v", fs, err)
	}
	versions, err := c.Feeds.SearchFeedPackageVersions(fs.Items[0], feeds.SearchPackageVersionsQuery{PackageID: "Acme.Web", Take: 10})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, v := range versions.Items {
		got = append(got, v.Version)
	}
	if strings.Join(got, " ") != "1.10.0-beta.1 1.2.0 1.0.0" || versions.Items[2].SizeBytes != int64(len(v1b)) {
		t.Fatalf("versions of Acme.Web: %v", got)
	}
	all, err := c.Feeds.GetAll()
	if err != nil || len(all) != 1 || all[0].GetName() != "Octopus Server (built-in)" {
		t.Fatalf("Feeds.GetAll: %v, %v", all, err)
	}

	// Get, download, delete.
	p, err := packages.GetByID(c, "Spaces-1", "packages-Acme.Web.1.0.0")
	if err != nil || p.Version != "1.0.0" || p.PackageID != "Acme.Web" {
		t.Fatalf("GetByID: %+v, %v", p, err)
	}
	status, body := e.do("GET", "/api/Spaces-1/packages/packages-Acme.Web.1.0.0/raw", e.adminKey, "")
	if status != 200 || !bytes.Equal(body, v1b) {
		t.Fatalf("download: %d, %d bytes; want the overwritten content", status, len(body))
	}
	if err := packages.DeleteByID(c, "Spaces-1", "packages-Acme.Web.1.0.0"); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	if _, err := packages.GetByID(c, "Spaces-1", "packages-Acme.Web.1.0.0"); !isStatus(err, 404) {
		t.Fatalf("GetByID of the deleted version: %v, want 404", err)
	}
	if files := e.storedPackages(); len(files) != 3 {
		t.Fatalf("after the delete storage holds %v, want 3 files", files)
	}
	// The CLI asks for a delta signature first: 404 makes it upload whole.
	if status, _ := e.do("GET", "/api/Spaces-1/packages/Acme.Web/1.2.0/delta-signature", e.adminKey, ""); status != 404 {
		t.Fatalf("delta-signature: %d, want 404", status)
	}
}

// isStatus reports whether err is the official client's error of status.
func isStatus(err error, status int) bool {
	apiErr, ok := err.(*core.APIError)
	return ok && apiErr.StatusCode == status
}

// multipartBody returns a package upload's body and content type.
func multipartBody(t *testing.T, name string, content []byte) (*bytes.Buffer, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(content)
	mw.Close()
	return &b, mw.FormDataContentType()
}

func TestPackageUploadBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	post := func(query, name string, content []byte) (int, string) {
		t.Helper()
		body, ctype := multipartBody(t, name, content)
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/Spaces-1/packages/raw"+query, body)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("X-Octopus-ApiKey", e.adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ query, name, want string }{
		{"", "app.zip", "has no version"},
		{"", "app.1.0.0.exe", ""},
		{"?overwriteMode=Sometimes", "app.1.0.0.zip", "Sometimes"},
		{"", "../app.1.0.0.zip", ""},
		{"", "..%2Fapp.1.0.0.zip", ""},
		{"", "a/../../b.1.0.0.zip", ""},
		{"", ".hidden.1.0.0.zip", ""},
	} {
		status, body := post(c.query, c.name, []byte("content"))
		if status != 400 || !strings.Contains(body, c.want) {
			t.Errorf("upload of %q%s: %d %s; want 400 naming %q", c.name, c.query, status, body, c.want)
		}
	}
	// A body that is not multipart.
	status, body := e.do("POST", "/api/Spaces-1/packages/raw", e.adminKey, `{"file": "app.1.0.0.zip"}`)
	wantError(t, "a JSON body", status, body, 400)

	// An upload cut off half-way: the client sends half its chunked body
	// and closes the connection.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	half, ctype := multipartBody(t, "cut.1.0.0.zip", bytes.Repeat([]byte("x"), 1<<20))
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "POST /api/Spaces-1/packages/raw HTTP/1.1\r\nHost: x\r\nX-Octopus-ApiKey: %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n", e.adminKey, ctype)
	chunk := half.Bytes()[:half.Len()/2]
	fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
	w.Flush()
	conn.Close()
	if status, _ := post("", "after.1.0.0.zip", []byte("after")); status != 201 {
		t.Fatalf("an upload after the cut one: %d", status)
	}
	if status, body := post("", "after.1.0.0.zip", []byte("again")); status != 409 || !strings.Contains(body, "already exists") {
		t.Fatalf("a second upload of after 1.0.0: %d %s; want 409", status, body)
	}
	status, body = e.do("GET", "/api/Spaces-1/packages?take=100", e.adminKey, "")
	if status != 200 || strings.Contains(string(body), "cut") || !strings.Contains(string(body), "after") {
		t.Fatalf("the list after a cut upload: %d %s", status, body)
	}
	deadline := 50
	for files := e.storedPackages(); len(files) != 1; files = e.storedPackages() {
		if deadline--; deadline == 0 {
			t.Fatalf("storage holds %v after a cut upload; want only after.1.0.0.zip", files)
		}
		waitBriefly()
	}
	// Unknown packages and feeds.
	for _, path := range []string{"/api/Spaces-1/packages/packages-nope.1.0.0", "/api/Spaces-1/packages/nope", "/api/Spaces-1/packages/packages-..%2F..%2Fetc.1.0.0/raw",
		"/api/Spaces-1/feeds/feeds-other", "/api/Spaces-1/feeds/feeds-other/packages/versions?packageId=after"} {
		if status, body := e.do("GET", path, e.adminKey, ""); status != 404 {
			t.Errorf("GET %s: %d %s; want 404", path, status, body)
		}
	}
	if status, body := e.do("GET", "/api/Spaces-1/feeds/feeds-builtin/packages/versions", e.adminKey, ""); status != 400 {
		t.Errorf("versions without packageId: %d %s; want 400", status, body)
	}
	if status, _ := e.do("POST", "/api/Spaces-1/packages/raw", "", ""); status != 401 {
		t.Errorf("an upload without a key: %d, want 401", status)
	}
}

// waitBriefly pauses a poll loop.
func waitBriefly() { time.Sleep(100 * time.Millisecond) }
