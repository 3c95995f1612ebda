package masterkey

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadGeneratesOnceAndKeepsPrivate(t *testing.T) {
	dir := t.TempDir()
	k1, generated, err := Load("", dir)
	if err != nil || !generated {
		t.Fatalf("first Load: generated=%v err=%v", generated, err)
	}
	info, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	k2, generated, err := Load("", dir)
	if err != nil || generated {
		t.Fatalf("second Load: generated=%v err=%v", generated, err)
	}
	if k1.Fingerprint() != k2.Fingerprint() {
		t.Error("second Load returned another key")
	}
	k3, _, err := Load(k1.String(), t.TempDir())
	if err != nil || k3.Fingerprint() != k1.Fingerprint() {
		t.Errorf("Load of the text form: %v", err)
	}
}

func TestParseRefusesMalformedKeys(t *testing.T) {
	for _, s := range []string{"", "short", "not base64 at all!!", "AAAA"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	if Generate().Fingerprint() == Generate().Fingerprint() {
		t.Error("two generated keys share a fingerprint")
	}
}

func TestSealOpen(t *testing.T) {
	k, other := Generate(), Generate()
	sealed, err := k.Seal("cluster certificate", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), "secret") {
		t.Fatal("the sealed value holds the plaintext")
	}
	if got, err := k.Open("cluster certificate", sealed); err != nil || string(got) != "secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := other.Open("cluster certificate", sealed); err == nil {
		t.Error("another key opened the sealed value")
	}
	if _, err := k.Open("something else", sealed); err == nil {
		t.Error("another purpose opened the sealed value")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open("cluster certificate", sealed); err == nil {
		t.Error("an altered sealed value opened")
	}
}

func TestMAC(t *testing.T) {
	k, other := Generate(), Generate()
	a := k.MAC("api key", []byte("API-X"))
	if len(a) != 32 || !bytes.Equal(a, k.MAC("api key", []byte("API-X"))) {
		t.Fatalf("MAC = %x; want 32 bytes, the same every time", a)
	}
	for name, b := range map[string][]byte{
		"another key": other.MAC("api key", []byte("API-X")), "another purpose": k.MAC("session", []byte("API-X")),
		"another message": k.MAC("api key", []byte("API-Y")),
	} {
		if bytes.Equal(a, b) {
			t.Errorf("%s gives the same MAC", name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MAC of the zero Key did not panic")
		}
	}()
	Key{}.MAC("api key", []byte("API-X"))
}
