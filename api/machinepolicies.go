package api

import (
	"context"
	"net/http"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveMachinePolicies serves the machine policies, and their template (a
// new policy of Octopus's defaults, not stored). IsDefault is the server's:
// a new policy is not the default, no update changes it, and the default
// policy cannot be deleted.
func (s *Server) serveMachinePolicies() {
	serveDocs(s, docs[cuttle.MachinePolicy]{def: resources.MachinePolicies, path: "machinepolicies", link: "MachinePolicies", itemType: "MachinePolicy",
		perms: perms{view: "MachinePolicyView", create: "MachinePolicyCreate", edit: "MachinePolicyEdit", remove: "MachinePolicyDelete"},
		check: func(ctx context.Context, tx *collection.Tx, p, old *cuttle.MachinePolicy) error {
			switch {
			case old == nil && p.IsDefault:
				return cuttle.Errorf(cuttle.KindInvalid, "A space has one default machine policy, the one it starts with: a new policy cannot be the default (IsDefault).")
			case old != nil && p.IsDefault != old.IsDefault:
				return cuttle.Errorf(cuttle.KindInvalid, "IsDefault cannot change: a space's default machine policy is the one it starts with.")
			}
			return p.Check()
		},
		deleting: func(ctx context.Context, tx *collection.Tx, p *cuttle.MachinePolicy) error {
			if p.IsDefault {
				return cuttle.Errorf(cuttle.KindConflict, "The machine policy %s (%s) is the space's default: it cannot be deleted.", p.ID, p.Name)
			}
			return nil
		}})
	s.links["MachinePolicyTemplate"] = "/api/" + DefaultSpaceID + "/machinepolicies/template"
	for _, base := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+base+"/machinepolicies/template", can("MachinePolicyView"), func(w http.ResponseWriter, r *http.Request) error {
			p := cuttle.NewMachinePolicy("")
			p.SpaceID, p.Links = DefaultSpaceID, map[string]string{}
			writeJSON(w, http.StatusOK, p)
			return nil
		})
	}
}

// defaultMachinePolicyID returns the id of the default space's default
// machine policy: the one every deployment target follows.
func (s *Server) defaultMachinePolicyID(ctx context.Context) (string, error) {
	var id string
	err := s.store.Read(ctx, func(tx *collection.Tx) error {
		p, err := resources.DefaultMachinePolicy(ctx, tx, DefaultSpaceID)
		id = p.ID
		return err
	})
	return id, err
}
