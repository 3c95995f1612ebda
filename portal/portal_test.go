package portal_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle/portal"
)

// TestNothingFromElsewhere: no file of the portal names another site (no
// CDN, no fonts from elsewhere): every URL in it is relative or the
// node's own.
func TestNothingFromElsewhere(t *testing.T) {
	outside := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['"]?(https?:|//)`)
	n := 0
	err := fs.WalkDir(portal.Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(portal.Assets(), path)
		if err != nil {
			return err
		}
		if m := outside.Find(b); m != nil {
			t.Errorf("%s names another site: %q", path, m)
		}
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("the portal's files: %d, %v", n, err)
	}
}

// TestServed: the portal is served under /app/ with a policy that keeps
// the page on its node.
func TestServed(t *testing.T) {
	srv := httptest.NewServer(portal.Handler())
	defer srv.Close()
	for path, want := range map[string]string{"/app/": "text/html", "/app/app.js": "javascript", "/app/app.css": "text/css"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: %d %q, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
		}
	}
}
