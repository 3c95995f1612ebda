package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// adHocArgs are the arguments of an AdHocScript task.
type adHocArgs struct {
	ScriptBody     string
	Syntax         string
	MachineIds     []string
	TargetRoles    []string
	EnvironmentIds []string
}

// scriptSyntaxes maps each supported Syntax to its interpreter.
var scriptSyntaxes = map[string]string{"Bash": "bash"}

// killGrace is how long a cancelled script gets between SIGTERM to its
// process group and SIGKILL.
const killGrace = 2 * time.Second

// supervisor is the shell that runs a script as its child, in the process
// group it leads. On SIGTERM (a cancel, or the node's death through
// Pdeathsig) it passes SIGTERM to the whole group, waits until the script
// has exited or killGrace has passed, and kills what is left of the group,
// itself included. The trap is set before the script starts, so there is
// no moment when the node's death would be missed.
const supervisor = `trap 'trap "" TERM; kill -TERM -- -$$ 2>/dev/null; (sleep 2; kill -KILL -- -$$) & wait $script; kill -KILL -- -$$' TERM
"$@" &
script=$!
wait $script`

func adHocScript() Kind {
	return Kind{
		Name: "AdHocScript",
		Prepare: func(raw json.RawMessage) (string, error) {
			var a adHocArgs
			if err := decodeArguments("AdHocScript", raw, &a); err != nil {
				return "", err
			}
			if strings.TrimSpace(a.ScriptBody) == "" {
				return "", cuttle.Errorf(cuttle.KindInvalid, "AdHocScript needs a ScriptBody: the script to run.")
			}
			if _, ok := scriptSyntaxes[a.Syntax]; !ok {
				return "", cuttle.Errorf(cuttle.KindInvalid, "AdHocScript's Syntax %q is not supported; use Bash.", a.Syntax)
			}
			if len(a.MachineIds)+len(a.TargetRoles)+len(a.EnvironmentIds) > 0 {
				return "", cuttle.Errorf(cuttle.KindInvalid, "Running a script on deployment targets needs agents, which this version of cuttle does not have yet; leave MachineIds, TargetRoles and EnvironmentIds empty to run it on the server.")
			}
			return "Run a " + a.Syntax + " script on the server", nil
		},
		Run: runAdHocScript,
	}
}

// runAdHocScript runs the script on this node in a fresh working folder,
// with its own process group so that cancelling kills every process it
// started. Standard output lines are logged as Info, standard error lines
// as Error; a non-zero exit code fails the task.
func runAdHocScript(ctx context.Context, x *Execution) error {
	var a adHocArgs
	if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
		return fmt.Errorf("the task's arguments cannot be read: %v", err)
	}
	dir, err := os.MkdirTemp("", "cuttle-task-")
	if err != nil {
		return fmt.Errorf("creating the script's working folder: %v", err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(script, []byte(a.ScriptBody), 0o600); err != nil {
		return fmt.Errorf("writing the script: %v", err)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", supervisor, "cuttle-script", scriptSyntaxes[a.Syntax], script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CUTTLE_TASK_ID="+cuttle.FormatID(cuttle.TaskIDPrefix, x.Task.ID),
		"CUTTLE_SERVER_NODE="+x.Node)
	// A process group of its own, so that cancelling reaches every process
	// the script starts; and SIGTERM to the supervisor when the node dies,
	// so that the group never outlives the node that owns the task.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = killGrace + time.Second
	stdout := &lineWriter{log: x.Log, category: tasklog.Info}
	stderr := &lineWriter{log: x.Log, category: tasklog.Error}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	x.Log.Logf(tasklog.Info, "Running the script on node %s (attempt %d).", x.Node, x.Task.Epoch)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %v", cmd.Path, err)
	}
	err = cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the script left running in its group
	stdout.flush()
	stderr.flush()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("The script exited with code %d.", exit.ExitCode())
	}
	return err
}

// lineWriter logs what a process writes, a line at a time: the complete
// lines of each write in one log write, a partial line when it completes.
type lineWriter struct {
	log      *tasklog.Writer
	category tasklog.Category
	partial  []byte
	lines    []tasklog.Line
}

// maxLine bounds a log line; a longer one is split.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.lines = w.lines[:0]
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxLine {
				w.lines = append(w.lines, w.line(w.partial))
				w.partial = w.partial[:0]
			}
			break
		}
		w.partial = append(w.partial, p[:i]...)
		w.lines = append(w.lines, w.line(w.partial))
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	if len(w.lines) > 0 {
		// A fenced-out writer refuses; the output is dropped while the
		// process is being stopped.
		w.log.Write(w.lines...)
	}
	return n, nil
}

func (w *lineWriter) line(b []byte) tasklog.Line {
	return tasklog.Line{Time: time.Now(), Category: w.category, Text: strings.TrimSuffix(string(b), "\r")}
}

// flush logs a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.log.Write(w.line(w.partial))
		w.partial = nil
	}
}
