package comms_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/comms"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/sqlite"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// logBuffer collects a node's log for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// node is one node's agent endpoint, in-process, on an embedded database.
type node struct {
	store   *flakyStore
	comms   *comms.Comms
	id      certs.Identity
	addr    string // of the polling endpoint
	storage string // the folder of shared storage
	log     *logBuffer
	env     int64 // the environment Production
	task    cuttle.Task
}

// flakyStore fails machine lookups while down is set, as a database that
// is briefly away would.
type flakyStore struct {
	store.Store
	down atomic.Bool
}

func (f *flakyStore) Machines(ctx context.Context, q cuttle.MachineQuery) ([]cuttle.Machine, error) {
	if f.down.Load() {
		return nil, cuttle.Errorf(cuttle.KindUnavailable, "The database is unavailable.")
	}
	return f.Store.Machines(ctx, q)
}

func newNode(t *testing.T) *node {
	t.Helper()
	return newLimitedNode(t, cuttle.Limits{})
}

// newLimitedNode is newNode with limits.
func newLimitedNode(t *testing.T, limits cuttle.Limits) *node {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cuttle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &flakyStore{Store: db}
	key := masterkey.Generate()
	if _, err := st.InitCluster(ctx, key.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	id, err := comms.LoadIdentity(ctx, st, key)
	if err != nil {
		t.Fatal(err)
	}
	again, err := comms.LoadIdentity(ctx, st, key)
	if err != nil || again.Thumbprint != id.Thumbprint {
		t.Fatalf("a second LoadIdentity gave %s, %v; want the first certificate %s", again.Thumbprint, err, id.Thumbprint)
	}
	if _, err := comms.LoadIdentity(ctx, st, masterkey.Generate()); err == nil {
		t.Fatal("LoadIdentity with another master key succeeded")
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	member := cluster.New(cluster.Config{Store: st, Logger: log, Registration: cuttle.NodeRegistration{Name: "node-1", KeyFingerprint: key.Fingerprint()}})
	root := t.TempDir()
	files, err := blob.Open(ctx, blob.Config{Storage: root})
	if err != nil {
		t.Fatal(err)
	}
	c := comms.New(comms.Config{Store: st, Member: member, Identity: id, Storage: files, Logger: log, RedeliverAfter: 500 * time.Millisecond, Limits: limits})
	if err := member.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c.Start(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go c.Serve(ln)
	t.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Stop(stop)
		member.Stop(stop)
	})
	prod := cuttle.Environment{Resource: cuttle.Resource{SpaceID: "Spaces-1"}, Name: "Production"}
	if err := st.Update(ctx, func(tx *collection.Tx) error { return resources.Environments.Insert(ctx, tx, &prod) }); err != nil {
		t.Fatal(err)
	}
	env, err := resources.Environments.ParseID(prod.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := st.CreateTask(ctx, cuttle.NewTask{SpaceID: "Spaces-1", Name: "AdHocScript"})
	if err != nil {
		t.Fatal(err)
	}
	return &node{store: st, comms: c, id: id, addr: ln.Addr().String(), storage: root, log: logs, env: env, task: task}
}

// agent is a fake agent speaking agentapi by hand.
type agent struct {
	t       *testing.T
	id      certs.Identity
	machine cuttle.Machine
	http    *http.Client
	base    string
}

var subscriptions = struct {
	sync.Mutex
	n int
}{}

// polling registers a polling machine with a fresh certificate and returns
// its agent, pinned to the node's certificate.
func (n *node) polling(t *testing.T, name string) *agent {
	t.Helper()
	id, err := certs.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	subscriptions.Lock()
	subscriptions.n++
	sub := fmt.Sprintf("poll://%020d/", subscriptions.n)
	subscriptions.Unlock()
	m, err := n.store.CreateMachine(context.Background(), cuttle.Machine{SpaceID: "Spaces-1", Name: name, EnvironmentIDs: []int64{n.env},
		Style: cuttle.Polling, URI: sub, Thumbprint: id.Thumbprint})
	if err != nil {
		t.Fatal(err)
	}
	return &agent{t: t, id: id, machine: m, base: "https://" + n.addr, http: &http.Client{
		Timeout: agentapi.PollWait + 5*time.Second,
		Transport: &http.Transport{TLSClientConfig: certs.ClientConfig(id, certs.Pin(n.id.Thumbprint)),
			TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}},
	}}
}

func (a *agent) do(method, path string, in, out any) (int, error) {
	a.t.Helper()
	var body io.Reader
	if b, ok := in.([]byte); ok {
		body = bytes.NewReader(b)
	} else if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, body)
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s: %v", b, err)
		}
	}
	return resp.StatusCode, nil
}

func (a *agent) poll() (agentapi.PollResponse, int) {
	a.t.Helper()
	var resp agentapi.PollResponse
	status, err := a.do("POST", agentapi.PathPoll, agentapi.PollRequest{SubscriptionId: a.machine.URI}, &resp)
	if err != nil {
		a.t.Fatalf("poll: %v", err)
	}
	return resp, status
}

func (a *agent) report(uid string, r agentapi.Report) (agentapi.ReportAck, int) {
	a.t.Helper()
	var ack agentapi.ReportAck
	status, err := a.do("POST", agentapi.CommandPath(agentapi.PathReport, uid), r, &ack)
	if err != nil {
		a.t.Fatalf("report: %v", err)
	}
	return ack, status
}

func lines(from, to int64) []agentapi.Line {
	var out []agentapi.Line
	for s := from; s <= to; s++ {
		out = append(out, agentapi.Line{Seq: s, Time: time.Now().UTC(), Stream: "stdout", Text: fmt.Sprintf("line %d", s)})
	}
	return out
}

func (n *node) queue(t *testing.T, m cuttle.Machine, key string, kind cuttle.CommandKind, payload any) cuttle.Command {
	t.Helper()
	b, _ := json.Marshal(payload)
	cmds, err := n.comms.Queue(context.Background(), []cuttle.NewCommand{{MachineID: m.ID, TaskID: n.task.ID, Key: key, Kind: kind, Payload: b}})
	if err != nil {
		t.Fatal(err)
	}
	return cmds[0]
}

// TestPollAndReport: a waiting poll gets a queued command at once; reports
// are stored once each, without gaps, and reach the task following the
// command; another agent can neither poll as this one nor report on its
// command; a cancel reaches the agent's next poll.
func TestPollAndReport(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a, other := n.polling(t, "web-1"), n.polling(t, "web-2")

	got := make(chan agentapi.PollResponse, 1)
	go func() {
		resp, _ := a.poll()
		got <- resp
	}()
	testcluster.Eventually(t, 5*time.Second, func() error {
		if !n.comms.PollWaiting(a.machine.ID) {
			return errors.New("the poll does not wait yet")
		}
		return nil
	})
	start := time.Now()
	cmd := n.queue(t, a.machine, "script", cuttle.CommandScript, agentapi.Script{Body: "echo hi", Syntax: "Bash"})
	resp := <-got
	if len(resp.Commands) != 1 || resp.Commands[0].UID != cmd.UID || resp.Commands[0].Kind != "Script" {
		t.Fatalf("poll = %+v, want command %s", resp, cmd.UID)
	}
	// The node's scan for work runs every second: well under that, only
	// the notification can have woken the poll (most of the time).
	if waited := time.Since(start); waited > 300*time.Millisecond {
		t.Errorf("the waiting poll got its command %v after it was queued; the notification should wake it at once", waited)
	}
	t.Logf("a waiting poll got the command %v after it was queued", time.Since(start))

	// Another agent: not as this machine, not on its command.
	if status, _ := other.do("POST", agentapi.PathPoll, agentapi.PollRequest{SubscriptionId: a.machine.URI}, nil); status != http.StatusForbidden {
		t.Errorf("a poll under another machine's subscription id: %d, want 403", status)
	}
	if _, status := other.report(cmd.UID, agentapi.Report{State: "Success"}); status != http.StatusNotFound {
		t.Errorf("a report on another machine's command: %d, want 404", status)
	}
	if !strings.Contains(n.log.String(), "refused an agent's request about a command of another machine") {
		t.Error("the refused report was not logged")
	}

	// The task side follows the command while the agent reports.
	type followed struct {
		cmd   cuttle.Command
		texts []string
		err   error
	}
	done := make(chan followed, 1)
	go func() {
		var f followed
		f.cmd, f.err = n.comms.Follow(context.Background(), a.machine, cmd.ID, 0, func(ls []cuttle.CommandLine) error {
			for _, l := range ls {
				f.texts = append(f.texts, l.Text)
			}
			return nil
		})
		done <- f
	}()
	if ack, status := a.report(cmd.UID, agentapi.Report{State: "Running", Lines: lines(1, 3)}); status != 200 || ack.StoredSeq != 3 || ack.State != "Running" {
		t.Fatalf("first report: %d %+v", status, ack)
	}
	if ack, _ := a.report(cmd.UID, agentapi.Report{State: "Running", Lines: lines(2, 4)}); ack.StoredSeq != 4 {
		t.Errorf("lines sent again: StoredSeq %d, want 4", ack.StoredSeq)
	}
	if ack, status := a.report(cmd.UID, agentapi.Report{State: "Running", Lines: lines(7, 8)}); status != http.StatusConflict || ack.StoredSeq != 4 {
		t.Errorf("a gap: %d %+v, want 409 telling StoredSeq 4", status, ack)
	}
	if ack, status := a.report(cmd.UID, agentapi.Report{State: "Success", Lines: lines(5, 6)}); status != 200 || ack.State != "Success" || ack.StoredSeq != 6 {
		t.Fatalf("final report: %d %+v", status, ack)
	}
	select {
	case f := <-done:
		want := []string{"line 1", "line 2", "line 3", "line 4", "line 5", "line 6"}
		if f.err != nil || f.cmd.State != cuttle.CommandSuccess || !slices.Equal(f.texts, want) {
			t.Errorf("Follow = %s, %q, %v; want Success and %q", f.cmd.State, f.texts, f.err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after the final report")
	}

	// Cancel: the next poll names the running command.
	running := n.queue(t, a.machine, "long", cuttle.CommandScript, agentapi.Script{Body: "sleep 60", Syntax: "Bash"})
	if resp, _ := a.poll(); len(resp.Commands) != 1 || resp.Commands[0].UID != running.UID {
		t.Fatalf("poll = %+v, want %s", resp, running.UID)
	}
	a.report(running.UID, agentapi.Report{State: "Running"})
	if _, err := n.comms.Cancel(context.Background(), running.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := a.poll(); !slices.Equal(resp.Cancel, []string{running.UID}) || len(resp.Commands) != 0 {
		t.Errorf("poll after the cancel = %+v, want the cancel of %s", resp, running.UID)
	}
	if ack, _ := a.report(running.UID, agentapi.Report{State: "Running", Lines: lines(1, 1)}); !ack.Cancel {
		t.Errorf("a report of a cancelled command: %+v, want Cancel", ack)
	}
}

// TestRedelivery: a command handed out whose agent never confirms it is
// handed out again; one it confirmed is not.
func TestRedelivery(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := n.polling(t, "web-1")
	lost := n.queue(t, a.machine, "lost", cuttle.CommandHealth, agentapi.Health{})
	confirmed := n.queue(t, a.machine, "confirmed", cuttle.CommandHealth, agentapi.Health{})
	if resp, _ := a.poll(); len(resp.Commands) != 2 {
		t.Fatalf("first poll = %+v, want both commands", resp)
	}
	a.report(confirmed.UID, agentapi.Report{State: "Running"})
	start := time.Now()
	resp, _ := a.poll() // the answer to the first poll was "lost": only the unconfirmed one comes back
	if len(resp.Commands) != 1 || resp.Commands[0].UID != lost.UID {
		t.Fatalf("poll after the redelivery interval = %+v, want only %s", resp, lost.UID)
	}
	t.Logf("handed out again %v later", time.Since(start))
}

// TestRefusedHandshakes: an agent whose certificate no machine has is
// refused in the handshake and the node logs it; an agent that pins
// another thumbprint refuses the node.
func TestRefusedHandshakes(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := n.polling(t, "web-1")
	stranger, _ := certs.Generate("stranger")
	a.http.Transport = &http.Transport{TLSClientConfig: certs.ClientConfig(stranger, certs.Pin(n.id.Thumbprint))}
	if _, err := a.do("POST", agentapi.PathPoll, agentapi.PollRequest{SubscriptionId: a.machine.URI}, nil); err == nil {
		t.Error("an agent with an unknown certificate was served")
	}
	if log := n.log.String(); !strings.Contains(log, "refused an agent connection") || !strings.Contains(log, stranger.Thumbprint) {
		t.Errorf("the refusal was not logged with the thumbprint:\n%s", log)
	}
	b := n.polling(t, "web-2")
	b.http.Transport = &http.Transport{TLSClientConfig: certs.ClientConfig(b.id, certs.Pin(stranger.Thumbprint))}
	_, err := b.do("POST", agentapi.PathPoll, agentapi.PollRequest{SubscriptionId: b.machine.URI}, nil)
	if err == nil || !strings.Contains(err.Error(), n.id.Thumbprint) {
		t.Errorf("an agent pinning another thumbprint: %v, want a refusal naming the node's thumbprint", err)
	}
}

// TestFiles: a ReceiveFile's source is served with Range requests; a
// SendFile's upload is stored among the task's artifacts when its SHA-256
// matches, refused when it does not.
func TestFiles(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := n.polling(t, "web-1")
	content := bytes.Repeat([]byte("0123456789"), 100_000)
	src := filepath.Join(n.storage, "packages", "app.zip")
	if err := os.WriteFile(src, content, 0o640); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	recv := n.queue(t, a.machine, "recv", cuttle.CommandReceiveFile, agentapi.ReceiveFile{Path: "app.zip", Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]), Source: "packages/app.zip"})
	a.poll()
	req, _ := http.NewRequest("GET", a.base+agentapi.CommandPath(agentapi.PathFile, recv.UID), nil)
	req.Header.Set("Range", "bytes=999000-")
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(tail, content[999000:]) {
		t.Errorf("a Range request: %d, %d bytes; want 206 and the last 1000 bytes", resp.StatusCode, len(tail))
	}

	// A file gone from storage since the command was queued is 404:
	// final for the agent, which does not retry it.
	os.Remove(src)
	req, _ = http.NewRequest("GET", a.base+agentapi.CommandPath(agentapi.PathFile, recv.UID), nil)
	if resp, err := a.http.Do(req); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("the file of a command whose source is gone: %s, want 404", resp.Status)
		}
	}

	send := n.queue(t, a.machine, "send", cuttle.CommandSendFile, agentapi.SendFile{Path: "logs/app.log"})
	a.poll()
	put := func(body []byte, digest string) (int, agentapi.FileResult) {
		req, _ := http.NewRequest("PUT", a.base+agentapi.CommandPath(agentapi.PathFile, send.UID), bytes.NewReader(body))
		req.Header.Set("X-Cuttle-Sha256", digest)
		resp, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var fr agentapi.FileResult
		json.NewDecoder(resp.Body).Decode(&fr)
		return resp.StatusCode, fr
	}
	body := []byte("the application's log\n")
	good := sha256.Sum256(body)
	if status, _ := put(body, strings.Repeat("0", 64)); status != http.StatusBadRequest {
		t.Errorf("an upload with the wrong SHA-256: %d, want 400", status)
	}
	status, fr := put(body, hex.EncodeToString(good[:]))
	if status != 200 || fr.Size != int64(len(body)) || fr.SHA256 != hex.EncodeToString(good[:]) {
		t.Fatalf("an upload: %d %+v", status, fr)
	}
	stored := filepath.Join(n.storage, comms.ArtifactKey(n.task.ID, a.machine.ID, "logs/app.log"))
	if b, err := os.ReadFile(stored); err != nil || !bytes.Equal(b, body) {
		t.Errorf("the artifact %s holds %q, %v", stored, b, err)
	}
	// A command of the wrong kind has no file.
	if status, _ := a.do("GET", agentapi.CommandPath(agentapi.PathFile, send.UID), nil, nil); status != http.StatusConflict {
		t.Errorf("GET of a SendFile's file: %d, want 409", status)
	}
}

// TestListeningSession: following a listening machine's command makes the
// node dial the agent, which polls over the session and reports.
func TestListeningSession(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	id, _ := certs.Generate("db-1")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", certs.ServerConfig(id, certs.Pin(n.id.Thumbprint)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m, err := n.store.CreateMachine(context.Background(), cuttle.Machine{SpaceID: "Spaces-1", Name: "db-1", Style: cuttle.Listening,
		URI: "https://" + ln.Addr().String() + "/", Thumbprint: id.Thumbprint})
	if err != nil {
		t.Fatal(err)
	}
	// The fake listening agent: accept the node, poll through the session, run what comes.
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		sess, err := yamux.Client(conn, nil)
		if err != nil {
			return
		}
		a := &agent{t: t, base: "http://session", http: &http.Client{Transport: &http.Transport{
			DialContext: func(context.Context, string, string) (net.Conn, error) { return sess.Open() }}}}
		for {
			var resp agentapi.PollResponse
			if _, err := a.do("POST", agentapi.PathPoll, agentapi.PollRequest{}, &resp); err != nil {
				return
			}
			for _, c := range resp.Commands {
				a.do("POST", agentapi.CommandPath(agentapi.PathReport, c.UID), agentapi.Report{State: "Success", Lines: lines(1, 2)}, nil)
			}
		}
	}()
	cmd := n.queue(t, m, "script", cuttle.CommandScript, agentapi.Script{Body: "true", Syntax: "Bash"})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var texts []string
	final, err := n.comms.Follow(ctx, m, cmd.ID, 0, func(ls []cuttle.CommandLine) error {
		for _, l := range ls {
			texts = append(texts, l.Text)
		}
		return nil
	})
	if err != nil || final.State != cuttle.CommandSuccess || len(texts) != 2 {
		t.Fatalf("Follow of a listening machine's command: %s, %q, %v\n%s", final.State, texts, err, n.log.String())
	}
	if !strings.Contains(n.log.String(), "connected to the listening agent") {
		t.Error("the node did not log its connection to the listening agent")
	}
}

// TestDatabaseAwayIsNotARefusal: while the node cannot look an agent's
// machine up, it answers 503, which the agent retries, never 404 or 403,
// which it would take as final.
func TestDatabaseAwayIsNotARefusal(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := n.polling(t, "web-1")
	cmd := n.queue(t, a.machine, "script", cuttle.CommandScript, agentapi.Script{Body: "true", Syntax: "Bash"})
	if resp, _ := a.poll(); len(resp.Commands) != 1 {
		t.Fatalf("poll = %+v", resp)
	}
	n.comms.Invalidate() // a machine changed somewhere: the cache is empty
	n.store.down.Store(true)
	if _, status := a.report(cmd.UID, agentapi.Report{State: "Running", Lines: lines(1, 1)}); status != http.StatusServiceUnavailable {
		t.Errorf("a report while the database is away: %d, want 503", status)
	}
	if _, status := a.poll(); status != http.StatusServiceUnavailable {
		t.Errorf("a poll while the database is away: %d, want 503", status)
	}
	n.store.down.Store(false)
	if ack, status := a.report(cmd.UID, agentapi.Report{State: "Success", Lines: lines(1, 1)}); status != 200 || ack.State != "Success" {
		t.Errorf("the report once the database is back: %d %+v", status, ack)
	}
}
