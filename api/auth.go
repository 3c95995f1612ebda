package api

import (
	"net/http"

	"github.com/cuttledeploy/cuttle"
)

// APIKeyHeader carries the API key of a request.
const APIKeyHeader = "X-Octopus-ApiKey"

type userKey struct{}

// authenticate returns the user whose API key the request carries.
// KindUnauthorized if it carries none, or one that is malformed or unknown.
func (s *Server) authenticate(r *http.Request) (cuttle.User, error) {
	key := r.Header.Get(APIKeyHeader)
	if key == "" {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "You must be signed in: send an API key in the %s header.", APIKeyHeader)
	}
	if !cuttle.ValidAPIKey(key) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not valid: it must be API- followed by at least 20 upper-case letters and digits.")
	}
	u, err := s.store.UserByAPIKey(r.Context(), cuttle.HashAPIKey(key))
	if cuttle.IsKind(err, cuttle.KindUnauthorized) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not known to this cluster.")
	}
	return u, err
}
