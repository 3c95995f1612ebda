package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cuttledeploy/cuttle/certs"
)

// handshakeTimeout bounds the TLS handshake of a node connecting to a
// listening agent.
const handshakeTimeout = 10 * time.Second

// Listen binds a listening agent's ListenAddress now and returns the
// address bound, which tells the port chosen for a port 0; otherwise Run
// binds it. It fails for a polling agent and when the address cannot be
// bound.
func (a *Agent) Listen() (net.Addr, error) {
	if a.cfg.Mode != Listening {
		return nil, fmt.Errorf("the agent %s polls (mode %s); it does not listen", a.cfg.Name, a.cfg.Mode)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener == nil {
		ln, err := net.Listen("tcp", a.cfg.ListenAddress)
		if err != nil {
			return nil, fmt.Errorf("listening for nodes: %w", err)
		}
		a.listener = ln
	}
	return a.listener.Addr(), nil
}

// untrustedNodeError fails the handshake of a node whose certificate is
// none of the trusted servers'.
type untrustedNodeError struct {
	thumbprint string
	trusted    []string
}

func (e *untrustedNodeError) Error() string {
	trusted := strings.Join(e.trusted, ", ")
	if trusted == "" {
		trusted = "none yet; run `cuttle agent register`"
	}
	return fmt.Sprintf("certificate %s is not a trusted server (trusted: %s)", e.thumbprint, trusted)
}

func (a *Agent) verifyNode(thumbprint string) error {
	var trusted []string
	for _, ts := range a.cfg.TrustedServers {
		if strings.EqualFold(thumbprint, ts.Thumbprint) {
			return nil
		}
		trusted = append(trusted, ts.Thumbprint)
	}
	return &untrustedNodeError{thumbprint: thumbprint, trusted: trusted}
}

// serve accepts nodes on ln until it is closed.
func (a *Agent) serve(pollCtx, linkCtx context.Context, ln net.Listener) {
	config := certs.ServerConfig(a.cfg.Identity, a.verifyNode)
	for {
		conn, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // such as too many open files: wait for some to close
			a.log.Warn("accepting a connection failed", "err", err)
			pause(linkCtx, 100*time.Millisecond, nil, nil)
			continue
		}
		a.background.Go(func() { a.serveNode(pollCtx, linkCtx, tls.Server(conn, config)) })
	}
}

// serveNode runs the session of a node that connected: once the handshake
// has shown it is a trusted server, the agent opens its requests as yamux
// streams over the connection and polls over them until the node closes
// the session (or linkCtx ends). Polls stop when pollCtx ends; reports go
// on over the session while it lasts.
func (a *Agent) serveNode(pollCtx, linkCtx context.Context, conn *tls.Conn) {
	from := conn.RemoteAddr().String()
	handshakeCtx, cancel := context.WithTimeout(linkCtx, handshakeTimeout)
	err := conn.HandshakeContext(handshakeCtx)
	cancel()
	if err != nil {
		conn.Close()
		var untrusted *untrustedNodeError
		switch {
		case errors.As(err, &untrusted):
			a.log.Error(fmt.Sprintf("refused a connection from %s: %v", from, untrusted))
		case remoteRefusal(err):
			a.log.Error(fmt.Sprintf("the node at %s refused this agent's certificate %s (%v): it does not know this agent; register it (`cuttle agent register`) or check the machine's thumbprint in the cluster",
				from, a.cfg.Identity.Thumbprint, err))
		default: // port scanners and load balancers' checks
			a.log.Debug("a TLS handshake failed", "from", from, "err", err)
		}
		return
	}
	config := yamux.DefaultConfig()
	config.LogOutput = nil
	config.Logger = slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)
	session, err := yamux.Client(conn, config)
	if err != nil {
		conn.Close()
		a.log.Error("starting a session with a node failed", "from", from, "err", err)
		return
	}
	transport := &http.Transport{
		DialContext:         func(context.Context, string, string) (net.Conn, error) { return session.Open() },
		MaxIdleConnsPerHost: maxIdleConnections,
		IdleConnTimeout:     90 * time.Second,
		Protocols:           http1Only(),
	}
	l := &link{
		name:       "node at " + from,
		baseURL:    "http://node", // TLS is below the session
		http:       &http.Client{Transport: transport},
		log:        a.log,
		thumbprint: a.cfg.Identity.Thumbprint,
		closed:     session.CloseChan(),
	}
	a.links.add(l)
	a.log.Info("a node connected", "from", from, "certificate", certs.PeerThumbprint(conn.ConnectionState()))

	polls, stopPolls := context.WithCancel(pollCtx)
	var loops sync.WaitGroup
	for range a.cfg.PollConnections {
		loops.Go(func() { a.poll(polls, l) })
	}
	select {
	case <-session.CloseChan():
	case <-linkCtx.Done():
	}
	stopPolls()
	a.links.remove(l)
	session.Close()
	loops.Wait()
	transport.CloseIdleConnections()
	a.log.Info("the session of a node ended", "from", from)
}
