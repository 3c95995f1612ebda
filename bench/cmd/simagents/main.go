// Command simagents runs many polling agents in one process, for cuttle's
// agent benchmarks (bench/agents_test.go). Each is a real agent.Agent of
// package agent, with its own home folder, certificate and subscription id,
// polling one address with one connection (PollConnections 1).
//
//	simagents -dir DIR -n 10000 -api http://127.0.0.1:8080 -api-key API-... -poll 127.0.0.1:10943
//
// It configures -n homes under -dir (sim-00001, sim-00002, ...; -name-prefix
// changes "sim"), each trusting the cluster's certificate (GET
// /api/certificates/certificate-global), and registers each as a polling
// machine (POST /api/Spaces-1/machines) named like its home, with the role
// -role, in the environment -environment (created if missing), -concurrency
// at a time. It raises its open-file limit to what the agents need, three
// per agent and 1,000 more (beyond the hard limit only when it may). Then it
// starts the agents one after the other, evenly over -spread (default one
// agentapi.PollWait), so that their polls reach the node evenly over each
// poll cycle, as independent agents' polls would, instead of all at once.
// It prints
//
//	registered N agents in 12.3s
//	started N agents in 30.0s
//
// and runs them until SIGTERM or SIGINT, when it stops them all (each with a
// shutdown grace of one second) and exits 0. Agents log at -log-level (warn
// unless given) and above to standard error, each line naming its agent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agent"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/client"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "simagents:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	dir, api, apiKey, poll, environment, role, prefix string
	logLevel                                          slog.Level
	n, concurrency                                    int
	spread                                            time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.dir, "dir", "", "folder of the agents' homes (required)")
	flag.IntVar(&o.n, "n", 1000, "number of agents")
	flag.StringVar(&o.api, "api", "", "URL of a node's HTTP API, for registering (required)")
	flag.StringVar(&o.apiKey, "api-key", "", "an administrator's API key (required)")
	flag.StringVar(&o.poll, "poll", "", "host:port the agents poll (required)")
	flag.StringVar(&o.environment, "environment", "Sim", "environment of the machines, created if missing")
	flag.StringVar(&o.role, "role", "sim", "role of the machines")
	flag.StringVar(&o.prefix, "name-prefix", "sim", "names of the machines and homes: PREFIX-00001, ...")
	flag.IntVar(&o.concurrency, "concurrency", 16, "homes configured and registered at once")
	flag.DurationVar(&o.spread, "spread", agentapi.PollWait, "the agents start evenly over this time")
	o.logLevel = slog.LevelWarn
	flag.TextVar(&o.logLevel, "log-level", o.logLevel, "the agents' log level: debug, info, warn or error")
	flag.Parse()
	if o.dir == "" || o.api == "" || o.apiKey == "" || o.poll == "" || o.n < 1 || o.concurrency < 1 {
		flag.Usage()
		return errors.New("-dir, -api, -api-key and -poll are required; -n and -concurrency must be positive")
	}
	if err := raiseFileLimit(filesPerAgent*uint64(o.n) + spareFiles); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	cl := &client.Client{BaseURL: o.api, APIKey: o.apiKey, HTTP: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency},
	}}
	t0 := time.Now()
	cfgs, err := register(ctx, cl, o)
	if err != nil {
		return err
	}
	fmt.Printf("registered %d agents in %.1fs\n", o.n, time.Since(t0).Seconds())

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	var running sync.WaitGroup
	defer running.Wait()
	t1 := time.Now()
	for i, cfg := range cfgs {
		if !sleepUntil(ctx, t1.Add(time.Duration(i)*o.spread/time.Duration(o.n))) {
			return nil
		}
		a, err := agent.New(cfg, logger.With("agent", cfg.Name))
		if err != nil {
			stop()
			return fmt.Errorf("agent %s: %w", cfg.Name, err)
		}
		a.ShutdownGrace = time.Second
		running.Go(func() {
			if err := a.Run(ctx); err != nil {
				logger.Error("an agent stopped", "agent", cfg.Name, "err", err)
			}
		})
	}
	fmt.Printf("started %d agents in %.1fs\n", o.n, time.Since(t1).Seconds())
	<-ctx.Done()
	return nil
}

// filesPerAgent is how many files an agent of this process may hold open:
// its home's lock and its poll's connection always, and a connection for
// reports, which stays open (idle) for a while after a command. A
// command's output file is open only while it runs or reports, which few
// do at once. spareFiles is for the rest of the process. The benchmarks
// (agentsPerSim) size their simagents processes by these numbers.
const (
	filesPerAgent = 3
	spareFiles    = 1000
)

// raiseFileLimit makes sure that the process may open need files, raising
// its limit (RLIMIT_NOFILE; the Go runtime has raised the soft limit to the
// hard one already) as far as need if it can: beyond the hard limit only
// a privileged process can.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	raised := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		return fmt.Errorf("the agents need up to %d open files, but the limit is %d (hard %d) and cannot be raised: %v; raise it (ulimit -Hn) or run fewer agents", need, lim.Cur, lim.Max, err)
	}
	return nil
}

// sleepUntil waits until t; it reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// register configures the homes and registers their machines, o.concurrency
// at a time, and returns the agents' configurations in order.
func register(ctx context.Context, cl *client.Client, o options) ([]agent.Config, error) {
	cert, err := cl.ClusterCertificate(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's certificate: %w", err)
	}
	envID, err := ensureEnvironment(ctx, cl, o.environment)
	if err != nil {
		return nil, err
	}
	cfgs := make([]agent.Config, o.n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range o.concurrency {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < o.n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				cfg, err := setUp(ctx, cl, o, fmt.Sprintf("%s-%05d", o.prefix, i+1), cert.Thumbprint, envID)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				cfgs[i] = cfg
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return cfgs, firstErr
}

// setUp configures one agent's home, trusting the cluster at o.poll, and
// registers its machine, as `cuttle agent configure --polling` and `cuttle
// agent register` do.
func setUp(ctx context.Context, cl *client.Client, o options, name, thumbprint, envID string) (agent.Config, error) {
	cfg, err := agent.Configure(filepath.Join(o.dir, name), agent.ConfigureOptions{Name: name, Mode: agent.Polling})
	if err != nil {
		return agent.Config{}, err
	}
	cfg.PollConnections = 1
	if _, err := cfg.Trust(agent.TrustedServer{Thumbprint: thumbprint, CommunicationStyle: cuttle.Polling, Address: o.poll}); err != nil {
		return agent.Config{}, err
	}
	_, err = cl.CreateMachine(ctx, client.NewMachine{
		Name: name, Roles: []string{o.role}, EnvironmentIds: []string{envID},
		Endpoint: client.Endpoint{CommunicationStyle: string(cuttle.Polling), Uri: cfg.SubscriptionId, Thumbprint: cfg.Identity.Thumbprint},
	})
	if err != nil {
		return agent.Config{}, fmt.Errorf("registering %s: %w", name, err)
	}
	return cfg, cfg.Save()
}

// ensureEnvironment returns the id of the environment named name, creating
// it if there is none.
func ensureEnvironment(ctx context.Context, cl *client.Client, name string) (string, error) {
	err := cl.Do(ctx, http.MethodPost, "/api/"+client.DefaultSpace+"/environments", map[string]any{"Name": name}, nil)
	if e, ok := err.(*client.Error); err != nil && !(ok && e.Status == http.StatusConflict) {
		return "", fmt.Errorf("creating the environment %s: %w", name, err)
	}
	envs, err := cl.Environments(ctx)
	if err != nil {
		return "", err
	}
	for _, e := range envs {
		if strings.EqualFold(e.Name, name) {
			return e.Id, nil
		}
	}
	return "", fmt.Errorf("the environment %s was created but is not listed", name)
}
