package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/sqlite"
	"github.com/cuttledeploy/cuttle/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "cuttle.db"))
	})
}

// TestReopen opens one file twice in turn, and twice at once: the migrations
// run once, and the data persists.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cuttle.db")

	s1, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := s1.InitCluster(ctx, "fp")
	if err != nil {
		t.Fatal(err)
	}
	settings := cuttle.ClusterSettings{HeartbeatFrequency: 3 * time.Second, StaleTimeout: 30 * time.Second}
	if err := s1.UpdateSettings(ctx, settings); err != nil {
		t.Fatal(err)
	}
	n1, err := s1.RegisterNode(ctx, cuttle.NodeRegistration{Name: "a", Addresses: []string{"10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	u1 := cuttle.User{Username: "admin", IsActive: true}
	if err := s1.Update(ctx, func(tx *collection.Tx) error { return resources.CreateUser(ctx, tx, &u1, true) }); err != nil {
		t.Fatal(err)
	}
	l1, won, err := s1.BidLease(ctx, n1.ID, time.Minute)
	if err != nil || !won {
		t.Fatalf("BidLease = %v, %v", won, err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := open(t, path)
	s3 := open(t, path) // a second Store on the same file at the same time
	for _, s := range []*sqlite.Store{s2, s3} {
		c, err := s.InitCluster(ctx, "other")
		if err != nil || c.InstallationID != c1.InstallationID || c.KeyFingerprint != "fp" {
			t.Errorf("InitCluster after reopening = %+v, %v; want %+v", c, err, c1)
		}
		if got, err := s.Settings(ctx); err != nil || got != settings {
			t.Errorf("Settings after reopening = %+v, %v; want %+v", got, err, settings)
		}
		if n, err := s.Node(ctx, n1.ID); err != nil || n.Name != "a" || len(n.Addresses) != 1 {
			t.Errorf("Node after reopening = %+v, %v", n, err)
		}
		var u cuttle.User
		if err := s.Read(ctx, func(tx *collection.Tx) (err error) { u, err = resources.UserNamed(ctx, tx, "admin"); return err }); err != nil || u.ID != u1.ID {
			t.Errorf("UserNamed after reopening = %+v, %v; want %+v", u, err, u1)
		}
		if l, _, err := s.Lease(ctx); err != nil || l != l1 {
			t.Errorf("Lease after reopening = %+v, %v; want %+v", l, err, l1)
		}
	}
	// Both write.
	if _, err := s2.CheckIn(ctx, n1.Ref()); err != nil {
		t.Error(err)
	}
	if err := s3.Update(ctx, func(tx *collection.Tx) error {
		return resources.CreateUser(ctx, tx, &cuttle.User{Username: "other", IsActive: true}, false)
	}); err != nil {
		t.Error(err)
	}
	var n int
	if err := s2.Read(ctx, func(tx *collection.Tx) (err error) {
		_, n, err = resources.Users.List(ctx, tx, collection.Query{})
		return err
	}); err != nil || n != 2 {
		t.Errorf("users = %d, %v; want 2", n, err)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	_, err := sqlite.Open(t.Context(), "")
	if !cuttle.IsKind(err, cuttle.KindInvalid) {
		t.Errorf("Open of an empty path = %v, want a KindInvalid error", err)
	}
}

// TestOpenOddPath opens a file whose path holds URI metacharacters.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag%20", "cuttle.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	if _, err := s.InitCluster(t.Context(), "fp"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no database at the path: %v", err)
	}
}

// TestFilesArePrivate: a new database file and its journals are the
// owner's alone, and an existing file readable by others is narrowed.
func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	fresh, old := filepath.Join(dir, "fresh.db"), filepath.Join(dir, "old.db")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fresh, old} {
		s := open(t, path)
		if _, err := s.InitCluster(t.Context(), "fp"); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			info, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want -rw-------", filepath.Base(name), info.Mode().Perm())
			}
		}
	}
}

// TestListenOverflow checks that a listener that stops reading is never
// waited for, and receives a resync in place of what it missed.
func TestListenOverflow(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "cuttle.db"))
	slow, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	const sent = 3 * sqlite.ListenBuffer
	for i := range sent {
		if err := s.Notify(ctx, store.ChannelNodes, "1"); err != nil {
			t.Fatal(err)
		}
		// The fast listener keeps up, and misses nothing.
		select {
		case n := <-fast:
			if n.Channel != store.ChannelNodes {
				t.Fatalf("the listener that keeps up received %+v at %d", n, i)
			}
		case <-timeout:
			t.Fatalf("the listener that keeps up received nothing at %d", i)
		}
	}

	// The slow one has a resync waiting, after at most one notification
	// (the one it held when it fell behind).
	var got []store.Notification
	for len(got) == 0 || got[len(got)-1].Channel != store.ChannelResync {
		select {
		case n := <-slow:
			got = append(got, n)
		case <-timeout:
			t.Fatalf("no resync after %d notifications", len(got))
		}
	}
	if len(got) > 2 {
		t.Errorf("the slow listener received %d notifications before its resync, want at most 2", len(got))
	}

	// Then it receives, within the buffer, what came after the last overflow
	// and anything new.
	if err := s.Notify(ctx, store.ChannelLeader, "after"); err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		select {
		case got := <-slow:
			if got.Channel == store.ChannelLeader {
				if n > sqlite.ListenBuffer {
					t.Errorf("%d notifications pending after the resync, more than the buffer %d", n, sqlite.ListenBuffer)
				}
				return
			}
		case <-timeout:
			t.Fatal("nothing after the resync")
		}
	}
}

// TestCloseEndsListen checks that Close closes every listen channel, and that
// Listen then fails.
func TestCloseEndsListen(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cuttle.db"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("received a notification after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listen channel did not close after Close")
	}
	if _, err := s.Listen(t.Context()); !cuttle.IsKind(err, cuttle.KindUnavailable) {
		t.Errorf("Listen after Close = %v, want a KindUnavailable error", err)
	}
}
