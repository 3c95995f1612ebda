// Package blob is cuttle's shared storage: package files, artifacts and task
// logs, each under a root folder that every node of a cluster mounts (NFS,
// SMB, a CSI volume). Files are addressed by relative keys, so nodes on
// different operating systems can share one cluster.
package blob

import (
	"fmt"
	"os"
	"path/filepath"
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
