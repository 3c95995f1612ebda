package api

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveEnvironments serves the environments. A lifecycle that names one
// blocks its delete through the collections' references; a machine, which
// is hand-written, through the store (MachineOfEnvironment), under the lock
// of the environment's row that the delete already holds.
func (s *Server) serveEnvironments() {
	d := environmentDocs
	d.deleting = func(ctx context.Context, tx *collection.Tx, e *cuttle.Environment) error {
		n, err := resources.Environments.ParseID(e.ID)
		if err != nil {
			return err
		}
		id, name, found, err := s.store.MachineOfEnvironment(ctx, tx, n)
		if err != nil || !found {
			return err
		}
		return cuttle.Errorf(cuttle.KindConflict, "The environment %s has deployment targets, such as %s (%s): move or delete them first.",
			e.ID, cuttle.FormatID(cuttle.MachineIDPrefix, id), name)
	}
	serveDocs(s, d)
}

// environmentDocs is the environments' collection as the API serves it
// (serveEnvironments adds the check of machines to deletes).
var environmentDocs = docs[cuttle.Environment]{def: resources.Environments, path: "environments", link: "Environments", itemType: "Environment",
	perms: perms{view: "EnvironmentView", create: "EnvironmentCreate", edit: "EnvironmentEdit", remove: "EnvironmentDelete"},
	where: func(_ context.Context, _ *collection.Tx, e *cuttle.Environment) (resources.Scope, error) {
		return resources.Scope{Environment: e.ID}, nil
	},
	links: func(e *cuttle.Environment) map[string]string {
		return map[string]string{"Machines": "/api/" + DefaultSpaceID + "/machines?environmentIds=" + e.ID}
	},
	check: func(ctx context.Context, tx *collection.Tx, e, old *cuttle.Environment) error { return e.Check(old) }}
