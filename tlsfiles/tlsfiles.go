// Package tlsfiles serves a TLS certificate kept in two PEM files, the
// certificate (with its intermediates) and its private key, and picks up a
// renewed pair written over them without a restart. `cuttle server
// --tls-cert --tls-key` serves the API over HTTPS with one.
//
// A Pair looks at its files' modification times and sizes during a
// handshake, at most once per DefaultCheckInterval, and loads the pair again
// when either changed. A renewed pair that fails to load (a file half
// written, a key of another certificate) leaves the certificate in use, and
// is logged once as a warning; the pair is tried again when a file changes
// again. Writing the new files elsewhere and renaming them into place (as
// certbot's and Kubernetes' symlink swaps do) avoids even that warning.
package tlsfiles

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckInterval is how often, at most, a Pair looks at its files.
const DefaultCheckInterval = time.Second

// Pair is a certificate and its private key kept in files. Make one with
// Load; it is safe for concurrent use.
type Pair struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration // DefaultCheckInterval

	mu      sync.Mutex
	cert    *tls.Certificate
	seen    stamp     // the files when last loaded or tried
	checked time.Time // when the files were last looked at
}

// stamp tells a changed file: both files' modification times and sizes.
// It is zero when a file cannot be examined.
type stamp struct {
	certTime, keyTime int64 // Unix nanoseconds
	certSize, keySize int64
}

// Load reads the certificate file (PEM: the server's certificate first,
// then any intermediates) and the key file (PEM) and returns the pair,
// which logs its loads and failed reloads to log (default slog.Default()).
// It fails when a file cannot be read, or when the two do not make a pair
// (no certificate, no key, or the key of another certificate); the error
// names the files.
func Load(certFile, keyFile string, log *slog.Logger) (*Pair, error) {
	if log == nil {
		log = slog.Default()
	}
	p := &Pair{certFile: certFile, keyFile: keyFile, log: log, interval: DefaultCheckInterval, checked: time.Now()}
	st, err := p.stat()
	if err != nil {
		return nil, err
	}
	if p.cert, err = p.load(); err != nil {
		return nil, err
	}
	p.seen = st
	p.log.Info("loaded the TLS certificate", p.describe()...)
	return p, nil
}

// ServerConfig returns the TLS configuration of an HTTPS server that
// presents the pair: TLS 1.2 at least, the certificate from GetCertificate.
func (p *Pair) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: p.GetCertificate}
}

// GetCertificate returns the certificate to present, having loaded a
// renewed pair first if a look at the files is due; it suits
// tls.Config.GetCertificate. It never fails: a pair that does not load
// leaves the one in use.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.checked) >= p.interval {
		p.checked = now
		p.refresh()
	}
	return p.cert, nil
}

// refresh loads the pair if its files changed since they were last seen,
// and warns once for a change that does not load.
func (p *Pair) refresh() {
	st, err := p.stat()
	if st == p.seen {
		return
	}
	p.seen = st
	var cert *tls.Certificate
	if err == nil {
		cert, err = p.load()
	}
	if err != nil {
		p.log.Warn("the TLS certificate's files changed but do not load; the previous certificate stays in use until they change again", append(p.describe(), "err", err)...)
		return
	}
	p.cert = cert
	p.log.Info("loaded the renewed TLS certificate", p.describe()...)
}

// stat examines both files; the stamp is zero when it fails.
func (p *Pair) stat() (stamp, error) {
	ci, err := os.Stat(p.certFile)
	if err != nil {
		return stamp{}, fmt.Errorf("the TLS certificate: %w", err)
	}
	ki, err := os.Stat(p.keyFile)
	if err != nil {
		return stamp{}, fmt.Errorf("the TLS key: %w", err)
	}
	return stamp{certTime: ci.ModTime().UnixNano(), keyTime: ki.ModTime().UnixNano(), certSize: ci.Size(), keySize: ki.Size()}, nil
}

// load reads and parses the pair.
func (p *Pair) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(p.certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate %s with the key %s: %w", p.certFile, p.keyFile, err)
	}
	return &cert, nil
}

// describe returns the log attributes of the files and the certificate in
// use.
func (p *Pair) describe() []any {
	leaf := p.cert.Leaf
	return []any{"cert", p.certFile, "key", p.keyFile, "subject", leaf.Subject.String(), "dns", leaf.DNSNames, "ips", leaf.IPAddresses,
		"serial", leaf.SerialNumber.Text(16), "expires", leaf.NotAfter.UTC().Format(time.RFC3339)}
}
