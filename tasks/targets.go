package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// Agents runs commands on deployment targets' agents (package comms).
type Agents interface {
	// Queue queues commands, or returns those a task queued before under
	// the same keys.
	Queue(ctx context.Context, cmds []cuttle.NewCommand) ([]cuttle.Command, error)
	// Follow waits for a command to end, passing its output after the line
	// after to onLines.
	Follow(ctx context.Context, m cuttle.Machine, id, after int64, onLines func([]cuttle.CommandLine) error) (cuttle.Command, error)
	// Cancel asks for a command to be stopped.
	Cancel(ctx context.Context, id int64) (cuttle.Command, error)
	// ReachError tells why this node could not reach a listening machine.
	ReachError(machineID int64) error
}

// DefaultTargetParallelism bounds how many targets one task works on at once.
const DefaultTargetParallelism = 10

// targetArgs are the arguments that select deployment targets: the
// machines named, or else the machines in any of the environments (all if
// none) with any of the roles (any if none). Disabled machines are left out.
type targetArgs struct {
	MachineIds     []string `json:",omitempty"`
	TargetRoles    []string `json:",omitempty"`
	EnvironmentIds []string `json:",omitempty"`
	// keep, if set, leaves out the machines for which it is false.
	keep func(cuttle.Machine) bool
}

func (a targetArgs) any() bool {
	return len(a.MachineIds)+len(a.TargetRoles)+len(a.EnvironmentIds) > 0
}

// check returns a KindInvalid error unless every id has its form.
func (a targetArgs) check(kind string) error {
	for _, id := range a.MachineIds {
		if _, err := cuttle.ParseID(cuttle.MachineIDPrefix, id); err != nil {
			return cuttle.Errorf(cuttle.KindInvalid, "%s's MachineIds holds %q, which is not an id of the form %sN.", kind, id, cuttle.MachineIDPrefix)
		}
	}
	for _, id := range a.EnvironmentIds {
		if _, err := cuttle.ParseID(cuttle.EnvironmentIDPrefix, id); err != nil {
			return cuttle.Errorf(cuttle.KindInvalid, "%s's EnvironmentIds holds %q, which is not an id of the form %sN.", kind, id, cuttle.EnvironmentIDPrefix)
		}
	}
	return nil
}

// query returns the machine query of the arguments.
func (a targetArgs) query() cuttle.MachineQuery {
	enabled := false
	q := cuttle.MachineQuery{IsDisabled: &enabled}
	for _, id := range a.MachineIds {
		n, _ := cuttle.ParseID(cuttle.MachineIDPrefix, id)
		q.IDs = append(q.IDs, n)
	}
	if len(q.IDs) > 0 {
		return q
	}
	q.Roles = a.TargetRoles
	for _, id := range a.EnvironmentIds {
		n, _ := cuttle.ParseID(cuttle.EnvironmentIDPrefix, id)
		q.EnvironmentIDs = append(q.EnvironmentIDs, n)
	}
	return q
}

// targetsCheckpoint is the checkpoint of a task that works on targets: the
// machines it chose when it first ran, so that a node resuming it works on
// the same ones.
type targetsCheckpoint struct {
	MachineIDs []int64
}

// targets returns the machines a task works on: those of its checkpoint if
// it is resumed, otherwise those a selects now, which it checkpoints. It
// fails if a named machine does not exist.
func (x *Execution) targets(ctx context.Context, a targetArgs) ([]cuttle.Machine, error) {
	var cp targetsCheckpoint
	resumed := len(x.Task.Checkpoint) > 0 && json.Unmarshal(x.Task.Checkpoint, &cp) == nil && cp.MachineIDs != nil
	q := a.query()
	if resumed {
		q = cuttle.MachineQuery{IDs: cp.MachineIDs}
	}
	var ms []cuttle.Machine
	if err := retryUnavailable(ctx, func() (err error) {
		ms, err = x.e.store.Machines(ctx, q)
		return err
	}); err != nil {
		return nil, err
	}
	if !resumed {
		for _, want := range q.IDs {
			if !slices.ContainsFunc(ms, func(m cuttle.Machine) bool { return m.ID == want }) {
				return nil, fmt.Errorf("there is no enabled machine %s", cuttle.FormatID(cuttle.MachineIDPrefix, want))
			}
		}
		if a.keep != nil {
			ms = slices.DeleteFunc(ms, func(m cuttle.Machine) bool { return !a.keep(m) })
		}
		cp.MachineIDs = []int64{}
		for _, m := range ms {
			cp.MachineIDs = append(cp.MachineIDs, m.ID)
		}
		b, _ := json.Marshal(cp)
		if err := x.Checkpoint(ctx, b); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// forEachTarget calls fn for each machine, at most parallel at once, and
// returns the machines for which fn failed with the errors.
func forEachTarget(ctx context.Context, ms []cuttle.Machine, parallel int, fn func(ctx context.Context, m cuttle.Machine) error) map[string]error {
	var (
		mu     sync.Mutex
		failed = map[string]error{}
		wg     sync.WaitGroup
		slots  = make(chan struct{}, max(parallel, 1))
	)
	for _, m := range ms {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			failed[m.Name] = context.Cause(ctx)
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(ctx, m); err != nil {
				mu.Lock()
				failed[m.Name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// categories maps an agent's output streams to log categories.
var categories = map[string]tasklog.Category{"stdout": tasklog.Info, "stderr": tasklog.Error, "info": tasklog.Info}

// runCommand runs one command on a machine's agent for the task and copies
// its output into the task's log, in the machine's block. A resumed task
// finds the command it queued before and copies on from what the log
// already holds. When the task is cancelled it cancels the command and
// waits a little for its agent to confirm. It returns the command as it
// ended.
func (x *Execution) runCommand(ctx context.Context, m cuttle.Machine, key string, kind cuttle.CommandKind, payload any) (cuttle.Command, error) {
	return x.RunCommand(ctx, m, key, kind, payload, CommandOptions{})
}

// CommandOptions shape how RunCommand copies a command's output into the
// task's log.
type CommandOptions struct {
	// Block is the log block of the command's lines; default the machine's
	// name.
	Block string
	// Line, if set, sees each line before it is copied: it may change it,
	// or return false to leave it out of the log (a line that set an
	// output variable, say). It sees every line of the command, those an
	// earlier owner of the task copied too, so that a task resumed on
	// another node learns what they said; those are not copied again.
	Line func(l *tasklog.Line) bool
}

// RunCommand runs one command on a machine's agent for the task, as
// runCommand does, with opts.
func (x *Execution) RunCommand(ctx context.Context, m cuttle.Machine, key string, kind cuttle.CommandKind, payload any, opts CommandOptions) (cuttle.Command, error) {
	if opts.Block == "" {
		opts.Block = m.Name
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return cuttle.Command{}, err
	}
	agents := x.e.agents
	if agents == nil {
		return cuttle.Command{}, errors.New("this node cannot reach agents")
	}
	var cmd cuttle.Command
	if err := retryUnavailable(ctx, func() error {
		cmds, err := agents.Queue(ctx, []cuttle.NewCommand{{MachineID: m.ID, TaskID: x.Task.ID, Key: key, Kind: kind, Payload: b}})
		if err == nil {
			cmd = cmds[0]
		}
		return err
	}); err != nil {
		return cuttle.Command{}, err
	}
	end, err := x.copiedSoFar()
	if err != nil {
		return cuttle.Command{}, err
	}
	inLog := end.LastSeq(cmd.UID) // lines an earlier owner copied
	copied := inLog
	if opts.Line != nil {
		copied = 0 // Line sees them all
	}
	copyLines := func(lines []cuttle.CommandLine) error {
		out := make([]tasklog.Line, 0, len(lines))
		for _, l := range lines {
			line := tasklog.Line{Time: l.Time, Category: categories[l.Stream], Text: l.Text, Block: opts.Block, Source: cmd.UID, Seq: l.Seq}
			if line.Category == "" {
				line.Category = tasklog.Info
			}
			if (opts.Line == nil || opts.Line(&line)) && l.Seq > inLog {
				out = append(out, line)
			}
		}
		if len(out) > 0 {
			if err := x.Log.Write(out...); err != nil {
				return err
			}
		}
		copied = lines[len(lines)-1].Seq
		return nil
	}
	final, err := agents.Follow(ctx, m, cmd.ID, copied, copyLines)
	x.noteDropped(opts.Block, final)
	if err != nil && ctx.Err() == nil && cuttle.IsKind(err, cuttle.KindUnavailable) {
		// The agent never took the command: withdraw it, so that it does
		// not run when the agent comes back after the task has ended.
		if x.owns() {
			if _, cerr := agents.Cancel(context.WithoutCancel(ctx), cmd.ID); cerr != nil {
				x.e.log.Warn("withdrawing a command its agent never took failed", "err", cerr)
			}
		}
		return final, err
	}
	if err == nil || context.Cause(ctx) != errCanceled {
		return final, err
	}
	// Cancelled: stop the agent's work, and give it a moment to say so,
	// copying what it still prints.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelWait)
	defer cancel()
	if _, err := agents.Cancel(stopCtx, cmd.ID); err != nil {
		return final, err
	}
	if final, err = agents.Follow(stopCtx, m, cmd.ID, copied, copyLines); err != nil {
		x.Log.Logf(tasklog.Warning, "The agent of %s did not confirm the cancel within %v.", m.Name, cancelWait)
	}
	x.noteDropped(opts.Block, final)
	return final, errCanceled
}

// noteDropped says in the command's block of the log how much of the
// command's output was over its bound, once the command has ended. The
// line is copied once, whichever owner of the task writes it.
func (x *Execution) noteDropped(block string, c cuttle.Command) {
	if note := c.Output.Note(x.e.outputBound()); note != "" && c.State.Final() {
		x.Log.Write(tasklog.Line{Category: tasklog.Warning, Block: block, Text: note, Source: "dropped/" + c.UID, Seq: 1})
	}
}

// retryUnavailable calls fn until it succeeds, fails with an error that is
// not KindUnavailable, or ctx ends: a task waits out a database that is
// briefly away instead of failing its targets.
func retryUnavailable(ctx context.Context, fn func() error) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := fn()
		if err == nil || !cuttle.IsKind(err, cuttle.KindUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// cancelWait bounds how long a cancelled task waits for its agents to
// confirm that they stopped.
const cancelWait = 10 * time.Second

// runScriptOnTargets runs an AdHocScript on the agents of its targets, at
// most DefaultTargetParallelism at once, each agent's output a block of the
// task's log. It fails if the script failed on any target.
func runScriptOnTargets(ctx context.Context, x *Execution, a adHocArgs) error {
	ms, err := x.targets(ctx, a.targetArgs)
	if err != nil {
		return err
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	x.Log.Logf(tasklog.Info, "Running the script on %d target(s): %s.", len(ms), strings.Join(names, ", "))
	return onTargets(ctx, x, ms, "script", cuttle.CommandScript, agentapi.Script{Body: a.ScriptBody, Syntax: a.Syntax},
		func(m cuttle.Machine, _ cuttle.Command) string { return "The script succeeded on " + m.Name + "." })
}

// failedOn returns an error naming the targets that failed, or nil; the
// error of a single target is told in full.
func failedOn(failed map[string]error, total int) error {
	switch len(failed) {
	case 0:
		return nil
	case 1:
		for name, err := range failed {
			return fmt.Errorf("Failed on %s: %v", name, err)
		}
	}
	var which []string
	for name := range failed {
		which = append(which, name)
	}
	slices.Sort(which)
	return fmt.Errorf("Failed on %d of %d target(s): %s.", len(failed), total, strings.Join(which, ", "))
}
