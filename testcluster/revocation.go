package testcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Balanced is a real HAProxy in front of every node of a cluster:
// round-robin, no stickiness, each answer naming the node that served it
// in the X-Served-By header.
type Balanced struct {
	*HAProxy
	URL   string // the balancer's front
	Nodes []*Node
}

// ServedBy is the header a Balanced answer names its node in.
const ServedBy = "X-Served-By"

// StartBalanced starts HAProxy in front of nodes (StartBalancedWith, no
// options).
func StartBalanced(tb testing.TB, nodes ...*Node) *Balanced {
	tb.Helper()
	return StartBalancedWith(tb, nil, nodes...)
}

// Get sends a GET through the balancer with header (a key or a cookie)
// and returns the status and the node that served it.
func (b *Balanced) Get(ctx context.Context, path string, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(ServedBy), nil
}

// Refused sends GETs of path through the balancer until every node has
// refused one with status (since its last answer that was not status), and
// returns how long after since a request was last allowed (0 if none was)
// and since when every node refused. It fails after timeout.
func (b *Balanced) Refused(ctx context.Context, path string, header http.Header, status int, since time.Time, timeout time.Duration) (lastAllowed, allRefused time.Duration, err error) {
	refused := map[string]bool{}
	deadline := time.Now().Add(timeout)
	for len(refused) < len(b.Nodes) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("after %s, %d of %d nodes refuse %s (last allowed %s after)", timeout, len(refused), len(b.Nodes), path, lastAllowed)
		}
		got, node, err := b.Get(ctx, path, header)
		switch {
		case err != nil:
			return 0, 0, err
		case got == status:
			refused[node] = true
		default:
			lastAllowed = time.Since(since)
			delete(refused, node)
		}
	}
	return lastAllowed, time.Since(since), nil
}

// Allowed sends GETs of path through the balancer until every node has
// answered 200.
func (b *Balanced) Allowed(ctx context.Context, path string, header http.Header, timeout time.Duration) error {
	allowed := map[string]bool{}
	deadline := time.Now().Add(timeout)
	for len(allowed) < len(b.Nodes) {
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, %d of %d nodes allow %s", timeout, len(allowed), len(b.Nodes), path)
		}
		got, node, err := b.Get(ctx, path, header)
		if err != nil {
			return err
		}
		if got == http.StatusOK {
			allowed[node] = true
		}
	}
	return nil
}

// Grantee is a user whose one team may be given, and lose, a built-in
// role through a scoped user role.
type Grantee struct {
	ID, Key        string // the user's id and an API key of theirs
	team, roleID   string
	scopedUserRole string // the grant's id while it exists
}

// NewGrantee creates a user, an API key of theirs and a team of them,
// through the node n with the administrator's key; role is the built-in
// role Grant gives the team.
func NewGrantee(ctx context.Context, n *Node, username, role string) (*Grantee, error) {
	var u struct{ Id string }
	if err := n.Client.Do(ctx, http.MethodPost, "/api/users", map[string]any{"Username": username, "IsActive": true}, &u); err != nil {
		return nil, err
	}
	var key struct{ ApiKey string }
	if err := n.Client.Do(ctx, http.MethodPost, "/api/users/"+u.Id+"/apikeys", map[string]any{"Purpose": "test"}, &key); err != nil {
		return nil, err
	}
	var team struct{ Id string }
	if err := n.Client.Do(ctx, http.MethodPost, "/api/teams", map[string]any{"Name": username + "'s team", "MemberUserIds": []string{u.Id}}, &team); err != nil {
		return nil, err
	}
	var roles struct{ Items []struct{ Id string } }
	if err := n.Client.Do(ctx, http.MethodGet, "/api/userroles?name="+url.QueryEscape(role), nil, &roles); err != nil || len(roles.Items) != 1 {
		return nil, fmt.Errorf("the role %s: %+v, %v", role, roles, err)
	}
	return &Grantee{ID: u.Id, Key: key.ApiKey, team: team.Id, roleID: roles.Items[0].Id}, nil
}

// Header returns the header that authenticates the grantee.
func (g *Grantee) Header() http.Header { return http.Header{"X-Octopus-Apikey": {g.Key}} }

// Grant gives the grantee's team its role, through n.
func (g *Grantee) Grant(ctx context.Context, n *Node) error {
	var s struct{ Id string }
	err := n.Client.Do(ctx, http.MethodPost, "/api/scopeduserroles", map[string]any{"TeamId": g.team, "UserRoleId": g.roleID}, &s)
	g.scopedUserRole = s.Id
	return err
}

// Revoke takes the role from the grantee's team, through n, and returns
// when the revocation was sent and when its answer arrived (it had
// committed).
func (g *Grantee) Revoke(ctx context.Context, n *Node) (sent, answered time.Time, err error) {
	if g.scopedUserRole == "" {
		return time.Time{}, time.Time{}, fmt.Errorf("the grantee holds no grant to revoke")
	}
	sent = time.Now()
	err = n.Client.Do(ctx, http.MethodDelete, "/api/scopeduserroles/"+g.scopedUserRole, nil, nil)
	g.scopedUserRole = ""
	return sent, time.Now(), err
}
