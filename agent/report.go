package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/script"
)

// command is a command the agent runs or reports.
type command struct {
	uid     string
	kind    string
	payload json.RawMessage
	// origin is the link that handed it out; nil for one found in the
	// journal at start.
	origin *link
	dir    string // its journal folder

	changed chan struct{} // receives on new output and on the outcome
	nudged  chan struct{} // receives when it is handed out again

	mu       sync.Mutex
	rec      record
	out      *os.File // output.jsonl
	end      position // after the last line journaled
	stopRun  context.CancelCauseFunc
	canceled bool // the cluster asked to cancel it
	log      *slog.Logger
	lostErr  error // the first failed write of output
}

func newCommand(cmd agentapi.Command, from *link, dir string) *command {
	return &command{uid: cmd.UID, kind: cmd.Kind, payload: cmd.Payload, origin: from, dir: dir,
		changed: make(chan struct{}, 1), nudged: make(chan struct{}, 1)}
}

// begin sets the record and output of a command just journaled.
func (c *command) begin(rec record, out *os.File, log *slog.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec, c.out, c.end, c.log = rec, out, startOfOutput, log
}

// reopen sets the record of a command found in the journal, and opens its
// output.
func (c *command) reopen(rec record, log *slog.Logger) error {
	out, end, err := openOutput(c.dir)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec, c.out, c.end, c.log = rec, out, end, log
	return nil
}

func (c *command) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out != nil {
		c.out.Close()
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// nudge makes the reporter send a report now.
func (c *command) nudge() { notify(c.nudged) }

// start returns the context the command runs in, a child of parent; it
// has ended already if the cluster cancelled the command. Call the stop
// function when the command has ended.
func (c *command) start(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopRun = cancel
	if c.canceled {
		cancel(errCanceled)
	}
	return ctx, func() {
		c.mu.Lock()
		c.stopRun = nil
		c.mu.Unlock()
		cancel(nil)
	}
}

// cancel stops the command if it runs, and keeps it from starting.
func (c *command) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canceled = true
	if c.stopRun != nil {
		c.stopRun(errCanceled)
	}
}

// appendOutput journals lines, numbering them from the last journaled.
func (c *command) appendOutput(lines []agentapi.Line) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var buf []byte
	for i := range lines {
		lines[i].Seq = c.end.seq + int64(i)
		b, _ := json.Marshal(lines[i]) // a Line of the present time always marshals
		buf = append(append(buf, b...), '\n')
	}
	if _, err := c.out.Write(buf); err != nil {
		if c.lostErr == nil {
			c.lostErr = err
			c.log.Error("the command's output cannot be journaled; lines are lost", "err", err)
		}
		// A torn write would break the numbering: cut it off.
		c.out.Truncate(c.end.offset)
		return
	}
	c.end = position{seq: c.end.seq + int64(len(lines)), offset: c.end.offset + int64(len(buf))}
	notify(c.changed)
}

// scriptOutput journals a script's lines.
func (c *command) scriptOutput(lines []script.Line) {
	out := make([]agentapi.Line, len(lines))
	for i, l := range lines {
		out[i] = agentapi.Line{Time: l.Time.UTC(), Stream: string(l.Stream), Text: l.Text}
	}
	c.appendOutput(out)
}

// info journals a message of the agent's own as a line of output.
func (c *command) info(format string, args ...any) {
	c.appendOutput([]agentapi.Line{{Time: time.Now().UTC(), Stream: "info", Text: truncate(fmt.Sprintf(format, args...), agentapi.MaxLineBytes)}})
}

// warn journals a warning of the agent's own: an "info" line that starts
// with "Warning: ", since the protocol has no stream for warnings (a node
// refuses a report with a stream it does not know).
func (c *command) warn(format string, args ...any) {
	c.info("Warning: "+format, args...)
}

// truncate returns s cut to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// outcome is how a command ended.
type outcome struct {
	State    cuttle.CommandState
	ExitCode int
	Result   json.RawMessage
	Error    string
}

// finish journals the outcome, after the output it follows.
func (c *command) finish(j journal, o outcome, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	syncErr := c.out.Sync()
	c.rec.State, c.rec.ExitCode, c.rec.Result, c.rec.Error, c.rec.FinishedAt = o.State, o.ExitCode, o.Result, o.Error, now.UTC()
	notify(c.changed)
	if syncErr != nil {
		return syncErr
	}
	return j.save(c.rec)
}

// awaitEnd waits until the command has ended, for at most d, and returns
// what snapshot does then.
func (c *command) awaitEnd(ctx context.Context, d time.Duration) (record, position) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		rec, end := c.snapshot()
		if rec.State.Final() {
			return rec, end
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			return c.snapshot()
		case <-ctx.Done():
			return c.snapshot()
		}
	}
}

// snapshot returns the record and the position after the last line.
func (c *command) snapshot() (record, position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec, c.end
}

// update changes the record and journals it.
func (c *command) update(j journal, change func(*record)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(&c.rec)
	return j.save(c.rec)
}

// acknowledge records what the cluster acknowledged: the last line it
// stored and whether it stored the outcome (see ackFile).
func (c *command) acknowledge(j journal, storedSeq int64, outcome bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.StoredSeq, c.rec.Acknowledged = storedSeq, outcome
	return j.saveAck(c.rec)
}

// report is the command's reporter: it sends its reports until nothing
// remains to report (see record.settled) or the agent stops, and then
// forgets the command, unless it was handed out again meanwhile.
func (a *Agent) report(c *command) {
	for {
		a.sendReports(c)
		if a.forget(c, true) {
			return
		}
		c.unsettle()
	}
}

// unsettle makes a command handed out again reported again.
func (c *command) unsettle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Acknowledged, c.rec.Refused = false, ""
}

// sendReports sends the command's reports, one at a time, until the
// cluster has acknowledged its outcome or refused its reports, and the
// command has ended; or until the agent stops. First comes a report of
// what the agent has (for a new command, once it ended or firstReport
// passed), then the lines after the last the cluster stored, in batches,
// the outcome with the last of them.
func (a *Agent) sendReports(c *command) {
	ctx, log := a.linkCtx, c.log
	rec, _ := c.snapshot()
	retry := a.newBackoff()
	next, err := scanOutput(c.out, startOfOutput, rec.StoredSeq+1)
	for err != nil {
		log.Error("the command's output cannot be read; retrying", "err", err)
		if !pause(ctx, retry.delay(), nil, nil) {
			return
		}
		next, err = scanOutput(c.out, startOfOutput, rec.StoredSeq+1)
	}
	path := agentapi.CommandPath(agentapi.PathReport, c.uid)
	sent := false // since the start or the last nudge
	for ctx.Err() == nil {
		rec, end := c.snapshot()
		if rec.settled() {
			return
		}
		if rec.Refused != "" || (sent && !rec.State.Final() && next.seq == end.seq) {
			// Nothing to send: wait for output, the outcome or a nudge.
			select {
			case <-ctx.Done():
			case <-c.changed:
			case <-c.nudged:
				c.unsettle()
				sent = false
			}
			continue
		}
		switch {
		case !sent && !rec.State.Final():
			// The first report waits a little for the command to end, so
			// that a short one is reported once, with its outcome.
			rec, end = c.awaitEnd(ctx, a.timing.firstReport)
		case sent && !rec.State.Final() && end.seq-next.seq < agentapi.MaxReportLines: // more may come at once
			pause(ctx, a.timing.reportLinger, nil, nil)
			rec, end = c.snapshot()
		}
		lines, after, err := readOutput(c.out, next, end)
		if err != nil {
			log.Error("the command's output cannot be read; retrying", "err", err)
			pause(ctx, retry.delay(), nil, c.nudged)
			continue
		}
		report := agentapi.Report{Lines: lines, State: string(cuttle.CommandRunning)}
		// The outcome goes with the last lines, once an answer has told
		// which lines the cluster has (a cluster that lost some, and hands
		// the command out again, gets them first), or with all of them
		// from the first, before which nothing can be missing.
		withOutcome := rec.State.Final() && after == end && (sent || next == startOfOutput)
		if withOutcome {
			report.State, report.ExitCode, report.Result, report.Error = string(rec.State), rec.ExitCode, rec.Result, truncate(rec.Error, agentapi.MaxErrorBytes)
		}
		var ack agentapi.ReportAck
		err = a.try(ctx, nil, func(l *link) error { return l.postJSON(ctx, path, report, &ack, a.timing.reportTimeout) })
		var gap *statusError
		if errors.As(err, &gap) && gap.status == http.StatusConflict && json.Unmarshal(gap.body, &ack) == nil {
			// The lines do not follow the stored ones: the answer tells
			// which are, to resend from.
			log.Info("the cluster lacks lines before the ones reported; resending from the first it lacks", "storedSeq", ack.StoredSeq)
			err = nil
		}
		if refused(err) {
			log.Error("the cluster refused the command's report; no more are sent", "err", err)
			if err := c.update(a.journal, func(r *record) { r.Refused = err.Error() }); err != nil {
				log.Error("journaling the refusal failed", "err", err)
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("reporting failed; retrying", "err", err)
			}
			pause(ctx, retry.delay(), a.links.whenAdded(), c.nudged)
			continue
		}
		sentFrom := next
		sent = true
		ackFinal := cuttle.CommandState(ack.State).Final()
		if ack.Cancel || (ackFinal && !rec.State.Final()) {
			c.cancel() // the cluster wants it stopped, or holds an outcome already
		}
		// Go on from the line after the last the cluster stored, which is
		// usually the first not sent.
		switch stored := ack.StoredSeq + 1; {
		case stored == after.seq:
			next = after
		case stored < next.seq:
			next, err = scanOutput(c.out, startOfOutput, stored)
		default:
			next, err = scanOutput(c.out, next, stored)
		}
		if err != nil { // next is where the scan stopped, and as good a place as any to go on from
			log.Error("the command's output cannot be read; retrying", "err", err)
			pause(ctx, retry.delay(), nil, c.nudged)
			continue
		}
		if _, now := c.snapshot(); next.seq > now.seq { // the cluster claims lines the agent has not written
			next = now
		}
		acknowledged := withOutcome && ackFinal && next == end
		if ack.StoredSeq != rec.StoredSeq || acknowledged {
			if err := c.acknowledge(a.journal, ack.StoredSeq, acknowledged); err != nil {
				log.Error("journaling what the cluster stored failed", "err", err)
			}
		}
		if acknowledged {
			log.Debug("the cluster stored the command's outcome")
			return
		}
		if next != sentFrom || (len(lines) == 0 && !withOutcome) {
			retry.reset()
		} else { // the cluster stored nothing of this report: do not hammer it
			log.Debug("the cluster stored nothing of a report; retrying", "storedSeq", ack.StoredSeq, "state", ack.State)
			pause(ctx, retry.delay(), nil, c.nudged)
		}
	}
}
