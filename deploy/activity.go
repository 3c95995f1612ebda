package deploy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Activity is an element of a deployment's activity tree, read from its
// Deploy task's checkpoint: the deployment's steps, each step's targets,
// each target's actions, with their status and times. Status is one of
// Octopus's activity statuses: Pending, Running, Success, Failed, Skipped.
type Activity struct {
	Name    string
	Status  string
	Started *time.Time
	Ended   *time.Time
	// Block is the log block of a target's lines ("step / target"): the
	// task's lines of that block belong to this element.
	Block    string
	Children []Activity
}

// ActivityTree returns the steps of a Deploy task's checkpoint as activity
// elements; none for a task that has not made its plan yet.
func ActivityTree(checkpoint []byte) ([]Activity, error) {
	if len(checkpoint) == 0 {
		return nil, nil
	}
	var p progress
	if err := json.Unmarshal(checkpoint, &p); err != nil {
		return nil, fmt.Errorf("the deployment's checkpoint cannot be read: %v", err)
	}
	steps := make([]Activity, 0, len(p.Steps))
	for _, sp := range p.Steps {
		step := Activity{Name: sp.Name}
		for _, tp := range sp.Targets {
			t := server
			if tp.MachineID != 0 {
				t = p.Targets[strconv.FormatInt(tp.MachineID, 10)]
			}
			el := Activity{Name: t.Name, Block: sp.Name + " / " + t.Name}
			for _, ap := range tp.Actions {
				el.Children = append(el.Children, Activity{Name: ap.Name, Status: actionStatus(ap.State), Started: ap.Started, Ended: ap.Ended})
			}
			step.Children = append(step.Children, summarize(el))
		}
		if sp.Skipped != "" {
			step.Status = "Skipped"
			steps = append(steps, step)
			continue
		}
		steps = append(steps, summarize(step))
	}
	return steps, nil
}

// actionStatus maps an action's state to its activity status: one that
// waits for a person is Running.
func actionStatus(state string) string {
	switch state {
	case stateRunning, stateWaiting:
		return "Running"
	case stateSucceeded:
		return "Success"
	case stateFailed:
		return "Failed"
	case stateSkipped, stateExcluded:
		return "Skipped"
	default:
		return "Pending"
	}
}

// summarize gives an element the status and times of its children: Failed
// if one failed; Running if one runs, or some have ended and some not;
// Pending if none has started; Skipped if all were skipped; else Success.
// It started with its first child and ended with its last, once all have.
func summarize(el Activity) Activity {
	count := map[string]int{}
	for _, c := range el.Children {
		count[c.Status]++
		if c.Started != nil && (el.Started == nil || c.Started.Before(*el.Started)) {
			el.Started = c.Started
		}
		if c.Ended != nil && (el.Ended == nil || c.Ended.After(*el.Ended)) {
			el.Ended = c.Ended
		}
	}
	n := len(el.Children)
	switch {
	case count["Failed"] > 0 && count["Running"] == 0:
		el.Status = "Failed"
	case count["Pending"] == n:
		el.Status = "Pending"
	case count["Skipped"] == n:
		el.Status = "Skipped"
	case count["Running"] > 0 || count["Pending"] > 0:
		el.Status = "Running"
	default:
		el.Status = "Success"
	}
	if el.Status == "Running" || el.Status == "Pending" {
		el.Ended = nil
	}
	return el
}
