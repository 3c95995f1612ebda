package resources

import (
	"context"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// TagSets are the tag sets.
var TagSets = &collection.Def[cuttle.TagSet]{
	Table: "tag_sets", Prefix: "TagSets-", Noun: "tag set", Spaced: true,
	Derive:  func(s *cuttle.TagSet) { s.DeriveTags() },
	Columns: []collection.Column[cuttle.TagSet]{name(func(s *cuttle.TagSet) string { return s.Name })},
	Order:   "name",
}

// Tenants are the tenants. The projects they are connected to and the
// environments of those must exist, and cannot be deleted while a tenant
// names them.
var Tenants = &collection.Def[cuttle.Tenant]{
	Table: "tenants", Prefix: "Tenants-", Noun: "tenant", Spaced: true,
	Columns: []collection.Column[cuttle.Tenant]{
		name(func(t *cuttle.Tenant) string { return t.Name }),
		{Name: TenantProjects, Kind: collection.IDs, Refers: Projects, Value: func(t *cuttle.Tenant) any { return t.ProjectIDs() }},
		{Name: "environment_ids", Kind: collection.IDs, Refers: Environments, Value: func(t *cuttle.Tenant) any { return t.EnvironmentIDs() }},
		{Name: TenantTags, Kind: collection.IDs, Value: func(t *cuttle.Tenant) any { return t.TenantTags }},
	},
	Order: "name",
}

// The tenants' filter columns: the projects they are connected to, and
// their tags (canonical names, spelt as their tag sets spell them).
const (
	TenantProjects = "project_ids"
	TenantTags     = "tenant_tags"
)

// CheckTenantTags fails with KindInvalid unless every tag of t is a tag of
// a tag set of its space, and writes each in the case its set spells it.
func CheckTenantTags(ctx context.Context, tx *collection.Tx, t *cuttle.Tenant) error {
	if len(t.TenantTags) == 0 {
		return nil
	}
	sets, _, err := TagSets.List(ctx, tx, collection.Query{Space: t.SpaceID, Take: -1})
	if err != nil {
		return err
	}
	known := map[string]string{}
	for _, s := range sets {
		for _, name := range s.CanonicalNames() {
			known[strings.ToLower(name)] = name
		}
	}
	for i, tag := range t.TenantTags {
		name, ok := known[strings.ToLower(tag)]
		if !ok {
			return cuttle.Errorf(cuttle.KindInvalid, "There is no tag %q (TenantTags of the tenant): a tag is named \"<tag set>/<tag>\".", tag)
		}
		t.TenantTags[i] = name
	}
	return nil
}

// CheckTagsUnused fails with KindConflict, naming the tenant, if a tenant
// carries a tag of old that s no longer has (s is nil for a delete).
func CheckTagsUnused(ctx context.Context, tx *collection.Tx, old, s *cuttle.TagSet) error {
	kept := map[string]bool{}
	if s != nil {
		for _, name := range s.CanonicalNames() {
			kept[strings.ToLower(name)] = true
		}
	}
	for _, name := range old.CanonicalNames() {
		if kept[strings.ToLower(name)] {
			continue
		}
		ts, _, err := Tenants.List(ctx, tx, collection.Query{Space: old.SpaceID, Take: 1, Where: map[string]any{TenantTags: name}})
		if err != nil {
			return err
		}
		if len(ts) > 0 {
			return cuttle.Errorf(cuttle.KindConflict, "The tag %s is carried by the tenant %s (%s): take it off first.", name, ts[0].ID, ts[0].Name)
		}
	}
	return nil
}
