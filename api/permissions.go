package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// access says who may call a route: anyone (ping, the root document,
// sign-in), any signed-in user, or a user granted a permission in some
// scope; the handler then checks the scope of what it touches (allow).
type access struct {
	open bool   // no authentication
	perm string // needed somewhere; "" for any signed-in user
}

var (
	anyone = access{open: true}
	user   = access{}
)

// can is the access of a route that needs perm.
func can(perm string) access { return access{perm: perm} }

// caller is who makes a request: the user, and their effective
// permissions.
type caller struct {
	user  cuttle.User
	perms resources.Permissions
}

type callerKey struct{}

// callerOf returns the caller of an authenticated request.
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// me returns the user of an authenticated request.
func me(r *http.Request) cuttle.User { return callerOf(r).user }

// forbidden is the refusal of an action that needs perm, naming it (and
// where, if at is a document's id).
func forbidden(perm, at string) error {
	if at != "" {
		at = " for " + at
	}
	return cuttle.Errorf(cuttle.KindForbidden, "You do not have permission to perform this action: it needs the %s permission%s.", perm, at)
}

// allow returns forbidden unless the caller has perm at the scope; what
// names the document for the message.
func allow(r *http.Request, perm string, at resources.Scope, what string) error {
	if callerOf(r).perms.Allows(perm, at) {
		return nil
	}
	return forbidden(perm, what)
}

// visibleOnly returns the items that allowed lets the caller see, in
// order; an error other than forbidden ends it.
func visibleOnly[T any](items []T, allowed func(*T) error) ([]T, error) {
	kept := items[:0]
	for i := range items {
		switch err := allowed(&items[i]); {
		case err == nil:
			kept = append(kept, items[i])
		case !cuttle.IsKind(err, cuttle.KindForbidden):
			return nil, err
		}
	}
	return kept, nil
}

// grantsMaxAge bounds how long a node trusts cached permissions without
// hearing of a change (a lost notification).
const grantsMaxAge = 10 * time.Second

// grants caches users' effective permissions on one node (docs/design.md,
// "Permissions"). Every unit of work notifies the id of each document it
// writes after its commit; the id of a user role, scoped user role, team,
// user or API key (or a resync, when notifications may have been lost)
// bumps the generation and drops every entry. An entry computed while the
// generation moved is not stored, so an invalidation during a computation
// wins; and none is used past grantsMaxAge.
type grants struct {
	mu     sync.Mutex
	gen    uint64
	byUser map[string]grantsEntry
	cached bool // false when no notifications reach the node: compute every time
}

type grantsEntry struct {
	perms resources.Permissions
	at    time.Time
}

// grantsDocuments are the prefixes of the ids whose change may change
// someone's permissions.
var grantsDocuments = []string{"UserRoles-", "ScopedUserRoles-", "Teams-", cuttle.UserIDPrefix, "APIKeys-"}

// changed takes the payload of a documents notification ("" for a resync).
func (g *grants) changed(id string) {
	if id != "" && !hasAnyPrefix(id, grantsDocuments) {
		return
	}
	g.mu.Lock()
	g.gen++
	clear(g.byUser)
	g.mu.Unlock()
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// of returns the effective permissions of a user, from the cache when it
// holds a fresh entry.
func (g *grants) of(ctx context.Context, st store.Store, userID string) (resources.Permissions, error) {
	g.mu.Lock()
	e, ok := g.byUser[userID]
	gen := g.gen
	g.mu.Unlock()
	if ok && time.Since(e.at) < grantsMaxAge {
		return e.perms, nil
	}
	start := time.Now()
	var p resources.Permissions
	err := st.Read(ctx, func(tx *collection.Tx) (err error) {
		p, err = resources.PermissionsOf(ctx, tx, userID)
		return err
	})
	if err != nil {
		return p, err
	}
	g.mu.Lock()
	if g.cached && g.gen == gen {
		g.byUser[userID] = grantsEntry{perms: p, at: start}
	}
	g.mu.Unlock()
	return p, nil
}
