package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/certs"
)

// link is one way to reach the cluster: a server the agent polls, or the
// session of a node connected to a listening agent. Every request of the
// agent (polls, reports, files) goes over some link.
type link struct {
	// name says where the link leads, for logs: "server at https://h:p"
	// or "node at ADDR".
	name    string
	baseURL string
	// subscriptionID is sent in polls; empty over a node's session.
	subscriptionID string
	http           *http.Client
	log            *slog.Logger
	// thumbprint is the agent's own, for messages about refusals.
	thumbprint string
	// closed is closed when a node's session ends; nil for a server.
	closed <-chan struct{}

	mu      sync.Mutex
	failing bool // since the last failure was logged
}

// maxIdleConnections bounds the idle HTTP connections kept per link: the
// polls and a few reports and transfers.
const maxIdleConnections = 16

func http1Only() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return p
}

// newServerLink returns the link to a server the agent polls: TLS 1.3, the
// agent's certificate, the server's pinned.
func (a *Agent) newServerLink(ts TrustedServer) *link {
	verify := func(thumbprint string) error {
		if strings.EqualFold(thumbprint, ts.Thumbprint) {
			return nil
		}
		return &untrustedServerError{address: ts.Address, thumbprint: thumbprint, trusted: ts.Thumbprint}
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     certs.ClientConfig(a.cfg.Identity, verify),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: maxIdleConnections,
		IdleConnTimeout:     90 * time.Second,
		Protocols:           http1Only(),
	}
	return &link{
		name:           "server at " + ts.Address,
		baseURL:        ts.Address,
		subscriptionID: ts.SubscriptionId,
		http:           &http.Client{Transport: transport},
		log:            a.log,
		thumbprint:     a.cfg.Identity.Thumbprint,
	}
}

// untrustedServerError fails the handshake with a server whose certificate
// is not the one trusted for its address.
type untrustedServerError struct {
	address, thumbprint, trusted string
}

func (e *untrustedServerError) Error() string {
	return fmt.Sprintf("server at %s presented certificate %s, which this agent does not trust (trusted: %s); run `cuttle agent poll-server` to trust it",
		e.address, e.thumbprint, e.trusted)
}

// statusError is a node's answer of 400 or more.
type statusError struct {
	status  int
	message string
	body    []byte // up to 64 KiB
}

func (e *statusError) Error() string {
	return fmt.Sprintf("the node answered %d %s: %s", e.status, http.StatusText(e.status), e.message)
}

// answered reports whether err is the cluster's answer, which another node
// would repeat: a 4xx status.
func answered(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.status < 500
}

// refused reports whether err is the cluster's refusal of a report: a 4xx
// answer other than 409 (a gap in the lines) and 429 (busy).
func refused(err error) bool {
	var se *statusError
	return answered(err) && errors.As(err, &se) && se.status != http.StatusConflict && se.status != http.StatusTooManyRequests
}

// remoteRefusal reports whether err is the peer's TLS alert, as when it
// does not trust this agent's certificate.
func remoteRefusal(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// do sends req, made with a context derived from ctx, and returns an answer
// below 400; an answer of 400 or more is a *statusError. It logs an outage
// of the link once, and its end.
func (l *link) do(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := l.http.Do(req)
	if err == nil && resp.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var body agentapi.Error
		if json.Unmarshal(b, &body) != nil || body.ErrorMessage == "" {
			body.ErrorMessage = strings.TrimSpace(string(b))
		}
		err = &statusError{status: resp.StatusCode, message: body.ErrorMessage, body: b}
	}
	switch {
	case ctx.Err() != nil: // the agent gave up the request: not the link's fault
	case err == nil:
		l.noteWorking()
	case answered(err):
		// Whether that is an outage is the caller's call.
	default:
		l.noteFailure(err)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// postJSON posts in to path and decodes the answer into out, giving up
// after timeout.
func (l *link) postJSON(ctx context.Context, path string, in, out any, timeout time.Duration) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, l.baseURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the answer of the %s to %s: %w", l.name, path, err)
	}
	io.Copy(io.Discard, resp.Body) // to the end, so that the connection is used again
	return nil
}

func (l *link) noteFailure(err error) {
	select {
	case <-l.closed:
		return // a session that ended fails every request: that is no outage
	default:
	}
	l.mu.Lock()
	first := !l.failing
	l.failing = true
	l.mu.Unlock()
	if !first {
		return
	}
	var untrusted *untrustedServerError
	switch {
	case errors.As(err, &untrusted):
		l.log.Error(untrusted.Error())
	case remoteRefusal(err):
		l.log.Error(fmt.Sprintf("the %s refused this agent's certificate %s (%v): it does not know this agent; register it (`cuttle agent register`) or check the machine's thumbprint in the cluster", l.name, l.thumbprint, err))
	case errors.As(err, new(*statusError)):
		l.log.Warn(fmt.Sprintf("the %s refuses this agent's requests; retrying until it takes them", l.name), "err", err)
	default:
		l.log.Warn(fmt.Sprintf("cannot reach the %s; retrying until it answers", l.name), "err", err)
	}
}

func (l *link) noteWorking() {
	l.mu.Lock()
	recovered := l.failing
	l.failing = false
	l.mu.Unlock()
	if recovered {
		l.log.Info(fmt.Sprintf("the %s answers again", l.name))
	}
}

// linkSet holds the links that work or may work, the one that last
// worked first.
type linkSet struct {
	mu    sync.Mutex
	links []*link
	added chan struct{} // closed and replaced when a link is added
}

func newLinkSet() *linkSet { return &linkSet{added: make(chan struct{})} }

func (s *linkSet) add(l *link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links = append(s.links, l)
	close(s.added)
	s.added = make(chan struct{})
}

func (s *linkSet) remove(l *link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, have := range s.links {
		if have == l {
			s.links = append(s.links[:i], s.links[i+1:]...)
			return
		}
	}
}

// whenAdded returns a channel closed when a link is next added.
func (s *linkSet) whenAdded() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.added
}

// ordered returns the links, preferred first if it is one of them, then
// the one that last worked first.
func (s *linkSet) ordered(preferred *link) []*link {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*link, 0, len(s.links))
	for _, l := range s.links {
		if l == preferred {
			out = append([]*link{l}, out...)
		} else {
			out = append(out, l)
		}
	}
	return out
}

// worked moves l to the front.
func (s *linkSet) worked(l *link) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, have := range s.links {
		if have == l {
			copy(s.links[1:i+1], s.links[:i])
			s.links[0] = l
			return
		}
	}
}

// errNoLink is the error of a request when no node can be reached.
var errNoLink = errors.New("no node of the cluster is connected")

// try calls send with each link, preferred first (when not nil), then the
// one that last worked first, until one succeeds. It stops at once when
// ctx ends or the cluster answers 4xx (see answered); it fails with
// errNoLink when there is no link.
func (a *Agent) try(ctx context.Context, preferred *link, send func(*link) error) error {
	err := errNoLink
	for _, l := range a.links.ordered(preferred) {
		if err = send(l); err == nil {
			a.links.worked(l)
			return nil
		}
		if ctx.Err() != nil || answered(err) {
			return err
		}
	}
	return err
}

// backoff spaces out the retries of a failing request: from its first
// delay, doubling up to its last, each with up to a quarter of jitter.
type backoff struct {
	first, last, next time.Duration
}

func (a *Agent) newBackoff() *backoff {
	return &backoff{first: a.timing.backoffFirst, last: a.timing.backoffLast}
}

// delay returns the next delay.
func (b *backoff) delay() time.Duration {
	if b.next == 0 {
		b.next = b.first
	}
	d := b.next
	b.next = min(2*b.next, b.last)
	return d - rand.N(d/4+1)
}

func (b *backoff) reset() { b.next = 0 }

// pause waits for d, or until ctx ends or wake or alsoWake (nil: never)
// closes or receives; it reports whether ctx is still alive.
func pause(ctx context.Context, d time.Duration, wake, alsoWake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	case <-alsoWake:
	}
	return ctx.Err() == nil
}

// pollSlack is how much longer than agentapi.PollWait the agent waits for
// a poll's answer.
const pollSlack = 15 * time.Second

// poll long-polls over l until ctx ends: it hands the commands it gets to
// the agent at once and polls again, backing off while polls fail.
func (a *Agent) poll(ctx context.Context, l *link) {
	retry := a.newBackoff()
	for ctx.Err() == nil {
		var resp agentapi.PollResponse
		err := l.postJSON(ctx, agentapi.PathPoll, agentapi.PollRequest{SubscriptionId: l.subscriptionID, AgentVersion: cuttle.Version}, &resp, agentapi.PollWait+pollSlack)
		if err != nil {
			if answered(err) && ctx.Err() == nil {
				l.noteFailure(err) // a refused poll is an outage too
			}
			pause(ctx, retry.delay(), nil, nil)
			continue
		}
		retry.reset()
		for _, uid := range resp.Cancel {
			a.cancel(uid)
		}
		for _, cmd := range resp.Commands {
			a.accept(cmd, l)
		}
	}
}
