// Command cuttle is the cuttle deployment server, its agent, and a client for
// its API. Run `cuttle help` for the subcommands.
package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cuttledeploy/cuttle"
)

const usage = `cuttle: deployment automation server

Usage:
  cuttle server [flags]              run a node (embedded SQLite by default; --db postgres://... joins a cluster)
  cuttle node list                   list the cluster's nodes
  cuttle node drain NAME [--wait]    stop a node claiming tasks (--wait: until it runs none)
  cuttle node undrain NAME           let a drained node claim tasks again
  cuttle node set-cap NAME N         set a node's task cap (0: API and UI only)
  cuttle node remove NAME            remove an offline node
  cuttle cluster show                show the cluster's settings, certificate thumbprint and servers
  cuttle cluster set [--heartbeat D] [--stale-timeout D] [--retention-interval D] ...
  cuttle task list [--state S] [--node NAME]
  cuttle task show ID                show one task
  cuttle task log ID [--follow]      print a task's log (--follow: until it completes)
  cuttle task cancel ID              cancel a task, on whichever node runs it
  cuttle task run-script --file F [--machine NAME | --role R --environment E] [--wait]
                                     run a Bash script on a node, or on agents (--wait: print its log, fail unless it succeeds)
  cuttle agent configure [--listen ADDR | --polling] [--name NAME]
                                     create or change an agent's home (certificate, subscription id, agent.json)
  cuttle agent register --server URL --api-key KEY --server-thumbprint T --environment NAME --role NAME
                                     register this agent as a machine and trust the cluster's certificate
  cuttle agent poll-server --server URL --api-key KEY --server-thumbprint T --address HOST:PORT
                                     have a polling agent poll one more address
  cuttle agent run                   run the agent until SIGTERM or SIGINT
  cuttle agent show-thumbprint       print the agent's certificate's thumbprint
  cuttle machine list                list the deployment targets
  cuttle machine check NAME          run a health check of a machine and print its health
  cuttle project list|show|delete NAME|create NAME [--group G] [--lifecycle L] [--description D]
  cuttle project-group list|show|delete NAME|create NAME [--description D]
  cuttle lifecycle list|show|delete NAME|create NAME [--description D]
                                     the default space's projects, project groups and lifecycles
  cuttle user list|show|delete|deactivate|activate USERNAME|create USERNAME [--display-name N] [--email E] [--service]
  cuttle user set-password USERNAME  < password   (the first line of standard input; ends the user's sessions)
  cuttle team list|show|delete NAME|create NAME [--member USER]...|add-member|remove-member TEAM USER
  cuttle apikey list|show|delete ID|create --purpose P [--user USER]
                                     a user's API keys (--user: default me); create prints the key, once
  cuttle process show|edit --project P [--file F]
                                     print a project's deployment process; replace it from JSON (as show --output json prints it)
  cuttle variable list|set|delete --project P [NAME [VALUE]] [--sensitive] [--environment ID]...
                                     a project's variables (--sensitive: the value is read from standard input)
  cuttle release create --project P [--version V] [--channel C] [--notes N]
  cuttle deploy --project P --release V --environment E [--machine M]... [--skip STEP]... [--guided-failure] [--wait [--progress auto|live|plain]]
                                     deploy a release (--wait: follow it, live on a terminal, and say how to answer when it
                                     waits for a person; exit 0 if it succeeded, 1 failed, 3 canceled, 4 timed out)
  cuttle interruption list [--deployment D] [--all] | take ID | submit ID (--result Proceed|Abort | --guidance G) [--notes N]
  cuttle package push FILE... [--overwrite-mode FailIfExists|IgnoreIfExists|OverwriteExisting]
                                     stream package files to the built-in feed (a progress bar on a terminal)
  cuttle package list [--filter X] | versions ID [--take N] | delete ID VERSION
  cuttle artifact list [--task ServerTasks-N] | get ID [--output-file PATH|-] [--force]
                                     the files tasks kept; get saves one (default: its file name, here)
  cuttle events [--user U] [--document ID] [--from TIME] [--to TIME]
                                     the audit log: every change through the API, who, when, through which node
  cuttle version

Client commands take --server (default http://localhost:8080), --api-key,
--ca-cert (authorities to trust for an https server, instead of the system's)
and --output table|json, or CUTTLE_SERVER, CUTTLE_API_KEY, CUTTLE_CA_CERT and
CUTTLE_OUTPUT. They name projects, groups, lifecycles, users and teams by name
(ignoring case) or id.
Run a subcommand with --help for its flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "server":
		err = runServer(args[1:], stdout, stderr)
	case "node":
		err = runNode(args[1:], stdout, stderr)
	case "cluster":
		err = runCluster(args[1:], stdout, stderr)
	case "task":
		err = runTask(args[1:], stdout, stderr)
	case "agent":
		err = runAgent(args[1:], stdout, stderr)
	case "machine":
		err = runMachine(args[1:], stdout, stderr)
	case "project":
		err = projectCommands.run(args[1:], stdout, stderr)
	case "project-group":
		err = projectGroupCommands.run(args[1:], stdout, stderr)
	case "lifecycle":
		err = lifecycleCommands.run(args[1:], stdout, stderr)
	case "user":
		err = userCommands.run(args[1:], stdout, stderr)
	case "team":
		err = teamCommands.run(args[1:], stdout, stderr)
	case "apikey":
		err = apiKeyCommands.run(args[1:], stdout, stderr)
	case "release":
		err = runRelease(args[1:], stdout, stderr)
	case "deploy":
		err = runDeploy(args[1:], stdout, stderr)
	case "interruption":
		err = runInterruption(args[1:], stdout, stderr)
	case "variable":
		err = runVariable(args[1:], stdout, stderr)
	case "process":
		err = runProcess(args[1:], stdout, stderr)
	case "package":
		err = runPackage(args[1:], stdout, stderr)
	case "artifact":
		err = runArtifact(args[1:], stdout, stderr)
	case "events":
		err = runEvents(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, cuttle.Version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "cuttle: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "cuttle: %v\n", err)
		return 2
	case errors.As(err, &exit):
		fmt.Fprintf(stderr, "cuttle: %v\n", err)
		return exit.code
	default:
		fmt.Fprintf(stderr, "cuttle: %v\n", err)
		var unknownCA x509.UnknownAuthorityError
		if errors.As(err, &unknownCA) {
			fmt.Fprintln(stderr, "cuttle: if a private authority signed the API's certificate, name its certificate with --ca-cert (CUTTLE_CA_CERT)")
		}
		return 1
	}
}

// exitError is an error that ends the command with its own exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
