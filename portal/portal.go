// Package portal is cuttle's web portal: static pages embedded in the
// binary (no build step, nothing fetched from another site), served by
// every node at /app, that read the same API the clients use, signed in
// with a session cookie (api/signin.go).
//
// Pages are hash routes, as Octopus's portal has them
// (/app#/Spaces-1/projects/Projects-1, the links the CLI prints): sign-in;
// the dashboard; projects (process editor, variables with sensitive values
// masked, channels, releases, deploy, a deployment's progress by step and
// target with its interruptions answered in place); environments and
// deployment targets ("add a target" with the exact commands and the
// cluster's thumbprint); the library (packages, versions, upload with
// progress); tasks and their live logs; Configuration → Nodes, Cluster
// overview, Users, Teams, Roles, API keys and Audit. The assets are ES
// modules: app.js routes, core.js holds the API calls, page helpers,
// permissions (a control the user may not use is not shown) and live
// refresh. Pages re-read what they show when GET /api/live (server-sent
// events) names it, and poll every 10 s beside it, every 2 s without it.
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
