package api

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// documentRoutes serves the document collections of package resources.
func (s *Server) documentRoutes() {
	serveDocs(s, docs[cuttle.ProjectGroup]{def: resources.ProjectGroups, path: "projectgroups", link: "ProjectGroups", itemType: "ProjectGroup",
		perms: perms{view: "ProjectGroupView", create: "ProjectGroupCreate", edit: "ProjectGroupEdit", remove: "ProjectGroupDelete"},
		where: func(_ context.Context, _ *collection.Tx, g *cuttle.ProjectGroup) (resources.Scope, error) {
			return resources.Scope{ProjectGroup: g.ID}, nil
		},
		links: func(g *cuttle.ProjectGroup) map[string]string {
			return map[string]string{"Projects": "/api/" + DefaultSpaceID + "/projectgroups/" + g.ID + "/projects"}
		},
		check: func(ctx context.Context, tx *collection.Tx, g, old *cuttle.ProjectGroup) error {
			if err := cuttle.CheckName(&g.Name, "project group"); err != nil {
				return err
			}
			g.Slug = cuttle.Slug(g.Name)
			if g.EnvironmentIds == nil {
				g.EnvironmentIds = []string{}
			}
			return nil
		}})
	s.serveEnvironments()
	s.serveLifecycles()
	s.serveMachinePolicies()
	s.serveProjects()
	s.serveTenants()
	s.serveInterruptions()
}
