package storetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// createTask queues a task.
func createTask(t *testing.T, s store.Store, nt cuttle.NewTask) cuttle.Task {
	t.Helper()
	task, err := s.CreateTask(t.Context(), nt)
	check(t, err, "CreateTask "+nt.Name)
	return task
}

// queue queues n tasks named name in the default space, oldest first.
func queue(t *testing.T, s store.Store, name string, n int) []cuttle.Task {
	t.Helper()
	var tasks []cuttle.Task
	for range n {
		tasks = append(tasks, createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: name}))
	}
	return tasks
}

// task reads one task.
func task(t *testing.T, s store.Store, id int64) cuttle.Task {
	t.Helper()
	got, err := s.Task(t.Context(), id)
	check(t, err, fmt.Sprintf("Task %d", id))
	return got
}

// claim claims up to limit tasks for the node.
func claim(t *testing.T, s store.Store, nodeID int64, limit int) []cuttle.Task {
	t.Helper()
	tasks, err := s.ClaimTasks(t.Context(), nodeID, limit)
	check(t, err, fmt.Sprintf("ClaimTasks by %d", nodeID))
	if len(tasks) > max(limit, 0) {
		t.Fatalf("ClaimTasks by %d with limit %d claimed %d tasks", nodeID, limit, len(tasks))
	}
	return tasks
}

// ids returns the ids of tasks.
func ids(tasks []cuttle.Task) []int64 {
	var out []int64
	for _, t := range tasks {
		out = append(out, t.ID)
	}
	return out
}

// ref returns the ownership of a claimed task.
func ref(t cuttle.Task) cuttle.TaskRef {
	return cuttle.TaskRef{ID: t.ID, Owner: t.OwnerID, Epoch: t.Epoch, State: t.State}
}

// result returns the result that ends a claimed task in state.
func result(t cuttle.Task, state cuttle.TaskState) cuttle.TaskResult {
	return cuttle.TaskResult{TaskRef: ref(t), State: state}
}

// finish finishes tasks and fails the test unless the results in wantLost,
// and only they, were fenced out.
func finish(t *testing.T, s store.Store, results []cuttle.TaskResult, wantLost ...int64) {
	t.Helper()
	lost, err := s.FinishTasks(t.Context(), results)
	check(t, err, "FinishTasks")
	if !slices.Equal(lost, wantLost) {
		t.Fatalf("FinishTasks lost %v, want %v", lost, wantLost)
	}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// wantState fails the test unless the task is in state.
func wantState(t *testing.T, what string, got cuttle.Task, state cuttle.TaskState) {
	t.Helper()
	if got.State != state {
		t.Fatalf("%s: task %d is %s, want %s", what, got.ID, got.State, state)
	}
}

// shortStale makes nodes offline after 500 ms of silence.
func shortStale(t *testing.T, s store.Store) cuttle.ClusterSettings {
	t.Helper()
	settings := cuttle.DefaultClusterSettings()
	settings.HeartbeatFrequency = 100 * time.Millisecond
	settings.StaleTimeout = 500 * time.Millisecond
	check(t, s.UpdateSettings(t.Context(), settings), "UpdateSettings")
	return settings
}

// keepAlive checks the node in every 50 ms until the test ends or the
// returned function is called, which returns once the check-ins stopped.
func keepAlive(t *testing.T, s store.Store, n cuttle.Node) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				if _, err := s.CheckIn(t.Context(), n.Ref()); err != nil {
					if t.Context().Err() == nil { // not the test's end, which cancels its context before the cleanup stops this
						t.Errorf("CheckIn %s: %v", n.Name, err)
					}
					return
				}
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() { close(quit) })
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func testCreateTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)

	before := now(t, s)
	nt := cuttle.NewTask{
		SpaceID: "Spaces-1", Name: "AdHocScript", Description: "Say hello",
		Arguments: json.RawMessage(`{"ScriptBody":"echo hi","Syntax":"Bash","Targets":[1,2]}`),
		Resumable: true, QueueTimeout: time.Hour,
	}
	got := createTask(t, s, nt)
	after := now(t, s)
	if got.ID <= 0 || got.SpaceID != nt.SpaceID || got.Name != nt.Name || got.Description != nt.Description || !got.Resumable {
		t.Errorf("CreateTask = %+v, want the new task's fields", got)
	}
	if !jsonEqual(got.Arguments, nt.Arguments) {
		t.Errorf("Arguments = %s, want %s", got.Arguments, nt.Arguments)
	}
	wantState(t, "CreateTask", got, cuttle.TaskQueued)
	if got.QueueTime.Before(before) || got.QueueTime.After(after) {
		t.Errorf("QueueTime = %v, want between %v and %v", got.QueueTime, before, after)
	}
	if !got.QueueTimeExpiry.Equal(got.QueueTime.Add(time.Hour)) {
		t.Errorf("QueueTimeExpiry = %v, want QueueTime %v plus an hour", got.QueueTimeExpiry, got.QueueTime)
	}
	if !got.LastUpdatedTime.Equal(got.QueueTime) {
		t.Errorf("LastUpdatedTime = %v, want QueueTime %v", got.LastUpdatedTime, got.QueueTime)
	}
	if !got.StartTime.IsZero() || !got.CompletedTime.IsZero() || got.OwnerID != 0 || got.ServerNode != "" ||
		got.Epoch != 0 || got.Checkpoint != nil || got.ErrorMessage != "" || got.HasWarningsOrErrors {
		t.Errorf("a new task = %+v, want no start, completion, owner, epoch, checkpoint or error", got)
	}

	read := task(t, s, got.ID)
	if !reflect.DeepEqual(read, got) {
		t.Errorf("Task = %+v\nwant the created %+v", read, got)
	}

	// Defaults: {} for no arguments, a day in the queue.
	d := createTask(t, s, cuttle.NewTask{Name: "Retention"})
	if !jsonEqual(d.Arguments, []byte(`{}`)) {
		t.Errorf("Arguments of a task without any = %s, want {}", d.Arguments)
	}
	if !d.QueueTimeExpiry.Equal(d.QueueTime.Add(cuttle.DefaultQueueTimeout)) {
		t.Errorf("QueueTimeExpiry = %v, want QueueTime %v plus the default %v", d.QueueTimeExpiry, d.QueueTime, cuttle.DefaultQueueTimeout)
	}
	if d.ID == got.ID {
		t.Errorf("two tasks got the id %d", d.ID)
	}

	for _, bad := range []cuttle.NewTask{
		{Name: ""},
		{Name: "X", Arguments: json.RawMessage(`[1,2]`)},
		{Name: "X", Arguments: json.RawMessage(`{"a":`)},
		{Name: "X", QueueTimeout: -time.Second},
	} {
		_, err := s.CreateTask(ctx, bad)
		wantKind(t, err, cuttle.KindInvalid, fmt.Sprintf("CreateTask %+v", bad))
	}

	_, err := s.Task(ctx, d.ID+1000)
	wantKind(t, err, cuttle.KindNotFound, "Task of an unknown id")
}

func testListTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	b := register(t, s, "node-b")

	// Oldest first: deploy 0-2, health 3-4, retention 5.
	all := append(queue(t, s, "Deploy", 3), queue(t, s, "HealthCheck", 2)...)
	all = append(all, queue(t, s, "Retention", 1)...)
	onA := claim(t, s, a.ID, 2) // deploy 0, 1
	onB := claim(t, s, b.ID, 1) // deploy 2
	if !slices.Equal(ids(onA), ids(all[:2])) || !slices.Equal(ids(onB), ids(all[2:3])) {
		t.Fatalf("claims took %v and %v, want the oldest %v then %v", ids(onA), ids(onB), ids(all[:2]), ids(all[2:3]))
	}
	finish(t, s, []cuttle.TaskResult{result(onA[0], cuttle.TaskSuccess)})

	newest := slices.Clone(ids(all))
	slices.Reverse(newest)
	pick := func(idx ...int) []int64 {
		var out []int64
		for _, i := range idx {
			out = append(out, all[i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		what  string
		q     cuttle.TaskQuery
		want  []int64
		total int
	}{
		{"everything", cuttle.TaskQuery{}, newest, 6},
		{"a page", cuttle.TaskQuery{Skip: 1, Take: 2}, newest[1:3], 6},
		{"the last page", cuttle.TaskQuery{Skip: 4, Take: 5}, newest[4:], 6},
		{"past the end", cuttle.TaskQuery{Skip: 10, Take: 5}, nil, 6},
		{"ids", cuttle.TaskQuery{IDs: pick(0, 4, 5)}, pick(5, 4, 0), 3},
		{"an unknown id", cuttle.TaskQuery{IDs: []int64{all[5].ID + 1000}}, nil, 0},
		{"a state", cuttle.TaskQuery{States: []cuttle.TaskState{cuttle.TaskExecuting}}, pick(2, 1), 2},
		{"states", cuttle.TaskQuery{States: []cuttle.TaskState{cuttle.TaskSuccess, cuttle.TaskQueued}}, pick(5, 4, 3, 0), 4},
		{"a name", cuttle.TaskQuery{Name: "HealthCheck"}, pick(4, 3), 2},
		{"a node name", cuttle.TaskQuery{NodeName: "node-a"}, pick(1, 0), 2},
		{"an owner", cuttle.TaskQuery{OwnerID: b.ID}, pick(2), 1},
		{"filters together", cuttle.TaskQuery{NodeName: "node-a", States: []cuttle.TaskState{cuttle.TaskExecuting}}, pick(1), 1},
		{"filters and a page", cuttle.TaskQuery{Name: "Deploy", Skip: 1, Take: 1}, pick(1), 3},
	} {
		got, total, err := s.Tasks(ctx, tc.q)
		check(t, err, "Tasks "+tc.what)
		if !slices.Equal(ids(got), tc.want) || total != tc.total {
			t.Errorf("Tasks %s = %v of %d, want %v of %d", tc.what, ids(got), total, tc.want, tc.total)
		}
	}

	// The listed tasks are whole.
	got, _, err := s.Tasks(ctx, cuttle.TaskQuery{IDs: pick(1)})
	check(t, err, "Tasks")
	if len(got) != 1 || !reflect.DeepEqual(got[0], task(t, s, all[1].ID)) {
		t.Errorf("Tasks = %+v, want what Task reads", got)
	}
	// And without their checkpoints, when asked.
	check(t, s.SaveCheckpoint(ctx, ref(onA[1]), []byte(`{"step":1}`)), "SaveCheckpoint")
	whole := task(t, s, all[1].ID)
	if len(whole.Checkpoint) == 0 {
		t.Fatalf("Task %d has no checkpoint after SaveCheckpoint", whole.ID)
	}
	got, _, err = s.Tasks(ctx, cuttle.TaskQuery{IDs: pick(1), NoCheckpoints: true})
	check(t, err, "Tasks without checkpoints")
	whole.Checkpoint = nil
	if len(got) != 1 || !reflect.DeepEqual(got[0], whole) {
		t.Errorf("Tasks without checkpoints = %+v, want %+v", got, whole)
	}
}

func testClaimTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")

	if got := claim(t, s, a.ID, 5); len(got) != 0 {
		t.Errorf("ClaimTasks of an empty queue = %v", ids(got))
	}
	queued := queue(t, s, "Deploy", 4)
	if got := claim(t, s, a.ID, 0); len(got) != 0 {
		t.Errorf("ClaimTasks with limit 0 claimed %v", ids(got))
	}

	before := now(t, s)
	first := claim(t, s, a.ID, 2)
	after := now(t, s)
	if !slices.Equal(ids(first), ids(queued[:2])) {
		t.Fatalf("ClaimTasks = %v, want the oldest %v", ids(first), ids(queued[:2]))
	}
	for _, c := range first {
		wantState(t, "a claimed task", c, cuttle.TaskExecuting)
		if c.OwnerID != a.ID || c.ServerNode != "node-a" || c.Epoch != 1 {
			t.Errorf("claimed task %d: owner %d %q epoch %d, want %d %q 1", c.ID, c.OwnerID, c.ServerNode, c.Epoch, a.ID, "node-a")
		}
		if c.StartTime.Before(before) || c.StartTime.After(after) || !c.LastUpdatedTime.Equal(c.StartTime) {
			t.Errorf("claimed task %d: StartTime %v LastUpdatedTime %v, want both the claim's time, between %v and %v",
				c.ID, c.StartTime, c.LastUpdatedTime, before, after)
		}
		if !reflect.DeepEqual(task(t, s, c.ID), c) {
			t.Errorf("Task %d = %+v, want the claimed %+v", c.ID, task(t, s, c.ID), c)
		}
	}

	rest := claim(t, s, a.ID, 10)
	if !slices.Equal(ids(rest), ids(queued[2:])) {
		t.Errorf("ClaimTasks = %v, want the rest %v", ids(rest), ids(queued[2:]))
	}
	if got := claim(t, s, a.ID, 10); len(got) != 0 {
		t.Errorf("ClaimTasks with nothing queued claimed %v", ids(got))
	}

	refs, err := s.OwnedTasks(ctx, a.ID)
	check(t, err, "OwnedTasks")
	var want []cuttle.TaskRef
	for _, c := range append(first, rest...) {
		want = append(want, ref(c))
	}
	if !slices.Equal(refs, want) {
		t.Errorf("OwnedTasks = %+v, want %+v", refs, want)
	}
	if got := node(t, s, a.ID).RunningTaskCount; got != 4 {
		t.Errorf("RunningTaskCount = %d, want 4", got)
	}

	if got := claim(t, s, a.ID+1000, 5); len(got) != 0 {
		t.Errorf("ClaimTasks by an unknown node claimed %v", ids(got))
	}
}

func testClaimTasksCap(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	b := register(t, s, "node-b")
	_, err := s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(2)})
	check(t, err, "UpdateNode")
	_, err = s.UpdateNode(ctx, b.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(0)})
	check(t, err, "UpdateNode")
	queued := queue(t, s, "Deploy", 5)

	if got := claim(t, s, b.ID, 10); len(got) != 0 {
		t.Errorf("a node with cap 0 claimed %v", ids(got))
	}
	got := claim(t, s, a.ID, 10)
	if !slices.Equal(ids(got), ids(queued[:2])) {
		t.Fatalf("a node with cap 2 claimed %v, want %v", ids(got), ids(queued[:2]))
	}
	if more := claim(t, s, a.ID, 10); len(more) != 0 {
		t.Errorf("a node at its cap claimed %v", ids(more))
	}

	// A cancelling task still counts.
	_, err = s.CancelTask(ctx, got[0].ID)
	check(t, err, "CancelTask")
	if more := claim(t, s, a.ID, 10); len(more) != 0 {
		t.Errorf("a node at its cap with a cancelling task claimed %v", ids(more))
	}

	nodes, err := s.Nodes(ctx)
	check(t, err, "Nodes")
	for _, n := range nodes {
		if want := map[int64]int{a.ID: 2, b.ID: 0}[n.ID]; n.RunningTaskCount != want {
			t.Errorf("Nodes: node %s runs %d tasks, want %d", n.Name, n.RunningTaskCount, want)
		}
	}
	if c, err := s.CheckIn(ctx, a.Ref()); err != nil || c.RunningTaskCount != 2 {
		t.Errorf("CheckIn = RunningTaskCount %d, %v; want 2", c.RunningTaskCount, err)
	}

	// Finishing one makes room for one.
	finish(t, s, []cuttle.TaskResult{result(got[1], cuttle.TaskSuccess)})
	third := claim(t, s, a.ID, 10)
	if !slices.Equal(ids(third), ids(queued[2:3])) {
		t.Errorf("after finishing one, the node claimed %v, want %v", ids(third), ids(queued[2:3]))
	}

	// A new cap applies at once.
	u, err := s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(3)})
	check(t, err, "UpdateNode")
	if u.RunningTaskCount != 2 {
		t.Errorf("UpdateNode: RunningTaskCount = %d, want 2", u.RunningTaskCount)
	}
	if more := claim(t, s, a.ID, 10); !slices.Equal(ids(more), ids(queued[3:4])) {
		t.Errorf("after raising the cap to 3, the node claimed %v, want %v", ids(more), ids(queued[3:4]))
	}
	if r := register(t, s, "node-a"); r.RunningTaskCount != 3 {
		t.Errorf("RegisterNode: RunningTaskCount = %d, want 3", r.RunningTaskCount)
	}

	// A lowered cap claims nothing until the node is below it.
	_, err = s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(1)})
	check(t, err, "UpdateNode")
	if more := claim(t, s, a.ID, 10); len(more) != 0 {
		t.Errorf("a node above its cap claimed %v", ids(more))
	}
}

func testClaimTasksUnavailableNode(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	queue(t, s, "Deploy", 2)

	_, err := s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{IsInMaintenanceMode: ptr(true)})
	check(t, err, "UpdateNode")
	if got := claim(t, s, a.ID, 5); len(got) != 0 {
		t.Errorf("a draining node claimed %v", ids(got))
	}
	_, err = s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{IsInMaintenanceMode: ptr(false)})
	check(t, err, "UpdateNode")

	setOffline(t, s, a)
	if got := claim(t, s, a.ID, 5); len(got) != 0 {
		t.Errorf("an offline node claimed %v", ids(got))
	}

	a = register(t, s, a.Name)
	if got := claim(t, s, a.ID, 5); len(got) != 2 {
		t.Errorf("a node started again claimed %v, want both tasks", ids(got))
	}
}

func testClaimTasksExpired(t *testing.T, s store.Store) {
	initCluster(t, s)
	a := register(t, s, "node-a")
	short := createTask(t, s, cuttle.NewTask{Name: "Short", QueueTimeout: 50 * time.Millisecond})
	long := createTask(t, s, cuttle.NewTask{Name: "Long"})
	waitPast(t, s, short.QueueTimeExpiry)
	if got := claim(t, s, a.ID, 5); !slices.Equal(ids(got), []int64{long.ID}) {
		t.Errorf("ClaimTasks = %v, want only the unexpired %d", ids(got), long.ID)
	}
	wantState(t, "an expired task after a claim", task(t, s, short.ID), cuttle.TaskQueued)
}

// testClaimTasksConcurrent has two claimers per node, for four nodes with
// different caps, claim and finish many tasks at once: no task is claimed
// twice, and no node ever runs more than its cap.
func testClaimTasksConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	const tasks = 120
	caps := []int{1, 2, 3, 1}
	var nodes []int64
	for i, c := range caps {
		n := register(t, s, fmt.Sprintf("node-%d", i))
		_, err := s.UpdateNode(ctx, n.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(c)})
		check(t, err, "UpdateNode")
		nodes = append(nodes, n.ID)
	}
	queue(t, s, "Deploy", tasks)

	var (
		mu       sync.Mutex
		claimed  = map[int64]int64{} // task: node
		running  = make([]int, len(nodes))
		finished atomic.Int64
		failed   atomic.Bool
	)
	fail := func(format string, args ...any) {
		failed.Store(true)
		t.Errorf(format, args...)
	}
	deadline := time.Now().Add(waitTimeout)
	var wg sync.WaitGroup
	for i := range 2 * len(nodes) {
		n := i % len(nodes)
		wg.Go(func() {
			for finished.Load() < tasks && !failed.Load() {
				if time.Now().After(deadline) {
					fail("timed out with %d of %d tasks finished", finished.Load(), tasks)
					return
				}
				got, err := s.ClaimTasks(ctx, nodes[n], 2)
				if err != nil {
					fail("ClaimTasks: %v", err)
					return
				}
				if len(got) > 2 {
					fail("ClaimTasks with limit 2 claimed %d", len(got))
				}
				// running counts up after the claim and down before the
				// finish, so it never exceeds what the database holds.
				mu.Lock()
				for _, c := range got {
					if other, dup := claimed[c.ID]; dup {
						fail("task %d claimed by node %d and again by node %d", c.ID, other, nodes[n])
					}
					claimed[c.ID] = nodes[n]
					if c.OwnerID != nodes[n] || c.Epoch != 1 {
						fail("task %d claimed with owner %d epoch %d, want %d 1", c.ID, c.OwnerID, c.Epoch, nodes[n])
					}
				}
				running[n] += len(got)
				if running[n] > caps[n] {
					fail("node %d runs %d tasks, over its cap %d", nodes[n], running[n], caps[n])
				}
				mu.Unlock()
				if len(got) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				// Hold the tasks a moment, so that claims of the same
				// node overlap them.
				time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
				mu.Lock()
				running[n] -= len(got)
				mu.Unlock()
				var results []cuttle.TaskResult
				for _, c := range got {
					results = append(results, result(c, cuttle.TaskSuccess))
				}
				lost, err := s.FinishTasks(ctx, results)
				if err != nil || len(lost) > 0 {
					fail("FinishTasks = lost %v, %v", lost, err)
					return
				}
				finished.Add(int64(len(got)))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(claimed) != tasks {
		t.Errorf("%d tasks claimed, want %d", len(claimed), tasks)
	}
	done, total, err := s.Tasks(ctx, cuttle.TaskQuery{States: []cuttle.TaskState{cuttle.TaskSuccess}})
	check(t, err, "Tasks")
	if total != tasks || len(done) != tasks {
		t.Errorf("%d tasks succeeded, want %d", total, tasks)
	}
}

func testFinishTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	b := register(t, s, "node-b")
	queued := queue(t, s, "Deploy", 6)
	onA := claim(t, s, a.ID, 4)
	onB := claim(t, s, b.ID, 1)

	lost, err := s.FinishTasks(ctx, nil)
	if err != nil || len(lost) != 0 {
		t.Errorf("FinishTasks of nothing = %v, %v", lost, err)
	}

	// Results must end their tasks; a bad one changes nothing.
	for _, bad := range []cuttle.TaskState{cuttle.TaskExecuting, cuttle.TaskTimedOut, cuttle.TaskCancelling, "Bogus"} {
		_, err := s.FinishTasks(ctx, []cuttle.TaskResult{result(onA[0], cuttle.TaskSuccess), result(onA[1], bad)})
		wantKind(t, err, cuttle.KindInvalid, "FinishTasks with the state "+string(bad))
	}
	wantState(t, "a task after a refused finish", task(t, s, onA[0].ID), cuttle.TaskExecuting)

	// A stale epoch or another owner is fenced out, without changing
	// anything; the others finish, whoever owns them.
	stale := result(onA[2], cuttle.TaskSuccess)
	stale.Epoch--
	other := result(onA[3], cuttle.TaskSuccess)
	other.Owner = b.ID
	failed := result(onA[1], cuttle.TaskFailed)
	failed.ErrorMessage = "The script exited with code 1."
	failed.HasWarningsOrErrors = true
	before := now(t, s)
	finish(t, s, []cuttle.TaskResult{
		result(onA[0], cuttle.TaskSuccess), stale, failed, other, result(onB[0], cuttle.TaskCanceled),
	}, onA[2].ID, onA[3].ID)
	after := now(t, s)

	ok := task(t, s, onA[0].ID)
	wantState(t, "a finished task", ok, cuttle.TaskSuccess)
	if ok.CompletedTime.Before(before) || ok.CompletedTime.After(after) || !ok.LastUpdatedTime.Equal(ok.CompletedTime) {
		t.Errorf("a finished task completed at %v, updated at %v; want both between %v and %v", ok.CompletedTime, ok.LastUpdatedTime, before, after)
	}
	if ok.OwnerID != a.ID || ok.ServerNode != "node-a" || ok.Epoch != 1 || !ok.StartTime.Equal(onA[0].StartTime) {
		t.Errorf("a finished task = %+v, want its owner, epoch and start kept", ok)
	}
	f := task(t, s, onA[1].ID)
	wantState(t, "a failed task", f, cuttle.TaskFailed)
	if f.ErrorMessage != failed.ErrorMessage || !f.HasWarningsOrErrors {
		t.Errorf("a failed task: ErrorMessage %q HasWarningsOrErrors %v, want %q true", f.ErrorMessage, f.HasWarningsOrErrors, failed.ErrorMessage)
	}
	wantState(t, "a task canceled by its owner", task(t, s, onB[0].ID), cuttle.TaskCanceled)
	for _, c := range onA[2:] {
		if got := task(t, s, c.ID); !reflect.DeepEqual(got, c) {
			t.Errorf("a fenced-out finish changed task %d: %+v, want %+v", c.ID, got, c)
		}
	}

	// A finished task cannot finish again.
	finish(t, s, []cuttle.TaskResult{result(onA[0], cuttle.TaskFailed)}, onA[0].ID)
	wantState(t, "a task finished twice", task(t, s, onA[0].ID), cuttle.TaskSuccess)
	// Nor can a queued one.
	finish(t, s, []cuttle.TaskResult{result(queued[5], cuttle.TaskSuccess)}, queued[5].ID)
	wantState(t, "a queued task after a finish", task(t, s, queued[5].ID), cuttle.TaskQueued)

	// A cancelling task ends as its owner says.
	_, err = s.CancelTask(ctx, onA[2].ID)
	check(t, err, "CancelTask")
	finish(t, s, []cuttle.TaskResult{result(onA[2], cuttle.TaskCanceled)})
	wantState(t, "a cancelling task after its finish", task(t, s, onA[2].ID), cuttle.TaskCanceled)

	if got := node(t, s, a.ID).RunningTaskCount; got != 1 {
		t.Errorf("RunningTaskCount = %d, want 1", got)
	}

	// Handing a task back (Queued) queues it again with its epoch and
	// checkpoint, claimable with the next epoch; a cancelling one handed
	// back ends Canceled.
	check(t, s.SaveCheckpoint(ctx, ref(onA[3]), []byte(`{"step":2}`)), "SaveCheckpoint")
	finish(t, s, []cuttle.TaskResult{result(onA[3], cuttle.TaskQueued)})
	back := task(t, s, onA[3].ID)
	wantState(t, "a task handed back", back, cuttle.TaskQueued)
	if back.Epoch != onA[3].Epoch || !back.CompletedTime.IsZero() || string(back.Checkpoint) == "" {
		t.Errorf("a task handed back = %+v; want its epoch and checkpoint kept, no completed time", back)
	}
	if !back.QueueTimeExpiry.After(onA[3].QueueTimeExpiry) && !back.QueueTimeExpiry.Equal(onA[3].QueueTimeExpiry) {
		t.Errorf("a task handed back expires %v, before its old expiry %v", back.QueueTimeExpiry, onA[3].QueueTimeExpiry)
	}
	again := claim(t, s, b.ID, 6)
	found := false
	for _, c := range again {
		if c.ID == back.ID {
			found = c.Epoch == back.Epoch+1
		}
	}
	if !found {
		t.Errorf("the task handed back was not claimed again with the next epoch: %+v", again)
	}
	cancelling := claim(t, s, a.ID, 1)
	if len(cancelling) == 1 {
		_, err = s.CancelTask(ctx, cancelling[0].ID)
		check(t, err, "CancelTask")
		finish(t, s, []cuttle.TaskResult{result(cancelling[0], cuttle.TaskQueued)})
		wantState(t, "a cancelling task handed back", task(t, s, cancelling[0].ID), cuttle.TaskCanceled)
	}
}

func testSaveCheckpoint(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	b := register(t, s, "node-b")
	createTask(t, s, cuttle.NewTask{Name: "Deploy", Resumable: true})
	c := claim(t, s, a.ID, 1)[0]

	cp := []byte(`{"step":3,"done":["a","b"]}`)
	check(t, s.SaveCheckpoint(ctx, ref(c), cp), "SaveCheckpoint")
	got := task(t, s, c.ID)
	if !jsonEqual(got.Checkpoint, cp) {
		t.Errorf("Checkpoint = %s, want %s", got.Checkpoint, cp)
	}
	if got.LastUpdatedTime.Before(c.LastUpdatedTime) {
		t.Errorf("LastUpdatedTime went back from %v to %v", c.LastUpdatedTime, got.LastUpdatedTime)
	}

	stale := ref(c)
	stale.Epoch++
	wantKind(t, s.SaveCheckpoint(ctx, stale, []byte(`{}`)), cuttle.KindConflict, "SaveCheckpoint with another epoch")
	other := ref(c)
	other.Owner = b.ID
	wantKind(t, s.SaveCheckpoint(ctx, other, []byte(`{}`)), cuttle.KindConflict, "SaveCheckpoint by another node")
	wantKind(t, s.SaveCheckpoint(ctx, ref(c), []byte(`not json`)), cuttle.KindInvalid, "SaveCheckpoint of something not JSON")
	if got := task(t, s, c.ID); !jsonEqual(got.Checkpoint, cp) {
		t.Errorf("refused checkpoints changed it to %s", got.Checkpoint)
	}

	// A cancelling task still saves; a finished one does not.
	_, err := s.CancelTask(ctx, c.ID)
	check(t, err, "CancelTask")
	check(t, s.SaveCheckpoint(ctx, ref(c), []byte(`{"step":4}`)), "SaveCheckpoint of a cancelling task")
	finish(t, s, []cuttle.TaskResult{result(c, cuttle.TaskCanceled)})
	wantKind(t, s.SaveCheckpoint(ctx, ref(c), []byte(`{"step":5}`)), cuttle.KindConflict, "SaveCheckpoint of a finished task")
	if got := task(t, s, c.ID); !jsonEqual(got.Checkpoint, []byte(`{"step":4}`)) {
		t.Errorf("Checkpoint = %s, want the last one saved", got.Checkpoint)
	}
}

func testCancelTask(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	queued := queue(t, s, "Deploy", 3)
	running := claim(t, s, a.ID, 2)

	// Queued: canceled at once, and never claimed.
	before := now(t, s)
	c, err := s.CancelTask(ctx, queued[2].ID)
	check(t, err, "CancelTask of a queued task")
	after := now(t, s)
	wantState(t, "a canceled queued task", c, cuttle.TaskCanceled)
	if c.CompletedTime.Before(before) || c.CompletedTime.After(after) {
		t.Errorf("CompletedTime = %v, want between %v and %v", c.CompletedTime, before, after)
	}
	if !reflect.DeepEqual(task(t, s, c.ID), c) {
		t.Errorf("Task = %+v, want the canceled %+v", task(t, s, c.ID), c)
	}
	if got := claim(t, s, a.ID, 5); len(got) != 0 {
		t.Errorf("ClaimTasks claimed %v after the queued task was canceled", ids(got))
	}

	// Executing: cancelling, its owner and epoch kept.
	c, err = s.CancelTask(ctx, running[0].ID)
	check(t, err, "CancelTask of an executing task")
	wantState(t, "a cancelled executing task", c, cuttle.TaskCancelling)
	if c.OwnerID != a.ID || c.Epoch != running[0].Epoch || !c.CompletedTime.IsZero() {
		t.Errorf("a cancelling task = %+v, want owner %d, epoch %d, not completed", c, a.ID, running[0].Epoch)
	}
	refs, err := s.OwnedTasks(ctx, a.ID)
	check(t, err, "OwnedTasks")
	if len(refs) != 2 || refs[0].ID != c.ID || refs[0].State != cuttle.TaskCancelling {
		t.Errorf("OwnedTasks = %+v, want task %d Cancelling first", refs, c.ID)
	}

	// Cancelling: stays so.
	again, err := s.CancelTask(ctx, running[0].ID)
	check(t, err, "CancelTask of a cancelling task")
	wantState(t, "a task cancelled twice", again, cuttle.TaskCancelling)

	// Completed: a conflict.
	finish(t, s, []cuttle.TaskResult{result(running[1], cuttle.TaskSuccess)})
	_, err = s.CancelTask(ctx, running[1].ID)
	wantKind(t, err, cuttle.KindConflict, "CancelTask of a finished task")
	if err != nil && !strings.Contains(err.Error(), "Success") {
		t.Errorf("CancelTask of a finished task: %q does not name its state", err)
	}
	_, err = s.CancelTask(ctx, queued[2].ID)
	wantKind(t, err, cuttle.KindConflict, "CancelTask of a canceled task")
	wantState(t, "a finished task after CancelTask", task(t, s, running[1].ID), cuttle.TaskSuccess)

	_, err = s.CancelTask(ctx, queued[2].ID+1000)
	wantKind(t, err, cuttle.KindNotFound, "CancelTask of an unknown task")
}

func testExpireTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	short := createTask(t, s, cuttle.NewTask{Name: "Short", QueueTimeout: 100 * time.Millisecond})
	long := createTask(t, s, cuttle.NewTask{Name: "Long"})

	// Before its expiry by the database clock, nothing expires.
	n, err := s.ExpireTasks(ctx)
	check(t, err, "ExpireTasks")
	if n != 0 && now(t, s).Before(short.QueueTimeExpiry) {
		t.Fatalf("ExpireTasks expired %d tasks before any expiry", n)
	}
	expired := n
	waitFor(t, "the short task to expire", func() bool {
		n, err := s.ExpireTasks(ctx)
		check(t, err, "ExpireTasks")
		expired += n
		return expired > 0
	})
	if expired != 1 {
		t.Errorf("ExpireTasks expired %d tasks, want 1", expired)
	}
	got := task(t, s, short.ID)
	wantState(t, "an expired task", got, cuttle.TaskTimedOut)
	if got.CompletedTime.Before(short.QueueTimeExpiry) || !got.LastUpdatedTime.Equal(got.CompletedTime) {
		t.Errorf("an expired task completed at %v, updated at %v; want both at once, after its expiry %v",
			got.CompletedTime, got.LastUpdatedTime, short.QueueTimeExpiry)
	}
	if !strings.Contains(got.ErrorMessage, "no node had room") ||
		!strings.Contains(got.ErrorMessage, short.QueueTimeExpiry.Format("2006-01-02T15:04:05")) {
		t.Errorf("ErrorMessage = %q, want it to say no node had room before %v", got.ErrorMessage, short.QueueTimeExpiry)
	}
	wantState(t, "an unexpired task", task(t, s, long.ID), cuttle.TaskQueued)

	n, err = s.ExpireTasks(ctx)
	check(t, err, "ExpireTasks again")
	if n != 0 {
		t.Errorf("ExpireTasks again expired %d tasks, want 0", n)
	}
	_, err = s.CancelTask(ctx, short.ID)
	wantKind(t, err, cuttle.KindConflict, "CancelTask of a timed-out task")
}

func testTakeOverTasks(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	settings := shortStale(t, s)
	a := register(t, s, "node-a") // stops checking in after the claims
	b := register(t, s, "node-b")
	stopA := keepAlive(t, s, a)
	keepAlive(t, s, b)

	resumable := createTask(t, s, cuttle.NewTask{Name: "Deploy", Resumable: true, QueueTimeout: time.Minute})
	plain := createTask(t, s, cuttle.NewTask{Name: "AdHocScript"})
	cancelling := createTask(t, s, cuttle.NewTask{Name: "HealthCheck", Resumable: true})
	onA := claim(t, s, a.ID, 3)
	if len(onA) != 3 {
		t.Fatalf("node-a claimed %v, want 3 tasks", ids(onA))
	}
	createTask(t, s, cuttle.NewTask{Name: "Retention"})
	onB := claim(t, s, b.ID, 1)
	cp := []byte(`{"step":2}`)
	check(t, s.SaveCheckpoint(ctx, ref(onA[0]), cp), "SaveCheckpoint")
	m := machine(t, s, "web", nil, cuttle.Polling)
	cmds := map[int64]cuttle.Command{}
	for _, tk := range onA {
		cmds[tk.ID] = ensure(t, s, script(m, tk, "run"))[0]
	}
	dispatch(t, s, m, 3, time.Minute)
	_, err := s.CancelTask(ctx, cancelling.ID)
	check(t, err, "CancelTask")
	stopA()
	lastSeen := node(t, s, a.ID).LastSeen

	// While its owner is online by the database clock, a task stays.
	before := now(t, s)
	early, err := s.TakeOverTasks(ctx)
	check(t, err, "TakeOverTasks")
	if len(early) > 0 && before.Sub(lastSeen) < settings.StaleTimeout {
		t.Fatalf("TakeOverTasks took over %v while their owner was online", ids(early))
	}

	changed := map[int64]cuttle.Task{}
	for _, c := range early {
		changed[c.ID] = c
	}
	waitFor(t, "node-a's tasks to be taken over", func() bool {
		got, err := s.TakeOverTasks(ctx)
		check(t, err, "TakeOverTasks")
		for _, c := range got {
			if _, dup := changed[c.ID]; dup {
				t.Fatalf("TakeOverTasks changed task %d twice", c.ID)
			}
			changed[c.ID] = c
		}
		return len(changed) >= 3
	})
	if len(changed) != 3 {
		t.Fatalf("TakeOverTasks changed %d tasks, want node-a's 3", len(changed))
	}
	for id, c := range changed {
		if !reflect.DeepEqual(task(t, s, id), c) {
			t.Errorf("TakeOverTasks returned %+v, Task reads %+v", c, task(t, s, id))
		}
	}

	r := changed[resumable.ID]
	wantState(t, "a resumable task of an offline node", r, cuttle.TaskQueued)
	if !jsonEqual(r.Checkpoint, cp) || r.Epoch != 1 || !r.CompletedTime.IsZero() || !r.StartTime.Equal(onA[0].StartTime) {
		t.Errorf("a re-queued task = %+v, want its checkpoint %s, epoch 1, its start and no completion", r, cp)
	}
	if r.QueueTimeExpiry.Before(r.LastUpdatedTime) {
		t.Errorf("a re-queued task expires at %v, before it was re-queued at %v", r.QueueTimeExpiry, r.LastUpdatedTime)
	}
	p := changed[plain.ID]
	wantState(t, "a task of an offline node", p, cuttle.TaskFailed)
	if !strings.Contains(p.ErrorMessage, "node-a") || p.CompletedTime.IsZero() {
		t.Errorf("a failed task: ErrorMessage %q CompletedTime %v, want a message naming node-a and a completion",
			p.ErrorMessage, p.CompletedTime)
	}
	c := changed[cancelling.ID]
	wantState(t, "a cancelling task of an offline node", c, cuttle.TaskCanceled)
	if c.CompletedTime.IsZero() {
		t.Error("a canceled task has no CompletedTime")
	}
	if got := task(t, s, onB[0].ID); !reflect.DeepEqual(got, onB[0]) {
		t.Errorf("the task of an online node changed: %+v, want %+v", got, onB[0])
	}
	// The commands of the tasks that ended are to be cancelled; those of
	// the re-queued task run on for its next owner.
	for id, want := range map[int64]bool{resumable.ID: false, plain.ID: true, cancelling.ID: true} {
		if c := got2(t, s, cmds[id].ID); c.CancelRequested != want || c.State != cuttle.CommandDispatched {
			t.Errorf("the command of task %d (now %s) is %s with its cancel requested %v; want Dispatched, %v",
				id, changed[id].State, c.State, c.CancelRequested, want)
		}
	}

	// The old owner is fenced out of everything.
	var results []cuttle.TaskResult
	for _, o := range onA {
		results = append(results, result(o, cuttle.TaskSuccess))
	}
	finish(t, s, results, ids(onA)...)
	wantKind(t, s.SaveCheckpoint(ctx, ref(onA[0]), []byte(`{"step":9}`)), cuttle.KindConflict, "SaveCheckpoint by the old owner")
	for id, c := range changed {
		if got := task(t, s, id); !reflect.DeepEqual(got, c) {
			t.Errorf("the old owner changed task %d: %+v, want %+v", id, got, c)
		}
	}
	refs, err := s.OwnedTasks(ctx, a.ID)
	check(t, err, "OwnedTasks")
	if len(refs) != 0 {
		t.Errorf("OwnedTasks of the offline node = %+v, want none", refs)
	}
	if again, err := s.TakeOverTasks(ctx); err != nil || len(again) != 0 {
		t.Errorf("TakeOverTasks again = %v, %v; want nothing", ids(again), err)
	}

	// The re-queued task resumes on another node with the next epoch and
	// its checkpoint.
	resumed := claim(t, s, b.ID, 5)
	if len(resumed) != 1 || resumed[0].ID != resumable.ID {
		t.Fatalf("node-b claimed %v, want the re-queued %d", ids(resumed), resumable.ID)
	}
	if got := resumed[0]; got.Epoch != 2 || got.OwnerID != b.ID || got.ServerNode != "node-b" ||
		!jsonEqual(got.Checkpoint, cp) || !got.StartTime.Equal(onA[0].StartTime) {
		t.Errorf("the resumed task = %+v, want epoch 2 on node-b with its checkpoint and first start", got)
	}
	finish(t, s, []cuttle.TaskResult{result(onA[0], cuttle.TaskSuccess)}, onA[0].ID)
	finish(t, s, []cuttle.TaskResult{result(resumed[0], cuttle.TaskSuccess)})
}

// testTakeOverTasksConcurrent has several nodes take over the tasks of a
// stopped node at once, and of a removed one: each task changes once.
func testTakeOverTasksConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	d := register(t, s, "node-d")
	_, err := s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(30)})
	check(t, err, "UpdateNode")
	for i := range 30 {
		createTask(t, s, cuttle.NewTask{Name: "Deploy", Resumable: i%2 == 0})
	}
	onA := claim(t, s, a.ID, 30)
	createTask(t, s, cuttle.NewTask{Name: "Deploy"})
	onD := claim(t, s, d.ID, 1)
	if len(onA) != 30 || len(onD) != 1 {
		t.Fatalf("claimed %d and %d tasks, want 30 and 1", len(onA), len(onD))
	}
	setOffline(t, s, a)
	setOffline(t, s, d)
	check(t, s.DeleteNode(ctx, d.ID), "DeleteNode")

	const takers = 4
	results := make([][]cuttle.Task, takers)
	errs := make([]error, takers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range takers {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.TakeOverTasks(ctx)
		})
	}
	close(start)
	wg.Wait()
	seen := map[int64]bool{}
	for i := range takers {
		check(t, errs[i], "TakeOverTasks")
		for _, c := range results[i] {
			if seen[c.ID] {
				t.Errorf("task %d taken over twice", c.ID)
			}
			seen[c.ID] = true
		}
	}
	if len(seen) != 31 {
		t.Errorf("%d tasks taken over, want 31", len(seen))
	}
	for i, c := range onA {
		want := cuttle.TaskFailed
		if i%2 == 0 {
			want = cuttle.TaskQueued
		}
		wantState(t, "a task of a stopped node", task(t, s, c.ID), want)
	}
	got := task(t, s, onD[0].ID)
	wantState(t, "a task of a removed node", got, cuttle.TaskFailed)
	if !strings.Contains(got.ErrorMessage, "node-d") {
		t.Errorf("ErrorMessage = %q, want it to name node-d", got.ErrorMessage)
	}
}

func testRunJob(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	b := register(t, s, "node-b")
	la := bid(t, s, a.ID, time.Minute, true)
	nt := cuttle.NewTask{SpaceID: "Spaces-1", Name: cuttle.JobRetention, Description: "Apply retention policies"}

	run := func(node, term int64, job string, every time.Duration, want bool) cuttle.Task {
		t.Helper()
		got, ok, err := s.RunJob(ctx, node, term, job, every, nt)
		check(t, err, fmt.Sprintf("RunJob %s by %d in term %d", job, node, term))
		if ok != want {
			t.Fatalf("RunJob %s by %d in term %d: ok = %v, want %v", job, node, term, ok, want)
		}
		return got
	}
	schedule := func(job string) cuttle.Schedule {
		t.Helper()
		all, err := s.Schedules(ctx)
		check(t, err, "Schedules")
		for _, sc := range all {
			if sc.Job == job {
				return sc
			}
		}
		t.Fatalf("Schedules = %+v, want one for %s", all, job)
		return cuttle.Schedule{}
	}

	// Only the holder of the lease, in its term, runs a job.
	run(b.ID, la.Term, cuttle.JobRetention, time.Minute, false)
	run(a.ID, la.Term+1, cuttle.JobRetention, time.Minute, false)
	run(a.ID, la.Term-1, cuttle.JobRetention, time.Minute, false)
	if all, err := s.Schedules(ctx); err != nil || len(all) != 0 {
		t.Errorf("Schedules after refused runs = %+v, %v; want none", all, err)
	}

	before := now(t, s)
	got := run(a.ID, la.Term, cuttle.JobRetention, time.Minute, true)
	after := now(t, s)
	if got.ID <= 0 || got.Name != nt.Name || got.SpaceID != nt.SpaceID || got.Description != nt.Description || got.State != cuttle.TaskQueued {
		t.Errorf("RunJob queued %+v, want a queued %s task", got, nt.Name)
	}
	if !reflect.DeepEqual(task(t, s, got.ID), got) {
		t.Errorf("Task = %+v, want what RunJob returned %+v", task(t, s, got.ID), got)
	}
	sc := schedule(cuttle.JobRetention)
	if sc.LastRun.Before(before) || sc.LastRun.After(after) || sc.LastTask != got.ID {
		t.Errorf("schedule = %+v, want a last run between %v and %v and task %d", sc, before, after, got.ID)
	}
	// A run's time is its task's queue time, so that runs are an interval
	// apart as their tasks show them.
	if !sc.LastRun.Equal(got.QueueTime) {
		t.Errorf("the last run %v is not the task's queue time %v", sc.LastRun, got.QueueTime)
	}

	// Not due yet: nothing, even for the leader.
	run(a.ID, la.Term, cuttle.JobRetention, time.Minute, false)
	if again := schedule(cuttle.JobRetention); again != sc {
		t.Errorf("a run that was not due changed the schedule to %+v, from %+v", again, sc)
	}

	// A job with a short interval runs again once due.
	first := run(a.ID, la.Term, cuttle.JobHealthCheck, 100*time.Millisecond, true)
	sh := schedule(cuttle.JobHealthCheck)
	var second cuttle.Task
	waitFor(t, "the health check to be due again", func() bool {
		var ok bool
		var err error
		second, ok, err = s.RunJob(ctx, a.ID, la.Term, cuttle.JobHealthCheck, 100*time.Millisecond, nt)
		check(t, err, "RunJob")
		return ok
	})
	sh2 := schedule(cuttle.JobHealthCheck)
	if second.ID == first.ID || sh2.LastTask != second.ID || sh2.LastRun.Before(sh.NextRun(100*time.Millisecond)) ||
		second.QueueTime.Sub(first.QueueTime) < 100*time.Millisecond {
		t.Errorf("the second run: task %d, schedule %+v; want a new task, run no sooner than %v", second.ID, sh2, sh.NextRun(100*time.Millisecond))
	}

	// A shorter interval applies to the next run at once: Retention ran
	// under a minute, and is due under 100 ms.
	waitFor(t, "Retention to be due under a shorter interval", func() bool {
		_, ok, err := s.RunJob(ctx, a.ID, la.Term, cuttle.JobRetention, 100*time.Millisecond, nt)
		check(t, err, "RunJob")
		return ok
	})

	// Schedules lists every job by name.
	all, err := s.Schedules(ctx)
	check(t, err, "Schedules")
	var jobs []string
	for _, sc := range all {
		jobs = append(jobs, sc.Job)
	}
	if want := []string{cuttle.JobHealthCheck, cuttle.JobRetention}; !slices.Equal(jobs, want) {
		t.Errorf("Schedules lists %v, want %v", jobs, want)
	}

	// A new leader, in a new term, runs what is due; the old term never again.
	check(t, s.ResignLease(ctx, a.ID, la.Term), "ResignLease")
	lb := bid(t, s, b.ID, time.Minute, true)
	waitPast(t, s, sh2.NextRun(100*time.Millisecond))
	run(a.ID, la.Term, cuttle.JobHealthCheck, 100*time.Millisecond, false)
	third := run(b.ID, lb.Term, cuttle.JobHealthCheck, 100*time.Millisecond, true)
	if schedule(cuttle.JobHealthCheck).LastTask != third.ID {
		t.Errorf("the schedule's last task is not the new leader's %d", third.ID)
	}
	run(b.ID, lb.Term, cuttle.JobRetention, time.Minute, false) // not due: the schedule is the cluster's
	run(a.ID, la.Term, cuttle.JobReindex, time.Minute, false)
	run(b.ID, la.Term, cuttle.JobReindex, time.Minute, false)

	// Many runs at once by the leader: one queues.
	const runners = 8
	oks := make([]bool, runners)
	errs := make([]error, runners)
	var wg sync.WaitGroup
	for i := range runners {
		wg.Go(func() {
			_, oks[i], errs[i] = s.RunJob(ctx, b.ID, lb.Term, cuttle.JobPackageCleanup, time.Minute, nt)
		})
	}
	wg.Wait()
	queued := 0
	for i := range runners {
		check(t, errs[i], "concurrent RunJob")
		if oks[i] {
			queued++
		}
	}
	if queued != 1 {
		t.Errorf("%d of %d concurrent runs queued a task, want 1", queued, runners)
	}

	// An expired lease runs nothing.
	check(t, s.ResignLease(ctx, b.ID, lb.Term), "ResignLease")
	lc := bid(t, s, b.ID, 50*time.Millisecond, true)
	waitPast(t, s, lc.ExpiresAt)
	run(b.ID, lc.Term, cuttle.JobReindex, time.Minute, false)

	_, _, err = s.RunJob(ctx, b.ID, lc.Term, "", time.Minute, nt)
	wantKind(t, err, cuttle.KindInvalid, "RunJob without a job")
}

// testEndedTaskStopsCommands: a task that ends, whoever ends it (its
// owner's finish, a cancel while it is queued, an expiry), stops its
// unfinished commands in the same statement: a pending one ends Canceled,
// a handed-out one is to be cancelled, a finished one stays; a task handed
// back to the queue keeps its commands running.
func testEndedTaskStopsCommands(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "node-a")
	keepAlive(t, s, a)
	m := machine(t, s, "web", nil, cuttle.Polling)
	// commands gives tk a handed-out, a finished and a pending command.
	commands := func(tk cuttle.Task) []cuttle.Command {
		cmds := ensure(t, s, script(m, tk, "out"), script(m, tk, "done"))
		dispatch(t, s, m, 2, time.Minute)
		_, err := s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: cmds[1].UID, State: cuttle.CommandSuccess})
		check(t, err, "RecordReport")
		return append(cmds, ensure(t, s, script(m, tk, "pending"))[0])
	}
	stopped := func(what string, cmds []cuttle.Command) {
		t.Helper()
		out, done, pending := got2(t, s, cmds[0].ID), got2(t, s, cmds[1].ID), got2(t, s, cmds[2].ID)
		if out.State != cuttle.CommandDispatched || !out.CancelRequested {
			t.Errorf("%s: its handed-out command is %s, cancel requested %v; want Dispatched, true", what, out.State, out.CancelRequested)
		}
		if done.State != cuttle.CommandSuccess || done.CancelRequested {
			t.Errorf("%s: its finished command is %s, cancel requested %v; want Success, false", what, done.State, done.CancelRequested)
		}
		if pending.State != cuttle.CommandCanceled || pending.FinishedAt.IsZero() || !strings.Contains(pending.Error, "its task ended") {
			t.Errorf("%s: its pending command is %+v; want Canceled, saying its task ended", what, pending)
		}
	}

	queued := createTask(t, s, cuttle.NewTask{Name: "AdHocScript"})
	cmds := commands(queued)
	_, err := s.CancelTask(ctx, queued.ID)
	check(t, err, "CancelTask")
	stopped("a queued task cancelled", cmds)

	back := createTask(t, s, cuttle.NewTask{Name: "Deploy", Resumable: true})
	claimed := claim(t, s, a.ID, 1)
	if len(claimed) != 1 || claimed[0].ID != back.ID {
		t.Fatalf("node-a claimed %v, want task %d", ids(claimed), back.ID)
	}
	cmds = commands(claimed[0])
	lost, err := s.FinishTasks(ctx, []cuttle.TaskResult{result(claimed[0], cuttle.TaskQueued)})
	check(t, err, "FinishTasks Queued")
	if len(lost) != 0 {
		t.Fatalf("FinishTasks lost %v", lost)
	}
	for _, c := range []cuttle.Command{cmds[0], cmds[2]} {
		if got := got2(t, s, c.ID); got.CancelRequested || got.State.Final() {
			t.Errorf("a command of a task handed back to the queue is %s, cancel requested %v; want it to run on", got.State, got.CancelRequested)
		}
	}
	claimed = claim(t, s, a.ID, 1)
	_, err = s.FinishTasks(ctx, []cuttle.TaskResult{result(claimed[0], cuttle.TaskFailed)})
	check(t, err, "FinishTasks Failed")
	stopped("a task its owner finished Failed", cmds)

	expiring := createTask(t, s, cuttle.NewTask{Name: "AdHocScript", QueueTimeout: 100 * time.Millisecond})
	cmds = commands(expiring)
	waitFor(t, "the task to expire", func() bool {
		_, err := s.ExpireTasks(ctx)
		check(t, err, "ExpireTasks")
		return task(t, s, expiring.ID).State == cuttle.TaskTimedOut
	})
	stopped("an expired task", cmds)
}
