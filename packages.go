package cuttle

import (
	"strings"
	"time"
)

// BuiltinFeedID is the id of the built-in package repository's feed.
const BuiltinFeedID = "feeds-builtin"

// Package is one version of a package in the built-in repository: its
// file is in shared storage under StorageKey.
type Package struct {
	Resource
	PackageId string `json:"PackageId"`
	// PackageVersion is the version, as its file name spells it.
	PackageVersion   string    `json:"PackageVersion"`
	FileExtension    string    `json:"FileExtension"` // such as ".zip" or ".tar.gz"
	PackageSizeBytes int64     `json:"PackageSizeBytes"`
	Hash             string    `json:"Hash"` // lower-case hex SHA-256 of the file
	Published        time.Time `json:"Published"`
	StorageKey       string    `json:"StorageKey"`
}

// PackageIdentity returns what names one version of a package in the feed,
// ignoring case: "<id>.<version>" lower-cased, as Octopus's package ids
// "packages-<id>.<version>" are compared.
func PackageIdentity(packageID, version string) string {
	return strings.ToLower(packageID + "." + version)
}

// OverwriteMode says what an upload does when its package version exists.
type OverwriteMode string

// Overwrite modes, as Octopus names them.
const (
	FailIfExists      OverwriteMode = "FailIfExists"      // 409
	IgnoreIfExists    OverwriteMode = "IgnoreIfExists"    // 200, the stored one kept
	OverwriteExisting OverwriteMode = "OverwriteExisting" // 201, replaced
)

// ParseOverwriteMode reads an overwrite mode, case-insensitively; empty is
// FailIfExists. KindInvalid for another.
func ParseOverwriteMode(s string) (OverwriteMode, error) {
	for _, m := range []OverwriteMode{FailIfExists, IgnoreIfExists, OverwriteExisting} {
		if strings.EqualFold(s, string(m)) {
			return m, nil
		}
	}
	if s == "" {
		return FailIfExists, nil
	}
	return "", Errorf(KindInvalid, "The overwrite mode %q is not one of FailIfExists, IgnoreIfExists and OverwriteExisting.", s)
}
