package server_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/masterkey"
)

// browser is a person's browser: the cookies of its sign-in, sent to any
// node (no sticky sessions).
type browser struct {
	t       *testing.T
	cookies []*http.Cookie
	csrf    string
}

// do sends a request with the browser's cookies, and csrf as the CSRF
// header when not empty.
func (b *browser) do(method, url, csrf, body string) (int, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	if csrf != "" {
		req.Header.Set(cuttle.CSRFHeader, csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// login signs in through node; a browser with the session's cookies.
func login(t *testing.T, node, username, password string) (*browser, int, string) {
	t.Helper()
	resp, err := http.Post(node+"/api/users/login", "application/json", strings.NewReader(`{"Username": "`+username+`", "Password": "`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b := &browser{t: t, cookies: resp.Cookies()}
	for _, c := range b.cookies {
		if c.Name == cuttle.CSRFCookie {
			b.csrf = c.Value
		}
	}
	return b, resp.StatusCode, string(body)
}

// makeAdministrator adds the user of id to the administrators team
// through node.
func makeAdministrator(t *testing.T, node, key, id string) {
	t.Helper()
	_, teams := request(t, "GET", node+"/api/teams?name="+url.QueryEscape(cuttle.AdministratorsTeam), key, "")
	team := teams["Items"].([]any)[0].(map[string]any)
	team["MemberUserIds"] = append(team["MemberUserIds"].([]any), id)
	body, _ := json.Marshal(team)
	if status, doc := request(t, "PUT", node+"/api/teams/"+team["Id"].(string), key, string(body)); status != http.StatusOK {
		t.Fatalf("making %s an administrator: %d %v", id, status, doc)
	}
}

// TestSignInOnAnyNode: a person signs in through node a and the session
// cookie works on node b; a write needs the CSRF header; a cookie sealed
// by another cluster's key is refused; a sign-out through b, and a
// password change through a, end sessions on both nodes at once; failed
// sign-ins are limited per user across the nodes.
func TestSignInOnAnyNode(t *testing.T) {
	t.Parallel()
	a, b, admin := twoNodes(t)
	status, user := request(t, "POST", a+"/api/users", admin, `{"Username": "ana", "IsActive": true}`)
	if status != http.StatusCreated {
		t.Fatalf("creating a user: %d %v", status, user)
	}
	id := user["Id"].(string)
	makeAdministrator(t, a, admin, id)
	if status, doc := request(t, "PUT", a+"/api/users/"+id+"/password", admin, `{"Password": "short"}`); status != http.StatusBadRequest {
		t.Fatalf("a short password: %d %v; want 400", status, doc)
	}
	if status, doc := request(t, "PUT", a+"/api/users/"+id+"/password", admin, `{"Password": "correct horse battery"}`); status != http.StatusOK {
		t.Fatalf("setting the password: %d %v", status, doc)
	}

	if _, status, body := login(t, a, "ana", "wrong horse battery"); status != http.StatusUnauthorized || !strings.Contains(body, "username or password is wrong") {
		t.Fatalf("a wrong password: %d %s", status, body)
	}
	if _, status, body := login(t, b, "nobody", "correct horse battery"); status != http.StatusUnauthorized || !strings.Contains(body, "username or password is wrong") {
		t.Fatalf("an unknown user: %d %s", status, body)
	}
	br, status, body := login(t, a, "ANA", "correct horse battery")
	if status != http.StatusOK || br.csrf == "" || !strings.Contains(body, `"Username":"ana"`) {
		t.Fatalf("signing in: %d %s (csrf %q)", status, body, br.csrf)
	}
	if status, body := br.do("GET", b+"/api/users/me", "", ""); status != http.StatusOK || !strings.Contains(body, `"Username":"ana"`) {
		t.Fatalf("the session on node b: %d %s", status, body)
	}
	if status, body := br.do("POST", b+"/api/Spaces-1/environments", "", `{"Name": "Dev"}`); status != http.StatusForbidden || !strings.Contains(body, cuttle.CSRFHeader) {
		t.Fatalf("a write without the CSRF header: %d %s; want 403 naming the header", status, body)
	}
	if status, body := br.do("POST", b+"/api/Spaces-1/environments", "wrong", `{"Name": "Dev"}`); status != http.StatusForbidden {
		t.Fatalf("a write with a wrong CSRF header: %d %s; want 403", status, body)
	}
	if status, body := br.do("POST", a+"/api/Spaces-1/environments", br.csrf, `{"Name": "Dev"}`); status != http.StatusCreated {
		t.Fatalf("a write with the CSRF header: %d %s", status, body)
	}

	// A cookie sealed by another cluster's key, and one that is not sealed.
	other, _ := masterkey.Generate().Seal("session cookie", []byte("Sessions-1"))
	for _, value := range []string{base64.RawURLEncoding.EncodeToString(other), "Sessions-1"} {
		forged := &browser{t: t, cookies: []*http.Cookie{{Name: cuttle.SessionCookie, Value: value}}}
		if status, _ := forged.do("GET", a+"/api/users/me", "", ""); status != http.StatusUnauthorized {
			t.Fatalf("a forged session cookie %q: %d; want 401", value, status)
		}
	}

	// A sign-out through b ends the session on a.
	second, status, _ := login(t, b, "ana", "correct horse battery")
	if status != http.StatusOK {
		t.Fatalf("a second sign-in: %d", status)
	}
	if status, body := br.do("POST", b+"/api/users/logout", br.csrf, ""); status != http.StatusOK {
		t.Fatalf("signing out: %d %s", status, body)
	}
	if status, _ := br.do("GET", a+"/api/users/me", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("the signed-out session on node a: %d; want 401", status)
	}
	if status, _ := second.do("GET", a+"/api/users/me", "", ""); status != http.StatusOK {
		t.Fatalf("the other session after a sign-out: %d; want it alive", status)
	}
	// A password change (its owner's, with the old one) ends every session.
	if status, body := second.do("PUT", b+"/api/users/me/password", second.csrf, `{"Password": "another long password", "OldPassword": "nope"}`); status != http.StatusBadRequest {
		t.Fatalf("a change with a wrong old password: %d %s; want 400", status, body)
	}
	if status, body := second.do("PUT", b+"/api/users/me/password", second.csrf, `{"Password": "another long password", "OldPassword": "correct horse battery"}`); status != http.StatusOK {
		t.Fatalf("changing the password: %d %s", status, body)
	}
	if status, _ := second.do("GET", a+"/api/users/me", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("a session after its user's password changed: %d; want 401", status)
	}

	// Failed sign-ins, spread over both nodes, are counted together.
	for i := range cuttle.UserLoginFailures {
		node := []string{a, b}[i%2]
		if _, status, _ := login(t, node, "ana", "wrong password!"); status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d", i+1, status)
		}
	}
	if _, status, body := login(t, a, "ana", "another long password"); status != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Fatalf("a sign-in after %d failures over two nodes: %d %s; want 429", cuttle.UserLoginFailures, status, body)
	}
	if _, status, _ := login(t, b, "ana", "another long password"); status != http.StatusTooManyRequests {
		t.Fatalf("the same through the other node: %d; want 429", status)
	}
}
