package api

import (
	"net/http"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// APIKeyHeader carries the API key of a request.
const APIKeyHeader = "X-Octopus-ApiKey"

// authenticate returns the user whose API key the request carries, or
// else whose session its cookie names (sessionOf; the request returned
// carries the session). KindUnauthorized if it carries neither, or one that
// is malformed or unknown, or its user is inactive. A key stored under its legacy digest is stored
// again under the master key's (resources.UpgradeAPIKey). Nothing is cached: a deleted key is refused at
// once on every node.
func (s *Server) authenticate(r *http.Request) (cuttle.User, *http.Request, error) {
	key := r.Header.Get(APIKeyHeader)
	if key == "" {
		u, ctx, err := s.sessionOf(r)
		if err != nil {
			return u, r, err
		}
		return u, r.WithContext(ctx), nil
	}
	u, err := s.authenticateKey(r, key)
	return u, r, err
}

// authenticateKey returns the user of an API key (see authenticate).
func (s *Server) authenticateKey(r *http.Request, key string) (cuttle.User, error) {
	if !cuttle.ValidAPIKey(key) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not valid: it must be API- followed by at least 20 upper-case letters and digits.")
	}
	var u cuttle.User
	var legacy bool
	err := s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		u, legacy, err = resources.Authenticate(r.Context(), tx, s.masterKey, key)
		return err
	})
	if err == nil && legacy {
		if uerr := s.store.Update(r.Context(), func(tx *collection.Tx) error {
			return resources.UpgradeAPIKey(r.Context(), tx, s.masterKey, key)
		}); uerr != nil {
			s.log.Warn("storing an API key under its new digest failed; the next request tries again", "user", u.ID, "err", uerr)
		} else {
			s.log.Info("stored an API key under the master key's digest", "user", u.ID, "hint", cuttle.APIKeyHint(key))
		}
	}
	return u, err
}
