package comms

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/certs"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/netguard"
	"github.com/cuttledeploy/cuttle/ratelog"
	"github.com/cuttledeploy/cuttle/store"
)

// DefaultRedeliverAfter is how long a handed-out command may go without a
// report from its agent before a poll hands it out again.
const DefaultRedeliverAfter = 10 * time.Second

// DefaultPickupTimeout is how long Follow waits for an agent to confirm a
// command before it gives up on the agent.
const DefaultPickupTimeout = 2 * time.Minute

// scanInterval is how often a node looks for machines with work, in case a
// notification was missed, and a follower re-reads its command.
const scanInterval = time.Second

// Config configures Comms.
type Config struct {
	Store    store.Store
	Member   *cluster.Member
	Identity certs.Identity // the cluster's certificate (LoadIdentity)
	Storage  blob.Store     // shared storage: ReceiveFile reads it, SendFile writes artifacts to it
	Logger   *slog.Logger   // default slog.Default()
	// RedeliverAfter: default DefaultRedeliverAfter.
	RedeliverAfter time.Duration
	// PickupTimeout: default DefaultPickupTimeout.
	PickupTimeout time.Duration
	// Limits bound agents' connections, bodies, reports, output and
	// uploads; zero fields take their defaults.
	Limits cuttle.Limits
	// MasterKey opens sealed command payloads (cuttle.SealedPayload) as
	// they are handed out.
	MasterKey masterkey.Key
	// Redact, if set, returns for a command's opened payload what each
	// line of its output becomes before it is stored (a deployment's
	// sensitive values masked: deploy.Redactor), or nil to store the lines
	// as they come.
	Redact func(payload json.RawMessage) func(string) string
}

// Comms is one node's side of agent traffic. Create it with New before the
// Member starts (it registers for notifications), then Start it.
type Comms struct {
	store    store.Store
	member   *cluster.Member
	id       certs.Identity
	storage  blob.Store
	log      *slog.Logger
	redeliv  time.Duration
	pickup   time.Duration
	machines *machineCache
	hub      *hub
	handler  http.Handler
	limits   cuttle.Limits
	key      masterkey.Key
	redact   func(payload json.RawMessage) func(string) string
	// outputBound is the bound of one command's output.
	outputBound cuttle.OutputBound
	reports     *gate
	owners      owners
	limited     *ratelog.Logger // warnings an agent can repeat at will

	mu       sync.Mutex
	sessions map[int64]*session // open sessions to listening agents, by machine
	servers  []*http.Server
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns the Comms of a node and registers its notification handlers.
func New(cfg Config) *Comms {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	limits := cfg.Limits.WithDefaults()
	c := &Comms{
		store: cfg.Store, member: cfg.Member, id: cfg.Identity, storage: cfg.Storage, log: log,
		redeliv: cfg.RedeliverAfter, pickup: cfg.PickupTimeout, hub: newHub(), sessions: map[int64]*session{},
		limits: limits, key: cfg.MasterKey, redact: cfg.Redact, outputBound: cuttle.OutputBound{Lines: limits.CommandOutputLines, Bytes: limits.CommandOutputBytes},
		reports: newGate(limits.ReportConcurrency, limits.ReportConcurrency/4), limited: ratelog.New(log, 0),
	}
	if c.redeliv <= 0 {
		c.redeliv = DefaultRedeliverAfter
	}
	if c.pickup <= 0 {
		c.pickup = DefaultPickupTimeout
	}
	c.machines = newMachineCache(cfg.Store, log)
	c.handler = c.routes()
	byID := func(f func(int64)) func(string) {
		return func(payload string) {
			if payload == "" {
				c.hub.wakeAll()
				return
			}
			if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
				f(id)
			}
		}
	}
	cfg.Member.Handle(store.ChannelAgentWork, byID(c.hub.wakeMachine))
	cfg.Member.Handle(store.ChannelCommands, byID(c.hub.wakeCommand))
	cfg.Member.Handle(store.ChannelMachines, func(string) { c.machines.invalidate() })
	return c
}

// Start starts the background scan for machines with work.
func (c *Comms) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		c.scan(ctx)
	}()
}

// Stop closes the polling endpoint and the sessions to listening agents,
// and ends the pending polls.
func (c *Comms) Stop(ctx context.Context) {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	c.hub.close()
	c.mu.Lock()
	servers := c.servers
	sessions := c.sessions
	c.sessions = map[int64]*session{}
	c.mu.Unlock()
	for _, s := range sessions {
		s.close()
	}
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
}

// scan wakes, once a second, the polls of machines that have work, in case
// a notification was missed.
func (c *Comms) scan(ctx context.Context) {
	tick := time.NewTicker(scanInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !c.hub.hasPollers() {
			continue
		}
		ids, err := c.store.DispatchableMachines(ctx, c.redeliv)
		if err != nil {
			continue
		}
		for _, id := range ids {
			c.hub.wakeMachine(id)
		}
	}
}

// Serve serves polling agents on ln until Stop: TLS 1.3 with the cluster's
// certificate, refusing in the handshake any client whose certificate is
// not a registered machine's.
func (c *Comms) Serve(ln net.Listener) error {
	ln = netguard.Limit(ln, c.limits.AgentConnsPerAddress, func(ip string) {
		c.limited.Warn("agent-conns/"+ip, "closed an agent connection: its address holds the most connections allowed",
			"remote", ip, "limit", c.limits.AgentConnsPerAddress)
	})
	srv := &http.Server{
		Handler:           netguard.BodyTimeout(c.handler, c.limits.BodyTimeout),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		// Handshake failures are logged, with the address and thumbprint,
		// by the verifier; the server's own lines would repeat them.
		ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS13,
			GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
				return certs.ServerConfig(c.id, c.verifyAgent(hello.Context(), hello.Conn.RemoteAddr())), nil
			},
		},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
	}
	c.mu.Lock()
	c.servers = append(c.servers, srv)
	c.mu.Unlock()
	err := srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// verifyAgent returns the handshake check of a polling agent's connection
// from addr: its certificate must be a registered machine's.
func (c *Comms) verifyAgent(ctx context.Context, addr net.Addr) certs.Verifier {
	return func(thumbprint string) error {
		ctx, cancel := context.WithTimeout(ctx, handshakeLookup)
		defer cancel()
		ms, err := c.machines.byThumbprint(ctx, thumbprint)
		if err != nil {
			return err // the database is away: the agent tries again
		}
		if len(ms) > 0 {
			return nil
		}
		c.limited.Warn("unknown-certificate", "refused an agent connection: no machine is registered with its certificate",
			"remote", addr.String(), "thumbprint", thumbprint)
		return fmt.Errorf("no machine is registered with certificate thumbprint %s", thumbprint)
	}
}

// handshakeLookup bounds the database lookup of a handshake.
const handshakeLookup = 5 * time.Second

// identityPurpose names the master key's use for the cluster certificate.
const identityPurpose = "cluster certificate key"

// LoadIdentity returns the cluster's certificate: the one in the database,
// or, on the first start of a cluster, a new one it stores there (its key
// sealed with the master key; when nodes start together, one certificate
// wins). It fails if the stored key cannot be opened with key.
func LoadIdentity(ctx context.Context, st store.Store, key masterkey.Key) (certs.Identity, error) {
	fresh, err := certs.Generate("cuttle cluster")
	if err != nil {
		return certs.Identity{}, err
	}
	sealed, err := key.Seal(identityPurpose, fresh.KeyPEM)
	if err != nil {
		return certs.Identity{}, err
	}
	stored, err := st.InitClusterCertificate(ctx, cuttle.ClusterCertificate{CertPEM: fresh.CertPEM, SealedKey: sealed, Thumbprint: fresh.Thumbprint})
	if err != nil {
		return certs.Identity{}, err
	}
	keyPEM, err := key.Open(identityPurpose, stored.SealedKey)
	if err != nil {
		return certs.Identity{}, fmt.Errorf("the cluster certificate's key: %w", err)
	}
	return certs.Load(stored.CertPEM, keyPEM)
}
