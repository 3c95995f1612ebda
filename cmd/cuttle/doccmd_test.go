package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// runner runs a client command against one node.
type runner func(t *testing.T, args ...string) (code int, stdout, stderr string)

// mustJSON runs a command with --output json that must succeed, and
// decodes its output into v.
func (run runner) mustJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out, errOut := run(t, append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v: %v in\n%s", args, err, out)
	}
}

// fails runs a command that must exit 1 with stderr holding each of want.
func (run runner) fails(t *testing.T, want []string, args ...string) {
	t.Helper()
	code, out, errOut := run(t, args...)
	for _, w := range want {
		if code != 1 || !strings.Contains(errOut, w) {
			t.Fatalf("%v: exit %d\n%s%s; want exit 1 and %q", args, code, out, errOut, w)
		}
	}
}

// TestDocumentCommands runs each family of the collections' commands
// against one node: create, a duplicate name refused with the API's
// message, list as a table and as JSON, show by name (in another case) and
// by id, what is particular to the family, delete.
func TestDocumentCommands(t *testing.T) {
	t.Parallel()
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	run := runner(func(t *testing.T, args ...string) (int, string, string) {
		return cli(t, nil, append(args, "--server", n.URL, "--api-key", n.Config.AdminKey)...)
	})
	for _, f := range []struct {
		cmd, name string
		create    []string // flags of create
		check     func(t *testing.T, created map[string]any)
	}{
		{cmd: "project", name: "Web", create: []string{"--description", "the web site", "--lifecycle", "default lifecycle"},
			check: func(t *testing.T, p map[string]any) {
				if p["Description"] != "the web site" || p["ProjectGroupId"] != "ProjectGroups-1" || p["LifecycleId"] != "Lifecycles-1" {
					t.Errorf("project created: %v; want the description, the Default Project Group and the Default Lifecycle", p)
				}
				run.fails(t, []string{`there is no lifecycle named "Slow"`}, "project", "create", "Other", "--lifecycle", "Slow")
			}},
		{cmd: "project-group", name: "Backend", create: []string{"--description", "services"},
			check: func(t *testing.T, g map[string]any) {
				var p doc
				run.mustJSON(t, &p, "project", "create", "Api", "--group", "backend")
				run.fails(t, []string{"is used by the project " + p.Id, "409"}, "project-group", "delete", "Backend")
				if code, _, errOut := run(t, "project", "delete", p.Id); code != 0 {
					t.Fatalf("project delete %s: exit %d %s", p.Id, code, errOut)
				}
			}},
		{cmd: "lifecycle", name: "Fast", create: []string{"--description", "quick"},
			check: func(t *testing.T, l map[string]any) {
				if phases, ok := l["Phases"].([]any); !ok || len(phases) != 0 {
					t.Errorf("lifecycle created: %v; want no phases", l)
				}
			}},
		{cmd: "user", name: "ci", create: []string{"--service", "--email", "ci@example.com"},
			check: func(t *testing.T, u map[string]any) {
				if u["IsActive"] != true || u["IsService"] != true || u["DisplayName"] != "ci" {
					t.Errorf("user created: %v; want active, a service, displayed as ci", u)
				}
				var changed map[string]any
				if run.mustJSON(t, &changed, "user", "deactivate", "ci"); changed["IsActive"] != false {
					t.Errorf("user deactivate: %v", changed)
				}
				if run.mustJSON(t, &changed, "user", "activate", "CI"); changed["IsActive"] != true {
					t.Errorf("user activate: %v", changed)
				}
			}},
		{cmd: "team", name: "Deployers", create: []string{"--member", "admin"},
			check: func(t *testing.T, tm map[string]any) {
				var u doc
				run.mustJSON(t, &u, "user", "create", "deployer")
				var team struct{ MemberUserIds []string }
				if run.mustJSON(t, &team, "team", "add-member", "deployers", "deployer"); strings.Join(team.MemberUserIds, ",") != "Users-1,"+u.Id {
					t.Errorf("team add-member: members %v; want Users-1 and %s", team.MemberUserIds, u.Id)
				}
				if run.mustJSON(t, &team, "team", "remove-member", "Deployers", "admin"); strings.Join(team.MemberUserIds, ",") != u.Id {
					t.Errorf("team remove-member: members %v; want %s", team.MemberUserIds, u.Id)
				}
				run.fails(t, []string{"not a member of the team Deployers"}, "team", "remove-member", "Deployers", "admin")
				run.fails(t, []string{"built in and cannot be deleted", "409"}, "team", "delete", "Octopus Administrators")
			}},
	} {
		t.Run(f.cmd, func(t *testing.T) {
			t.Parallel()
			var created map[string]any
			run.mustJSON(t, &created, append([]string{f.cmd, "create", f.name}, f.create...)...)
			id, _ := created["Id"].(string)
			run.fails(t, []string{"exists already", "409"}, f.cmd, "create", strings.ToUpper(f.name))
			if code, out, errOut := run(t, f.cmd, "list"); code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, f.name+" ") || !strings.Contains(out, id) {
				t.Fatalf("%s list: exit %d\n%s%s", f.cmd, code, out, errOut)
			}
			var list []doc
			if run.mustJSON(t, &list, f.cmd, "list"); !strings.Contains(idsAndNames(list), id+" "+f.name+"\n") {
				t.Fatalf("%s list --output json: %v; want %s", f.cmd, list, id)
			}
			var shown doc
			if run.mustJSON(t, &shown, f.cmd, "show", strings.ToUpper(f.name)); shown.Id != id {
				t.Fatalf("%s show %s: %v; want %s", f.cmd, strings.ToUpper(f.name), shown, id)
			}
			if code, out, errOut := run(t, f.cmd, "show", id); code != 0 || !strings.Contains(out, f.name+" ") {
				t.Fatalf("%s show %s: exit %d\n%s%s", f.cmd, id, code, out, errOut)
			}
			f.check(t, created)
			if code, out, errOut := run(t, f.cmd, "delete", f.name); code != 0 || !strings.Contains(out, "deleted") || !strings.Contains(out, id) {
				t.Fatalf("%s delete %s: exit %d\n%s%s", f.cmd, f.name, code, out, errOut)
			}
			run.fails(t, []string{"there is no", f.name}, f.cmd, "show", f.name)
			run.fails(t, []string{id, "404"}, f.cmd, "delete", id)
		})
	}

	t.Run("apikey", func(t *testing.T) {
		t.Parallel()
		var u doc
		run.mustJSON(t, &u, "user", "create", "robot")
		code, out, errOut := run(t, "apikey", "create", "--purpose", "ci", "--user", "robot")
		if code != 0 || !strings.Contains(out, "API-") || !strings.Contains(out, "shown only this once") {
			t.Fatalf("apikey create: exit %d\n%s%s", code, out, errOut)
		}
		var key client.APIKey
		run.mustJSON(t, &key, "apikey", "create", "--purpose", "ci", "--user", u.Id)
		if key.UserId != u.Id || key.ApiKey.Key == "" {
			t.Fatalf("apikey create --output json: %+v", key)
		}
		robot := runner(func(t *testing.T, args ...string) (int, string, string) {
			return cli(t, nil, append(args, "--server", n.URL, "--api-key", key.ApiKey.Key)...)
		})
		var mine []client.APIKey
		if robot.mustJSON(t, &mine, "apikey", "list"); len(mine) != 2 || mine[1].Id != key.Id || mine[1].ApiKey.Key != "" || mine[1].ApiKey.Hint != key.ApiKey.Key[:8] {
			t.Fatalf("apikey list with the new key (--user me): %+v; want the two keys, hints only", mine)
		}
		if code, out, errOut = run(t, "apikey", "list", "--user", "robot"); code != 0 || !strings.Contains(out, key.Id) || strings.Contains(out, key.ApiKey.Key) {
			t.Fatalf("apikey list --user robot: exit %d\n%s%s", code, out, errOut)
		}
		var shown client.APIKey
		if run.mustJSON(t, &shown, "apikey", "show", key.Id, "--user", "robot"); shown.Id != key.Id || shown.Purpose != "ci" {
			t.Fatalf("apikey show: %+v", shown)
		}
		run.fails(t, []string{"no API key", "404"}, "apikey", "show", key.Id) // not the administrator's
		if code, out, errOut = run(t, "apikey", "delete", key.Id, "--user", "robot"); code != 0 || !strings.Contains(out, key.Id) {
			t.Fatalf("apikey delete: exit %d\n%s%s", code, out, errOut)
		}
		robot.fails(t, []string{"401"}, "apikey", "list")
		run.fails(t, []string{`there is no user named "nobody"`}, "apikey", "list", "--user", "nobody")
		if code, _, errOut = run(t, "apikey", "create"); code != 2 || !strings.Contains(errOut, "--purpose") {
			t.Fatalf("apikey create without --purpose: exit %d %s; want 2", code, errOut)
		}
	})

	// A new user may change nothing until a team gives them a role; --admin
	// makes them an administrator.
	t.Run("admin", func(t *testing.T) {
		t.Parallel()
		as := func(username string) runner {
			var u doc
			args := []string{"user", "create", username}
			if username == "boss" {
				args = append(args, "--admin")
			}
			run.mustJSON(t, &u, args...)
			var key client.APIKey
			run.mustJSON(t, &key, "apikey", "create", "--purpose", "test", "--user", u.Id)
			return runner(func(t *testing.T, args ...string) (int, string, string) {
				return cli(t, nil, append(args, "--server", n.URL, "--api-key", key.ApiKey.Key)...)
			})
		}
		as("clerk").fails(t, []string{"LifecycleCreate", "403"}, "lifecycle", "create", "Made by a clerk")
		var e doc
		if as("boss").mustJSON(t, &e, "lifecycle", "create", "Made by the boss"); e.Name != "Made by the boss" {
			t.Fatalf("an administrator's lifecycle: %+v", e)
		}
	})
}

// doc is what the tests read of a document.
type doc struct{ Id, Name, Username string }

// idsAndNames lists the ids and names of docs, one a line.
func idsAndNames(docs []doc) string {
	var b strings.Builder
	for _, d := range docs {
		b.WriteString(d.Id + " " + d.Name + d.Username + "\n")
	}
	return b.String()
}
