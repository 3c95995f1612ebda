// Package blob is cuttle's shared storage: package files, artifacts and task
// logs, each under a root folder that every node of a cluster mounts (NFS,
// SMB, a CSI volume). Files are addressed by relative keys, so nodes on
// different operating systems can share one cluster.
package blob

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Layout says where each kind of file lives.
type Layout struct {
	Packages  string
	Artifacts string
	TaskLogs  string
}

// NewLayout returns the layout under root (folders packages, artifacts and
// tasklogs), with each non-empty override taking the place of its folder.
func NewLayout(root, packages, artifacts, taskLogs string) Layout {
	pick := func(override, name string) string {
		if override != "" {
			return override
		}
		return filepath.Join(root, name)
	}
	return Layout{
		Packages:  pick(packages, "packages"),
		Artifacts: pick(artifacts, "artifacts"),
		TaskLogs:  pick(taskLogs, "tasklogs"),
	}
}

// Create makes every folder of the layout that does not exist yet.
func (l Layout) Create() error {
	for _, dir := range []string{l.Packages, l.Artifacts, l.TaskLogs} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("creating shared storage folder: %w", err)
		}
	}
	return nil
}

// Key prefixes: a key names a file of shared storage by the kind of file
// and its path within that kind's folder, with forward slashes, such as
// "packages/app.1.0.zip" or "artifacts/ServerTasks-7/log.txt".
const (
	PackagesKey  = "packages/"
	ArtifactsKey = "artifacts/"
)

// Path returns the file a key names. It fails for a key of another kind,
// or one that is absolute, holds "." or ".." parts, a backslash or an empty
// part, so that a key names a file inside its folder, never the folder
// itself nor anything outside it.
func (l Layout) Path(key string) (string, error) {
	var root, rel string
	switch {
	case strings.HasPrefix(key, PackagesKey):
		root, rel = l.Packages, strings.TrimPrefix(key, PackagesKey)
	case strings.HasPrefix(key, ArtifactsKey):
		root, rel = l.Artifacts, strings.TrimPrefix(key, ArtifactsKey)
	default:
		return "", fmt.Errorf("the storage key %q names neither %s nor %s", key, PackagesKey, ArtifactsKey)
	}
	if rel == "" || rel == "." || strings.Contains(rel, `\`) || !fs.ValidPath(rel) {
		return "", fmt.Errorf("the storage key %q is not a clean relative path", key)
	}
	return filepath.Join(root, filepath.FromSlash(rel)), nil
}
