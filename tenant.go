package cuttle

import (
	"regexp"
	"slices"
	"strings"
)

// TagSet is a named set of tags that tenants carry, such as "Region" with
// "Europe" and "Asia": a document of the tag sets collection. A tag is named
// across sets by its canonical name, "<set name>/<tag name>".
type TagSet struct {
	Resource
	Name        string // unique in its space, ignoring case
	Description string
	SortOrder   int
	// Scopes are what the tags may be put on; default ["Tenant"], the one
	// cuttle serves so far.
	Scopes []string
	// Type is MultiSelect (the default), SingleSelect or FreeText.
	Type string
	Tags []Tag
}

// Tag is one tag of a tag set. The server sets Id and CanonicalTagName.
type Tag struct {
	Id               string
	Name             string // unique in its set, ignoring case
	CanonicalTagName string // "<set name>/<tag name>"
	Color            string // #RRGGBB
	Description      string
	SortOrder        int
}

// Tenant is a customer or instance that deployments may be made for, with
// the projects it is connected to and, for each, the environments it
// deploys to: a document of the tenants collection. Tenanted deployments
// come later; tenants are stored and served.
type Tenant struct {
	Resource
	Name        string // unique in its space, ignoring case
	Description string
	// ProjectEnvironments maps the id of each project the tenant is
	// connected to to the ids of its environments for that project.
	ProjectEnvironments map[string][]string
	// TenantTags are canonical tag names ("Region/Europe") of tag sets.
	TenantTags []string
	// ClonedFromTenantId is the tenant this one was cloned from; cuttle
	// does not clone yet, so it is empty.
	ClonedFromTenantId string
	IsDisabled         bool
}

// Tag set types and the scope of tenants.
const (
	TagSetMultiSelect  = "MultiSelect"
	TagSetSingleSelect = "SingleSelect"
	TagSetFreeText     = "FreeText"
	TagSetScopeTenant  = "Tenant"
)

var tagColor = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

// Check validates a tag set about to be stored and completes it with its
// defaults and its tags' ids and canonical names. Errors are KindInvalid and
// name the tag at fault.
func (s *TagSet) Check() error {
	if err := CheckName(&s.Name, "tag set"); err != nil {
		return err
	}
	if strings.ContainsAny(s.Name, "/,") {
		return Errorf(KindInvalid, "A tag set's Name cannot hold / or , (tags are named \"<set>/<tag>\"): %q.", s.Name)
	}
	switch s.Type {
	case "":
		s.Type = TagSetMultiSelect
	case TagSetMultiSelect, TagSetSingleSelect, TagSetFreeText:
	default:
		return Errorf(KindInvalid, "A tag set's Type is %s, %s or %s, not %q.", TagSetMultiSelect, TagSetSingleSelect, TagSetFreeText, s.Type)
	}
	if len(s.Scopes) == 0 {
		s.Scopes = []string{TagSetScopeTenant}
	}
	for _, sc := range s.Scopes {
		if sc != TagSetScopeTenant {
			return Errorf(KindInvalid, "cuttle puts tags on tenants only: a tag set's Scopes can only be [%q], not %q.", TagSetScopeTenant, sc)
		}
	}
	if s.Tags == nil {
		s.Tags = []Tag{}
	}
	seen := map[string]bool{}
	for i := range s.Tags {
		t := &s.Tags[i]
		if err := CheckName(&t.Name, "tag"); err != nil {
			return Errorf(KindInvalid, "Tag %d of the tag set %s: %s", i+1, s.Name, err.Error())
		}
		switch key := strings.ToLower(t.Name); {
		case strings.ContainsAny(t.Name, "/,"):
			return Errorf(KindInvalid, "The tag %q of the tag set %s cannot hold / or ,.", t.Name, s.Name)
		case seen[key]:
			return Errorf(KindInvalid, "The tag set %s has two tags named %q.", s.Name, t.Name)
		case !tagColor.MatchString(t.Color):
			return Errorf(KindInvalid, "The tag %q of the tag set %s needs a Color such as \"#333333\", not %q.", t.Name, s.Name, t.Color)
		default:
			seen[key] = true
		}
	}
	s.DeriveTags()
	return nil
}

// DeriveTags sets each tag's CanonicalTagName and, once the set has an id,
// its Id ("TagSets-1/Europe").
func (s *TagSet) DeriveTags() {
	for i := range s.Tags {
		t := &s.Tags[i]
		t.CanonicalTagName = s.Name + "/" + t.Name
		if s.ID != "" {
			t.Id = s.ID + "/" + t.Name
		}
	}
}

// CanonicalNames returns the canonical names of the set's tags.
func (s *TagSet) CanonicalNames() []string {
	names := make([]string, len(s.Tags))
	for i, t := range s.Tags {
		names[i] = s.Name + "/" + t.Name
	}
	return names
}

// Check validates a tenant about to be stored and completes it: a name,
// no clone, non-null lists. Whether its projects, environments and tags
// exist is the collections' to say (package resources and api).
func (t *Tenant) Check(old *Tenant) error {
	if err := CheckName(&t.Name, "tenant"); err != nil {
		return err
	}
	if t.ClonedFromTenantId != "" && (old == nil || old.ClonedFromTenantId != t.ClonedFromTenantId) {
		return Errorf(KindInvalid, "cuttle does not clone tenants yet: leave ClonedFromTenantId empty.")
	}
	if t.ProjectEnvironments == nil {
		t.ProjectEnvironments = map[string][]string{}
	}
	for p, envs := range t.ProjectEnvironments {
		if envs == nil {
			t.ProjectEnvironments[p] = []string{}
		}
	}
	if t.TenantTags == nil {
		t.TenantTags = []string{}
	}
	for _, tag := range t.TenantTags {
		if set, name, ok := strings.Cut(tag, "/"); !ok || set == "" || name == "" {
			return Errorf(KindInvalid, "A tenant's TenantTags are canonical tag names such as \"Region/Europe\", not %q.", tag)
		}
	}
	return nil
}

// ProjectIDs returns the ids of the projects the tenant is connected to,
// sorted.
func (t *Tenant) ProjectIDs() []string {
	ids := make([]string, 0, len(t.ProjectEnvironments))
	for p := range t.ProjectEnvironments {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	return ids
}

// EnvironmentIDs returns the ids of every environment the tenant deploys
// to, for any project, sorted and without repeats.
func (t *Tenant) EnvironmentIDs() []string {
	var ids []string
	for _, envs := range t.ProjectEnvironments {
		ids = append(ids, envs...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
