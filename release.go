package cuttle

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle/semver"
	"github.com/cuttledeploy/cuttle/variables"
)

// Release is a version of a project: what its deployments run, frozen when
// it was created as snapshots of the project's deployment process and
// variable set, which never change after. JSON names are Octopus's.
type Release struct {
	Resource
	Version                            string            `json:"Version"`
	ProjectId                          string            `json:"ProjectId"`
	ChannelId                          string            `json:"ChannelId"`
	Assembled                          time.Time         `json:"Assembled"`
	ReleaseNotes                       string            `json:"ReleaseNotes"`
	IgnoreChannelRules                 bool              `json:"IgnoreChannelRules"`
	SelectedPackages                   []SelectedPackage `json:"SelectedPackages"`
	ProjectDeploymentProcessSnapshotId string            `json:"ProjectDeploymentProcessSnapshotId"`
	ProjectVariableSetSnapshotId       string            `json:"ProjectVariableSetSnapshotId"`
	LibraryVariableSetSnapshotIds      []string          `json:"LibraryVariableSetSnapshotIds"`
	CustomFields                       map[string]string `json:"CustomFields,omitempty"`
}

// SelectedPackage is the version of one package a release chose.
type SelectedPackage struct {
	ActionName           string `json:"ActionName"`
	PackageReferenceName string `json:"PackageReferenceName"`
	StepName             string `json:"StepName"`
	Version              string `json:"Version"`
	// PackageId is the package of the action's reference (cuttle keeps
	// it, so that a package in use is found without reading the
	// process snapshot).
	PackageId string `json:"PackageId,omitempty"`
}

// CheckReleaseVersion returns KindInvalid unless v is a version (package
// semver: one to four numbers, a pre-release tag, build metadata).
func CheckReleaseVersion(v string) error {
	if _, err := semver.Parse(v); err != nil {
		return Errorf(KindInvalid, "The release version %q is not a version such as 1.2.3 or 1.2.3-beta.1.", v)
	}
	return nil
}

// NextVersion returns the version of a project's next release from its
// versioning template (DefaultVersionTemplate when empty) and the highest
// version of its releases so far ("" for none): the template's
// Octopus.Version.(Last|Next)(Major|Minor|Patch|Build) are that version's
// parts, and the next ones; a first release's "last" version is 0.0.0.
// KindInvalid if the template does not make a version.
func NextVersion(template, last string) (string, error) {
	if template == "" {
		template = DefaultVersionTemplate
	}
	var parts [4]int64
	if last != "" {
		if v, err := semver.Parse(last); err == nil {
			parts = v.Parts
		}
	}
	vars := map[string]string{}
	for i, name := range []string{"Major", "Minor", "Patch", "Build"} {
		vars["octopus.version.last"+strings.ToLower(name)] = strconv.FormatInt(parts[i], 10)
		vars["octopus.version.next"+strings.ToLower(name)] = strconv.FormatInt(parts[i]+1, 10)
	}
	out, err := variables.Evaluate(template, func(name string) (string, bool) {
		v, ok := vars[strings.ToLower(name)]
		return v, ok
	})
	if err != nil {
		return "", Errorf(KindInvalid, "The project's versioning template %q does not parse: %v.", template, err)
	}
	if err := CheckReleaseVersion(out); err != nil {
		return "", Errorf(KindInvalid, "The project's versioning template %q makes %q, which is not a version.", template, out)
	}
	return out, nil
}

// ReleaseKey is the value of the releases' unique column: a version is
// unique in its project, ignoring case.
func ReleaseKey(projectID, version string) string { return fmt.Sprintf("%s/%s", projectID, version) }
