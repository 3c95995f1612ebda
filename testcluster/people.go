package testcluster

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cuttledeploy/cuttle"
)

// NewAdministrator creates, through the node n with the cluster's admin
// key, a person who signs in with username and password and is a member
// of the administrators team (cuttle.AdministratorsTeam), and returns
// their user id. (The first-start administrator is a service account,
// which cannot sign in.)
func NewAdministrator(ctx context.Context, n *Node, username, password string) (string, error) {
	var me struct{ Id string }
	if err := n.Client.Do(ctx, http.MethodPost, "/api/users", map[string]any{"Username": username, "DisplayName": username, "IsActive": true}, &me); err != nil {
		return "", fmt.Errorf("creating the user %s: %w", username, err)
	}
	if err := n.Client.Do(ctx, http.MethodPut, "/api/users/"+me.Id+"/password", map[string]string{"Password": password}, nil); err != nil {
		return "", fmt.Errorf("setting the password of %s: %w", username, err)
	}
	var teams []map[string]any
	if err := n.Client.Do(ctx, http.MethodGet, "/api/teams/all", nil, &teams); err != nil {
		return "", err
	}
	for _, team := range teams {
		if team["Name"] != cuttle.AdministratorsTeam {
			continue
		}
		members, _ := team["MemberUserIds"].([]any)
		team["MemberUserIds"] = append(members, me.Id)
		id, _ := team["Id"].(string)
		if err := n.Client.Do(ctx, http.MethodPut, "/api/teams/"+id, team, nil); err != nil {
			return "", fmt.Errorf("adding %s to %s: %w", username, cuttle.AdministratorsTeam, err)
		}
		return me.Id, nil
	}
	return "", fmt.Errorf("no team %q among %d teams", cuttle.AdministratorsTeam, len(teams))
}
