package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
)

func TestConfigureANewHome(t *testing.T) {
	t.Parallel()
	home := filepath.Join(t.TempDir(), "agent")
	cfg, err := Configure(home, ConfigureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if cfg.Name != host || cfg.Mode != Listening || cfg.ListenAddress != DefaultListenAddress || cfg.PollConnections != DefaultPollConnections {
		t.Errorf("defaults: %+v", cfg)
	}
	if !validSubscriptionID(cfg.SubscriptionId) || len(cfg.SubscriptionId) != len("poll://")+20+1 {
		t.Errorf("subscription id %q", cfg.SubscriptionId)
	}
	for _, name := range []string{ConfigFile, certFile, keyFile} {
		info, err := os.Stat(filepath.Join(home, name))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", name, info, err)
		}
	}
	loaded, err := Load(home)
	if err != nil || loaded.Identity.Thumbprint != cfg.Identity.Thumbprint || loaded.SubscriptionId != cfg.SubscriptionId {
		t.Errorf("Load: %+v, %v", loaded, err)
	}
	if _, err := Load(filepath.Join(home, "elsewhere")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "cuttle agent configure") {
		t.Errorf("Load of a home not configured: %v", err)
	}
	if _, err := Configure(home, ConfigureOptions{Mode: "carrier-pigeon"}); err == nil {
		t.Error("Configure took an unknown mode")
	}
}

func TestConfigureAgainChangesOnlyWhatIsAsked(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	first, err := Configure(home, ConfigureOptions{Name: "a", ListenAddress: "127.0.0.1:10999"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Configure(home, ConfigureOptions{Mode: Polling})
	if err != nil {
		t.Fatal(err)
	}
	if second.Name != "a" || second.Mode != Polling || second.ListenAddress != "127.0.0.1:10999" ||
		second.SubscriptionId != first.SubscriptionId || second.Identity.Thumbprint != first.Identity.Thumbprint {
		t.Errorf("first %+v\nthen  %+v", first, second)
	}
}

func TestTrust(t *testing.T) {
	t.Parallel()
	cfg, err := Configure(t.TempDir(), ConfigureOptions{Mode: Polling})
	if err != nil {
		t.Fatal(err)
	}
	thumbprint := strings.Repeat("ab", 32)
	added, err := cfg.Trust(TrustedServer{Thumbprint: thumbprint, CommunicationStyle: cuttle.Polling, Address: "node.example"})
	if err != nil || !added {
		t.Fatalf("Trust: %v, %v", added, err)
	}
	want := TrustedServer{Thumbprint: strings.ToUpper(thumbprint), CommunicationStyle: cuttle.Polling, Address: "https://node.example:10943", SubscriptionId: cfg.SubscriptionId}
	if cfg.TrustedServers[0] != want {
		t.Errorf("trusted %+v, want %+v", cfg.TrustedServers[0], want)
	}
	if added, err := cfg.Trust(TrustedServer{Thumbprint: thumbprint, CommunicationStyle: cuttle.Polling, Address: "https://node.example:10943/"}); err != nil || added {
		t.Errorf("trusting the same server again: %v, %v; want no change", added, err)
	}
	for _, bad := range []TrustedServer{
		{Thumbprint: "not hex", CommunicationStyle: cuttle.Polling, Address: "node.example"},
		{Thumbprint: thumbprint, CommunicationStyle: cuttle.Polling, Address: "http://node.example"},
		{Thumbprint: thumbprint, CommunicationStyle: cuttle.Listening},
		{Thumbprint: thumbprint, CommunicationStyle: "Carrier"},
	} {
		if _, err := cfg.Trust(bad); err == nil {
			t.Errorf("Trust took %+v", bad)
		}
	}
	if err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(cfg.Home)
	if err != nil || len(loaded.TrustedServers) != 1 || loaded.TrustedServers[0] != want {
		t.Errorf("after Save and Load: %+v, %v", loaded.TrustedServers, err)
	}

	listening, err := Configure(t.TempDir(), ConfigureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listening.Trust(TrustedServer{Thumbprint: thumbprint, CommunicationStyle: cuttle.Polling, Address: "node.example"}); err == nil || !strings.Contains(err.Error(), "--polling") {
		t.Errorf("a listening agent took a server to poll: %v", err)
	}
}

func TestServerAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"node":                   "https://node:10943",
		"node:443":               "https://node:443",
		"https://node:1/":        "https://node:1",
		"[::1]:5":                "https://[::1]:5",
		"https://10.0.0.1":       "https://10.0.0.1:10943",
		"http://node:1":          "",
		"https://node:1/path":    "",
		"https://user@node:1":    "",
		"":                       "",
		"https://node:1/?q=true": "",
	} {
		got, err := ServerAddress(in)
		if want == "" && err == nil || want != "" && got != want {
			t.Errorf("ServerAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
