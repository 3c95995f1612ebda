package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// TestExpiredSessionRefused: a session past its end is refused, and a
// service account cannot be given a password.
func TestExpiredSessionRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, body := e.do("POST", "/api/users", e.adminKey, `{"Username": "ben", "IsActive": true}`)
	if status != http.StatusCreated {
		t.Fatalf("creating a user: %d %s", status, body)
	}
	id := jsonField(t, body, "Id")
	if status, body := e.do("PUT", "/api/users/"+id+"/password", e.adminKey, `{"Password": "a long enough password"}`); status != http.StatusOK {
		t.Fatalf("setting the password: %d %s", status, body)
	}
	resp, err := http.Post(e.srv.URL+"/api/users/login", "application/json", strings.NewReader(`{"Username": "ben", "Password": "a long enough password", "RememberMe": true}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in: %d", resp.StatusCode)
	}
	me := func() int {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/users/me", nil)
		for _, c := range resp.Cookies() {
			req.AddCookie(c)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if status := me(); status != http.StatusOK {
		t.Fatalf("the session: %d", status)
	}
	if err := e.store.Update(t.Context(), func(tx *collection.Tx) error {
		ss, _, err := resources.Sessions.List(t.Context(), tx, collection.Query{Take: -1})
		for _, s := range ss {
			if s.Expires.Sub(s.Created) != cuttle.RememberedSessionLength {
				t.Errorf("a remembered session lasts %v, want %v", s.Expires.Sub(s.Created), cuttle.RememberedSessionLength)
			}
			s.Expires = time.Now().Add(-time.Minute)
			if err := resources.Sessions.Update(t.Context(), tx, &s); err != nil {
				return err
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if status := me(); status != http.StatusUnauthorized {
		t.Fatalf("an expired session: %d; want 401", status)
	}
	status, body = e.do("POST", "/api/users", e.adminKey, `{"Username": "robot", "IsActive": true, "IsService": true}`)
	if status != http.StatusCreated {
		t.Fatalf("creating a service account: %d %s", status, body)
	}
	if status, body := e.do("PUT", "/api/users/"+jsonField(t, body, "Id")+"/password", e.adminKey, `{"Password": "a long enough password"}`); status != http.StatusBadRequest {
		t.Fatalf("a service account's password: %d %s; want 400", status, body)
	}
}

// TestPortalServed: every node serves the portal at /app/, and / leads
// there; the portal needs no key (its API calls do).
func TestPortalServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/", "/app"} {
		resp, err := noRedirect.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/app/" {
			t.Errorf("GET %s: %d to %q, want 302 to /app/", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, err := http.Get(e.srv.URL + "/app/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "app.js") {
		t.Errorf("GET /app/: %d %s", resp.StatusCode, body)
	}
}
