package cuttle

import "time"

// Credential is a user's password, hashed (bcrypt); one per user, never
// served.
type Credential struct {
	Resource
	UserID string `json:"UserId"`
	Hash   string `json:"Hash"`
}

// Session is a person signed in with a password: the session cookie names
// it, sealed with the master key, so any node of the cluster accepts it,
// and a sign-out (the document deleted) ends it on every node at once.
type Session struct {
	Resource
	UserID    string    `json:"UserId"`
	Created   time.Time `json:"Created"`
	Expires   time.Time `json:"Expires"`
	CSRFToken string    `json:"CsrfToken"` // the header a cookie-authenticated write must carry
	Address   string    `json:"Address"`   // where it signed in from
}

// LoginFailures counts the failed sign-ins of one user or one address
// since Since, across the cluster.
type LoginFailures struct {
	Resource
	Key   string    `json:"Key"` // "user:<name>" or "address:<ip>"
	Count int       `json:"Count"`
	Since time.Time `json:"Since"`
}

// Sign-in settings.
const (
	// SessionCookie and CSRFCookie are the cookies Octopus's portal uses;
	// CSRFHeader carries the CSRF token on a cookie-authenticated write.
	SessionCookie = "OctopusIdentificationToken"
	CSRFCookie    = "Octopus-Csrf-Token"
	CSRFHeader    = "X-Octopus-Csrf-Token"
	// SessionLength is how long a session lasts; RememberedSessionLength
	// with RememberMe.
	SessionLength           = 8 * time.Hour
	RememberedSessionLength = 30 * 24 * time.Hour
	// A user may fail UserLoginFailures sign-ins, and an address
	// AddressLoginFailures, in LoginFailureWindow; then sign-ins are
	// refused (429) until the window ends.
	UserLoginFailures    = 5
	AddressLoginFailures = 20
	LoginFailureWindow   = 5 * time.Minute
	// MinPasswordLength is the shortest password a user may set.
	MinPasswordLength = 10
)
