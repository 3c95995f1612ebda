package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/script"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// adHocArgs are the arguments of an AdHocScript task: a script, and the
// deployment targets to run it on (none: on the executing node).
type adHocArgs struct {
	ScriptBody string
	Syntax     string
	targetArgs
}

// scriptSyntaxes maps each supported Syntax to its interpreter.
var scriptSyntaxes = map[string]string{"Bash": "bash"}

func adHocScript() Kind {
	return Kind{
		Name: "AdHocScript",
		Prepare: func(raw json.RawMessage) (Plan, error) {
			var a adHocArgs
			if err := decodeArguments("AdHocScript", raw, &a); err != nil {
				return Plan{}, err
			}
			if strings.TrimSpace(a.ScriptBody) == "" {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "AdHocScript needs a ScriptBody: the script to run.")
			}
			if _, ok := scriptSyntaxes[a.Syntax]; !ok {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "AdHocScript's Syntax %q is not supported; use Bash.", a.Syntax)
			}
			if err := a.check("AdHocScript"); err != nil {
				return Plan{}, err
			}
			if a.any() {
				// The script runs on agents, which keep running it while
				// another node takes the task over.
				return Plan{Description: "Run a " + a.Syntax + " script on deployment targets", Resumable: true}, nil
			}
			return Plan{Description: "Run a " + a.Syntax + " script on the server"}, nil
		},
		Run: runAdHocScript,
	}
}

// runAdHocScript runs the script on its targets' agents, or on this node
// (RunScript); a non-zero exit code fails the task.
func runAdHocScript(ctx context.Context, x *Execution) error {
	var a adHocArgs
	if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
		return fmt.Errorf("the task's arguments cannot be read: %v", err)
	}
	if a.any() {
		return runScriptOnTargets(ctx, x, a)
	}
	x.Log.Logf(tasklog.Info, "Running the script on node %s (attempt %d).", x.Node, x.Task.Epoch)
	code, err := x.RunScript(ctx, NodeScript{Body: a.ScriptBody, Syntax: a.Syntax})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("The script exited with code %d.", code)
	}
	return nil
}

// NodeScript is a script to run on the node that runs a task.
type NodeScript struct {
	Body   string
	Syntax string // one of scriptSyntaxes: Bash
	// Env adds KEY=VALUE variables to the script's clean environment.
	Env []string
	// Block is the log block of its lines ("" for the task's own).
	Block string
	// Line, if set, sees each line before it is logged: it may change it,
	// or return false to leave it out.
	Line func(l *tasklog.Line) bool
}

// RunScript runs a script on this node in a fresh working folder, with its
// own process group so that cancelling kills every process it started
// (package script), and returns its exit code. Its environment is clean:
// the node's settings and secrets (CUTTLE_MASTER_KEY, CUTTLE_DB, ...) never
// reach it, only script.CleanEnv, CUTTLE_TASK_ID, CUTTLE_SERVER_NODE and
// s.Env. Standard output lines are logged as Info, standard error lines as
// Error, up to the output bound of the node's limits; what is over is
// counted and said.
func (x *Execution) RunScript(ctx context.Context, s NodeScript) (int, error) {
	shell, ok := scriptSyntaxes[s.Syntax]
	if !ok {
		return -1, fmt.Errorf("scripts of syntax %q do not run on a node; use Bash", s.Syntax)
	}
	dir, err := os.MkdirTemp("", "cuttle-task-")
	if err != nil {
		return -1, fmt.Errorf("creating the script's working folder: %v", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(path, []byte(s.Body), 0o600); err != nil {
		return -1, fmt.Errorf("writing the script: %v", err)
	}
	bound := x.e.outputBound()
	var count cuttle.OutputCount
	env := append(script.CleanEnv(),
		"CUTTLE_TASK_ID="+cuttle.FormatID(cuttle.TaskIDPrefix, x.Task.ID),
		"CUTTLE_SERVER_NODE="+x.Node,
	)
	code, err := script.Run(ctx, script.Spec{Shell: shell, Path: path, Dir: dir, Env: append(env, s.Env...)}, func(lines []script.Line) {
		log := make([]tasklog.Line, 0, len(lines))
		for _, l := range lines {
			if !count.Admit(bound, len(l.Text)) {
				continue
			}
			category := tasklog.Info
			if l.Stream == script.Stderr {
				category = tasklog.Error
			}
			line := tasklog.Line{Time: l.Time, Category: category, Text: l.Text, Block: s.Block}
			if s.Line == nil || s.Line(&line) {
				log = append(log, line)
			}
		}
		// A fenced-out writer refuses; the output is dropped while the
		// process is being stopped.
		if len(log) > 0 {
			x.Log.Write(log...)
		}
	})
	if note := count.Note(bound); note != "" {
		x.Log.Write(tasklog.Line{Category: tasklog.Warning, Text: note, Block: s.Block})
	}
	return code, err
}
