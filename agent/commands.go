package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/host"
	"github.com/cuttledeploy/cuttle/script"
)

// execute does the command's work and returns how it ended.
func (a *Agent) execute(ctx context.Context, c *command) outcome {
	var o outcome
	switch cuttle.CommandKind(c.kind) {
	case cuttle.CommandScript:
		o = a.runScript(ctx, c)
	case cuttle.CommandHealth:
		o = a.health()
	case cuttle.CommandReceiveFile:
		o = a.receiveFile(ctx, c)
	case cuttle.CommandSendFile:
		o = a.sendFile(ctx, c)
	case cuttle.CommandDeployPackage:
		o = a.deployPackage(ctx, c)
	case cuttle.CommandPrunePackages:
		o = a.prunePackages(ctx, c)
	default:
		o = failed("this agent (cuttle %s) does not know commands of kind %q", cuttle.Version, c.kind)
	}
	if o.State != cuttle.CommandSuccess {
		switch context.Cause(ctx) {
		case errCanceled:
			o.State, o.Error = cuttle.CommandCanceled, errCanceled.Error()
		case errAgentStopped:
			o.State, o.Error = cuttle.CommandFailed, errAgentStopped.Error()
		}
	}
	return o
}

func failed(format string, args ...any) outcome {
	return outcome{State: cuttle.CommandFailed, Error: fmt.Sprintf(format, args...)}
}

func succeeded(result any) outcome {
	b, err := json.Marshal(result)
	if err != nil {
		return failed("encoding the result: %v", err)
	}
	return outcome{State: cuttle.CommandSuccess, Result: b}
}

// decodePayload reads the command's payload into v.
func decodePayload(c *command, v any) error {
	if err := json.Unmarshal(c.payload, v); err != nil {
		return fmt.Errorf("the payload of the %s command cannot be read: %v", c.kind, err)
	}
	return nil
}

// refusePath fails a command for a path it may not use.
func refusePath(c *command, err error) outcome {
	c.log.Warn("refused a command", "err", err)
	return failed("%v", err)
}

// shell is how the agent runs the scripts of a syntax.
type shell struct {
	program   string
	args      []string // before the script's path
	extension string   // of the script's file, which pwsh needs
}

var shells = map[string]shell{
	"Bash":       {program: "bash", extension: ".sh"},
	"Sh":         {program: "sh", extension: ".sh"},
	"PowerShell": {program: "pwsh", args: []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-File"}, extension: ".ps1"},
}

// scriptEnv returns the environment a target's script starts from: the
// agent's own, which operators use to give scripts what the target needs
// (JAVA_HOME, proxies), less the agent's settings (CUTTLE_*), which may
// hold an API key.
func scriptEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CUTTLE_") })
}

// commandEnv returns the environment of a command's scripts: scriptEnv
// and the command's own CUTTLE_COMMAND_ID and CUTTLE_WORK.
func (a *Agent) commandEnv(c *command) []string {
	return append(scriptEnv(), "CUTTLE_COMMAND_ID="+c.uid, "CUTTLE_WORK="+a.work)
}

// shellRun is a script body a command runs.
type shellRun struct {
	syntax string // a key of shells
	// name is the script's file in the command's folder, less the
	// shell's extension.
	name    string
	body    string
	dir     string // the working folder
	env     []string
	timeout time.Duration // 0: none
	// what is what the failure of a non-zero exit code calls the
	// script: "The script" exited with code N.
	what string
	// artifacts, if not nil, collects the artifacts the script declares
	// (createArtifact service messages), for the command to upload once
	// its scripts have ended (uploadArtifacts).
	artifacts *artifacts
}

// runShell runs r: it writes the body to its file in the command's
// folder, runs it with the syntax's shell (script.Run: in a process group
// of its own, stopped at the timeout or when ctx ends, its output
// journaled as the command's lines, and its createArtifact service
// messages noticed into r.artifacts, if set) and removes the file, which
// may hold the deployment's sensitive values. It returns Success for exit
// code 0, else Failed: "<what> exited with code N." with the exit code,
// or why the script could not run or was stopped (exit code -1).
func (a *Agent) runShell(ctx context.Context, c *command, r shellRun) outcome {
	sh := shells[r.syntax]
	path := filepath.Join(c.dir, r.name+sh.extension)
	if err := os.WriteFile(path, []byte(r.body), 0o600); err != nil {
		return failed("writing the script: %v", err)
	}
	defer os.Remove(path)
	output := c.scriptOutput
	if r.artifacts != nil {
		output = func(lines []script.Line) {
			c.scriptOutput(lines)
			r.artifacts.notice(c, r.dir, lines)
		}
	}
	code, err := script.Run(ctx, script.Spec{
		Shell:   sh.program,
		Args:    sh.args,
		Path:    path,
		Dir:     r.dir,
		Env:     r.env,
		Timeout: r.timeout,
	}, output)
	switch {
	case errors.Is(err, script.ErrShellNotFound):
		return failed("%s scripts cannot run on this agent: %v", r.syntax, err)
	case err != nil:
		o := failed("%v", err)
		o.ExitCode = -1
		return o
	case code != 0:
		o := failed("%s exited with code %d.", r.what, code)
		o.ExitCode = code
		return o
	}
	return outcome{State: cuttle.CommandSuccess}
}

// runScript runs a Script command (agentapi.Script), and then uploads
// the artifacts the script declared, whatever its outcome.
func (a *Agent) runScript(ctx context.Context, c *command) outcome {
	var s agentapi.Script
	if err := decodePayload(c, &s); err != nil {
		return failed("%v", err)
	}
	if _, ok := shells[s.Syntax]; !ok {
		return failed("the script's Syntax %q is not supported; use one of %s", s.Syntax, strings.Join(slices.Sorted(maps.Keys(shells)), ", "))
	}
	if s.TimeoutSeconds < 0 {
		return failed("the script's TimeoutSeconds is %d; use 0 for no limit", s.TimeoutSeconds)
	}
	env := a.commandEnv(c)
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return failed("the script's Env has an invalid variable name %q", k)
		}
		env = append(env, k+"="+s.Env[k])
	}
	dir := a.work
	if s.WorkDir != "" {
		var err error
		if dir, err = a.resolve(s.WorkDir); err != nil {
			return refusePath(c, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return failed("creating the working folder: %v", err)
		}
	}
	arts := &artifacts{}
	o := a.runShell(ctx, c, shellRun{syntax: s.Syntax, name: "script", body: s.Body, dir: dir, env: env,
		timeout: time.Duration(s.TimeoutSeconds) * time.Second, what: "The script", artifacts: arts})
	a.uploadArtifacts(ctx, c, arts)
	return o
}

// health runs a Health command.
func (a *Agent) health() outcome {
	free, total, err := host.Disk(a.work)
	if err != nil {
		return failed("reading the free space of the work folder: %v", err)
	}
	return succeeded(agentapi.HealthResult{
		Version:        cuttle.Version,
		OS:             host.OSDescription(),
		FreeDiskBytes:  free,
		TotalDiskBytes: total,
		Time:           a.now().UTC(),
	})
}

// resolve returns the absolute path of rel, a path of a command, in the
// work folder. rel must be relative, clean (filepath.Clean leaves it as
// is) and not empty; following the symbolic links of the parts of it that
// exist, it must stay inside the work folder. Parts that do not exist are
// taken as they are (the command creates them). The error names rel and
// the work folder.
func (a *Agent) resolve(rel string) (string, error) {
	refuse := func(why string) error {
		return fmt.Errorf("the path %q is refused: %s; a command's paths must stay inside the agent's work folder %s", rel, why, a.work)
	}
	switch {
	case rel == "":
		return "", refuse("it is empty")
	case filepath.IsAbs(rel):
		return "", refuse("it is absolute")
	case filepath.Clean(rel) != rel:
		return "", refuse("it is not clean (it should read " + filepath.Clean(rel) + ")")
	case !filepath.IsLocal(rel):
		return "", refuse("it leads out of the work folder")
	}
	path := a.work
	parts := strings.Split(rel, string(filepath.Separator))
	for i, part := range parts {
		next := filepath.Join(path, part)
		info, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{path}, parts[i:]...)...), nil
		}
		if err != nil {
			return "", refuse(err.Error())
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(next)
			if err != nil {
				return "", refuse(fmt.Sprintf("the symbolic link %s cannot be followed (%v)", next, err))
			}
			if target != a.work && !strings.HasPrefix(target, a.work+string(filepath.Separator)) {
				return "", refuse(fmt.Sprintf("the symbolic link %s leads to %s", next, target))
			}
			next = target
		}
		path = next
	}
	return path, nil
}
