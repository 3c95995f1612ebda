// Package masterkey loads the master key every node of a cluster shares. The
// key encrypts secrets at rest and signs sessions; the cluster keeps only its
// fingerprint, a one-way digest, so a node with another key is refused.
package masterkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Size is the length of a master key in bytes.
const Size = 32

// FileName is the file in the data directory that keeps a generated key.
const FileName = "master.key"

// Key is a master key.
type Key struct{ b []byte }

// Parse reads a key in its text form: the standard base64 encoding of 32 bytes.
func Parse(s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != Size {
		return Key{}, fmt.Errorf("a master key is the base64 encoding of %d bytes (44 characters, as `openssl rand -base64 32` prints)", Size)
	}
	return Key{b: b}, nil
}

// Generate returns a new random key.
func Generate() Key {
	b := make([]byte, Size)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return Key{b: b}
}

// String returns the key's text form. Never log it.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k.b) }

// Bytes returns the key's bytes.
func (k Key) Bytes() []byte { return k.b }

// Fingerprint returns a digest that identifies the key without revealing it:
// 32 hex characters.
func (k Key) Fingerprint() string {
	sum := sha256.Sum256(append([]byte("cuttle master key fingerprint\x00"), k.b...))
	return hex.EncodeToString(sum[:16])
}

// Load returns the key given in text (the --master-key flag) if it is not
// empty; otherwise the key kept in dataDir/master.key, generating and keeping
// one there (mode 0600) if there is none. generated reports the last case.
func Load(text, dataDir string) (k Key, generated bool, err error) {
	if text != "" {
		k, err = Parse(text)
		return k, false, err
	}
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err = Parse(string(b))
		if err != nil {
			return Key{}, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, false, err
	}
	k = Generate()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Load("", dataDir) // another process made it first
	}
	if err != nil {
		return Key{}, false, err
	}
	if _, err := f.WriteString(k.String() + "\n"); err != nil {
		f.Close()
		return Key{}, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return Key{}, false, err
	}
	return k, true, f.Close()
}

// Seal encrypts plaintext for storage with AES-256-GCM, under a key derived
// from the master key for purpose (HKDF-SHA256), so that each use of the
// master key has a key of its own. The result holds the random nonce.
func (k Key) Seal(purpose string, plaintext []byte) ([]byte, error) {
	aead, err := k.aead(purpose)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, []byte(purpose)), nil
}

// Open decrypts what Seal sealed for the same purpose. It fails if sealed
// was made with another key or purpose, or was altered.
func (k Key) Open(purpose string, sealed []byte) ([]byte, error) {
	aead, err := k.aead(purpose)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("the sealed value is too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, errors.New("the sealed value cannot be opened with this master key")
	}
	return plain, nil
}

// MAC returns the HMAC-SHA256 of msg under a key derived from the master
// key for purpose (HKDF-SHA256), so that each use has a key of its own.
// It panics on the zero Key: a MAC without a secret would let anyone forge
// it, so calling it without a master key is a bug.
func (k Key) MAC(purpose string, msg []byte) []byte {
	if len(k.b) != Size {
		panic("masterkey: MAC without a master key")
	}
	derived, err := hkdf.Key(sha256.New, k.b, nil, "cuttle mac "+purpose, 32)
	if err != nil {
		panic("masterkey: " + err.Error()) // HKDF-SHA256 gives 32 bytes to any key
	}
	m := hmac.New(sha256.New, derived)
	m.Write(msg)
	return m.Sum(nil)
}

func (k Key) aead(purpose string) (cipher.AEAD, error) {
	if len(k.b) != Size {
		return nil, errors.New("no master key")
	}
	derived, err := hkdf.Key(sha256.New, k.b, nil, "cuttle "+purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(derived)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
