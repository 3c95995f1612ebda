package cuttle

import (
	"strings"
	"time"
)

// Resource is what every document resource carries: its id, space, version
// and links. A resource type embeds it (see store/collection).
type Resource struct {
	// ID is the API id, such as "Projects-7"; the database assigns it.
	ID string `json:"Id"`
	// SpaceID is the space of a space-scoped resource; empty for the others.
	SpaceID string `json:"SpaceId,omitempty"`
	// Version starts at 0 and grows by one with every change; an update
	// that names another version than the stored one is refused.
	Version int64 `json:"Version"`
	// LastModifiedBy and LastModifiedOn say who changed it last, and when;
	// set by the API on every write.
	LastModifiedBy string     `json:"LastModifiedBy,omitempty"`
	LastModifiedOn *time.Time `json:"LastModifiedOn,omitempty"`
	// Links are the resource's links, Self among them; set by the API and
	// never stored.
	Links map[string]string `json:"Links"`
}

// Meta returns r; types that embed a Resource get it as a method.
func (r *Resource) Meta() *Resource { return r }

// Slug returns the URL-friendly form of a name, as Octopus makes it:
// lower-case letters and digits, runs of anything else as one dash.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// CheckName trims a resource's name and returns a KindInvalid error if it
// is empty or longer than 200 characters; noun says what is named.
func CheckName(name *string, noun string) error {
	*name = strings.TrimSpace(*name)
	if *name == "" {
		return Errorf(KindInvalid, "A %s needs a Name.", noun)
	}
	if len([]rune(*name)) > 200 {
		return Errorf(KindInvalid, "The Name of a %s must be at most 200 characters.", noun)
	}
	return nil
}
