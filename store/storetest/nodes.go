package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// sameFacts fails the test unless n carries the facts of reg.
func sameFacts(t *testing.T, what string, n cuttle.Node, reg cuttle.NodeRegistration) {
	t.Helper()
	if n.Name != reg.Name || n.Version != reg.Version || n.OS != reg.OS || n.KeyFingerprint != reg.KeyFingerprint {
		t.Errorf("%s: got name %q version %q OS %q fingerprint %q, want %q %q %q %q", what,
			n.Name, n.Version, n.OS, n.KeyFingerprint, reg.Name, reg.Version, reg.OS, reg.KeyFingerprint)
	}
	if !slices.Equal(n.Addresses, reg.Addresses) && !(len(n.Addresses) == 0 && len(reg.Addresses) == 0) {
		t.Errorf("%s: Addresses = %q, want %q", what, n.Addresses, reg.Addresses)
	}
}

func testRegisterNode(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)

	before := now(t, s)
	reg := cuttle.NodeRegistration{
		Name: "node-a", Version: "1.2.3", OS: "linux",
		Addresses: []string{"10.0.0.1", "fe80::1"}, KeyFingerprint: "fp-a",
	}
	n, err := s.RegisterNode(ctx, reg)
	check(t, err, "RegisterNode")
	after := now(t, s)
	if n.ID <= 0 {
		t.Errorf("ID = %d, want > 0", n.ID)
	}
	sameFacts(t, "RegisterNode", n, reg)
	if n.MaxConcurrentTasks != cuttle.DefaultTaskCap {
		t.Errorf("MaxConcurrentTasks = %d, want the default %d", n.MaxConcurrentTasks, cuttle.DefaultTaskCap)
	}
	if n.IsInMaintenanceMode {
		t.Error("a new node is draining")
	}
	if n.IsOffline {
		t.Error("a node that just registered is offline")
	}
	if n.LastSeen.Before(before) || n.LastSeen.After(after) {
		t.Errorf("LastSeen = %v, want between %v and %v", n.LastSeen, before, after)
	}
	if n.StartedAt.Before(before) || n.StartedAt.After(after) {
		t.Errorf("StartedAt = %v, want between %v and %v", n.StartedAt, before, after)
	}

	got := node(t, s, n.ID)
	sameFacts(t, "Node", got, reg)
	if got.ID != n.ID || got.MaxConcurrentTasks != n.MaxConcurrentTasks || got.IsInMaintenanceMode || got.IsOffline ||
		!got.LastSeen.Equal(n.LastSeen) || !got.StartedAt.Equal(n.StartedAt) {
		t.Errorf("Node = %+v, want %+v", got, n)
	}

	// Registering the same name again takes the row over: same id, cap and
	// drain; new facts; checked in and online.
	_, err = s.UpdateNode(ctx, n.ID, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(2), IsInMaintenanceMode: ptr(true)})
	check(t, err, "UpdateNode")
	setOffline(t, s, n)
	waitPast(t, s, n.StartedAt)
	reg2 := cuttle.NodeRegistration{Name: "node-a", Version: "1.2.4", OS: "windows", Addresses: []string{"10.0.0.2"}, KeyFingerprint: "fp-b"}
	n2, err := s.RegisterNode(ctx, reg2)
	check(t, err, "RegisterNode again")
	if n2.ID != n.ID {
		t.Errorf("registering %q again gave id %d, want %d", reg2.Name, n2.ID, n.ID)
	}
	if n2.MaxConcurrentTasks != 2 || !n2.IsInMaintenanceMode {
		t.Errorf("registering again: cap %d draining %v, want the kept 2 and true", n2.MaxConcurrentTasks, n2.IsInMaintenanceMode)
	}
	sameFacts(t, "RegisterNode again", n2, reg2)
	if n2.IsOffline {
		t.Error("a node that registered again is offline")
	}
	if !n2.LastSeen.After(n.LastSeen) {
		t.Errorf("registering again: LastSeen = %v, want after %v", n2.LastSeen, n.LastSeen)
	}
	if !n2.StartedAt.After(n.StartedAt) {
		t.Errorf("registering again: StartedAt = %v, want after %v", n2.StartedAt, n.StartedAt)
	}

	// Another name is another node.
	b := register(t, s, "node-b")
	if b.ID == n.ID || b.ID <= 0 {
		t.Errorf("a second node got id %d (the first has %d)", b.ID, n.ID)
	}
}

func testRegisterNodeTaskCap(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)

	// A new node with a task cap gets it; 0 is a valid cap.
	n, err := s.RegisterNode(ctx, cuttle.NodeRegistration{Name: "api-only", TaskCap: ptr(0)})
	check(t, err, "RegisterNode")
	if n.MaxConcurrentTasks != 0 {
		t.Errorf("MaxConcurrentTasks = %d, want 0", n.MaxConcurrentTasks)
	}

	// A known node's cap is replaced by a given one, and its drain is kept.
	a := register(t, s, "a")
	_, err = s.UpdateNode(ctx, a.ID, cuttle.NodeUpdate{IsInMaintenanceMode: ptr(true)})
	check(t, err, "UpdateNode")
	a2, err := s.RegisterNode(ctx, cuttle.NodeRegistration{Name: "a", TaskCap: ptr(9)})
	check(t, err, "RegisterNode with TaskCap")
	if a2.ID != a.ID || a2.MaxConcurrentTasks != 9 || !a2.IsInMaintenanceMode {
		t.Errorf("RegisterNode with TaskCap 9 = id %d cap %d draining %v, want id %d cap 9 draining true",
			a2.ID, a2.MaxConcurrentTasks, a2.IsInMaintenanceMode, a.ID)
	}
	if got := node(t, s, a.ID); got.MaxConcurrentTasks != 9 {
		t.Errorf("Node: MaxConcurrentTasks = %d, want 9", got.MaxConcurrentTasks)
	}
}

func testCheckIn(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	n := register(t, s, "a")

	waitPast(t, s, n.LastSeen)
	c, err := s.CheckIn(ctx, n.Ref())
	check(t, err, "CheckIn")
	if !c.LastSeen.After(n.LastSeen) {
		t.Errorf("CheckIn: LastSeen = %v, want after %v", c.LastSeen, n.LastSeen)
	}
	if c.ID != n.ID || c.Name != n.Name || c.IsOffline {
		t.Errorf("CheckIn = %+v, want node %d online", c, n.ID)
	}
	if got := node(t, s, n.ID); !got.LastSeen.Equal(c.LastSeen) {
		t.Errorf("Node: LastSeen = %v, want the check-in's %v", got.LastSeen, c.LastSeen)
	}

	_, err = s.CheckIn(ctx, cuttle.NodeRef{ID: n.ID + 1000, Incarnation: 1})
	wantKind(t, err, cuttle.KindNotFound, "CheckIn of an unknown node")
}

func testSetOffline(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	n := register(t, s, "a")
	other := register(t, s, "b")

	setOffline(t, s, n)
	if !node(t, s, n.ID).IsOffline {
		t.Error("Node: not offline right after SetOffline")
	}
	nodes, err := s.Nodes(ctx)
	check(t, err, "Nodes")
	for _, m := range nodes {
		if want := m.ID == n.ID; m.IsOffline != want {
			t.Errorf("Nodes: node %d IsOffline = %v, want %v", m.ID, m.IsOffline, want)
		}
	}
	if node(t, s, other.ID).IsOffline {
		t.Error("SetOffline of one node took another offline")
	}

	// A check-in of the stopped incarnation (one that lost its context
	// before the stop and committed after it) is refused and changes nothing.
	_, err = s.CheckIn(ctx, n.Ref())
	wantKind(t, err, cuttle.KindConflict, "CheckIn of a stopped incarnation")
	if got := node(t, s, n.ID); !got.IsOffline || !got.LastSeen.Equal(n.LastSeen) {
		t.Errorf("Node after a check-in of the stopped incarnation = %+v; want offline, last seen %v", got, n.LastSeen)
	}

	// Registering again starts a new incarnation, online; the old one can
	// neither check in nor stop it.
	r := register(t, s, "a")
	if r.IsOffline || r.Incarnation != n.Incarnation+1 || r.ID != n.ID {
		t.Errorf("a stopped node that registered again = %+v; want node %d online, incarnation %d", r, n.ID, n.Incarnation+1)
	}
	_, err = s.CheckIn(ctx, n.Ref())
	wantKind(t, err, cuttle.KindConflict, "CheckIn of an incarnation that a registration ended")
	if _, err := s.SetOffline(ctx, n.Ref()); err != nil {
		t.Errorf("SetOffline of an ended incarnation: %v", err)
	}
	if node(t, s, n.ID).IsOffline {
		t.Error("SetOffline of an ended incarnation took the new one offline")
	}
	if _, err := s.CheckIn(ctx, r.Ref()); err != nil {
		t.Errorf("CheckIn of the live incarnation: %v", err)
	}
	_, err = s.SetOffline(ctx, cuttle.NodeRef{ID: n.ID + 1000, Incarnation: 1})
	wantKind(t, err, cuttle.KindNotFound, "SetOffline of an unknown node")
}

func testSetOfflineResigns(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	a := register(t, s, "a")
	b := register(t, s, "b")
	bid(t, s, a.ID, time.Minute, true)

	if resigned, err := s.SetOffline(ctx, b.Ref()); err != nil || resigned {
		t.Errorf("SetOffline of a follower = %v, %v; want no resignation", resigned, err)
	}
	resigned, err := s.SetOffline(ctx, a.Ref())
	check(t, err, "SetOffline")
	if !resigned {
		t.Error("SetOffline of the leader did not report a resignation")
	}
	l, _, err := s.Lease(ctx)
	check(t, err, "Lease")
	wantLease(t, "the lease after the leader stopped", l, 1, 0)
}

// testStopRacesBid stops nodes while their bids are in flight: whatever the
// order in which the database applies the two, a stopped node never holds
// the lease afterwards.
func testStopRacesBid(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	for i := range 20 {
		n := register(t, s, fmt.Sprintf("racer-%d", i))
		var wg sync.WaitGroup
		wg.Go(func() { s.BidLease(ctx, n.ID, time.Minute) })
		wg.Go(func() { s.SetOffline(ctx, n.Ref()) })
		wg.Wait()
		l, _, err := s.Lease(ctx)
		check(t, err, "Lease")
		if l.NodeID == n.ID {
			t.Fatalf("round %d: the stopped node holds the lease: %+v", i, l)
		}
	}
}

func testStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	n := register(t, s, "a")

	// A new stale timeout applies to a node that checked in before it.
	settings := cuttle.ClusterSettings{HeartbeatFrequency: 100 * time.Millisecond, StaleTimeout: 300 * time.Millisecond}
	check(t, s.UpdateSettings(ctx, settings), "UpdateSettings")

	// Every observation must agree with the database clock: online means
	// not seen for less than the stale timeout when read, offline for at
	// least that long. The reads happen between before and after.
	var got cuttle.Node
	waitFor(t, "the node to go stale", func() bool {
		before := now(t, s)
		got = node(t, s, n.ID)
		after := now(t, s)
		silent := got.LastSeen
		if !got.IsOffline && before.Sub(silent) > settings.StaleTimeout {
			t.Fatalf("node online at %v, silent since %v: longer than the stale timeout %v", before, silent, settings.StaleTimeout)
		}
		if got.IsOffline && after.Sub(silent) < settings.StaleTimeout {
			t.Fatalf("node offline by %v, silent since %v: shorter than the stale timeout %v", after, silent, settings.StaleTimeout)
		}
		return got.IsOffline
	})
	if !got.LastSeen.Equal(n.LastSeen) {
		t.Errorf("LastSeen changed from %v to %v without a check-in", n.LastSeen, got.LastSeen)
	}
	nodes, err := s.Nodes(ctx)
	check(t, err, "Nodes")
	if len(nodes) != 1 || !nodes[0].IsOffline {
		t.Errorf("Nodes = %+v, want the one node offline", nodes)
	}

	// A stale node cannot lead.
	if l, won, err := s.BidLease(ctx, n.ID, time.Minute); err != nil || won {
		t.Errorf("BidLease by a stale node = %+v, %v, %v; want a lost bid", l, won, err)
	}

	// A check-in brings it back.
	c, err := s.CheckIn(ctx, n.Ref())
	check(t, err, "CheckIn")
	if c.IsOffline {
		t.Error("CheckIn of a stale node returned it offline")
	}

	// A stale node can be deleted, like a stopped one.
	waitFor(t, "the node to go stale again", func() bool { return node(t, s, n.ID).IsOffline })
	check(t, s.DeleteNode(ctx, n.ID), "DeleteNode of a stale node")
	_, err = s.Node(ctx, n.ID)
	wantKind(t, err, cuttle.KindNotFound, "Node after DeleteNode")
}

func testNodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	nodes, err := s.Nodes(ctx)
	check(t, err, "Nodes")
	if len(nodes) != 0 {
		t.Errorf("Nodes of an empty store = %+v, want none", nodes)
	}

	want := map[int64]string{}
	for _, name := range []string{"zeta", "alpha", "mid"} {
		want[register(t, s, name).ID] = name
	}
	nodes, err = s.Nodes(ctx)
	check(t, err, "Nodes")
	if len(nodes) != len(want) {
		t.Fatalf("Nodes returned %d nodes, want %d", len(nodes), len(want))
	}
	for i, n := range nodes {
		if want[n.ID] != n.Name {
			t.Errorf("Nodes: node %d is named %q, want %q", n.ID, n.Name, want[n.ID])
		}
		if i > 0 && n.ID <= nodes[i-1].ID {
			t.Errorf("Nodes: id %d after %d; want ordered by id", n.ID, nodes[i-1].ID)
		}
		if n.IsOffline {
			t.Errorf("Nodes: node %d offline", n.ID)
		}
	}

	_, err = s.Node(ctx, nodes[len(nodes)-1].ID+1000)
	wantKind(t, err, cuttle.KindNotFound, "Node of an unknown id")
}

func testUpdateNode(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	n := register(t, s, "a")

	steps := []struct {
		u         cuttle.NodeUpdate
		cap       int
		draining  bool
		described string
	}{
		{cuttle.NodeUpdate{MaxConcurrentTasks: ptr(3)}, 3, false, "cap 3"},
		{cuttle.NodeUpdate{IsInMaintenanceMode: ptr(true)}, 3, true, "drain"},
		{cuttle.NodeUpdate{}, 3, true, "nothing"},
		{cuttle.NodeUpdate{MaxConcurrentTasks: ptr(0), IsInMaintenanceMode: ptr(false)}, 0, false, "cap 0 and undrain"},
	}
	for _, step := range steps {
		got, err := s.UpdateNode(ctx, n.ID, step.u)
		check(t, err, "UpdateNode "+step.described)
		if got.ID != n.ID || got.MaxConcurrentTasks != step.cap || got.IsInMaintenanceMode != step.draining {
			t.Errorf("UpdateNode %s = id %d cap %d draining %v, want id %d cap %d draining %v", step.described,
				got.ID, got.MaxConcurrentTasks, got.IsInMaintenanceMode, n.ID, step.cap, step.draining)
		}
		if got := node(t, s, n.ID); got.MaxConcurrentTasks != step.cap || got.IsInMaintenanceMode != step.draining {
			t.Errorf("Node after UpdateNode %s: cap %d draining %v, want cap %d draining %v", step.described,
				got.MaxConcurrentTasks, got.IsInMaintenanceMode, step.cap, step.draining)
		}
	}

	_, err := s.UpdateNode(ctx, n.ID+1000, cuttle.NodeUpdate{MaxConcurrentTasks: ptr(1)})
	wantKind(t, err, cuttle.KindNotFound, "UpdateNode of an unknown id")
}

func testDeleteNode(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	n := register(t, s, "a")
	keep := register(t, s, "b")

	wantKind(t, s.DeleteNode(ctx, n.ID), cuttle.KindConflict, "DeleteNode of an online node")
	node(t, s, n.ID) // still there

	setOffline(t, s, n)
	check(t, s.DeleteNode(ctx, n.ID), "DeleteNode of an offline node")
	_, err := s.Node(ctx, n.ID)
	wantKind(t, err, cuttle.KindNotFound, "Node after DeleteNode")
	nodes, err := s.Nodes(ctx)
	check(t, err, "Nodes")
	if len(nodes) != 1 || nodes[0].ID != keep.ID {
		t.Errorf("Nodes after DeleteNode = %+v, want only node %d", nodes, keep.ID)
	}

	wantKind(t, s.DeleteNode(ctx, n.ID), cuttle.KindNotFound, "DeleteNode of a deleted node")
	_, err = s.CheckIn(ctx, n.Ref())
	wantKind(t, err, cuttle.KindNotFound, "CheckIn of a deleted node")
}

func testConcurrentCheckIns(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	var nodes []cuttle.Node
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		nodes = append(nodes, register(t, s, name))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*20)
	for _, n := range nodes {
		wg.Go(func() {
			for range 20 {
				if _, err := s.CheckIn(ctx, n.Ref()); err != nil {
					errs <- err
				}
				if _, err := s.Nodes(ctx); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent CheckIn or Nodes: %v", err)
	}
}
