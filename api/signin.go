package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Sign-in with a password (the portal's way; automation uses API keys).
//
// A session is a document (resources.Sessions); its cookie is its id
// sealed with the master key, so every node of the cluster opens it and a
// cookie made by another cluster's key is refused. Each request reads the
// session from the database, as it reads API keys: a sign-out, a password
// change or a deleted user ends the session on every node at once, with
// no sticky sessions and no cache to invalidate. A cookie-authenticated
// write must carry the session's CSRF token in X-Octopus-Csrf-Token (the
// Octopus-Csrf-Token cookie holds it for the page's script). Failed
// sign-ins are counted in the database by user and by address, so a
// balancer spreading attempts over nodes does not multiply the allowance.

// passwordCost is bcrypt's cost: 99 ms an attempt on one core of the
// test machine, about 17 sign-ins a second for a 2-core node
// (docs/benchmarks.md, "Sign-in").
const passwordCost = 10

// sessionPurpose names the master key's use for session cookies.
const sessionPurpose = "session cookie"

// sessionKey carries the session of a cookie-authenticated request.
type sessionKey struct{}

// decoyHash is compared with when a username is unknown, so that an
// unknown user costs what a wrong password costs.
var decoyHash, _ = bcrypt.GenerateFromPassword([]byte("cuttle decoy password"), passwordCost)

func (s *Server) signInRoutes() {
	s.handle("POST /api/users/login", anyone, s.handleLogin)
	s.handle("POST /api/users/logout", user, s.handleLogout)
	s.handle("PUT /api/users/{id}/password", user, s.handlePassword)
	s.links["SignIn"] = "/api/users/login{?returnUrl}"
	s.links["SignOut"] = "/api/users/logout"
}

type loginBody struct {
	Username, Password string
	RememberMe         bool
}

// handleLogin signs a person in: 200 with the user and the session's
// cookies; 401 for a wrong username or password (the same answer for
// both); 429 once the user or the address failed too often.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var b loginBody
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	ctx := r.Context()
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	userKey, addrKey := "user:"+strings.ToLower(strings.TrimSpace(b.Username)), "address:"+addr
	now := time.Now().UTC()
	var (
		u        cuttle.User
		hash     []byte
		retryAt  time.Time
		refusing bool
	)
	err = s.store.Read(ctx, func(tx *collection.Tx) error {
		for _, k := range []struct {
			key   string
			limit int
		}{{userKey, cuttle.UserLoginFailures}, {addrKey, cuttle.AddressLoginFailures}} {
			f, err := resources.LoginFailuresOf(ctx, tx, k.key, now)
			if err != nil {
				return err
			}
			if f.Count >= k.limit {
				refusing, retryAt = true, f.Since.Add(cuttle.LoginFailureWindow)
			}
		}
		us, _, err := resources.Users.List(ctx, tx, collection.Query{Name: strings.TrimSpace(b.Username), Take: 1})
		if err != nil || len(us) == 0 {
			return err
		}
		u = us[0]
		c, err := resources.Credential(ctx, tx, u.ID, false)
		if err == nil {
			hash = []byte(c.Hash)
		} else if !cuttle.IsKind(err, cuttle.KindNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if refusing {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(time.Until(retryAt).Seconds()+1))))
		return cuttle.Errorf(cuttle.KindBusy, "Too many failed sign-ins for this user or from this address: try again after %s.", retryAt.Format(time.RFC3339))
	}
	ok := hash != nil && u.IsActive && !u.IsService
	if !ok {
		hash = decoyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(b.Password)) != nil || !ok {
		if err := s.store.Update(ctx, func(tx *collection.Tx) error {
			if err := resources.CountLoginFailure(ctx, tx, userKey, now); err != nil {
				return err
			}
			return resources.CountLoginFailure(ctx, tx, addrKey, now)
		}); err != nil {
			return err
		}
		s.log.Info("a sign-in failed", "username", b.Username, "remote", addr)
		return cuttle.Errorf(cuttle.KindUnauthorized, "The username or password is wrong.")
	}
	length := cuttle.SessionLength
	if b.RememberMe {
		length = cuttle.RememberedSessionLength
	}
	session := cuttle.Session{UserID: u.ID, Created: now, Expires: now.Add(length), CSRFToken: randomToken(), Address: addr}
	err = s.store.Update(ctx, func(tx *collection.Tx) error {
		if err := resources.ClearLoginFailures(ctx, tx, userKey); err != nil {
			return err
		}
		return resources.Sessions.Insert(ctx, tx, &session)
	})
	if err != nil {
		return err
	}
	sealed, err := s.masterKey.Seal(sessionPurpose, []byte(session.ID))
	if err != nil {
		return err
	}
	secure := r.TLS != nil
	http.SetCookie(w, &http.Cookie{Name: cuttle.SessionCookie, Value: base64.RawURLEncoding.EncodeToString(sealed), Path: "/",
		Expires: session.Expires, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: cuttle.CSRFCookie, Value: session.CSRFToken, Path: "/",
		Expires: session.Expires, Secure: secure, SameSite: http.SameSiteStrictMode})
	s.log.Info("signed in", "user", u.Username, "remote", addr, "session", session.ID)
	s.recordEvent(r, cuttle.Event{Category: "SignedIn", UserId: u.ID, Username: u.Username, RelatedDocumentIds: []string{u.ID},
		Message: u.Username + " signed in"})
	u.Links = map[string]string{"Self": "/api/users/" + u.ID}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// handleLogout ends the caller's session (on every node) and clears its
// cookies; with an API key it does nothing.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if id, ok := r.Context().Value(sessionKey{}).(string); ok {
		err := s.store.Update(r.Context(), func(tx *collection.Tx) error { return resources.Sessions.Delete(r.Context(), tx, id) })
		if err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
			return err
		}
	}
	for _, name := range []string{cuttle.SessionCookie, cuttle.CSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1})
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// handlePassword sets a user's password: a user their own (giving the old
// one, if they have one), an administrator anyone's. It ends the user's
// sessions on every node.
func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) error {
	me := me(r)
	var b struct{ Password, OldPassword string }
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	id := r.PathValue("id")
	if strings.EqualFold(id, "me") {
		id = me.ID
	}
	self := strings.EqualFold(id, me.ID)
	if !self && !callerOf(r).perms.Allows("UserEdit", resources.Scope{}) {
		return forbidden("UserEdit", id)
	}
	if len([]rune(b.Password)) < cuttle.MinPasswordLength {
		return cuttle.Errorf(cuttle.KindInvalid, "A password has at least %d characters.", cuttle.MinPasswordLength)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(b.Password), passwordCost)
	if err != nil {
		return cuttle.Errorf(cuttle.KindInvalid, "The password cannot be used: %v.", err)
	}
	ctx := r.Context()
	err = s.store.Update(ctx, func(tx *collection.Tx) error {
		u, err := resources.Users.Get(ctx, tx, id)
		if err != nil {
			return err
		}
		if u.IsService {
			return cuttle.Errorf(cuttle.KindInvalid, "The user %s is a service account: it signs in with API keys only.", u.Username)
		}
		c, err := resources.Credential(ctx, tx, u.ID, true)
		switch {
		case cuttle.IsKind(err, cuttle.KindNotFound):
			c = cuttle.Credential{UserID: u.ID, Hash: string(hash)}
			if err := resources.Credentials.Insert(ctx, tx, &c); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if self && bcrypt.CompareHashAndPassword([]byte(c.Hash), []byte(b.OldPassword)) != nil {
				return cuttle.Errorf(cuttle.KindInvalid, "The old password is wrong.")
			}
			c.Hash = string(hash)
			if err := resources.Credentials.Update(ctx, tx, &c); err != nil {
				return err
			}
		}
		return resources.EndSessions(ctx, tx, u.ID)
	})
	if err != nil {
		return err
	}
	s.log.Info("set a password; the user's sessions ended", "user", id, "by", me.Username)
	w.WriteHeader(http.StatusOK)
	return nil
}

// sessionOf authenticates a request by its session cookie: the user, and
// the session's id in the returned context. KindUnauthorized for no
// cookie, one this cluster did not seal, an ended or expired session or
// an inactive user; KindForbidden for a write without the session's CSRF
// token.
func (s *Server) sessionOf(r *http.Request) (cuttle.User, context.Context, error) {
	c, err := r.Cookie(cuttle.SessionCookie)
	if err != nil || c.Value == "" {
		return cuttle.User{}, nil, cuttle.Errorf(cuttle.KindUnauthorized, "You must be signed in: send an API key in the %s header, or sign in (POST /api/users/login).", APIKeyHeader)
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	var id []byte
	if err == nil {
		id, err = s.masterKey.Open(sessionPurpose, sealed)
	}
	if err != nil {
		return cuttle.User{}, nil, cuttle.Errorf(cuttle.KindUnauthorized, "The session cookie was not made by this cluster: sign in again.")
	}
	var (
		session cuttle.Session
		u       cuttle.User
	)
	err = s.store.Read(r.Context(), func(tx *collection.Tx) error {
		var err error
		if session, err = resources.Sessions.Get(r.Context(), tx, string(id)); err != nil {
			return err
		}
		u, err = resources.Users.Get(r.Context(), tx, session.UserID)
		return err
	})
	switch {
	case cuttle.IsKind(err, cuttle.KindNotFound):
		return cuttle.User{}, nil, cuttle.Errorf(cuttle.KindUnauthorized, "Your session has ended: sign in again.")
	case err != nil:
		return cuttle.User{}, nil, err
	case time.Now().After(session.Expires):
		return cuttle.User{}, nil, cuttle.Errorf(cuttle.KindUnauthorized, "Your session expired at %s: sign in again.", session.Expires.Format(time.RFC3339))
	case !u.IsActive:
		return cuttle.User{}, nil, cuttle.Errorf(cuttle.KindUnauthorized, "The user %s is not active.", u.Username)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(cuttle.CSRFHeader)), []byte(session.CSRFToken)) != 1 {
			return cuttle.User{}, nil, cuttle.Errorf(cuttle.KindForbidden, "A change made with a session cookie needs the %s header holding the %s cookie's value.", cuttle.CSRFHeader, cuttle.CSRFCookie)
		}
	}
	return u, context.WithValue(r.Context(), sessionKey{}, session.ID), nil
}

// randomToken returns 32 random bytes, hex.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
