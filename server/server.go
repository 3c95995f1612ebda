// Package server is one cuttle node: it opens the database and shared
// storage, joins the cluster, and serves the API, the task executor and the
// agents' polling endpoint. `cuttle server` runs one; tests start real ones
// in-process with the same wiring.
//
// A Node is made by New (which opens and checks everything and listens, but
// serves nothing yet), run by Start, and stopped by Stop: ping answers 503
// and leadership moves at once, running tasks get the grace period to
// finish, then resumable ones go back to the queue and the others fail,
// then the node leaves the cluster (DESIGN.md, Process: SIGTERM).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/api"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/comms"
	"github.com/cuttledeploy/cuttle/deploy"
	"github.com/cuttledeploy/cuttle/feed"
	"github.com/cuttledeploy/cuttle/host"
	"github.com/cuttledeploy/cuttle/housekeeping"
	"github.com/cuttledeploy/cuttle/live"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/netguard"
	"github.com/cuttledeploy/cuttle/ratelog"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/postgres"
	"github.com/cuttledeploy/cuttle/store/sqlite"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
	"github.com/cuttledeploy/cuttle/tlsfiles"
)

// Config configures a Node. The zero value of every field but NodeName
// works: an embedded database in ./cuttle-data, plain HTTP on :8080,
// polling agents on :10943.
type Config struct {
	DataDir string // default "./cuttle-data"; made private to its owner (0700)
	// DB is the PostgreSQL URL of the cluster to join; empty: embedded
	// SQLite in DataDir.
	DB            string
	Listen        string // address of the API; default ":8080"
	PollingListen string // address polling agents connect to; default ":10943"
	NodeName      string // unique in the cluster; required
	// TLSCert and TLSKey are PEM files: the API's certificate (then its
	// intermediates) and its private key. Given both, the API serves HTTPS
	// only (TLS 1.2 at least), and a renewed pair written over the files
	// is served within about a second, without a restart (package
	// tlsfiles). Given neither, it serves plain HTTP. New fails when only
	// one is given, a file cannot be read, or the two are not a pair.
	TLSCert, TLSKey string
	// TaskCap, when not nil, sets the node's task cap; otherwise a known
	// node keeps its cap and a new one gets cuttle.DefaultTaskCap.
	TaskCap *int
	// MasterKey is the base64 master key; default the key in DataDir,
	// generated at first start.
	MasterKey string
	// AdminAPIKey, when set, is made an administrator's API key.
	AdminAPIKey string
	// Storage says where shared storage is: a folder or an object store
	// (blob.Config); its Storage is DataDir/storage when empty.
	Storage blob.Config
	// ShutdownGrace is how long running tasks may finish at Stop; default 10 s.
	ShutdownGrace time.Duration
	// AgentPickup is how long a task waits for an agent to take a command;
	// default comms.DefaultPickupTimeout.
	AgentPickup time.Duration
	// Limits bound what clients, agents and scripts can make the node hold
	// (connections, bodies, reports, logs, output, uploads); zero fields
	// take their defaults.
	Limits cuttle.Limits
	Logger *slog.Logger // default slog.Default()
	// Stdout receives the administrator's API key generated at the first
	// start of a cluster; default os.Stdout.
	Stdout io.Writer
}

// Node is one running cuttle server.
type Node struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	member   *cluster.Member
	agents   *comms.Comms
	executor *tasks.Executor
	http     *http.Server
	ln, pln  net.Listener
	cluster  cuttle.Cluster
	// thumbprint is the cluster certificate's, which agents pin.
	thumbprint string
	failed     chan error // the HTTP server's failure
	started    bool       // Start succeeded
}

// New opens the node's database and storage, checks its master key against
// the cluster's (DESIGN.md invariant 8), makes sure an administrator can
// sign in, and listens on its addresses. Nothing is served until Start.
// On an error everything opened is closed again.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "./cuttle-data"
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8080"
	}
	if cfg.PollingListen == "" {
		cfg.PollingListen = fmt.Sprintf(":%d", cuttle.DefaultPollingPort)
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.AgentPickup == 0 {
		cfg.AgentPickup = comms.DefaultPickupTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	log := cfg.Logger
	if cfg.NodeName == "" {
		return nil, errors.New("--node-name is empty and the host name is unknown: name this node")
	}
	if cfg.AdminAPIKey != "" {
		if err := cuttle.CheckAPIKey(cfg.AdminAPIKey); err != nil {
			return nil, fmt.Errorf("--admin-api-key: %w", err)
		}
	}
	if err := cfg.Limits.Check(); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	apiTLS, err := loadTLS(cfg.TLSCert, cfg.TLSKey, log)
	if err != nil {
		return nil, err
	}
	if err := privateDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	key, generated, err := masterkey.Load(cfg.MasterKey, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if generated {
		log.Info("generated a master key; every node of this cluster needs the same key (--master-key)", "file", filepath.Join(cfg.DataDir, masterkey.FileName))
	}
	if cfg.Storage.Storage == "" {
		cfg.Storage.Storage = filepath.Join(cfg.DataDir, "storage")
	}
	files, err := blob.Open(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}

	n := &Node{cfg: cfg, log: log, failed: make(chan error, 1)}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if n.store, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	if n.cluster, err = n.store.InitCluster(ctx, key.Fingerprint()); err != nil {
		return nil, fmt.Errorf("reading the cluster's identity: %w", err)
	}
	if n.cluster.KeyFingerprint != key.Fingerprint() {
		return nil, fmt.Errorf("the master key does not match the cluster's (this node's key has fingerprint %s, the cluster's has %s): "+
			"start this node with the key the other nodes use, with --master-key or CUTTLE_MASTER_KEY (it is in master.key in the first node's data folder)",
			key.Fingerprint(), n.cluster.KeyFingerprint)
	}
	if err := ensureAdmin(ctx, n.store, key, cfg.AdminAPIKey, cfg.Stdout); err != nil {
		return nil, err
	}
	identity, err := comms.LoadIdentity(ctx, n.store, key)
	if err != nil {
		return nil, fmt.Errorf("loading the cluster's certificate: %w", err)
	}
	n.thumbprint = identity.Thumbprint
	if n.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	if n.pln, err = net.Listen("tcp", cfg.PollingListen); err != nil {
		return nil, fmt.Errorf("listening for polling agents on %s: %w", cfg.PollingListen, err)
	}

	logs := tasklog.Store{Files: files.Of(blob.TaskLogsKey), LineLimit: cfg.Limits.LogLineBytes,
		Written: live.NewLogNotifier(n.store, log).Written}
	kinds := tasks.Builtin(files)
	for _, k := range housekeeping.Kinds(housekeeping.Config{Store: n.store, Files: files, Logs: logs, Limits: cfg.Limits}) {
		kinds.Add(k)
	}
	kinds.Add(deploy.Kind(deploy.Config{Store: n.store, Files: files, MasterKey: key}))
	n.member = cluster.New(cluster.Config{
		Store: n.store,
		Registration: cuttle.NodeRegistration{
			Name: cfg.NodeName, Version: cuttle.Version, OS: host.OSDescription(), Addresses: host.Addresses(),
			KeyFingerprint: key.Fingerprint(), TaskCap: cfg.TaskCap,
		},
		Logger: log,
	})
	n.agents = comms.New(comms.Config{Store: n.store, Member: n.member, Identity: identity, Storage: files, Logger: log,
		PickupTimeout: cfg.AgentPickup, Limits: cfg.Limits, MasterKey: key,
		Redact: deploy.Redactor(key)})
	n.executor = tasks.New(tasks.Config{Store: n.store, Member: n.member, Logs: logs, Kinds: kinds, Agents: n.agents, Limits: cfg.Limits, Logger: log})
	refusals := ratelog.New(log, 0)
	n.ln = netguard.Limit(n.ln, cfg.Limits.ConnsPerAddress, func(ip string) {
		refusals.Warn("conns/"+ip, "closed a connection: its address holds the most connections allowed",
			"remote", ip, "limit", cfg.Limits.ConnsPerAddress)
	})
	apiHandler := api.New(api.Config{Store: n.store, Member: n.member, Cluster: n.cluster, Kinds: kinds, Logs: logs, Logger: log, Live: live.NewHub(n.member),
		Feed:              &feed.Feed{Store: n.store, Files: files, Logger: log},
		ClusterThumbprint: identity.Thumbprint, MasterKey: key, Limits: cfg.Limits})
	n.http = &http.Server{
		Handler:           netguard.BodyTimeout(apiHandler, cfg.Limits.BodyTimeout),
		TLSConfig:         apiTLS,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// A scanner can make net/http log a line per connection (a failed
		// TLS handshake, plain HTTP to the HTTPS port): once per cause.
		ErrorLog: stdlog.New(refusals.Writer(slog.LevelWarn), "", 0),
	}
	log.Info("cuttle server ready", "data", cfg.DataDir, "storage", files.Describe(), "cluster_thumbprint", identity.Thumbprint)
	return n, nil
}

// close releases what New opened.
func (n *Node) close() {
	if n.ln != nil {
		n.ln.Close()
	}
	if n.pln != nil {
		n.pln.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

// Start joins the cluster and starts serving. It fails if the node cannot
// register (for example when the database cannot be reached); then the node
// is closed.
func (n *Node) Start(ctx context.Context) error {
	if err := n.member.Start(ctx); err != nil {
		n.close()
		return fmt.Errorf("joining the cluster: %w", err)
	}
	n.started = true
	n.agents.Start(ctx)
	n.executor.Start(ctx)
	go func() {
		if err := n.agents.Serve(n.pln); err != nil {
			n.log.Error("the polling endpoint failed", "err", err)
		}
	}()
	go func() {
		var err error
		if n.http.TLSConfig != nil {
			err = n.http.ServeTLS(n.ln, "", "") // the certificate comes from TLSConfig
		} else {
			err = n.http.Serve(n.ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			n.failed <- err
		}
	}()
	n.log.Info("cuttle server started", "api", n.URL(), "polling", n.PollingAddr(), "version", cuttle.Version)
	return nil
}

// Failed delivers the error of an HTTP server that stopped serving by
// itself; the caller then stops the node.
func (n *Node) Failed() <-chan error { return n.failed }

// Addr is the address the API listens on; PollingAddr polling agents'.
func (n *Node) Addr() string        { return n.ln.Addr().String() }
func (n *Node) PollingAddr() string { return n.pln.Addr().String() }

// URL is the API's base URL at Addr: https:// when it serves TLS, http://
// otherwise.
func (n *Node) URL() string {
	if n.http.TLSConfig != nil {
		return "https://" + n.Addr()
	}
	return "http://" + n.Addr()
}

// Store is the node's database.
func (n *Node) Store() store.Store { return n.store }

// Member is the node's membership of the cluster.
func (n *Node) Member() *cluster.Member { return n.member }

// Cluster is the identity of the cluster the node joined.
func (n *Node) Cluster() cuttle.Cluster { return n.cluster }

// Thumbprint is the thumbprint of the cluster certificate the node presents to agents.
func (n *Node) Thumbprint() string { return n.thumbprint }

// Stop stops the node cleanly: ping answers 503 and leadership moves at
// once; running tasks get the shutdown grace to finish, then resumable ones
// go back to the queue and the others fail; the node leaves the cluster
// (offline at once) and closes. ctx bounds the last steps (leaving the
// cluster, closing connections), not the grace. A node that was never
// started is only closed.
func (n *Node) Stop(ctx context.Context) {
	if !n.started {
		n.close()
		return
	}
	n.member.BeginStop()
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), n.cfg.ShutdownGrace)
	n.executor.Stop(graceCtx)
	cancelGrace()
	agentsCtx, cancelAgents := context.WithTimeout(ctx, time.Second)
	n.agents.Stop(agentsCtx)
	cancelAgents()
	if err := n.member.Stop(ctx); err != nil {
		n.log.Warn("leaving the cluster cleanly failed; the others will see this node go stale", "err", err)
	}
	if err := n.http.Shutdown(ctx); err != nil {
		n.http.Close()
	}
	n.close()
	n.log.Info("stopped")
}

// loadTLS returns the TLS configuration of the API for --tls-cert and
// --tls-key, or nil for plain HTTP when both are empty. It fails when only
// one is given or the pair does not load.
func loadTLS(certFile, keyFile string, log *slog.Logger) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("--tls-cert and --tls-key go together: give both to serve the API over HTTPS, or neither for plain HTTP")
	}
	pair, err := tlsfiles.Load(certFile, keyFile, log)
	if err != nil {
		return nil, fmt.Errorf("serving the API over HTTPS: %w", err)
	}
	return pair.ServerConfig(), nil
}

// privateDir creates the data folder, which holds the master key and the
// embedded database, for its owner only (0700), and narrows an existing
// folder that others may enter to that.
func privateDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the data folder: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("reading the data folder: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("making the data folder private (it holds the master key): %w", err)
		}
		log.Info("made the data folder private to its owner (it holds the master key)", "folder", dir, "was", info.Mode().Perm().String())
	}
	return nil
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case cfg.DB == "":
		path := filepath.Join(cfg.DataDir, "cuttle.db")
		st, err := sqlite.Open(openCtx, path)
		if err != nil {
			return nil, fmt.Errorf("opening the embedded database %s: %w", path, err)
		}
		return st, nil
	case strings.HasPrefix(cfg.DB, "postgres://"), strings.HasPrefix(cfg.DB, "postgresql://"):
		st, err := postgres.Open(openCtx, cfg.DB)
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL database: %w", err)
		}
		return st, nil
	default:
		return nil, errors.New("--db must be a PostgreSQL URL (postgres://user:password@host:5432/database), or empty for the embedded database")
	}
}

// ensureAdmin makes sure an administrator can sign in: it adds the key of
// --admin-api-key (to the user "admin", created if missing), or, on a
// cluster with no user yet, creates "admin" with a generated key and
// prints the key once. Nodes starting together may race: the loser of the
// username's uniqueness tries again and finds the winner's user.
func ensureAdmin(ctx context.Context, st store.Store, mk masterkey.Key, key string, stdout io.Writer) error {
	const name = "admin"
	var printed string
	try := func() error {
		printed = ""
		return st.Update(ctx, func(tx *collection.Tx) error {
			_, n, err := resources.Users.List(ctx, tx, collection.Query{Take: 1})
			if err != nil || (key == "" && n > 0) {
				return err
			}
			u, err := resources.UserNamed(ctx, tx, name)
			if cuttle.IsKind(err, cuttle.KindNotFound) {
				u = cuttle.User{Username: name, DisplayName: "Administrator", IsActive: true, IsService: true}
				err = resources.CreateUser(ctx, tx, &u, true)
			}
			if err != nil {
				return err
			}
			k := key
			if k == "" {
				k = cuttle.NewAPIKey()
				printed = k
			}
			_, err = resources.AddAPIKey(ctx, tx, mk, u.ID, "administrator", k)
			return err
		})
	}
	err := try()
	if cuttle.IsKind(err, cuttle.KindConflict) {
		err = try()
	}
	if err != nil {
		return fmt.Errorf("creating the administrator and their API key: %w", err)
	}
	if printed != "" {
		fmt.Fprintf(stdout, "\nGenerated the administrator's API key. It is shown only this once; keep it safe:\n\n    %s\n\n", printed)
	}
	return nil
}
