package abuse_test

// This file is the attacker: a machine registered with a certificate of its
// own, whose agent is the test process speaking agentapi by hand.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// requestTimeout bounds one request of an attacker.
const requestTimeout = agentapi.PollWait + 15*time.Second

// attacker is a polling machine registered through the API with a
// certificate of its own; the test speaks for its agent, over mutual TLS
// from its own loopback address.
type attacker struct {
	t            *testing.T
	tg           *target
	name         string
	machineID    string // Machines-N
	subscription string
	tls          *tls.Config
	dialer       *net.Dialer
	http         *http.Client
}

// attacker registers a polling machine named name, in the genuine agent's
// environment, whose agent connects from ip.
func (tg *target) attacker(name, ip string) *attacker {
	t := tg.t
	t.Helper()
	id, err := certs.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testcluster.Context(t, 10*time.Second)
	cl := tg.node.Client
	cluster, err := cl.ClusterCertificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := cl.Environments(ctx)
	if err != nil || len(envs) == 0 {
		t.Fatalf("the node's environments: %v, %v", envs, err)
	}
	subscription := "poll://" + strings.ToLower(rand.Text()[:20]) + "/"
	m, err := cl.CreateMachine(ctx, client.NewMachine{Name: name, Roles: []string{"attacker"}, EnvironmentIds: []string{envs[0].Id},
		Endpoint: client.Endpoint{CommunicationStyle: "TentacleActive", Uri: subscription, Thumbprint: id.Thumbprint}})
	if err != nil {
		t.Fatalf("registering the machine %s: %v", name, err)
	}
	a := &attacker{t: t, tg: tg, name: name, machineID: m.Id, subscription: subscription,
		tls:    certs.ClientConfig(id, certs.Pin(cluster.Thumbprint)),
		dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}}
	a.http = &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		DialContext:         a.dialer.DialContext,
		TLSClientConfig:     a.tls,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1, as agents speak
		MaxIdleConnsPerHost: 100,
	}}
	t.Cleanup(a.http.CloseIdleConnections)
	return a
}

// pollingAddr is the node's polling endpoint.
func (a *attacker) pollingAddr() string {
	return "127.0.0.1:" + strconv.Itoa(a.tg.node.PollingPort)
}

// dialTLS opens a connection to the polling endpoint and completes the
// handshake with the attacker's certificate.
func (a *attacker) dialTLS(ctx context.Context) (net.Conn, error) {
	conn, err := a.dialer.DialContext(ctx, "tcp", a.pollingAddr())
	if err != nil {
		return nil, err
	}
	tc := tls.Client(conn, a.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// do sends a request to the polling endpoint and returns the answer's
// status and body, or the error that left it without one.
func (a *attacker) do(method, path string, body io.Reader, contentLength int64) (int, []byte, error) {
	req, err := http.NewRequest(method, "https://"+a.pollingAddr()+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.ContentLength = contentLength
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// outcome names how a request ended, for tallies: its status, or the kind
// of error that left it without one.
func outcome(status int, err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return strconv.Itoa(status)
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return addresses.ReplaceAllString(err.Error(), "ADDRESS") // one tally whatever the ports
	}
}

var addresses = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// takeCommand queues a task of kind for the attacker's machine with args
// (MachineIds added), polls until the task's command comes and confirms it
// with a Running report, as an agent would. It returns the task's id and
// the command's UID.
func (a *attacker) takeCommand(kind string, args map[string]any) (task, uid string) {
	a.t.Helper()
	args["MachineIds"] = []string{a.machineID}
	tk, err := a.tg.node.Client.CreateTask(testcluster.Context(a.t, 10*time.Second), kind, args)
	if err != nil {
		a.t.Fatalf("queueing a %s task for %s: %v", kind, a.name, err)
	}
	poll, _ := json.Marshal(agentapi.PollRequest{SubscriptionId: a.subscription})
	testcluster.Eventually(a.t, requestTimeout, func() error {
		status, body, err := a.do(http.MethodPost, agentapi.PathPoll, bytes.NewReader(poll), int64(len(poll)))
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("%s's poll: %d %s %v", a.name, status, body, err)
		}
		var resp agentapi.PollResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			return err
		}
		if len(resp.Commands) == 0 {
			return fmt.Errorf("%s's poll brought no command", a.name)
		}
		uid = resp.Commands[0].UID
		return nil
	})
	if status, ack, err := a.report(uid, report("Running", 0, 0, "")); status != http.StatusOK {
		a.t.Fatalf("%s confirming its command %s: %d %+v %v", a.name, uid, status, ack, err)
	}
	return tk.Id, uid
}

// report sends a report's body on the command and returns the answer's
// status and acknowledgement (which a 409 carries too).
func (a *attacker) report(uid string, body []byte) (int, agentapi.ReportAck, error) {
	status, answer, err := a.do(http.MethodPost, agentapi.CommandPath(agentapi.PathReport, uid), bytes.NewReader(body), int64(len(body)))
	var ack agentapi.ReportAck
	if err == nil && (status == http.StatusOK || status == http.StatusConflict) {
		err = json.Unmarshal(answer, &ack)
	}
	return status, ack, err
}

// lineTime is the time of every line the attacker reports.
var lineTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// report returns the JSON of a report in state with n lines of standard
// output numbered from seq, each of them text.
func report(state string, seq int64, n int, text string) []byte {
	r := agentapi.Report{State: state}
	for i := range int64(n) {
		r.Lines = append(r.Lines, agentapi.Line{Seq: seq + i, Time: lineTime, Stream: "stdout", Text: text})
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return b
}

// reportOfSize returns the JSON of a Running report of lines of text
// numbered from 1, as many as fit in size bytes.
func reportOfSize(size int, text string) []byte {
	one := len(report("Running", 1<<40, 1, text)) // a line's share, with a long Seq and the envelope
	return report("Running", 1, size/one, text)
}
