package api

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveLifecycles serves the lifecycles. The environments of their phases
// must exist, and cannot be deleted while a phase names them: the
// collection's reference (resources.Lifecycles) sees to both.
func (s *Server) serveLifecycles() {
	serveDocs(s, docs[cuttle.Lifecycle]{def: resources.Lifecycles, path: "lifecycles", link: "Lifecycles", itemType: "Lifecycle",
		perms: perms{view: "LifecycleView", create: "LifecycleCreate", edit: "LifecycleEdit", remove: "LifecycleDelete"},
		check: func(ctx context.Context, tx *collection.Tx, l, old *cuttle.Lifecycle) error { return l.Check(old) }})
}
