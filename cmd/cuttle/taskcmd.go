package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle/client"
)

func runTask(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle task list|show|log|cancel|run-script")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		c := newClientCommand("task list", "cuttle task list [--state S,...] [--node NAME] [--take N] [flags]", stdout, stderr)
		var states, node string
		var take int
		c.fs.StringVar(&states, "state", "", "only tasks in these states (comma-separated: Queued, Executing, Cancelling, Success, Failed, Canceled, TimedOut)")
		c.fs.StringVar(&node, "node", "", "only tasks run by the node of this name")
		c.fs.IntVar(&take, "take", 30, "at most this many tasks, newest first")
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		var list []string
		if states != "" {
			list = strings.Split(states, ",")
		}
		tasks, total, err := c.client().Tasks(ctx, list, node, take)
		if err != nil {
			return err
		}
		return c.print(tasks, func(w io.Writer) {
			fmt.Fprintln(w, "ID\tNAME\tSTATE\tNODE\tQUEUED\tDURATION\tDESCRIPTION")
			for _, t := range tasks {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Id, t.Name, t.State, dash(t.ServerNode), when(t.QueueTime), dash(t.Duration), t.Description)
			}
			if total > len(tasks) {
				fmt.Fprintf(w, "(%d of %d; --take for more)\n", len(tasks), total)
			}
		})
	case "show":
		c := newClientCommand("task show", "cuttle task show ID [flags]", stdout, stderr)
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		t, err := c.client().Task(ctx, pos[0])
		if err != nil {
			return err
		}
		return c.print(t, func(w io.Writer) { taskTable(w, t) })
	case "log":
		c := newClientCommand("task log", "cuttle task log ID [--follow] [flags]", stdout, stderr)
		follow := false
		c.fs.BoolVar(&follow, "follow", false, "keep printing new lines until the task completes")
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		return c.client().TaskLog(ctx, pos[0], follow, stdout)
	case "cancel":
		c := newClientCommand("task cancel", "cuttle task cancel ID [flags]", stdout, stderr)
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		t, err := c.client().CancelTask(ctx, pos[0])
		if err != nil {
			return err
		}
		return c.print(t, func(w io.Writer) { taskTable(w, t) })
	case "run-script":
		c := newClientCommand("task run-script", "cuttle task run-script --file F [--machine NAME | --role R --environment E] [--wait] [flags]", stdout, stderr)
		var file, syntax string
		var machines, roles, environments stringList
		wait := false
		c.fs.Var(&machines, "machine", "run on this deployment target's agent (repeat for more); default: on a node")
		c.fs.Var(&roles, "role", "run on the targets with this role (repeat for more)")
		c.fs.Var(&environments, "environment", "run on the targets in this environment (repeat for more)")
		c.fs.StringVar(&file, "file", "", "the script to run (- for standard input)")
		c.fs.StringVar(&syntax, "syntax", "Bash", "the script's language")
		c.fs.BoolVar(&wait, "wait", false, "print the log as it runs and exit non-zero unless the task succeeds")
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		if file == "" {
			return usageErr("--file is required")
		}
		var body []byte
		var err error
		if file == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(file)
		}
		if err != nil {
			return err
		}
		cl := c.client()
		taskArgs := map[string]any{"ScriptBody": string(body), "Syntax": syntax}
		if len(machines) > 0 {
			var ids []string
			for _, name := range machines {
				m, err := cl.FindMachine(ctx, name)
				if err != nil {
					return err
				}
				ids = append(ids, m.Id)
			}
			taskArgs["MachineIds"] = ids
		}
		if len(roles) > 0 {
			taskArgs["TargetRoles"] = []string(roles)
		}
		if len(environments) > 0 {
			if taskArgs["EnvironmentIds"], err = environmentIDs(ctx, cl, environments); err != nil {
				return err
			}
		}
		t, err := cl.CreateTask(ctx, "AdHocScript", taskArgs)
		if err != nil {
			return err
		}
		if !wait {
			return c.print(t, func(w io.Writer) { taskTable(w, t) })
		}
		fmt.Fprintf(stderr, "queued %s; waiting for it to finish\n", t.Id)
		if t, err = c.follow(ctx, t, stderr); err != nil {
			return err
		}
		if err := c.print(t, func(w io.Writer) { taskTable(w, t) }); err != nil {
			return err
		}
		if t.State != "Success" {
			return fmt.Errorf("task %s ended %s: %s", t.Id, t.State, t.ErrorMessage)
		}
		return nil
	default:
		return usageErr("unknown task command %q: use list, show, log, cancel or run-script", sub)
	}
}

func taskTable(w io.Writer, t client.Task) {
	fmt.Fprintf(w, "Task\t%s\n", t.Id)
	fmt.Fprintf(w, "Name\t%s\n", t.Name)
	fmt.Fprintf(w, "Description\t%s\n", t.Description)
	fmt.Fprintf(w, "State\t%s\n", t.State)
	fmt.Fprintf(w, "Node\t%s\n", dash(t.ServerNode))
	fmt.Fprintf(w, "Queued\t%s\n", when(t.QueueTime))
	fmt.Fprintf(w, "Started\t%s\n", when(t.StartTime))
	fmt.Fprintf(w, "Completed\t%s\n", when(t.CompletedTime))
	fmt.Fprintf(w, "Duration\t%s\n", dash(t.Duration))
	if t.ErrorMessage != "" {
		fmt.Fprintf(w, "Error\t%s\n", t.ErrorMessage)
	}
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// follow prints the task's log as it runs, to standard output (standard
// error with --output json, which keeps standard output for the JSON), and
// returns the task once it has completed.
func (c *clientCommand) follow(ctx context.Context, t client.Task, stderr io.Writer) (client.Task, error) {
	logOut := c.stdout
	if c.output == "json" {
		logOut = stderr
	}
	cl := c.client()
	if err := cl.TaskLog(ctx, t.Id, true, logOut); err != nil {
		return t, err
	}
	return cl.Task(ctx, t.Id)
}
