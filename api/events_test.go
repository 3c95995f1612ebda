package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAuditLog: creating, changing and deleting an environment, and a
// sign-in, are events: who, what, when, through which node; the list
// filters by user, document and time; a failed write is no event.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := time.Now().UTC().Add(-time.Second)
	status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "Audited"}`)
	if status != http.StatusCreated {
		t.Fatalf("creating: %d %s", status, body)
	}
	env := jsonField(t, body, "Id")
	var doc map[string]any
	json.Unmarshal(body, &doc)
	doc["Description"] = "changed"
	b, _ := json.Marshal(doc)
	if status, body := e.do("PUT", "/api/Spaces-1/environments/"+env, e.adminKey, string(b)); status != http.StatusOK {
		t.Fatalf("changing: %d %s", status, body)
	}
	if status, _ := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "audited"}`); status != http.StatusConflict {
		t.Fatalf("a duplicate: %d, want 409", status)
	}
	if status, _ := e.do("DELETE", "/api/Spaces-1/environments/"+env, e.adminKey, ""); status != http.StatusOK {
		t.Fatalf("deleting: %d", status)
	}
	type event struct {
		Category, UserId, Username, Message, Node string
		RelatedDocumentIds                        []string
		Occurred                                  time.Time
	}
	list := func(query string) []event {
		t.Helper()
		status, body := e.do("GET", "/api/events?"+query, e.adminKey, "")
		var page struct{ Items []event }
		if status != 200 || json.Unmarshal(body, &page) != nil {
			t.Fatalf("events?%s: %d %s", query, status, body)
		}
		return page.Items
	}
	got := list("regarding=" + env)
	var cats []string
	for _, ev := range got {
		cats = append(cats, ev.Category)
		if ev.Username != "admin" || ev.Node != "node-1" || ev.Occurred.Before(start) || !strings.Contains(ev.Message, env) && ev.Category != "Created" {
			t.Errorf("an event: %+v", ev)
		}
	}
	if strings.Join(cats, " ") != "Deleted Modified Created" {
		t.Fatalf("the events regarding %s: %v, want Deleted Modified Created (newest first)", env, cats)
	}
	admin := got[0].UserId
	if n := len(list("users=" + admin + "&regarding=" + env)); n != 3 {
		t.Errorf("filtered by user: %d events, want 3", n)
	}
	if n := len(list("users=Users-999&regarding=" + env)); n != 0 {
		t.Errorf("another user's: %d events, want 0", n)
	}
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if n := len(list("from=" + future)); n != 0 {
		t.Errorf("events from an hour from now: %d, want 0", n)
	}
	if n := len(list("to=" + future + "&regarding=" + env)); n != 3 {
		t.Errorf("events before an hour from now: %d, want 3", n)
	}
	if status, _ := e.do("GET", "/api/events?from=yesterday", e.adminKey, ""); status != http.StatusBadRequest {
		t.Errorf("a bad time: %d, want 400", status)
	}
}
