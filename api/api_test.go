package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/server"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// env is one node (package server, as `cuttle server` runs it) served
// in-process on a fresh embedded database.
type env struct {
	t           testing.TB
	srv         testServer
	node        *server.Node
	store       store.Store
	member      *cluster.Member
	fingerprint string // the master key's
	thumbprint  string // the cluster certificate's
	adminKey    string
	userKey     string // a key of a user who is not an administrator
	masterKey   masterkey.Key
	dataDir     string // the node's, holding its embedded database
}

// testServer is where the env's node answers.
type testServer struct{ URL string }

// Client returns the HTTP client to call it with.
func (testServer) Client() *http.Client { return http.DefaultClient }

func newEnv(t testing.TB) *env {
	t.Helper()
	return newLimitedEnv(t, cuttle.Limits{})
}

// newLimitedEnv is newEnv with a node under limits.
func newLimitedEnv(t testing.TB, limits cuttle.Limits) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, adminKey: cuttle.NewAPIKey(), userKey: cuttle.NewAPIKey(), masterKey: masterkey.Generate()}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.dataDir = t.TempDir()
	node, err := server.New(ctx, server.Config{DataDir: e.dataDir, Listen: "127.0.0.1:0", PollingListen: "127.0.0.1:0",
		NodeName: "node-1", AdminAPIKey: e.adminKey, MasterKey: e.masterKey.String(), ShutdownGrace: time.Second, Limits: limits,
		Logger: quiet, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		node.Stop(stop)
	})
	e.node, e.store, e.member = node, node.Store(), node.Member()
	e.fingerprint, e.thumbprint = node.Cluster().KeyFingerprint, node.Thumbprint()
	e.srv = testServer{URL: "http://" + node.Addr()}
	// The viewer is no administrator: they may view everything, and
	// change nothing but their own API keys.
	if err := e.store.Update(ctx, func(tx *collection.Tx) error {
		viewer := cuttle.User{Username: "viewer", IsActive: true}
		if err := resources.CreateUser(ctx, tx, &viewer, false); err != nil {
			return err
		}
		if err := grantTeam(ctx, tx, "Readers", viewer.ID, viewPermissions(cuttle.SpacePermissions), viewPermissions(cuttle.SystemPermissions)); err != nil {
			return err
		}
		_, err := resources.AddAPIKey(ctx, tx, e.masterKey, viewer.ID, "test", e.userKey)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.member.Sync(ctx); err != nil { // the first check-in, and the bid that makes it leader
		t.Fatal(err)
	}
	return e
}

// do sends a request and returns the status and the raw answer.
func (e *env) do(method, path, key, body string) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Octopus-ApiKey", key)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// registerNode adds another node to the database, online or offline.
func (e *env) registerNode(name string, online bool) cuttle.Node {
	e.t.Helper()
	ctx := context.Background()
	n, err := e.store.RegisterNode(ctx, cuttle.NodeRegistration{Name: name, Version: cuttle.Version, KeyFingerprint: e.fingerprint})
	if err != nil {
		e.t.Fatal(err)
	}
	if !online {
		if _, err := e.store.SetOffline(ctx, n.Ref()); err != nil {
			e.t.Fatal(err)
		}
	}
	return n
}

type errorDoc struct {
	ErrorMessage string
	Errors       []string
}

// wantError checks that an answer is the Octopus error document with the status.
func wantError(t *testing.T, what string, status int, body []byte, want int) {
	t.Helper()
	if status != want {
		t.Errorf("%s: status %d, want %d (%s)", what, status, want, body)
		return
	}
	var doc errorDoc
	if err := json.Unmarshal(body, &doc); err != nil || doc.ErrorMessage == "" {
		t.Errorf("%s: body %s is not an Octopus error document", what, body)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, path := range []string{"/api/octopusservernodes", "/api/octopusservernodes/all", "/api/cluster", "/api/spaces", "/api/Spaces-1", "/api/nosuchroute"} {
		status, body := e.do("GET", path, "", "")
		wantError(t, "no key on "+path, status, body, http.StatusUnauthorized)
		status, body = e.do("GET", path, "API-"+strings.Repeat("A", 30), "")
		wantError(t, "unknown key on "+path, status, body, http.StatusUnauthorized)
		status, body = e.do("GET", path, "not-a-key", "")
		wantError(t, "malformed key on "+path, status, body, http.StatusUnauthorized)
	}
	for _, path := range []string{"/api/octopusservernodes/ping", "/api/", "/api"} {
		if status, body := e.do("GET", path, "", ""); status != http.StatusOK {
			t.Errorf("GET %s without a key: %d %s, want 200", path, status, body)
		}
	}
	status, body := e.do("PUT", "/api/octopusservernodes/OctopusServerNodes-1", e.userKey, `{"MaxConcurrentTasks":3}`)
	wantError(t, "a non-administrator changing a node", status, body, http.StatusForbidden)
	if status, _ := e.do("GET", "/api/octopusservernodes", e.userKey, ""); status != http.StatusOK {
		t.Errorf("a non-administrator listing nodes: %d, want 200", status)
	}
}

func TestNodeBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const path = "/api/octopusservernodes/OctopusServerNodes-1"
	_, before := e.do("GET", path, e.adminKey, "")
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed JSON", "PUT", path, `{"MaxConcurrentTasks": 3`, 400},
		{"not JSON", "PUT", path, `drain please`, 400},
		{"unknown field", "PUT", path, `{"MaxConcurrentTasks": 3, "Colour": "blue"}`, 400},
		{"wrong type", "PUT", path, `{"MaxConcurrentTasks": "three"}`, 400},
		{"wrong type bool", "PUT", path, `{"IsInMaintenanceMode": "yes"}`, 400},
		{"fraction", "PUT", path, `{"MaxConcurrentTasks": 2.5}`, 400},
		{"negative cap", "PUT", path, `{"MaxConcurrentTasks": -1}`, 400},
		{"huge cap", "PUT", path, `{"MaxConcurrentTasks": 99999999}`, 400},
		{"array", "PUT", path, `[1,2]`, 400},
		{"two values", "PUT", path, `{"MaxConcurrentTasks": 3} {}`, 400},
		{"empty", "PUT", path, ``, 400},
		{"other id in body", "PUT", path, `{"Id": "OctopusServerNodes-2", "MaxConcurrentTasks": 3}`, 400},
		{"oversized", "PUT", path, `{"Name": "` + strings.Repeat("x", 2<<20) + `"}`, 413},
		{"unknown node", "PUT", "/api/octopusservernodes/OctopusServerNodes-99", `{"MaxConcurrentTasks": 3}`, 404},
		{"malformed node id", "PUT", "/api/octopusservernodes/banana", `{"MaxConcurrentTasks": 3}`, 404},
		{"get unknown node", "GET", "/api/octopusservernodes/OctopusServerNodes-99", ``, 404},
		{"details of unknown node", "GET", "/api/octopusservernodes/OctopusServerNodes-99/details", ``, 404},
		{"delete unknown node", "DELETE", "/api/octopusservernodes/OctopusServerNodes-99", ``, 404},
		{"delete online node", "DELETE", path, ``, 409},
		{"bad skip", "GET", "/api/octopusservernodes?skip=-1", ``, 400},
		{"skip that overflows", "GET", "/api/octopusservernodes?skip=9223372036854775807", ``, 400},
		{"bad take", "GET", "/api/octopusservernodes?take=many", ``, 400},
		{"bad ids", "GET", "/api/octopusservernodes?ids=Machines-1", ``, 400},
		{"cluster heartbeat zero", "PUT", "/api/cluster", `{"HeartbeatFrequencySeconds": 0}`, 400},
		{"cluster heartbeat text", "PUT", "/api/cluster", `{"HeartbeatFrequencySeconds": "1"}`, 400},
		{"cluster stale under three heartbeats", "PUT", "/api/cluster", `{"HeartbeatFrequencySeconds": 5, "StaleTimeoutSeconds": 10}`, 400},
		{"cluster unknown field", "PUT", "/api/cluster", `{"LeaderElection": "off"}`, 400},
	}
	for _, c := range cases {
		status, body := e.do(c.method, c.path, e.adminKey, c.body)
		wantError(t, c.name, status, body, c.want)
	}
	_, after := e.do("GET", path, e.adminKey, "")
	var b, a map[string]any
	json.Unmarshal(before, &b)
	json.Unmarshal(after, &a)
	for _, volatile := range []string{"LastSeen", "Rank", "RunningTaskCount"} { // the node lives on meanwhile
		delete(b, volatile)
		delete(a, volatile)
	}
	if bj, aj := mustJSON(b), mustJSON(a); bj != aj {
		t.Errorf("bad input changed the node:\nbefore %s\nafter  %s", bj, aj)
	}
	_, cl := e.do("GET", "/api/cluster", e.adminKey, "")
	var settings struct{ HeartbeatFrequencySeconds, StaleTimeoutSeconds float64 }
	json.Unmarshal(cl, &settings)
	if settings.HeartbeatFrequencySeconds != 1 || settings.StaleTimeoutSeconds != 10 {
		t.Errorf("bad input changed the cluster settings: %+v", settings)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNodeUpdateAppliesAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const path = "/api/octopusservernodes/OctopusServerNodes-1"
	if status, body := e.do("PUT", path, e.adminKey, `{"IsInMaintenanceMode": true, "MaxConcurrentTasks": 0}`); status != 200 {
		t.Fatalf("drain: %d %s", status, body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		status, body := e.do("GET", "/api/octopusservernodes/ping", "", "")
		var n struct {
			IsInMaintenanceMode bool
			MaxConcurrentTasks  int
			Rank                string
		}
		json.Unmarshal(body, &n)
		if status == http.StatusTeapot && n.IsInMaintenanceMode && n.MaxConcurrentTasks == 0 && n.Rank == "Follower" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping after drain: %d %s; want 418 from a follower with cap 0", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A client may PUT back the resource it read, read-only fields included.
	_, body := e.do("GET", path, e.adminKey, "")
	var res map[string]any
	json.Unmarshal(body, &res)
	res["IsInMaintenanceMode"] = false
	if status, body := e.do("PUT", path, e.adminKey, mustJSON(res)); status != 200 {
		t.Fatalf("PUT of the resource read back: %d %s", status, body)
	}
	if status, _ := e.do("GET", "/api/octopusservernodes/ping", "", ""); status != 200 {
		t.Fatalf("ping after undrain: %d, want 200", status)
	}
}

func TestNodeListsAndPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"b", "c", "d", "e"} {
		e.registerNode(name, name != "e")
	}
	var page struct {
		ItemType                                                  string
		TotalResults, ItemsPerPage, NumberOfPages, LastPageNumber int
		Items                                                     []struct{ Id, Name string }
		Links                                                     map[string]string
	}
	_, body := e.do("GET", "/api/octopusservernodes?skip=2&take=2", e.adminKey, "")
	json.Unmarshal(body, &page)
	if page.ItemType != "OctopusServerNode" || page.TotalResults != 5 || page.ItemsPerPage != 2 || page.NumberOfPages != 3 ||
		page.LastPageNumber != 2 || len(page.Items) != 2 || page.Items[0].Name != "c" || page.Links["Page.Next"] == "" {
		t.Errorf("page 2: %s", body)
	}
	_, body = e.do("GET", "/api/octopusservernodes?skip=4&take=2", e.adminKey, "")
	page.Links = nil
	json.Unmarshal(body, &page)
	if _, ok := page.Links["Page.Next"]; ok || len(page.Items) != 1 {
		t.Errorf("last page has Page.Next or the wrong items: %s", body)
	}
	_, body = e.do("GET", "/api/octopusservernodes?ids=OctopusServerNodes-2,OctopusServerNodes-4", e.adminKey, "")
	json.Unmarshal(body, &page)
	if page.TotalResults != 2 {
		t.Errorf("ids filter: %s", body)
	}
	var all []struct{ Name, Rank string }
	_, body = e.do("GET", "/api/octopusservernodes/all", e.adminKey, "")
	if err := json.Unmarshal(body, &all); err != nil || len(all) != 5 || all[0].Rank != "Leader" {
		t.Errorf("/all: %s", body)
	}
	var summary struct{ Nodes []struct{ Name string } }
	_, body = e.do("GET", "/api/octopusservernodes/summary", e.adminKey, "")
	if err := json.Unmarshal(body, &summary); err != nil || len(summary.Nodes) != 5 {
		t.Errorf("/summary: %s", body)
	}
	var details struct {
		Id           string
		RunningTasks []any
	}
	_, body = e.do("GET", "/api/octopusservernodes/OctopusServerNodes-1/details", e.adminKey, "")
	if err := json.Unmarshal(body, &details); err != nil || details.Id != "OctopusServerNodes-1" || details.RunningTasks == nil {
		t.Errorf("/details: %s", body)
	}
}

func TestClusterResource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.registerNode("old", false)
	e.registerNode("peer", true)
	e.store.RegisterNode(context.Background(), cuttle.NodeRegistration{Name: "odd", Version: "0.0.1", KeyFingerprint: "ffff"})
	status, body := e.do("PUT", "/api/cluster", e.adminKey, `{"HeartbeatFrequencySeconds": 0.5, "StaleTimeoutSeconds": 4}`)
	if status != 200 {
		t.Fatalf("PUT /api/cluster: %d %s", status, body)
	}
	var cl struct {
		InstallationId, CertificateThumbprint                                string
		HeartbeatFrequencySeconds, StaleTimeoutSeconds, LeaseDurationSeconds float64
		LeaderNodeId                                                         string
		Servers                                                              []struct {
			Name, OperatingSystem, HeartbeatStatus, Rank, Version string
			IPAddresses                                           []string
			Components                                            []struct{ Name, Status string }
			VersionInSync, MasterKeyInSync                        bool
		}
	}
	if err := json.Unmarshal(body, &cl); err != nil {
		t.Fatal(err)
	}
	if cl.HeartbeatFrequencySeconds != 0.5 || cl.StaleTimeoutSeconds != 4 || cl.LeaseDurationSeconds != 1.5 || cl.LeaderNodeId != "OctopusServerNodes-1" ||
		cl.CertificateThumbprint != e.thumbprint {
		t.Errorf("settings: %s", body)
	}
	byName := map[string]int{}
	for i, s := range cl.Servers {
		byName[s.Name] = i
	}
	me, old, odd := cl.Servers[byName["node-1"]], cl.Servers[byName["old"]], cl.Servers[byName["odd"]]
	if me.HeartbeatStatus != "Current" || me.Rank != "Leader" || !me.VersionInSync || !me.MasterKeyInSync || len(me.Components) != 2 || me.OperatingSystem == "" {
		t.Errorf("this node's row: %+v", me)
	}
	if old.HeartbeatStatus != "Stale" || old.Components[0].Status != "Offline" {
		t.Errorf("offline node's row: %+v", old)
	}
	if odd.VersionInSync || odd.MasterKeyInSync {
		t.Errorf("node with another version and key: %+v", odd)
	}
}

func TestRootAndSpaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var root struct {
		Application, Version, ApiVersion, InstallationId string
		Links                                            map[string]string
	}
	_, body := e.do("GET", "/api/", "", "")
	if err := json.Unmarshal(body, &root); err != nil || root.Application == "" || root.ApiVersion == "" || len(root.InstallationId) != 36 ||
		root.Links["OctopusServerNodes"] == "" || root.Links["Spaces"] == "" {
		t.Errorf("root: %s", body)
	}
	status, body := e.do("GET", "/api/Spaces-2", e.adminKey, "")
	wantError(t, "unknown space", status, body, http.StatusNotFound)
	var spaces []struct {
		Id        string
		IsDefault bool
	}
	_, body = e.do("GET", "/api/spaces/all", e.adminKey, "")
	if err := json.Unmarshal(body, &spaces); err != nil || len(spaces) != 1 || spaces[0].Id != "Spaces-1" || !spaces[0].IsDefault {
		t.Errorf("/api/spaces/all: %s", body)
	}
}

// viewPermissions returns the permissions of perms that view.
func viewPermissions(perms []string) []string {
	var out []string
	for _, p := range perms {
		if strings.HasSuffix(p, "View") {
			out = append(out, p)
		}
	}
	return out
}

// grantTeam stores a role of the permissions given and a team of the user
// that has it, unlimited.
func grantTeam(ctx context.Context, tx *collection.Tx, name, userID string, space, system []string) error {
	role := cuttle.UserRole{Name: name + " role", CanBeDeleted: true, GrantedSpacePermissions: space, GrantedSystemPermissions: system}
	if err := resources.UserRoles.Insert(ctx, tx, &role); err != nil {
		return err
	}
	team := cuttle.Team{Name: name, MemberUserIds: []string{userID}, CanBeDeleted: true, CanChangeMembers: true, CanChangeRoles: true, CanBeRenamed: true}
	if err := resources.Teams.Insert(ctx, tx, &team); err != nil {
		return err
	}
	return resources.ScopedUserRoles.Insert(ctx, tx, &cuttle.ScopedUserRole{TeamId: team.ID, UserRoleId: role.ID})
}
