package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
)

func runMachine(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle machine list|check")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		c := newClientCommand("machine list", "cuttle machine list [flags]", stdout, stderr)
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		cl := c.client()
		machines, err := cl.Machines(ctx)
		if err != nil {
			return err
		}
		envs, err := cl.Environments(ctx)
		if err != nil {
			return err
		}
		return c.print(machines, func(w io.Writer) { machineTable(w, machines, envs) })
	case "check":
		c := newClientCommand("machine check", "cuttle machine check NAME [--timeout 30s] [flags]", stdout, stderr)
		timeout := c.fs.Duration("timeout", 0, "how long to wait for the agent before it is Unavailable (0: the cluster's default, 30s)")
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		cl := c.client()
		m, err := cl.FindMachine(ctx, pos[0])
		if err != nil {
			return err
		}
		healthArgs := map[string]any{"MachineIds": []string{m.Id}}
		if *timeout > 0 {
			healthArgs["TimeoutSeconds"] = int((*timeout + time.Second - 1) / time.Second)
		}
		t, err := cl.CreateTask(ctx, "Health", healthArgs)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "queued %s to check %s; waiting for it to finish\n", t.Id, m.Name)
		if t, err = c.follow(ctx, t, stderr); err != nil {
			return err
		}
		if m, err = cl.Machine(ctx, m.Id); err != nil {
			return err
		}
		if err := c.print(m, func(w io.Writer) {
			fmt.Fprintf(w, "Machine\t%s (%s)\n", m.Name, m.Id)
			fmt.Fprintf(w, "Health\t%s\n", m.HealthStatus)
			fmt.Fprintf(w, "Status\t%s\n", dash(m.StatusSummary))
			fmt.Fprintf(w, "Task\t%s %s\n", t.Id, t.State)
		}); err != nil {
			return err
		}
		if status := cuttle.HealthStatus(m.HealthStatus); status != cuttle.Healthy && status != cuttle.HasWarnings {
			return fmt.Errorf("machine %s is %s: %s", m.Name, m.HealthStatus, m.StatusSummary)
		}
		return nil
	default:
		return usageErr("unknown machine command %q: use list or check", sub)
	}
}

// communicationStyles names the endpoints' styles for people.
var communicationStyles = map[string]string{
	string(cuttle.Polling):   "polling",
	string(cuttle.Listening): "listening",
}

func machineTable(w io.Writer, machines []client.Machine, envs []client.Environment) {
	envNames := map[string]string{}
	for _, e := range envs {
		envNames[e.Id] = e.Name
	}
	fmt.Fprintln(w, "NAME\tID\tSTYLE\tURI\tHEALTH\tSTATUS\tENVIRONMENTS\tROLES")
	for _, m := range machines {
		style := communicationStyles[m.Endpoint.CommunicationStyle]
		if style == "" {
			style = m.Endpoint.CommunicationStyle
		}
		var environments []string
		for _, id := range m.EnvironmentIds {
			if name, ok := envNames[id]; ok {
				environments = append(environments, name)
			} else {
				environments = append(environments, id)
			}
		}
		health := m.HealthStatus
		if m.IsDisabled {
			health += " (disabled)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Id, dash(style), dash(m.Endpoint.Uri), dash(health), dash(m.StatusSummary),
			dash(strings.Join(environments, ", ")), dash(strings.Join(m.Roles, ", ")))
	}
}
