package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// park parks the task of ref in a unit of work of its own.
func park(t *testing.T, s store.Store, ref cuttle.TaskRef) error {
	t.Helper()
	return update(t, s, func(tx *collection.Tx) error { return s.ParkTask(t.Context(), tx, ref, nil, false) })
}

// resume resumes a parked task in a unit of work of its own.
func resume(t *testing.T, s store.Store, id int64) error {
	t.Helper()
	return update(t, s, func(tx *collection.Tx) error { return s.ResumeTask(t.Context(), tx, id) })
}

// testParkAndResume: a parked task is shown Executing, counts in no cap, is
// claimed by no node and expired by no sweep however long it waits; its
// owner's later writes are fenced out; resumed, any node claims it with its
// checkpoint; a park in a unit of work that fails leaves it running; a
// cancel ends a parked task at once.
func testParkAndResume(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a, b := register(t, s, "node-a"), register(t, s, "node-b")
	_, err := s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(1)})
	check(t, err, "UpdateNode")
	// A queue timeout that passes while the task waits parked, and is long
	// enough for the claim that follows at once.
	const timeout = 2 * time.Second
	waiting := createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: "Deploy", Resumable: true, QueueTimeout: timeout})
	got := claim(t, s, a.ID, 1)
	if len(got) != 1 || got[0].ID != waiting.ID {
		t.Fatalf("claimed %v, want the task", ids(got))
	}
	parkedRef := ref(got[0])
	check(t, s.SaveCheckpoint(ctx, parkedRef, []byte(`{"step":2}`)), "SaveCheckpoint")

	// A park in a unit of work that fails changes nothing.
	failed := errors.New("the interruption could not be stored")
	err = update(t, s, func(tx *collection.Tx) error {
		if err := s.ParkTask(ctx, tx, parkedRef, []byte(`{"step":9}`), false); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("a park whose unit of work fails: %v", err)
	}
	wantState(t, "after a park that rolled back", task(t, s, waiting.ID), cuttle.TaskExecuting)

	check(t, park(t, s, parkedRef), "ParkTask")
	parked := task(t, s, waiting.ID)
	if !parked.Parked || parked.State != cuttle.TaskQueued || parked.Shown() != cuttle.TaskExecuting || parked.Epoch != parkedRef.Epoch {
		t.Fatalf("a parked task: %+v", parked)
	}
	wantKind(t, park(t, s, parkedRef), cuttle.KindConflict, "a second ParkTask of the same ownership")
	wantKind(t, s.SaveCheckpoint(ctx, parkedRef, []byte(`{"step":3}`)), cuttle.KindConflict, "a checkpoint of the owner that parked it")
	finish(t, s, []cuttle.TaskResult{result(got[0], cuttle.TaskSuccess)}, waiting.ID)

	// Nobody claims it; the node that parked it has room again; no sweep
	// expires it, although its queue timeout passed.
	other := createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: "Noop"})
	if got := claim(t, s, a.ID, 5); len(got) != 1 || got[0].ID != other.ID {
		t.Errorf("a claim while the task is parked took %v; want only the other task", ids(got))
	}
	for now(t, s).Before(waiting.QueueTimeExpiry.Add(10 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond)
	}
	_, err = s.ExpireTasks(ctx)
	check(t, err, "ExpireTasks")
	if tk := task(t, s, waiting.ID); tk.State != cuttle.TaskQueued || !tk.Parked {
		t.Errorf("a parked task after its expiry passed and a sweep: %s, parked %v", tk.State, tk.Parked)
	}
	if got := claim(t, s, b.ID, 5); len(got) != 0 {
		t.Errorf("another node claimed %v while the task is parked", ids(got))
	}
	shown, _, err := s.Tasks(ctx, cuttle.TaskQuery{States: []cuttle.TaskState{cuttle.TaskExecuting}})
	check(t, err, "Tasks")
	if !hasID(ids(shown), waiting.ID) {
		t.Errorf("the Executing tasks %v do not show the parked one %d", ids(shown), waiting.ID)
	}
	queued, _, err := s.Tasks(ctx, cuttle.TaskQuery{States: []cuttle.TaskState{cuttle.TaskQueued}})
	check(t, err, "Tasks")
	if hasID(ids(queued), waiting.ID) {
		t.Errorf("the Queued tasks %v show the parked one", ids(queued))
	}

	// Resumed, another node claims it and finds the checkpoint.
	check(t, resume(t, s, waiting.ID), "ResumeTask")
	wantKind(t, resume(t, s, waiting.ID), cuttle.KindConflict, "a second ResumeTask")
	wantKind(t, resume(t, s, 999999), cuttle.KindNotFound, "ResumeTask of a missing task")
	got = claim(t, s, b.ID, 5)
	if len(got) != 1 || got[0].ID != waiting.ID || got[0].Epoch != parkedRef.Epoch+1 || !jsonEqual(got[0].Checkpoint, []byte(`{"step":2}`)) || got[0].Parked {
		t.Fatalf("the claim after the resume: %+v; want the task at epoch %d with its checkpoint", got, parkedRef.Epoch+1)
	}

	// A parked task cancelled ends at once.
	check(t, park(t, s, ref(got[0])), "ParkTask by the second owner")
	c, err := s.CancelTask(ctx, waiting.ID)
	check(t, err, "CancelTask")
	if c.State != cuttle.TaskCanceled || c.Parked || c.CompletedTime.IsZero() {
		t.Errorf("a parked task cancelled: %+v; want Canceled at once", c)
	}
	wantKind(t, resume(t, s, waiting.ID), cuttle.KindConflict, "ResumeTask of a cancelled task")
}

// hasID reports whether id is among ids.
func hasID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// testConcurrencyKey: of the tasks of a key, only the oldest is claimed,
// and only while none of the key runs or is parked; tasks of other keys
// and of none go on meanwhile.
func testConcurrencyKey(t *testing.T, s store.Store) {
	initCluster(t, s)
	n := register(t, s, "node-a")
	mk := func(name, key string) cuttle.Task {
		return createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: name, Resumable: true, ConcurrencyKey: key})
	}
	first, second, other, free := mk("first", "Projects-1/Environments-1"), mk("second", "Projects-1/Environments-1"),
		mk("other", "Projects-1/Environments-2"), mk("free", "")
	got := claim(t, s, n.ID, 10)
	if want := []int64{first.ID, other.ID, free.ID}; fmt.Sprint(ids(got)) != fmt.Sprint(want) {
		t.Fatalf("the first claim took %v; want %v (not the second of a key)", ids(got), want)
	}
	if got := claim(t, s, n.ID, 10); len(got) != 0 {
		t.Fatalf("a claim while the first of the key runs took %v", ids(got))
	}
	var firstRef cuttle.TaskRef
	for _, tk := range got {
		if tk.ID == first.ID {
			firstRef = ref(tk)
		}
	}
	// Parked, the first still holds its key.
	check(t, park(t, s, firstRef), "ParkTask")
	if got := claim(t, s, n.ID, 10); len(got) != 0 {
		t.Fatalf("a claim while the first of the key is parked took %v", ids(got))
	}
	// Resumed, it comes first again; ended, the second runs.
	check(t, resume(t, s, first.ID), "ResumeTask")
	got = claim(t, s, n.ID, 10)
	if len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("the claim after the resume took %v; want the first", ids(got))
	}
	finish(t, s, []cuttle.TaskResult{result(got[0], cuttle.TaskSuccess)})
	if got := claim(t, s, n.ID, 10); len(got) != 1 || got[0].ID != second.ID {
		t.Fatalf("the claim after the first ended took %v; want the second", ids(got))
	}
}

// testParkReleasingKey: a task parked with its key released lets the next
// task of its key run while it waits; resumed, it waits for that one to end
// and then runs before any later one.
func testParkReleasingKey(t *testing.T, s store.Store) {
	initCluster(t, s)
	n := register(t, s, "node-a")
	mk := func(name string) cuttle.Task {
		return createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: name, Resumable: true, ConcurrencyKey: "k"})
	}
	first, second, third := mk("first"), mk("second"), mk("third")
	got := claim(t, s, n.ID, 10)
	if len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("the first claim took %v; want the first", ids(got))
	}
	check(t, update(t, s, func(tx *collection.Tx) error { return s.ParkTask(t.Context(), tx, ref(got[0]), nil, true) }), "ParkTask releasing the key")
	got = claim(t, s, n.ID, 10)
	if len(got) != 1 || got[0].ID != second.ID {
		t.Fatalf("the claim while the first waits with its key released took %v; want the second", ids(got))
	}
	check(t, resume(t, s, first.ID), "ResumeTask")
	if again := claim(t, s, n.ID, 10); len(again) != 0 {
		t.Fatalf("a claim while the second runs took %v", ids(again))
	}
	finish(t, s, []cuttle.TaskResult{result(got[0], cuttle.TaskSuccess)})
	if got := claim(t, s, n.ID, 10); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("the claim after the second ended took %v; want the first (%d), before the third (%d)", ids(got), first.ID, third.ID)
	}
}

// testNotBefore: a task queued not before a later time is claimed from
// then on, its QueueTime that time and its expiry a queue timeout after;
// while it is not due, a later task of its concurrency key is not held
// back by it.
func testNotBefore(t *testing.T, s store.Store) {
	initCluster(t, s)
	n := register(t, s, "node-a")
	const wait = 1500 * time.Millisecond
	at := time.Now().Add(wait).Truncate(time.Millisecond)
	later := createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: "later", ConcurrencyKey: "k", NotBefore: at, QueueTimeout: time.Hour})
	if !later.QueueTime.Equal(at) || !later.QueueTimeExpiry.Equal(at.Add(time.Hour)) {
		t.Errorf("a task not before %v: QueueTime %v, QueueTimeExpiry %v; want that time and an hour after", at, later.QueueTime, later.QueueTimeExpiry)
	}
	now := createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: "now", ConcurrencyKey: "k",
		NotBefore: time.Now().Add(-time.Hour)}) // a time past: at once
	if got := claim(t, s, n.ID, 10); len(got) != 1 || got[0].ID != now.ID {
		t.Fatalf("the claim before the later task is due took %v; want only %d", ids(got), now.ID)
	}
	finish(t, s, []cuttle.TaskResult{result(claimedAs(t, s, now.ID), cuttle.TaskSuccess)})
	if got := claim(t, s, n.ID, 10); len(got) != 0 {
		t.Fatalf("a claim before %v took %v", at, ids(got))
	}
	time.Sleep(time.Until(at) + 100*time.Millisecond)
	if got := claim(t, s, n.ID, 10); len(got) != 1 || got[0].ID != later.ID {
		t.Fatalf("the claim once it is due took %v; want %d", ids(got), later.ID)
	}
}

// claimedAs reads a task claimed moments ago.
func claimedAs(t *testing.T, s store.Store, id int64) cuttle.Task {
	t.Helper()
	tk, err := s.Task(t.Context(), id)
	check(t, err, "Task")
	return tk
}

// testConcurrencyKeyRace: claims of many nodes at once never run two tasks
// of one key.
func testConcurrencyKeyRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	var nodes []int64
	for i := range 4 {
		nodes = append(nodes, register(t, s, fmt.Sprintf("node-%d", i)).ID)
	}
	for range 10 {
		createTask(t, s, cuttle.NewTask{SpaceID: "Spaces-1", Name: "Deploy", ConcurrencyKey: "Projects-1/Environments-1"})
	}
	var (
		mu      sync.Mutex
		claimed []int64
		wg      sync.WaitGroup
	)
	for round := range 5 {
		for _, n := range nodes {
			wg.Go(func() {
				got, err := s.ClaimTasks(ctx, n, 3)
				if err != nil && !cuttle.IsKind(err, cuttle.KindConflict) {
					t.Errorf("round %d: ClaimTasks: %v", round, err)
				}
				mu.Lock()
				claimed = append(claimed, ids(got)...)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if len(claimed) != 1 {
		t.Errorf("claims of 4 nodes took %v of one key; want exactly one", claimed)
	}
}
