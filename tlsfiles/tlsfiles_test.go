package tlsfiles

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// files is a certificate and key file in a fresh folder.
type files struct{ dir, cert, key string }

func newFiles(t *testing.T) files {
	dir := t.TempDir()
	return files{dir: dir, cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key")}
}

// stampAs gives the files the modification time of generation gen: a
// renewal comes long after the files were first written, while a test
// writes them within the file system's time granularity (milliseconds).
func stampAs(t *testing.T, gen int64, paths ...string) {
	at := time.Unix(1_700_000_000+gen, 0)
	for _, p := range paths {
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

func served(t *testing.T, p *Pair) int64 {
	t.Helper()
	c, err := p.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}

func TestLoadRefusesWhatIsNotAPair(t *testing.T) {
	ca := testcluster.NewCA(t)
	f, other := newFiles(t), newFiles(t)
	ca.Issue(t, 1, f.cert, f.key)
	ca.Issue(t, 2, other.cert, other.key)
	garbage := filepath.Join(f.dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o600)
	missing := filepath.Join(f.dir, "missing.pem")
	for _, c := range []struct {
		name, cert, key string
		want            []string // in the error
	}{
		{"missing certificate", missing, f.key, []string{missing, "no such file"}},
		{"missing key", f.cert, missing, []string{missing, "no such file"}},
		{"a folder for a certificate", f.dir, f.key, []string{f.dir, "is a directory"}},
		{"no PEM in the certificate", garbage, f.key, []string{garbage, f.key, "certificate input"}},
		{"no PEM in the key", f.cert, garbage, []string{f.cert, garbage, "key input"}},
		{"the key of another certificate", f.cert, other.key, []string{f.cert, other.key, "does not match"}},
	} {
		p, err := Load(c.cert, c.key, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Errorf("%s: loaded %v", c.name, p)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q lacks %q", c.name, err, want)
			}
		}
	}
	p, err := Load(f.cert, f.key, nil)
	if err != nil || served(t, p) != 1 {
		t.Fatalf("a good pair: %v", err)
	}
	if cfg := p.ServerConfig(); cfg.MinVersion < 0x0303 || cfg.GetCertificate == nil {
		t.Errorf("server configuration %+v: want TLS 1.2 at least and GetCertificate", cfg)
	}
}

// TestRenewedPairIsLoaded: a pair written over the files is served from the
// first look at the files after the change; none is taken before the
// interval has passed.
func TestRenewedPairIsLoaded(t *testing.T) {
	ca := testcluster.NewCA(t)
	f := newFiles(t)
	ca.Issue(t, 1, f.cert, f.key)
	stampAs(t, 1, f.cert, f.key)
	var log bytes.Buffer
	p, err := Load(f.cert, f.key, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ca.Issue(t, 2, f.cert, f.key)
	stampAs(t, 2, f.cert, f.key)
	p.interval = time.Hour
	if got := served(t, p); got != 1 {
		t.Fatalf("serial %d before the interval passed; want 1", got)
	}
	p.interval = 0
	if got := served(t, p); got != 2 {
		t.Fatalf("serial %d after the renewal; want 2", got)
	}
	if !strings.Contains(log.String(), "loaded the renewed TLS certificate") || !strings.Contains(log.String(), "serial=2") {
		t.Errorf("log:\n%s", log.String())
	}
}

// TestBrokenRenewalKeepsTheCertificate: a renewal that does not load
// (the new certificate with the old key, as while the files are being
// written, then a missing key) leaves the certificate in use, with one
// warning per change, however many handshakes; the completed pair is
// loaded at once.
func TestBrokenRenewalKeepsTheCertificate(t *testing.T) {
	ca := testcluster.NewCA(t)
	f, next := newFiles(t), newFiles(t)
	ca.Issue(t, 1, f.cert, f.key)
	stampAs(t, 1, f.cert, f.key)
	var log bytes.Buffer
	p, err := Load(f.cert, f.key, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p.interval = 0
	warnings := func() int { return strings.Count(log.String(), "level=WARN") }

	ca.Issue(t, 2, next.cert, next.key)
	if err := os.Rename(next.cert, f.cert); err != nil {
		t.Fatal(err)
	}
	stampAs(t, 2, f.cert)
	for range 5 {
		if got := served(t, p); got != 1 {
			t.Fatalf("serial %d with a certificate and key that do not match; want 1", got)
		}
	}
	if warnings() != 1 || !strings.Contains(log.String(), "does not match") {
		t.Fatalf("want one warning that names the cause:\n%s", log.String())
	}

	keyPEM, err := os.ReadFile(next.key)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f.key)
	for range 3 {
		if got := served(t, p); got != 1 {
			t.Fatalf("serial %d with the key missing; want 1", got)
		}
	}
	if warnings() != 2 {
		t.Fatalf("want a second warning, for the missing key:\n%s", log.String())
	}

	if err := os.WriteFile(f.key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	stampAs(t, 3, f.key)
	if got := served(t, p); got != 2 {
		t.Fatalf("serial %d once the pair is complete; want 2\n%s", got, log.String())
	}
	if warnings() != 2 {
		t.Errorf("more warnings than changes:\n%s", log.String())
	}
}
