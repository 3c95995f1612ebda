package comms_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/comms"
)

// dialAgent opens a TLS connection to the node as the agent a, for
// requests written by hand.
func (n *node) dialAgent(t *testing.T, a *agent) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", n.addr, certs.ClientConfig(a.id, certs.Pin(n.id.Thumbprint)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one answer from c within d.
func readAnswer(t *testing.T, c net.Conn, r *bufio.Reader, d time.Duration) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", d, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestReportBounds: a report beyond agentapi's bounds is refused and
// changes nothing; a report on another machine's command is refused
// without its body being read, and its connection closed.
func TestReportBounds(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a, other := n.polling(t, "web-1"), n.polling(t, "web-2")
	cmd := n.queue(t, a.machine, "script", cuttle.CommandScript, agentapi.Script{Body: "true", Syntax: "Bash"})
	a.poll()
	if ack, status := a.report(cmd.UID, agentapi.Report{State: "Running", Lines: lines(1, 1)}); status != 200 || ack.StoredSeq != 1 {
		t.Fatalf("a report within bounds: %d %+v", status, ack)
	}

	long := lines(2, 2)
	long[0].Text = strings.Repeat("x", agentapi.MaxLineBytes+1)
	big := lines(2, 40)
	for i := range big {
		big[i].Text = strings.Repeat("y", 60<<10) // 39 lines of 60 KiB: over the body's bound
	}
	stream := lines(2, 2)
	stream[0].Stream = "stdin"
	for _, c := range []struct {
		name   string
		report agentapi.Report
		status int
	}{
		{"a body over 1 MiB", agentapi.Report{State: "Running", Lines: big}, http.StatusRequestEntityTooLarge},
		{"too many lines", agentapi.Report{State: "Running", Lines: lines(2, agentapi.MaxReportLines+2)}, http.StatusBadRequest},
		{"a line over 64 KiB", agentapi.Report{State: "Running", Lines: long}, http.StatusBadRequest},
		{"an unknown stream", agentapi.Report{State: "Running", Lines: stream}, http.StatusBadRequest},
		{"an error over 64 KiB", agentapi.Report{State: "Failed", Error: strings.Repeat("e", agentapi.MaxErrorBytes+1)}, http.StatusBadRequest},
	} {
		if _, status := a.report(cmd.UID, c.report); status != c.status {
			t.Errorf("%s: %d, want %d", c.name, status, c.status)
		}
	}
	if got, err := n.store.Command(context.Background(), cmd.ID); err != nil || got.OutputSeq != 1 || got.State.Final() {
		t.Errorf("after the refused reports: %+v, %v; want OutputSeq 1, not final", got, err)
	}

	// Another machine's command: a body announced and never sent is
	// refused at once, and the connection closed.
	c := n.dialAgent(t, other)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{",
		agentapi.CommandPath(agentapi.PathReport, cmd.UID), agentapi.MaxReportBody)
	r := bufio.NewReader(c)
	if resp := readAnswer(t, c, r, 10*time.Second); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a report on another machine's command: %d, want 404", resp.StatusCode)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Error("the connection of a refused report is still open")
	}
}

// TestReportGate: one agent holds at most a quarter of the node's report
// places; its next report is answered 429 while another agent's goes
// through.
func TestReportGate(t *testing.T) {
	t.Parallel()
	n := newLimitedNode(t, cuttle.Limits{ReportConcurrency: 4}) // a share of 1
	a, b := n.polling(t, "web-1"), n.polling(t, "web-2")
	ca := n.queue(t, a.machine, "a", cuttle.CommandScript, agentapi.Script{Body: "true", Syntax: "Bash"})
	cb := n.queue(t, b.machine, "b", cuttle.CommandScript, agentapi.Script{Body: "true", Syntax: "Bash"})
	a.poll()
	b.poll()

	// A report whose body is still coming holds a's place.
	body := `{"State":"Running","Lines":[{"Seq":1,"Time":"2026-01-01T00:00:00Z","Stream":"stdout","Text":"slow"}]}`
	c := n.dialAgent(t, a)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		agentapi.CommandPath(agentapi.PathReport, ca.UID), len(body), body[:10])
	var status int
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, status = a.report(ca.UID, agentapi.Report{State: "Running"})
		if status == http.StatusTooManyRequests || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the slow report has not reached the gate yet
	}
	if status != http.StatusTooManyRequests {
		t.Errorf("a second report of an agent holding its share: %d, want 429", status)
	}
	if ack, status := b.report(cb.UID, agentapi.Report{State: "Success", Lines: lines(1, 1)}); status != 200 || ack.State != "Success" {
		t.Errorf("another agent's report meanwhile: %d %+v", status, ack)
	}
	fmt.Fprint(c, body[10:])
	if resp := readAnswer(t, c, bufio.NewReader(c), 10*time.Second); resp.StatusCode != 200 {
		t.Errorf("the slow report once its body came: %d", resp.StatusCode)
	}
	if ack, status := a.report(ca.UID, agentapi.Report{State: "Success"}); status != 200 || ack.StoredSeq != 1 {
		t.Errorf("a's report after its place came free: %d %+v", status, ack)
	}
}

// TestOutputOverTheBound: lines over the node's output bound are
// acknowledged, counted and not stored.
func TestOutputOverTheBound(t *testing.T) {
	t.Parallel()
	n := newLimitedNode(t, cuttle.Limits{CommandOutputLines: 3})
	a := n.polling(t, "web-1")
	cmd := n.queue(t, a.machine, "script", cuttle.CommandScript, agentapi.Script{Body: "true", Syntax: "Bash"})
	a.poll()
	if ack, status := a.report(cmd.UID, agentapi.Report{State: "Success", Lines: lines(1, 5)}); status != 200 || ack.StoredSeq != 5 {
		t.Fatalf("a report over the bound: %d %+v; want 200, every line acknowledged", status, ack)
	}
	got, err := n.store.Command(context.Background(), cmd.ID)
	if err != nil || got.Output.Lines != 3 || got.Output.DroppedLines != 2 {
		t.Errorf("the command: %+v, %v; want 3 lines stored, 2 dropped", got.Output, err)
	}
}

// TestArtifactLimit: an upload over the artifact limit is refused (413),
// whether its length is announced or not, and nothing is stored.
func TestArtifactLimit(t *testing.T) {
	t.Parallel()
	n := newLimitedNode(t, cuttle.Limits{ArtifactBytes: 1 << 10})
	a := n.polling(t, "web-1")
	send := n.queue(t, a.machine, "send", cuttle.CommandSendFile, agentapi.SendFile{Path: "big.log"})
	a.poll()
	over := strings.Repeat("z", 2<<10)
	for _, announced := range []bool{true, false} {
		var body io.Reader = strings.NewReader(over)
		if !announced {
			body = io.MultiReader(body) // no length: sent chunked
		}
		req, _ := http.NewRequest("PUT", a.base+agentapi.CommandPath(agentapi.PathFile, send.UID), body)
		resp, err := a.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("an upload of 2 KiB over a limit of 1 KiB (length announced %v): %d, want 413", announced, resp.StatusCode)
		}
	}
	stored := filepath.Join(n.storage, comms.ArtifactKey(n.task.ID, a.machine.ID, "big.log"))
	if _, err := os.Stat(stored); !os.IsNotExist(err) {
		t.Errorf("the refused artifact is stored: %v", err)
	}
}
