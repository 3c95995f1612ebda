package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cuttledeploy/cuttle/client"
)

// errUsage marks an error in how a command was called (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// clientCommand holds what every client command takes.
type clientCommand struct {
	fs             *flag.FlagSet
	server         string
	apiKey         string
	caCert         string
	output         string
	stdout, stderr io.Writer
	http           *http.Client // trusting --ca-cert; nil: the client's default
}

func newClientCommand(name, synopsis string, stdout, stderr io.Writer) *clientCommand {
	c := &clientCommand{fs: newFlagSet(name, synopsis, stderr), stdout: stdout, stderr: stderr}
	c.fs.StringVar(&c.server, "server", "http://localhost:8080", "URL of any node or of the load balancer (https://... in production)")
	c.fs.StringVar(&c.apiKey, "api-key", "", "API key (API-...)")
	c.fs.StringVar(&c.caCert, "ca-cert", "", "PEM file of the certificate authorities to trust for an https --server, instead of the system's (for a certificate a private authority signed)")
	c.fs.StringVar(&c.output, "output", "table", "table (for people) or json (for scripts)")
	return c
}

// parse parses flags placed anywhere among the arguments and returns the
// positional arguments; it refuses any count other than want (-1: any count).
func (c *clientCommand) parse(args []string, want int) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(c.fs, args); err != nil {
			return nil, err
		}
		if c.fs.NArg() == 0 {
			break
		}
		positional = append(positional, c.fs.Arg(0))
		args = c.fs.Args()[1:]
	}
	if want >= 0 && len(positional) != want {
		c.fs.Usage()
		return nil, usageErr("expected %d argument(s), got %d", want, len(positional))
	}
	if c.output != "table" && c.output != "json" {
		return nil, usageErr("--output must be table or json")
	}
	if c.caCert != "" {
		var err error
		if c.http, err = client.TrustingCAs(c.caCert); err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
	}
	return positional, nil
}

func (c *clientCommand) client() *client.Client {
	return &client.Client{BaseURL: c.server, APIKey: c.apiKey, HTTP: c.http}
}

// print writes v as JSON, or calls table with a tab writer.
func (c *clientCommand) print(v any, table func(w io.Writer)) error {
	if c.output == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func commandContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func runNode(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle node list|drain|undrain|set-cap|remove")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		c := newClientCommand("node list", "cuttle node list [flags]", stdout, stderr)
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		nodes, err := c.client().Nodes(ctx)
		if err != nil {
			return err
		}
		return c.print(nodes, func(w io.Writer) { nodeTable(w, nodes) })
	case "drain", "undrain":
		c := newClientCommand("node "+sub, "cuttle node "+sub+" NAME [flags]", stdout, stderr)
		wait := false
		timeout := time.Duration(0)
		if sub == "drain" {
			c.fs.BoolVar(&wait, "wait", false, "wait until the node runs no task")
			c.fs.DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (0: never)")
		}
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		cl := c.client()
		n, err := cl.FindNode(ctx, pos[0])
		if err != nil {
			return err
		}
		drain := sub == "drain"
		if n, err = cl.UpdateNode(ctx, n.Id, nil, &drain); err != nil {
			return err
		}
		if wait {
			if n, err = waitIdle(ctx, cl, n, timeout, stderr); err != nil {
				return err
			}
		}
		return c.print(n, func(w io.Writer) { nodeTable(w, []client.Node{n}) })
	case "set-cap":
		c := newClientCommand("node set-cap", "cuttle node set-cap NAME N [flags]", stdout, stderr)
		pos, err := c.parse(args, 2)
		if err != nil {
			return err
		}
		taskCap, err := strconv.Atoi(pos[1])
		if err != nil {
			return usageErr("the task cap %q is not a whole number", pos[1])
		}
		cl := c.client()
		n, err := cl.FindNode(ctx, pos[0])
		if err != nil {
			return err
		}
		if n, err = cl.UpdateNode(ctx, n.Id, &taskCap, nil); err != nil {
			return err
		}
		return c.print(n, func(w io.Writer) { nodeTable(w, []client.Node{n}) })
	case "remove":
		c := newClientCommand("node remove", "cuttle node remove NAME [flags]", stdout, stderr)
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		cl := c.client()
		n, err := cl.FindNode(ctx, pos[0])
		if err != nil {
			return err
		}
		if err := cl.Do(ctx, "DELETE", "/api/octopusservernodes/"+n.Id, nil, nil); err != nil {
			return err
		}
		return c.print(map[string]string{"Removed": n.Id, "Name": n.Name}, func(w io.Writer) {
			fmt.Fprintf(w, "removed node %s (%s)\n", n.Name, n.Id)
		})
	default:
		return usageErr("unknown node command %q: use list, drain, undrain, set-cap or remove", sub)
	}
}

// waitIdle polls the node until it runs no task, printing progress.
func waitIdle(ctx context.Context, cl *client.Client, n client.Node, timeout time.Duration, progress io.Writer) (client.Node, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := -1
	for {
		if n.RunningTaskCount == 0 {
			return n, nil
		}
		if n.RunningTaskCount != last {
			fmt.Fprintf(progress, "waiting for %s: %d task(s) running\n", n.Name, n.RunningTaskCount)
			last = n.RunningTaskCount
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("node %s still runs %d task(s): %w", n.Name, n.RunningTaskCount, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		var err error
		if n, err = cl.FindNode(ctx, n.Id); err != nil {
			return n, err
		}
	}
}

func nodeTable(w io.Writer, nodes []client.Node) {
	fmt.Fprintln(w, "NAME\tID\tRANK\tSTATUS\tLAST SEEN\tTASKS\tTASK CAP\tDRAIN\tVERSION")
	for _, n := range nodes {
		status := "online"
		if n.IsOffline {
			status = "offline"
		}
		drain := "off"
		if n.IsInMaintenanceMode {
			drain = "on"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", n.Name, n.Id, n.Rank, status, ago(n.LastSeen),
			n.RunningTaskCount, n.MaxConcurrentTasks, drain, n.Version)
	}
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format(time.DateTime) + " (" + time.Since(*t).Round(time.Second).String() + " ago)"
}

func runCluster(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle cluster show|set")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	var cl client.Cluster
	var c *clientCommand
	switch sub {
	case "show":
		c = newClientCommand("cluster show", "cuttle cluster show [flags]", stdout, stderr)
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		var err error
		if cl, err = c.client().Cluster(ctx); err != nil {
			return err
		}
	case "set":
		c = newClientCommand("cluster set", "cuttle cluster set [--heartbeat D] [--stale-timeout D] [--...-interval D] [flags]", stdout, stderr)
		settings := map[string]*time.Duration{}
		for _, f := range []struct{ flag, field, usage string }{
			{"heartbeat", "HeartbeatFrequencySeconds", "how often nodes check in, such as 1s"},
			{"stale-timeout", "StaleTimeoutSeconds", "how long a silent node stays online, such as 10s"},
			{"retention-interval", "RetentionIntervalSeconds", "how often the leader applies retention policies"},
			{"package-cleanup-interval", "PackageCacheCleanupIntervalSeconds", "how often the leader cleans the package cache"},
			{"health-check-interval", "HealthCheckIntervalSeconds", "how often the leader checks the targets due under their machine policies"},
			{"reindex-interval", "PackageReindexIntervalSeconds", "how often the leader re-indexes the package repository"},
		} {
			settings[f.field] = new(time.Duration)
			c.fs.DurationVar(settings[f.field], f.flag, 0, f.usage)
		}
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		values := map[string]time.Duration{}
		for field, d := range settings {
			if *d < 0 {
				return usageErr("durations must be positive")
			}
			if *d > 0 {
				values[field] = *d
			}
		}
		if len(values) == 0 {
			return usageErr("give at least one setting, such as --heartbeat 1s")
		}
		var err error
		if cl, err = c.client().SetClusterSettings(ctx, values); err != nil {
			return err
		}
	default:
		return usageErr("unknown cluster command %q: use show or set", sub)
	}
	return c.print(cl, func(w io.Writer) { clusterTable(w, cl) })
}

func clusterTable(w io.Writer, cl client.Cluster) {
	leader := cl.LeaderNodeId
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "Installation\t%s\n", cl.InstallationId)
	fmt.Fprintf(w, "Certificate thumbprint\t%s\n", cl.CertificateThumbprint)
	fmt.Fprintf(w, "Heartbeat\t%v\n", secondsDuration(cl.HeartbeatFrequencySeconds))
	fmt.Fprintf(w, "Stale timeout\t%v\n", secondsDuration(cl.StaleTimeoutSeconds))
	fmt.Fprintf(w, "Leader lease\t%v\n", secondsDuration(cl.LeaseDurationSeconds))
	fmt.Fprintf(w, "Leader\t%s (term %d)\n", leader, cl.Term)
	for _, sc := range cl.Schedules {
		next := "due now"
		if sc.NextRun != nil {
			next = sc.NextRun.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "Job %s\tlast %s, next %s\n", sc.Job, when(sc.LastRun), next)
	}
	fmt.Fprintf(w, "Servers\t%d (%d online)\n\n", cl.NodeCount, cl.OnlineNodeCount)
	fmt.Fprintln(w, "SERVER\tOS\tADDRESSES\tCOMPONENTS\tHEARTBEAT\tVERSION\tMASTER KEY")
	for _, s := range cl.Servers {
		var comps []string
		for _, c := range s.Components {
			comps = append(comps, c.Name+": "+c.Status)
		}
		version := s.Version + " (in sync)"
		if !s.VersionInSync {
			version = s.Version + " (differs from " + cl.ClusterVersion + ")"
		}
		key := "in sync"
		if !s.MasterKeyInSync {
			key = "DIFFERS"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s, %s\t%s\t%s\n", s.Name, s.OperatingSystem, strings.Join(s.IPAddresses, ", "),
			strings.Join(comps, ", "), s.HeartbeatStatus, ago(s.LastSeen), version, key)
	}
}

func secondsDuration(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}
