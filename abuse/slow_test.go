package abuse_test

// Attacks with slow connections: requests whose body never comes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/testcluster"
)

const (
	// slowConns is how many slow connections an attack opens on a port.
	slowConns = 2000
	// bodyTimeout is the node's --body-timeout in these tests (default
	// 30s, shorter to keep them fast).
	bodyTimeout = 5 * time.Second
	// closeSlack is how long after bodyTimeout a connection may still be
	// open before the test says the node did not close it.
	closeSlack = 5 * time.Second
	// refusedWithin is how soon after its byte a connection the node
	// refused at once (beyond a per-address bound) is closed.
	refusedWithin = time.Second
	// openers is how many connections are opened at once.
	openers = 8
	// slowBody is what a slow request's head promises; one byte of it comes.
	slowBody = 100000
	// reportWait is how long a report may wait for a place to be decoded
	// before its body is read (comms), and so before its body timeout runs.
	reportWait = 5 * time.Second
)

// slow is an attack of slow connections: each sends a request's head,
// promising a body of slowBody bytes, and one byte of the body, then
// nothing. The connections are all opened first (with their handshake),
// then the requests are sent on all of them at once, so that the node
// holds every one it keeps for the same span.
type slow struct {
	opening  time.Duration // how long opening every connection took
	sent     time.Time     // when the last request was sent
	held     int           // connections open once every request was sent
	refused  atomic.Int64  // connections that could not open, or the node closed before their byte was sent
	atOnce   atomic.Int64  // connections the node closed within refusedWithin of their byte
	timedOut atomic.Int64  // connections the node had not closed within+closeSlack after their byte
	// within is how long after its byte the node may keep a connection.
	within time.Duration
	// released is closed when the first connection the node held ends,
	// or when every connection has ended.
	released    chan struct{}
	releaseOnce sync.Once
	wg          sync.WaitGroup

	mu      sync.Mutex
	slowest time.Duration // the longest from a byte to its connection's close
	conns   []net.Conn
}

// attackSlow opens slowConns connections with dial, openers at once, then
// sends head(i) and one byte on the i-th, and watches each connection
// until the node closes it or within plus closeSlack have passed since its
// byte.
func attackSlow(dial func(ctx context.Context) (net.Conn, error), head func(i int) string, within time.Duration) *slow {
	s := &slow{released: make(chan struct{}), conns: make([]net.Conn, slowConns), within: within}
	begin := time.Now()
	var next atomic.Int64
	var opening sync.WaitGroup
	for range openers {
		opening.Go(func() {
			for i := int(next.Add(1)) - 1; i < slowConns; i = int(next.Add(1)) - 1 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				conn, err := dial(ctx)
				cancel()
				if err != nil {
					s.refused.Add(1)
					continue
				}
				s.conns[i] = conn
			}
		})
	}
	opening.Wait()
	s.opening = time.Since(begin)
	for i, conn := range s.conns {
		if conn == nil {
			continue
		}
		if _, err := io.WriteString(conn, head(i)+"{"); err != nil {
			s.refused.Add(1)
			continue
		}
		s.held++
		sent := time.Now()
		s.wg.Go(func() { s.watch(conn, sent) })
	}
	s.sent = time.Now()
	go func() {
		s.wg.Wait()
		s.release()
	}()
	return s
}

// watch reads what the node answers (a 408 or 413, say) until it closes
// the connection (EOF or a reset), or until the deadline.
func (s *slow) watch(conn net.Conn, sent time.Time) {
	conn.SetReadDeadline(sent.Add(s.within + closeSlack))
	_, err := io.Copy(io.Discard, conn)
	lived := time.Since(sent)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.timedOut.Add(1)
	case lived < refusedWithin:
		s.atOnce.Add(1)
	default:
		s.mu.Lock()
		s.slowest = max(s.slowest, lived)
		s.mu.Unlock()
		s.release()
	}
}

func (s *slow) release() { s.releaseOnce.Do(func() { close(s.released) }) }

// hold measures the node's ping while it holds the connections, from the
// last request sent until the first connection it held ends, and waits
// meanwhile for the attack's genuine script. It fails the test if the ping
// failed or its 99th percentile reached the attack's bound.
func (s *slow) hold(tg *target, at *attack) {
	tg.t.Helper()
	p := testcluster.StartPinger(tg.t, tg.node, pingEvery)
	at.genuineDone()
	<-s.released
	stats := p.Stop()
	tg.t.Logf("opened %d connections in %v (%d refused); the node held %d of them for %v (it closed %d at once), with %v",
		slowConns, s.opening.Round(time.Millisecond), s.refused.Load(), s.heldByNode(), time.Since(s.sent).Round(time.Millisecond),
		s.atOnce.Load(), stats)
	if stats.Failures > 0 || stats.Samples == 0 || stats.P99 >= at.pingBound {
		tg.t.Errorf("while the node held the slow connections, %v; want every call answered, the 99th percentile under %v (%v over the baseline's)", stats, at.pingBound, maxPingP99)
	}
}

// heldByNode returns how many connections the node held: those open when
// every request was sent, less those it closed at once.
func (s *slow) heldByNode() int64 { return int64(s.held) - s.atOnce.Load() }

// wait waits until every connection has ended or passed its deadline.
func (s *slow) wait() { s.wg.Wait() }

// close closes the attacker's side of every connection.
func (s *slow) close() {
	for _, c := range s.conns {
		if c != nil {
			c.Close()
		}
	}
}

// check fails the test unless the node closed every connection within
// s.within plus closeSlack of its byte, and its open files came back
// to about what they were before the attack.
func (s *slow) check(tg *target, f figures) {
	t := tg.t
	t.Helper()
	if s.slowest > 0 {
		t.Logf("the last connection the node closed ended %v after its byte", s.slowest.Round(time.Millisecond))
	}
	if n := s.timedOut.Load(); n > 0 {
		t.Errorf("%d of %d slow connections were still open %v after their byte (--body-timeout %v)", n, slowConns, s.within+closeSlack, bodyTimeout)
	}
	// A few files come and go with the node's own work.
	const slack = 20
	testcluster.Eventually(t, 10*time.Second, func() error {
		tg.alive()
		n, err := testcluster.OpenFiles(tg.node.Pid())
		if err != nil || n > f.files+slack {
			return fmt.Errorf("the node has %d open files (%v), %d before the attack", n, err, f.files)
		}
		return nil
	})
}

// TestSlowAPIConnections: 2,000 connections from one address to the API
// port each send an unauthenticated POST's head with Content-Length
// 100000 and one byte of the body, then nothing. The node stays within its
// limits while they are held (the ping's figures are those of the issue),
// closes those beyond --max-conns-per-address at once and the others
// within --body-timeout, and its open files come back.
func TestSlowAPIConnections(t *testing.T) {
	tg := startTarget(t, "body-timeout="+bodyTimeout.String())
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIP)}}
	addr := "127.0.0.1:" + strconv.Itoa(tg.node.Port)
	head := "POST /api/tasks HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(slowBody) + "\r\n\r\n"

	at := tg.begin("2,000 slow connections on the API port")
	s := attackSlow(func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) },
		func(int) string { return head }, bodyTimeout)
	defer s.close()
	s.hold(tg, at)
	s.wait()
	f := at.end()
	s.check(tg, f)
	if held := s.heldByNode(); held > maxConnsPerAddress {
		t.Errorf("the node held %d connections of one address at once, more than --max-conns-per-address %d", held, maxConnsPerAddress)
	}
}

// TestSlowAuthenticatedAPIConnections: the same with a valid API key, so
// that the node reads the bodies: it holds at most --max-conns-per-address
// of the 2,000 (the rest are closed at once), stays within its limits while
// it holds them, and closes them within --body-timeout.
func TestSlowAuthenticatedAPIConnections(t *testing.T) {
	tg := startTarget(t, "body-timeout="+bodyTimeout.String())
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIP)}}
	addr := "127.0.0.1:" + strconv.Itoa(tg.node.Port)
	head := "POST /api/tasks HTTP/1.1\r\nHost: " + addr + "\r\nX-Octopus-ApiKey: " + tg.node.Config.AdminKey +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(slowBody) + "\r\n\r\n"

	at := tg.begin("2,000 slow authenticated connections on the API port")
	s := attackSlow(func(ctx context.Context) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) },
		func(int) string { return head }, bodyTimeout)
	defer s.close()
	s.hold(tg, at)
	s.wait()
	f := at.end()
	s.check(tg, f)
	if held := s.heldByNode(); held > maxConnsPerAddress {
		t.Errorf("the node held %d connections of one address; want at most %d", held, maxConnsPerAddress)
	}
}

// TestSlowAgentConnections: 2,000 connections from one address to the
// polling port each complete the handshake with a registered agent's
// certificate and send the head of a report on its command (half of them)
// or of the upload of its SendFile command (the other half), with
// Content-Length 100000 and one byte of the body, then nothing. The node
// stays within its limits while they are held and closes them within
// --body-timeout, and its open files come back.
func TestSlowAgentConnections(t *testing.T) {
	tg := startTarget(t, "body-timeout="+bodyTimeout.String())
	a := tg.attacker("attacker", attackerIP)
	_, script := a.takeCommand("AdHocScript", map[string]any{"ScriptBody": "echo never runs", "Syntax": "Bash"})
	_, upload := a.takeCommand("CollectFile", map[string]any{"Path": "app.log"})
	heads := [2]string{
		"POST " + agentapi.CommandPath(agentapi.PathReport, script) + " HTTP/1.1\r\nHost: cuttle\r\nContent-Type: application/json\r\n",
		"PUT " + agentapi.CommandPath(agentapi.PathFile, upload) + " HTTP/1.1\r\nHost: cuttle\r\n",
	}
	for i := range heads {
		heads[i] += "Content-Length: " + strconv.Itoa(slowBody) + "\r\n\r\n"
	}

	at := tg.begin("2,000 slow connections on the polling port")
	// A report may wait for a place before its body timeout runs.
	s := attackSlow(a.dialTLS, func(i int) string { return heads[i%2] }, bodyTimeout+reportWait)
	defer s.close()
	s.hold(tg, at)
	s.wait()
	f := at.end()
	s.check(tg, f)
}
