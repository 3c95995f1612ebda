package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/certs"
)

// fakeCluster is the state the fake nodes of one cluster share: the
// cluster's certificate, the agents it knows, the command queues and what
// the agents reported, all in memory.
type fakeCluster struct {
	id certs.Identity

	mu       sync.Mutex
	agents   map[string]bool               // thumbprints the nodes accept
	queues   map[string][]agentapi.Command // by subscription id; "" for listening agents
	cancels  map[string][]string           // UIDs to cancel, by subscription id
	stored   map[string]*storedCommand     // by UID
	handouts map[string]int                // how often each UID was handed out
	// dispatched holds the commands handed out and not yet reported, by
	// UID: as comms does, a poll hands one out again once
	// fakeRedeliverAfter has passed, since the answer that carried it may
	// never have reached the agent.
	dispatched   map[string]*dispatch
	redeliveries map[string]int    // how many of handouts were redeliveries
	files        map[string][]byte // ReceiveFile and DeployPackage files by UID
	uploads      map[string][]byte // SendFile uploads by UID
	// artifacts are the artifacts scripts uploaded (PUT with ?name=), by
	// UID and name; a later upload of a name replaces the earlier, as
	// comms does. refuseArtifacts names the ones answered 400.
	artifacts       map[string]map[string]fakeArtifact
	refuseArtifacts map[string]bool
	refuse          map[string]bool                // UIDs whose reports are answered 404
	changed         chan struct{}                  // closed and replaced when a queue or a report changes
	lastNode        *fakeNode                      // the node that stored the last report
	byNode          map[*fakeNode]map[string]int64 // per node and UID, the last line stored through it

	gets        atomic.Int64 // file requests (GET) seen
	servedBytes atomic.Int64 // file bytes sent
	ranges      atomic.Int64 // Range requests seen
	cutAt       atomic.Int64 // cut the next file response after this many bytes (0: never)
}

// storedCommand is what the cluster stored of one command.
type storedCommand struct {
	lines    []agentapi.Line
	state    string
	exitCode int
	result   json.RawMessage
	err      string
	reports  int
	maxBatch int // the most lines one report carried
	gaps     int // reports whose lines did not follow the stored ones (answered 409)
	cancel   bool
	// artifactsAtOutcome is how many artifacts of the command were stored
	// when its outcome was.
	artifactsAtOutcome int
}

// fakeArtifact is an artifact a script uploaded.
type fakeArtifact struct {
	body   []byte
	sha256 string // as the upload's HeaderSHA256 said
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	id, err := certs.Generate("fake-cluster")
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCluster{
		id:              id,
		agents:          map[string]bool{},
		queues:          map[string][]agentapi.Command{},
		cancels:         map[string][]string{},
		stored:          map[string]*storedCommand{},
		handouts:        map[string]int{},
		dispatched:      map[string]*dispatch{},
		redeliveries:    map[string]int{},
		files:           map[string][]byte{},
		uploads:         map[string][]byte{},
		artifacts:       map[string]map[string]fakeArtifact{},
		refuseArtifacts: map[string]bool{},
		refuse:          map[string]bool{},
		changed:         make(chan struct{}),
		byNode:          map[*fakeNode]map[string]int64{},
	}
}

func (cl *fakeCluster) changedLocked() {
	close(cl.changed)
	cl.changed = make(chan struct{})
}

func (cl *fakeCluster) trustAgent(thumbprint string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.agents[thumbprint] = true
}

func (cl *fakeCluster) verifyAgent(thumbprint string) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !cl.agents[thumbprint] {
		return fmt.Errorf("agent %s is not registered", thumbprint)
	}
	return nil
}

// enqueue queues a command for the agent with the subscription id sub.
func (cl *fakeCluster) enqueue(sub string, cmd agentapi.Command) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.queues[sub] = append(cl.queues[sub], cmd)
	cl.changedLocked()
}

// cancel asks the agent with subscription id sub to cancel uid. As in
// comms, a handed-out command with a cancel is not handed out again.
func (cl *fakeCluster) cancel(sub, uid string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.cancels[sub] = append(cl.cancels[sub], uid)
	delete(cl.dispatched, uid)
	cl.changedLocked()
}

// forget drops what was stored of uid, as a cluster that lost it.
func (cl *fakeCluster) forget(uid string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	delete(cl.stored, uid)
}

// keepLines drops the stored lines of uid after the first n, as a cluster
// that lost them.
func (cl *fakeCluster) keepLines(uid string, n int) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.stored[uid].lines = cl.stored[uid].lines[:n]
}

// command returns a copy of what is stored of uid.
func (cl *fakeCluster) command(uid string) (storedCommand, bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	sc, ok := cl.stored[uid]
	if !ok {
		return storedCommand{}, false
	}
	c := *sc
	c.lines = append([]agentapi.Line(nil), sc.lines...)
	return c, true
}

// waitFor waits until cond, called with the cluster locked, holds.
func (cl *fakeCluster) waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		cl.mu.Lock()
		ok, changed := cond(), cl.changed
		cl.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s", within, what)
		}
	}
}

// waitFinal waits until the outcome of uid is stored and returns it.
func (cl *fakeCluster) waitFinal(t *testing.T, uid string, within time.Duration) storedCommand {
	t.Helper()
	cl.waitFor(t, within, "the outcome of "+uid, func() bool {
		sc := cl.stored[uid]
		return sc != nil && cuttle.CommandState(sc.state).Final()
	})
	sc, _ := cl.command(uid)
	return sc
}

// storeReport stores a report idempotently by Seq and answers its ack.
func (cl *fakeCluster) storeReport(n *fakeNode, uid string, r agentapi.Report) (agentapi.ReportAck, int) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	delete(cl.dispatched, uid) // the agent has it: no more redelivery
	if cl.refuse[uid] {
		return agentapi.ReportAck{}, http.StatusNotFound
	}
	sc := cl.stored[uid]
	if sc == nil {
		sc = &storedCommand{state: string(cuttle.CommandRunning)}
		cl.stored[uid] = sc
	}
	sc.reports++
	sc.maxBatch = max(sc.maxBatch, len(r.Lines))
	complete := true
	for _, l := range r.Lines {
		switch next := int64(len(sc.lines)) + 1; {
		case l.Seq == next:
			sc.lines = append(sc.lines, l)
		case l.Seq > next:
			complete = false
		}
	}
	if !complete { // answered 409 with what is stored, as comms does
		sc.gaps++
		cl.changedLocked()
		return agentapi.ReportAck{StoredSeq: int64(len(sc.lines)), State: sc.state, Cancel: sc.cancel}, http.StatusConflict
	}
	if cuttle.CommandState(r.State).Final() && !cuttle.CommandState(sc.state).Final() {
		sc.state, sc.exitCode, sc.result, sc.err = r.State, r.ExitCode, r.Result, r.Error
		sc.artifactsAtOutcome = len(cl.artifacts[uid])
	}
	if cl.byNode[n] == nil {
		cl.byNode[n] = map[string]int64{}
	}
	cl.byNode[n][uid] = int64(len(sc.lines))
	cl.lastNode = n
	cl.changedLocked()
	return agentapi.ReportAck{StoredSeq: int64(len(sc.lines)), State: sc.state, Cancel: sc.cancel}, http.StatusOK
}

// fakeRedeliverAfter is how long a handed-out command may go without a
// report before a poll hands it out again (comms.RedeliverAfter, 10 s by
// default, shortened).
const fakeRedeliverAfter = 2 * time.Second

// dispatch is a command handed out and not yet reported.
type dispatch struct {
	sub string
	cmd agentapi.Command
	at  time.Time // when it was last handed out
}

// take hands out the queued commands and cancels of sub, if any, and,
// as comms does, the commands handed out fakeRedeliverAfter ago or more
// with no report since: the poll that carried one may have died with its
// connection (an agent that stopped), and nothing else would bring the
// command to the agent. It returns too when the next of sub's handed-out
// commands is due again (zero: none is waiting).
func (cl *fakeCluster) take(sub string) (resp agentapi.PollResponse, changed <-chan struct{}, nextDue time.Time) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	now := time.Now()
	resp = agentapi.PollResponse{Commands: cl.queues[sub], Cancel: cl.cancels[sub]}
	delete(cl.queues, sub)
	delete(cl.cancels, sub)
	queued := map[string]bool{}
	for _, c := range resp.Commands {
		queued[c.UID] = true
	}
	var again []*dispatch
	for uid, d := range cl.dispatched {
		if d.sub != sub || queued[uid] {
			continue
		}
		if due := d.at.Add(fakeRedeliverAfter); due.After(now) {
			if nextDue.IsZero() || due.Before(nextDue) {
				nextDue = due
			}
			continue
		}
		again = append(again, d)
		cl.redeliveries[uid]++
	}
	slices.SortFunc(again, func(x, y *dispatch) int { return x.at.Compare(y.at) }) // the oldest first
	for _, d := range again {
		resp.Commands = append(resp.Commands, d.cmd)
	}
	for _, c := range resp.Commands {
		cl.handouts[c.UID]++
		cl.dispatched[c.UID] = &dispatch{sub: sub, cmd: c, at: now}
	}
	for _, uid := range resp.Cancel {
		if sc := cl.stored[uid]; sc != nil {
			sc.cancel = true
		}
	}
	return resp, cl.changed, nextDue
}

// fakeNode is one node of a fakeCluster: an HTTPS server of agentapi's
// routes, or the same handler served over a listening agent's session.
type fakeNode struct {
	cluster *fakeCluster
	srv     *httptest.Server
	quit    chan struct{}
	polls   atomic.Int64 // poll requests handled
	// handshakes counts the TLS handshakes the server began.
	handshakes atomic.Int64
}

// fakePollWait is how long the fake holds an empty poll.
const fakePollWait = time.Second

func (cl *fakeCluster) newNode() *fakeNode {
	return &fakeNode{cluster: cl, quit: make(chan struct{})}
}

// startNode starts an HTTPS node presenting id and accepting the agents
// the cluster knows.
func startNode(t *testing.T, cl *fakeCluster, id certs.Identity) *fakeNode {
	t.Helper()
	n := cl.newNode()
	n.srv = httptest.NewUnstartedServer(n.handler())
	n.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	cfg := certs.ServerConfig(id, cl.verifyAgent)
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		n.handshakes.Add(1)
		return nil, nil
	}
	n.srv.TLS = cfg
	n.srv.StartTLS()
	t.Cleanup(n.close)
	return n
}

// kill cuts every connection of the node and stops it.
func (n *fakeNode) kill() {
	select {
	case <-n.quit:
		return
	default:
	}
	close(n.quit)
	n.srv.Listener.Close()
	n.srv.CloseClientConnections()
}

func (n *fakeNode) close() {
	n.kill()
	n.srv.Close()
}

func (n *fakeNode) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathPoll, n.poll)
	mux.HandleFunc("POST "+agentapi.PathReport, n.report)
	mux.HandleFunc("GET "+agentapi.PathFile, n.getFile)
	mux.HandleFunc("PUT "+agentapi.PathFile, n.putFile)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (n *fakeNode) poll(w http.ResponseWriter, r *http.Request) {
	n.polls.Add(1)
	var req agentapi.PollRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.AgentVersion != cuttle.Version {
		writeJSON(w, http.StatusBadRequest, agentapi.Error{ErrorMessage: fmt.Sprintf("bad poll %+v: %v", req, err)})
		return
	}
	timeout := time.NewTimer(fakePollWait)
	defer timeout.Stop()
	for {
		if r.Context().Err() != nil {
			// The agent gave the poll up: hand it nothing (comms fails
			// to, with the request's context).
			return
		}
		resp, changed, nextDue := n.cluster.take(req.SubscriptionId)
		if len(resp.Commands)+len(resp.Cancel) > 0 {
			writeJSON(w, http.StatusOK, resp)
			return
		}
		var due <-chan time.Time // when a handed-out command is due again
		if !nextDue.IsZero() {
			due = time.After(time.Until(nextDue))
		}
		select {
		case <-changed:
		case <-due:
		case <-timeout.C:
			writeJSON(w, http.StatusOK, resp)
			return
		case <-r.Context().Done():
			return
		case <-n.quit:
			return
		}
	}
}

func (n *fakeNode) report(w http.ResponseWriter, r *http.Request) {
	var rep agentapi.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		writeJSON(w, http.StatusBadRequest, agentapi.Error{ErrorMessage: err.Error()})
		return
	}
	switch ack, status := n.cluster.storeReport(n, r.PathValue("uid"), rep); status {
	case http.StatusNotFound:
		writeJSON(w, status, agentapi.Error{ErrorMessage: "this command is not this machine's"})
	default:
		writeJSON(w, status, ack)
	}
}

// getFile serves the file of a ReceiveFile or DeployPackage command, as
// comms does, from cluster.files by the command's UID.
func (n *fakeNode) getFile(w http.ResponseWriter, r *http.Request) {
	n.cluster.gets.Add(1)
	n.cluster.mu.Lock()
	content, ok := n.cluster.files[r.PathValue("uid")]
	n.cluster.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, agentapi.Error{ErrorMessage: "no such file"})
		return
	}
	from := 0
	if rg := r.Header.Get("Range"); rg != "" {
		n.cluster.ranges.Add(1)
		v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || v >= len(content) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		from = v
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(content)-1, len(content)))
	}
	body := content[from:]
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if from > 0 {
		w.WriteHeader(http.StatusPartialContent)
	}
	if cut := n.cluster.cutAt.Swap(0); cut > 0 && cut < int64(len(body)) {
		w.Write(body[:cut])
		n.cluster.servedBytes.Add(cut)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection breaks mid-transfer
	}
	w.Write(body)
	n.cluster.servedBytes.Add(int64(len(body)))
}

// putFile takes the file of a SendFile command, or with ?name= an
// artifact of a Script or DeployPackage command, as comms does: refused
// (409) once the command's outcome is stored, and checked against
// HeaderSHA256.
func (n *fakeNode) putFile(w http.ResponseWriter, r *http.Request) {
	uid, name := r.PathValue("uid"), r.URL.Query().Get("name")
	n.cluster.mu.Lock()
	sc, refused := n.cluster.stored[uid], n.cluster.refuseArtifacts[name]
	n.cluster.mu.Unlock()
	switch {
	case sc != nil && cuttle.CommandState(sc.state).Final():
		writeJSON(w, http.StatusConflict, agentapi.Error{ErrorMessage: fmt.Sprintf("The command %s is not a file upload in progress.", uid)})
		return
	case name != "" && refused:
		writeJSON(w, http.StatusBadRequest, agentapi.Error{ErrorMessage: fmt.Sprintf("The file %q cannot be stored as an artifact.", name)})
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	if r.Header.Get(agentapi.HeaderSHA256) != digest || r.ContentLength != int64(len(b)) {
		writeJSON(w, http.StatusBadRequest, agentapi.Error{ErrorMessage: fmt.Sprintf("the upload has SHA-256 %s and %d bytes; the headers say %s and %d", digest, len(b), r.Header.Get(agentapi.HeaderSHA256), r.ContentLength)})
		return
	}
	n.cluster.mu.Lock()
	if name == "" {
		n.cluster.uploads[uid] = b
	} else {
		if n.cluster.artifacts[uid] == nil {
			n.cluster.artifacts[uid] = map[string]fakeArtifact{}
		}
		n.cluster.artifacts[uid][name] = fakeArtifact{body: b, sha256: r.Header.Get(agentapi.HeaderSHA256)}
	}
	n.cluster.mu.Unlock()
	writeJSON(w, http.StatusOK, agentapi.FileResult{Size: int64(len(b)), SHA256: digest})
}

// logBuffer collects an agent's log, for tests to wait for messages.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{changed: make(chan struct{})}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func (lb *logBuffer) Write(p []byte) (int, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.buf.Write(p)
	close(lb.changed)
	lb.changed = make(chan struct{})
	return len(p), nil
}

func (lb *logBuffer) String() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.buf.String()
}

func (lb *logBuffer) count(s string) int { return strings.Count(lb.String(), s) }

// waitFor waits until the log holds s.
func (lb *logBuffer) waitFor(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		lb.mu.Lock()
		ok, changed := strings.Contains(lb.buf.String(), s), lb.changed
		lb.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for the agent to log %q", within, s)
		}
	}
}

// testTiming makes retries quick.
var testTiming = timing{
	backoffFirst:  20 * time.Millisecond,
	backoffLast:   200 * time.Millisecond,
	reportLinger:  2 * time.Millisecond,
	firstReport:   10 * time.Millisecond,
	reportTimeout: 5 * time.Second,
	stall:         5 * time.Second,
	finalReports:  2 * time.Second,
	prune:         time.Hour,
}

// testAgent is an agent under test, with its home and log.
type testAgent struct {
	*Agent
	cfg  Config
	logs *logBuffer
	stop func() error // stops Run and returns its error
}

// pollingHome returns a fake cluster with one node and an agent home
// configured to poll it.
func pollingHome(t *testing.T) (*fakeCluster, Config) {
	t.Helper()
	cl := newFakeCluster(t)
	return cl, configureAgent(t, cl, Polling, startNode(t, cl, cl.id))
}

// configureAgent makes an agent home that trusts the given nodes (polling)
// or the cluster (listening), known to the cluster.
func configureAgent(t *testing.T, cl *fakeCluster, mode Mode, nodes ...*fakeNode) Config {
	t.Helper()
	cfg, err := Configure(t.TempDir(), ConfigureOptions{Name: "test-agent", Mode: mode, ListenAddress: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if mode == Listening {
		if _, err := cfg.Trust(TrustedServer{Thumbprint: cl.id.Thumbprint, CommunicationStyle: cuttle.Listening}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if _, err := cfg.Trust(TrustedServer{Thumbprint: cl.id.Thumbprint, CommunicationStyle: cuttle.Polling, Address: n.srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	cl.trustAgent(cfg.Identity.Thumbprint)
	return cfg
}

// startAgent runs an agent of the home of cfg until the test ends, after
// calling each of tune with it.
func startAgent(t *testing.T, cfg Config, tune ...func(*Agent)) *testAgent {
	t.Helper()
	cfg, err := Load(cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger(t)
	a, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	a.timing = testTiming
	a.ShutdownGrace = 5 * time.Second
	for _, f := range tune {
		f(a)
	}
	if cfg.Mode == Listening {
		if _, err := a.Listen(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = fmt.Errorf("Run did not return")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return &testAgent{Agent: a, cfg: cfg, logs: logs, stop: stop}
}

var uidCounter atomic.Int64

func newUID() string { return fmt.Sprintf("cmd-%d-%d", os.Getpid(), uidCounter.Add(1)) }

func newTestCommand(t *testing.T, kind cuttle.CommandKind, payload any) agentapi.Command {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return agentapi.Command{UID: newUID(), Kind: string(kind), Payload: b}
}

func scriptCommand(t *testing.T, body string) agentapi.Command {
	return newTestCommand(t, cuttle.CommandScript, agentapi.Script{Body: body, Syntax: "Bash"})
}
