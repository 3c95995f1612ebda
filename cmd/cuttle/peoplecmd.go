package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
)

// userCommands: cuttle user list|show|delete|create|deactivate|activate|set-password.
// A user is named by username or id; a new user is active and a member of
// Everyone alone (teams give permissions), or with --admin also of the
// administrators team. Deactivating or deleting the last active
// administrator is refused (409).
var userCommands = docCommands[cuttle.User]{cmd: "user", noun: "user", ref: "USERNAME|ID",
	docs:  func(cl *client.Client, _ string) client.Documents[cuttle.User] { return cl.Users() },
	label: func(u *cuttle.User) (string, string) { return u.ID, u.Username },
	table: func(w io.Writer, us []cuttle.User) {
		fmt.Fprintln(w, "USERNAME\tID\tDISPLAY NAME\tEMAIL\tACTIVE\tSERVICE")
		for _, u := range us {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%t\n", u.Username, u.ID, u.DisplayName, dash(u.EmailAddress), u.IsActive, u.IsService)
		}
	},
	more: []docCommand[cuttle.User]{{name: "create", args: "USERNAME", nargs: 1,
		setup: func(c *clientCommand) func(context.Context, client.Documents[cuttle.User], []string) (cuttle.User, error) {
			displayName := c.fs.String("display-name", "", "the user's name for people (default: the username)")
			email := c.fs.String("email", "", "the user's email address")
			service := c.fs.Bool("service", false, "a service account: automation, which signs in with API keys only")
			admin := c.fs.Bool("admin", false, "make the user an administrator (a member of "+cuttle.AdministratorsTeam+")")
			return func(ctx context.Context, docs client.Documents[cuttle.User], pos []string) (cuttle.User, error) {
				u, err := docs.Create(ctx, cuttle.User{Username: pos[0], DisplayName: *displayName, EmailAddress: *email, IsService: *service, IsActive: true})
				if err != nil || !*admin {
					return u, err
				}
				teams := c.client().Teams()
				t, err := teams.Find(ctx, cuttle.AdministratorsTeam)
				if err != nil {
					return u, err
				}
				t.MemberUserIds = append(t.MemberUserIds, u.ID)
				if _, err := teams.Update(ctx, t.ID, t); err != nil {
					return u, fmt.Errorf("the user %s was created, but not made an administrator: %w", u.Username, err)
				}
				return u, nil
			}
		}}, setActive("deactivate", false), setActive("activate", true), setPassword()},
}

// setPassword is `cuttle user set-password USER`: the password is read
// from the first line of standard input, never from the command line
// (which others on the machine can read). It ends the user's sessions.
func setPassword() docCommand[cuttle.User] {
	return docCommand[cuttle.User]{name: "set-password", args: "USERNAME|ID", nargs: 1,
		setup: func(c *clientCommand) func(context.Context, client.Documents[cuttle.User], []string) (cuttle.User, error) {
			return func(ctx context.Context, docs client.Documents[cuttle.User], pos []string) (cuttle.User, error) {
				u, err := docs.Find(ctx, pos[0])
				if err != nil {
					return u, err
				}
				line, err := bufio.NewReader(passwordInput).ReadString('\n')
				if err != nil && (err != io.EOF || line == "") {
					return u, fmt.Errorf("reading the password from standard input: %v", err)
				}
				password := strings.TrimRight(line, "\r\n")
				return u, c.client().Do(ctx, http.MethodPut, "/api/users/"+u.ID+"/password", map[string]string{"Password": password}, nil)
			}
		}}
}

// passwordInput is where set-password reads the password: standard input.
var passwordInput io.Reader = os.Stdin

// setActive is the command that makes a user active or not; an inactive
// user's API keys are refused.
func setActive(name string, active bool) docCommand[cuttle.User] {
	return docCommand[cuttle.User]{name: name, args: "USERNAME|ID", nargs: 1,
		setup: func(c *clientCommand) func(context.Context, client.Documents[cuttle.User], []string) (cuttle.User, error) {
			return func(ctx context.Context, docs client.Documents[cuttle.User], pos []string) (cuttle.User, error) {
				u, err := docs.Find(ctx, pos[0])
				if err != nil {
					return u, err
				}
				u.IsActive = active
				return docs.Update(ctx, u.ID, u)
			}
		}}
}

// teamCommands: cuttle team list|show|delete|create|add-member|remove-member.
// Members are named by username or id. The built-in teams cannot be deleted
// (409), nor Everyone's members changed.
var teamCommands = docCommands[cuttle.Team]{cmd: "team", noun: "team", ref: "NAME|ID",
	docs:  func(cl *client.Client, _ string) client.Documents[cuttle.Team] { return cl.Teams() },
	label: func(t *cuttle.Team) (string, string) { return t.ID, t.Name },
	table: func(w io.Writer, ts []cuttle.Team) {
		fmt.Fprintln(w, "NAME\tID\tMEMBERS\tDESCRIPTION")
		for _, t := range ts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.ID, dash(strings.Join(t.MemberUserIds, ", ")), dash(t.Description))
		}
	},
	more: []docCommand[cuttle.Team]{{name: "create", args: "NAME", nargs: 1,
		setup: func(c *clientCommand) func(context.Context, client.Documents[cuttle.Team], []string) (cuttle.Team, error) {
			description := describeFlag(c, "team")
			var members stringList
			c.fs.Var(&members, "member", "a member: a username or id (repeat the flag for more; default: none)")
			return func(ctx context.Context, docs client.Documents[cuttle.Team], pos []string) (cuttle.Team, error) {
				ids := []string{}
				for _, m := range members {
					u, err := c.client().Users().Find(ctx, m)
					if err != nil {
						return cuttle.Team{}, err
					}
					ids = append(ids, u.ID)
				}
				return docs.Create(ctx, cuttle.Team{Name: pos[0], Description: *description, MemberUserIds: ids})
			}
		}}, changeMembers("add-member", true), changeMembers("remove-member", false)},
}

// changeMembers is the command that adds a user to a team, or removes one
// (who must be a member).
func changeMembers(name string, add bool) docCommand[cuttle.Team] {
	return docCommand[cuttle.Team]{name: name, args: "TEAM USER", nargs: 2,
		setup: func(c *clientCommand) func(context.Context, client.Documents[cuttle.Team], []string) (cuttle.Team, error) {
			return func(ctx context.Context, docs client.Documents[cuttle.Team], pos []string) (cuttle.Team, error) {
				t, err := docs.Find(ctx, pos[0])
				if err != nil {
					return t, err
				}
				u, err := c.client().Users().Find(ctx, pos[1])
				if err != nil {
					return t, err
				}
				i := slices.Index(t.MemberUserIds, u.ID)
				switch {
				case add && i < 0:
					t.MemberUserIds = append(t.MemberUserIds, u.ID)
				case !add && i < 0:
					return t, fmt.Errorf("%s (%s) is not a member of the team %s", u.Username, u.ID, t.Name)
				case !add:
					t.MemberUserIds = slices.Delete(t.MemberUserIds, i, i+1)
				}
				return docs.Update(ctx, t.ID, t)
			}
		}}
}

// apiKeyCommands: cuttle apikey list|show|delete|create, of the user --user
// names (default: me). Keys are named by id. create prints the key, the
// only time it is ever shown.
var apiKeyCommands = docCommands[client.APIKey]{cmd: "apikey", noun: "API key", ref: "ID", ofUser: true,
	docs:  (*client.Client).APIKeys,
	label: func(k *client.APIKey) (string, string) { return k.Id, k.Purpose },
	table: func(w io.Writer, ks []client.APIKey) {
		fmt.Fprintln(w, "ID\tPURPOSE\tUSER\tKEY\tCREATED")
		shown := false
		for _, k := range ks {
			key := k.ApiKey.Hint + "..."
			if k.ApiKey.Key != "" {
				key, shown = k.ApiKey.Key, true
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Id, k.Purpose, k.UserId, key, k.Created.Local().Format(time.DateTime))
		}
		if shown {
			fmt.Fprintln(w, "\nKeep the key now: it is shown only this once, and cannot be read again.")
		}
	},
	more: []docCommand[client.APIKey]{{name: "create", args: "--purpose P", nargs: 0,
		setup: func(c *clientCommand) func(context.Context, client.Documents[client.APIKey], []string) (client.APIKey, error) {
			purpose := c.fs.String("purpose", "", "what the key is for, to tell it from the user's others (required)")
			return func(ctx context.Context, docs client.Documents[client.APIKey], _ []string) (client.APIKey, error) {
				if strings.TrimSpace(*purpose) == "" {
					return client.APIKey{}, usageErr("--purpose is required")
				}
				return docs.Create(ctx, map[string]string{"Purpose": *purpose})
			}
		}}},
}
