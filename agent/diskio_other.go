//go:build !linux

package agent

import "os"

// startWriteback does nothing where sync_file_range does not exist; the
// fsync that follows writes everything.
func startWriteback(*os.File, int64, int64) {}

// openDirect returns nil: direct I/O is used on Linux only.
func openDirect(string) *os.File { return nil }
