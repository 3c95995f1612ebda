package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing n bytes of f from off
// to disk, without waiting for them (sync_file_range with
// SYNC_FILE_RANGE_WRITE). It is only a hint: the fsync that follows is
// what makes the bytes durable, so a failure is ignored.
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// openDirect opens name for writing with O_DIRECT, or returns nil where
// the file system does not allow it (tmpfs, for one).
func openDirect(name string) *os.File {
	f, err := os.OpenFile(name, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
