package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// Why a task's run was stopped (the cause of its context).
var (
	errCanceled = errors.New("the task was cancelled")
	errLost     = errors.New("this node no longer owns the task")
	errStopping = errors.New("the node is stopping")
)

// spreadDelay is how long a node that is full waits, when told of a new
// task, before it claims: a node with a fraction f of its cap in use waits
// f times this, so the least loaded node usually claims first.
const spreadDelay = 5 * time.Millisecond

// finishBatch bounds how many results one write ends.
const finishBatch = 256

// finishLinger bounds how long the finisher, holding a result, waits for
// the results of other runs still executing on this node, so that tasks
// claimed together are finished together: one write instead of two, and
// the next claim fills the node's room at once.
const finishLinger = time.Millisecond

// Config configures an Executor.
type Config struct {
	Store  store.Store
	Member *cluster.Member
	Logs   tasklog.Store
	Kinds  Kinds
	// Agents runs commands on deployment targets; nil: tasks that need
	// agents fail.
	Agents Agents
	// Limits bound the output of commands and scripts (CommandOutputBytes,
	// CommandOutputLines) and how long finished commands are kept
	// (CommandRetention); zero fields take their defaults.
	Limits cuttle.Limits
	Logger *slog.Logger // default slog.Default()
}

// Executor claims tasks for this node within its cap and runs them,
// fencing every write with the task's ownership; when this node leads, it
// also sweeps the queue (expiry, takeover) and queues the scheduled jobs.
// Create it with New before the Member starts (it registers for
// notifications), then Start it.
type Executor struct {
	store  store.Store
	member *cluster.Member
	logs   tasklog.Store
	kinds  Kinds
	agents Agents
	limits cuttle.Limits
	log    *slog.Logger

	wake     chan struct{} // claim now: this node has room again
	notified chan struct{} // claim soon: a task was queued somewhere
	check    chan struct{} // reconcile with the database now
	leading  chan struct{} // this node started leading: sweep now
	results  chan result

	// unreported counts the runs started whose result has not yet reached
	// the finisher.
	unreported atomic.Int64

	mu       sync.Mutex
	runs     map[int64]*run // claimed and not yet finished in the database
	stopping bool

	cancel    context.CancelFunc
	runsWG    sync.WaitGroup
	loopsWG   sync.WaitGroup
	finisherD chan struct{}
}

// run is one task this node owns.
type run struct {
	ref      cuttle.TaskRef
	cancel   context.CancelCauseFunc
	finished bool // its result waits to be written
	// confirmed is when (monotonic, as time since processStart) the
	// database last confirmed this node's ownership: the start of the claim
	// or of a reconcile that found it. The run writes its log only while
	// that is within the node's current unbroken run of Alive.
	confirmed atomic.Int64
}

// processStart anchors the monotonic times of runs.
var processStart = time.Now()

func (r *run) confirm(at time.Time) { r.confirmed.Store(int64(at.Sub(processStart))) }

// mayWrite reports whether the run may still act as the task's owner: the
// node is Alive and has been since the database last confirmed the run's
// ownership (a node resumed after a pause must not write before its
// monitor learns whether it lost the task).
func (r *run) mayWrite(st *cluster.State) bool {
	return st.Alive() && r.confirmed.Load() >= int64(st.AliveSince().Sub(processStart))
}

type result struct {
	cuttle.TaskResult
}

// New returns an Executor and registers its notification handlers on the member.
func New(cfg Config) *Executor {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Executor{
		store: cfg.Store, member: cfg.Member, logs: cfg.Logs, kinds: cfg.Kinds, agents: cfg.Agents, limits: cfg.Limits.WithDefaults(), log: log,
		wake: make(chan struct{}, 1), notified: make(chan struct{}, 1), check: make(chan struct{}, 1), leading: make(chan struct{}, 1), results: make(chan result, finishBatch),
		runs: map[int64]*run{},
	}
	cfg.Member.Handle(store.ChannelTasks, func(string) { signal(e.notified) })
	cfg.Member.OnLeading(func() { signal(e.leading) })
	cfg.Member.Handle(store.ChannelCancel, func(payload string) {
		if payload == "" {
			signal(e.check)
			return
		}
		if id, err := cuttle.ParseID(cuttle.TaskIDPrefix, payload); err == nil {
			e.cancelRun(id, errCanceled)
		}
	})
	return e
}

// outputBound is the bound of one command's or script's output.
func (e *Executor) outputBound() cuttle.OutputBound {
	return cuttle.OutputBound{Lines: e.limits.CommandOutputLines, Bytes: e.limits.CommandOutputBytes}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Wake makes the executor try to claim at once.
func (e *Executor) Wake() { signal(e.wake) }

// Running returns the number of tasks this node runs or is finishing.
func (e *Executor) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.runs)
}

// Start starts claiming and, while this node leads, sweeping.
func (e *Executor) Start(ctx context.Context) {
	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.finisherD = make(chan struct{})
	go e.finisher()
	for _, loop := range []func(context.Context){e.claimer, e.monitor, e.leader} {
		e.loopsWG.Add(1)
		go func() {
			defer e.loopsWG.Done()
			loop(ctx)
		}()
	}
}

// Stop stops claiming, lets running tasks finish within ctx, then stops the
// rest: resumable ones are handed back to the queue, others end Failed.
// It returns once every result is written or ctx has ended.
func (e *Executor) Stop(ctx context.Context) {
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.runsWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		e.mu.Lock()
		for _, r := range e.runs {
			r.cancel(errStopping)
		}
		e.mu.Unlock()
		<-done
	}
	e.cancel()
	e.loopsWG.Wait()
	close(e.results)
	select {
	case <-e.finisherD:
	case <-ctx.Done():
		e.log.Warn("stopping before every task result was written; the cluster will take those tasks over")
	}
}

// claimer claims tasks when woken and at every heartbeat.
func (e *Executor) claimer(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		spread := false
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.wake:
		case <-e.notified:
			spread = true
		}
		e.claim(ctx, spread)
		timer.Reset(e.member.State().Settings.HeartbeatFrequency)
	}
}

// claim claims as many tasks as the node has room for. With spread (a task
// was queued somewhere), a node that is partly busy first waits in
// proportion to how busy it is, so that the least loaded node claims first.
func (e *Executor) claim(ctx context.Context, spread bool) {
	st := e.member.State()
	taskCap := st.Node.MaxConcurrentTasks
	if !st.Alive() || st.Node.IsInMaintenanceMode || taskCap <= 0 {
		return
	}
	e.mu.Lock()
	busy, stopping := len(e.runs), e.stopping
	e.mu.Unlock()
	room := taskCap - busy
	if room <= 0 || stopping {
		return
	}
	if spread && busy > 0 {
		time.Sleep(time.Duration(float64(spreadDelay) * float64(busy) / float64(taskCap)))
	}
	// Hold the lock across the claim so that the monitor never sees a task
	// this node owns in the database but does not know about yet.
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopping {
		return
	}
	claimCtx, cancel := context.WithTimeout(ctx, max(st.Settings.HeartbeatFrequency, time.Second))
	defer cancel()
	claimStart := time.Now()
	claimed, err := e.store.ClaimTasks(claimCtx, st.Node.ID, room)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("claiming tasks failed", "err", err)
		}
		return
	}
	for _, t := range claimed {
		e.startLocked(ctx, t, claimStart)
	}
}

// startLocked runs a task claimed by a claim that started at claimed, on
// its own goroutine. e.mu is held.
func (e *Executor) startLocked(ctx context.Context, t cuttle.Task, claimed time.Time) {
	runCtx, cancel := context.WithCancelCause(ctx)
	ref := cuttle.TaskRef{ID: t.ID, Owner: t.OwnerID, Epoch: t.Epoch, State: t.State}
	r := &run{ref: ref, cancel: cancel}
	r.confirm(claimed)
	e.runs[t.ID] = r
	e.runsWG.Add(1)
	e.unreported.Add(1)
	go func() {
		defer e.runsWG.Done()
		defer e.unreported.Add(-1) // after the result is in the channel
		defer cancel(nil)
		e.execute(runCtx, t, r)
	}()
}

// execute runs one task and hands its result to the finisher.
func (e *Executor) execute(ctx context.Context, t cuttle.Task, r *run) {
	ref := r.ref
	st := e.member.State()
	w := e.logs.Writer(t.ID, t.Epoch, func() bool { return e.mayLog(ctx, r) })
	res := cuttle.TaskResult{TaskRef: ref, State: cuttle.TaskSuccess}
	k, ok := e.kinds[t.Name]
	var runErr error
	if !ok {
		runErr = fmt.Errorf("this node (version %s) does not know tasks named %s", cuttle.Version, t.Name)
	} else {
		runErr = k.Run(ctx, &Execution{Task: t, Log: w, Node: st.Node.Name, ref: ref, e: e, run: r, ctx: ctx})
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(runErr, ErrParked):
		// Parked in the database already (Park): no result to write, and
		// one would be fenced out anyway.
		w.Close()
		e.log.Info("the task waits for a person", "task", cuttle.FormatID(cuttle.TaskIDPrefix, t.ID), "epoch", t.Epoch)
		e.forget(t.ID, ref.Epoch)
		return
	case cause == errLost:
		w.Close()
		e.log.Warn("stopped a task this node no longer owns", "task", cuttle.FormatID(cuttle.TaskIDPrefix, t.ID), "epoch", t.Epoch)
		e.forget(t.ID, ref.Epoch)
		return
	case cause == errCanceled:
		res.State = cuttle.TaskCanceled
		w.Logf(tasklog.Info, "The task was cancelled.")
	case cause == errStopping && ok && t.Resumable:
		res.State = cuttle.TaskQueued
		w.Logf(tasklog.Info, "Node %s is stopping; the task goes back to the queue to resume on another node.", st.Node.Name)
	case cause == errStopping:
		res.State, res.ErrorMessage = cuttle.TaskFailed, fmt.Sprintf("Node %s stopped before the task finished.", st.Node.Name)
		w.Logf(tasklog.Error, "%s", res.ErrorMessage)
	case runErr != nil:
		res.State, res.ErrorMessage = cuttle.TaskFailed, runErr.Error()
		w.Logf(tasklog.Error, "%s", res.ErrorMessage)
	}
	res.HasWarningsOrErrors = w.HasWarningsOrErrors()
	if err := w.Close(); err != nil {
		e.log.Warn("closing a task log failed", "task", cuttle.FormatID(cuttle.TaskIDPrefix, t.ID), "err", err)
	}
	e.finish(res)
}

// mayLog reports whether run r may write its task's log now. After a break
// in the node's aliveness it first waits, up to a heartbeat and a second,
// for the monitor to confirm or deny the run's ownership, so that a line is
// neither written by a node that lost the task nor dropped by one that kept
// it.
func (e *Executor) mayLog(ctx context.Context, r *run) bool {
	var deadline time.Time
	for {
		st := e.member.State()
		if context.Cause(ctx) == errLost || !st.Alive() {
			return false
		}
		if r.mayWrite(st) {
			return true
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(st.Settings.HeartbeatFrequency + time.Second)
		} else if time.Now().After(deadline) {
			return false
		}
		signal(e.check)
		time.Sleep(5 * time.Millisecond)
	}
}

// finish queues a result for the finisher, marking the run finished.
func (e *Executor) finish(res cuttle.TaskResult) {
	e.mu.Lock()
	if r, ok := e.runs[res.ID]; ok && r.ref.Epoch == res.Epoch {
		r.finished = true
	}
	e.mu.Unlock()
	e.results <- result{res}
}

// forget drops a run of the given epoch and wakes the claimer: there is room.
func (e *Executor) forget(id, epoch int64) {
	e.mu.Lock()
	if r, ok := e.runs[id]; ok && r.ref.Epoch == epoch {
		delete(e.runs, id)
	}
	e.mu.Unlock()
	e.Wake()
}

// cancelRun stops a running task with the given cause.
func (e *Executor) cancelRun(id int64, cause error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.runs[id]; ok && !r.finished {
		r.cancel(cause)
	}
}

// finisher writes results in batches, retrying while the database is away.
// A batch takes every result waiting, and while runs are still executing,
// the results that arrive within finishLinger.
func (e *Executor) finisher() {
	defer close(e.finisherD)
	linger := time.NewTimer(0)
	for res := range e.results {
		batch := []cuttle.TaskResult{res.TaskResult}
		lingering := false
	gather:
		for len(batch) < finishBatch {
			select {
			case more, ok := <-e.results:
				if !ok {
					break gather
				}
				batch = append(batch, more.TaskResult)
				continue
			default:
			}
			if e.unreported.Load() == 0 {
				break
			}
			if !lingering {
				linger.Reset(finishLinger)
				lingering = true
			}
			select {
			case more, ok := <-e.results:
				if !ok {
					break gather
				}
				batch = append(batch, more.TaskResult)
			case <-linger.C:
				break gather
			}
		}
		linger.Stop()
		e.write(batch)
	}
}

func (e *Executor) write(batch []cuttle.TaskResult) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lost, err := e.store.FinishTasks(ctx, batch)
		cancel()
		if err == nil {
			for _, id := range lost {
				// Taken over by another node, or this result was written by an
				// earlier attempt that failed here but committed there.
				e.log.Warn("a task result was not recorded: the task had moved on (taken over, or an earlier attempt of this write committed)",
					"task", cuttle.FormatID(cuttle.TaskIDPrefix, id))
			}
			for _, r := range batch {
				e.forget(r.ID, r.Epoch)
			}
			return
		}
		if !cuttle.IsKind(err, cuttle.KindUnavailable) {
			// Not a passing fault: drop the results. The tasks stay owned by
			// this node in the database, so the monitor ends them as orphans.
			e.log.Error("writing task results failed", "tasks", len(batch), "err", err)
			for _, r := range batch {
				e.forget(r.ID, r.Epoch)
			}
			return
		}
		if attempt == 0 || attempt%20 == 0 {
			e.log.Warn("writing task results failed; retrying", "tasks", len(batch), "err", err)
		}
		time.Sleep(min(time.Duration(attempt+1)*100*time.Millisecond, 2*time.Second))
	}
}

// monitor reconciles this node's runs with the database at every heartbeat
// and when asked: it cancels tasks that became Cancelling, stops tasks this
// node lost, stops everything when the node may be counted offline, and
// ends tasks the database says this node owns but it does not run (left by
// an earlier process of this node, or stopped while it was cut off).
func (e *Executor) monitor(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.check:
		}
		e.reconcile(ctx)
		timer.Reset(e.member.State().Settings.HeartbeatFrequency)
	}
}

func (e *Executor) reconcile(ctx context.Context) {
	st := e.member.State()
	if !st.Alive() {
		e.mu.Lock()
		for id, r := range e.runs {
			if !r.finished {
				e.log.Warn("stopping a task: this node has not checked in for too long and may be taken over", "task", cuttle.FormatID(cuttle.TaskIDPrefix, id))
				r.cancel(errLost)
			}
		}
		e.mu.Unlock()
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, max(st.Settings.HeartbeatFrequency, time.Second))
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	queried := time.Now()
	owned, err := e.store.OwnedTasks(opCtx, st.Node.ID)
	if err != nil {
		return
	}
	inDB := map[int64]cuttle.TaskRef{}
	for _, ref := range owned {
		inDB[ref.ID] = ref
	}
	for id, r := range e.runs {
		ref, ok := inDB[id]
		switch {
		case r.finished:
		case !ok || ref.Epoch != r.ref.Epoch:
			r.cancel(errLost)
		case ref.State == cuttle.TaskCancelling:
			r.confirm(queried)
			r.cancel(errCanceled)
		default:
			r.confirm(queried)
		}
	}
	if e.stopping {
		return
	}
	for id, ref := range inDB {
		if _, ok := e.runs[id]; ok {
			continue
		}
		e.runs[id] = &run{ref: ref, cancel: func(error) {}, finished: true}
		e.runsWG.Add(1)
		go func() {
			defer e.runsWG.Done()
			e.endOrphan(ctx, ref)
		}()
	}
}

// endOrphan ends a task this node owns in the database but does not run:
// a resumable one goes back to the queue, a cancelling one ends Canceled,
// any other ends Failed.
func (e *Executor) endOrphan(ctx context.Context, ref cuttle.TaskRef) {
	res := cuttle.TaskResult{TaskRef: ref, State: cuttle.TaskFailed,
		ErrorMessage: "The node " + e.member.State().Node.Name + " stopped this task (it restarted, or lost its database for longer than the stale timeout); the task was not resumable, so it failed."}
	t, err := e.store.Task(ctx, ref.ID)
	switch {
	case ref.State == cuttle.TaskCancelling:
		res.State, res.ErrorMessage = cuttle.TaskCanceled, ""
	case err == nil && t.Resumable:
		res.State, res.ErrorMessage = cuttle.TaskQueued, ""
	}
	e.log.Info("ending a task this node owned but no longer ran", "task", cuttle.FormatID(cuttle.TaskIDPrefix, ref.ID), "state", res.State)
	e.results <- result{res}
}

// notifyTasks tells every node that tasks were queued.
func (e *Executor) notifyTasks(ctx context.Context, id int64) {
	if err := e.store.Notify(ctx, store.ChannelTasks, cuttle.FormatID(cuttle.TaskIDPrefix, id)); err != nil {
		e.log.Debug("notifying new tasks failed; nodes find them at their next heartbeat", "err", err)
	}
	e.Wake()
}
