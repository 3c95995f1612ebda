package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// lease reads the lease.
func lease(t *testing.T, s store.Store) cuttle.Lease {
	t.Helper()
	l, _, err := s.Lease(t.Context())
	check(t, err, "Lease")
	return l
}

// wantLease fails the test unless l has the term and holder.
func wantLease(t *testing.T, what string, l cuttle.Lease, term, nodeID int64) {
	t.Helper()
	if l.Term != term || l.NodeID != nodeID {
		t.Errorf("%s: lease term %d held by %d, want term %d held by %d", what, l.Term, l.NodeID, term, nodeID)
	}
}

// bid bids for the lease for d and fails the test unless the result is won.
func bid(t *testing.T, s store.Store, nodeID int64, d time.Duration, want bool) cuttle.Lease {
	t.Helper()
	l, won, err := s.BidLease(t.Context(), nodeID, d)
	check(t, err, fmt.Sprintf("BidLease by %d", nodeID))
	if won != want {
		t.Fatalf("BidLease by %d won = %v, want %v (lease %+v)", nodeID, won, want, l)
	}
	return l
}

func testLeaseInitial(t *testing.T, s store.Store) {
	initCluster(t, s)
	l, dbNow, err := s.Lease(t.Context())
	check(t, err, "Lease")
	wantLease(t, "a new store", l, 0, 0)
	if dbNow.IsZero() {
		t.Error("Lease returned a zero database time")
	}
	if after := now(t, s); dbNow.After(after) {
		t.Errorf("Lease returned the time %v, after the later Now %v", dbNow, after)
	}
}

func testBidLease(t *testing.T, s store.Store) {
	initCluster(t, s)
	a := register(t, s, "a")
	b := register(t, s, "b")

	la := bid(t, s, a.ID, time.Minute, true)
	wantLease(t, "the first bid", la, 1, a.ID)
	if n := now(t, s); !la.ExpiresAt.After(n) {
		t.Errorf("the won lease expires at %v, not after the database's now %v", la.ExpiresAt, n)
	}

	lb := bid(t, s, b.ID, time.Minute, false)
	wantLease(t, "a bid while the lease is held", lb, 1, a.ID)
	if !lb.ExpiresAt.Equal(la.ExpiresAt) {
		t.Errorf("a lost bid returned expiry %v, want the holder's %v", lb.ExpiresAt, la.ExpiresAt)
	}
	l := lease(t, s)
	wantLease(t, "Lease", l, 1, a.ID)
	if !l.ExpiresAt.Equal(la.ExpiresAt) {
		t.Errorf("Lease expires at %v, want %v", l.ExpiresAt, la.ExpiresAt)
	}
}

func testBidLeaseAfterExpiry(t *testing.T, s store.Store) {
	initCluster(t, s)
	a := register(t, s, "a")
	b := register(t, s, "b")

	la := bid(t, s, a.ID, 100*time.Millisecond, true)
	wantLease(t, "the first bid", la, 1, a.ID)

	const d = time.Minute
	var lb cuttle.Lease
	waitFor(t, "b to win the expired lease", func() bool {
		var won bool
		var err error
		lb, won, err = s.BidLease(t.Context(), b.ID, d)
		check(t, err, "BidLease")
		if !won {
			wantLease(t, "a lost bid", lb, 1, a.ID)
		}
		return won
	})
	wantLease(t, "the bid after expiry", lb, 2, b.ID)
	// b's bid took effect at its expiry minus d, which must not be before
	// a's lease expired.
	if won := lb.ExpiresAt.Add(-d); won.Before(la.ExpiresAt) {
		t.Errorf("b won the lease at %v, before a's lease expired at %v", won, la.ExpiresAt)
	}
}

func testBidLeaseDraining(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "a")
	b := register(t, s, "b")
	_, err := s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{IsInMaintenanceMode: ptr(true)})
	check(t, err, "UpdateNode")

	l := bid(t, s, a.ID, time.Minute, false)
	wantLease(t, "a draining node's bid for an empty lease", l, 0, 0)

	lb := bid(t, s, b.ID, 50*time.Millisecond, true)
	waitPast(t, s, lb.ExpiresAt)
	l = bid(t, s, a.ID, time.Minute, false)
	wantLease(t, "a draining node's bid for an expired lease", l, 1, b.ID)
}

func testBidLeaseOffline(t *testing.T, s store.Store) {
	initCluster(t, s)
	a := register(t, s, "a")
	setOffline(t, s, a)
	l := bid(t, s, a.ID, time.Minute, false)
	wantLease(t, "an offline node's bid", l, 0, 0)

	a = register(t, s, a.Name)
	l = bid(t, s, a.ID, time.Minute, true)
	wantLease(t, "the bid after starting again", l, 1, a.ID)
}

func testBidLeaseConcurrent(t *testing.T, s store.Store) {
	initCluster(t, s)
	const n = 10
	var ids []int64
	for i := range n {
		ids = append(ids, register(t, s, fmt.Sprintf("node-%d", i)).ID)
	}

	type result struct {
		node  int64
		lease cuttle.Lease
		won   bool
		err   error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			<-start
			l, won, err := s.BidLease(t.Context(), id, time.Minute)
			results[i] = result{id, l, won, err}
		})
	}
	close(start)
	wg.Wait()

	var winners []int64
	for _, r := range results {
		check(t, r.err, fmt.Sprintf("BidLease by %d", r.node))
		if r.won {
			winners = append(winners, r.node)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d bids won (%v), want exactly 1", len(winners), winners)
	}
	for _, r := range results {
		wantLease(t, fmt.Sprintf("the lease BidLease by %d returned", r.node), r.lease, 1, winners[0])
	}
	wantLease(t, "Lease", lease(t, s), 1, winners[0])
}

func testRenewLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "a")
	b := register(t, s, "b")

	l1 := bid(t, s, a.ID, time.Minute, true)
	l2, err := s.RenewLease(ctx, a.ID, l1.Term, 2*time.Minute)
	check(t, err, "RenewLease")
	wantLease(t, "RenewLease", l2, l1.Term, a.ID)
	if !l2.ExpiresAt.After(l1.ExpiresAt) {
		t.Errorf("RenewLease: expiry %v, want after %v", l2.ExpiresAt, l1.ExpiresAt)
	}
	if l := lease(t, s); !l.ExpiresAt.Equal(l2.ExpiresAt) {
		t.Errorf("Lease after RenewLease expires at %v, want %v", l.ExpiresAt, l2.ExpiresAt)
	}

	_, err = s.RenewLease(ctx, a.ID, l1.Term+1, time.Minute)
	wantKind(t, err, cuttle.KindConflict, "RenewLease with a wrong term")
	_, err = s.RenewLease(ctx, b.ID, l1.Term, time.Minute)
	wantKind(t, err, cuttle.KindConflict, "RenewLease by a node that does not hold the lease")

	_, err = s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{IsInMaintenanceMode: ptr(true)})
	check(t, err, "UpdateNode")
	_, err = s.RenewLease(ctx, a.ID, l1.Term, time.Minute)
	wantKind(t, err, cuttle.KindConflict, "RenewLease by a draining holder")

	if l := lease(t, s); l.Term != l1.Term || l.NodeID != a.ID || !l.ExpiresAt.Equal(l2.ExpiresAt) {
		t.Errorf("Lease after refused renewals = %+v, want %+v", l, l2)
	}
}

func testResignLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "a")
	b := register(t, s, "b")

	la := bid(t, s, a.ID, time.Minute, true)
	check(t, s.ResignLease(ctx, a.ID, la.Term), "ResignLease")
	wantLease(t, "Lease after ResignLease", lease(t, s), la.Term, 0)

	lb := bid(t, s, b.ID, time.Minute, true)
	wantLease(t, "the bid after a resignation", lb, la.Term+1, b.ID)

	// Resignations that do not match the holder and term do nothing.
	check(t, s.ResignLease(ctx, a.ID, la.Term), "ResignLease with a stale term")
	check(t, s.ResignLease(ctx, a.ID, lb.Term), "ResignLease by a node that does not hold the lease")
	check(t, s.ResignLease(ctx, b.ID, la.Term), "ResignLease by the holder with a stale term")
	l := lease(t, s)
	wantLease(t, "Lease after mismatched resignations", l, lb.Term, b.ID)
	if !l.ExpiresAt.Equal(lb.ExpiresAt) {
		t.Errorf("Lease after mismatched resignations expires at %v, want %v", l.ExpiresAt, lb.ExpiresAt)
	}
}
