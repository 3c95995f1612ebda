package api

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveTenants serves the tag sets and the tenants. A tenant's projects
// and environments must exist and cannot be deleted while it names them
// (resources.Tenants); its tags must be tags of the space's tag sets, and a
// tag cannot be removed, renamed or deleted with its set while a tenant
// carries it.
func (s *Server) serveTenants() {
	serveDocs(s, docs[cuttle.TagSet]{def: resources.TagSets, path: "tagsets", link: "TagSets", itemType: "TagSet",
		perms: perms{view: "TagSetView", create: "TagSetCreate", edit: "TagSetEdit", remove: "TagSetDelete"},
		check: func(ctx context.Context, tx *collection.Tx, ts, old *cuttle.TagSet) error {
			if err := ts.Check(); err != nil || old == nil {
				return err
			}
			return resources.CheckTagsUnused(ctx, tx, old, ts)
		},
		deleting: func(ctx context.Context, tx *collection.Tx, ts *cuttle.TagSet) error {
			return resources.CheckTagsUnused(ctx, tx, ts, nil)
		}})
	serveDocs(s, docs[cuttle.Tenant]{def: resources.Tenants, path: "tenants", link: "Tenants", itemType: "Tenant",
		template: "{/id}{?skip,take,ids,partialName,name,projectId}",
		params:   map[string]string{"projectId": resources.TenantProjects},
		perms:    perms{view: "TenantView", create: "TenantCreate", edit: "TenantEdit", remove: "TenantDelete"},
		where: func(_ context.Context, _ *collection.Tx, t *cuttle.Tenant) (resources.Scope, error) {
			return resources.Scope{Tenant: t.ID}, nil
		},
		check: func(ctx context.Context, tx *collection.Tx, t, old *cuttle.Tenant) error {
			if err := t.Check(old); err != nil {
				return err
			}
			return resources.CheckTenantTags(ctx, tx, t)
		}})
}
