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
