package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/core"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/environments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/lifecycles"
)

// TestLifecyclesOfficialClient: the seeded Default Lifecycle; create, get
// by id and by name, list, update (phase ids stable), delete through the
// client; an environment a lifecycle names cannot be deleted.
func TestLifecyclesOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	test, err := c.Environments.Add(environments.NewEnvironment("Test"))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := c.Environments.Add(environments.NewEnvironment("Production"))
	if err != nil {
		t.Fatal(err)
	}

	def, err := c.Lifecycles.GetByIDOrName("default lifecycle")
	if err != nil || def.Name != "Default Lifecycle" || len(def.Phases) != 0 || def.ReleaseRetentionPolicy == nil ||
		!def.ReleaseRetentionPolicy.ShouldKeepForever || def.TentacleRetentionPolicy == nil {
		t.Fatalf("the Default Lifecycle: %+v, %v", def, err)
	}

	l := lifecycles.NewLifecycle("Web")
	l.Description = "test, then production"
	first := lifecycles.NewPhase("Testing")
	first.AutomaticDeploymentTargets = []string{test.GetID()}
	second := lifecycles.NewPhase("Live")
	second.OptionalDeploymentTargets = []string{prod.GetID()}
	second.IsPriorityPhase = true
	second.ReleaseRetentionPolicy = core.KeepForeverRetentionPeriod()
	l.Phases = []*lifecycles.Phase{first, second}
	l, err = c.Lifecycles.Add(l)
	if err != nil || !strings.HasPrefix(l.ID, "Lifecycles-") || len(l.Phases) != 2 {
		t.Fatalf("Add: %+v, %v", l, err)
	}
	ids := []string{l.Phases[0].ID, l.Phases[1].ID}
	if ids[0] == "" || ids[1] == "" || ids[0] == ids[1] || !l.Phases[1].IsPriorityPhase || l.ReleaseRetentionPolicy.QuantityToKeep != 30 ||
		l.ReleaseRetentionPolicy.Unit != "Days" || !l.Phases[1].ReleaseRetentionPolicy.ShouldKeepForever {
		t.Fatalf("Add answered %+v with phases %+v, %+v", l, l.Phases[0], l.Phases[1])
	}
	if got, err := c.Lifecycles.GetByID(l.ID); err != nil || got.Phases[0].AutomaticDeploymentTargets[0] != test.GetID() {
		t.Fatalf("GetByID: %+v, %v", got, err)
	}
	if got, err := c.Lifecycles.GetByIDOrName("WEB"); err != nil || got.ID != l.ID {
		t.Fatalf("GetByIDOrName by name: %+v, %v", got, err)
	}
	if got, err := lifecycles.GetByID(c, "Spaces-1", l.ID); err != nil || got.Description != l.Description {
		t.Fatalf("lifecycles.GetByID: %+v, %v", got, err)
	}
	all, err := c.Lifecycles.GetAll()
	if err != nil || len(all) != 2 {
		t.Fatalf("GetAll: %d, %v", len(all), err)
	}
	if page, err := c.Lifecycles.Get(lifecycles.Query{PartialName: "we"}); err != nil || page.TotalResults != 1 {
		t.Fatalf("Get partialName: %+v, %v", page, err)
	}

	// The environment of a phase cannot be deleted while the lifecycle names it.
	if err := environments.DeleteByID(c, "Spaces-1", prod.GetID()); err == nil || !strings.Contains(err.Error(), l.ID) {
		t.Fatalf("deleting an environment of a phase: %v; want a refusal naming %s", err, l.ID)
	}
	status, body := e.do("DELETE", "/api/Spaces-1/environments/"+prod.GetID(), e.adminKey, "")
	wantError(t, "DELETE an environment of a phase", status, body, http.StatusConflict)
	if !strings.Contains(string(body), "Web") {
		t.Errorf("the refusal %s does not name the lifecycle", body)
	}

	// Update: the phases keep their ids; a phase sent without one keeps its name's.
	l.Phases[1].OptionalDeploymentTargets = []string{}
	l.Phases[1].AutomaticDeploymentTargets = []string{test.GetID()}
	l.Phases[0].AutomaticDeploymentTargets = []string{}
	l.Phases[0].ID = ""
	l.Name = "Web apps"
	up, err := c.Lifecycles.Update(l)
	if err != nil || up.Name != "Web apps" || up.Phases[0].ID != ids[0] || up.Phases[1].ID != ids[1] {
		t.Fatalf("Update: %+v, %v; want the phase ids %v", up, err, ids)
	}
	if err := environments.DeleteByID(c, "Spaces-1", prod.GetID()); err != nil {
		t.Fatalf("deleting an environment no phase names: %v", err)
	}
	if err := lifecycles.DeleteByID(c, "Spaces-1", l.ID); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	if _, err := c.Lifecycles.GetByID(l.ID); err == nil {
		t.Fatal("GetByID after delete succeeded")
	}
	if err := environments.DeleteByID(c, "Spaces-1", test.GetID()); err != nil {
		t.Fatalf("deleting the environment of a deleted lifecycle: %v", err)
	}
}

// TestLifecycleBadInput: what a lifecycle may not be is refused with the
// Octopus error body, and nothing changes.
func TestLifecycleBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name":"Production"}`); status != http.StatusCreated {
		t.Fatalf("creating an environment: %d %s", status, body)
	}
	phase := func(fields string) string { return `{"Name": "L", "Phases": [` + fields + `]}` }
	for _, tc := range []struct {
		name, method, path, body, want string
		status                         int
	}{
		{"no name", "POST", "", `{"Name": "  "}`, "Name", 400},
		{"taken name", "POST", "", `{"Name": "DEFAULT lifecycle"}`, "exists", 409},
		{"name type", "POST", "", `{"Name": 7}`, "Name", 400},
		{"unknown environment", "POST", "", phase(`{"Name": "P", "AutomaticDeploymentTargets": ["Environments-99"]}`), "Environments-99", 400},
		{"not an environment", "POST", "", phase(`{"Name": "P", "OptionalDeploymentTargets": ["Production"]}`), "Production", 400},
		{"environment twice", "POST", "", phase(`{"Name": "P", "AutomaticDeploymentTargets": ["Environments-1"]}, {"Name": "Q", "OptionalDeploymentTargets": ["Environments-1"]}`), "Environments-1", 400},
		{"phase without name", "POST", "", phase(`{"AutomaticDeploymentTargets": []}`), "Name", 400},
		{"two phases of a name", "POST", "", phase(`{"Name": "P"}, {"Name": "p"}`), "two phases", 400},
		{"minimum", "POST", "", phase(`{"Name": "P", "AutomaticDeploymentTargets": ["Environments-1"], "MinimumEnvironmentsBeforePromotion": 2}`), "MinimumEnvironmentsBeforePromotion", 400},
		{"unit", "POST", "", `{"Name": "L", "ReleaseRetentionPolicy": {"QuantityToKeep": 3, "Unit": "Weeks"}}`, "Unit", 400},
		{"phase unit", "POST", "", phase(`{"Name": "P", "TentacleRetentionPolicy": {"QuantityToKeep": 3, "Unit": ""}}`), "Unit", 400},
		{"keep nothing", "POST", "", `{"Name": "L", "TentacleRetentionPolicy": {"QuantityToKeep": 0, "Unit": "Days"}}`, "QuantityToKeep", 400},
		{"phases type", "POST", "", `{"Name": "L", "Phases": {}}`, "Phases", 400},
		{"unknown id", "GET", "/Lifecycles-99", ``, "Lifecycles-99", 404},
		{"another collection's id", "GET", "/Environments-1", ``, "Environments-1", 404},
		{"put unknown", "PUT", "/Lifecycles-99", `{"Name": "x"}`, "Lifecycles-99", 404},
		{"put another id", "PUT", "/Lifecycles-1", `{"Id": "Lifecycles-2", "Name": "x"}`, "Lifecycles-2", 400},
		{"delete unknown", "DELETE", "/Lifecycles-99", ``, "Lifecycles-99", 404},
	} {
		status, body := e.do(tc.method, "/api/Spaces-1/lifecycles"+tc.path, e.adminKey, tc.body)
		wantError(t, tc.name, status, body, tc.status)
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %s does not mention %q", tc.name, body, tc.want)
		}
	}
	if status, _ := e.do("POST", "/api/Spaces-1/lifecycles", e.userKey, `{"Name": "Mine"}`); status != http.StatusForbidden {
		t.Errorf("a viewer creating a lifecycle: %d, want 403", status)
	}
	status, body := e.do("GET", "/api/Spaces-1/lifecycles/all", e.userKey, "")
	if status != http.StatusOK || strings.Count(string(body), `"Id":"Lifecycles-`) != 1 {
		t.Errorf("after the refusals, the lifecycles are %d %s; want only the Default Lifecycle", status, body)
	}
}
