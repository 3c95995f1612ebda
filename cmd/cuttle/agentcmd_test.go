package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agent"
	"github.com/cuttledeploy/cuttle/client"
)

// fakeAPI answers the three routes agent register and poll-server call,
// and keeps the machines posted.
type fakeAPI struct {
	srv        *httptest.Server
	key        string
	thumbprint string

	mu       sync.Mutex
	machines []client.NewMachine
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{key: "API-TESTKEY1234567890", thumbprint: strings.Repeat("AB", 32)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/certificates/certificate-global", func(w http.ResponseWriter, r *http.Request) {
		f.answer(w, r, http.StatusOK, map[string]any{"Id": "certificate-global", "Name": "cluster", "Thumbprint": f.thumbprint,
			"SignatureAlgorithm": "ecdsa-with-SHA256", "Links": map[string]string{"Self": "/api/certificates/certificate-global"}})
	})
	mux.HandleFunc("GET /api/Spaces-1/environments/all", func(w http.ResponseWriter, r *http.Request) {
		f.answer(w, r, http.StatusOK, []map[string]any{{"Id": "Environments-1", "Name": "Production"}, {"Id": "Environments-2", "Name": "Staging"}})
	})
	mux.HandleFunc("POST /api/Spaces-1/machines", func(w http.ResponseWriter, r *http.Request) {
		var m client.NewMachine
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			f.answer(w, r, http.StatusBadRequest, map[string]any{"ErrorMessage": err.Error()})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, have := range f.machines {
			if have.Name == m.Name {
				f.answer(w, r, http.StatusConflict, map[string]any{"ErrorMessage": "A machine named " + m.Name + " exists already."})
				return
			}
		}
		f.machines = append(f.machines, m)
		f.answer(w, r, http.StatusCreated, client.Machine{Id: "Machines-" + string(rune('0'+len(f.machines))), Name: m.Name, Roles: m.Roles,
			EnvironmentIds: m.EnvironmentIds, Endpoint: m.Endpoint, Thumbprint: m.Endpoint.Thumbprint, Uri: m.Endpoint.Uri, HealthStatus: "Unknown", SpaceId: "Spaces-1"})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) answer(w http.ResponseWriter, r *http.Request, status int, v any) {
	if r.Header.Get("X-Octopus-ApiKey") != f.key {
		status, v = http.StatusUnauthorized, map[string]any{"ErrorMessage": "You must be logged in to perform this action."}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAPI) lastMachine() client.NewMachine {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.machines[len(f.machines)-1]
}

func TestAgentConfigureKeepsItsIdentity(t *testing.T) {
	home := filepath.Join(t.TempDir(), "agent")
	code, out, errOut := cli(t, nil, "agent", "configure", "--home", home, "--polling", "--name", "web-1")
	if code != 0 || !strings.Contains(out, "polling") {
		t.Fatalf("configure: %d\n%s%s", code, out, errOut)
	}
	first, err := agent.Load(home)
	if err != nil || first.Name != "web-1" || first.Mode != agent.Polling {
		t.Fatalf("after configure: %+v, %v", first, err)
	}
	code, out, errOut = cli(t, nil, "agent", "show-thumbprint", "--home", home)
	if code != 0 || strings.TrimSpace(out) != first.Identity.Thumbprint {
		t.Fatalf("show-thumbprint: %d %q %s; want %s", code, out, errOut, first.Identity.Thumbprint)
	}
	if code, out, errOut = cli(t, nil, "agent", "configure", "--home", home, "--name", "web-2"); code != 0 {
		t.Fatalf("configure again: %d\n%s%s", code, out, errOut)
	}
	second, err := agent.Load(home)
	if err != nil || second.Name != "web-2" || second.Mode != agent.Polling || second.SubscriptionId != first.SubscriptionId || second.Identity.Thumbprint != first.Identity.Thumbprint {
		t.Fatalf("configuring again changed more than the name: %+v then %+v (%v)", first, second, err)
	}
	if code, _, _ = cli(t, nil, "agent", "configure", "--home", home, "--polling", "--listen", ":1"); code != 2 {
		t.Errorf("--polling with --listen: exit %d, want 2", code)
	}
	code, out, errOut = cli(t, map[string]string{"CUTTLE_AGENT_HOME": home}, "agent", "show-thumbprint")
	if code != 0 || strings.TrimSpace(out) != first.Identity.Thumbprint {
		t.Errorf("show-thumbprint with $CUTTLE_AGENT_HOME: %d %q %s", code, out, errOut)
	}
	if code, _, errOut = cli(t, nil, "agent", "show-thumbprint", "--home", filepath.Join(home, "missing")); code != 1 || !strings.Contains(errOut, "cuttle agent configure") {
		t.Errorf("show-thumbprint of a home not configured: %d %s; want a hint to configure", code, errOut)
	}
}

func TestAgentRegisterAndPollServer(t *testing.T) {
	api := newFakeAPI(t)
	home := t.TempDir()
	if code, out, errOut := cli(t, nil, "agent", "configure", "--home", home, "--polling", "--name", "web-1"); code != 0 {
		t.Fatalf("configure: %d\n%s%s", code, out, errOut)
	}
	cfg, err := agent.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUTTLE_SERVER": api.srv.URL, "CUTTLE_API_KEY": api.key}
	register := []string{"agent", "register", "--home", home, "--environment", "production", "--role", "web", "--role", "db"}

	if code, _, errOut := cli(t, map[string]string{"CUTTLE_SERVER": api.srv.URL, "CUTTLE_API_KEY": "API-WRONG"}, register...); code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "logged in") {
		t.Errorf("a wrong key: %d %s; want exit 1 with the API's error", code, errOut)
	}
	if code, _, errOut := cli(t, env, "agent", "register", "--home", home, "--environment", "Moon", "--role", "web"); code != 1 || !strings.Contains(errOut, "Production, Staging") {
		t.Errorf("an unknown environment: %d %s; want exit 1 listing the environments", code, errOut)
	}
	code, out, errOut := cli(t, env, register...)
	if code != 0 || !strings.Contains(out, "Machines-1") || !strings.Contains(out, api.thumbprint) {
		t.Fatalf("register: %d\n%s%s", code, out, errOut)
	}
	m := api.lastMachine()
	want := client.NewMachine{Name: "web-1", Roles: []string{"web", "db"}, EnvironmentIds: []string{"Environments-1"},
		Endpoint: client.Endpoint{CommunicationStyle: "TentacleActive", Uri: cfg.SubscriptionId, Thumbprint: cfg.Identity.Thumbprint}}
	if got, _ := json.Marshal(m); string(got) != string(mustJSON(t, want)) {
		t.Errorf("posted %s\nwant   %s", got, mustJSON(t, want))
	}
	if code, _, errOut = cli(t, env, register...); code != 1 || !strings.Contains(errOut, "409") || !strings.Contains(errOut, "exists already") {
		t.Errorf("a name taken: %d %s; want exit 1 with the API's error", code, errOut)
	}
	serverHost := strings.TrimPrefix(api.srv.URL, "http://")
	serverHost = serverHost[:strings.LastIndexByte(serverHost, ':')]
	checkTrusted(t, home, []agent.TrustedServer{
		{Thumbprint: api.thumbprint, CommunicationStyle: cuttle.Polling, Address: "https://" + serverHost + ":10943", SubscriptionId: cfg.SubscriptionId},
	})

	code, out, errOut = cli(t, env, "agent", "poll-server", "--home", home, "--address", "lb.example:443")
	if code != 0 || !strings.Contains(out, "now polls https://lb.example:443") {
		t.Fatalf("poll-server: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, env, "agent", "poll-server", "--home", home, "--address", "https://lb.example:443")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("poll-server of an address polled already: %d\n%s%s", code, out, errOut)
	}
	checkTrusted(t, home, []agent.TrustedServer{
		{Thumbprint: api.thumbprint, CommunicationStyle: cuttle.Polling, Address: "https://" + serverHost + ":10943", SubscriptionId: cfg.SubscriptionId},
		{Thumbprint: api.thumbprint, CommunicationStyle: cuttle.Polling, Address: "https://lb.example:443", SubscriptionId: cfg.SubscriptionId},
	})
}

func TestListeningAgentRegisters(t *testing.T) {
	api := newFakeAPI(t)
	home := t.TempDir()
	if code, out, errOut := cli(t, nil, "agent", "configure", "--home", home, "--listen", ":10999", "--name", "db-1"); code != 0 {
		t.Fatalf("configure: %d\n%s%s", code, out, errOut)
	}
	cfg, err := agent.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUTTLE_SERVER": api.srv.URL, "CUTTLE_API_KEY": api.key}
	if code, _, errOut := cli(t, env, "agent", "poll-server", "--home", home, "--address", "node:10943"); code != 1 || !strings.Contains(errOut, "listening agent") {
		t.Errorf("poll-server on a listening agent: %d %s; want a refusal that says why", code, errOut)
	}
	code, out, errOut := cli(t, env, "agent", "register", "--home", home, "--environment", "Staging", "--role", "db", "--public-host", "db-1.example", "--output", "json")
	var m client.Machine
	if code != 0 || json.Unmarshal([]byte(out), &m) != nil || m.Id != "Machines-1" {
		t.Fatalf("register: %d\n%s%s", code, out, errOut)
	}
	if got, want := api.lastMachine().Endpoint, (client.Endpoint{CommunicationStyle: "TentaclePassive", Uri: "https://db-1.example:10999/", Thumbprint: cfg.Identity.Thumbprint}); got != want {
		t.Errorf("endpoint %+v, want %+v", got, want)
	}
	checkTrusted(t, home, []agent.TrustedServer{{Thumbprint: api.thumbprint, CommunicationStyle: cuttle.Listening}})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkTrusted(t *testing.T, home string, want []agent.TrustedServer) {
	t.Helper()
	cfg, err := agent.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, cfg.TrustedServers); string(got) != string(mustJSON(t, want)) {
		t.Errorf("trusted servers %s\nwant            %s", got, mustJSON(t, want))
	}
	if b, err := os.ReadFile(filepath.Join(home, agent.ConfigFile)); err != nil || !strings.Contains(string(b), "TrustedServers") {
		t.Errorf("agent.json: %s %v", b, err)
	}
}
