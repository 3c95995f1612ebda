package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/environments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/machines"
)

// TestMachinePoliciesOfficialClient: the client decodes the policies (as
// the CLI's deployment-target create reads /machinepolicies/all), the
// template; create, get, update, delete; the default policy cannot be
// deleted, and deployment targets name it.
func TestMachinePoliciesOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	all, err := c.MachinePolicies.GetAll()
	if err != nil || len(all) != 1 {
		t.Fatalf("GetAll: %v, %v", all, err)
	}
	def := all[0]
	hc := def.MachineHealthCheckPolicy
	if def.Name != "Default Machine Policy" || !def.IsDefault || !strings.HasPrefix(def.ID, "MachinePolicies-") ||
		def.ConnectionConnectTimeout != time.Minute || def.ConnectionRetryCountLimit != 5 || def.ConnectionRetryTimeLimit != 5*time.Minute ||
		def.PollingRequestQueueTimeout != 2*time.Minute || hc == nil || hc.HealthCheckInterval != time.Hour || hc.HealthCheckType != "RunScript" ||
		def.MachineCleanupPolicy.DeleteMachinesBehavior != "DoNotDelete" || def.MachineUpdatePolicy.TentacleUpdateBehavior != "NeverUpdate" {
		t.Fatalf("the default policy: %+v, health %+v", def, hc)
	}
	if tpl, err := c.MachinePolicies.GetTemplate(); err != nil || tpl.ConnectionRetryCountLimit != 5 || tpl.IsDefault {
		t.Fatalf("GetTemplate: %+v, %v", tpl, err)
	}

	p := machines.NewMachinePolicy("Edge")
	p.Description = "flaky links"
	p.ConnectionRetryCountLimit = 10
	p.MachineHealthCheckPolicy.HealthCheckInterval = 2 * time.Hour
	p.MachineConnectivityPolicy.MachineConnectivityBehavior = "MayBeOfflineAndCanBeSkipped"
	p, err = c.MachinePolicies.Add(p)
	if err != nil || p.ID == def.ID || p.IsDefault || p.ConnectionRetryCountLimit != 10 || p.MachineHealthCheckPolicy.HealthCheckInterval != 2*time.Hour {
		t.Fatalf("Add: %+v, %v", p, err)
	}
	got, err := c.MachinePolicies.GetByID(p.ID)
	if err != nil || got.Name != "Edge" || got.MachineConnectivityPolicy.MachineConnectivityBehavior != "MayBeOfflineAndCanBeSkipped" {
		t.Fatalf("GetByID: %+v, %v", got, err)
	}
	if byName, err := c.MachinePolicies.GetByPartialName("edg"); err != nil || len(byName) != 1 || byName[0].ID != p.ID {
		t.Fatalf("GetByPartialName: %v, %v", byName, err)
	}
	status, body := e.do("GET", "/api/Spaces-1/machinepolicies/"+p.ID, e.adminKey, "")
	if status != http.StatusOK || !strings.Contains(string(body), `"HealthCheckInterval":"02:00:00"`) {
		t.Errorf("the stored policy %d %s: want the interval as a TimeSpan", status, body)
	}
	got.ConnectionConnectTimeout = 30 * time.Second
	got.Description = "very flaky links"
	up, err := c.MachinePolicies.Update(got)
	if err != nil || up.ConnectionConnectTimeout != 30*time.Second || up.Description != "very flaky links" {
		t.Fatalf("Update: %+v, %v", up, err)
	}
	if err := c.MachinePolicies.DeleteByID(p.ID); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	if _, err := c.MachinePolicies.GetByID(p.ID); err == nil {
		t.Fatal("GetByID after delete succeeded")
	}
	if err := c.MachinePolicies.DeleteByID(def.ID); err == nil {
		t.Fatal("the default policy was deleted")
	}
	status, body = e.do("DELETE", "/api/Spaces-1/machinepolicies/"+def.ID, e.adminKey, "")
	wantError(t, "DELETE the default policy", status, body, http.StatusConflict)
	// The default policy can be changed (IsDefault comes back as read).
	def.MachineHealthCheckPolicy.HealthCheckInterval = 30 * time.Minute
	if up, err := c.MachinePolicies.Update(def); err != nil || !up.IsDefault || up.MachineHealthCheckPolicy.HealthCheckInterval != 30*time.Minute {
		t.Fatalf("Update of the default policy: %+v, %v", up, err)
	}

	// A deployment target follows the default policy, and may name it.
	prod, err := c.Environments.Add(environments.NewEnvironment("Production"))
	if err != nil {
		t.Fatal(err)
	}
	listen, _ := url.Parse("https://web-1:10933/")
	target := machines.NewDeploymentTarget("web-1", machines.NewListeningTentacleEndpoint(listen, thumbA), []string{prod.GetID()}, []string{"web"})
	target.MachinePolicyID = def.ID
	m, err := c.Machines.Add(target)
	if err != nil || m.MachinePolicyID != def.ID {
		t.Fatalf("Machines.Add: %+v, %v; want the policy %s", m, err, def.ID)
	}
	if list, err := c.Machines.GetAll(); err != nil || len(list) != 1 || list[0].MachinePolicyID != def.ID {
		t.Fatalf("Machines.GetAll: %v, %v", list, err)
	}
	m.MachinePolicyID = p.ID
	if _, err := c.Machines.Update(m); err == nil {
		t.Error("a machine was given a machine policy that is not the default")
	}
}

// TestMachinePolicyBadInput: what a machine policy may not be is refused
// with the Octopus error body.
func TestMachinePolicyBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, tpl := e.do("GET", "/api/Spaces-1/machinepolicies/template", e.adminKey, "")
	if status != http.StatusOK {
		t.Fatalf("template: %d %s", status, tpl)
	}
	// with returns the template named name with a change: "old" -> "new" in its JSON.
	with := func(name, old, new string) string {
		body := strings.Replace(string(tpl), `"Name":""`, `"Name":"`+name+`"`, 1)
		if old != "" && !strings.Contains(body, old) {
			t.Fatalf("the template %s has no %s", tpl, old)
		}
		return strings.Replace(body, old, new, 1)
	}
	for _, tc := range []struct {
		name, method, path, body, want string
		status                         int
	}{
		{"no name", "POST", "", with(" ", "", ""), "Name", 400},
		{"taken name", "POST", "", with("default MACHINE policy", "", ""), "exists", 409},
		{"a second default", "POST", "", with("p", `"IsDefault":false`, `"IsDefault":true`), "IsDefault", 400},
		{"a duration", "POST", "", with("p", `"ConnectionConnectTimeout":"00:01:00"`, `"ConnectionConnectTimeout":"1m"`), "ConnectionConnectTimeout", 400},
		{"a short timeout", "POST", "", with("p", `"ConnectionConnectTimeout":"00:01:00"`, `"ConnectionConnectTimeout":"00:00:05"`), "ConnectionConnectTimeout", 400},
		{"a duration's type", "POST", "", with("p", `"ConnectionConnectTimeout":"00:01:00"`, `"ConnectionConnectTimeout":60`), "ConnectionConnectTimeout", 400},
		{"no interval", "POST", "", with("p", `"HealthCheckInterval":"01:00:00"`, `"HealthCheckInterval":""`), "HealthCheckInterval", 400},
		{"retries", "POST", "", with("p", `"ConnectionRetryCountLimit":5`, `"ConnectionRetryCountLimit":1`), "ConnectionRetryCountLimit", 400},
		{"cleanup", "POST", "", with("p", `"DoNotDelete"`, `"Never"`), "DeleteMachinesBehavior", 400},
		{"connectivity", "POST", "", with("p", `"ExpectedToBeOnline"`, `"Always"`), "MachineConnectivityBehavior", 400},
		{"health type", "POST", "", with("p", `"RunScript"`, `"Ping"`), "HealthCheckType", 400},
		{"run type", "POST", "", with("p", `"RunType":"Inline"`, `"RunType":"Script"`), "RunType", 400},
		{"calamari", "POST", "", with("p", `"UpdateOnDeployment"`, `"Sometimes"`), "CalamariUpdateBehavior", 400},
		{"cache", "POST", "", with("p", `"Strategy":"Default"`, `"Strategy":"Everything"`), "Strategy", 400},
		{"cron", "POST", "", with("p", `"HealthCheckCron":""`, `"HealthCheckCron":"0 * * * *"`), "HealthCheckCron", 400},
		{"no body", "POST", "", ``, "empty", 400},
		{"unknown id", "GET", "/MachinePolicies-99", ``, "MachinePolicies-99", 404},
		{"put unknown", "PUT", "/MachinePolicies-99", with("p", "", ""), "MachinePolicies-99", 404},
		{"undefault", "PUT", "/MachinePolicies-1", with("Default Machine Policy", "", ""), "IsDefault", 400},
		{"delete unknown", "DELETE", "/MachinePolicies-99", ``, "MachinePolicies-99", 404},
	} {
		status, body := e.do(tc.method, "/api/Spaces-1/machinepolicies"+tc.path, e.adminKey, tc.body)
		wantError(t, tc.name, status, body, tc.status)
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %s does not mention %q", tc.name, body, tc.want)
		}
	}
	status, body := e.do("GET", "/api/Spaces-1/machinepolicies/all", e.userKey, "")
	if status != http.StatusOK || strings.Count(string(body), `"Id":"MachinePolicies-`) != 1 || !strings.Contains(string(body), `"IsDefault":true`) {
		t.Errorf("after the refusals, the policies are %d %s; want only the default", status, body)
	}
	// A machine naming another policy than the default is refused.
	if status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name":"Production"}`); status != http.StatusCreated {
		t.Fatalf("creating an environment: %d %s", status, body)
	}
	status, body = e.do("POST", "/api/Spaces-1/machines", e.adminKey, `{"Name":"m","EnvironmentIds":["Environments-1"],"MachinePolicyId":"MachinePolicies-7",`+
		`"Endpoint":{"CommunicationStyle":"TentaclePassive","Uri":"https://m/","Thumbprint":"`+thumbA+`"}}`)
	wantError(t, "a machine of an unknown policy", status, body, http.StatusBadRequest)
}
