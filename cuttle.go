// Package cuttle holds the domain types of the cuttle deployment server: nodes,
// the cluster's settings, the leader lease, users and API keys, and the one
// error type every layer returns. Adapters live in sub-packages (store/sqlite,
// store/postgres, api, ...) and are wired together in cmd/cuttle.
package cuttle

// Version is the software version of this build. Nodes report it and the
// cluster page compares it with the version most nodes run. It is set at build
// time with -ldflags "-X github.com/cuttledeploy/cuttle.Version=...".
var Version = "0.1.0-dev"

// Application is the product name reported by the API's root document.
const Application = "cuttle"
