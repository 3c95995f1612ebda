package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/environments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/machines"
)

const (
	thumbA = "AAAABBBBCCCCDDDDEEEEFFFF0000111122223333444455556666777788889999"
	thumbB = "1111222233334444555566667777888899990000AAAABBBBCCCCDDDDEEEEFFFF"
)

// TestOfficialClientEnvironmentsAndMachines: the official Go client creates,
// lists, reads, updates and deletes environments and deployment targets,
// with both its old (sling) and new (HttpSession) layers.
func TestOfficialClientEnvironmentsAndMachines(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, _ := url.Parse(e.srv.URL)
	c, err := octoclient.NewClient(nil, u, e.adminKey, "Spaces-1")
	if err != nil {
		t.Fatal(err)
	}

	prod, err := c.Environments.Add(environments.NewEnvironment("Production"))
	if err != nil || prod.GetID() == "" || prod.Name != "Production" {
		t.Fatalf("Environments.Add: %+v, %v", prod, err)
	}
	test := environments.NewEnvironment("Test")
	test.SpaceID = "Spaces-1"
	if test, err = environments.Add(c, test); err != nil {
		t.Fatalf("environments.Add: %v", err)
	}
	all, err := c.Environments.GetAll()
	if err != nil || len(all) != 2 {
		t.Fatalf("Environments.GetAll: %v, %v", all, err)
	}
	byName, err := c.Environments.GetByName("production")
	if err != nil || len(byName) != 1 || byName[0].GetID() != prod.GetID() {
		t.Fatalf("Environments.GetByName: %v, %v", byName, err)
	}
	prod.Description = "live"
	if prod, err = c.Environments.Update(prod); err != nil || prod.Description != "live" {
		t.Fatalf("Environments.Update: %+v, %v", prod, err)
	}
	if _, err := c.Environments.Add(environments.NewEnvironment("PRODUCTION")); err == nil {
		t.Error("a second environment named PRODUCTION was created")
	}

	// A polling and a listening target, as an agent registers them.
	poll, _ := url.Parse("poll://abcdefghij0123456789/")
	target := machines.NewDeploymentTarget("web-1", machines.NewPollingTentacleEndpoint(poll, thumbA), []string{prod.GetID()}, []string{"web"})
	web, err := c.Machines.Add(target)
	if err != nil {
		t.Fatalf("Machines.Add: %v", err)
	}
	listen, _ := url.Parse("https://db-1:10933/")
	db := machines.NewDeploymentTarget("db-1", machines.NewListeningTentacleEndpoint(listen, thumbB), []string{test.GetID(), prod.GetID()}, []string{"db"})
	db.SpaceID = "Spaces-1"
	if db, err = machines.Add(c, db); err != nil {
		t.Fatalf("machines.Add: %v", err)
	}

	list, err := c.Machines.Get(machines.MachinesQuery{Roles: []string{"web"}})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "web-1" {
		t.Fatalf("Machines.Get(roles=web): %+v, %v", list, err)
	}
	list, err = machines.Get(c, "Spaces-1", machines.MachinesQuery{EnvironmentIDs: []string{prod.GetID()}})
	if err != nil || list.TotalResults != 2 {
		t.Fatalf("machines.Get(environmentIds): %+v, %v", list, err)
	}
	got, err := c.Machines.GetByID(web.GetID())
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := got.Endpoint.(*machines.PollingTentacleEndpoint)
	if !ok || ep.Thumbprint != thumbA || ep.URI.String() != "poll://abcdefghij0123456789/" || got.HealthStatus != "Unknown" {
		t.Fatalf("Machines.GetByID: %+v, endpoint %#v", got, got.Endpoint)
	}

	// Update through both layers: roles, disabled, environments.
	got.Roles = append(got.Roles, "api")
	got.IsDisabled = true
	updated, err := c.Machines.Update(got)
	if err != nil || !updated.IsDisabled || strings.Join(updated.Roles, ",") != "web,api" {
		t.Fatalf("Machines.Update: %+v, %v", updated, err)
	}
	updated.Roles = []string{} // the client then leaves Roles out: read as empty
	updated.EnvironmentIDs = []string{test.GetID()}
	if updated, err = machines.Update(c, updated); err != nil || len(updated.Roles) != 0 || updated.EnvironmentIDs[0] != test.GetID() {
		t.Fatalf("machines.Update: %+v, %v", updated, err)
	}
	roles, err := c.MachineRoles.GetAll()
	if err != nil || len(roles) != 1 || *roles[0] != "db" {
		t.Fatalf("MachineRoles.GetAll: %v, %v", roles, err)
	}

	// An environment with targets cannot be deleted; one without can.
	if err := environments.DeleteByID(c, "Spaces-1", test.GetID()); err == nil {
		t.Error("an environment with deployment targets was deleted")
	}
	if err := machines.DeleteByID(c, "Spaces-1", web.GetID()); err != nil {
		t.Fatalf("machines.DeleteByID: %v", err)
	}
	if err := c.Machines.DeleteByID(db.GetID()); err != nil {
		t.Fatalf("Machines.DeleteByID: %v", err)
	}
	if err := environments.DeleteByID(c, "Spaces-1", test.GetID()); err != nil {
		t.Fatalf("environments.DeleteByID: %v", err)
	}
	if _, err := c.Machines.GetByID(web.GetID()); err == nil {
		t.Error("a deleted machine was found")
	}
}

// TestMachineBadInput: what a machine or environment may not be is refused
// with a 400 that says why, and nothing is created.
func TestMachineBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name":"Production"}`)
	if status != http.StatusCreated {
		t.Fatalf("creating an environment: %d %s", status, body)
	}
	machine := func(endpoint string, extra string) string {
		return `{"Name":"m","EnvironmentIds":["Environments-1"],"Roles":["web"],"Endpoint":` + endpoint + extra + `}`
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"no endpoint", `{"Name":"m"}`, "Endpoint"},
		{"ssh", machine(`{"CommunicationStyle":"Ssh","Uri":"ssh://m","Thumbprint":"`+thumbA+`"}`, ""), "not supported"},
		{"short thumbprint", machine(`{"CommunicationStyle":"TentacleActive","Uri":"poll://abcdefghij0123456789/","Thumbprint":"ABC"}`, ""), "Thumbprint"},
		{"bad subscription", machine(`{"CommunicationStyle":"TentacleActive","Uri":"poll://ABC/","Thumbprint":"`+thumbA+`"}`, ""), "subscription id"},
		{"http listening", machine(`{"CommunicationStyle":"TentaclePassive","Uri":"http://m:10933/","Thumbprint":"`+thumbA+`"}`, ""), "https://host:port/"},
		{"no name", `{"Name":" ","Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"` + thumbA + `"}}`, "name"},
		{"unknown environment", `{"Name":"m","EnvironmentIds":["Environments-9"],"Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"` + thumbA + `"}}`, "Environments-9"},
		{"bad environment id", `{"Name":"m","EnvironmentIds":["Production"],"Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"` + thumbA + `"}}`, "Production"},
		{"tenants", machine(`{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"`+thumbA+`"}`, `,"TenantIds":["Tenants-1"]`), "tenants"},
		{"a name too long", `{"Name":"` + strings.Repeat("m", 201) + `","EnvironmentIds":["Environments-1"],"Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"` + thumbA + `"}}`, "at most 200 characters"},
		{"a role too long", `{"Name":"m","Roles":["` + strings.Repeat("r", 201) + `"],"EnvironmentIds":["Environments-1"],"Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"` + thumbA + `"}}`, "at most 200 characters"},
		{"unknown field", machine(`{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"`+thumbA+`"}`, `,"Colour":"red"`), "Colour"},
	} {
		status, body := e.do("POST", "/api/Spaces-1/machines", e.adminKey, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s; want 400 mentioning %q", tc.name, status, body, tc.want)
		}
	}
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/Spaces-1/environments", `{"Name":""}`},
		{"POST", "/api/Spaces-1/environments", `{"Name":"` + strings.Repeat("é", 201) + `"}`},
		{"POST", "/api/Spaces-1/environments", `{"Name":"x","SpaceId":"Spaces-2"}`},
		{"GET", "/api/Spaces-1/machines?isDisabled=maybe", ""},
		{"GET", "/api/Spaces-1/machines?environmentIds=Production", ""},
		{"GET", "/api/Spaces-1/machines?tenantIds=Tenants-1", ""},
	} {
		if status, body := e.do(tc.method, tc.path, e.adminKey, tc.body); status != http.StatusBadRequest {
			t.Errorf("%s %s %s: %d %s, want 400", tc.method, tc.path, tc.body, status, body)
		}
	}
	// A viewer may read but not register.
	ok := machine(`{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"`+thumbA+`"}`, "")
	if status, _ := e.do("POST", "/api/Spaces-1/machines", e.userKey, ok); status != http.StatusForbidden {
		t.Errorf("a viewer registering a machine: %d, want 403", status)
	}
	status, body = e.do("POST", "/api/Spaces-1/machines", e.adminKey, ok)
	if status != http.StatusCreated {
		t.Fatalf("a valid machine: %d %s", status, body)
	}
	var m struct{ Uri, Thumbprint string }
	json.Unmarshal(body, &m)
	if m.Uri != "https://m:10933/" {
		t.Errorf("a listening Uri without a port became %q, want https://m:10933/", m.Uri)
	}
	if status, _ := e.do("POST", "/api/Spaces-1/machines", e.adminKey, ok); status != http.StatusConflict {
		t.Errorf("a second machine named m: %d, want 409", status)
	}
	status, body = e.do("GET", "/api/Spaces-1/machines/all", e.userKey, "")
	if status != http.StatusOK || strings.Count(string(body), `"Id":"Machines-`) != 1 {
		t.Errorf("after the refusals, the machines are %d %s; want only m", status, body)
	}
}

// TestClusterCertificate: agents learn the thumbprint to trust from
// certificate-global, at the deprecated and the current route.
func TestClusterCertificate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/api/certificates/certificate-global", "/api/configuration/certificates/certificate-global"} {
		status, body := e.do("GET", path, e.userKey, "")
		var c struct{ Id, Thumbprint string }
		if status != http.StatusOK || json.Unmarshal(body, &c) != nil || c.Id != "certificate-global" || c.Thumbprint != e.thumbprint {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
		if status, _ := e.do("GET", path, "", ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s without a key: %d, want 401", path, status)
		}
	}
}
