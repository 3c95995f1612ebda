package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/projectgroups"
)

// officialClient returns the official Go client on the env's node, in the default space.
func officialClient(t *testing.T, e *env) *octoclient.Client {
	t.Helper()
	u, _ := url.Parse(e.srv.URL)
	c, err := octoclient.NewClient(nil, u, e.adminKey, "Spaces-1")
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// TestProjectGroupsOfficialClient: create, get by id and by name, list,
// update, delete through the client's service.
func TestProjectGroupsOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	g, err := c.ProjectGroups.Add(projectgroups.NewProjectGroup("Web apps"))
	if err != nil || !strings.HasPrefix(g.ID, "ProjectGroups-") || g.Slug != "web-apps" {
		t.Fatalf("Add: %+v, %v", g, err)
	}
	if got, err := c.ProjectGroups.GetByID(g.ID); err != nil || got.Name != "Web apps" {
		t.Fatalf("GetByID: %+v, %v", got, err)
	}
	if got, err := c.ProjectGroups.GetByIDOrName("web APPS"); err != nil || got.ID != g.ID {
		t.Fatalf("GetByIDOrName by name: %+v, %v", got, err)
	}
	all, err := c.ProjectGroups.GetAll()
	if err != nil || len(all) < 2 { // and the Default Project Group
		t.Fatalf("GetAll: %d, %v", len(all), err)
	}
	// take=0 answers the total alone, as Octopus does.
	if status, body := e.do("GET", "/api/Spaces-1/projectgroups?take=0", e.adminKey, ""); status != http.StatusOK ||
		!strings.Contains(string(body), `"Items":[]`) || !strings.Contains(string(body), `"TotalResults":2`) {
		t.Errorf("take=0: %d %s; want no items and the total 2", status, body)
	}
	g.Description = "the web"
	if up, err := c.ProjectGroups.Update(*g); err != nil || up.Description != "the web" {
		t.Fatalf("Update: %+v, %v", up, err)
	}
	if err := projectgroups.DeleteByID(c, "Spaces-1", g.ID); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	if _, err := c.ProjectGroups.GetByID(g.ID); err == nil {
		t.Fatal("GetByID after delete succeeded")
	}
}

// TestDocumentBadInput: clear 4xx answers with the Octopus error body.
func TestDocumentBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/Spaces-1/projectgroups", `{"Name": ""}`, http.StatusBadRequest},
		{"POST", "/api/Spaces-1/projectgroups", `{"Name": 3}`, http.StatusBadRequest},
		{"POST", "/api/Spaces-1/projectgroups", `not json`, http.StatusBadRequest},
		{"POST", "/api/Spaces-2/projectgroups", `{"Name": "x"}`, http.StatusNotFound},
		{"GET", "/api/Spaces-1/projectgroups/ProjectGroups-999", ``, http.StatusNotFound},
		{"GET", "/api/Spaces-1/projectgroups/Environments-1", ``, http.StatusNotFound},
		{"PUT", "/api/Spaces-1/projectgroups/ProjectGroups-999", `{"Name": "x"}`, http.StatusNotFound},
		{"DELETE", "/api/Spaces-1/projectgroups/ProjectGroups-999", ``, http.StatusNotFound},
		{"GET", "/api/Spaces-1/projectgroups?skip=-1", ``, http.StatusBadRequest},
		{"GET", "/api/Spaces-1/projectgroups?skip=9223372036854775807", ``, http.StatusBadRequest},
		{"POST", "/api/Spaces-1/projectgroups", `{"Name": "` + strings.Repeat("n", 201) + `"}`, http.StatusBadRequest},
	} {
		status, body := e.do(tc.method, tc.path, e.adminKey, tc.body)
		if status != tc.status || !strings.Contains(string(body), "ErrorMessage") {
			t.Errorf("%s %s %s: %d %s; want %d with an error body", tc.method, tc.path, tc.body, status, body, tc.status)
		}
	}
	// A stale version answers 409 and changes nothing.
	status, body := e.do("POST", "/api/Spaces-1/projectgroups", e.adminKey, `{"Name": "Versioned"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := jsonField(t, body, "Id")
	if status, body := e.do("PUT", "/api/Spaces-1/projectgroups/"+id, e.adminKey, `{"Name": "V1", "Version": 0}`); status != http.StatusOK {
		t.Fatalf("PUT at version 0: %d %s", status, body)
	}
	if status, body := e.do("PUT", "/api/Spaces-1/projectgroups/"+id, e.adminKey, `{"Name": "V2", "Version": 0}`); status != http.StatusConflict {
		t.Fatalf("PUT at the stale version 0: %d %s; want 409", status, body)
	}
	if _, body := e.do("GET", "/api/Spaces-1/projectgroups/"+id, e.adminKey, ``); jsonField(t, body, "Name") != "V1" {
		t.Fatalf("after a stale PUT: %s", body)
	}
}

// jsonField returns the string field name of the JSON object body.
func jsonField(t testing.TB, body []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	s, _ := m[name].(string)
	return s
}
