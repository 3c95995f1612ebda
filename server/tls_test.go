package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/environments"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/server"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// lockedBuffer is a log that goroutines of a node write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsNode starts a node on the embedded database serving the API over
// HTTPS with a certificate of ca (serial 1) in certFile and keyFile.
func tlsNode(t *testing.T, ca *testcluster.CA, certFile, keyFile, adminKey string, log io.Writer) *server.Node {
	t.Helper()
	ca.Issue(t, 1, certFile, keyFile)
	n := startNode(t, server.Config{NodeName: "secure", AdminAPIKey: adminKey, TLSCert: certFile, TLSKey: keyFile,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	return n
}

// TestTLSServesTheAPI: a node given a certificate serves the API over
// HTTPS only, and the official Octopus client works against it through an
// HTTP client that trusts the certificate's authority. Plain HTTP, a client
// that does not trust the authority and TLS 1.1 are refused. The start log
// names the cluster certificate's thumbprint, which agents pin.
func TestTLSServesTheAPI(t *testing.T) {
	t.Parallel()
	ca, dir, key := testcluster.NewCA(t), t.TempDir(), cuttle.NewAPIKey()
	var log lockedBuffer
	n := tlsNode(t, ca, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), key, &log)
	if !strings.HasPrefix(n.URL(), "https://") {
		t.Fatalf("URL %s; want https", n.URL())
	}
	if !strings.Contains(log.String(), "cluster_thumbprint="+n.Thumbprint()) || !strings.Contains(log.String(), "api="+n.URL()) {
		t.Errorf("the start log lacks the cluster's thumbprint or the API's URL:\n%s", log.String())
	}

	u, _ := url.Parse(n.URL())
	c, err := octoclient.NewClient(ca.Client(), u, key, "Spaces-1")
	if err != nil {
		t.Fatalf("the official client over HTTPS: %v", err)
	}
	if _, err := c.Environments.Add(environments.NewEnvironment("Production")); err != nil {
		t.Fatalf("Environments.Add: %v", err)
	}
	envs, err := c.Environments.GetAll()
	if err != nil || len(envs) != 1 || envs[0].Name != "Production" {
		t.Fatalf("Environments.GetAll over HTTPS: %v, %v", envs, err)
	}

	resp, err := http.Get("http://" + n.Addr() + "/api/")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
			t.Errorf("plain HTTP to the HTTPS port: %d %s; want refused", resp.StatusCode, body)
		}
	}
	var unknown *tls.CertificateVerificationError
	if _, err := http.Get(n.URL() + "/api/"); !errors.As(err, &unknown) {
		t.Errorf("a client that does not trust the authority: %v; want a verification error", err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.Addr(),
		&tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
	}
}

// TestTLSCertificateRenewed: a pair written over the certificate's files is
// presented to new connections within seconds, without a restart, and the
// API keeps working with it.
func TestTLSCertificateRenewed(t *testing.T) {
	t.Parallel()
	ca, dir, key := testcluster.NewCA(t), t.TempDir(), cuttle.NewAPIKey()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	n := tlsNode(t, ca, certFile, keyFile, key, io.Discard)
	if serial, err := ca.ServedSerial(n.Addr()); err != nil || serial != 1 {
		t.Fatalf("first certificate: serial %d, %v; want 1", serial, err)
	}
	ca.Issue(t, 2, certFile, keyFile)
	testcluster.Eventually(t, 10*time.Second, func() error {
		serial, err := ca.ServedSerial(n.Addr())
		if err == nil && serial != 2 {
			err = errors.New("the node still presents the first certificate")
		}
		return err
	})
	req, _ := http.NewRequest("GET", n.URL()+"/api/users/me", nil)
	req.Header.Set("X-Octopus-ApiKey", key)
	resp, err := ca.Client().Do(req)
	if err != nil {
		t.Fatalf("the API with the renewed certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 2 {
		t.Fatalf("the API with the renewed certificate: %d", resp.StatusCode)
	}
}
