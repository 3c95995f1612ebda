package main

import (
	"encoding/json"
	"encoding/pem"
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

// newFakeAPI serves the routes over plain HTTP, or over HTTPS with
// httptest's own certificate when secure.
func newFakeAPI(t *testing.T, secure bool) *fakeAPI {
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
	f.srv = httptest.NewUnstartedServer(mux)
	if secure {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
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

func (f *fakeAPI) machineCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.machines)
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
	api := newFakeAPI(t, false)
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
	api := newFakeAPI(t, false)
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

// unchanged fails the test if the agent's configuration is not as before.
func unchanged(t *testing.T, home string, before []byte, what string) {
	t.Helper()
	if after, err := os.ReadFile(filepath.Join(home, agent.ConfigFile)); err != nil || string(after) != string(before) {
		t.Errorf("%s changed agent.json:\n%s\nwas\n%s", what, after, before)
	}
}

// TestAgentRegisterChecksServerThumbprint: register and poll-server given
// --server-thumbprint refuse a cluster that answers another thumbprint,
// naming both, and change nothing: no machine registered, agent.json as it
// was. Given the right one (in any case, with colons) they trust it without
// a warning; without it, they warn that the thumbprint came unverified over
// plain HTTP.
func TestAgentRegisterChecksServerThumbprint(t *testing.T) {
	api := newFakeAPI(t, false)
	home := t.TempDir()
	if code, out, errOut := cli(t, nil, "agent", "configure", "--home", home, "--polling", "--name", "web-1"); code != 0 {
		t.Fatalf("configure: %d\n%s%s", code, out, errOut)
	}
	before, err := os.ReadFile(filepath.Join(home, agent.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CUTTLE_SERVER": api.srv.URL, "CUTTLE_API_KEY": api.key}
	register := []string{"agent", "register", "--home", home, "--environment", "Production", "--role", "web"}
	wrong := strings.Repeat("CD", 32)

	code, _, errOut := cli(t, env, append(register, "--server-thumbprint", wrong)...)
	if code != 1 || !strings.Contains(errOut, wrong) || !strings.Contains(errOut, api.thumbprint) || !strings.Contains(errOut, "nothing was changed") {
		t.Errorf("register with a wrong --server-thumbprint: %d %s; want refused naming both thumbprints", code, errOut)
	}
	if code, _, errOut = cli(t, env, append(register, "--server-thumbprint", "ABC")...); code != 2 || !strings.Contains(errOut, "--server-thumbprint") {
		t.Errorf("register with a malformed --server-thumbprint: %d %s; want a usage error", code, errOut)
	}
	if n := api.machineCount(); n != 0 {
		t.Fatalf("a refused register registered %d machine(s)", n)
	}
	unchanged(t, home, before, "a refused register")

	colons := strings.ToLower(api.thumbprint[:2] + ":" + api.thumbprint[2:4] + ":" + api.thumbprint[4:])
	code, out, errOut := cli(t, env, append(register, "--server-thumbprint", colons)...)
	if code != 0 || !strings.Contains(out, api.thumbprint) || strings.Contains(errOut, "warning") || api.machineCount() != 1 {
		t.Fatalf("register with the right --server-thumbprint %s: %d\n%s%s", colons, code, out, errOut)
	}
	registered, err := os.ReadFile(filepath.Join(home, agent.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}

	code, _, errOut = cli(t, nil, "agent", "poll-server", "--home", home, "--address", "node-b:10943", "--server-thumbprint", wrong)
	if code != 1 || !strings.Contains(errOut, wrong) || !strings.Contains(errOut, api.thumbprint) {
		t.Errorf("poll-server with a wrong --server-thumbprint: %d %s; want refused naming both thumbprints", code, errOut)
	}
	unchanged(t, home, registered, "a refused poll-server")
	code, out, errOut = cli(t, nil, "agent", "poll-server", "--home", home, "--address", "node-b:10943")
	if code != 0 || !strings.Contains(out, "now polls https://node-b:10943") ||
		!strings.Contains(errOut, "warning") || !strings.Contains(errOut, api.thumbprint) || !strings.Contains(errOut, "plain HTTP") {
		t.Fatalf("poll-server without --server-thumbprint: %d\n%s%s; want it done with a warning", code, out, errOut)
	}
	code, out, errOut = cli(t, map[string]string{"CUTTLE_SERVER_THUMBPRINT": api.thumbprint}, "agent", "poll-server", "--home", home, "--address", "node-c:10943")
	if code != 0 || !strings.Contains(out, "now polls https://node-c:10943") || strings.Contains(errOut, "warning") {
		t.Fatalf("poll-server with the right $CUTTLE_SERVER_THUMBPRINT: %d\n%s%s", code, out, errOut)
	}
}

// TestAgentRegisterOverTLS: client commands reach an https API whose
// certificate a private authority signed when --ca-cert (or
// $CUTTLE_CA_CERT) names it, and refuse it otherwise, changing nothing.
func TestAgentRegisterOverTLS(t *testing.T) {
	api := newFakeAPI(t, true)
	home, dir := t.TempDir(), t.TempDir()
	if code, out, errOut := cli(t, nil, "agent", "configure", "--home", home, "--listen", ":10999", "--name", "db-1"); code != 0 {
		t.Fatalf("configure: %d\n%s%s", code, out, errOut)
	}
	before, err := os.ReadFile(filepath.Join(home, agent.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.srv.Certificate().Raw}), 0o644)
	notPEM := filepath.Join(dir, "ca.txt")
	os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644)
	env := map[string]string{"CUTTLE_SERVER": api.srv.URL, "CUTTLE_API_KEY": api.key}
	register := []string{"agent", "register", "--home", home, "--environment", "Staging", "--role", "db", "--public-host", "db-1.example"}

	if code, _, errOut := cli(t, env, register...); code != 1 || !strings.Contains(errOut, "unknown authority") || !strings.Contains(errOut, "--ca-cert") {
		t.Errorf("register without --ca-cert: %d %s; want refused for the unknown authority, with a hint", code, errOut)
	}
	plain := map[string]string{"CUTTLE_SERVER": strings.Replace(api.srv.URL, "https://", "http://", 1)}
	if code, _, errOut := cli(t, plain, register...); code != 1 || !strings.Contains(errOut, "HTTP request to an HTTPS server") {
		t.Errorf("register over plain HTTP to the HTTPS port: %d %s; want refused, saying why", code, errOut)
	}
	if code, _, errOut := cli(t, env, append(register, "--ca-cert", notPEM)...); code != 1 || !strings.Contains(errOut, notPEM) {
		t.Errorf("register with a --ca-cert that holds no certificate: %d %s; want refused naming the file", code, errOut)
	}
	if n := api.machineCount(); n != 0 {
		t.Fatalf("a refused register registered %d machine(s)", n)
	}
	unchanged(t, home, before, "a refused register")

	env["CUTTLE_SERVER"], env["CUTTLE_CA_CERT"] = api.srv.URL, ca
	code, out, errOut := cli(t, env, append(register, "--server-thumbprint", api.thumbprint)...)
	if code != 0 || !strings.Contains(out, "Machines-1") || strings.Contains(errOut, "warning") {
		t.Fatalf("register over HTTPS with $CUTTLE_CA_CERT: %d\n%s%s", code, out, errOut)
	}
	checkTrusted(t, home, []agent.TrustedServer{{Thumbprint: api.thumbprint, CommunicationStyle: cuttle.Listening}})
}
