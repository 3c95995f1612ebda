package comms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/netguard"
	"github.com/cuttledeploy/cuttle/store"
)

// What a report may cost a node (DESIGN.md invariant 13): each is decoded
// under a gate that bounds the reports decoded at once, all agents together
// and each agent apart; its body is bounded by agentapi.MaxReportBody; and
// nothing of it is read before the command is known to be the agent's.

// reportWait is how long a report waits for a place at the gate before it
// is answered 429, which the agent retries.
const reportWait = 5 * time.Second

// gate bounds the work of one kind a node does at once: all clients
// together, and each client (an agent, by its certificate) to a share, so
// that one client cannot take every place.
type gate struct {
	all   chan struct{}
	share int

	mu      sync.Mutex
	clients map[string]*clientPlaces
}

// clientPlaces are the places one client holds, and how many of its
// requests hold or wait for one.
type clientPlaces struct {
	places chan struct{}
	users  int
}

// newGate returns a gate of n places, of which one client holds at most
// share (at least 1).
func newGate(n, share int) *gate {
	return &gate{all: make(chan struct{}, n), share: max(share, 1), clients: map[string]*clientPlaces{}}
}

// enter takes a place for client, waiting up to reportWait for one of the
// client's share and one of the node's; leave gives it back. KindBusy if
// none came free in time.
func (g *gate) enter(ctx context.Context, client string) (leave func(), err error) {
	g.mu.Lock()
	cp := g.clients[client]
	if cp == nil {
		cp = &clientPlaces{places: make(chan struct{}, g.share)}
		g.clients[client] = cp
	}
	cp.users++
	g.mu.Unlock()
	done := func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if cp.users--; cp.users == 0 {
			delete(g.clients, client)
		}
	}
	wait := time.NewTimer(reportWait)
	defer wait.Stop()
	select {
	case cp.places <- struct{}{}:
	case <-wait.C:
		done()
		return nil, cuttle.Errorf(cuttle.KindBusy, "This agent has %d reports in progress on this node; try again shortly.", g.share)
	case <-ctx.Done(): // the agent went away
		done()
		return nil, cuttle.Errorf(cuttle.KindBusy, "The report was given up while it waited.")
	}
	select {
	case g.all <- struct{}{}:
		return func() { <-g.all; <-cp.places; done() }, nil
	case <-wait.C:
	case <-ctx.Done():
	}
	<-cp.places
	done()
	return nil, cuttle.Errorf(cuttle.KindBusy, "The node is busy with other agents' reports; try again shortly.")
}

// owners remembers which machine each command belongs to, a fact that
// never changes, and how its output is redacted, so that a report's owner
// is checked without a read.
type owners struct {
	mu sync.Mutex
	m  map[string]owned // by command UID
}

// owned is what owners remembers of a command.
type owned struct {
	machine int64
	redact  func(string) string // nil: lines are stored as they come
}

// maxOwners bounds the commands owners remembers; past it, it forgets all.
const maxOwners = 100_000

// commandOf returns what is remembered of the command uid, or learns it
// with lookup. KindNotFound if there is no such command.
func (o *owners) commandOf(uid string, lookup func() (owned, error)) (owned, error) {
	o.mu.Lock()
	c, ok := o.m[uid]
	o.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := lookup()
	if err != nil {
		return owned{}, err
	}
	o.mu.Lock()
	if o.m == nil || len(o.m) >= maxOwners {
		o.m = map[string]owned{}
	}
	o.m[uid] = c
	o.mu.Unlock()
	return c, nil
}

// ownCommand returns what is known of the command uid if it belongs to one
// of the machines with the peer's certificate. KindNotFound otherwise, so
// that an agent learns nothing of other machines' commands; a command of
// another machine is logged (rate-limited).
func (c *Comms) ownCommand(r *http.Request, uid string) (owned, error) {
	cmd, err := c.owners.commandOf(uid, func() (owned, error) {
		cmd, err := c.store.CommandByUID(r.Context(), uid)
		if err != nil {
			return owned{}, err
		}
		o := owned{machine: cmd.MachineID}
		if c.redact != nil {
			payload, err := c.openPayload(cmd.Payload)
			if err != nil {
				return owned{}, fmt.Errorf("opening the payload of the command %s: %w", uid, err)
			}
			o.redact = c.redact(payload)
		}
		return o, nil
	})
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return owned{}, noSuchCommand(uid)
	}
	if err != nil {
		return owned{}, err
	}
	peer := peerThumbprint(r)
	ms, err := c.machines.byThumbprint(r.Context(), peer)
	if err != nil {
		return owned{}, err
	}
	for _, m := range ms {
		if m.ID == cmd.machine {
			return cmd, nil
		}
	}
	c.limited.Warn("other-machine/"+peer, "refused an agent's request about a command of another machine", "command", uid, "thumbprint", peer)
	return owned{}, noSuchCommand(uid)
}

func noSuchCommand(uid string) error {
	return cuttle.Errorf(cuttle.KindNotFound, "This agent has no command %.80q.", uid)
}

// handleReport stores a command's report and acknowledges what is stored.
// The command must be the agent's before the body is read; then the
// report is decoded under the gate, within agentapi's bounds.
func (c *Comms) handleReport(w http.ResponseWriter, r *http.Request) error {
	leave, err := c.reports.enter(r.Context(), peerThumbprint(r))
	if err != nil {
		return err
	}
	defer leave()
	uid := r.PathValue("uid")
	cmd, err := c.ownCommand(r, uid)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		netguard.Refuse(w)
	}
	if err != nil {
		return err
	}
	rep, err := decodeReport(http.MaxBytesReader(w, r.Body, agentapi.MaxReportBody))
	if err != nil {
		return err
	}
	report := cuttle.CommandReport{UID: uid, State: cuttle.CommandState(rep.State), ExitCode: rep.ExitCode,
		Result: rep.Result, Error: rep.Error, Bound: c.outputBound}
	for _, l := range rep.Lines {
		if cmd.redact != nil {
			l.Text = cmd.redact(l.Text)
		}
		report.Lines = append(report.Lines, cuttle.CommandLine{Seq: l.Seq, Time: l.Time, Stream: l.Stream, Text: l.Text})
	}
	stored, err := c.store.RecordReport(r.Context(), cmd.machine, report)
	if cuttle.IsKind(err, cuttle.KindConflict) {
		// A gap: answer with what is stored, for the agent to resend from.
		if cur, rerr := c.store.CommandByUID(r.Context(), uid); rerr == nil {
			writeJSON(w, http.StatusConflict, ack(cur))
			return nil
		}
	}
	if cuttle.IsKind(err, cuttle.KindInvalid) {
		c.limited.Warn("report-refused/"+peerThumbprint(r), "refused an agent's report", "command", uid, "thumbprint", peerThumbprint(r), "err", err)
	}
	if err != nil {
		return err
	}
	if err := c.store.Notify(r.Context(), store.ChannelCommands, strconv.FormatInt(stored.ID, 10)); err != nil {
		c.log.Debug("notifying a command's report failed; its follower reads it within a second", "err", err)
	}
	writeJSON(w, http.StatusOK, ack(stored))
	return nil
}

// decodeReport reads one report from body, which the caller bounds to
// agentapi.MaxReportBody, and checks it against agentapi's bounds. A NUL,
// which scripts may print (find -print0), becomes U+FFFD: PostgreSQL
// stores no NUL in text nor \u0000 in JSON. KindTooLarge for a body over
// its bound; KindBusy for a body that stopped coming (netguard.BodyTimeout),
// which the agent sends again; KindInvalid for anything else out of bounds
// or not a report.
func decodeReport(body io.Reader) (agentapi.Report, error) {
	var rep agentapi.Report
	dec := json.NewDecoder(body)
	if err := dec.Decode(&rep); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return agentapi.Report{}, cuttle.Errorf(cuttle.KindTooLarge, "A report's body must be at most %d bytes.", agentapi.MaxReportBody)
		}
		if netguard.IsTimeout(err) { // the body stopped coming: not a wrong report, the agent sends it again
			return agentapi.Report{}, &cuttle.Error{Kind: cuttle.KindBusy, Message: "The report's body did not arrive in time; send it again.", Err: err}
		}
		return agentapi.Report{}, &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The request body is not a report.", Err: err}
	}
	if len(rep.Lines) > agentapi.MaxReportLines {
		return agentapi.Report{}, cuttle.Errorf(cuttle.KindInvalid, "A report carries at most %d lines; this one has %d.", agentapi.MaxReportLines, len(rep.Lines))
	}
	if len(rep.Error) > agentapi.MaxErrorBytes {
		return agentapi.Report{}, cuttle.Errorf(cuttle.KindInvalid, "A report's Error is at most %d bytes.", agentapi.MaxErrorBytes)
	}
	for i, l := range rep.Lines {
		if len(l.Text) > agentapi.MaxLineBytes {
			return agentapi.Report{}, cuttle.Errorf(cuttle.KindInvalid, "A report's line %d has %d bytes; a line is at most %d.", l.Seq, len(l.Text), agentapi.MaxLineBytes)
		}
		rep.Lines[i].Text = noNUL.Replace(l.Text)
	}
	rep.Error = noNUL.Replace(rep.Error)
	if len(rep.Result) == 0 {
		rep.Result = nil
	} else {
		rep.Result = json.RawMessage(noNULJSON.Replace(string(rep.Result)))
	}
	return rep, nil
}

var (
	noNUL     = strings.NewReplacer("\x00", "\uFFFD")
	noNULJSON = strings.NewReplacer(`\u0000`, `\ufffd`)
)

func ack(c cuttle.Command) agentapi.ReportAck {
	return agentapi.ReportAck{StoredSeq: c.OutputSeq, State: string(c.State), Cancel: c.CancelRequested}
}
