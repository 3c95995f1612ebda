package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/environments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/projects"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/tagsets"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/tenants"
)

// TestTenantsOfficialClient: tag sets and tenants through the official
// client: create, get by id and by name, list, update, delete; a tenant
// connected to a project and its environment, carrying a tag, found by its
// project.
func TestTenantsOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)

	set := tagsets.NewTagSet("Region")
	set.Tags = []*tagsets.Tag{tagsets.NewTag("Europe", "#336699"), tagsets.NewTag("Asia", "#993366")}
	set, err := c.TagSets.Add(set)
	if err != nil || !strings.HasPrefix(set.ID, "TagSets-") || len(set.Tags) != 2 || set.Tags[0].CanonicalTagName != "Region/Europe" || set.Tags[0].ID == "" {
		t.Fatalf("TagSets.Add: %+v, %v", set, err)
	}
	if got, err := c.TagSets.GetByID(set.ID); err != nil || got.Name != "Region" || got.Type != "MultiSelect" {
		t.Fatalf("TagSets.GetByID: %+v, %v", got, err)
	}
	if got, err := c.TagSets.GetByName("region"); err != nil || got.ID != set.ID {
		t.Fatalf("TagSets.GetByName: %+v, %v", got, err)
	}

	env, err := c.Environments.Add(environments.NewEnvironment("Production"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Projects.Add(projects.NewProject("Web", testLifecycle, defaultGroupID(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	tn := tenants.NewTenant("Acme")
	tn.ProjectEnvironments = map[string][]string{p.GetID(): {env.GetID()}}
	tn.TenantTags = []string{"region/europe"}
	tn, err = c.Tenants.Add(tn)
	if err != nil || !strings.HasPrefix(tn.ID, "Tenants-") || len(tn.TenantTags) != 1 || tn.TenantTags[0] != "Region/Europe" {
		t.Fatalf("Tenants.Add: %+v, %v", tn, err)
	}
	if got, err := c.Tenants.GetByIdentifier("ACME"); err != nil || got.ID != tn.ID || got.ProjectEnvironments[p.GetID()][0] != env.GetID() {
		t.Fatalf("Tenants.GetByIdentifier by name: %+v, %v", got, err)
	}
	if _, err := c.Tenants.Add(tenants.NewTenant("Other")); err != nil {
		t.Fatal(err)
	}
	// (The client's GetByProjectID expands "projectID", which the link's
	// template, Octopus's as cuttle's, calls projectId: it lists every
	// tenant. Get with a TenantsQuery sends projectId.)
	if got, err := c.Tenants.Get(tenants.TenantsQuery{ProjectID: p.GetID()}); err != nil || got.TotalResults != 1 || got.Items[0].ID != tn.ID {
		t.Fatalf("Tenants.Get by project: %+v, %v", got, err)
	}
	if all, err := c.Tenants.GetAll(); err != nil || len(all) != 2 {
		t.Fatalf("Tenants.GetAll: %d, %v", len(all), err)
	}

	// What a tenant uses cannot go while it does.
	for what, path := range map[string]string{
		"the tag set of a carried tag": "/api/Spaces-1/tagsets/" + set.ID,
		"a connected project":          "/api/Spaces-1/projects/" + p.GetID(),
		"an environment of a tenant":   "/api/Spaces-1/environments/" + env.GetID(),
	} {
		status, body := e.do("DELETE", path, e.adminKey, "")
		wantError(t, "deleting "+what, status, body, http.StatusConflict)
		if !strings.Contains(string(body), "Acme") {
			t.Errorf("deleting %s: %s does not name the tenant", what, body)
		}
	}
	set.Tags = set.Tags[1:]
	if _, err := c.TagSets.Update(set); err == nil {
		t.Error("removing a carried tag from its set succeeded")
	}

	tn.TenantTags, tn.ProjectEnvironments, tn.Description = []string{}, map[string][]string{}, "no longer a customer"
	if up, err := c.Tenants.Update(tn); err != nil || up.Description != "no longer a customer" || len(up.TenantTags) != 0 {
		t.Fatalf("Tenants.Update: %+v, %v", up, err)
	}
	if up, err := c.TagSets.Update(set); err != nil || len(up.Tags) != 1 || up.Tags[0].Name != "Asia" {
		t.Fatalf("TagSets.Update once the tag is free: %+v, %v", up, err)
	}
	if err := tenants.DeleteByID(c, "Spaces-1", tn.ID); err != nil {
		t.Fatalf("tenants.DeleteByID: %v", err)
	}
	if err := tagsets.DeleteByID(c, "Spaces-1", set.ID); err != nil {
		t.Fatalf("tagsets.DeleteByID: %v", err)
	}
	if _, err := c.Tenants.GetByID(tn.ID); err == nil {
		t.Error("Tenants.GetByID after delete succeeded")
	}
}

// TestTenantBadInput: what a tag set or a tenant may not be is refused with
// the Octopus error body, and nothing is stored.
func TestTenantBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if status, body := e.do("POST", "/api/Spaces-1/tagsets", e.adminKey, `{"Name": "Region", "Tags": [{"Name": "Europe", "Color": "#333333"}]}`); status != http.StatusCreated {
		t.Fatalf("creating a tag set: %d %s", status, body)
	}
	tenant := func(fields string) string { return fmt.Sprintf(`{"Name": "Acme"%s}`, fields) }
	for _, tc := range []struct {
		what, method, path, body string
		status                   int
	}{
		{"a tag set without a name", "POST", "/api/Spaces-1/tagsets", `{"Tags": []}`, 400},
		{"a tag set name taken in another case", "POST", "/api/Spaces-1/tagsets", `{"Name": "REGION"}`, 409},
		{"a tag without a color", "POST", "/api/Spaces-1/tagsets", `{"Name": "Tier", "Tags": [{"Name": "Gold"}]}`, 400},
		{"a tag of a bad color", "POST", "/api/Spaces-1/tagsets", `{"Name": "Tier", "Tags": [{"Name": "Gold", "Color": "gold"}]}`, 400},
		{"two tags of one name", "POST", "/api/Spaces-1/tagsets", `{"Name": "Tier", "Tags": [{"Name": "Gold", "Color": "#333333"}, {"Name": "GOLD", "Color": "#333333"}]}`, 400},
		{"a tag with a slash", "POST", "/api/Spaces-1/tagsets", `{"Name": "Tier", "Tags": [{"Name": "a/b", "Color": "#333333"}]}`, 400},
		{"a tag set of another scope", "POST", "/api/Spaces-1/tagsets", `{"Name": "Tier", "Scopes": ["Project"]}`, 400},
		{"a tag set of an unknown type", "POST", "/api/Spaces-1/tagsets", `{"Name": "Tier", "Type": "Many"}`, 400},
		{"a tenant without a name", "POST", "/api/Spaces-1/tenants", `{}`, 400},
		{"a tenant of an unknown project", "POST", "/api/Spaces-1/tenants", tenant(`, "ProjectEnvironments": {"Projects-99": []}`), 400},
		{"a tenant of a project id of another type", "POST", "/api/Spaces-1/tenants", tenant(`, "ProjectEnvironments": {"Environments-1": []}`), 400},
		{"a tenant of an unknown tag", "POST", "/api/Spaces-1/tenants", tenant(`, "TenantTags": ["Region/Mars"]`), 400},
		{"a tenant tag that is not canonical", "POST", "/api/Spaces-1/tenants", tenant(`, "TenantTags": ["Europe"]`), 400},
		{"a cloned tenant", "POST", "/api/Spaces-1/tenants", tenant(`, "ClonedFromTenantId": "Tenants-1"`), 400},
		{"a tenant of the wrong type of field", "POST", "/api/Spaces-1/tenants", tenant(`, "TenantTags": "Region/Europe"`), 400},
		{"get a tenant by another type's id", "GET", "/api/Spaces-1/tenants/TagSets-1", ``, 404},
		{"get an unknown tag set", "GET", "/api/Spaces-1/tagsets/TagSets-99", ``, 404},
	} {
		status, body := e.do(tc.method, tc.path, e.adminKey, tc.body)
		wantError(t, tc.what, status, body, tc.status)
	}
	if _, all := e.do("GET", "/api/Spaces-1/tenants/all", e.adminKey, ""); string(all) != "[]" {
		t.Errorf("after the refusals, the tenants are %s", all)
	}
	if _, all := e.do("GET", "/api/Spaces-1/tagsets/all", e.adminKey, ""); strings.Count(string(all), `"Self":"/api/Spaces-1/tagsets/`) != 1 {
		t.Errorf("after the refusals, the tag sets are %s", all)
	}
}
