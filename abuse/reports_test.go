package abuse_test

// Attacks with agent reports: floods, huge lines, output after the outcome.

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// unboundedReportBody is the most a node decoded of a report before the
// protocol's bounds (16 MiB): a flood of such bodies is what issue 9
// measured.
const unboundedReportBody = 16 << 20

// flood is one shape of a report flood: senders each sending body, one
// report after the other.
type flood struct {
	body    []byte
	senders int
}

// flood sends the floods' reports on the command uid, every sender at
// once, each until attackFor has passed, and calls during meanwhile. It
// returns the tally of the reports' outcomes.
func (a *attacker) flood(uid string, during func(), floods ...flood) *count {
	var tally count
	var wg sync.WaitGroup
	end := time.Now().Add(attackFor)
	for _, f := range floods {
		for range f.senders {
			wg.Go(func() {
				for time.Now().Before(end) {
					status, _, err := a.report(uid, f.body)
					tally.add(outcome(status, err))
				}
			})
		}
	}
	during()
	wg.Wait()
	return &tally
}

// floodShapes returns the flood of the report tests: 40 senders of
// reports within the protocol's bounds (1,000 lines of 900 bytes, under
// 1 MiB), more than the node decodes at once; and 8 senders of reports of
// short lines within the 16 MiB a node accepted before the bounds.
func floodShapes(t *testing.T) []flood {
	near := report("Running", 1, maxReportLines, strings.Repeat("a", 900))
	if len(near) > maxReportBody {
		t.Fatalf("the near-limit report has %d bytes, more than the %d a report may have", len(near), maxReportBody)
	}
	big := reportOfSize(unboundedReportBody-1024, "a short line of a flood of agent output")
	return []flood{{body: near, senders: 40}, {body: big, senders: 8}}
}

// TestReportFloodOwnCommand: an agent floods the node with reports on its
// own command, near-limit bodies of short lines from 48 connections at
// once for 5 seconds; the node stays within its limits.
func TestReportFloodOwnCommand(t *testing.T) {
	tg := startTarget(t)
	a := tg.attacker("attacker", attackerIP)
	_, uid := a.takeCommand("AdHocScript", map[string]any{"ScriptBody": "echo never runs", "Syntax": "Bash"})
	shapes := floodShapes(t)

	at := tg.begin("a report flood on the attacker's own command")
	tally := a.flood(uid, at.genuineDone, shapes...)
	at.end()
	t.Logf("answers: %v", tally)
}

// TestReportFloodOtherMachine: an agent floods the node with reports on a
// command of another machine, as TestReportFloodOwnCommand does on its
// own; each is refused (404, or the connection closed before the body was
// read) and the node stays within its limits: a refusal must not cost the
// decoding of the body.
func TestReportFloodOtherMachine(t *testing.T) {
	tg := startTarget(t)
	a := tg.attacker("attacker", attackerIP)
	victim := tg.attacker("victim", victimIP)
	_, uid := victim.takeCommand("AdHocScript", map[string]any{"ScriptBody": "echo never runs", "Syntax": "Bash"})
	shapes := floodShapes(t)

	at := tg.begin("a report flood on another machine's command")
	tally := a.flood(uid, at.genuineDone, shapes...)
	at.end()
	t.Logf("answers: %v", tally)
	for answer := range tally.m {
		if strings.HasPrefix(answer, "2") {
			t.Errorf("reports on another machine's command were answered %s: %v", answer, tally)
		}
	}
}

// TestHugeReportLines: an agent reports huge lines: reports of one line of
// 15 MiB (over the protocol's bounds), at least 10 and for attackFor, then
// 10 reports of 15 lines of 60 KiB (within the bounds). The node stays within its limits, and the task's log
// holds no line longer than the log's line limit: the lines it took are
// there, cut.
func TestHugeReportLines(t *testing.T) {
	tg := startTarget(t)
	a := tg.attacker("attacker", attackerIP)
	task, uid := a.takeCommand("AdHocScript", map[string]any{"ScriptBody": "echo never runs", "Syntax": "Bash"})
	// Huge lines are over the protocol's bounds (a report's body, a line);
	// long ones are within them (a line may have 64 KiB) and over the task
	// log's line limit.
	const (
		huge, hugeReports = 15 << 20, 10
		long, longLines   = 60 << 10, 15
		longReports       = 10
	)
	hugeLine, longLine := strings.Repeat("h", huge), strings.Repeat("x", long)

	at := tg.begin("huge lines in reports")
	var tally count
	next := int64(1) // the next line to send: after the last the node stored
	send := func(body []byte) {
		status, ack, err := a.report(uid, body)
		tally.add(outcome(status, err))
		if err == nil && (status == http.StatusOK || status == http.StatusConflict) {
			next = ack.StoredSeq + 1
		}
	}
	for i := 0; i < hugeReports || time.Since(at.start) < attackFor; i++ {
		send(report("Running", next, 1, hugeLine))
	}
	for range longReports {
		send(report("Running", next, longLines, longLine))
	}
	send(report("Success", next, 0, ""))
	tg.waitSuccess(task, time.Minute)
	at.end()
	logBytes := tg.taskLogBytes(task)
	t.Logf("answers: %v; the task's log has %s", &tally, testcluster.MiB(logBytes))

	// The raw log: every line within the limit, the long lines all there.
	resp, err := tg.get("/api/tasks/" + task + "/raw")
	if err != nil {
		tg.alive()
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	lines, found, longest := 0, 0, 0
	for {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 {
			break
		}
		lines++
		longest = max(longest, len(line))
		if bytes.Contains(line, []byte("[attacker] xxxxxxxx")) {
			found++
		}
		if err != nil {
			break
		}
	}
	// A line of the raw log is its time, category, block and text, with a
	// mark where the text was cut: a kilobyte is room enough.
	if longest > logLineLimit+1024 {
		t.Errorf("the task's log has a line of %d bytes, longer than the %d of its limit", longest, logLineLimit)
	}
	if found != longReports*longLines {
		t.Errorf("the task's log has %d of the %d lines of 60 KiB the agent reported within the protocol's bounds", found, longReports*longLines)
	}
	if bound := int64(lines) * (logLineLimit + 1024); logBytes > bound {
		t.Errorf("the task's log has %s for %d lines, more than %s", testcluster.MiB(logBytes), lines, testcluster.MiB(bound))
	}
}

// outcomeGrace bounds the grace in which a node still stores lines
// reported after a command's outcome.
const outcomeGrace = 15 * time.Second

// TestOutputAfterOutcome: once a command's outcome is stored, an agent
// keeps reporting lines; beyond a short grace (outcomeGrace at most), the
// node refuses them and stores none, however long the agent goes on
// (attackFor).
func TestOutputAfterOutcome(t *testing.T) {
	tg := startTarget(t)
	a := tg.attacker("attacker", attackerIP)
	task, uid := a.takeCommand("AdHocScript", map[string]any{"ScriptBody": "echo never runs", "Syntax": "Bash"})
	status, ack, err := a.report(uid, report("Success", 1, 10, "the command's last words"))
	if status != http.StatusOK || ack.State != "Success" || ack.StoredSeq != 10 {
		t.Fatalf("the outcome's report: %d %+v %v", status, ack, err)
	}
	ended := time.Now()
	tg.waitSuccess(task, 30*time.Second)

	at := tg.begin("output after the outcome")
	next, after := ack.StoredSeq+1, int64(0) // after: lines stored after the outcome
	// stored sends a report of 500 lines after the outcome and reports
	// whether the node stored them.
	stored := func() bool {
		status, ack, err := a.report(uid, report("Running", next, 500, "after the outcome"))
		if err != nil || status != http.StatusOK || ack.StoredSeq < next {
			return false
		}
		after += ack.StoredSeq - next + 1
		next = ack.StoredSeq + 1
		return true
	}
	testcluster.Eventually(t, outcomeGrace, func() error {
		if stored() {
			return fmt.Errorf("the node still stores lines %v after the outcome (%d so far)", time.Since(ended).Round(time.Millisecond), after)
		}
		return nil
	})
	refusedAfter := time.Since(ended)
	for refused := time.Now(); time.Since(refused) < attackFor; {
		if stored() {
			t.Errorf("a report %v after the outcome was stored, though an earlier one was refused", time.Since(ended).Round(time.Millisecond))
			break
		}
	}
	at.end()
	t.Logf("%d lines were stored after the outcome; reports were refused from %v after it", after, refusedAfter.Round(time.Millisecond))
}
