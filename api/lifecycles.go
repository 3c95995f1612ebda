package api

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveLifecycles serves the lifecycles. The environments of their phases
// must exist; environments are not a collection, so they are read from the
// store here rather than checked by a Column's Refers (and
// environmentInUse guards their delete).
func (s *Server) serveLifecycles() {
	serveDocs(s, docs[cuttle.Lifecycle]{def: resources.Lifecycles, path: "lifecycles", link: "Lifecycles", itemType: "Lifecycle",
		check: func(ctx context.Context, tx *collection.Tx, l, old *cuttle.Lifecycle) error {
			if err := l.Check(old); err != nil {
				return err
			}
			for _, id := range l.EnvironmentIDs() {
				n, _ := cuttle.ParseID(cuttle.EnvironmentIDPrefix, id) // Check made them canonical
				if _, err := s.store.Environment(ctx, n); cuttle.IsKind(err, cuttle.KindNotFound) {
					return cuttle.Errorf(cuttle.KindInvalid, "There is no environment %s (named by a phase of the lifecycle).", id)
				} else if err != nil {
					return err
				}
			}
			return nil
		}})
}

// environmentInUse returns a KindConflict error naming a lifecycle whose
// phases name the environment of id, nil if none does.
func (s *Server) environmentInUse(ctx context.Context, id string) error {
	return s.store.Read(ctx, func(tx *collection.Tx) error {
		ls, _, err := resources.Lifecycles.List(ctx, tx, collection.Query{Space: DefaultSpaceID, Take: 1,
			Where: map[string]any{resources.LifecycleEnvironments: id}})
		if err != nil || len(ls) == 0 {
			return err
		}
		return cuttle.Errorf(cuttle.KindConflict, "The environment %s is used by the lifecycle %s (%s): remove it from the lifecycle's phases first.",
			id, ls[0].ID, ls[0].Name)
	})
}
