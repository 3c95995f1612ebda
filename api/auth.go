package api

import (
	"net/http"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// APIKeyHeader carries the API key of a request.
const APIKeyHeader = "X-Octopus-ApiKey"

type userKey struct{}

// authenticate returns the user whose API key the request carries.
// KindUnauthorized if it carries none, or one that is malformed or unknown,
// or its user is inactive. Nothing is cached: a deleted key is refused at
// once on every node.
func (s *Server) authenticate(r *http.Request) (cuttle.User, error) {
	key := r.Header.Get(APIKeyHeader)
	if key == "" {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "You must be signed in: send an API key in the %s header.", APIKeyHeader)
	}
	if !cuttle.ValidAPIKey(key) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not valid: it must be API- followed by at least 20 upper-case letters and digits.")
	}
	var u cuttle.User
	err := s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		u, err = resources.Authenticate(r.Context(), tx, key)
		return err
	})
	return u, err
}
