package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

func agentTests() []namedTest {
	return []namedTest{
		{"ClusterCertificate", testClusterCertificate},
		{"MachineOfEnvironment", testMachineOfEnvironment},
		{"Machines", testMachines},
		{"MachineQuery", testMachineQuery},
		{"EnsureCommands", testEnsureCommands},
		{"DispatchCommands", testDispatchCommands},
		{"DispatchConcurrent", testDispatchConcurrent},
		{"RecordReport", testRecordReport},
		{"RecordReportBound", testRecordReportBound},
		{"RecordReportAfterOutcome", testRecordReportAfterOutcome},
		{"DeleteEndedCommands", testDeleteEndedCommands},
		{"CancelCommand", testCancelCommand},
		{"AgentTextLimits", testAgentTextLimits},
	}
}

func testClusterCertificate(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := cuttle.ClusterCertificate{CertPEM: []byte("cert-1"), SealedKey: []byte{0, 1, 2, 255}, Thumbprint: "T1"}
	got, err := s.InitClusterCertificate(ctx, first)
	check(t, err, "InitClusterCertificate")
	if !reflect.DeepEqual(got, first) {
		t.Errorf("InitClusterCertificate = %+v, want %+v", got, first)
	}
	got, err = s.InitClusterCertificate(ctx, cuttle.ClusterCertificate{CertPEM: []byte("cert-2"), SealedKey: []byte{9}, Thumbprint: "T2"})
	check(t, err, "second InitClusterCertificate")
	if !reflect.DeepEqual(got, first) {
		t.Errorf("second InitClusterCertificate = %+v, want the first %+v", got, first)
	}
}

// environment creates an environment (a document of
// resources.Environments) and returns it with the number that machines use.
func environment(t *testing.T, s store.Store, name string) envRef {
	t.Helper()
	e := cuttle.Environment{Resource: cuttle.Resource{SpaceID: space}, Name: name}
	check(t, s.Update(t.Context(), func(tx *collection.Tx) error {
		if err := e.Check(nil); err != nil {
			return err
		}
		return resources.Environments.Insert(t.Context(), tx, &e)
	}), "inserting the environment "+name)
	n, err := resources.Environments.ParseID(e.ID)
	check(t, err, "ParseID")
	return envRef{e, n}
}

// envRef is an environment with its number.
type envRef struct {
	cuttle.Environment
	ID int64
}

// sharedEnvironment returns the id of the environment "Shared", which it
// creates if it is missing, for documents that must name one.
func sharedEnvironment(t *testing.T, s store.Store) string {
	t.Helper()
	var id string
	check(t, s.Read(t.Context(), func(tx *collection.Tx) error {
		es, _, err := resources.Environments.List(t.Context(), tx, collection.Query{Space: space, Name: "Shared", Take: 1})
		if len(es) > 0 {
			id = es[0].Resource.ID
		}
		return err
	}), "finding the shared environment")
	if id == "" {
		id = environment(t, s, "Shared").Resource.ID
	}
	return id
}

// testMachineOfEnvironment: the store finds a machine of an environment
// inside a unit of work, which the API's delete of an environment asks.
func testMachineOfEnvironment(t *testing.T, s store.Store) {
	ctx := t.Context()
	prod, test := environment(t, s, "Production"), environment(t, s, "Test")
	m := machine(t, s, "web-1", []int64{prod.ID, test.ID}, cuttle.Polling)
	machine(t, s, "web-2", []int64{test.ID}, cuttle.Polling)
	empty := environment(t, s, "Empty")
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		id, name, found, err := s.MachineOfEnvironment(ctx, tx, prod.ID)
		if err == nil && (!found || id != m.ID || name != "web-1") {
			t.Errorf("MachineOfEnvironment(prod) = %d %q %v; want %d web-1", id, name, found, m.ID)
		}
		if id, _, found, err := s.MachineOfEnvironment(ctx, tx, test.ID); err != nil || !found || id != m.ID {
			t.Errorf("MachineOfEnvironment(test) = %d %v %v; want the first machine, %d", id, found, err, m.ID)
		}
		if _, _, found, err := s.MachineOfEnvironment(ctx, tx, empty.ID); err != nil || found {
			t.Errorf("MachineOfEnvironment(empty) = %v, %v; want none", found, err)
		}
		return err
	}), "MachineOfEnvironment")
	check(t, s.DeleteMachine(ctx, m.ID), "DeleteMachine")
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		_, _, found, err := s.MachineOfEnvironment(ctx, tx, prod.ID)
		if err == nil && found {
			t.Error("MachineOfEnvironment finds a deleted machine")
		}
		return err
	}), "MachineOfEnvironment after the delete")
	// A machine cannot name an environment that does not exist.
	_, err := s.CreateMachine(ctx, cuttle.Machine{SpaceID: space, Name: "orphan", EnvironmentIDs: []int64{empty.ID + 1000}, Style: cuttle.Polling,
		URI: "poll://orphanorphanorphan1/", Thumbprint: "T"})
	wantKind(t, err, cuttle.KindInvalid, "CreateMachine in an unknown environment")
}

var machineSeq struct {
	sync.Mutex
	n int
}

// machine creates a machine with a fresh URI and thumbprint.
func machine(t *testing.T, s store.Store, name string, envs []int64, style cuttle.CommunicationStyle) cuttle.Machine {
	t.Helper()
	machineSeq.Lock()
	machineSeq.n++
	n := machineSeq.n
	machineSeq.Unlock()
	uri := fmt.Sprintf("poll://%020d/", n)
	if style == cuttle.Listening {
		uri = fmt.Sprintf("https://host-%d:10933/", n)
	}
	m, err := s.CreateMachine(t.Context(), cuttle.Machine{
		SpaceID: "Spaces-1", Name: name, Roles: []string{"web"}, EnvironmentIDs: envs, Style: style,
		URI: uri, Thumbprint: fmt.Sprintf("%064X", n),
	})
	check(t, err, "CreateMachine "+name)
	return m
}

func testMachines(t *testing.T, s store.Store) {
	ctx := t.Context()
	prod, test := environment(t, s, "Production"), environment(t, s, "Test")
	want := cuttle.Machine{
		SpaceID: "Spaces-1", Name: "web-1", Roles: []string{"web", "api", "web"}, EnvironmentIDs: []int64{test.ID, prod.ID, test.ID},
		Style: cuttle.Polling, URI: "poll://abcdefghij0123456789/", Thumbprint: strings.Repeat("ab", 32), IsDisabled: true,
	}
	m, err := s.CreateMachine(ctx, want)
	check(t, err, "CreateMachine")
	want.ID, want.HealthStatus = m.ID, cuttle.Unknown
	want.Roles, want.EnvironmentIDs = []string{"web", "api"}, []int64{min(prod.ID, test.ID), max(prod.ID, test.ID)}
	want.Thumbprint = strings.ToUpper(want.Thumbprint)
	if !reflect.DeepEqual(m, want) {
		t.Errorf("CreateMachine = %+v\nwant %+v (roles and environments once each, environments sorted, thumbprint upper-case)", m, want)
	}
	got, err := s.Machine(ctx, m.ID)
	check(t, err, "Machine")
	if !reflect.DeepEqual(got, m) {
		t.Errorf("Machine = %+v, want %+v", got, m)
	}
	_, err = s.Machine(ctx, 999)
	wantKind(t, err, cuttle.KindNotFound, "Machine of a missing id")

	dup := want
	dup.Name, dup.URI = "WEB-1", "poll://zzzzzzzzzzzzzzzzzzzz/"
	_, err = s.CreateMachine(ctx, dup)
	wantKind(t, err, cuttle.KindConflict, "CreateMachine with a taken name")
	dup.Name, dup.URI = "web-2", want.URI
	_, err = s.CreateMachine(ctx, dup)
	wantKind(t, err, cuttle.KindConflict, "CreateMachine with a taken subscription id")
	dup.URI, dup.EnvironmentIDs = "poll://yyyyyyyyyyyyyyyyyyyy/", []int64{999}
	_, err = s.CreateMachine(ctx, dup)
	wantKind(t, err, cuttle.KindInvalid, "CreateMachine in a missing environment")
	for _, bad := range []cuttle.Machine{
		{SpaceID: "Spaces-1", Style: cuttle.Polling, URI: "poll://x/", Thumbprint: "T"},
		{SpaceID: "Spaces-1", Name: "n", Style: "Ssh", URI: "ssh://x", Thumbprint: "T"},
		{SpaceID: "Spaces-1", Name: "n", Style: cuttle.Listening, Thumbprint: "T"},
		{SpaceID: "Spaces-1", Name: "n", Style: cuttle.Listening, URI: "https://x:1/"},
	} {
		_, err = s.CreateMachine(ctx, bad)
		wantKind(t, err, cuttle.KindInvalid, fmt.Sprintf("CreateMachine(%+v)", bad))
	}

	// Update changes what a user may change and keeps the health.
	check(t, s.SetMachineHealth(ctx, m.ID, cuttle.MachineHealth{Status: cuttle.HasWarnings, StatusSummary: "low disk", AgentVersion: "1.2", OS: "Linux"}), "SetMachineHealth")
	before := now(t, s)
	m.Name, m.Roles, m.EnvironmentIDs, m.IsDisabled = "web-one", []string{}, []int64{prod.ID}, false
	m.Style, m.URI = cuttle.Listening, "https://web-one:10933/"
	updated, err := s.UpdateMachine(ctx, m)
	check(t, err, "UpdateMachine")
	if updated.Name != "web-one" || len(updated.Roles) != 0 || !slices.Equal(updated.EnvironmentIDs, []int64{prod.ID}) ||
		updated.Style != cuttle.Listening || updated.URI != m.URI || updated.IsDisabled ||
		updated.HealthStatus != cuttle.HasWarnings || updated.StatusSummary != "low disk" || updated.AgentVersion != "1.2" || updated.OS != "Linux" {
		t.Errorf("UpdateMachine = %+v, want the changes with the health kept", updated)
	}
	if updated.HealthCheckedAt.IsZero() || updated.HealthCheckedAt.After(before) {
		t.Errorf("HealthCheckedAt = %v, want the time of SetMachineHealth (before %v)", updated.HealthCheckedAt, before)
	}
	m.ID = 999
	_, err = s.UpdateMachine(ctx, m)
	wantKind(t, err, cuttle.KindNotFound, "UpdateMachine of a missing id")
	wantKind(t, s.SetMachineHealth(ctx, 999, cuttle.MachineHealth{Status: cuttle.Healthy}), cuttle.KindNotFound, "SetMachineHealth of a missing id")

	// A later task's findings stand against an earlier task's late write.
	check(t, s.SetMachineHealth(ctx, updated.ID, cuttle.MachineHealth{TaskID: 7, Status: cuttle.Healthy}), "SetMachineHealth of task 7")
	check(t, s.SetMachineHealth(ctx, updated.ID, cuttle.MachineHealth{TaskID: 6, Status: cuttle.Unavailable}), "SetMachineHealth of task 6")
	if got, err := s.Machine(ctx, updated.ID); err != nil || got.HealthStatus != cuttle.Healthy {
		t.Errorf("health after an earlier task's late write = %v, %v; want task 7's Healthy", got.HealthStatus, err)
	}
	check(t, s.SetMachineHealth(ctx, updated.ID, cuttle.MachineHealth{TaskID: 7, Status: cuttle.HasWarnings}), "SetMachineHealth of task 7 again")
	if got, err := s.Machine(ctx, updated.ID); err != nil || got.HealthStatus != cuttle.HasWarnings {
		t.Errorf("health after the same task wrote again = %v, %v; want HasWarnings", got.HealthStatus, err)
	}

	check(t, s.DeleteMachine(ctx, updated.ID), "DeleteMachine")
	wantKind(t, s.DeleteMachine(ctx, updated.ID), cuttle.KindNotFound, "DeleteMachine twice")
}

func testMachineQuery(t *testing.T, s store.Store) {
	ctx := t.Context()
	prod, test := environment(t, s, "Production"), environment(t, s, "Test")
	a := machine(t, s, "alpha", []int64{prod.ID}, cuttle.Polling)
	b := machine(t, s, "Beta", []int64{test.ID}, cuttle.Listening)
	c := machine(t, s, "gamma", []int64{prod.ID, test.ID}, cuttle.Polling)
	c.Roles, c.IsDisabled = []string{"db"}, true
	c, err := s.UpdateMachine(ctx, c)
	check(t, err, "UpdateMachine")
	check(t, s.SetMachineHealth(ctx, b.ID, cuttle.MachineHealth{Status: cuttle.Healthy}), "SetMachineHealth")
	names := func(q cuttle.MachineQuery) []string {
		t.Helper()
		ms, err := s.Machines(ctx, q)
		check(t, err, "Machines")
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	for _, tc := range []struct {
		q    cuttle.MachineQuery
		want []string
	}{
		{cuttle.MachineQuery{}, []string{"alpha", "Beta", "gamma"}},
		{cuttle.MachineQuery{IDs: []int64{c.ID, a.ID}}, []string{"alpha", "gamma"}},
		{cuttle.MachineQuery{Name: "beta"}, []string{"Beta"}},
		{cuttle.MachineQuery{PartialName: "MM"}, []string{"gamma"}},
		{cuttle.MachineQuery{Roles: []string{"WEB"}}, []string{"alpha", "Beta"}},
		{cuttle.MachineQuery{Roles: []string{"db", "web"}, EnvironmentIDs: []int64{test.ID}}, []string{"Beta", "gamma"}},
		{cuttle.MachineQuery{Thumbprint: strings.ToLower(b.Thumbprint)}, []string{"Beta"}},
		{cuttle.MachineQuery{Styles: []cuttle.CommunicationStyle{cuttle.Polling}}, []string{"alpha", "gamma"}},
		{cuttle.MachineQuery{HealthStatuses: []cuttle.HealthStatus{cuttle.Healthy}}, []string{"Beta"}},
		{cuttle.MachineQuery{IsDisabled: ptr(true)}, []string{"gamma"}},
		{cuttle.MachineQuery{SubscriptionID: a.URI}, []string{"alpha"}},
		{cuttle.MachineQuery{SubscriptionID: b.URI}, nil}, // a listening machine has no subscription
		{cuttle.MachineQuery{IDs: []int64{999}}, nil},
	} {
		if got := names(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("Machines(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// taskFor queues a task for commands to belong to.
func taskFor(t *testing.T, s store.Store) cuttle.Task {
	t.Helper()
	tk, err := s.CreateTask(t.Context(), cuttle.NewTask{SpaceID: "Spaces-1", Name: "AdHocScript"})
	check(t, err, "CreateTask")
	return tk
}

func ensure(t *testing.T, s store.Store, cmds ...cuttle.NewCommand) []cuttle.Command {
	t.Helper()
	got, err := s.EnsureCommands(t.Context(), cmds)
	check(t, err, "EnsureCommands")
	return got
}

func script(m cuttle.Machine, tk cuttle.Task, key string) cuttle.NewCommand {
	return cuttle.NewCommand{MachineID: m.ID, TaskID: tk.ID, Key: key, Kind: cuttle.CommandScript, Payload: json.RawMessage(`{"Body":"true"}`)}
}

func testEnsureCommands(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := machine(t, s, "web", nil, cuttle.Polling)
	tk := taskFor(t, s)
	before := now(t, s)
	first := ensure(t, s, script(m, tk, "a"), script(m, tk, "b"))
	after := now(t, s)
	if len(first) != 2 {
		t.Fatalf("EnsureCommands returned %d commands, want 2", len(first))
	}
	for i, c := range first {
		if c.ID <= 0 || !uuidRE.MatchString(c.UID) || c.MachineID != m.ID || c.TaskID != tk.ID || c.Key != []string{"a", "b"}[i] ||
			c.Kind != cuttle.CommandScript || c.State != cuttle.CommandPending || c.OutputSeq != 0 || c.CancelRequested ||
			c.CreatedAt.Before(before) || c.CreatedAt.After(after) || !c.DispatchedAt.IsZero() || !c.FinishedAt.IsZero() {
			t.Errorf("command %d = %+v, want a Pending %s command with a UID, created between %v and %v", i, c, []string{"a", "b"}[i], before, after)
		}
		var p map[string]any
		if json.Unmarshal(c.Payload, &p) != nil || p["Body"] != "true" {
			t.Errorf("command %d payload %s, want the one queued", i, c.Payload)
		}
	}
	if first[0].UID == first[1].UID {
		t.Errorf("two commands share the UID %s", first[0].UID)
	}
	// Again, with one more: the existing ones come back as they are.
	again := ensure(t, s, script(m, tk, "c"), script(m, tk, "a"))
	if len(again) != 2 || again[1].ID != first[0].ID || again[1].UID != first[0].UID || again[0].Key != "c" || again[0].ID == first[0].ID {
		t.Errorf("EnsureCommands again = %+v, want c new and a as before (%+v)", again, first[0])
	}
	got, err := s.Command(ctx, first[1].ID)
	check(t, err, "Command")
	if !reflect.DeepEqual(got, first[1]) {
		t.Errorf("Command = %+v, want %+v", got, first[1])
	}
	got, err = s.CommandByUID(ctx, first[1].UID)
	check(t, err, "CommandByUID")
	if got.ID != first[1].ID {
		t.Errorf("CommandByUID = %+v, want %+v", got, first[1])
	}
	_, err = s.Command(ctx, 999)
	wantKind(t, err, cuttle.KindNotFound, "Command of a missing id")
	_, err = s.CommandByUID(ctx, "nope")
	wantKind(t, err, cuttle.KindNotFound, "CommandByUID of a missing UID")
	_, err = s.EnsureCommands(ctx, []cuttle.NewCommand{{MachineID: m.ID, TaskID: tk.ID, Kind: cuttle.CommandHealth}})
	wantKind(t, err, cuttle.KindInvalid, "EnsureCommands without a key")
	_, err = s.EnsureCommands(ctx, []cuttle.NewCommand{{MachineID: m.ID, TaskID: tk.ID, Key: "x", Kind: cuttle.CommandHealth, Payload: json.RawMessage(`{`)}})
	wantKind(t, err, cuttle.KindInvalid, "EnsureCommands with a bad payload")
}

func dispatch(t *testing.T, s store.Store, m cuttle.Machine, limit int, redeliver time.Duration) ([]cuttle.Command, []string) {
	t.Helper()
	cmds, cancel, err := s.DispatchCommands(t.Context(), m.ID, "node-a", limit, redeliver)
	check(t, err, "DispatchCommands")
	return cmds, cancel
}

func uids(cmds []cuttle.Command) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.UID)
	}
	return out
}

func dispatchable(t *testing.T, s store.Store, redeliver time.Duration) []int64 {
	t.Helper()
	ids, err := s.DispatchableMachines(t.Context(), redeliver)
	check(t, err, "DispatchableMachines")
	return ids
}

func testDispatchCommands(t *testing.T, s store.Store) {
	ctx := t.Context()
	m, other := machine(t, s, "web", nil, cuttle.Polling), machine(t, s, "db", nil, cuttle.Polling)
	tk := taskFor(t, s)
	cmds := ensure(t, s, script(m, tk, "1"), script(m, tk, "2"), script(m, tk, "3"), script(other, tk, "4"))
	if got := dispatchable(t, s, time.Minute); !slices.Equal(got, []int64{min(m.ID, other.ID), max(m.ID, other.ID)}) {
		t.Errorf("DispatchableMachines = %v, want both machines", got)
	}

	before := now(t, s)
	got, cancel := dispatch(t, s, m, 2, time.Minute)
	if !slices.Equal(uids(got), uids(cmds[:2])) || len(cancel) != 0 {
		t.Fatalf("DispatchCommands(limit 2) = %v, %v; want the two oldest of the machine", uids(got), cancel)
	}
	for _, c := range got {
		if c.State != cuttle.CommandDispatched || c.DispatchedBy != "node-a" || c.DispatchedAt.Before(before) {
			t.Errorf("dispatched %+v, want Dispatched by node-a after %v", c, before)
		}
	}
	got, _ = dispatch(t, s, m, 5, time.Minute)
	if !slices.Equal(uids(got), uids(cmds[2:3])) {
		t.Errorf("second DispatchCommands = %v, want only the third (the others are handed out)", uids(got))
	}
	if got, _ = dispatch(t, s, m, 5, time.Minute); len(got) != 0 {
		t.Errorf("third DispatchCommands = %v, want nothing", uids(got))
	}
	if got := dispatchable(t, s, time.Minute); !slices.Equal(got, []int64{other.ID}) {
		t.Errorf("DispatchableMachines = %v, want only %d", got, other.ID)
	}

	// A command the agent confirms is never handed out again; one it does
	// not confirm is, once the redelivery interval has passed.
	_, err := s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: cmds[0].UID, State: cuttle.CommandRunning})
	check(t, err, "RecordReport Running")
	waitPast(t, s, got2(t, s, cmds[2].ID).DispatchedAt.Add(100*time.Millisecond))
	got, _ = dispatch(t, s, m, 5, 100*time.Millisecond)
	if !slices.Equal(uids(got), uids(cmds[1:3])) {
		t.Errorf("DispatchCommands after the redelivery interval = %v, want the two unconfirmed ones", uids(got))
	}
}

// got2 reads a command.
func got2(t *testing.T, s store.Store, id int64) cuttle.Command {
	t.Helper()
	c, err := s.Command(t.Context(), id)
	check(t, err, "Command")
	return c
}

func testDispatchConcurrent(t *testing.T, s store.Store) {
	m := machine(t, s, "web", nil, cuttle.Polling)
	tk := taskFor(t, s)
	var news []cuttle.NewCommand
	for i := range 40 {
		news = append(news, script(m, tk, fmt.Sprint(i)))
	}
	ensure(t, s, news...)
	const pollers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	for range pollers {
		wg.Go(func() {
			for {
				cmds, _, err := s.DispatchCommands(t.Context(), m.ID, "node", 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(cmds) == 0 {
					return
				}
				mu.Lock()
				for _, c := range cmds {
					seen[c.UID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("%d of 40 commands were handed out", len(seen))
	}
	for uid, n := range seen {
		if n != 1 {
			t.Errorf("command %s was handed out %d times", uid, n)
		}
	}
}

func lines(from, to int64) []cuttle.CommandLine {
	var out []cuttle.CommandLine
	for seq := from; seq <= to; seq++ {
		out = append(out, cuttle.CommandLine{Seq: seq, Time: time.UnixMilli(1_700_000_000_000 + seq).UTC(), Stream: "stdout", Text: fmt.Sprintf("line %d", seq)})
	}
	return out
}

func testRecordReport(t *testing.T, s store.Store) {
	ctx := t.Context()
	m, other := machine(t, s, "web", nil, cuttle.Polling), machine(t, s, "db", nil, cuttle.Polling)
	tk := taskFor(t, s)
	c := ensure(t, s, script(m, tk, "1"))[0]
	dispatch(t, s, m, 1, time.Minute)

	report := func(r cuttle.CommandReport) cuttle.Command {
		t.Helper()
		r.UID = c.UID
		got, err := s.RecordReport(ctx, m.ID, r)
		check(t, err, fmt.Sprintf("RecordReport(%s, lines %d)", r.State, len(r.Lines)))
		return got
	}
	got := report(cuttle.CommandReport{State: cuttle.CommandRunning, Lines: lines(1, 3)})
	if got.State != cuttle.CommandRunning || got.OutputSeq != 3 {
		t.Errorf("after a Running report with lines 1-3: %+v, want Running, OutputSeq 3", got)
	}
	// Lines sent again (a lost acknowledgement) are kept once.
	if got = report(cuttle.CommandReport{State: cuttle.CommandRunning, Lines: lines(2, 5)}); got.OutputSeq != 5 {
		t.Errorf("after lines 2-5: OutputSeq %d, want 5", got.OutputSeq)
	}
	// A gap is refused: the agent must resend from OutputSeq+1.
	_, err := s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: c.UID, State: cuttle.CommandRunning, Lines: lines(7, 8)})
	wantKind(t, err, cuttle.KindConflict, "RecordReport with a gap")
	_, err = s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: c.UID, State: cuttle.CommandRunning, Lines: []cuttle.CommandLine{lines(6, 6)[0], lines(8, 8)[0]}})
	wantKind(t, err, cuttle.KindInvalid, "RecordReport with lines out of order")
	_, err = s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: c.UID, State: cuttle.CommandPending})
	wantKind(t, err, cuttle.KindInvalid, "RecordReport of Pending")
	// Another machine cannot report on this command.
	_, err = s.RecordReport(ctx, other.ID, cuttle.CommandReport{UID: c.UID, State: cuttle.CommandSuccess})
	wantKind(t, err, cuttle.KindNotFound, "RecordReport by another machine")
	_, err = s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: "nope", State: cuttle.CommandRunning})
	wantKind(t, err, cuttle.KindNotFound, "RecordReport of a missing UID")

	before := now(t, s)
	got = report(cuttle.CommandReport{State: cuttle.CommandFailed, Lines: lines(6, 6), ExitCode: 3, Result: json.RawMessage(`{"a":1}`), Error: "exit 3"})
	if got.State != cuttle.CommandFailed || got.ExitCode != 3 || got.Error != "exit 3" || got.OutputSeq != 6 || got.FinishedAt.Before(before) {
		t.Errorf("after the final report: %+v, want Failed, exit 3, OutputSeq 6, FinishedAt after %v", got, before)
	}
	var result map[string]any
	if json.Unmarshal(got.Result, &result) != nil || result["a"] != float64(1) {
		t.Errorf("Result = %s, want {\"a\":1}", got.Result)
	}
	// The first final report wins; a later one still stores new lines.
	again := report(cuttle.CommandReport{State: cuttle.CommandSuccess, Lines: lines(7, 7)})
	if again.State != cuttle.CommandFailed || again.ExitCode != 3 || again.OutputSeq != 7 || !again.FinishedAt.Equal(got.FinishedAt) {
		t.Errorf("after a second final report: %+v, want the first outcome kept and OutputSeq 7", again)
	}

	out, err := s.CommandOutput(ctx, c.ID, 0, 100)
	check(t, err, "CommandOutput")
	if want := lines(1, 7); !reflect.DeepEqual(out, want) {
		t.Errorf("CommandOutput = %+v\nwant %+v", out, want)
	}
	out, err = s.CommandOutput(ctx, c.ID, 4, 2)
	check(t, err, "CommandOutput after 4")
	if want := lines(5, 6); !reflect.DeepEqual(out, want) {
		t.Errorf("CommandOutput(after 4, limit 2) = %+v, want %+v", out, want)
	}
}

// testRecordReportBound: output over the command's bound is counted, not
// stored, and once a line is over, every later one is too, so that what is
// stored is the start of the output.
func testRecordReportBound(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := machine(t, s, "web", nil, cuttle.Polling)
	tk := taskFor(t, s)
	byLines, byBytes := ensure(t, s, script(m, tk, "lines"), script(m, tk, "bytes"))[0], ensure(t, s, script(m, tk, "bytes"))[0]
	dispatch(t, s, m, 2, time.Minute)

	report := func(c cuttle.Command, bound cuttle.OutputBound, ls []cuttle.CommandLine) cuttle.Command {
		t.Helper()
		got, err := s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: c.UID, State: cuttle.CommandRunning, Lines: ls, Bound: bound})
		check(t, err, "RecordReport")
		return got
	}
	tooMany := cuttle.OutputBound{Lines: 4}
	report(byLines, tooMany, lines(1, 3))
	got := report(byLines, tooMany, lines(2, 6)) // 2-3 again, 4 stored, 5-6 over
	if got.OutputSeq != 6 || got.Output.Lines != 4 || got.Output.DroppedLines != 2 || got.Output.DroppedBytes != int64(len("line 5")+len("line 6")) {
		t.Errorf("after lines 1-6 with a bound of 4 lines: %+v; want OutputSeq 6, 4 lines stored, 2 (12 bytes) dropped", got)
	}
	if got.Output.Bytes != int64(4*len("line 1")) {
		t.Errorf("Output.Bytes = %d, want %d", got.Output.Bytes, 4*len("line 1"))
	}
	out, err := s.CommandOutput(ctx, byLines.ID, 0, 100)
	check(t, err, "CommandOutput")
	if want := lines(1, 4); !reflect.DeepEqual(out, want) {
		t.Errorf("stored output %+v, want lines 1-4", out)
	}

	// A short line after a long one that was over is not stored either.
	long := lines(1, 3)
	long[1].Text = strings.Repeat("x", 100)
	got = report(byBytes, cuttle.OutputBound{Bytes: 50}, long)
	if got.OutputSeq != 3 || got.Output.Lines != 1 || got.Output.DroppedLines != 2 || got.Output.DroppedBytes != 100+int64(len("line 3")) {
		t.Errorf("after a line over the byte bound: %+v; want 1 stored, 2 dropped", got)
	}
	if out, _ := s.CommandOutput(ctx, byBytes.ID, 0, 100); len(out) != 1 {
		t.Errorf("stored output %+v, want line 1 alone", out)
	}
}

// testRecordReportAfterOutcome: new lines are taken within the grace after
// the outcome and refused after it; lines already stored may come again.
func testRecordReportAfterOutcome(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := machine(t, s, "web", nil, cuttle.Polling)
	tk := taskFor(t, s)
	c := ensure(t, s, script(m, tk, "1"))[0]
	dispatch(t, s, m, 1, time.Minute)
	report := func(state cuttle.CommandState, ls []cuttle.CommandLine, grace time.Duration) (cuttle.Command, error) {
		return s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: c.UID, State: state, Lines: ls, Bound: cuttle.OutputBound{Grace: grace}})
	}
	_, err := report(cuttle.CommandSuccess, lines(1, 2), time.Hour)
	check(t, err, "RecordReport of the outcome")
	_, err = report(cuttle.CommandRunning, lines(3, 3), time.Hour)
	check(t, err, "RecordReport of a line within the grace")
	// With a grace of a millisecond, the output closes within a few.
	next := int64(4)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); next++ {
		if _, err = report(cuttle.CommandRunning, lines(next, next), time.Millisecond); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantKind(t, err, cuttle.KindInvalid, "RecordReport of a new line after the grace")
	// Lines already stored are still acknowledged.
	got, err := report(cuttle.CommandSuccess, lines(1, next-1), time.Millisecond)
	check(t, err, "RecordReport of stored lines after the grace")
	if got.State != cuttle.CommandSuccess || got.OutputSeq != next-1 {
		t.Errorf("after a resend past the grace: %+v, want Success, OutputSeq %d", got, next-1)
	}
}

// testDeleteEndedCommands: the commands of tasks that completed long
// enough ago go, with their output, in batches; those of a live task stay.
func testDeleteEndedCommands(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := machine(t, s, "web", nil, cuttle.Polling)
	ended, live := taskFor(t, s), taskFor(t, s)
	old := ensure(t, s, script(m, ended, "1"), script(m, ended, "2"))
	kept := ensure(t, s, script(m, live, "1"))[0]
	dispatch(t, s, m, 3, time.Minute)
	for _, c := range []cuttle.Command{old[0], kept} {
		_, err := s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: c.UID, State: cuttle.CommandSuccess, Lines: lines(1, 2)})
		check(t, err, "RecordReport")
	}
	_, err := s.CancelTask(ctx, ended.ID) // a queued task ends at once
	check(t, err, "CancelTask")

	n, err := s.DeleteEndedCommands(ctx, time.Hour, 100)
	check(t, err, "DeleteEndedCommands")
	if n != 0 {
		t.Fatalf("DeleteEndedCommands of an hour deleted %d commands of a task that ended just now", n)
	}
	deleted := 0
	for deadline := time.Now().Add(5 * time.Second); deleted < 2 && time.Now().Before(deadline); {
		n, err := s.DeleteEndedCommands(ctx, time.Millisecond, 1)
		check(t, err, "DeleteEndedCommands")
		if n > 1 {
			t.Fatalf("DeleteEndedCommands with a limit of 1 deleted %d", n)
		}
		deleted += n
		time.Sleep(2 * time.Millisecond)
	}
	if deleted != 2 {
		t.Fatalf("deleted %d commands of the ended task, want 2", deleted)
	}
	if n, _ := s.DeleteEndedCommands(ctx, time.Millisecond, 100); n != 0 {
		t.Errorf("a third DeleteEndedCommands deleted %d", n)
	}
	for _, c := range old {
		_, err := s.Command(ctx, c.ID)
		wantKind(t, err, cuttle.KindNotFound, "a deleted command")
		if out, err := s.CommandOutput(ctx, c.ID, 0, 10); err != nil || len(out) != 0 {
			t.Errorf("output of a deleted command: %v, %v", out, err)
		}
	}
	if out, err := s.CommandOutput(ctx, kept.ID, 0, 10); err != nil || len(out) != 2 {
		t.Errorf("output of the live task's command: %v, %v; want 2 lines", out, err)
	}
}

func testCancelCommand(t *testing.T, s store.Store) {
	ctx := t.Context()
	m := machine(t, s, "web", nil, cuttle.Polling)
	tk := taskFor(t, s)
	cmds := ensure(t, s, script(m, tk, "running"), script(m, tk, "dispatched"), script(m, tk, "done"), script(m, tk, "pending"))
	running, dispatched, done, pending := cmds[0], cmds[1], cmds[2], cmds[3]
	dispatch(t, s, m, 3, time.Minute)
	for _, r := range []cuttle.CommandReport{{UID: running.UID, State: cuttle.CommandRunning}, {UID: done.UID, State: cuttle.CommandSuccess}} {
		_, err := s.RecordReport(ctx, m.ID, r)
		check(t, err, "RecordReport")
	}

	c, err := s.CancelCommand(ctx, pending.ID)
	check(t, err, "CancelCommand of a pending command")
	if c.State != cuttle.CommandCanceled || c.FinishedAt.IsZero() {
		t.Errorf("a cancelled pending command: %+v, want Canceled at once", c)
	}
	if got, _ := dispatch(t, s, m, 5, time.Minute); len(got) != 0 {
		t.Errorf("a cancelled pending command was handed out: %v", uids(got))
	}
	c, err = s.CancelCommand(ctx, done.ID)
	check(t, err, "CancelCommand of a finished command")
	if c.State != cuttle.CommandSuccess || c.CancelRequested {
		t.Errorf("a cancelled finished command: %+v, want it unchanged", c)
	}
	for _, id := range []int64{running.ID, dispatched.ID} {
		c, err = s.CancelCommand(ctx, id)
		check(t, err, "CancelCommand")
		if !c.CancelRequested || c.State.Final() {
			t.Errorf("a cancelled handed-out command: %+v, want its cancel requested, not final", c)
		}
	}
	_, err = s.CancelCommand(ctx, 999)
	wantKind(t, err, cuttle.KindNotFound, "CancelCommand of a missing id")

	// The next poll tells the agent, once within the redelivery interval.
	if got := dispatchable(t, s, time.Minute); !slices.Equal(got, []int64{m.ID}) {
		t.Errorf("DispatchableMachines = %v, want the machine with cancels to tell", got)
	}
	_, cancel := dispatch(t, s, m, 5, time.Minute)
	told := now(t, s)
	slices.Sort(cancel)
	want := []string{running.UID, dispatched.UID}
	slices.Sort(want)
	if !slices.Equal(cancel, want) {
		t.Errorf("cancels told = %v, want %v", cancel, want)
	}
	if _, cancel = dispatch(t, s, m, 5, time.Minute); len(cancel) != 0 {
		t.Errorf("cancels told again within the interval: %v", cancel)
	}
	if got := dispatchable(t, s, time.Minute); len(got) != 0 {
		t.Errorf("DispatchableMachines = %v after the cancels were told, want none", got)
	}
	// Past the interval both are told again, and the unconfirmed one is not
	// handed out again: its agent may have it, waiting to start it, and
	// must learn of the cancel first (it ends Canceled only after
	// store.AbandonAfter).
	waitPast(t, s, told.Add(100*time.Millisecond))
	got, cancel := dispatch(t, s, m, 5, 100*time.Millisecond)
	slices.Sort(cancel)
	if !slices.Equal(cancel, want) || len(got) != 0 {
		t.Errorf("after the interval: handed out %v, cancels told %v; want nothing handed out and %v told", uids(got), cancel, want)
	}
	if c := got2(t, s, dispatched.ID); c.State != cuttle.CommandDispatched || !c.CancelRequested {
		t.Errorf("an unconfirmed command with a cancel is %s, want Dispatched with its cancel requested", c.State)
	}
	ack, err := s.RecordReport(ctx, m.ID, cuttle.CommandReport{UID: running.UID, State: cuttle.CommandCanceled})
	check(t, err, "RecordReport Canceled")
	if ack.State != cuttle.CommandCanceled || !ack.CancelRequested {
		t.Errorf("after the agent reported Canceled: %+v", ack)
	}
}

// testAgentTextLimits: what one store could not keep is refused by both
// alike, as bad input.
func testAgentTextLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.CreateMachine(ctx, cuttle.Machine{SpaceID: "Spaces-1", Name: "m", Roles: []string{"we\x00b"}, Style: cuttle.Polling,
		URI: "poll://abcdefghij0123456789/", Thumbprint: "T"})
	wantKind(t, err, cuttle.KindInvalid, "CreateMachine with a NUL in a role")
}
