package cluster

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/sqlite"
)

// slowRenewal delays the next RenewLease by delay before it reaches the
// database, as a busy machine or a slow connection does.
type slowRenewal struct {
	store.Store
	delay atomic.Int64 // nanoseconds; taken by the next renewal
}

func (s *slowRenewal) RenewLease(ctx context.Context, nodeID, term int64, d time.Duration) (cuttle.Lease, error) {
	time.Sleep(time.Duration(s.delay.Swap(0)))
	return s.Store.RenewLease(ctx, nodeID, term, d)
}

// TestLapsedLeaderRenewsItsTerm: a renewal so slow that it times out lets
// the leader's trust window pass, and the leader steps down; but nobody else
// can have taken the lease yet (it expires a sixth of a lease later in the
// database), so the leader renews the same term at once instead of handing
// leadership to another node.
func TestLapsedLeaderRenewsItsTerm(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cuttle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.InitCluster(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
	settings := cuttle.DefaultClusterSettings()
	settings.HeartbeatFrequency = time.Second // lease 3 s, trusted for 2.5 s after a renewal starts
	settings.StaleTimeout = 10 * time.Second
	if err := db.UpdateSettings(ctx, settings); err != nil {
		t.Fatal(err)
	}
	slow := &slowRenewal{Store: db}
	a := New(Config{Store: slow, Registration: cuttle.NodeRegistration{Name: "a"}})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	leadership := waitLeadership(t, a)

	b := New(Config{Store: db, Registration: cuttle.NodeRegistration{Name: "b"}})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())

	// The next renewal starts a heartbeat after the last one and is held
	// 1.75 s, past its tick's 1 s timeout: it fails, and the last one's trust
	// window (2.5 s) passes before the next tick, short of its expiry (3 s).
	slow.delay.Store(int64(1750 * time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	stepped := false
	for time.Now().Before(deadline) {
		_, ok := a.Leadership()
		stepped = stepped || !ok
		if stepped && ok {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !stepped {
		t.Fatal("the slow renewal did not make the leader step down; the test did not test anything")
	}
	l, ok := a.Leadership()
	if !ok || l.Term != leadership.Term {
		t.Fatalf("after the lapse a leads %+v (%v); want term %d again", l, ok, leadership.Term)
	}
	lease, _, err := db.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lease.Term != leadership.Term || lease.NodeID != a.State().Node.ID {
		t.Errorf("lease after the lapse = %+v; want term %d held by a", lease, leadership.Term)
	}
	if _, ok := b.Leadership(); ok {
		t.Error("b leads too")
	}
}

func waitLeadership(t *testing.T, m *Member) Leadership {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l, ok := m.Leadership(); ok {
			return l
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leadership within 5 s")
	return Leadership{}
}
