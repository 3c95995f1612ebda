package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/cuttledeploy/cuttle/store/postgres"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

// fast are cluster settings that make failure tests quick: heartbeat 200 ms,
// so the leader lease lasts 600 ms, and a node is offline after 1.5 s.
const (
	fastHeartbeat = 200 * time.Millisecond
	fastStale     = 1500 * time.Millisecond
)

// startCluster starts n nodes on a fresh database of the shared PostgreSQL,
// with fast settings, and waits for one leader.
func startCluster(t *testing.T, n int) *testcluster.Cluster {
	t.Helper()
	pg := testcluster.SharedPostgres(t)
	return startClusterOn(t, pg.NewDatabase(t), n)
}

func startClusterOn(t *testing.T, db string, n int) *testcluster.Cluster {
	t.Helper()
	c := testcluster.NewCluster(t, db)
	first := c.StartNode("node-a")
	if _, err := first.Client.UpdateCluster(testcluster.Context(t, 5*time.Second), fastHeartbeat, fastStale); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		c.StartNode(fmt.Sprintf("node-%c", 'a'+i))
	}
	if _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOneLeaderDrainMovesLeadership(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	watch := c.WatchLeaders(t)
	leader, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Drain the leader through another node's API.
	var other *testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			other = n
			break
		}
	}
	ctx := testcluster.Context(t, 10*time.Second)
	ln, err := other.Client.FindNode(ctx, leader.Config.Name)
	if err != nil {
		t.Fatal(err)
	}
	drain := true
	if _, err := other.Client.UpdateNode(ctx, ln.Id, nil, &drain); err != nil {
		t.Fatal(err)
	}
	if err := leader.WaitPing(2*time.Second, http.StatusTeapot); err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitLeader(2*time.Second, leader)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := leader.Ping(); err != nil || p.Leading() || !p.Node.IsInMaintenanceMode {
		t.Fatalf("drained node's ping: %+v, %v; want a follower in maintenance mode", p, err)
	}
	// The drained node never bids again while draining. (The leadership
	// may still move between the others: on a loaded machine a leader can
	// lose its lease fairly, and WatchLeaders checks that two never lead
	// at once.)
	time.Sleep(3 * fastHeartbeat)
	if l, err := c.WaitLeader(5*time.Second, leader); err != nil || l == leader {
		t.Fatalf("leader after the drain: %v, %v; want a node other than the drained %s", l, err, leader.Config.Name)
	}
	if p, err := leader.Ping(); err != nil || p.Leading() {
		t.Fatalf("the drained node's ping: %+v, %v; want a follower", p, err)
	}
	// Undrain: ping 200 again. A node starved of CPU may answer 503 until
	// it trusts its state again, as a balancer would see; try again then.
	undrain := false
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, err := other.Client.UpdateNode(ctx, ln.Id, nil, &undrain)
		return err
	})
	if err := leader.WaitPing(2*time.Second, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	// A new task cap reaches the node's memory too, whichever node took the request.
	taskCap := 0
	if _, err := other.Client.UpdateNode(ctx, ln.Id, &taskCap, nil); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Second, func() error {
		if p := mustPing(t, leader); p.Node.MaxConcurrentTasks != 0 {
			return fmt.Errorf("ping shows task cap %d, want 0", p.Node.MaxConcurrentTasks)
		}
		return nil
	})
	watch.Stop()
	rounds, single := watch.Rounds()
	t.Logf("%d sampling rounds, %d with exactly one leader", rounds, single)
}

func TestLeaderKilledElectsAnother(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	c.WatchLeaders(t)
	leader, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	leader.Kill()
	next, err := c.WaitLeader(5*time.Second, leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s took over %v after SIGKILL of %s", next.Config.Name, time.Since(start), leader.Config.Name)
	// The dead node goes offline once the stale timeout passes.
	testcluster.Eventually(t, 3*fastStale, func() error {
		n, err := next.Client.FindNode(context.Background(), leader.Config.Name)
		if err != nil {
			return err
		}
		if !n.IsOffline || n.Rank == "Leader" {
			return fmt.Errorf("killed node: offline=%v rank=%s", n.IsOffline, n.Rank)
		}
		return nil
	})
}

func TestStoppedLeaderLearnsItLostItsTerm(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	c.WatchLeaders(t)
	old, err := c.WaitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	oldTerm := mustPing(t, old).Term
	if err := old.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The stopped leader may hold the lease's row lock in a transaction:
	// then the bids wait until PostgreSQL ends its idle session.
	next, err := c.WaitLeader(postgres.IdleInTransactionTimeout+5*time.Second, old)
	if err != nil {
		old.Signal(syscall.SIGCONT)
		t.Fatal(err)
	}
	time.Sleep(fastStale) // past the stale timeout
	newTerm := mustPing(t, next).Term
	if err := old.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if newTerm <= oldTerm {
		t.Fatalf("new leader's term %d is not after the old term %d", newTerm, oldTerm)
	}
	// From its first answer after SIGCONT on, the old leader must not claim leadership.
	deadline := time.Now().Add(4 * fastHeartbeat * 3)
	for time.Now().Before(deadline) {
		// It may win a later term fairly (on a loaded machine the new leader
		// can lose its lease too), but never claims a term older than the
		// new leader's.
		if p := mustPing(t, old); p.Leading() && p.Term < newTerm {
			t.Fatalf("resumed node still claims to lead term %d; the cluster's leader is %s (term %d)", p.Term, next.Config.Name, newTerm)
		}
	}
	testcluster.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(old.Log(), "no longer leading the cluster") {
			return errors.New("the resumed node did not log that it stepped down")
		}
		return nil
	})
	// The cluster still has one leader, of the new term or a later one. It
	// need not be the same node: on a loaded machine a leader may lose its
	// lease fairly (WatchLeaders checks that no two ever lead at once).
	testcluster.Eventually(t, 5*time.Second, func() error {
		for _, n := range c.Nodes {
			if p, err := n.Ping(); err == nil && p.Leading() && p.Term >= newTerm {
				return nil
			}
		}
		return fmt.Errorf("no node leads term %d or a later one", newTerm)
	})
}

func mustPing(t *testing.T, n *testcluster.Node) testcluster.PingResult {
	t.Helper()
	p, err := n.Ping()
	if err != nil {
		t.Fatalf("ping %s: %v", n.Config.Name, err)
	}
	return p
}

func TestWrongMasterKeyRefused(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	cfg := c.NodeConfig("intruder")
	cfg.MasterKey = masterkey.Generate().String()
	node := testcluster.NewNode(t, cfg)
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	err := node.Wait(20 * time.Second)
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("node with a wrong master key: exit %v, want a non-zero exit", err)
	}
	if log := node.Log(); !strings.Contains(log, "master key does not match the cluster's") || !strings.Contains(log, "--master-key") {
		t.Fatalf("the error does not say the master key does not match and what to do:\n%s", log)
	}
	if _, err := c.Nodes[0].Client.FindNode(testcluster.Context(t, 5*time.Second), "intruder"); err == nil {
		t.Fatal("the refused node registered itself")
	}
}

func TestSettingsReachEveryNode(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	ctx := testcluster.Context(t, 30*time.Second)
	cl := c.Nodes[1].Client

	// cadence returns, for each node, how many distinct check-ins the
	// node list showed while it was read for at least d and at least 20
	// times, and how long that took. A starved API answers slowly: reading
	// it 20 times keeps a fast cadence from looking slow for want of reads.
	cadence := func(d time.Duration) (map[string]int, time.Duration) {
		seen := map[string]map[time.Time]bool{}
		start := time.Now()
		for reads := 0; reads < 20 || time.Since(start) < d; reads++ {
			nodes, err := cl.Nodes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes {
				if seen[n.Name] == nil {
					seen[n.Name] = map[time.Time]bool{}
				}
				if n.LastSeen != nil {
					seen[n.Name][*n.LastSeen] = true
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		out := map[string]int{}
		for name, times := range seen {
			out[name] = len(times)
		}
		return out, time.Since(start)
	}
	// applied waits until every node has checked in twice since the last
	// change of the settings: the first may have been under way with the
	// old ones, the second was made knowing the new. Counting starts there,
	// not at the change, which a loaded machine spreads over a while.
	applied := func() {
		t.Helper()
		last := map[string]time.Time{}
		checkIns := map[string]int{}
		testcluster.Eventually(t, 20*time.Second, func() error {
			nodes, err := cl.Nodes(ctx)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.LastSeen != nil && !n.LastSeen.Equal(last[n.Name]) {
					if !last[n.Name].IsZero() {
						checkIns[n.Name]++
					}
					last[n.Name] = *n.LastSeen
				}
				if checkIns[n.Name] < 2 {
					return fmt.Errorf("node %s checked in %d times since the change", n.Name, checkIns[n.Name])
				}
			}
			return nil
		})
	}
	if _, err := cl.UpdateCluster(ctx, 2*time.Second, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	applied()
	counts, took := cadence(3 * time.Second)
	for name, n := range counts {
		// One check-in per 2 s, and the last before the reads began.
		if most := int((took+2*time.Second-1)/(2*time.Second)) + 1; n > most {
			t.Errorf("node %s checked in %d times in %v with a 2 s heartbeat; want at most %d", name, n, took, most)
		}
	}
	if _, err := cl.UpdateCluster(ctx, 100*time.Millisecond, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	applied()
	counts, took = cadence(2 * time.Second)
	for name, n := range counts {
		// 20 in 2 s on an idle machine; a node starved of CPU checks in
		// less often, but more than the 2 s heartbeat would give.
		if least := max(4, int(took/(2*time.Second))+2); n < least {
			t.Errorf("node %s checked in %d times in %v with a 100 ms heartbeat; want at least %d", name, n, took, least)
		}
	}
	// The stale timeout: a killed node goes offline 2 s after its last
	// check-in now, not 10 s.
	victim := c.Nodes[2]
	victim.Kill()
	var offline client.Node
	testcluster.Eventually(t, 8*time.Second, func() error { // the old 10 s timeout would not be met

		n, err := cl.FindNode(ctx, victim.Config.Name)
		if err != nil || !n.IsOffline {
			return fmt.Errorf("killed node still online (%v)", err)
		}
		offline = n
		return nil
	})
	if since := time.Since(*offline.LastSeen); since < 2*time.Second {
		t.Errorf("killed node went offline %v after its last check-in, before the 2 s stale timeout", since)
	}
}

func TestRemoveNode(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	ctx := testcluster.Context(t, 20*time.Second)
	cl := c.Nodes[0].Client
	victim := c.Nodes[1]
	vn, err := cl.FindNode(ctx, victim.Config.Name)
	if err != nil {
		t.Fatal(err)
	}
	err = cl.Do(ctx, http.MethodDelete, "/api/octopusservernodes/"+vn.Id, nil, nil)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("removing an online node: %v, want 409", err)
	}
	victim.Kill()
	testcluster.Eventually(t, 3*fastStale, func() error {
		return cl.Do(ctx, http.MethodDelete, "/api/octopusservernodes/"+vn.Id, nil, nil)
	})
	if _, err := cl.FindNode(ctx, victim.Config.Name); err == nil {
		t.Fatal("removed node is still listed")
	}
	err = cl.Do(ctx, http.MethodDelete, "/api/octopusservernodes/"+vn.Id, nil, nil)
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("removing a removed node: %v, want 404", err)
	}
}

// TestCleanStopMarksOfflineAndResigns: a leader stopped with SIGTERM has
// given up its lease in the database by the time it exits (so another node
// can lead at its next bid, without waiting for the lease to expire) and
// is offline at once.
func TestCleanStopMarksOfflineAndResigns(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	c.WatchLeaders(t)
	ctx := testcluster.Context(t, 20*time.Second)
	st, err := postgres.Open(ctx, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var leader *testcluster.Node
	var term int64
	testcluster.Eventually(t, 5*time.Second, func() error {
		if leader, err = c.WaitLeader(5 * time.Second); err != nil {
			return err
		}
		p, err := leader.Ping()
		if err != nil || p.Term == 0 {
			return fmt.Errorf("%s does not say which term it leads (%v)", leader.Config.Name, err)
		}
		term = p.Term
		return nil
	})
	start := time.Now()
	if err := leader.Terminate(5 * time.Second); err != nil {
		t.Fatalf("SIGTERM: exit %v, want status 0 within 5 s", err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	lease, _, err := st.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lease.Term == term && lease.NodeID != 0 {
		t.Fatalf("after a clean stop the lease of term %d is still held (%+v); want it given up", term, lease)
	}
	// Liveness: the other node bids at its next heartbeat, which a starved
	// process may take a while to reach.
	next, err := c.WaitLeader(10*time.Second, leader)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s leads %v after SIGTERM", next.Config.Name, time.Since(start))
	n, err := next.Client.FindNode(ctx, leader.Config.Name)
	if err != nil || !n.IsOffline {
		t.Fatalf("cleanly stopped node: %+v, %v; want offline at once", n, err)
	}
}

func TestDatabaseRestart(t *testing.T) {
	t.Parallel()
	pg, err := testcluster.StartPostgres(testcluster.Context(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	url, err := pg.CreateDatabase(testcluster.Context(t, 10*time.Second), "cuttle")
	if err != nil {
		t.Fatal(err)
	}
	c := startClusterOn(t, url, 3)
	c.WatchLeaders(t)

	if err := pg.Stop(testcluster.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if err := n.WaitPing(10*time.Second, http.StatusServiceUnavailable); err != nil {
			t.Fatal(err)
		}
	}
	if err := pg.Start(testcluster.Context(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if err := n.WaitPing(15*time.Second, http.StatusOK); err != nil {
			t.Fatal(err)
		}
		if n.Exited() {
			t.Fatalf("node %s exited: %v", n.Config.Name, n.ExitErr())
		}
	}
	if _, err := c.WaitLeader(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}
