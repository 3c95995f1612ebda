package certs_test

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/certs"
)

func generate(t *testing.T, name string) certs.Identity {
	t.Helper()
	id, err := certs.Generate(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// handshake runs one TLS handshake between the configurations over
// loopback TCP and returns each side's error.
func handshake(client, server *tls.Config) (clientErr, serverErr error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err, err
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		s := tls.Server(conn, server)
		err = s.Handshake()
		if err == nil {
			_, err = s.Read(make([]byte, 1)) // the client's byte
		}
		s.Close()
		done <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err, <-done
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(conn, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		// In TLS 1.3 the client's handshake ends before the server has
		// checked the client's certificate: a refusal arrives as an alert.
		if _, clientErr = c.Write([]byte{1}); clientErr == nil {
			if _, clientErr = c.Read(make([]byte, 1)); clientErr == io.EOF {
				clientErr = nil
			}
		}
	}
	c.Close()
	return clientErr, <-done
}

func TestPinnedHandshake(t *testing.T) {
	node, agent, stranger := generate(t, "node"), generate(t, "agent"), generate(t, "stranger")
	if len(node.Thumbprint) != certs.ThumbprintLength || strings.ToUpper(node.Thumbprint) != node.Thumbprint {
		t.Fatalf("thumbprint %q is not %d upper-case hex digits", node.Thumbprint, certs.ThumbprintLength)
	}
	server := certs.ServerConfig(node, certs.Pin(agent.Thumbprint))

	if cerr, serr := handshake(certs.ClientConfig(agent, certs.Pin(node.Thumbprint)), server); cerr != nil || serr != nil {
		t.Fatalf("pinned peers: client %v, server %v", cerr, serr)
	}
	// The server does not know the client's certificate.
	_, serr := handshake(certs.ClientConfig(stranger, certs.Pin(node.Thumbprint)), server)
	if serr == nil || !strings.Contains(serr.Error(), stranger.Thumbprint) {
		t.Errorf("an unknown client certificate: server error %v, want one naming %s", serr, stranger.Thumbprint)
	}
	// The client does not trust the server's certificate.
	cerr, _ := handshake(certs.ClientConfig(agent, certs.Pin(stranger.Thumbprint)), server)
	if cerr == nil || !strings.Contains(cerr.Error(), node.Thumbprint) {
		t.Errorf("an untrusted server: client error %v, want one naming %s", cerr, node.Thumbprint)
	}
	// No client certificate at all.
	noCert := certs.ClientConfig(agent, certs.Pin(node.Thumbprint))
	noCert.Certificates = nil
	if _, serr := handshake(noCert, server); serr == nil {
		t.Error("a client without a certificate was accepted")
	}
	// TLS 1.2 is refused.
	old := certs.ClientConfig(agent, certs.Pin(node.Thumbprint))
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if cerr, _ := handshake(old, server); cerr == nil {
		t.Error("a TLS 1.2 client was accepted")
	}
}

func TestLoadAndParseThumbprint(t *testing.T) {
	id := generate(t, "x")
	again, err := certs.Load(id.CertPEM, id.KeyPEM)
	if err != nil || again.Thumbprint != id.Thumbprint {
		t.Fatalf("Load: %v, thumbprint %s, want %s", err, again.Thumbprint, id.Thumbprint)
	}
	colons := ""
	for i := 0; i < len(id.Thumbprint); i += 2 {
		colons += strings.ToLower(id.Thumbprint[i:i+2]) + ":"
	}
	if got, err := certs.ParseThumbprint(strings.TrimSuffix(colons, ":")); err != nil || got != id.Thumbprint {
		t.Errorf("ParseThumbprint(with colons) = %q, %v", got, err)
	}
	for _, bad := range []string{"", "ABC", strings.Repeat("G", certs.ThumbprintLength)} {
		if _, err := certs.ParseThumbprint(bad); err == nil {
			t.Errorf("ParseThumbprint(%q) succeeded", bad)
		}
	}
}
