// Package certs makes and pins the certificates of agent traffic. Nodes and
// agents do not use certificate authorities: each side has a self-signed
// certificate and trusts the other by its thumbprint, the upper-case hex
// SHA-256 digest of the certificate (64 characters), which an operator can
// compare by eye.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Identity is a certificate and its private key.
type Identity struct {
	CertPEM    []byte
	KeyPEM     []byte
	Thumbprint string
	TLS        tls.Certificate
}

// validity is how long a generated certificate is valid: pinned
// certificates are replaced by re-registering, not by expiry.
const validity = 100 * 365 * 24 * time.Hour

// Generate makes a self-signed certificate (ECDSA P-256) for commonName,
// usable by a TLS server and client alike.
func Generate(commonName string) (Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Identity{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Identity{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Identity{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Identity{}, err
	}
	return Load(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// Load reads an identity from PEM.
func Load(certPEM, keyPEM []byte) (Identity, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return Identity{}, fmt.Errorf("reading the certificate and key: %w", err)
	}
	return Identity{CertPEM: certPEM, KeyPEM: keyPEM, Thumbprint: Thumbprint(c.Certificate[0]), TLS: c}, nil
}

// Thumbprint returns the thumbprint of a DER-encoded certificate.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// ThumbprintLength is the length of a thumbprint in characters.
const ThumbprintLength = 2 * sha256.Size

// ParseThumbprint returns s as a thumbprint: upper-case, without the
// colons or spaces people paste. It fails unless s holds 64 hex digits.
func ParseThumbprint(s string) (string, error) {
	t := strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s)))
	if len(t) != ThumbprintLength {
		return "", fmt.Errorf("a thumbprint is %d hex digits (the SHA-256 of the certificate); %q has %d", ThumbprintLength, s, len(t))
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", fmt.Errorf("a thumbprint is %d hex digits; %q is not hex", ThumbprintLength, s)
	}
	return t, nil
}

// Verifier decides whether a peer with the given thumbprint may connect;
// its error, which should name the thumbprint, fails the handshake.
type Verifier func(thumbprint string) error

// ErrNoCertificate fails a handshake in which the peer sent no certificate.
var ErrNoCertificate = errors.New("the peer sent no certificate")

func verifyPeer(verify Verifier) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return ErrNoCertificate
		}
		return verify(Thumbprint(raw[0]))
	}
}

// ServerConfig returns the TLS configuration of a side that accepts
// connections: TLS 1.3 only, presenting id, requiring a client certificate
// that verify accepts.
func ServerConfig(id Identity, verify Verifier) *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{id.TLS},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: verifyPeer(verify),
		NextProtos:            []string{"http/1.1"},
		// A resumed session skips VerifyPeerCertificate: every connection
		// must show its certificate again.
		SessionTicketsDisabled: true,
	}
}

// ClientConfig returns the TLS configuration of a side that dials: TLS 1.3
// only, presenting id, accepting only a server certificate that verify
// accepts. Names and authorities are not checked: the thumbprint is the
// trust.
func ClientConfig(id Identity, verify Verifier) *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{id.TLS},
		InsecureSkipVerify:    true, // replaced by VerifyPeerCertificate's pin
		VerifyPeerCertificate: verifyPeer(verify),
		NextProtos:            []string{"http/1.1"},
	}
}

// Pin returns a Verifier that accepts only the given thumbprints.
func Pin(thumbprints ...string) Verifier {
	return func(t string) error {
		for _, want := range thumbprints {
			if strings.EqualFold(t, want) {
				return nil
			}
		}
		return fmt.Errorf("certificate thumbprint %s is not trusted (trusted: %s)", t, strings.Join(thumbprints, ", "))
	}
}

// PeerThumbprint returns the thumbprint of the peer's certificate in a
// completed handshake, or "" if it sent none.
func PeerThumbprint(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return Thumbprint(cs.PeerCertificates[0].Raw)
}
