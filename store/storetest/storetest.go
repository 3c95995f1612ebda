// Package storetest is the conformance suite of store.Store: the executable
// form of the contract in store/store.go. Every implementation runs it:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cuttle.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite tests only what the contract promises. It reads every time it
// compares from the database (Store.Now and the times the store returns),
// never from the test's clock, and it waits on conditions with deadlines
// rather than sleeping for fixed times.
package storetest

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// waitTimeout bounds every wait of the suite. Waits usually end in well under
// a second; the bound only turns a hang into a failure.
const waitTimeout = 10 * time.Second

// pollInterval is how often a wait re-checks its condition.
const pollInterval = 5 * time.Millisecond

// Run runs the conformance suite. open returns a fresh, empty, migrated store
// for one subtest and arranges its cleanup (t.Cleanup); it is called once per
// subtest, and the subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []namedTest{
		{"Now", testNow},
		{"InitCluster", testInitCluster},
		{"Settings", testSettings},

		{"RegisterNode", testRegisterNode},
		{"RegisterNodeTaskCap", testRegisterNodeTaskCap},
		{"CheckIn", testCheckIn},
		{"SetOffline", testSetOffline},
		{"SetOfflineResigns", testSetOfflineResigns},
		{"StopRacesBid", testStopRacesBid},
		{"Stale", testStale},
		{"Nodes", testNodes},
		{"UpdateNode", testUpdateNode},
		{"DeleteNode", testDeleteNode},
		{"ConcurrentCheckIns", testConcurrentCheckIns},

		{"LeaseInitial", testLeaseInitial},
		{"BidLease", testBidLease},
		{"BidLeaseAfterExpiry", testBidLeaseAfterExpiry},
		{"BidLeaseDraining", testBidLeaseDraining},
		{"BidLeaseOffline", testBidLeaseOffline},
		{"BidLeaseConcurrent", testBidLeaseConcurrent},
		{"RenewLease", testRenewLease},
		{"ResignLease", testResignLease},

		{"CreateTask", testCreateTask},
		{"ListTasks", testListTasks},
		{"ClaimTasks", testClaimTasks},
		{"ClaimTasksCap", testClaimTasksCap},
		{"ClaimTasksUnavailableNode", testClaimTasksUnavailableNode},
		{"ClaimTasksExpired", testClaimTasksExpired},
		{"ClaimTasksConcurrent", testClaimTasksConcurrent},
		{"ParkAndResume", testParkAndResume},
		{"ConcurrencyKey", testConcurrencyKey},
		{"ConcurrencyKeyRace", testConcurrencyKeyRace},
		{"NotBefore", testNotBefore},
		{"ParkReleasingKey", testParkReleasingKey},
		{"FinishTasks", testFinishTasks},
		{"SaveCheckpoint", testSaveCheckpoint},
		{"CancelTask", testCancelTask},
		{"ExpireTasks", testExpireTasks},
		{"TakeOverTasks", testTakeOverTasks},
		{"EndedTaskStopsCommands", testEndedTaskStopsCommands},
		{"TakeOverTasksConcurrent", testTakeOverTasksConcurrent},
		{"RunJob", testRunJob},

		{"Users", testUsers},
		{"APIKeys", testAPIKeys},

		{"NotifyListen", testNotifyListen},
		{"ListenClose", testListenClose},
	}
	tests = append(tests, agentTests()...)
	for _, c := range collectionCases() {
		tests = append(tests, namedTest{"Collection/" + c.name, c.run})
	}
	tests = append(tests, namedTest{"CollectionsCovered", testCollectionsCovered})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// namedTest is one test of the suite.
type namedTest struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// kindNames names the kinds in failure messages.
var kindNames = map[cuttle.Kind]string{
	cuttle.KindInternal:     "KindInternal",
	cuttle.KindInvalid:      "KindInvalid",
	cuttle.KindUnauthorized: "KindUnauthorized",
	cuttle.KindForbidden:    "KindForbidden",
	cuttle.KindNotFound:     "KindNotFound",
	cuttle.KindConflict:     "KindConflict",
	cuttle.KindTooLarge:     "KindTooLarge",
	cuttle.KindBusy:         "KindBusy",
	cuttle.KindUnavailable:  "KindUnavailable",
}

func kindName(k cuttle.Kind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// wantKind fails the test unless err is a *cuttle.Error of kind want.
func wantKind(t *testing.T, err error, want cuttle.Kind, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got no error, want %s", what, kindName(want))
	}
	if !cuttle.IsKind(err, want) {
		t.Fatalf("%s: got %s error %q, want %s", what, kindName(cuttle.KindOf(err)), err, kindName(want))
	}
}

// check fails the test if err is not nil.
func check(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls cond until it returns true, and fails the test if that takes
// longer than waitTimeout. cond may fail the test itself.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// now returns the database clock.
func now(t *testing.T, s store.Store) time.Time {
	t.Helper()
	n, err := s.Now(t.Context())
	check(t, err, "Now")
	return n
}

// waitPast waits until the database clock is after tm.
func waitPast(t *testing.T, s store.Store, tm time.Time) {
	t.Helper()
	waitFor(t, "the database clock to pass "+tm.String(), func() bool { return now(t, s).After(tm) })
}

// initCluster initializes the cluster, as every node does before anything else.
func initCluster(t *testing.T, s store.Store) cuttle.Cluster {
	t.Helper()
	c, err := s.InitCluster(t.Context(), "fingerprint")
	check(t, err, "InitCluster")
	return c
}

// register registers a node with default facts.
// setOffline ends the incarnation of n, as a clean stop does.
func setOffline(t *testing.T, s store.Store, n cuttle.Node) {
	t.Helper()
	_, err := s.SetOffline(t.Context(), n.Ref())
	check(t, err, "SetOffline "+n.Name)
}

func register(t *testing.T, s store.Store, name string) cuttle.Node {
	t.Helper()
	n, err := s.RegisterNode(t.Context(), cuttle.NodeRegistration{
		Name: name, Version: "1.0.0", OS: "linux", Addresses: []string{"127.0.0.1"}, KeyFingerprint: "fingerprint",
	})
	check(t, err, "RegisterNode "+name)
	return n
}

// node reads one node.
func node(t *testing.T, s store.Store, id int64) cuttle.Node {
	t.Helper()
	n, err := s.Node(t.Context(), id)
	check(t, err, fmt.Sprintf("Node %d", id))
	return n
}

func ptr[T any](v T) *T { return &v }

var uuidRE = regexp.MustCompile(`^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func testNow(t *testing.T, s store.Store) {
	t1 := now(t, s)
	// The database clock may be another machine's: compare with ours only
	// loosely, to catch a wrong unit or time zone.
	if d := time.Since(t1).Abs(); d > 10*time.Minute {
		t.Errorf("Now = %v, %v away from this machine's clock", t1, d)
	}
	var t2 time.Time
	waitFor(t, "the database clock to advance", func() bool {
		t2 = now(t, s)
		if t2.Before(t1) {
			t.Fatalf("Now went back from %v to %v", t1, t2)
		}
		return t2.After(t1)
	})
	if d := t2.Sub(t1); d >= 500*time.Millisecond {
		t.Errorf("Now advanced by %v at its first step; want sub-second resolution", d)
	}
}

func testInitCluster(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := now(t, s)
	c1, err := s.InitCluster(ctx, "fp-1")
	check(t, err, "InitCluster")
	after := now(t, s)
	if !uuidRE.MatchString(c1.InstallationID) {
		t.Errorf("InstallationID = %q, want a UUID", c1.InstallationID)
	}
	if c1.KeyFingerprint != "fp-1" {
		t.Errorf("KeyFingerprint = %q, want %q", c1.KeyFingerprint, "fp-1")
	}
	if c1.CreatedAt.Before(before) || c1.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %v, want between %v and %v", c1.CreatedAt, before, after)
	}

	c2, err := s.InitCluster(ctx, "fp-2")
	check(t, err, "second InitCluster")
	if c2.InstallationID != c1.InstallationID || c2.KeyFingerprint != c1.KeyFingerprint || !c2.CreatedAt.Equal(c1.CreatedAt) {
		t.Errorf("second InitCluster = %+v, want the first identity %+v unchanged", c2, c1)
	}

	got, err := s.Settings(ctx)
	check(t, err, "Settings")
	if want := cuttle.DefaultClusterSettings(); got != want {
		t.Errorf("Settings of a new cluster = %+v, want %+v", got, want)
	}
}

func testSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	want := cuttle.ClusterSettings{
		HeartbeatFrequency: 2 * time.Second, StaleTimeout: 7*time.Second + 500*time.Millisecond,
		RetentionInterval: 2 * time.Hour, PackageCleanupInterval: 90 * time.Minute,
		HealthCheckInterval: 5*time.Minute + 250*time.Millisecond, ReindexInterval: 30 * 24 * time.Hour,
	}
	check(t, s.UpdateSettings(ctx, want), "UpdateSettings")
	got, err := s.Settings(ctx)
	check(t, err, "Settings")
	if got != want {
		t.Errorf("Settings = %+v, want %+v", got, want)
	}

	// InitCluster on an initialized database leaves the settings alone.
	initCluster(t, s)
	got, err = s.Settings(ctx)
	check(t, err, "Settings")
	if got != want {
		t.Errorf("Settings after a second InitCluster = %+v, want %+v", got, want)
	}
}
