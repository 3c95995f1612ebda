package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/housekeeping"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/sqlite"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// node is one in-process node on an embedded database: a member and an executor.
type node struct {
	store store.Store
	exec  *tasks.Executor
	logs  tasklog.Store
	kinds tasks.Kinds
}

// newNode starts a node with the built-in kinds and extra.
func newNode(t *testing.T, taskCap int, extra ...tasks.Kind) *node {
	t.Helper()
	return newLimitedNode(t, taskCap, cuttle.Limits{}, extra...)
}

// newLimitedNode starts a node with limits.
func newLimitedNode(t *testing.T, taskCap int, limits cuttle.Limits, extra ...tasks.Kind) *node {
	t.Helper()
	return newNodeOn(t, nil, taskCap, limits, extra...)
}

// newNodeOn starts a node whose store is wrap of its embedded database
// (nil: the database itself).
func newNodeOn(t *testing.T, wrap func(store.Store) store.Store, taskCap int, limits cuttle.Limits, extra ...tasks.Kind) *node {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "cuttle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var st store.Store = db
	if wrap != nil {
		st = wrap(db)
	}
	if _, err := st.InitCluster(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	files, err := blob.Open(ctx, blob.Config{Storage: dir})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{store: st, logs: tasklog.Store{Files: files.Of(blob.TaskLogsKey), LineLimit: limits.LogLineBytes}, kinds: tasks.Builtin(files)}
	for _, k := range housekeeping.Kinds(housekeeping.Config{Store: st, Files: files, Logs: n.logs, Limits: limits}) {
		n.kinds.Add(k) // the leader's other scheduled jobs, as a node has them
	}
	for _, k := range extra {
		n.kinds.Add(k)
	}
	m := cluster.New(cluster.Config{Store: st, Logger: quiet, Registration: cuttle.NodeRegistration{Name: "solo", TaskCap: &taskCap}})
	n.exec = tasks.New(tasks.Config{Store: st, Member: m, Logs: n.logs, Kinds: n.kinds, Limits: limits, Logger: quiet})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.exec.Start(ctx)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.exec.Stop(c)
		m.Stop(c)
	})
	return n
}

func (n *node) queue(t *testing.T, name string, args any) cuttle.Task {
	t.Helper()
	b, _ := json.Marshal(args)
	nt, err := n.kinds.Prepare(cuttle.NewTask{SpaceID: "Spaces-1", Name: name, Arguments: b})
	if err != nil {
		t.Fatal(err)
	}
	task, err := n.store.CreateTask(context.Background(), nt)
	if err != nil {
		t.Fatal(err)
	}
	n.store.Notify(context.Background(), store.ChannelTasks, cuttle.FormatID(cuttle.TaskIDPrefix, task.ID))
	return task
}

func (n *node) wait(t *testing.T, id int64, timeout time.Duration, states ...cuttle.TaskState) cuttle.Task {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		task, err := n.store.Task(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if task.State == s {
				return task
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %d is %s after %v, want one of %v", id, task.State, timeout, states)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *node) log(t *testing.T, id int64) string {
	var b strings.Builder
	n.logs.Read(id, tasklog.Cursor{}, func(l tasklog.Line) error {
		fmt.Fprintf(&b, "%s %s\n", l.Category, l.Text)
		return nil
	})
	return b.String()
}

func TestScriptSuccessFailureAndOutput(t *testing.T) {
	n := newNode(t, 5)
	ok := n.queue(t, "AdHocScript", map[string]string{"ScriptBody": "echo hello\necho oops >&2\nprintf 'no newline'", "Syntax": "Bash"})
	bad := n.queue(t, "AdHocScript", map[string]string{"ScriptBody": "echo before; exit 3", "Syntax": "Bash"})
	got := n.wait(t, ok.ID, 10*time.Second, cuttle.TaskSuccess, cuttle.TaskFailed)
	if got.State != cuttle.TaskSuccess || !got.HasWarningsOrErrors || got.ServerNode != "solo" || got.StartTime.IsZero() || got.CompletedTime.IsZero() {
		t.Errorf("succeeding script: %+v", got)
	}
	if log := n.log(t, ok.ID); !strings.Contains(log, "Info hello\n") || !strings.Contains(log, "Error oops\n") || !strings.Contains(log, "Info no newline\n") {
		t.Errorf("log of the succeeding script:\n%s", log)
	}
	got = n.wait(t, bad.ID, 10*time.Second, cuttle.TaskSuccess, cuttle.TaskFailed)
	if got.State != cuttle.TaskFailed || !strings.Contains(got.ErrorMessage, "code 3") {
		t.Errorf("failing script: %s %q", got.State, got.ErrorMessage)
	}
}

// TestScriptOutputIsBounded: a script's output over the node's bound is
// counted and said, not kept, and a line over the log's limit is cut.
func TestScriptOutputIsBounded(t *testing.T) {
	n := newLimitedNode(t, 5, cuttle.Limits{CommandOutputLines: 5, LogLineBytes: 1 << 10})
	tk := n.queue(t, "AdHocScript", map[string]string{"ScriptBody": "head -c 3000 /dev/zero | tr '\\0' '<'; echo; seq 2 10", "Syntax": "Bash"})
	if got := n.wait(t, tk.ID, 10*time.Second, cuttle.TaskSuccess, cuttle.TaskFailed); got.State != cuttle.TaskSuccess {
		t.Fatalf("the script: %s %q", got.State, got.ErrorMessage)
	}
	log := n.log(t, tk.ID)
	want := "Info " + strings.Repeat("<", 1024) + "… [line cut: 1976 more bytes not kept]\nInfo 2\nInfo 3\nInfo 4\nInfo 5\n" +
		"Warning 5 more lines of output (6 bytes) were over the limit of 5 lines or 256MiB, and were not kept.\n"
	if !strings.HasSuffix(log, want) || strings.Contains(log, "Info 6") {
		t.Errorf("log of a script over its bound:\n%s\nwant it to end with\n%s", log, want)
	}
}

// TestRetentionDeletesEndedCommands: the Retention job deletes the agent
// commands of tasks that ended over CommandRetention ago.
func TestRetentionDeletesEndedCommands(t *testing.T) {
	n := newLimitedNode(t, 5, cuttle.Limits{CommandRetention: time.Millisecond})
	ctx := t.Context()
	m, err := n.store.CreateMachine(ctx, cuttle.Machine{SpaceID: "Spaces-1", Name: "web", Style: cuttle.Polling, URI: "poll://abcdefghijklmnopqrst/", Thumbprint: "AB12"})
	if err != nil {
		t.Fatal(err)
	}
	ended := n.queue(t, "Noop", map[string]any{})
	n.wait(t, ended.ID, 10*time.Second, cuttle.TaskSuccess)
	cmds, err := n.store.EnsureCommands(ctx, []cuttle.NewCommand{{MachineID: m.ID, TaskID: ended.ID, Key: "k", Kind: cuttle.CommandScript}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past the retention of a millisecond
	// A scheduled job is queued by the leader; queue one now, as it would.
	job, err := n.store.CreateTask(ctx, cuttle.NewTask{SpaceID: "Spaces-1", Name: cuttle.JobRetention, Arguments: json.RawMessage(`{}`), Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	n.store.Notify(ctx, store.ChannelTasks, cuttle.FormatID(cuttle.TaskIDPrefix, job.ID))
	if got := n.wait(t, job.ID, 10*time.Second, cuttle.TaskSuccess, cuttle.TaskFailed); got.State != cuttle.TaskSuccess {
		t.Fatalf("Retention: %s %q", got.State, got.ErrorMessage)
	}
	if _, err := n.store.Command(ctx, cmds[0].ID); !cuttle.IsKind(err, cuttle.KindNotFound) {
		t.Errorf("the command of the ended task after Retention: %v; want it deleted", err)
	}
	// The leader's own scheduled Retention may have run meanwhile and
	// deleted it first.
	if log := n.log(t, job.ID); !strings.Contains(log, "Deleted 1 agent commands") && !strings.Contains(log, "Deleted 0 agent commands") {
		t.Errorf("the Retention log:\n%s", log)
	}
}

func TestCancelKillsTheScriptsProcesses(t *testing.T) {
	n := newNode(t, 5)
	pidFile := filepath.Join(t.TempDir(), "pid")
	task := n.queue(t, "AdHocScript", map[string]string{"Syntax": "Bash",
		"ScriptBody": "sleep 300 &\necho $! > " + pidFile + "\nwait"})
	n.wait(t, task.ID, 5*time.Second, cuttle.TaskExecuting)
	var pid int
	deadline := time.Now().Add(5 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("the script did not start its child")
	}
	if _, err := n.store.CancelTask(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	n.store.Notify(context.Background(), store.ChannelCancel, cuttle.FormatID(cuttle.TaskIDPrefix, task.ID))
	n.wait(t, task.ID, 5*time.Second, cuttle.TaskCanceled)
	deadline = time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the script's child %d still runs after the task was cancelled", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCapIsNeverExceeded(t *testing.T) {
	n := newNode(t, 2)
	var ids []int64
	for i := 0; i < 8; i++ {
		ids = append(ids, n.queue(t, "Wait", map[string]int{"Seconds": 0}).ID)
		ids = append(ids, n.queue(t, "Noop", map[string]int{}).ID)
	}
	for _, id := range ids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			nodes, _ := n.store.Nodes(context.Background())
			if nodes[0].RunningTaskCount > 2 {
				t.Fatalf("node runs %d tasks with cap 2", nodes[0].RunningTaskCount)
			}
			task, _ := n.store.Task(context.Background(), id)
			if task.State == cuttle.TaskSuccess {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %d is %s", id, task.State)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestPrepareRefusesBadTasks(t *testing.T) {
	files, err := blob.Open(context.Background(), blob.Config{Storage: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	kinds := tasks.Builtin(files)
	for _, c := range []struct {
		name, args string
	}{
		{"Deploy", `{}`},
		{"Retention", `{}`}, // a system task
		{"AdHocScript", `{}`},
		{"AdHocScript", `{"ScriptBody": "true", "Syntax": "Cobol"}`},
		{"AdHocScript", `{"ScriptBody": 42, "Syntax": "Bash"}`},
		{"AdHocScript", `{"ScriptBody": "true", "Syntax": "Bash", "Colour": 1}`},
		{"AdHocScript", `{"ScriptBody": "true", "Syntax": "Bash", "MachineIds": ["web-1"]}`},
		{"AdHocScript", `{"ScriptBody": "true", "Syntax": "Bash", "EnvironmentIds": ["Production"]}`},
		{"AdHocScript", `{"ScriptBody": "true", "Syntax": "Bash", "TargetRoles": "web"}`},
		{"Wait", `{"Seconds": -1}`},
		{"Health", `{"MachineIds": ["Machines-x"]}`},
		{"Health", `{"TimeoutSeconds": -1}`},
	} {
		_, err := kinds.Prepare(cuttle.NewTask{Name: c.name, Arguments: json.RawMessage(c.args)})
		if !cuttle.IsKind(err, cuttle.KindInvalid) {
			t.Errorf("%s %s: %v, want a KindInvalid error", c.name, c.args, err)
		}
	}
	// A script on targets is resumable (its agents keep running it); one
	// on the server is not.
	for args, resumable := range map[string]bool{
		`{"ScriptBody": "true", "Syntax": "Bash", "TargetRoles": ["web"]}`: true,
		`{"ScriptBody": "true", "Syntax": "Bash"}`:                         false,
	} {
		nt, err := kinds.Prepare(cuttle.NewTask{Name: "AdHocScript", Arguments: json.RawMessage(args)})
		if err != nil || nt.Resumable != resumable {
			t.Errorf("AdHocScript %s: Resumable %v, %v; want %v", args, nt.Resumable, err, resumable)
		}
	}
}

// TestDue: a machine never checked is due; one checked is due again when
// its policy's interval ends by the next scheduled look, not before.
func TestDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		last     time.Time
		interval time.Duration
		next     time.Time
		want     bool
	}{
		{time.Time{}, time.Hour, t0, true},
		{t0, time.Hour, t0.Add(time.Hour - time.Second), false},
		{t0, time.Hour, t0.Add(time.Hour), true},
		{t0, 3 * time.Hour, t0.Add(2 * time.Hour), false},
		{t0, time.Minute, t0.Add(time.Hour), true},
	} {
		if got := tasks.Due(c.last, c.interval, c.next); got != c.want {
			t.Errorf("Due(%v, %v, %v) = %v, want %v", c.last, c.interval, c.next, got, c.want)
		}
	}
}

// TestCheckpointFailureSticks: once a checkpoint write fails, every later
// one returns that error and writes nothing, so that a failed write that
// still commits can never overtake a later one (invariant 9); what is
// stored stays the last checkpoint that succeeded.
func TestCheckpointFailureSticks(t *testing.T) {
	t.Parallel()
	results := make(chan [3]error, 1)
	n := newNode(t, 1, tasks.Kind{
		Name: "Sticky", Resumable: true,
		Prepare: func(json.RawMessage) (tasks.Plan, error) { return tasks.Plan{Description: "checkpoints"}, nil },
		Run: func(ctx context.Context, x *tasks.Execution) error {
			var errs [3]error
			errs[0] = x.Checkpoint(ctx, []byte(`"first"`))
			ended, cancel := context.WithCancel(ctx)
			cancel()
			errs[1] = x.Checkpoint(ended, []byte(`"second"`))
			errs[2] = x.Checkpoint(ctx, []byte(`"third"`))
			results <- errs
			return nil
		},
	})
	task := n.queue(t, "Sticky", struct{}{})
	n.wait(t, task.ID, 10*time.Second, cuttle.TaskSuccess)
	errs := <-results
	if errs[0] != nil || errs[1] == nil || errs[2] != errs[1] {
		t.Fatalf("checkpoint errors %v; want nil, then a failure, then the same failure again", errs)
	}
	got, err := n.store.Task(context.Background(), task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Checkpoint) != `"first"` {
		t.Errorf("stored checkpoint %s; want the last that succeeded, \"first\"", got.Checkpoint)
	}
}

// TestParkAndResume: a task that parks is no node's and counts in no cap;
// resumed, it runs again from its checkpoint and ends.
func TestParkAndResume(t *testing.T) {
	parker := tasks.Kind{
		Name:      "Parker",
		Resumable: true,
		Prepare: func(json.RawMessage) (tasks.Plan, error) {
			return tasks.Plan{Description: "waits for a person once"}, nil
		},
		Run: func(ctx context.Context, x *tasks.Execution) error {
			if len(x.Task.Checkpoint) > 0 {
				x.Log.Logf(tasklog.Info, "resumed after %s", x.Task.Checkpoint)
				return nil
			}
			if err := x.Checkpoint(ctx, []byte(`{"waiting":true}`)); err != nil {
				return err
			}
			if err := x.Park(ctx, nil, false, func(context.Context, *collection.Tx) error { return nil }); err != nil {
				return err
			}
			return tasks.ErrParked
		},
	}
	n := newNode(t, 1, parker)
	parked := n.queue(t, "Parker", map[string]any{})
	testcluster.Eventually(t, 10*time.Second, func() error {
		tk, err := n.store.Task(t.Context(), parked.ID)
		if err != nil || !tk.Parked {
			return fmt.Errorf("the task is not parked yet (%v)", err)
		}
		return nil
	})
	// Its cap of one is free: another task runs while it waits.
	other := n.queue(t, "Noop", map[string]any{})
	n.wait(t, other.ID, 10*time.Second, cuttle.TaskSuccess)
	if err := n.store.Update(t.Context(), func(tx *collection.Tx) error { return n.store.ResumeTask(t.Context(), tx, parked.ID) }); err != nil {
		t.Fatal(err)
	}
	n.store.Notify(t.Context(), store.ChannelTasks, cuttle.FormatID(cuttle.TaskIDPrefix, parked.ID))
	if got := n.wait(t, parked.ID, 10*time.Second, cuttle.TaskSuccess, cuttle.TaskFailed); got.State != cuttle.TaskSuccess || got.Epoch != 2 {
		t.Fatalf("the resumed task: %s at epoch %d (%s)", got.State, got.Epoch, got.ErrorMessage)
	}
	if log := n.log(t, parked.ID); !strings.Contains(log, `resumed after {"waiting": true}`) && !strings.Contains(log, `resumed after {"waiting":true}`) {
		t.Errorf("the resumed task's log:\n%s", log)
	}
}

// TestParkWhileCancelled: a task cancelled just before it parks (ParkTask
// refuses a Cancelling task) ends Canceled, not Failed.
func TestParkWhileCancelled(t *testing.T) {
	stores := make(chan store.Store, 1) // the node's, once it exists
	parker := tasks.Kind{
		Name:      "Parker",
		Resumable: true,
		Prepare: func(json.RawMessage) (tasks.Plan, error) {
			return tasks.Plan{Description: "is cancelled as it parks"}, nil
		},
		Run: func(ctx context.Context, x *tasks.Execution) error {
			st := <-stores
			if _, err := st.CancelTask(ctx, x.Task.ID); err != nil {
				return err
			}
			if err := x.Park(ctx, []byte(`{"waiting":true}`), false, func(context.Context, *collection.Tx) error { return nil }); err != nil {
				return err
			}
			return tasks.ErrParked
		},
	}
	n := newNode(t, 1, parker)
	stores <- n.store
	tk := n.queue(t, "Parker", map[string]any{})
	if got := n.wait(t, tk.ID, 10*time.Second, cuttle.TaskCanceled, cuttle.TaskFailed, cuttle.TaskSuccess); got.State != cuttle.TaskCanceled {
		t.Fatalf("a task cancelled as it parked ended %s (%s), want Canceled", got.State, got.ErrorMessage)
	}
}

// committedButFailed is a store whose next SaveCheckpoint, once armed,
// commits and then fails, as a write whose context ended after the
// database took it; it counts the writes that reach the database.
type committedButFailed struct {
	store.Store
	mu     sync.Mutex
	armed  bool
	writes int
}

func (s *committedButFailed) SaveCheckpoint(ctx context.Context, ref cuttle.TaskRef, checkpoint []byte) error {
	s.mu.Lock()
	fail := s.armed
	s.armed = false
	s.writes++
	s.mu.Unlock()
	err := s.Store.SaveCheckpoint(ctx, ref, checkpoint)
	if err == nil && fail {
		return cuttle.Errorf(cuttle.KindUnavailable, "the connection broke after the statement was sent")
	}
	return err
}

// TestCheckpointErrorIsSticky: once a checkpoint write fails (and, as
// here, commits anyway), every later Checkpoint of the run returns that
// error and writes nothing, so that the failed write is never overtaken by
// a later one out of order (DESIGN.md invariant 9); the run ends, and the
// stored checkpoint is the last write that reached the database.
func TestCheckpointErrorIsSticky(t *testing.T) {
	t.Parallel()
	var st *committedButFailed
	errs := make(chan [2]error, 1)
	kind := tasks.Kind{Name: "Sticky", Resumable: true,
		Prepare: func(json.RawMessage) (tasks.Plan, error) { return tasks.Plan{Description: "checkpoints"}, nil },
		Run: func(ctx context.Context, x *tasks.Execution) error {
			if err := x.Checkpoint(ctx, []byte(`{"n":1}`)); err != nil {
				return err
			}
			st.mu.Lock()
			st.armed = true
			st.mu.Unlock()
			first := x.Checkpoint(ctx, []byte(`{"n":2}`))
			second := x.Checkpoint(ctx, []byte(`{"n":3}`))
			errs <- [2]error{first, second}
			return second
		}}
	n := newNodeOn(t, func(db store.Store) store.Store { st = &committedButFailed{Store: db}; return st }, 1, cuttle.Limits{}, kind)
	tk := n.queue(t, "Sticky", map[string]any{})
	var got [2]error
	select {
	case got = <-errs:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not checkpoint")
	}
	if got[0] == nil || got[1] != got[0] {
		t.Fatalf("the checkpoint after a failed one returned %v; want the failed one's error %v", got[1], got[0])
	}
	st.mu.Lock()
	writes := st.writes
	st.mu.Unlock()
	if writes != 2 {
		t.Errorf("%d checkpoint writes reached the database; want 2 (none after the failed one)", writes)
	}
	stored, err := n.store.Task(context.Background(), tk.ID)
	if err != nil || string(stored.Checkpoint) != `{"n": 2}` && string(stored.Checkpoint) != `{"n":2}` {
		t.Errorf("the stored checkpoint is %s (%v); want the failed write's, which committed", stored.Checkpoint, err)
	}
}
