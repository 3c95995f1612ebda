package api_test

import (
	"net/url"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/core"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/newclient"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/octopusservernodes"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/resources"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/spaces"

	"github.com/cuttledeploy/cuttle"
)

// TestOfficialClient drives a node with the official Octopus Go client,
// the yardstick of API compatibility (DESIGN.md, HTTP API).
func TestOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gone := e.registerNode("gone", false)
	u, _ := url.Parse(e.srv.URL)

	// Construction without a space id: root, then /api/spaces for the default space.
	c, err := octoclient.NewClient(nil, u, e.adminKey, "")
	if err != nil {
		t.Fatalf("NewClient without a space: %v", err)
	}
	if c.GetSpaceID() != "Spaces-1" {
		t.Errorf("client chose space %q, want Spaces-1", c.GetSpaceID())
	}
	// Construction with the space id: root, then the space root.
	c, err = octoclient.NewClient(nil, u, e.adminKey, "Spaces-1")
	if err != nil {
		t.Fatalf("NewClient with Spaces-1: %v", err)
	}
	all, err := c.Spaces.GetAll()
	if err != nil || len(all) != 1 || !all[0].IsDefault {
		t.Fatalf("Spaces.GetAll: %v, %v", all, err)
	}
	if _, err := spaces.GetAll(c); err != nil {
		t.Fatalf("spaces.GetAll: %v", err)
	}
	if _, err := octoclient.NewClient(nil, u, "API-"+"WRONGWRONGWRONGWRONGWRONG", ""); err == nil {
		t.Fatal("NewClient with an unknown API key succeeded")
	}

	// Node list and modify through the client's HTTP session.
	page, err := newclient.Get[resources.Resources[*octopusservernodes.OctopusServerNodeResource]](c.HttpSession(), "/api/octopusservernodes")
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("listing nodes: %v, %+v", err, page)
	}
	node, err := newclient.Get[octopusservernodes.OctopusServerNodeResource](c.HttpSession(), "/api/octopusservernodes/OctopusServerNodes-1")
	if err != nil || node.Name != "node-1" {
		t.Fatalf("reading a node: %v, %+v", err, node)
	}
	node.IsInMaintenanceMode = true
	node.MaxConcurrentTasks = 7
	updated, err := newclient.Put[octopusservernodes.OctopusServerNodeResource](c.HttpSession(), "/api/octopusservernodes/"+node.ID, node)
	if err != nil || !updated.IsInMaintenanceMode || updated.MaxConcurrentTasks != 7 {
		t.Fatalf("draining a node: %v, %+v", err, updated)
	}

	// DeleteByID: an online node is refused, an offline one removed, then unknown.
	if err := c.OctopusServerNodes.DeleteByID(node.ID); err == nil {
		t.Fatal("DeleteByID of the online node succeeded")
	}
	goneID := cuttle.FormatID(cuttle.NodeIDPrefix, gone.ID)
	if err := c.OctopusServerNodes.DeleteByID(goneID); err != nil {
		t.Fatalf("DeleteByID of an offline node: %v", err)
	}
	_, err = newclient.Get[octopusservernodes.OctopusServerNodeResource](c.HttpSession(), "/api/octopusservernodes/"+goneID)
	apiErr, ok := err.(*core.APIError)
	if !ok || apiErr.StatusCode != 404 {
		t.Fatalf("reading the removed node: %v, want the client's 404 error", err)
	}
}
