package cuttle

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// User is someone, or some automation, that calls the API.
type User struct {
	ID              int64
	Username        string
	IsAdministrator bool
}

// UserIDPrefix is the prefix of a user's API id.
const UserIDPrefix = "Users-"

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "API-"

// apiKeyLength is the number of random characters a generated key carries
// after its prefix: 32 of 36 symbols, about 165 bits.
const apiKeyLength = 32

const apiKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// minAPIKeyLength is the fewest characters after the prefix a key may have.
const minAPIKeyLength = 20

// NewAPIKey returns a new random API key such as "API-Q3K...".
func NewAPIKey() string {
	var b strings.Builder
	b.WriteString(APIKeyPrefix)
	buf := make([]byte, apiKeyLength)
	rand.Read(buf) // never returns an error (crypto/rand, Go 1.24+)
	for _, c := range buf {
		// 252 = 7*36 keeps the draw unbiased.
		for c >= 252 {
			var one [1]byte
			rand.Read(one[:])
			c = one[0]
		}
		b.WriteByte(apiKeyAlphabet[int(c)%len(apiKeyAlphabet)])
	}
	return b.String()
}

// ValidAPIKey reports whether key has the form of an API key: "API-" and at
// least 20 upper-case letters and digits.
func ValidAPIKey(key string) bool {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(rest) < minAPIKeyLength || len(rest) > 200 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// HashAPIKey returns the digest under which an API key is stored. A key is
// random with far more entropy than a password, so one SHA-256 is enough and
// lets a lookup by digest use an index.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte("cuttle api key\x00" + key))
	return hex.EncodeToString(sum[:])
}
