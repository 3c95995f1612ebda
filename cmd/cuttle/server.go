package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/api"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/comms"
	"github.com/cuttledeploy/cuttle/host"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/postgres"
	"github.com/cuttledeploy/cuttle/store/sqlite"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
)

// serverOptions are the flags of `cuttle server`.
type serverOptions struct {
	dataDir, db, listen, pollingListen, nodeName, masterKey, adminAPIKey string
	storage, packages, artifacts, taskLogs                               string
	logLevel                                                             string
	taskCap                                                              optionalInt
	shutdownGrace, agentPickup                                           time.Duration
}

func runServer(args []string, stdout, stderr io.Writer) error {
	host, _ := os.Hostname()
	var o serverOptions
	fs := newFlagSet("server", "cuttle server [flags]", stderr)
	fs.StringVar(&o.dataDir, "data-dir", "./cuttle-data", "folder for the embedded database, the generated master key and, by default, shared storage")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL (postgres://...) of the cluster to join; empty: embedded SQLite in the data folder")
	fs.StringVar(&o.listen, "listen", ":8080", "HTTP address of the API and UI")
	fs.StringVar(&o.pollingListen, "polling-listen", fmt.Sprintf(":%d", cuttle.DefaultPollingPort), "address polling agents connect to (TLS with the cluster's certificate)")
	fs.StringVar(&o.nodeName, "node-name", host, "name of this node, unique in the cluster; it keeps its id across restarts")
	fs.Var(&o.taskCap, "task-cap", fmt.Sprintf("most tasks this node runs at once (0: API and UI only); default: keep the node's cap, %d for a new node", cuttle.DefaultTaskCap))
	fs.StringVar(&o.masterKey, "master-key", "", "master key shared by every node (base64 of 32 bytes); default: the key in the data folder, generated at first start")
	fs.StringVar(&o.storage, "storage", "", "shared storage root for packages, artifacts and task logs (default: <data-dir>/storage)")
	fs.StringVar(&o.packages, "packages", "", "folder for packages (default: <storage>/packages)")
	fs.StringVar(&o.artifacts, "artifacts", "", "folder for artifacts (default: <storage>/artifacts)")
	fs.StringVar(&o.taskLogs, "task-logs", "", "folder for task logs (default: <storage>/tasklogs)")
	fs.StringVar(&o.adminAPIKey, "admin-api-key", "", "ensure an administrator API key with exactly this value exists (API- and at least 20 upper-case letters and digits)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long running tasks may finish before resumable ones go back to the queue and the others fail")
	fs.DurationVar(&o.agentPickup, "agent-pickup-timeout", comms.DefaultPickupTimeout, "how long a task waits for an agent to take a command before it gives up on that target")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return serve(ctx, o, stdout, log)
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serve runs a node until ctx ends, then stops it cleanly.
func serve(ctx context.Context, o serverOptions, stdout io.Writer, log *slog.Logger) error {
	if o.nodeName == "" {
		return errors.New("--node-name is empty and the host name is unknown: name this node")
	}
	if o.adminAPIKey != "" && !cuttle.ValidAPIKey(o.adminAPIKey) {
		return errors.New("--admin-api-key must be API- followed by at least 20 upper-case letters and digits")
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("creating the data folder: %w", err)
	}
	key, generated, err := masterkey.Load(o.masterKey, o.dataDir)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	if generated {
		log.Info("generated a master key; every node of this cluster needs the same key (--master-key)", "file", filepath.Join(o.dataDir, masterkey.FileName))
	}
	storageRoot := o.storage
	if storageRoot == "" {
		storageRoot = filepath.Join(o.dataDir, "storage")
	}
	layout := blob.NewLayout(storageRoot, o.packages, o.artifacts, o.taskLogs)
	if err := layout.Create(); err != nil {
		return err
	}

	st, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer st.Close()

	clusterID, err := st.InitCluster(ctx, key.Fingerprint())
	if err != nil {
		return fmt.Errorf("reading the cluster's identity: %w", err)
	}
	if clusterID.KeyFingerprint != key.Fingerprint() {
		return fmt.Errorf("the master key does not match the cluster's (this node's key has fingerprint %s, the cluster's has %s): "+
			"start this node with the key the other nodes use, with --master-key or CUTTLE_MASTER_KEY (it is in master.key in the first node's data folder)",
			key.Fingerprint(), clusterID.KeyFingerprint)
	}
	if err := ensureAdmin(ctx, st, o.adminAPIKey, stdout); err != nil {
		return err
	}

	identity, err := comms.LoadIdentity(ctx, st, key)
	if err != nil {
		return fmt.Errorf("loading the cluster's certificate: %w", err)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.listen, err)
	}
	pln, err := net.Listen("tcp", o.pollingListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listening for polling agents on %s: %w", o.pollingListen, err)
	}
	logs := tasklog.Store{Root: layout.TaskLogs}
	kinds := tasks.Builtin(layout)
	member := cluster.New(cluster.Config{
		Store: st,
		Registration: cuttle.NodeRegistration{
			Name: o.nodeName, Version: cuttle.Version, OS: host.OSDescription(), Addresses: host.Addresses(),
			KeyFingerprint: key.Fingerprint(), TaskCap: o.taskCap.ptr(),
		},
		Logger: log,
	})
	agents := comms.New(comms.Config{Store: st, Member: member, Identity: identity, Storage: layout, Logger: log, PickupTimeout: o.agentPickup})
	executor := tasks.New(tasks.Config{Store: st, Member: member, Logs: logs, Kinds: kinds, Agents: agents, Logger: log})
	if err := member.Start(ctx); err != nil {
		ln.Close()
		pln.Close()
		return fmt.Errorf("joining the cluster: %w", err)
	}
	agents.Start(ctx)
	executor.Start(ctx)
	go func() {
		if err := agents.Serve(pln); err != nil {
			log.Error("the polling endpoint failed", "err", err)
		}
	}()
	srv := &http.Server{
		Handler: api.New(api.Config{Store: st, Member: member, Cluster: clusterID, Kinds: kinds, Logs: logs, Logger: log,
			ClusterThumbprint: identity.Thumbprint}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("cuttle server started", "listen", ln.Addr().String(), "polling", pln.Addr().String(), "version", cuttle.Version,
		"data", o.dataDir, "storage", storageRoot, "thumbprint", identity.Thumbprint)

	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err := <-serveErr:
		log.Error("HTTP server failed", "err", err)
	}
	// Ping answers 503 and leadership moves at once; running tasks get the
	// grace period to finish, then resumable ones go back to the queue and
	// the others fail; then the node leaves the cluster.
	member.BeginStop()
	graceCtx, cancelGrace := context.WithTimeout(context.Background(), o.shutdownGrace)
	executor.Stop(graceCtx)
	cancelGrace()
	agentsCtx, cancelAgents := context.WithTimeout(context.Background(), time.Second)
	agents.Stop(agentsCtx)
	cancelAgents()
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := member.Stop(stopCtx); err != nil {
		log.Warn("leaving the cluster cleanly failed; the others will see this node go stale", "err", err)
	}
	if err := srv.Shutdown(stopCtx); err != nil {
		srv.Close()
	}
	log.Info("stopped")
	return nil
}

func openStore(ctx context.Context, o serverOptions) (store.Store, error) {
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case o.db == "":
		path := filepath.Join(o.dataDir, "cuttle.db")
		st, err := sqlite.Open(openCtx, path)
		if err != nil {
			return nil, fmt.Errorf("opening the embedded database %s: %w", path, err)
		}
		return st, nil
	case strings.HasPrefix(o.db, "postgres://"), strings.HasPrefix(o.db, "postgresql://"):
		st, err := postgres.Open(openCtx, o.db)
		if err != nil {
			return nil, fmt.Errorf("opening the PostgreSQL database: %w", err)
		}
		return st, nil
	default:
		return nil, errors.New("--db must be a PostgreSQL URL (postgres://user:password@host:5432/database), or empty for the embedded database")
	}
}

// ensureAdmin makes sure an administrator can sign in: it adds the key of
// --admin-api-key, or, on a cluster with no user yet, generates a key and
// prints it once.
func ensureAdmin(ctx context.Context, st store.Store, key string, stdout io.Writer) error {
	const name = "admin"
	if key == "" {
		n, err := st.UserCount(ctx)
		if err != nil || n > 0 {
			return err
		}
	}
	u, err := st.CreateUser(ctx, name, true)
	created := err == nil
	if cuttle.IsKind(err, cuttle.KindConflict) {
		if key == "" {
			return nil // another node created the first user at the same moment, and printed its key
		}
		u, err = st.UserByName(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("creating the administrator: %w", err)
	}
	printed := key == ""
	if printed {
		key = cuttle.NewAPIKey()
	}
	if err := st.AddAPIKey(ctx, u.ID, "administrator", cuttle.HashAPIKey(key)); err != nil {
		return fmt.Errorf("adding the administrator's API key: %w", err)
	}
	if printed && created {
		fmt.Fprintf(stdout, "\nGenerated the administrator's API key. It is shown only this once; keep it safe:\n\n    %s\n\n", key)
	}
	return nil
}
