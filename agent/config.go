package agent

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/certs"
)

// Mode says which side of the agent's connections dials.
type Mode string

const (
	// Polling agents dial the cluster's nodes and long-poll them for work
	// (Octopus: TentacleActive).
	Polling Mode = "polling"
	// Listening agents accept connections from the cluster's nodes
	// (Octopus: TentaclePassive).
	Listening Mode = "listening"
)

// DefaultListenAddress is where a listening agent accepts nodes: every
// interface, at cuttle.DefaultListeningPort.
const DefaultListenAddress = ":10933"

// DefaultPollConnections is how many polls a polling agent keeps open to
// each server, and a listening agent over each node's session.
const DefaultPollConnections = 2

// ConfigFile is the name of the configuration in the home folder.
const ConfigFile = "agent.json"

// Other names in the home folder (see the package doc).
const (
	certFile    = "agent.crt"
	keyFile     = "agent.key"
	commandsDir = "commands"
	workDir     = "work"
	packagesDir = "packages"
)

// TrustedServer is a cluster the agent takes commands from, known by the
// thumbprint of the certificate all its nodes present.
type TrustedServer struct {
	// Thumbprint is the cluster's certificate's (package certs).
	Thumbprint string
	// CommunicationStyle is cuttle.Polling (TentacleActive) for a server
	// this agent polls, cuttle.Listening (TentaclePassive) for one that
	// connects to this agent.
	CommunicationStyle cuttle.CommunicationStyle
	// Address is where a polled server is reached, https://host:port;
	// empty for a server that connects to the agent.
	Address string `json:",omitempty"`
	// SubscriptionId is the agent's subscription id with a polled server.
	SubscriptionId string `json:",omitempty"`
}

// Config is an agent's configuration: agent.json in its home folder, and
// its certificate.
type Config struct {
	// Home is the agent's home folder; not stored.
	Home string `json:"-"`
	// Identity is the agent's certificate (agent.crt, agent.key); not
	// stored in agent.json.
	Identity certs.Identity `json:"-"`

	// Name is the agent's name; default the host name.
	Name string
	Mode Mode
	// ListenAddress is where a listening agent accepts nodes; default
	// DefaultListenAddress.
	ListenAddress string `json:",omitempty"`
	// SubscriptionId is the agent's identity with the servers it polls,
	// poll://<20 lower-case letters and digits>/, made once at configure.
	SubscriptionId string
	TrustedServers []TrustedServer
	// PollConnections is how many polls the agent keeps open to each
	// server or session; default DefaultPollConnections.
	PollConnections int `json:",omitempty"`
}

// ConfigureOptions are what Configure changes; a zero field changes nothing
// in an existing home and takes the default in a new one.
type ConfigureOptions struct {
	// Name defaults to the host name.
	Name string
	// Mode defaults to Listening.
	Mode Mode
	// ListenAddress sets where a listening agent accepts nodes; default
	// DefaultListenAddress.
	ListenAddress string
}

// DefaultHome returns the default home folder, ~/.cuttle/agent.
func DefaultHome() (string, error) {
	dir, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the default home of the agent: %w", err)
	}
	return filepath.Join(dir, ".cuttle", "agent"), nil
}

// Configure creates the agent's home folder (certificate, subscription id,
// agent.json, and the folders of the journal and the work) or changes an
// existing one. An existing home keeps its certificate and subscription id
// and changes only what opts set. It fails on an invalid mode or listen
// address and when the home cannot be written.
func Configure(home string, opts ConfigureOptions) (Config, error) {
	if opts.Mode != "" && opts.Mode != Polling && opts.Mode != Listening {
		return Config{}, fmt.Errorf("the agent's mode is %q or %q, not %q", Polling, Listening, opts.Mode)
	}
	if opts.ListenAddress != "" {
		if _, _, err := net.SplitHostPort(opts.ListenAddress); err != nil {
			return Config{}, fmt.Errorf("the listen address %q is not host:port (such as %s): %v", opts.ListenAddress, DefaultListenAddress, err)
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return Config{}, fmt.Errorf("creating the agent's home: %w", err)
	}
	cfg, err := readConfig(home)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfg = Config{Home: home, Mode: Listening}
		if cfg.SubscriptionId, err = newSubscriptionID(); err != nil {
			return Config{}, err
		}
	case err != nil:
		return Config{}, err
	}
	if opts.Name != "" {
		cfg.Name = opts.Name
	}
	if cfg.Name == "" {
		if cfg.Name, err = os.Hostname(); err != nil {
			return Config{}, fmt.Errorf("the agent needs a name and the host's cannot be read: %w", err)
		}
	}
	if opts.Mode != "" {
		cfg.Mode = opts.Mode
	}
	if opts.ListenAddress != "" {
		cfg.ListenAddress = opts.ListenAddress
	}
	if cfg.Mode == Listening && cfg.ListenAddress == "" {
		cfg.ListenAddress = DefaultListenAddress
	}
	if cfg.PollConnections == 0 {
		cfg.PollConnections = DefaultPollConnections
	}
	if cfg.TrustedServers == nil {
		cfg.TrustedServers = []TrustedServer{} // [] rather than null in agent.json
	}
	if cfg.Identity, err = loadIdentity(home); errors.Is(err, fs.ErrNotExist) {
		if cfg.Identity, err = createIdentity(home, cfg.Name); err != nil {
			return Config{}, err
		}
	} else if err != nil {
		return Config{}, err
	}
	for _, dir := range []string{commandsDir, workDir} {
		if err := os.MkdirAll(filepath.Join(home, dir), 0o700); err != nil {
			return Config{}, err
		}
	}
	return cfg, cfg.Save()
}

// Load reads the configuration and certificate of the agent at home. It
// fails, wrapping fs.ErrNotExist, if the home is not configured, and if
// agent.json is invalid.
func Load(home string) (Config, error) {
	cfg, err := readConfig(home)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("the agent's home %s is not configured (run `cuttle agent configure --home %s`): %w", home, home, err)
	}
	if err != nil {
		return Config{}, err
	}
	if cfg.Identity, err = loadIdentity(home); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func readConfig(home string) (Config, error) {
	path := filepath.Join(home, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("reading %s: %w", path, err)
	}
	cfg.Home = home
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) validate() error {
	if c.Mode != Polling && c.Mode != Listening {
		return fmt.Errorf("Mode is %q or %q, not %q", Polling, Listening, c.Mode)
	}
	if !validSubscriptionID(c.SubscriptionId) {
		return fmt.Errorf("SubscriptionId %q is not poll://<20 lower-case letters and digits>/", c.SubscriptionId)
	}
	if c.PollConnections < 0 {
		return fmt.Errorf("PollConnections is %d; it must be at least 1 (or 0 for the default)", c.PollConnections)
	}
	for i, ts := range c.TrustedServers {
		if _, err := certs.ParseThumbprint(ts.Thumbprint); err != nil {
			return fmt.Errorf("TrustedServers[%d]: %w", i, err)
		}
		switch ts.CommunicationStyle {
		case cuttle.Polling:
			if _, err := ServerAddress(ts.Address); err != nil {
				return fmt.Errorf("TrustedServers[%d]: %w", i, err)
			}
		case cuttle.Listening:
		default:
			return fmt.Errorf("TrustedServers[%d]: CommunicationStyle is %q or %q, not %q", i, cuttle.Polling, cuttle.Listening, ts.CommunicationStyle)
		}
	}
	return nil
}

// Save writes agent.json atomically (it is never seen half-written). It
// fails if the configuration is invalid or cannot be written.
func (c *Config) Save() error {
	if err := c.validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.Home, ConfigFile), append(b, '\n'), 0o600)
}

// Trust adds a server to TrustedServers, normalising its thumbprint and
// address and defaulting a polled server's SubscriptionId to the agent's;
// it reports false, changing nothing, if the server is there already. It
// fails on an invalid thumbprint or address, and for a server whose
// style does not fit the agent's mode (a listening agent polls nothing; a
// polling agent accepts no connection). Call Save to keep the change.
func (c *Config) Trust(ts TrustedServer) (bool, error) {
	var err error
	if ts.Thumbprint, err = certs.ParseThumbprint(ts.Thumbprint); err != nil {
		return false, err
	}
	switch {
	case ts.CommunicationStyle == cuttle.Polling && c.Mode != Polling:
		return false, fmt.Errorf("this agent is a listening one (it waits for nodes to connect on %s), so it polls no server; configure it with --polling first", c.ListenAddress)
	case ts.CommunicationStyle == cuttle.Listening && c.Mode != Listening:
		return false, fmt.Errorf("this agent is a polling one, so no server connects to it; configure it with --listen first")
	case ts.CommunicationStyle == cuttle.Polling:
		if ts.Address, err = ServerAddress(ts.Address); err != nil {
			return false, err
		}
		if ts.SubscriptionId == "" {
			ts.SubscriptionId = c.SubscriptionId
		}
	case ts.CommunicationStyle == cuttle.Listening:
		if ts.Address != "" {
			return false, fmt.Errorf("a server that connects to the agent has no address (got %q)", ts.Address)
		}
	default:
		return false, fmt.Errorf("a trusted server's CommunicationStyle is %q or %q, not %q", cuttle.Polling, cuttle.Listening, ts.CommunicationStyle)
	}
	for _, have := range c.TrustedServers {
		if have.Thumbprint == ts.Thumbprint && have.CommunicationStyle == ts.CommunicationStyle && have.Address == ts.Address {
			return false, nil
		}
	}
	c.TrustedServers = append(c.TrustedServers, ts)
	return true, nil
}

// ServerAddress returns the address of a server to poll, given as
// host:port or https://host:port, as https://host:port; the port defaults
// to cuttle.DefaultPollingPort. It fails for any other form.
func ServerAddress(s string) (string, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "https://" + s
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("the server address %q is not host:port or https://host:port", s)
	}
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(cuttle.DefaultPollingPort)
	}
	return "https://" + net.JoinHostPort(u.Hostname(), port), nil
}

const subscriptionIDChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func newSubscriptionID() (string, error) {
	b := make([]byte, 20)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(subscriptionIDChars))))
		if err != nil {
			return "", err
		}
		b[i] = subscriptionIDChars[n.Int64()]
	}
	return "poll://" + string(b) + "/", nil
}

func validSubscriptionID(s string) bool {
	id, prefixed := strings.CutPrefix(s, "poll://")
	id, suffixed := strings.CutSuffix(id, "/")
	return prefixed && suffixed && len(id) == 20 && strings.Trim(id, subscriptionIDChars) == ""
}

func loadIdentity(home string) (certs.Identity, error) {
	certPEM, err := os.ReadFile(filepath.Join(home, certFile))
	if err != nil {
		return certs.Identity{}, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(home, keyFile))
	if err != nil {
		return certs.Identity{}, err
	}
	return certs.Load(certPEM, keyPEM)
}

func createIdentity(home, name string) (certs.Identity, error) {
	id, err := certs.Generate(name)
	if err != nil {
		return certs.Identity{}, err
	}
	if err := writeFileAtomic(filepath.Join(home, keyFile), id.KeyPEM, 0o600); err != nil {
		return certs.Identity{}, err
	}
	if err := writeFileAtomic(filepath.Join(home, certFile), id.CertPEM, 0o600); err != nil {
		return certs.Identity{}, err
	}
	return id, nil
}
