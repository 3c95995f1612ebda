package resources

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/semver"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Packages are the versions of packages in the built-in repository; one
// per package id and version, ignoring case (the identity column decides
// between concurrent uploads).
var Packages = &collection.Def[cuttle.Package]{
	Table: "packages", Prefix: "Packages-", Noun: "package", Spaced: true,
	Columns: []collection.Column[cuttle.Package]{
		{Name: "package_id", Fold: true, Value: func(p *cuttle.Package) any { return p.PackageId }},
		{Name: "identity", Fold: true, Unique: true, Label: "package version", MaxLength: 2 * cuttle.MaxNameLength,
			Value: func(p *cuttle.Package) any { return cuttle.PackageIdentity(p.PackageId, p.PackageVersion) }},
		{Name: "storage_key", MaxLength: 1024, Value: func(p *cuttle.Package) any { return p.StorageKey }},
	},
	Order: "id DESC",
}

// SortPackages orders package versions by id ignoring case, then by
// version, highest first.
func SortPackages(ps []cuttle.Package) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := strings.ToLower(ps[i].PackageId), strings.ToLower(ps[j].PackageId)
		if a != b {
			return a < b
		}
		return compareVersions(ps[i].PackageVersion, ps[j].PackageVersion) > 0
	})
}

// compareVersions orders two versions as semver does; text that is not
// one (never stored: uploads are checked) sorts by its bytes.
func compareVersions(a, b string) int {
	va, errA := semver.Parse(a)
	vb, errB := semver.Parse(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return semver.Compare(va, vb)
}

// PackageVersions returns the versions of packageID in the space's
// built-in feed, highest first; every package's when packageID is empty.
func PackageVersions(ctx context.Context, tx *collection.Tx, space, packageID string) ([]cuttle.Package, error) {
	q := collection.Query{Space: space, Take: -1}
	if packageID != "" {
		q.Where = map[string]any{"package_id": packageID}
	}
	ps, _, err := Packages.List(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	SortPackages(ps)
	return ps, nil
}

// PackageRefs returns the package references of the process's enabled
// actions, each as a SelectedPackage without its Version: an
// Octopus.TentaclePackage action's primary package, and every package an
// action lists.
func PackageRefs(process cuttle.DeploymentProcess) []cuttle.SelectedPackage {
	var refs []cuttle.SelectedPackage
	for _, s := range process.Steps {
		for _, a := range s.Actions {
			if a.IsDisabled {
				continue
			}
			seen := map[string]bool{}
			for _, p := range a.Packages {
				if p.PackageId == "" || seen[strings.ToLower(p.Name)] {
					continue
				}
				seen[strings.ToLower(p.Name)] = true
				refs = append(refs, cuttle.SelectedPackage{ActionName: a.Name, StepName: s.Name, PackageReferenceName: p.Name, PackageId: p.PackageId})
			}
			if id := cuttle.Prop(a.Properties, cuttle.PropPackageID); a.ActionType == cuttle.ActionPackage && id != "" && !seen[""] {
				refs = append(refs, cuttle.SelectedPackage{ActionName: a.Name, StepName: s.Name, PackageId: id})
			}
		}
	}
	return refs
}

// channelRule returns the version rule of a channel for a package
// reference, if one names it.
func channelRule(c cuttle.Channel, ref cuttle.SelectedPackage) (cuttle.ChannelRule, bool) {
	for _, rule := range c.Rules {
		for _, raw := range rule.ActionPackages {
			var ap struct{ DeploymentAction, PackageReference string }
			if json.Unmarshal(raw, &ap) == nil && strings.EqualFold(ap.DeploymentAction, ref.ActionName) &&
				strings.EqualFold(ap.PackageReference, ref.PackageReferenceName) {
				return rule, true
			}
		}
	}
	return cuttle.ChannelRule{}, false
}

// fits reports whether version v satisfies a channel rule: its range, and
// its tag (a regular expression over the pre-release tag; "^$" for none).
func fits(rule cuttle.ChannelRule, v string) (bool, error) {
	rng, err := semver.ParseRange(rule.VersionRange)
	if err != nil {
		return false, cuttle.Errorf(cuttle.KindInvalid, "The channel's rule: %v.", err)
	}
	parsed, err := semver.Parse(v)
	if err != nil {
		return false, nil
	}
	if !rng.Contains(parsed) {
		return false, nil
	}
	if rule.Tag == "" {
		return true, nil
	}
	re, err := regexp.Compile(rule.Tag)
	if err != nil {
		return false, cuttle.Errorf(cuttle.KindInvalid, "The channel's rule has a tag %q that is not a regular expression: %v.", rule.Tag, err)
	}
	return re.MatchString(parsed.Pre), nil
}

// choosePackages completes a release's SelectedPackages for the package
// references of its process: a version the caller chose (by action and
// reference name) must exist in the feed and fit the channel's rule
// (unless the release ignores channel rules); the others get the highest
// version that fits. KindInvalid naming the package otherwise.
func choosePackages(ctx context.Context, tx *collection.Tx, r *cuttle.Release, process cuttle.DeploymentProcess, channel cuttle.Channel) error {
	given := r.SelectedPackages
	r.SelectedPackages = []cuttle.SelectedPackage{}
	for _, ref := range PackageRefs(process) {
		versions, err := PackageVersions(ctx, tx, r.SpaceID, ref.PackageId)
		if err != nil {
			return err
		}
		rule, ruled := channelRule(channel, ref)
		ruled = ruled && !r.IgnoreChannelRules
		want := ""
		for _, g := range given {
			if strings.EqualFold(g.ActionName, ref.ActionName) && strings.EqualFold(g.PackageReferenceName, ref.PackageReferenceName) {
				want = g.Version
			}
		}
		chosen := ""
		for _, p := range versions {
			if want != "" && !strings.EqualFold(p.PackageVersion, want) {
				continue
			}
			if ruled {
				ok, err := fits(rule, p.PackageVersion)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
			}
			chosen = p.PackageVersion
			break
		}
		switch {
		case chosen == "" && want != "" && ruled:
			return cuttle.Errorf(cuttle.KindInvalid, "The release chooses %s %s for %s, which the built-in feed does not have or the channel %s's rule (%s %s) does not allow.",
				ref.PackageId, want, ref.ActionName, channel.Name, rule.VersionRange, rule.Tag)
		case chosen == "" && want != "":
			return cuttle.Errorf(cuttle.KindInvalid, "The release chooses %s %s for %s, which the built-in feed does not have.", ref.PackageId, want, ref.ActionName)
		case chosen == "":
			return cuttle.Errorf(cuttle.KindInvalid, "The action %s deploys the package %s, of which the built-in feed has no version%s: push one first.",
				ref.ActionName, ref.PackageId, map[bool]string{true: " that the channel " + channel.Name + "'s rule allows", false: ""}[ruled])
		}
		ref.Version = chosen
		r.SelectedPackages = append(r.SelectedPackages, ref)
	}
	return nil
}

// GivenPackages reads the package versions a release's creator chose, as
// the official CLI sends them: a default version for every package
// (packageVersion), then overrides "Step:Version", "Action:Version",
// "PackageId:Version", "Step:Reference:Version" or "*:Version". It returns
// them as SelectedPackages of the process's references, for
// PrepareRelease; KindInvalid for an override that names nothing.
func GivenPackages(process cuttle.DeploymentProcess, defaultVersion string, overrides []string) ([]cuttle.SelectedPackage, error) {
	refs := PackageRefs(process)
	if defaultVersion != "" {
		for i := range refs {
			refs[i].Version = defaultVersion
		}
	}
	for _, o := range overrides {
		i := strings.LastIndexByte(o, ':')
		if i <= 0 || i == len(o)-1 {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "The package override %q is not Step:Version, PackageId:Version, Step:Reference:Version or *:Version.", o)
		}
		key, version := o[:i], o[i+1:]
		stepOrID, refName, byRef := strings.Cut(key, ":")
		matched := false
		for j, r := range refs {
			var match bool
			switch {
			case byRef:
				match = (strings.EqualFold(r.StepName, stepOrID) || strings.EqualFold(r.ActionName, stepOrID)) && strings.EqualFold(r.PackageReferenceName, refName)
			case key == "*":
				match = true
			default:
				match = strings.EqualFold(r.StepName, key) || strings.EqualFold(r.ActionName, key) || strings.EqualFold(r.PackageId, key)
			}
			if match {
				refs[j].Version, matched = version, true
			}
		}
		if !matched {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "The package override %q names no step, action or package of the process.", o)
		}
	}
	return slices.DeleteFunc(refs, func(r cuttle.SelectedPackage) bool { return r.Version == "" }), nil
}
