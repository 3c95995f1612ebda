package deploy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
	"github.com/cuttledeploy/cuttle/variables"
)

// TaskName is the name of the task kind that runs a deployment.
const TaskName = "Deploy"

// DefaultWindow is how many targets a step works on at once when it does
// not say (Octopus.Action.MaxParallelism).
const DefaultWindow = 10

// Config configures the Deploy task kind.
type Config struct {
	Store store.Store
	// Files is shared storage, where the artifacts of scripts on nodes
	// are kept.
	Files blob.Store
	// MasterKey opens the release's sensitive values and seals the
	// payloads of the commands that carry them.
	MasterKey masterkey.Key
}

// Arguments are a Deploy task's arguments.
type Arguments struct {
	DeploymentId string
}

// Kind returns the Deploy task kind: a system kind (deployments queue it,
// users do not), resumable.
func Kind(cfg Config) tasks.Kind {
	return tasks.Kind{
		Name: TaskName, System: true, Resumable: true,
		Prepare: func(raw json.RawMessage) (tasks.Plan, error) {
			var a Arguments
			if err := json.Unmarshal(raw, &a); err != nil || a.DeploymentId == "" {
				return tasks.Plan{}, cuttle.Errorf(cuttle.KindInvalid, "A Deploy task needs the DeploymentId it runs.")
			}
			return tasks.Plan{Description: "Deploy " + a.DeploymentId}, nil
		},
		Run: func(ctx context.Context, x *tasks.Execution) error {
			r := &run{cfg: cfg, x: x}
			return r.run(ctx)
		},
	}
}

// run is one run of a deployment on this node: from its checkpoint (or a
// new plan) to its end, or to a wait for a person.
type run struct {
	cfg Config
	x   *tasks.Execution

	deployment cuttle.Deployment
	release    cuttle.Release
	project    cuttle.Project
	env        cuttle.Environment
	process    cuttle.DeploymentProcess // the release's snapshot
	vars       *variables.Set
	form       map[string]string // deployment-time values, sensitive ones opened

	// saveMu orders checkpoint writes; saved is how many changes the last
	// one held (under saveMu), changes how many were made (under mu).
	saveMu  sync.Mutex
	saved   uint64
	changes uint64

	mu         sync.Mutex
	progress   progress
	masker     variables.Masker
	sensitive  []string
	interrupts []cuttle.Interruption // to create when the run parks
	waiting    bool                  // an action waits for a person: start nothing new
	// blocking: a wait keeps the next deployment of the project to the
	// environment from running meanwhile (a guided failure, or a manual
	// intervention that blocks concurrent deployments).
	blocking bool
	// unasked holds, for each action waiting on an interruption not yet
	// created (park creates them), what the action was before: a
	// checkpoint written meanwhile stores that, so that no wait is stored
	// without its question (a node dying before park leaves the action to
	// run, or ask, again).
	unasked map[actionAt]actionProgress
}

// run runs the deployment: it loads what the deployment deploys, makes or
// reads its plan, runs its steps, and either ends it (writing its state
// into the deployment) or parks it to wait for a person.
func (r *run) run(ctx context.Context) error {
	if err := r.load(ctx); err != nil {
		return err
	}
	r.x.Log.SetMask(r.mask)
	if len(r.x.Task.Checkpoint) > 0 {
		if err := json.Unmarshal(r.x.Task.Checkpoint, &r.progress); err != nil {
			return fmt.Errorf("the deployment's checkpoint cannot be read: %v", err)
		}
		secrets, err := openOutputs(r.cfg.MasterKey, &r.progress)
		if err != nil {
			return err
		}
		for _, v := range secrets {
			r.addSensitive(v)
		}
		r.x.Log.Logf(tasklog.Info, "Resuming the deployment of %s release %s to %s on node %s (attempt %d).",
			r.project.Name, r.release.Version, r.env.Name, r.x.Node, r.x.Task.Epoch)
	} else {
		machines, err := r.machines(ctx)
		if err != nil {
			return err
		}
		if r.progress, err = r.plan(ctx, machines); err != nil {
			return r.end(ctx, err)
		}
		if err := r.save(ctx); err != nil {
			return err
		}
		r.x.Log.Logf(tasklog.Info, "Deploying %s release %s to %s on node %s.", r.project.Name, r.release.Version, r.env.Name, r.x.Node)
	}
	err := r.runSteps(ctx)
	if ctx.Err() != nil {
		return context.Cause(ctx) // cancelled, lost or stopping: the executor says so
	}
	if err == nil && r.parking() {
		return r.park(ctx)
	}
	return r.end(ctx, err)
}

// load reads the deployment and what it deploys, and opens the release's
// variables.
func (r *run) load(ctx context.Context) error {
	var a Arguments
	if err := json.Unmarshal(r.x.Task.Arguments, &a); err != nil {
		return fmt.Errorf("the task's arguments cannot be read: %v", err)
	}
	var varSet cuttle.VariableSet
	err := r.cfg.Store.Read(ctx, func(tx *collection.Tx) (err error) {
		if r.deployment, err = resources.Deployments.Get(ctx, tx, a.DeploymentId); err != nil {
			return err
		}
		if r.release, err = resources.Releases.Get(ctx, tx, r.deployment.ReleaseId); err != nil {
			return err
		}
		if r.project, err = resources.Projects.Get(ctx, tx, r.deployment.ProjectId); err != nil {
			return err
		}
		if r.env, err = resources.Environments.Get(ctx, tx, r.deployment.EnvironmentId); err != nil {
			return err
		}
		if r.process, err = resources.ProcessSnapshots.Get(ctx, tx, r.release.ProjectDeploymentProcessSnapshotId); err != nil {
			return err
		}
		varSet, err = resources.VariableSetSnapshots.Get(ctx, tx, r.release.ProjectVariableSetSnapshotId)
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the deployment %s: %w", a.DeploymentId, err)
	}
	vars, err := resources.OpenVariables(r.cfg.MasterKey, varSet)
	if err != nil {
		return err
	}
	r.vars = variables.NewSet(vars)
	for _, v := range vars {
		if v.Sensitive() && v.Value != nil {
			r.sensitive = append(r.sensitive, *v.Value)
		}
	}
	r.form = map[string]string{}
	for k, v := range r.deployment.FormValues {
		r.form[k] = v
	}
	r.masker = variables.NewMasker(r.sensitive)
	return nil
}

// mask hides the deployment's sensitive values in a log line.
func (r *run) mask(text string) string {
	r.mu.Lock()
	m := r.masker
	r.mu.Unlock()
	return m.Apply(text)
}

// addSensitive masks value from now on (an output variable set as
// sensitive).
func (r *run) addSensitive(value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sensitive = append(r.sensitive, value)
	r.masker = variables.NewMasker(r.sensitive)
}

// machines returns the enabled machines of the deployment's environment.
func (r *run) machines(ctx context.Context) ([]cuttle.Machine, error) {
	envID, err := resources.Environments.ParseID(r.env.ID)
	if err != nil {
		return nil, err
	}
	disabled := false
	return r.cfg.Store.Machines(ctx, cuttle.MachineQuery{EnvironmentIDs: []int64{envID}, IsDisabled: &disabled})
}

// save writes the progress as the task's checkpoint (fenced by its
// ownership), with every change made to it so far: what it says has
// happened has happened. Saves of many targets at once are coalesced:
// while one write is in flight the others wait, and the next write holds
// all their changes (a caller whose change an earlier write already held
// returns at once). Writes are made one at a time, each of a snapshot
// taken after the last, so the stored checkpoint never goes back.
func (r *run) save(ctx context.Context) error {
	r.mu.Lock()
	r.changes++
	mine := r.changes
	r.mu.Unlock()
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if r.saved >= mine {
		return nil
	}
	r.mu.Lock()
	b, upTo := r.progressAsked(), r.changes
	r.mu.Unlock()
	if err := r.x.Checkpoint(ctx, b); err != nil {
		return err
	}
	r.saved = upTo
	return nil
}

// actionAt names action a of target t of step i.
type actionAt struct{ i, t, a int }

// progressAsked returns the progress as a checkpoint, each action waiting
// on an interruption not created yet written as it was before (unasked).
// r.mu is held.
func (r *run) progressAsked() []byte {
	var swapped []actionAt
	for at, before := range r.unasked {
		ap := &r.progress.Steps[at.i].Targets[at.t].Actions[at.a]
		if ap.State == stateWaiting {
			r.unasked[at], *ap = *ap, before
			swapped = append(swapped, at)
		}
	}
	b := r.progress.marshal()
	for _, at := range swapped {
		ap := &r.progress.Steps[at.i].Targets[at.t].Actions[at.a]
		r.unasked[at], *ap = *ap, r.unasked[at]
	}
	return b
}

// parking reports whether an action waits for a person.
func (r *run) parking() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting
}

// park creates the interruptions the run needs answered and parks the
// task in the same unit of work; any node resumes it once one is answered.
func (r *run) park(ctx context.Context) error {
	r.mu.Lock()
	pending := r.interrupts
	checkpoint := r.progress.marshal()
	r.mu.Unlock()
	ids := make([]string, len(pending))
	r.mu.Lock()
	release := !r.blocking
	r.mu.Unlock()
	err := r.x.Park(ctx, checkpoint, release, func(ctx context.Context, tx *collection.Tx) error {
		for i := range pending {
			in := pending[i]
			if err := resources.Interruptions.Insert(ctx, tx, &in); err != nil {
				return err
			}
			ids[i] = in.ID
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.x.Log.Logf(tasklog.Info, "The deployment waits for %s (%s).", plural(len(ids), "an answer", "answers"), strings.Join(ids, ", "))
	return tasks.ErrParked
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// end writes how the deployment ended into its document (the lifecycle's
// progression reads it) and returns err, which fails the task.
func (r *run) end(ctx context.Context, err error) error {
	state := cuttle.TaskSuccess
	if err == nil && r.progress.Failed {
		err = errors.New("The deployment failed.")
	}
	if err != nil {
		state = cuttle.TaskFailed
		r.x.Log.Logf(tasklog.Error, "%s", r.mask(err.Error()))
	} else {
		r.x.Log.Logf(tasklog.Info, "Deployed %s release %s to %s.", r.project.Name, r.release.Version, r.env.Name)
	}
	werr := r.cfg.Store.Update(ctx, func(tx *collection.Tx) error {
		d, err := resources.Deployments.GetForUpdate(ctx, tx, r.deployment.ID)
		if err != nil {
			return err
		}
		d.State, d.FailureEncountered = state, state != cuttle.TaskSuccess
		d.DeployedToMachineIds = r.deployedTo()
		return resources.Deployments.Update(ctx, tx, &d)
	})
	if werr != nil {
		return fmt.Errorf("recording how the deployment ended: %w", werr)
	}
	return err
}

// deployedTo returns the machines an action succeeded on.
func (r *run) deployedTo() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, sp := range r.progress.Steps {
		for _, tp := range sp.Targets {
			id := cuttle.FormatID(cuttle.MachineIDPrefix, tp.MachineID)
			if tp.MachineID == 0 || containsFold(out, id) {
				continue
			}
			for _, ap := range tp.Actions {
				if ap.State == stateSucceeded {
					out = append(out, id)
					break
				}
			}
		}
	}
	return out
}

// runSteps runs the steps in order, a step that starts with the previous
// one alongside it, until one waits for a person.
func (r *run) runSteps(ctx context.Context) error {
	steps := r.process.Steps
	for i := 0; i < len(steps); {
		j := i + 1
		for j < len(steps) && steps[j].StartTrigger == cuttle.StartWithPrevious {
			j++
		}
		var wg sync.WaitGroup
		errs := make([]error, j-i)
		for k := i; k < j; k++ {
			wg.Go(func() { errs[k-i] = r.runStep(ctx, k) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if r.parking() {
			return nil
		}
		i = j
	}
	return nil
}

// runStep runs step i on its targets, at most its window at once, each
// target running the step's actions in order; it skips the step when its
// condition says so.
func (r *run) runStep(ctx context.Context, i int) error {
	s := r.process.Steps[i]
	r.mu.Lock()
	sp := r.progress.Steps[i] // its slices are shared: read them under r.mu
	done, failedSoFar := finished(sp), r.progress.Failed
	r.mu.Unlock()
	if sp.Skipped != "" || done {
		return nil
	}
	if run, why := r.condition(s, failedSoFar); !run {
		r.x.Log.Logf(tasklog.Info, "Skipping the step %s: %s", s.Name, why)
		r.mu.Lock()
		for t := range r.progress.Steps[i].Targets {
			for a := range r.progress.Steps[i].Targets[t].Actions {
				if ap := &r.progress.Steps[i].Targets[t].Actions[a]; ap.State == statePending {
					before := *ap
					*ap = actionProgress{State: stateSkipped, Note: why}
					ap.settle(before, time.Now().UTC())
				}
			}
		}
		r.mu.Unlock()
		return r.save(ctx)
	}
	window := r.window(s)
	r.x.Log.Logf(tasklog.Info, "Step %s: %d target(s), %d at once.", s.Name, len(sp.Targets), window)
	sem := make(chan struct{}, window)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for t := range sp.Targets {
		if ctx.Err() != nil || r.stopStarting(i) {
			break
		}
		sem <- struct{}{}
		if r.stopStarting(i) { // a target failed or waits while this one waited for a place
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.runTarget(ctx, i, t); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// finished reports whether every action of the step has an outcome.
func finished(sp stepProgress) bool {
	for _, tp := range sp.Targets {
		for _, ap := range tp.Actions {
			if ap.State == statePending || ap.State == stateWaiting || ap.State == stateRunning {
				return false
			}
		}
	}
	return true
}

// stopStarting reports whether step i starts no more targets: one of its
// targets failed, or an action waits for a person.
func (r *run) stopStarting(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting {
		return true
	}
	for _, tp := range r.progress.Steps[i].Targets {
		for _, ap := range tp.Actions {
			if ap.State == stateFailed {
				return true
			}
		}
	}
	return false
}

// condition reports whether step s runs, and if not, why.
func (r *run) condition(s cuttle.DeploymentStep, failedSoFar bool) (bool, string) {
	switch s.Condition {
	case cuttle.StepFailure:
		return failedSoFar, "it runs only when the deployment has failed, and it has not."
	case cuttle.StepAlways:
		return true, ""
	case cuttle.StepVariable:
		expr := cuttle.Prop(s.Properties, cuttle.PropConditionVariable)
		v, err := variables.Evaluate(expr, r.lookup(s, cuttle.DeploymentAction{}, server))
		if err != nil {
			return false, fmt.Sprintf("its condition %q does not parse (%v).", expr, err)
		}
		if !truthy(v) {
			return false, fmt.Sprintf("its condition %q is false.", expr)
		}
		return true, ""
	default:
		return !failedSoFar, "an earlier step failed."
	}
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "no", "false":
		return false
	}
	return true
}

// window returns how many targets of the step run at once.
func (r *run) window(s cuttle.DeploymentStep) int {
	w := strings.TrimSpace(cuttle.Prop(s.Properties, cuttle.PropMaxParallelism))
	if w == "" {
		return DefaultWindow
	}
	if v, err := variables.Evaluate(w, r.lookup(s, cuttle.DeploymentAction{}, server)); err == nil {
		w = v
	}
	if n, err := strconv.Atoi(strings.TrimSpace(w)); err == nil && n > 0 {
		return n
	}
	r.x.Log.Logf(tasklog.Warning, "The step %s's window %q is not a number: %d targets at once.", s.Name, w, DefaultWindow)
	return DefaultWindow
}

// targetOf returns the target of a machine id of the plan (0: the server).
func (r *run) targetOf(id int64) target {
	if id == 0 {
		return server
	}
	return r.progress.Targets[strconv.FormatInt(id, 10)]
}

// runTarget runs the actions of step i on its target t in order, from the
// first without an outcome, until one fails or waits for a person.
func (r *run) runTarget(ctx context.Context, i, t int) error {
	s := r.process.Steps[i]
	for a := range s.Actions {
		r.mu.Lock()
		ap := r.progress.Steps[i].Targets[t].Actions[a]
		r.mu.Unlock()
		switch ap.State {
		case stateSucceeded, stateSkipped, stateExcluded:
			continue
		case stateFailed:
			return nil
		}
		ok, err := r.runAction(ctx, i, t, a)
		if err != nil || !ok {
			return err
		}
	}
	return nil
}

// set changes action a of target t of step i and saves the progress.
func (r *run) set(ctx context.Context, i, t, a int, change func(ap *actionProgress)) error {
	r.mu.Lock()
	ap := &r.progress.Steps[i].Targets[t].Actions[a]
	before := *ap
	change(ap)
	ap.settle(before, time.Now().UTC())
	if ap.State == stateFailed {
		r.progress.Failed = true
	}
	r.mu.Unlock()
	return r.save(ctx)
}

// block names the log block of a step on a target.
func (r *run) block(s cuttle.DeploymentStep, t target) string {
	return s.Name + " / " + t.Name
}

// runAction runs action a of step i on target t and records its outcome.
// ok is false when the target goes no further: the action failed, or
// waits for a person. err is for what ends the run (a lost ownership, a
// cancel).
func (r *run) runAction(ctx context.Context, i, t, a int) (ok bool, err error) {
	s := r.process.Steps[i]
	act := s.Actions[a]
	r.mu.Lock()
	tp := r.progress.Steps[i].Targets[t]
	ap := tp.Actions[a]
	r.mu.Unlock()
	tg := r.targetOf(tp.MachineID)
	if ap.State == stateWaiting {
		return r.answered(ctx, i, t, a)
	}
	if act.ActionType == cuttle.ActionManual {
		return false, r.interrupt(i, t, a, cuttle.Interruption{
			Title: act.Name, Type: cuttle.InterruptionManual,
			Form:               cuttle.ManualForm(cuttle.Prop(act.Properties, cuttle.PropManualInstructions)),
			ResponsibleTeamIds: splitList(cuttle.Prop(act.Properties, cuttle.PropManualTeams)),
		})
	}
	if ap.State == stateRunning && act.RunsOnServer() {
		r.x.Log.Write(tasklog.Line{Category: tasklog.Warning, Block: r.block(s, tg),
			Text: fmt.Sprintf("%s was running on node %s, which stopped before it finished: it runs again.", act.Name, ap.Node)})
	}
	if err := r.set(ctx, i, t, a, func(ap *actionProgress) { ap.State, ap.Node = stateRunning, r.x.Node }); err != nil {
		return false, err
	}
	var outcome error
	output := newProduced()
	if act.RunsOnServer() {
		outcome = r.runOnServer(ctx, s, act, tg, ap.Attempt, output)
	} else {
		outcome = r.runOnAgent(ctx, i, a, s, act, tg, ap.Attempt, output)
	}
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	var lost notFollowed
	if errors.As(outcome, &lost) {
		return false, lost.err // no outcome to record: the run ends
	}
	if outcome != nil && !act.RunsOnServer() && cuttle.IsKind(outcome, cuttle.KindUnavailable) && r.skipsUnavailable(tg.Roles) {
		r.x.Log.Write(tasklog.Line{Category: tasklog.Warning, Block: r.block(s, tg), Text: fmt.Sprintf(
			"%s is unavailable (%v); the project skips unavailable targets: it is left out of the rest of the deployment.", tg.Name, outcome)})
		return false, r.leaveOut(ctx, i, t, a, stateSkipped, "unavailable: "+r.mask(outcome.Error()), "")
	}
	if outcome != nil {
		return false, r.failed(ctx, i, t, a, outcome)
	}
	sealed, err := sealOutputs(r.cfg.MasterKey, output.secret)
	if err != nil {
		return false, err
	}
	return true, r.set(ctx, i, t, a, func(ap *actionProgress) {
		*ap = actionProgress{State: stateSucceeded, Attempt: ap.Attempt, Output: output.plain, Sealed: sealed, secret: output.secret}
	})
}

func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// failed records a failed action: under guided failure it waits for a
// person's guidance; otherwise it fails, and the deployment with it.
func (r *run) failed(ctx context.Context, i, t, a int, outcome error) error {
	s := r.process.Steps[i]
	act := s.Actions[a]
	r.mu.Lock()
	tg := r.targetOf(r.progress.Steps[i].Targets[t].MachineID)
	r.mu.Unlock()
	r.x.Log.Write(tasklog.Line{Category: tasklog.Error, Block: r.block(s, tg), Text: fmt.Sprintf("%s failed on %s: %v", act.Name, tg.Name, outcome)})
	if r.deployment.UseGuidedFailure {
		return r.interrupt(i, t, a, cuttle.Interruption{
			Title: fmt.Sprintf("%s failed on %s", act.Name, tg.Name), Type: cuttle.InterruptionGuidedFailure,
			Form:               cuttle.GuidedFailureForm(cuttle.GuidedFailureChoices(act.IsRequired, tg.ID == 0)),
			ResponsibleTeamIds: []string{},
		})
	}
	note := r.mask(outcome.Error()) // before set, which holds r.mu
	return r.set(ctx, i, t, a, func(ap *actionProgress) { ap.State, ap.Note = stateFailed, note })
}

// interrupt makes action a of target t of step i wait for a person: the
// interruption is created, and the task parked, once the run's other
// work has settled (park).
func (r *run) interrupt(i, t, a int, in cuttle.Interruption) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	in.SpaceID = r.deployment.SpaceID
	in.Created, in.IsPending = time.Now().UTC(), true
	in.TaskId = r.deployment.TaskId
	in.CorrelationId = fmt.Sprintf("%s/%d/%d/%d", r.deployment.TaskId, i, t, a)
	in.RelatedDocumentIds = []string{r.deployment.ID, r.deployment.TaskId, r.project.ID, r.env.ID}
	r.interrupts = append(r.interrupts, in)
	r.blocking = r.blocking || blocks(r.process.Steps[i].Actions[a], in.Type)
	ap := &r.progress.Steps[i].Targets[t].Actions[a]
	if r.unasked == nil {
		r.unasked = map[actionAt]actionProgress{}
	}
	r.unasked[actionAt{i, t, a}] = *ap
	if ap.State == statePending { // a manual intervention starts by waiting
		now := time.Now().UTC()
		ap.Started = &now
	}
	ap.State = stateWaiting
	r.waiting = true
	// The interruption's id is known once it is inserted: the checkpoint
	// names the wait by its correlation id, which answered reads.
	return nil
}

// blocks reports whether a wait of this type for act keeps the next
// deployment of the project to the environment from running meanwhile: a
// guided failure does; a manual intervention only if it blocks concurrent
// deployments (Octopus.Action.Manual.BlockConcurrentDeployments).
func blocks(act cuttle.DeploymentAction, interruptionType string) bool {
	if interruptionType != cuttle.InterruptionManual {
		return true
	}
	return strings.EqualFold(cuttle.Prop(act.Properties, cuttle.PropManualBlock), "True")
}

// answered applies a person's answer to action a of target t of step i,
// found by its correlation id; an answer not given yet keeps it waiting.
func (r *run) answered(ctx context.Context, i, t, a int) (bool, error) {
	correlation := fmt.Sprintf("%s/%d/%d/%d", r.deployment.TaskId, i, t, a)
	var in cuttle.Interruption
	found := false
	err := r.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		list, _, err := resources.Interruptions.List(ctx, tx, collection.Query{Space: r.deployment.SpaceID, Take: -1,
			Where: map[string]any{"task_id": r.deployment.TaskId}})
		for _, c := range list {
			if c.CorrelationId == correlation {
				in, found = c, true // newest first: the last asked
				break
			}
		}
		return err
	})
	if err != nil {
		return false, err
	}
	if !found {
		return false, fmt.Errorf("the interruption the action %s waited on is gone", r.process.Steps[i].Actions[a].Name)
	}
	if in.IsPending {
		r.mu.Lock()
		r.waiting = true // still waiting: park again, creating nothing
		r.blocking = r.blocking || blocks(r.process.Steps[i].Actions[a], in.Type)
		r.mu.Unlock()
		return false, nil
	}
	notes, by := in.Form.Values["Notes"], in.AnsweredBy
	act := r.process.Steps[i].Actions[a]
	switch answer := in.Form.Values["Result"] + in.Form.Values["Guidance"]; answer {
	case cuttle.AnswerProceed:
		r.x.Log.Logf(tasklog.Info, "%s: %s proceeded. %s", act.Name, by, notes)
		return true, r.set(ctx, i, t, a, func(ap *actionProgress) {
			*ap = actionProgress{State: stateSucceeded, Interruption: in.ID, Output: map[string]string{
				"Manual.Notes": notes, "Manual.Approved": "True", "Manual.ResponsibleUser.Username": by}}
		})
	case cuttle.AnswerAbort:
		r.x.Log.Logf(tasklog.Error, "%s: %s aborted the deployment. %s", act.Name, by, notes)
		return false, r.set(ctx, i, t, a, func(ap *actionProgress) {
			*ap = actionProgress{State: stateFailed, Interruption: in.ID, Note: "aborted by " + by + ": " + notes,
				Output: map[string]string{"Manual.Notes": notes, "Manual.Approved": "False", "Manual.ResponsibleUser.Username": by}}
		})
	case cuttle.GuidanceRetry:
		r.x.Log.Logf(tasklog.Info, "%s: %s asked to retry. %s", act.Name, by, notes)
		if err := r.set(ctx, i, t, a, func(ap *actionProgress) {
			*ap = actionProgress{State: statePending, Attempt: ap.Attempt + 1, Interruption: in.ID}
		}); err != nil {
			return false, err
		}
		return r.runAction(ctx, i, t, a)
	case cuttle.GuidanceIgnore:
		r.x.Log.Logf(tasklog.Warning, "%s: %s chose to ignore the failure. %s", act.Name, by, notes)
		return true, r.set(ctx, i, t, a, func(ap *actionProgress) {
			*ap = actionProgress{State: stateSucceeded, Attempt: ap.Attempt, Interruption: in.ID, Note: "failure ignored by " + by}
		})
	case cuttle.GuidanceExclude:
		r.x.Log.Logf(tasklog.Warning, "%s: %s excluded the target from the rest of the deployment. %s", act.Name, by, notes)
		return false, r.leaveOut(ctx, i, t, a, stateExcluded, "excluded by "+by, in.ID)
	default: // Fail
		r.x.Log.Logf(tasklog.Error, "%s: %s chose to fail the deployment. %s", act.Name, by, notes)
		return false, r.set(ctx, i, t, a, func(ap *actionProgress) {
			*ap = actionProgress{State: stateFailed, Attempt: ap.Attempt, Interruption: in.ID, Note: "failed by " + by}
		})
	}
}

// leaveOut takes the machine of target t of step i out of the rest of the
// deployment: this action, and every later action on it that has not
// started (its later ones, those of later steps), get state (Excluded by a
// person, Skipped when unavailable) and note; interruption names the
// answer that chose it, if one did. An action of a step running alongside
// that has started on the machine, or waits for a person, goes on: its
// command or question is in flight.
func (r *run) leaveOut(ctx context.Context, i, t, a int, state, note, interruption string) error {
	r.mu.Lock()
	machine := r.progress.Steps[i].Targets[t].MachineID
	for si := i; si < len(r.progress.Steps); si++ {
		for ti := range r.progress.Steps[si].Targets {
			if r.progress.Steps[si].Targets[ti].MachineID != machine {
				continue
			}
			for ai := range r.progress.Steps[si].Targets[ti].Actions {
				ap := &r.progress.Steps[si].Targets[ti].Actions[ai]
				if (si == i && ti == t && ai == a) || ((si > i || ai > a) && ap.State == statePending) {
					before := *ap
					*ap = actionProgress{State: state, Note: note}
					ap.settle(before, time.Now().UTC())
				}
			}
		}
	}
	r.progress.Steps[i].Targets[t].Actions[a].Interruption = interruption
	r.mu.Unlock()
	return r.save(ctx)
}

// onLine parses a script's service messages: a line that sets an output
// variable sets it in output, masks its value when sensitive, and is
// logged as a note of it instead.
func (r *run) onLine(output *produced) func(l *tasklog.Line) bool {
	return func(l *tasklog.Line) bool {
		if path, name, ok := parseArtifactMessage(l.Text); ok {
			output.declare(path, name)
			return true
		}
		name, value, sensitive, ok := parseServiceMessage(r.cfg.MasterKey, l.Text)
		if !ok {
			return true
		}
		if sensitive {
			r.addSensitive(value)
		}
		output.set(name, value, sensitive)
		l.Category, l.Text = tasklog.Verbose, fmt.Sprintf("Output variable %s set.", name)
		return true
	}
}

// script returns the body an action runs: its preamble of variable
// functions and its body with its #{...} references replaced. extra
// variables (the folders of the packages it references) come first.
func (r *run) script(s cuttle.DeploymentStep, act cuttle.DeploymentAction, t target, extra map[string]string) (body, syntax string, err error) {
	get := r.lookup(s, act, t)
	names := r.names(s, act, t)
	if len(extra) > 0 {
		base := get
		get = func(name string) (string, bool) {
			for k, v := range extra {
				if strings.EqualFold(k, name) {
					return v, true
				}
			}
			return base(name)
		}
		for k := range extra {
			names = append(names, k)
		}
		slices.Sort(names)
	}
	syntax = cuttle.Prop(act.Properties, cuttle.PropScriptSyntax)
	body, err = variables.Evaluate(cuttle.Prop(act.Properties, cuttle.PropScriptBody), get)
	if err != nil {
		return "", "", fmt.Errorf("the script of %s does not parse: %v", act.Name, err)
	}
	return variables.Preamble(syntax, names, get) + body, syntax, nil
}

// runOnServer runs a script action on this node, with the variables of its
// target t (seed 003's scripts before and after each target). A script
// that was running on a node that died runs again, and the log says so.
func (r *run) runOnServer(ctx context.Context, s cuttle.DeploymentStep, act cuttle.DeploymentAction, t target, attempt int, output *produced) error {
	body, syntax, err := r.script(s, act, t, nil)
	if err != nil {
		return err
	}
	block := r.block(s, t)
	r.x.Log.Write(tasklog.Line{Category: tasklog.Info, Block: block, Text: fmt.Sprintf("Running %s on node %s for %s.", act.Name, r.x.Node, t.Name)})
	code, err := r.x.RunScript(ctx, tasks.NodeScript{Body: body, Syntax: syntax, Block: block, Line: r.onLine(output)})
	if err != nil {
		return err
	}
	r.keepArtifacts(ctx, block, output)
	if code != 0 {
		return fmt.Errorf("the script exited with code %d", code)
	}
	return nil
}

// payloadPurpose names the master key's use for sealed command payloads.
const payloadPurpose = cuttle.SealedPayloadPurpose

// runOnAgent runs a script or package action on target t's agent.
func (r *run) runOnAgent(ctx context.Context, i, a int, s cuttle.DeploymentStep, act cuttle.DeploymentAction, t target, attempt int, output *produced) error {
	if act.ActionType == cuttle.ActionPackage {
		_, err := r.acquire(ctx, i, a, s, act, t, attempt, output, act.PrimaryPackage(), false)
		return err
	}
	extra, err := r.referencedPackages(ctx, i, a, s, act, t, attempt, output)
	if err != nil {
		return err
	}
	body, syntax, err := r.script(s, act, t, extra)
	if err != nil {
		return err
	}
	r.mu.Lock()
	mask := slices.Clone(r.sensitive)
	r.mu.Unlock()
	cmd, err := r.sendCommand(ctx, i, a, s, act, t, attempt, "", cuttle.CommandScript, scriptPayload{Body: body, Syntax: syntax, Mask: mask}, output)
	if err != nil {
		return err
	}
	if cmd.State != cuttle.CommandSuccess {
		if cmd.Error != "" {
			return errors.New(cmd.Error)
		}
		return fmt.Errorf("the script exited with code %d", cmd.ExitCode)
	}
	return nil
}

// sendCommand runs a command of an action on target t's agent and returns
// it once it ended. The command's key names the step, action, machine,
// attempt and part (for an action of several commands, such as the
// packages a script references), so that a node taking the deployment over
// finds the command in flight and follows it, never sending it twice; its
// payload is sealed, since it holds the values. An error is the command's
// failure to run, or notFollowed.
func (r *run) sendCommand(ctx context.Context, i, a int, s cuttle.DeploymentStep, act cuttle.DeploymentAction, t target, attempt int, part string,
	kind cuttle.CommandKind, payload any, output *produced) (cuttle.Command, error) {
	plain, err := json.Marshal(payload)
	if err != nil {
		return cuttle.Command{}, err
	}
	sealed, err := r.cfg.MasterKey.Seal(payloadPurpose, plain)
	if err != nil {
		return cuttle.Command{}, err
	}
	key := fmt.Sprintf("deploy/%d/%d/%s/%d", i, a, cuttle.FormatID(cuttle.MachineIDPrefix, t.ID), attempt)
	if part != "" {
		key += "/" + part
	}
	m := cuttle.Machine{ID: t.ID, Name: t.Name, Roles: t.Roles, URI: t.URI, Style: cuttle.Polling}
	if ms, err := r.cfg.Store.Machines(ctx, cuttle.MachineQuery{IDs: []int64{t.ID}}); err == nil && len(ms) == 1 {
		m = ms[0]
	} else if err == nil {
		return cuttle.Command{}, fmt.Errorf("the deployment target %s no longer exists", t.Name)
	}
	cmd, err := r.x.RunCommand(ctx, m, key, kind, cuttle.SealedPayload{Sealed: base64.StdEncoding.EncodeToString(sealed)},
		tasks.CommandOptions{Block: r.block(s, t), Line: r.onLine(output)})
	if err != nil && !cmd.State.Final() && !cuttle.IsKind(err, cuttle.KindUnavailable) {
		return cmd, notFollowed{fmt.Errorf("following %s on %s failed: %w", act.Name, t.Name, err)}
	}
	return cmd, err
}

// notFollowed is what runOnAgent returns when this node could not queue or
// follow the command (its output could not be logged, say), rather than the
// command's outcome: the command may still run, so the action gets no
// outcome (a Retry of a failure recorded so would run it a second time
// beside the first); the run ends, and with it the task, which stops its
// commands.
type notFollowed struct{ err error }

func (e notFollowed) Error() string { return e.err.Error() }
