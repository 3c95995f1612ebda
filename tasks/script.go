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

// runAdHocScript runs the script on this node in a fresh working folder,
// with its own process group so that cancelling kills every process it
// started (package script). Standard output lines are logged as Info,
// standard error lines as Error, up to the output bound of the node's
// limits; a non-zero exit code fails the task.
func runAdHocScript(ctx context.Context, x *Execution) error {
	var a adHocArgs
	if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
		return fmt.Errorf("the task's arguments cannot be read: %v", err)
	}
	if a.any() {
		return runScriptOnTargets(ctx, x, a)
	}
	dir, err := os.MkdirTemp("", "cuttle-task-")
	if err != nil {
		return fmt.Errorf("creating the script's working folder: %v", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(path, []byte(a.ScriptBody), 0o600); err != nil {
		return fmt.Errorf("writing the script: %v", err)
	}
	x.Log.Logf(tasklog.Info, "Running the script on node %s (attempt %d).", x.Node, x.Task.Epoch)
	bound := x.e.outputBound()
	var count cuttle.OutputCount
	code, err := script.Run(ctx, script.Spec{
		Shell: scriptSyntaxes[a.Syntax],
		Path:  path,
		Dir:   dir,
		// A clean environment: the node's settings and secrets
		// (CUTTLE_MASTER_KEY, CUTTLE_DB, ...) must not reach a task's log.
		Env: append(script.CleanEnv(),
			"CUTTLE_TASK_ID="+cuttle.FormatID(cuttle.TaskIDPrefix, x.Task.ID),
			"CUTTLE_SERVER_NODE="+x.Node,
		),
	}, func(lines []script.Line) {
		log := make([]tasklog.Line, 0, len(lines))
		for _, l := range lines {
			if !count.Admit(bound, len(l.Text)) {
				continue
			}
			category := tasklog.Info
			if l.Stream == script.Stderr {
				category = tasklog.Error
			}
			log = append(log, tasklog.Line{Time: l.Time, Category: category, Text: l.Text})
		}
		// A fenced-out writer refuses; the output is dropped while the
		// process is being stopped.
		if len(log) > 0 {
			x.Log.Write(log...)
		}
	})
	if note := count.Note(bound); note != "" {
		x.Log.Logf(tasklog.Warning, "%s", note)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("The script exited with code %d.", code)
	}
	return nil
}
