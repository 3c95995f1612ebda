package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/comms"
	"github.com/cuttledeploy/cuttle/server"
)

// serverOptions are the flags of `cuttle server`.
type serverOptions struct {
	dataDir, db, listen, pollingListen, nodeName, masterKey, adminAPIKey string
	tlsCert, tlsKey                                                      string
	storage                                                              blob.Config
	logLevel                                                             string
	taskCap                                                              optionalInt
	shutdownGrace, agentPickup                                           time.Duration
	limits                                                               cuttle.Limits
}

func runServer(args []string, stdout, stderr io.Writer) error {
	host, _ := os.Hostname()
	var o serverOptions
	fs := newFlagSet("server", "cuttle server [flags]", stderr)
	fs.StringVar(&o.dataDir, "data-dir", "./cuttle-data", "folder for the embedded database, the generated master key and, by default, shared storage")
	fs.StringVar(&o.db, "db", "", "PostgreSQL URL (postgres://...) of the cluster to join; empty: embedded SQLite in the data folder")
	fs.StringVar(&o.listen, "listen", ":8080", "address of the API and UI (plain HTTP unless --tls-cert and --tls-key are given)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM file of the API's certificate (then its intermediates): with --tls-key, the API serves HTTPS only; a renewed file is picked up without a restart")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM file of the private key of --tls-cert")
	fs.StringVar(&o.pollingListen, "polling-listen", fmt.Sprintf(":%d", cuttle.DefaultPollingPort), "address polling agents connect to (TLS with the cluster's certificate)")
	fs.StringVar(&o.nodeName, "node-name", host, "name of this node, unique in the cluster; it keeps its id across restarts")
	fs.Var(&o.taskCap, "task-cap", fmt.Sprintf("most tasks this node runs at once (0: API and UI only); default: keep the node's cap, %d for a new node", cuttle.DefaultTaskCap))
	fs.StringVar(&o.masterKey, "master-key", "", "master key shared by every node (base64 of 32 bytes); default: the key in the data folder, generated at first start")
	fs.StringVar(&o.storage.Storage, "storage", "", "shared storage for packages, artifacts and task logs: a folder every node mounts, or an object store s3://bucket/prefix (default: <data-dir>/storage)")
	fs.StringVar(&o.storage.Packages, "packages", "", "folder or s3:// URL for packages (default: <storage>/packages)")
	fs.StringVar(&o.storage.Artifacts, "artifacts", "", "folder or s3:// URL for artifacts (default: <storage>/artifacts)")
	fs.StringVar(&o.storage.TaskLogs, "task-logs", "", "folder or s3:// URL for task logs (default: <storage>/tasklogs)")
	fs.StringVar(&o.storage.S3.Endpoint, "s3-endpoint", "", "address of the object store of s3:// places: https://host:port, or http://host:port for one without TLS (default: AWS S3)")
	fs.StringVar(&o.storage.S3.Region, "s3-region", "", "region of the s3:// buckets (default: us-east-1)")
	fs.StringVar(&o.storage.S3.AccessKey, "s3-access-key", "", "access key of the object store (default: AWS_ACCESS_KEY_ID, or the machine's role)")
	fs.StringVar(&o.storage.S3.SecretKey, "s3-secret-key", "", "secret key of the object store; prefer the variable CUTTLE_S3_SECRET_KEY to the flag (default: AWS_SECRET_ACCESS_KEY, or the machine's role)")
	fs.StringVar(&o.adminAPIKey, "admin-api-key", "", "ensure an administrator API key with exactly this value exists (API- and at least 20 upper-case letters and digits)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "on SIGTERM, how long running tasks may finish before resumable ones go back to the queue and the others fail")
	fs.DurationVar(&o.agentPickup, "agent-pickup-timeout", comms.DefaultPickupTimeout, "how long a task waits for an agent to take a command before it gives up on that target")
	limitFlags(fs, &o.limits)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := o.limits.Check(); err != nil {
		return err
	}
	log, err := newLogger(stderr, o.logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return serve(ctx, o, stdout, log)
}

// limitFlags defines the flags of the bounds on what clients, agents and
// scripts can make a node hold (cuttle.Limits), each with its default.
func limitFlags(fs *flag.FlagSet, l *cuttle.Limits) {
	*l = cuttle.Limits{}.WithDefaults()
	fs.IntVar(&l.ConnsPerAddress, "max-conns-per-address", l.ConnsPerAddress,
		"most connections one remote address holds open on the API port; more are closed at once (behind a load balancer, every client has its address)")
	fs.IntVar(&l.AgentConnsPerAddress, "agent-max-conns-per-address", l.AgentConnsPerAddress,
		"most connections one remote address holds open on the polling port (a TCP balancer in front of polling agents shows them all from its address)")
	fs.DurationVar(&l.BodyTimeout, "body-timeout", l.BodyTimeout,
		"how long a request body may send nothing before the node gives up on it and closes the connection (the deadline moves while data arrives)")
	fs.Var(sizeFlag[int]{&l.LogLineBytes}, "log-line-limit",
		"longest line a task log keeps; the rest of a longer line is cut, and the cut marked")
	fs.Var(sizeFlag[int64]{&l.CommandOutputBytes}, "command-output-limit",
		"most output one command or script keeps; what comes after is counted and said, not kept")
	fs.Int64Var(&l.CommandOutputLines, "command-output-lines", l.CommandOutputLines,
		"most lines of output one command or script keeps; what comes after is counted and said, not kept")
	fs.Var(sizeFlag[int64]{&l.ArtifactBytes}, "artifact-limit", "largest file an agent may upload as an artifact")
	fs.IntVar(&l.ReportConcurrency, "report-concurrency", l.ReportConcurrency,
		"agent reports one node decodes at once (default: two per core); one agent holds at most a quarter of them, and a report waits up to 5 s for a place before it is asked to retry")
	fs.Var(sizeFlag[int]{&l.DetailsBytes}, "details-limit", "most log text one task details answer carries: the newest lines that fit")
	fs.DurationVar(&l.CommandRetention, "command-retention", l.CommandRetention,
		"how long agent commands and their stored output are kept after their task ended (the task's log keeps the output)")
	fs.DurationVar(&l.PackageRetention, "package-retention", l.PackageRetention,
		"how long the built-in feed keeps a package version no kept release uses, from its upload")
	fs.DurationVar(&l.AgentCacheRetention, "agent-cache-retention", l.AgentCacheRetention,
		"how long an agent keeps a cached package it has not deployed from (the PackageCacheCleanup job)")
	fs.DurationVar(&l.EventRetention, "event-retention", l.EventRetention,
		"how long the audit log (/api/events) keeps an event")
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
	node, err := server.New(ctx, server.Config{
		DataDir: o.dataDir, DB: o.db, Listen: o.listen, TLSCert: o.tlsCert, TLSKey: o.tlsKey, PollingListen: o.pollingListen, NodeName: o.nodeName,
		TaskCap: o.taskCap.ptr(), MasterKey: o.masterKey, AdminAPIKey: o.adminAPIKey,
		Storage:       o.storage,
		ShutdownGrace: o.shutdownGrace, AgentPickup: o.agentPickup, Limits: o.limits, Logger: log, Stdout: stdout,
	})
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err := <-node.Failed():
		log.Error("HTTP server failed", "err", err)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	node.Stop(stopCtx)
	return nil
}
