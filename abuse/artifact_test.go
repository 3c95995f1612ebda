package abuse_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/testcluster"
)

const (
	// artifactLimit is the node's --artifact-limit in this test (default
	// 4GiB, smaller to keep the test fast).
	artifactLimit = 1 << 20
	// oversized is the size of the attacker's uploads.
	oversized = 64 << 20
	// socketBuffers bounds what the loopback's socket buffers take of an
	// upload that the node no longer reads.
	socketBuffers = 16 << 20
)

// zeros is a body of n zero bytes that counts what was read of it.
type zeros struct{ n, read int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.read == z.n {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.n-z.read)
	clear(p[:n])
	z.read += n
	return int(n), nil
}

// TestOversizedArtifact: an agent uploads 64 MiB as the file of its
// SendFile command, where --artifact-limit is 1 MiB, again and again for
// attackFor: with a Content-Length and chunked in turn. Each upload is
// refused (413, or the connection closed early) with little of it read,
// nothing is left in the task's artifacts, and the node stays within its
// limits.
func TestOversizedArtifact(t *testing.T) {
	tg := startTarget(t, "artifact-limit=1MiB")
	a := tg.attacker("attacker", attackerIP)
	task, uid := a.takeCommand("CollectFile", map[string]any{"Path": "app.log"})
	path := agentapi.CommandPath(agentapi.PathFile, uid)

	at := tg.begin("oversized artifact uploads")
	var tally count
	var mostSent int64
	for i := 0; i < 2 || time.Since(at.start) < attackFor; i++ {
		length, upload := int64(oversized), "an upload of 64 MiB with a Content-Length"
		if i%2 == 1 {
			length, upload = -1, "a chunked upload of 64 MiB"
		}
		body := &zeros{n: oversized}
		status, answer, err := a.do(http.MethodPut, path, body, length)
		tally.add(outcome(status, err))
		mostSent = max(mostSent, body.read)
		// Refused: 413, or the connection closed before the whole upload was sent.
		if status != http.StatusRequestEntityTooLarge && (err == nil || body.read == oversized) {
			t.Errorf("%s: answered %d %s (%v) after %s of it was sent, want 413 over --artifact-limit %s",
				upload, status, bytes.TrimSpace(answer), err, testcluster.MiB(body.read), testcluster.MiB(artifactLimit))
			break // more would only fill the disk
		}
		if body.read > artifactLimit+socketBuffers {
			t.Errorf("%s: %s of it were sent before the node refused it, more than its limit %s and what the socket buffers take",
				upload, testcluster.MiB(body.read), testcluster.MiB(artifactLimit))
			break
		}
	}
	at.end()
	t.Logf("answers: %v; at most %s of an upload was sent", &tally, testcluster.MiB(mostSent))
	dir := filepath.Join(tg.storage, "artifacts", task)
	testcluster.Eventually(t, 5*time.Second, func() error {
		if left := files(dir); len(left) > 0 {
			return fmt.Errorf("the refused uploads left %v", left)
		}
		return nil
	})
}
