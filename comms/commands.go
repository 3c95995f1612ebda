package comms

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// outputBatch bounds the lines one read of a command's output returns.
const outputBatch = 1000

// machineRecheck is how often a follower checks that the command's machine
// still exists with the same agent: if not, the agent's reports are
// refused, and the command would never end.
const machineRecheck = 10 * time.Second

// Queue queues commands for agents (store.AgentStore.EnsureCommands: a
// resumed task gets the commands it queued before) and wakes the polls of
// their machines on every node.
func (c *Comms) Queue(ctx context.Context, cmds []cuttle.NewCommand) ([]cuttle.Command, error) {
	got, err := c.store.EnsureCommands(ctx, cmds)
	if err != nil {
		return nil, err
	}
	var machines []int64
	for _, cmd := range got {
		if cmd.State == cuttle.CommandPending && !slices.Contains(machines, cmd.MachineID) {
			machines = append(machines, cmd.MachineID)
		}
	}
	for _, id := range machines {
		c.notify(ctx, store.ChannelAgentWork, id)
	}
	return got, nil
}

// Cancel asks for a command to be stopped (store.AgentStore.CancelCommand)
// and tells its agent's polls at once.
func (c *Comms) Cancel(ctx context.Context, id int64) (cuttle.Command, error) {
	cmd, err := c.store.CancelCommand(ctx, id)
	if err != nil {
		return cuttle.Command{}, err
	}
	c.notify(ctx, store.ChannelAgentWork, cmd.MachineID)
	c.notify(ctx, store.ChannelCommands, cmd.ID)
	return cmd, nil
}

func (c *Comms) notify(ctx context.Context, channel string, id int64) {
	if err := c.store.Notify(ctx, channel, strconv.FormatInt(id, 10)); err != nil {
		c.log.Debug("notifying failed; the others find the change within a second", "channel", channel, "err", err)
	}
}

// Follow waits for the command id of machine m to end. It passes the
// command's output lines after the line after to onLines, in order and in
// batches, as they arrive, and returns the command as it ended. While it
// follows a listening machine's command, this node keeps a session open to
// the agent. It returns early with ctx's error, with the error of onLines,
// with a KindUnavailable error if the agent has not confirmed the command
// (it is still Pending or Dispatched) PickupTimeout after Follow began, or
// with a KindConflict error if the machine was deleted or given another
// certificate. A database that cannot be reached is waited for.
func (c *Comms) Follow(ctx context.Context, m cuttle.Machine, id, after int64, onLines func([]cuttle.CommandLine) error) (cuttle.Command, error) {
	if m.Style == cuttle.Listening {
		detach := c.attach(m)
		defer detach()
	}
	woken, stop := c.hub.waitCommand(id)
	defer stop()
	tick := time.NewTicker(scanInterval)
	defer tick.Stop()
	giveUp := time.Now().Add(c.pickup)
	recheck := time.Now().Add(machineRecheck)
	var cmd cuttle.Command
	for {
		err := func() error {
			var err error
			if cmd, err = c.store.Command(ctx, id); err != nil {
				return err
			}
			for after < cmd.OutputSeq {
				lines, err := c.store.CommandOutput(ctx, id, after, outputBatch)
				if err != nil || len(lines) == 0 {
					return err
				}
				if err := onLines(lines); err != nil {
					return err
				}
				after = lines[len(lines)-1].Seq
			}
			return nil
		}()
		switch {
		case err == nil && cmd.State.Final() && after >= cmd.OutputSeq:
			return cmd, nil
		case err != nil && ctx.Err() != nil:
			return cmd, ctx.Err()
		case err != nil && !cuttle.IsKind(err, cuttle.KindUnavailable):
			return cmd, err
		case err == nil && time.Now().After(recheck):
			recheck = time.Now().Add(machineRecheck)
			now, merr := c.store.Machine(ctx, m.ID)
			switch {
			case cuttle.IsKind(merr, cuttle.KindNotFound):
				return cmd, cuttle.Errorf(cuttle.KindConflict, "The machine %s was deleted while its command ran.", m.Name)
			case merr == nil && !strings.EqualFold(now.Thumbprint, m.Thumbprint):
				return cmd, cuttle.Errorf(cuttle.KindConflict, "The machine %s was given another agent certificate while its command ran.", m.Name)
			}
		case err == nil && (cmd.State == cuttle.CommandPending || cmd.State == cuttle.CommandDispatched) && time.Now().After(giveUp):
			why := "is it running, and can it reach a node?"
			if reach := c.dialError(m.ID); reach != nil {
				why = "it cannot be reached: " + reach.Error()
			}
			return cmd, cuttle.Errorf(cuttle.KindUnavailable, "The agent of %s did not take the command within %v; %s", m.Name, c.pickup, why)
		}
		select {
		case <-woken:
		case <-tick.C:
		case <-ctx.Done():
			return cmd, ctx.Err()
		}
	}
}

// ReachError returns why this node could not connect to the listening
// machine at its last attempt, or nil.
func (c *Comms) ReachError(machineID int64) error { return c.dialError(machineID) }
