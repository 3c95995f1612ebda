package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// TestRevocationHoldsOnEveryNode: three node processes behind a real
// HAProxy (round-robin, no stickiness), every node caching the user's
// permissions after serving them; a scoped user role revoked through one
// node is refused by every node, through the balancer, within one second
// (DESIGN.md invariant 10: the notification after commit drops every
// node's cache). The same for a session: signed out through one node, its
// cookie is refused on every node at once.
func TestRevocationHoldsOnEveryNode(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 0, 0, 0)
	lb := testcluster.StartBalanced(t, c.Nodes...)
	ctx := testcluster.Context(t, 3*time.Minute)
	rita, err := testcluster.NewGrantee(ctx, c.Nodes[0], "rita", cuttle.RoleProjectViewer)
	if err != nil {
		t.Fatal(err)
	}
	const path = "/api/Spaces-1/environments"
	if _, _, err := lb.Refused(ctx, path, rita.Header(), http.StatusForbidden, time.Now(), 10*time.Second); err != nil {
		t.Fatalf("before the grant: %v", err)
	}
	for i := range 6 {
		through := c.Nodes[i%len(c.Nodes)]
		if err := rita.Grant(ctx, through); err != nil {
			t.Fatal(err)
		}
		// Every node serves the grant, and so caches it.
		if err := lb.Allowed(ctx, path, rita.Header(), 10*time.Second); err != nil {
			t.Fatalf("round %d, after the grant: %v", i, err)
		}
		_, revoked, err := rita.Revoke(ctx, through)
		if err != nil {
			t.Fatal(err)
		}
		late, _, err := lb.Refused(ctx, path, rita.Header(), http.StatusForbidden, revoked, 10*time.Second)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if late >= time.Second {
			t.Errorf("round %d: revoked through %s, a request was still allowed %s later", i, through.Config.Name, late)
		}
		t.Logf("round %d: revoked through %s; last allowed %s after", i, through.Config.Name, late)
	}

	// A session signed out through one node.
	if status, doc := request(t, "PUT", c.Nodes[0].URL+"/api/users/"+rita.ID+"/password", c.AdminKey, `{"Password": "correct horse battery"}`); status != http.StatusOK {
		t.Fatalf("setting rita's password: %d %v", status, doc)
	}
	br, status, body := login(t, lb.URL, "rita", "correct horse battery")
	if status != http.StatusOK {
		t.Fatalf("signing in through the balancer: %d %s", status, body)
	}
	cookies := http.Header{}
	for _, ck := range br.cookies {
		cookies.Add("Cookie", ck.Name+"="+ck.Value)
	}
	if err := lb.Allowed(ctx, "/api/users/me", cookies, 10*time.Second); err != nil {
		t.Fatalf("the session: %v", err)
	}
	if status, body := br.do("POST", c.Nodes[1].URL+"/api/users/logout", br.csrf, ""); status != http.StatusOK {
		t.Fatalf("signing out through %s: %d %s", c.Nodes[1].Config.Name, status, body)
	}
	late, _, err := lb.Refused(ctx, "/api/users/me", cookies, http.StatusUnauthorized, time.Now(), 10*time.Second)
	if err != nil || late > 0 {
		t.Errorf("after the sign-out, the cookie was still accepted %s later (%v); want refused at once", late, err)
	}
}
