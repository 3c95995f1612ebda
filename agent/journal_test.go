package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
)

// TestJournalAcknowledgementsAreAHint: what the cluster acknowledged is
// read back from ack.json, and an ack.json that is damaged or missing (lost
// in a crash, as it is not synced) only leaves the command to be reported
// again.
func TestJournalAcknowledgementsAreAHint(t *testing.T) {
	t.Parallel()
	j := journal{dir: t.TempDir()}
	rec := record{UID: "cmd-1", Kind: string(cuttle.CommandScript), State: cuttle.CommandRunning, StartedAt: time.Now().UTC()}
	out, err := j.create(rec)
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	rec.StoredSeq, rec.Acknowledged = 7, true // acknowledged while Running: not an outcome
	if err := j.saveAck(rec); err != nil {
		t.Fatal(err)
	}
	got, err := j.load(rec.UID)
	if err != nil || got.StoredSeq != 7 || got.Acknowledged {
		t.Fatalf("load = %+v, %v; want StoredSeq 7 and no outcome acknowledged", got, err)
	}
	rec.State, rec.Acknowledged = cuttle.CommandSuccess, false
	if err := j.save(rec); err != nil { // the outcome, before it is reported
		t.Fatal(err)
	}
	rec.Acknowledged = true
	if err := j.saveAck(rec); err != nil {
		t.Fatal(err)
	}
	if got, err = j.load(rec.UID); err != nil || !got.settled() {
		t.Fatalf("load = %+v, %v; want the outcome acknowledged", got, err)
	}
	if err := os.WriteFile(filepath.Join(j.commandDir(rec.UID), ackFile), []byte("{\"Stor"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = j.load(rec.UID); err != nil || got.settled() || got.State != cuttle.CommandSuccess {
		t.Fatalf("with a damaged ack.json: %+v, %v; want the outcome, to be reported again", got, err)
	}
}
