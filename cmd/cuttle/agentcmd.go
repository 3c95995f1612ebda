package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agent"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/client"
)

// homeFlag adds --home to fs (environment variable CUTTLE_AGENT_HOME;
// default ~/.cuttle/agent).
func homeFlag(fs *flag.FlagSet) *string {
	home, _ := agent.DefaultHome()
	return fs.String("home", home, "the agent's home folder: configuration, certificate, journal and work folder")
}

// stringList is a flag that may be given many times; each value may also
// list several, comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func runAgent(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle agent configure|register|poll-server|run|show-thumbprint")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "configure":
		return agentConfigure(args, stdout, stderr)
	case "register":
		return agentRegister(args, stdout, stderr)
	case "poll-server":
		return agentPollServer(args, stdout, stderr)
	case "run":
		return agentRun(args, stderr)
	case "show-thumbprint":
		fs := newFlagSet("agent show-thumbprint", "cuttle agent show-thumbprint [--home DIR]", stderr)
		home := homeFlag(fs)
		if err := parseNoArgs(fs, args); err != nil {
			return err
		}
		cfg, err := agent.Load(*home)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, cfg.Identity.Thumbprint)
		return nil
	default:
		return usageErr("unknown agent command %q: use configure, register, poll-server, run or show-thumbprint", sub)
	}
}

// parseNoArgs parses flags and refuses positional arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func agentConfigure(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent configure", "cuttle agent configure [--home DIR] [--listen ADDR | --polling] [--name NAME]", stderr)
	home := homeFlag(fs)
	listen := fs.String("listen", "", "listen for nodes at this address, such as "+agent.DefaultListenAddress+" (the mode of a new home)")
	polling := fs.Bool("polling", false, "poll the servers instead of listening")
	name := fs.String("name", "", "the agent's name (default: the host name; an existing home keeps its own)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	opts := agent.ConfigureOptions{Name: *name, ListenAddress: *listen}
	switch {
	case *polling && *listen != "":
		return usageErr("--listen and --polling exclude each other")
	case *polling:
		opts.Mode = agent.Polling
	case *listen != "":
		opts.Mode = agent.Listening
	}
	cfg, err := agent.Configure(*home, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Home\t%s\nName\t%s\nMode\t%s\n", cfg.Home, cfg.Name, cfg.Mode)
	if cfg.Mode == agent.Listening {
		fmt.Fprintf(stdout, "Listen\t%s\n", cfg.ListenAddress)
	}
	fmt.Fprintf(stdout, "Subscription\t%s\nThumbprint\t%s\nTrusted servers\t%d\n", cfg.SubscriptionId, cfg.Identity.Thumbprint, len(cfg.TrustedServers))
	return nil
}

// serverThumbprintFlag adds --server-thumbprint to fs (environment
// variable CUTTLE_SERVER_THUMBPRINT; default none).
func serverThumbprintFlag(fs *flag.FlagSet) *string {
	return fs.String("server-thumbprint", "", "thumbprint of the cluster's certificate, as `cuttle cluster show` or a node's start log gives it: "+
		"the command refuses a cluster that answers another one (default: trust the API's answer, with a warning)")
}

// clusterThumbprint returns the thumbprint of the certificate the cluster's
// nodes present to agents, as the API answers it. Given want (from
// --server-thumbprint, learnt out of band), it fails unless the answer is
// that thumbprint, before anything is changed; without it, it warns on
// stderr that the answer was taken unverified.
func clusterThumbprint(c *clientCommand, want string) (string, error) {
	if want != "" {
		var err error
		if want, err = certs.ParseThumbprint(want); err != nil {
			return "", usageErr("--server-thumbprint: %v", err)
		}
	}
	ctx, cancel := commandContext()
	defer cancel()
	cert, err := c.client().ClusterCertificate(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the cluster's certificate: %w", err)
	}
	thumbprint, err := certs.ParseThumbprint(cert.Thumbprint)
	if err != nil {
		return "", fmt.Errorf("the cluster's certificate: %w", err)
	}
	switch {
	case want == "":
		how := "over HTTPS, so only as far as the API's certificate is trusted"
		if !strings.HasPrefix(strings.ToLower(c.server), "https://") {
			how = "over plain HTTP, where anyone on the way could have replaced it"
		}
		fmt.Fprintf(c.stderr, "warning: trusting the cluster certificate thumbprint %s as the API at %s answered it, unverified (%s); "+
			"give --server-thumbprint (from `cuttle cluster show` or cluster_thumbprint= in a node's start log) to check it\n", thumbprint, c.server, how)
	case thumbprint != want:
		return "", fmt.Errorf("the API at %s answers the cluster certificate thumbprint %s, but --server-thumbprint is %s: nothing was changed. "+
			"Check the thumbprint (`cuttle cluster show` over a connection you trust, or cluster_thumbprint= in a node's start log) and --server; "+
			"if both are right, something between this machine and the API is answering in the cluster's place", c.server, thumbprint, want)
	}
	return thumbprint, nil
}

// pollAddress returns https://HOST:PORT for --address, or for the host of
// the API's URL at the polling port.
func pollAddress(address, server string) (string, error) {
	if address == "" {
		u, err := url.Parse(server)
		if err != nil || u.Hostname() == "" {
			return "", usageErr("--server %q is not a URL", server)
		}
		address = net.JoinHostPort(u.Hostname(), strconv.Itoa(cuttle.DefaultPollingPort))
	}
	return agent.ServerAddress(address)
}

func agentRegister(args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("agent register", "cuttle agent register --server URL --api-key KEY --server-thumbprint T --environment NAME... --role NAME... [--name NAME] [--address HOST:PORT] [--public-host H] [--home DIR]", stdout, stderr)
	home := homeFlag(c.fs)
	pin := serverThumbprintFlag(c.fs)
	var environments, roles stringList
	c.fs.Var(&environments, "environment", "an environment of the machine (repeat the flag for more)")
	c.fs.Var(&roles, "role", "a role of the machine, such as web-server (repeat the flag for more)")
	name := c.fs.String("name", "", "the machine's name (default: the agent's)")
	address := c.fs.String("address", "", "a polling agent polls this HOST:PORT (default: the host of --server, port "+strconv.Itoa(cuttle.DefaultPollingPort)+")")
	publicHost := c.fs.String("public-host", "", "nodes reach a listening agent at this host (default: the host name)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if len(environments) == 0 || len(roles) == 0 {
		c.fs.Usage()
		return usageErr("a machine needs at least one --environment and one --role")
	}
	cfg, err := agent.Load(*home)
	if err != nil {
		return err
	}
	thumbprint, err := clusterThumbprint(c, *pin)
	if err != nil {
		return err
	}
	ctx, cancel := commandContext()
	defer cancel()
	cl := c.client()
	envIDs, err := environmentIDs(ctx, cl, environments)
	if err != nil {
		return err
	}
	trusted := agent.TrustedServer{Thumbprint: thumbprint}
	endpoint := client.Endpoint{Thumbprint: cfg.Identity.Thumbprint}
	switch cfg.Mode {
	case agent.Polling:
		if trusted.Address, err = pollAddress(*address, c.server); err != nil {
			return err
		}
		trusted.CommunicationStyle, trusted.SubscriptionId = cuttle.Polling, cfg.SubscriptionId
		endpoint.CommunicationStyle, endpoint.Uri = string(cuttle.Polling), cfg.SubscriptionId
	case agent.Listening:
		host := *publicHost
		if host == "" {
			if host, err = os.Hostname(); err != nil {
				return fmt.Errorf("the host name cannot be read; give --public-host: %w", err)
			}
		}
		_, port, err := net.SplitHostPort(cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("the agent's listen address %q: %w", cfg.ListenAddress, err)
		}
		trusted.CommunicationStyle = cuttle.Listening
		endpoint.CommunicationStyle, endpoint.Uri = string(cuttle.Listening), "https://"+net.JoinHostPort(host, port)+"/"
	}
	// Check the change before the machine exists, so that a refusal leaves
	// nothing behind.
	if _, err := cfg.Trust(trusted); err != nil {
		return err
	}
	machineName := *name
	if machineName == "" {
		machineName = cfg.Name
	}
	m, err := cl.CreateMachine(ctx, client.NewMachine{Name: machineName, Roles: roles, EnvironmentIds: envIDs, Endpoint: endpoint})
	if err != nil {
		return fmt.Errorf("registering the machine %s: %w", machineName, err)
	}
	if err := cfg.Save(); err != nil {
		return fmt.Errorf("the machine %s is registered, but the agent's configuration cannot be saved, so it does not trust the cluster yet: %w", m.Id, err)
	}
	return c.print(m, func(w io.Writer) {
		fmt.Fprintf(w, "Machine\t%s (%s)\n", m.Id, m.Name)
		fmt.Fprintf(w, "Endpoint\t%s %s\n", endpoint.CommunicationStyle, endpoint.Uri)
		fmt.Fprintf(w, "Trusted thumbprint\t%s\n", thumbprint)
		if trusted.Address != "" {
			fmt.Fprintf(w, "Polls\t%s\n", trusted.Address)
		}
	})
}

// environmentIDs maps environment names (case-insensitive) to ids; an
// unknown name is an error that lists the known ones.
func environmentIDs(ctx context.Context, cl *client.Client, names []string) ([]string, error) {
	envs, err := cl.Environments(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the environments: %w", err)
	}
	var ids []string
	for _, name := range names {
		found := ""
		for _, e := range envs {
			if strings.EqualFold(e.Name, name) {
				found = e.Id
				break
			}
		}
		if found == "" {
			known := make([]string, len(envs))
			for i, e := range envs {
				known[i] = e.Name
			}
			return nil, fmt.Errorf("there is no environment named %q; the environments are: %s", name, strings.Join(known, ", "))
		}
		ids = append(ids, found)
	}
	return ids, nil
}

func agentPollServer(args []string, stdout, stderr io.Writer) error {
	c := newClientCommand("agent poll-server", "cuttle agent poll-server --server URL --api-key KEY --server-thumbprint T --address HOST:PORT [--home DIR]", stdout, stderr)
	home := homeFlag(c.fs)
	pin := serverThumbprintFlag(c.fs)
	address := c.fs.String("address", "", "the HOST:PORT to poll: a node, or a TCP load balancer in front of nodes")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *address == "" {
		c.fs.Usage()
		return usageErr("--address is required")
	}
	cfg, err := agent.Load(*home)
	if err != nil {
		return err
	}
	if cfg.Mode != agent.Polling {
		return fmt.Errorf("the agent at %s is a listening agent (nodes connect to it at %s), so it polls no server; run `cuttle agent configure --polling` first", cfg.Home, cfg.ListenAddress)
	}
	thumbprint, err := clusterThumbprint(c, *pin)
	if err != nil {
		return err
	}
	ts := agent.TrustedServer{Thumbprint: thumbprint, CommunicationStyle: cuttle.Polling, Address: *address}
	added, err := cfg.Trust(ts)
	if err != nil {
		return err
	}
	if !added {
		fmt.Fprintf(stdout, "the agent polls %s already; nothing changed\n", *address)
		return nil
	}
	ts = cfg.TrustedServers[len(cfg.TrustedServers)-1]
	if err := cfg.Save(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "the agent now polls %s (thumbprint %s) as %s; restart it to start\n", ts.Address, ts.Thumbprint, ts.SubscriptionId)
	return nil
}

func agentRun(args []string, stderr io.Writer) error {
	fs := newFlagSet("agent run", "cuttle agent run [--home DIR] [--log-level info] [--shutdown-grace 30s]", stderr)
	home := homeFlag(fs)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	grace := fs.Duration("shutdown-grace", agent.DefaultShutdownGrace, "on SIGTERM, how long running commands may finish before they are stopped")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
		return usageErr("--log-level %q: use debug, info, warn or error", *level)
	}
	if *grace <= 0 {
		return usageErr("--shutdown-grace must be positive")
	}
	cfg, err := agent.Load(*home)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel})))
	if err != nil {
		return err
	}
	a.ShutdownGrace = *grace
	ctx, cancel := commandContext()
	defer cancel()
	return a.Run(ctx)
}
