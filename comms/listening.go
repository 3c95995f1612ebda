package comms

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/netguard"
)

// Timings of sessions to listening agents.
const (
	dialTimeout = 10 * time.Second
	// sessionLinger keeps a session open after its last follower left, for
	// the next command to the same agent.
	sessionLinger  = 30 * time.Second
	maxDialBackoff = 10 * time.Second
)

// session keeps this node connected to one listening agent while tasks on
// this node follow commands of its machine: it dials the agent, runs a
// yamux session over the TLS connection, and serves agentapi's routes on
// the streams the agent opens (see agentapi's package documentation).
type session struct {
	c       *Comms
	machine cuttle.Machine
	users   int         // followers attached; guarded by c.mu
	linger  *time.Timer // closes the session once unused; guarded by c.mu
	stop    chan struct{}
	lastErr error // of the last dial; guarded by c.mu
}

// attach keeps a session to the listening machine m open until the
// returned func is called (and sessionLinger after, if nothing else uses it).
func (c *Comms) attach(m cuttle.Machine) (detach func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[m.ID]
	if s != nil && (s.machine.URI != m.URI || s.machine.Thumbprint != m.Thumbprint) {
		// The machine moved or has a new certificate: a session to the old
		// one serves nobody. Its followers keep their detach, which is harmless.
		delete(c.sessions, m.ID)
		s.close()
		s = nil
	}
	if s == nil {
		s = &session{c: c, machine: m, stop: make(chan struct{})}
		c.sessions[m.ID] = s
		go s.keep()
	}
	s.users++
	if s.linger != nil {
		s.linger.Stop()
		s.linger = nil
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if s.users--; s.users == 0 {
			s.linger = time.AfterFunc(sessionLinger, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				if s.users == 0 && c.sessions[m.ID] == s {
					delete(c.sessions, m.ID)
					s.close()
				}
			})
		}
	}
}

// dialError returns the error of the last attempt to reach the listening
// machine from this node, or nil if it connected or was not tried.
func (c *Comms) dialError(machineID int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[machineID]; s != nil {
		return s.lastErr
	}
	return nil
}

func (s *session) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// keep connects to the agent and reconnects, with backoff, until stopped.
func (s *session) keep() {
	log := s.c.log.With("machine", cuttle.FormatID(cuttle.MachineIDPrefix, s.machine.ID), "uri", s.machine.URI)
	backoff := time.Second
	for {
		err := s.serveOnce(log)
		s.c.mu.Lock()
		s.lastErr = err
		s.c.mu.Unlock()
		if err != nil {
			log.Warn("cannot reach the listening agent; retrying", "err", err, "in", backoff)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(backoff):
		}
		if err != nil {
			backoff = min(2*backoff, maxDialBackoff)
		} else {
			backoff = time.Second
		}
	}
}

// serveOnce dials the agent and serves its session until either side ends
// it. It returns the error that kept it from connecting, if any.
func (s *session) serveOnce(log *slog.Logger) error {
	addr, err := listeningAddress(s.machine.URI)
	if err != nil {
		return err
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: dialTimeout}, "tcp", addr,
		certs.ClientConfig(s.c.id, certs.Pin(s.machine.Thumbprint)))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	mux, err := yamux.Server(conn, cfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("starting a session with %s: %w", addr, err)
	}
	// In TLS 1.3 the agent checks this node's certificate after the
	// handshake has ended here: a refusal shows on the first exchange.
	if _, err := mux.Ping(); err != nil {
		mux.Close()
		return fmt.Errorf("the agent at %s ended the session at once (does it trust this cluster's certificate %s?): %w", addr, s.c.id.Thumbprint, err)
	}
	s.c.mu.Lock()
	s.lastErr = nil
	s.c.mu.Unlock()
	log.Info("connected to the listening agent")
	thumbprint := s.machine.Thumbprint
	srv := &http.Server{
		Handler:           netguard.BodyTimeout(s.c.handler, s.c.limits.BodyTimeout),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, thumbprint)
		},
	}
	go srv.Serve(mux)
	select {
	case <-mux.CloseChan():
		log.Info("the session with the listening agent ended")
	case <-s.stop:
	case <-s.c.hub.done:
	}
	srv.Close()
	mux.Close()
	return nil
}

// listeningAddress returns host:port of a listening agent's URI
// (https://host:port/; the port defaults to 10933).
func listeningAddress(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("the machine's Uri %q is not https://host:port/", uri)
	}
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(cuttle.DefaultListeningPort)
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
