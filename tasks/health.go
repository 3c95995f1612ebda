package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// Health check defaults and bounds.
const (
	// DefaultHealthTimeout is how long a health check waits for an agent
	// before it finds the machine Unavailable.
	DefaultHealthTimeout = 30 * time.Second
	maxHealthTimeout     = time.Hour
	// healthParallelism bounds the machines one Health task checks at once.
	healthParallelism = 20
	// Thresholds of a warning.
	lowDiskBytes = 1 << 30
	lowDiskShare = 0.05
	maxClockSkew = time.Minute
)

// healthArgs are the arguments of a Health task: the machines to check
// (every enabled machine if none), whether only those due (Due), and how
// long to wait for each.
type healthArgs struct {
	MachineIds []string `json:",omitempty"`
	// Due leaves out the machines that are not due a check under their
	// machine policy (see due). The leader's schedule sets it.
	Due            bool `json:",omitempty"`
	TimeoutSeconds int  `json:",omitempty"`
}

// healthKind checks machines' agents and records their health: Healthy,
// HasWarnings (old agent version, low disk, clock skew), Unhealthy (the
// agent answered with an error) or Unavailable (no answer in time). The
// leader's HealthCheck job queues one for the machines due a check every
// cluster HealthCheckInterval.
func healthKind() Kind {
	return Kind{
		Name:      cuttle.JobHealthCheck,
		Resumable: true,
		Scheduled: json.RawMessage(`{"Due": true}`),
		Prepare: func(raw json.RawMessage) (Plan, error) {
			var a healthArgs
			if err := decodeArguments(cuttle.JobHealthCheck, raw, &a); err != nil {
				return Plan{}, err
			}
			if err := (targetArgs{MachineIds: a.MachineIds}).check(cuttle.JobHealthCheck); err != nil {
				return Plan{}, err
			}
			if a.TimeoutSeconds < 0 || time.Duration(a.TimeoutSeconds)*time.Second > maxHealthTimeout {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "Health's TimeoutSeconds must be between 0 (the default, %v) and %d.", DefaultHealthTimeout, int(maxHealthTimeout.Seconds()))
			}
			switch {
			case len(a.MachineIds) > 0 && a.Due:
				return Plan{Description: "Check the health of those of " + strings.Join(a.MachineIds, ", ") + " that are due a check"}, nil
			case len(a.MachineIds) > 0:
				return Plan{Description: "Check the health of " + strings.Join(a.MachineIds, ", ")}, nil
			case a.Due:
				return Plan{Description: "Check the health of the deployment targets due a check under their machine policy"}, nil
			}
			return Plan{Description: "Check the health of every deployment target"}, nil
		},
		Run: runHealth,
	}
}

func runHealth(ctx context.Context, x *Execution) error {
	var a healthArgs
	if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
		return fmt.Errorf("the task's arguments cannot be read: %v", err)
	}
	timeout := DefaultHealthTimeout
	if a.TimeoutSeconds > 0 {
		timeout = time.Duration(a.TimeoutSeconds) * time.Second
	}
	targets := targetArgs{MachineIds: a.MachineIds}
	if a.Due {
		keep, err := x.dueForHealth(ctx)
		if err != nil {
			return err
		}
		targets.keep = keep
	}
	ms, err := x.targets(ctx, targets)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		if a.Due {
			x.Log.Logf(tasklog.Info, "No enabled deployment target is due a health check; nothing to check.")
		} else {
			x.Log.Logf(tasklog.Info, "No enabled deployment targets are registered; nothing to check.")
		}
		return nil
	}
	x.Log.Logf(tasklog.Info, "Checking %d deployment target(s), waiting up to %v for each.", len(ms), timeout)
	var (
		mu     sync.Mutex
		counts = map[cuttle.HealthStatus]int{}
	)
	failed := forEachTarget(ctx, ms, healthParallelism, func(ctx context.Context, m cuttle.Machine) error {
		h, err := x.checkHealth(ctx, m, timeout)
		if err != nil {
			return err
		}
		category := tasklog.Info
		if h.Status != cuttle.Healthy {
			category = tasklog.Warning
		}
		x.Log.Write(tasklog.Line{Category: category, Block: m.Name, Text: fmt.Sprintf("%s: %s", h.Status, h.StatusSummary)})
		if !x.owns() {
			return errLost // another node checks it now
		}
		h.TaskID = x.Task.ID
		if err := x.e.store.SetMachineHealth(ctx, m.ID, h); err != nil {
			return err
		}
		mu.Lock()
		counts[h.Status]++
		mu.Unlock()
		return nil
	})
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	var parts []string
	for _, st := range []cuttle.HealthStatus{cuttle.Healthy, cuttle.HasWarnings, cuttle.Unhealthy, cuttle.Unavailable} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	x.Log.Logf(tasklog.Info, "Checked %d deployment target(s): %s.", len(ms), strings.Join(parts, ", "))
	if len(failed) > 0 {
		return fmt.Errorf("the health of %d target(s) could not be recorded", len(failed))
	}
	return nil
}

// dueForHealth returns whether a machine is due a health check under its
// machine policy: it never had one, or its last check and the policy's
// HealthCheckInterval end before the leader's next scheduled check (one
// cluster HealthCheckInterval from now, by the database clock), so that a
// policy's interval is kept to within one cluster interval. Every machine
// follows its space's default policy (package api).
func (x *Execution) dueForHealth(ctx context.Context) (func(cuttle.Machine) bool, error) {
	var (
		interval time.Duration
		now      time.Time
	)
	err := retryUnavailable(ctx, func() error {
		return x.e.store.Read(ctx, func(tx *collection.Tx) error {
			p, err := resources.DefaultMachinePolicy(ctx, tx, resources.DefaultSpaceID)
			if err != nil {
				return err
			}
			if interval, err = cuttle.ParseTimeSpan(p.MachineHealthCheckPolicy.HealthCheckInterval); err != nil {
				return err
			}
			now, err = x.e.store.Now(ctx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	next := now.Add(x.e.member.State().Settings.HealthCheckInterval)
	return func(m cuttle.Machine) bool {
		return due(m.HealthCheckedAt, interval, next)
	}, nil
}

// due reports whether a check made last (zero: never) and repeated every
// interval falls due by next.
func due(last time.Time, interval time.Duration, next time.Time) bool {
	return last.IsZero() || !last.Add(interval).After(next)
}

// checkHealth asks one machine's agent for its health and judges it.
func (x *Execution) checkHealth(ctx context.Context, m cuttle.Machine, timeout time.Duration) (cuttle.MachineHealth, error) {
	wait, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A check of its own in each ownership: one its predecessor withdrew
	// would say nothing of the agent now.
	key := fmt.Sprintf("health/%s/%d", cuttle.FormatID(cuttle.MachineIDPrefix, m.ID), x.Task.Epoch)
	cmd, err := x.runCommand(wait, m, key, cuttle.CommandHealth, agentapi.Health{})
	if cause := context.Cause(ctx); cause != nil {
		return cuttle.MachineHealth{}, cause // the task, not the machine
	}
	if wait.Err() != nil || cuttle.IsKind(err, cuttle.KindUnavailable) {
		if cmd.ID != 0 && x.owns() {
			if _, err := x.e.agents.Cancel(context.WithoutCancel(ctx), cmd.ID); err != nil {
				x.e.log.Debug("cancelling an unanswered health check failed", "err", err)
			}
		}
		summary := fmt.Sprintf("The agent did not answer within %v.", timeout)
		switch {
		case wait.Err() == nil:
			summary = err.Error() // it never took the command
		case m.Style == cuttle.Listening:
			if reach := x.e.agents.ReachError(m.ID); reach != nil {
				summary = fmt.Sprintf("The agent could not be reached: %v.", reach)
			}
		default:
			summary += " Is it running, and can it reach a node on its polling address?"
		}
		return cuttle.MachineHealth{Status: cuttle.Unavailable, StatusSummary: summary}, nil
	}
	if err != nil {
		return cuttle.MachineHealth{}, err
	}
	if cmd.State != cuttle.CommandSuccess {
		return cuttle.MachineHealth{Status: cuttle.Unhealthy, StatusSummary: "The agent failed the health check: " + cmd.Error}, nil
	}
	var r agentapi.HealthResult
	if err := json.Unmarshal(cmd.Result, &r); err != nil {
		return cuttle.MachineHealth{Status: cuttle.Unhealthy, StatusSummary: "The agent's health report cannot be read."}, nil
	}
	return judgeHealth(r, cmd.FinishedAt), nil
}

// judgeHealth turns an agent's report, which reached the database at
// stored, into a health status and summary.
func judgeHealth(r agentapi.HealthResult, stored time.Time) cuttle.MachineHealth {
	h := cuttle.MachineHealth{Status: cuttle.Healthy, AgentVersion: r.Version, OS: r.OS}
	var warnings []string
	if r.Version != cuttle.Version {
		warnings = append(warnings, fmt.Sprintf("the agent runs cuttle %s, this node %s", r.Version, cuttle.Version))
	}
	if r.TotalDiskBytes > 0 && (r.FreeDiskBytes < lowDiskBytes || float64(r.FreeDiskBytes) < lowDiskShare*float64(r.TotalDiskBytes)) {
		warnings = append(warnings, fmt.Sprintf("only %s free of %s on the agent's work disk", bytesText(r.FreeDiskBytes), bytesText(r.TotalDiskBytes)))
	}
	if !stored.IsZero() && !r.Time.IsZero() && r.Time.Sub(stored).Abs() > maxClockSkew {
		warnings = append(warnings, fmt.Sprintf("the agent's clock is %v off the database's", r.Time.Sub(stored).Round(time.Second)))
	}
	summary := fmt.Sprintf("cuttle agent %s on %s, %s free on its work disk", r.Version, r.OS, bytesText(r.FreeDiskBytes))
	if len(warnings) > 0 {
		h.Status = cuttle.HasWarnings
		summary += "; " + strings.Join(warnings, "; ")
	}
	h.StatusSummary = summary + "."
	return h
}

// bytesText writes n bytes for people: 12.3 GiB.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
