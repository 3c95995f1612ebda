package cuttle

import (
	"crypto/rand"
	"encoding/json"
	"math"
	"strings"
	"time"
)

// User is someone, or some automation, that calls the API: a document of
// the users collection. What they may do is what the scoped user roles of
// their teams grant (resources.PermissionsOf).
type User struct {
	Resource
	Username            string // unique, ignoring case
	DisplayName         string // defaults to the username
	EmailAddress        string
	IsActive            bool // an inactive user's API keys are refused
	IsService           bool // automation: signs in with API keys only
	IsRequestor         bool
	CanPasswordBeEdited bool
	Identities          []json.RawMessage
}

// Check validates a user about to be stored and completes it: a trimmed
// username of printable characters, a display name (the username if
// none), empty identities. Errors are KindInvalid.
func (u *User) Check() error {
	u.Username = strings.TrimSpace(u.Username)
	switch {
	case u.Username == "":
		return Errorf(KindInvalid, "A user needs a Username.")
	case len([]rune(u.Username)) > 200:
		return Errorf(KindInvalid, "A Username must be at most 200 characters.")
	case strings.IndexFunc(u.Username+u.DisplayName+u.EmailAddress, func(r rune) bool { return r < ' ' }) >= 0:
		return Errorf(KindInvalid, "A user's Username, DisplayName and EmailAddress cannot hold control characters.")
	case len(u.Identities) > 0:
		return Errorf(KindInvalid, "cuttle has no external identities; leave Identities empty.")
	}
	if u.DisplayName = strings.TrimSpace(u.DisplayName); u.DisplayName == "" {
		u.DisplayName = u.Username
	}
	u.Identities = []json.RawMessage{}
	return nil
}

// UserIDPrefix is the prefix of a user's API id.
const UserIDPrefix = "Users-"

// APIKey is an API key of a user: a document of the api keys collection,
// which stores the key's digest, never the key.
type APIKey struct {
	Resource
	UserID  string `json:"UserId"`
	Purpose string
	Created time.Time
	Expires *time.Time // nil: never
	// Digest is resources.DigestAPIKey of the key; Hint its first characters, so that
	// its owner can tell keys apart. Neither is ever answered whole.
	Digest string
	Hint   string
}

// APIKeyHint returns what a list may show of key: its prefix and first
// four characters.
func APIKeyHint(key string) string {
	if len(key) <= len(APIKeyPrefix)+4 {
		return APIKeyPrefix
	}
	return key[:len(APIKeyPrefix)+4]
}

// Team is a group of users; with permissions (later) it carries their
// roles. Teams are not space-scoped. The built-in teams (Everyone, of every
// user implicitly, and the AdministratorsTeam) cannot be deleted or
// renamed.
type Team struct {
	Resource
	Name                   string
	Description            string
	MemberUserIds          []string
	ExternalSecurityGroups []json.RawMessage
	// What users may change of the team; the server sets them.
	CanBeDeleted, CanBeRenamed, CanChangeMembers, CanChangeRoles bool
}

// Names of the built-in teams.
const (
	EveryoneTeam       = "Everyone"
	AdministratorsTeam = "Octopus Administrators"
)

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

// minAPIKeyBits is the least entropy CheckAPIKey accepts in a key an
// operator chose, as it estimates it. The estimate of a short sample is
// low: of 200,000 random keys of 20 characters the lowest was 53 bits.
const minAPIKeyBits = 40

// CheckAPIKey validates a key an operator chose (--admin-api-key): the form
// of ValidAPIKey, and enough entropy that it cannot be guessed. The
// estimate is the lower of two: the characters' own frequencies, and the
// frequencies of the steps between successive characters, times the
// length; it refuses patterns such as API-AAAAAAAAAAAAAAAAAAAA or
// API-ABCDEFGHIJKLMNOPQRST, and a random key of 20 characters or more
// passes it. The error says what to do.
func CheckAPIKey(key string) error {
	if !ValidAPIKey(key) {
		return Errorf(KindInvalid, "An API key must be %s followed by at least %d upper-case letters and digits.", APIKeyPrefix, minAPIKeyLength)
	}
	rest := key[len(APIKeyPrefix):]
	steps := make([]byte, len(rest)-1)
	for i := range steps {
		steps[i] = byte((strings.IndexByte(apiKeyAlphabet, rest[i+1]) - strings.IndexByte(apiKeyAlphabet, rest[i]) + len(apiKeyAlphabet)) % len(apiKeyAlphabet))
	}
	if bits := min(entropyBits([]byte(rest)), entropyBits(steps)); bits < minAPIKeyBits {
		return Errorf(KindInvalid, "The API key is too easy to guess (about %.0f bits of entropy; at least %d are needed): use a random one, such as: echo %s$(openssl rand -hex 16 | tr a-f A-F).",
			bits, minAPIKeyBits, APIKeyPrefix)
	}
	return nil
}

// entropyBits estimates the entropy of b from the frequencies of its bytes:
// Shannon's entropy per byte times its length.
func entropyBits(b []byte) float64 {
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	var h float64
	for _, n := range counts {
		if n > 0 {
			p := float64(n) / float64(len(b))
			h -= p * math.Log2(p)
		}
	}
	return h * float64(len(b))
}
