// Package portal is cuttle's web portal: static pages embedded in the
// binary (no build step, nothing fetched from another site), served by
// every node at /app, that read the same API the clients use, signed in
// with a session cookie (api/signin.go).
//
// Pages are hash routes, as Octopus's portal has them (/app#/...). Built
// so far: sign-in; Configuration → Nodes (rank, last seen with a warning
// for an offline node, running tasks, the task cap and the drain toggle
// editable in place); Configuration → Cluster overview (heartbeat and
// stale timeout editable, the servers table with warnings for a stale
// heartbeat, a version or master key out of sync, and remove for an
// offline server); Tasks (state and node filters) and a task's page (its
// log, followed live, and cancel); Deployment targets with their health,
// and the commands that add one, with the cluster's thumbprint. Pages
// refresh every 2 seconds.
package portal

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Assets are the portal's files.
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded folder is there at build time
	}
	return sub
}

// Handler serves the portal's files under /app/, with a content security
// policy that lets the page reach its own node only.
func Handler() http.Handler {
	files := http.StripPrefix("/app/", http.FileServerFS(Assets()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
