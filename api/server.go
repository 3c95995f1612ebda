// Package api serves cuttle's REST API in the Octopus Deploy dialect:
// PascalCase JSON, ids such as "OctopusServerNodes-3", paged list envelopes,
// Links on every resource, and errors as {ErrorMessage, Errors}. Every route
// but ping, the root document and sign-in needs an API key (header
// X-Octopus-ApiKey); handlers return errors and one function maps them to
// statuses.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/feed"
	"github.com/cuttledeploy/cuttle/live"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/netguard"
	"github.com/cuttledeploy/cuttle/portal"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
)

// Server is the HTTP API of one node.
type Server struct {
	store   store.Store
	member  *cluster.Member
	cluster cuttle.Cluster
	kinds   tasks.Kinds
	logs    tasklog.Store
	feed    *feed.Feed
	live    *live.Hub
	log     *slog.Logger
	mux     *http.ServeMux
	// thumbprint is the cluster certificate's, which agents pin.
	thumbprint string
	masterKey  masterkey.Key // keys the digests of API keys
	limits     cuttle.Limits

	grants grants // users' effective permissions, cached

	ping atomic.Pointer[pingCache]
	// links are the root documents' Links of the document collections,
	// added as their routes are registered (serveDocs).
	links map[string]string
}

// Config configures a Server.
type Config struct {
	Store   store.Store
	Member  *cluster.Member
	Cluster cuttle.Cluster // the identity InitCluster returned
	Kinds   tasks.Kinds    // the task kinds users may queue
	Logs    tasklog.Store  // task logs in shared storage
	Feed    *feed.Feed     // the built-in package repository
	Live    *live.Hub      // the updates GET /api/live streams; nil: none
	Logger  *slog.Logger   // default slog.Default()
	// ClusterThumbprint is the thumbprint of the certificate nodes present
	// to agents; the API serves it as certificate-global.
	ClusterThumbprint string
	// MasterKey keys the digests of API keys (resources.DigestAPIKey).
	MasterKey masterkey.Key
	// Limits bound what a request may make the node hold (DetailsBytes);
	// zero fields take their defaults.
	Limits cuttle.Limits
}

// New returns the API server of a node.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{store: cfg.Store, member: cfg.Member, cluster: cfg.Cluster, kinds: cfg.Kinds, logs: cfg.Logs, feed: cfg.Feed, live: cfg.Live, log: log, mux: http.NewServeMux(),
		thumbprint: cfg.ClusterThumbprint, masterKey: cfg.MasterKey, limits: cfg.Limits.WithDefaults(), links: map[string]string{}}
	if cfg.Member != nil {
		s.grants = grants{byUser: map[string]grantsEntry{}, cached: true}
		cfg.Member.Handle(store.ChannelDocuments, s.grants.changed)
	}
	s.routes()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handler is an HTTP handler that returns its error for handle to answer.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle registers h for pattern behind the given access check: the
// caller is authenticated (KindUnauthorized), their permissions found
// (cached: grants) and checked against who.perm (KindForbidden naming
// it), and the request carries them (callerOf).
func (s *Server) handle(pattern string, who access, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !who.open {
			c, signedIn, err := s.authorize(r, who)
			r = signedIn
			if err != nil {
				if cuttle.IsKind(err, cuttle.KindUnauthorized) {
					// Nothing of an unauthenticated request is read, and its
					// connection is not kept for more.
					netguard.Refuse(w)
				}
				writeError(w, r, s.log, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
			if audited(r.Method) {
				rec := &recorder{ResponseWriter: w, status: http.StatusOK}
				w = rec
				defer func() { s.audit(r, rec) }()
			}
		}
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// authorize authenticates r and finds the caller's permissions; the
// request returned carries the session, if any.
func (s *Server) authorize(r *http.Request, who access) (caller, *http.Request, error) {
	u, r, err := s.authenticate(r)
	if err != nil {
		return caller{}, r, err
	}
	perms, err := s.grants.of(r.Context(), s.store, u.ID)
	if err != nil {
		return caller{}, r, err
	}
	if who.perm != "" && !perms.Anywhere(who.perm) {
		return caller{}, r, forbidden(who.perm, "")
	}
	return caller{user: u, perms: perms}, r, nil
}

func (s *Server) routes() {
	s.handle("GET /api/octopusservernodes/ping", anyone, s.handlePing)
	s.handle("GET /api/octopusservernodes", user, s.handleNodeList)
	s.handle("GET /api/octopusservernodes/all", user, s.handleNodeAll)
	s.handle("GET /api/octopusservernodes/summary", user, s.handleNodeSummary)
	s.handle("GET /api/octopusservernodes/{id}", user, s.handleNodeGet)
	s.handle("GET /api/octopusservernodes/{id}/details", user, s.handleNodeDetails)
	s.handle("PUT /api/octopusservernodes/{id}", can("ConfigureServer"), s.handleNodeUpdate)
	s.handle("DELETE /api/octopusservernodes/{id}", can("ConfigureServer"), s.handleNodeDelete)
	s.handle("GET /api/cluster", user, s.handleClusterGet)
	s.handle("GET /api/live", user, s.handleLive)
	s.handle("PUT /api/cluster", can("ConfigureServer"), s.handleClusterUpdate)
	s.taskRoutes()
	s.machineRoutes()
	s.documentRoutes()
	s.peopleRoutes()
	s.signInRoutes()
	s.eventRoutes()
	s.roleRoutes()
	s.packageRoutes()
	s.artifactRoutes()
	s.rootRoutes()
	s.mux.Handle("GET /app/", portal.Handler())
	for _, p := range []string{"GET /{$}", "GET /app"} {
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/app/", http.StatusFound) })
	}
	s.handle("/api/", user, func(w http.ResponseWriter, r *http.Request) error {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no route %s %s.", r.Method, r.URL.Path)
	})
}
