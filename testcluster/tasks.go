package testcluster

// This file holds helpers for tests of server tasks across node processes.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
)

// Fast cluster settings for tests of tasks and agents: a heartbeat of
// 200 ms (a 600 ms leader lease), a node offline 1.5 s after its last
// check-in.
const (
	FastHeartbeat = 200 * time.Millisecond
	FastStale     = 1500 * time.Millisecond
)

// StartFastCluster starts one node per cap, named node-a, node-b, ..., each
// with --task-cap set to its cap, on a fresh database of the shared
// PostgreSQL; right after the first node starts it sets the fast settings
// and any extra cluster settings; then it waits for a leader.
func StartFastCluster(tb testing.TB, extra map[string]time.Duration, caps ...int) *Cluster {
	tb.Helper()
	c := NewCluster(tb, SharedPostgres(tb).NewDatabase(tb))
	for i, taskCap := range caps {
		n := c.StartNode(fmt.Sprintf("node-%c", 'a'+i), "--task-cap", strconv.Itoa(taskCap))
		if i == 0 {
			settings := map[string]time.Duration{"HeartbeatFrequencySeconds": FastHeartbeat, "StaleTimeoutSeconds": FastStale}
			for k, v := range extra {
				settings[k] = v
			}
			if _, err := n.Client.SetClusterSettings(Context(tb, 5*time.Second), settings); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if _, err := c.WaitLeader(10 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return c
}

// Node returns the cluster's node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.nodes() {
		if n.Config.Name == name {
			return n
		}
	}
	return nil
}

// TaskNumber returns the number of a task id such as "ServerTasks-42".
func TaskNumber(tb testing.TB, id string) int64 {
	tb.Helper()
	n, err := cuttle.ParseID(cuttle.TaskIDPrefix, id)
	if err != nil {
		tb.Fatalf("task id %q: %v", id, err)
	}
	return n
}

// TaskLogSegment returns the path of the log segment that the owner of a
// task at epoch writes in the cluster's shared storage:
// <storage>/tasklogs/<task number>/<epoch, 8 digits>.log.
func (c *Cluster) TaskLogSegment(tb testing.TB, id string, epoch int64) string {
	tb.Helper()
	return filepath.Join(c.Storage, "tasklogs", strconv.FormatInt(TaskNumber(tb, id), 10), fmt.Sprintf("%08d.log", epoch))
}

// FileSize returns the size of a file, or -1 if it does not exist.
func FileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// listTake is the page size of ListTasks.
const listTake = 1000

// ListTasks returns every task the query selects (such as
// url.Values{"states": {"Executing"}, "node": {"node-a"}}), newest first.
func ListTasks(ctx context.Context, cl *client.Client, query url.Values) ([]client.Task, error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("take", strconv.Itoa(listTake))
	var page struct {
		TotalResults int
		Items        []client.Task
	}
	if err := cl.Do(ctx, http.MethodGet, "/api/tasks?"+q.Encode(), nil, &page); err != nil {
		return nil, err
	}
	// The count and the page are read at different instants, so only a
	// full page tells that tasks were left out.
	if len(page.Items) >= listTake {
		return nil, fmt.Errorf("the query %s selects %d tasks, more than one page", q.Encode(), page.TotalResults)
	}
	return page.Items, nil
}

// TaskLog returns a task's log as text (GET /api/tasks/{id}/raw).
func TaskLog(ctx context.Context, cl *client.Client, id string) (string, error) {
	var b strings.Builder
	err := cl.TaskLog(ctx, id, false, &b)
	return b.String(), err
}

// WaitTask waits until the task is in one of the states and returns it; it
// fails the test after timeout.
func WaitTask(tb testing.TB, cl *client.Client, id string, timeout time.Duration, states ...string) client.Task {
	tb.Helper()
	var t client.Task
	Eventually(tb, timeout, func() error {
		var err error
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if t, err = cl.Task(ctx, id); err != nil {
			return err
		}
		for _, s := range states {
			if t.State == s {
				return nil
			}
		}
		return fmt.Errorf("task %s is %s on %q (%s), want one of %v", id, t.State, t.ServerNode, t.ErrorMessage, states)
	})
	return t
}

// SetTaskCap sets the task cap of the node named name through cl (which
// may be another node's client).
func SetTaskCap(ctx context.Context, cl *client.Client, name string, taskCap int) error {
	n, err := cl.FindNode(ctx, name)
	if err != nil {
		return err
	}
	_, err = cl.UpdateNode(ctx, n.Id, &taskCap, nil)
	return err
}

// ProcessAlive reports whether a process with the pid exists and is not a
// zombie (an exited process nobody has reaped yet is gone for a test's
// purposes: in a container, orphans may never be reaped).
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may hold spaces.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}
