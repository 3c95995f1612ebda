package postgres_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/postgres"
	"github.com/cuttledeploy/cuttle/store/storetest"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// The package's tests share one throwaway PostgreSQL server; each test gets
// a database of its own. Tests that stop the server start their own.
func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

// waitTimeout bounds every wait on a condition.
const waitTimeout = 20 * time.Second

// open opens a store on a fresh database of the shared server, closed when
// the test ends.
func open(t *testing.T, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	return openURL(t, testcluster.SharedPostgres(t).NewDatabase(t), opts...)
}

func openURL(t *testing.T, url string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestBidLeaseRace has 20 nodes bid at once for an expired lease, many
// times: exactly one wins each round, and the term grows by exactly one.
func TestBidLeaseRace(t *testing.T) {
	const bidders = 20
	s := open(t, postgres.WithMaxConns(bidders+2))
	ctx := t.Context()
	if _, err := s.InitCluster(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, bidders)
	for i := range ids {
		n, err := s.RegisterNode(ctx, cuttle.NodeRegistration{Name: fmt.Sprintf("node-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = n.ID
	}
	for round := range 10 {
		// Nobody holds the lease: the previous round's winner resigned.
		before, now, err := s.Lease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if before.NodeID != 0 && before.ExpiresAt.After(now) {
			t.Fatalf("round %d: the lease is held before the race: %+v", round, before)
		}
		// The winner holds the lease for a minute, so that it cannot expire
		// during the round however slowly the bids run: the other bids of the
		// round lose to it.
		start := make(chan struct{})
		type result struct {
			id    int64
			lease cuttle.Lease
			won   bool
			err   error
		}
		results := make(chan result, bidders)
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				<-start
				l, won, err := s.BidLease(ctx, id, time.Minute)
				results <- result{id, l, won, err}
			})
		}
		close(start)
		wg.Wait()
		close(results)
		var winners []result
		for r := range results {
			if r.err != nil {
				t.Fatalf("round %d: BidLease by %d: %v", round, r.id, r.err)
			}
			if r.won {
				winners = append(winners, r)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d bids won, want exactly 1: %+v", round, len(winners), winners)
		}
		w := winners[0]
		if w.lease.Term != before.Term+1 || w.lease.NodeID != w.id {
			t.Fatalf("round %d: the winner got %+v, want term %d held by %d", round, w.lease, before.Term+1, w.id)
		}
		after, _, err := s.Lease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.Term != before.Term+1 || after.NodeID != w.id {
			t.Fatalf("round %d: lease after the race %+v, want term %d held by %d", round, after, before.Term+1, w.id)
		}
		if err := s.ResignLease(ctx, w.id, w.lease.Term); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListenSurvivesRestart stops and starts the database under a listener:
// the store answers KindUnavailable while it is down, and the listener
// delivers ChannelResync once it is back, then notifications again.
func TestListenSurvivesRestart(t *testing.T) {
	if os.Getenv(testcluster.EnvTestDatabaseURL) != "" {
		t.Log("restarting needs a harness-owned server: starting one besides " + testcluster.EnvTestDatabaseURL)
		t.Setenv(testcluster.EnvTestDatabaseURL, "")
	}
	pg, err := testcluster.StartPostgres(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	s := openURL(t, pg.NewDatabase(t))
	ctx := t.Context()

	ch, err := s.Listen(ctx)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	notify(t, s, store.ChannelNodes, "before")
	expect(t, ch, store.Notification{Channel: store.ChannelNodes, Payload: "before"})

	if err := pg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Now(ctx)
	if !cuttle.IsKind(err, cuttle.KindUnavailable) {
		t.Errorf("Now with the database stopped: %v, want KindUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Now with the database stopped took %v", d)
	}
	if _, err := s.Listen(ctx); !cuttle.IsKind(err, cuttle.KindUnavailable) {
		t.Errorf("Listen with the database stopped: %v, want KindUnavailable", err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, store.Notification{Channel: store.ChannelResync})

	// The pool recovers by itself, and the listener listens again.
	notify(t, s, store.ChannelLeader, "after")
	expect(t, ch, store.Notification{Channel: store.ChannelLeader, Payload: "after"})
}

// TestOpenUnavailable opens a store on a port nobody listens on.
func TestOpenUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = postgres.Open(t.Context(), "postgres://postgres@"+addr+"/cuttle?sslmode=disable")
	if !cuttle.IsKind(err, cuttle.KindUnavailable) {
		t.Fatalf("Open of a dead address: %v, want KindUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open of a dead address took %v", d)
	}

	_, err = postgres.Open(t.Context(), "postgres://[bad")
	if !cuttle.IsKind(err, cuttle.KindInvalid) {
		t.Fatalf("Open of a malformed URL: %v, want KindInvalid", err)
	}
}

// TestConcurrentOpen has several nodes open (and so migrate) one new
// database at once.
func TestConcurrentOpen(t *testing.T) {
	url := testcluster.SharedPostgres(t).NewDatabase(t)
	const nodes = 5
	errs := make(chan error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), url)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			_, err = s.RegisterNode(t.Context(), cuttle.NodeRegistration{Name: fmt.Sprintf("node-%d", i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s := openURL(t, url)
	nodesNow, err := s.Nodes(t.Context())
	if err != nil || len(nodesNow) != nodes {
		t.Fatalf("Nodes = %d nodes, %v; want %d", len(nodesNow), err, nodes)
	}
}

// TestListenStopsAtClose checks that Close ends listeners and closes their
// channels.
func TestListenStopsAtClose(t *testing.T) {
	s, err := postgres.Open(t.Context(), testcluster.SharedPostgres(t).NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case n, ok := <-ch:
		if ok {
			t.Fatalf("got %+v after Close, want a closed channel", n)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the channel is still open after Close")
	}
	if _, err := s.Listen(context.Background()); err == nil {
		t.Error("Listen on a closed store succeeded")
	}
}

// notify sends a notification, retrying while the database is unavailable.
func notify(t *testing.T, s store.Store, channel, payload string) {
	t.Helper()
	var err error
	waitFor(t, "Notify to succeed", func() bool {
		err = s.Notify(t.Context(), channel, payload)
		if err != nil && !cuttle.IsKind(err, cuttle.KindUnavailable) {
			t.Fatalf("Notify: %v", err)
		}
		return err == nil
	})
}

// expect waits for want on ch, failing on anything else.
func expect(t *testing.T, ch <-chan store.Notification, want store.Notification) {
	t.Helper()
	select {
	case got, ok := <-ch:
		if !ok {
			t.Fatalf("the listener closed its channel, want %+v", want)
		}
		if got != want {
			t.Fatalf("got notification %+v, want %+v", got, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no notification in %v, want %+v", waitTimeout, want)
	}
}

// waitFor polls cond until it is true, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFrozenTransactionReleasesTheLease: a node frozen in the middle of a
// transaction that locks the lease (as a SIGSTOP can catch one) blocks the
// other nodes' bids only until PostgreSQL ends its idle session, about
// IdleInTransactionTimeout; then another node wins the lease.
func TestFrozenTransactionReleasesTheLease(t *testing.T) {
	t.Parallel()
	url := testcluster.SharedPostgres(t).NewDatabase(t)
	frozen, other := openURL(t, url), openURL(t, url)
	ctx := t.Context()
	if _, err := frozen.InitCluster(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	a, err := frozen.RegisterNode(ctx, cuttle.NodeRegistration{Name: "frozen"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := other.RegisterNode(ctx, cuttle.NodeRegistration{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, won, err := frozen.BidLease(ctx, a.ID, 100*time.Millisecond); err != nil || !won {
		t.Fatalf("the first bid: %v, %v", won, err)
	}
	locked := make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		ended <- frozen.Update(ctx, func(tx *collection.Tx) error {
			if _, err := tx.Q.Exec(ctx, `SELECT 1 FROM leader_lease FOR UPDATE`); err != nil {
				return err
			}
			close(locked)
			time.Sleep(postgres.IdleInTransactionTimeout + 2*time.Second) // frozen
			_, err := tx.Q.Exec(ctx, `SELECT 1`)
			return err
		})
	}()
	<-locked
	start := time.Now()
	for {
		bid, cancel := context.WithTimeout(ctx, time.Second)
		_, won, err := other.BidLease(bid, b.ID, time.Second)
		cancel()
		if err == nil && won {
			break
		}
		if time.Since(start) > postgres.IdleInTransactionTimeout+time.Second+500*time.Millisecond {
			t.Fatalf("no bid won %v after the frozen transaction locked the lease (last: %v, %v)", time.Since(start), won, err)
		}
	}
	t.Logf("the other node won the lease %v after the frozen transaction locked it", time.Since(start).Round(time.Millisecond))
	if err := <-ended; err == nil {
		t.Error("the frozen transaction committed after the server ended its session")
	}
}
