package abuse_test

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// hugeLogScript prints 5,000 lines of 64 KiB of '<', a character that task
// logs store escaped (\u003c, six bytes): on a node without bounds, a log
// of about 2 GB.
const hugeLogScript = `line=$(head -c 65536 /dev/zero | tr '\0' '<')
for i in $(seq 5000); do printf '%s\n' "$line"; done`

// TestDetailsOfHugeLog: a node script prints 5,000 lines of 64 KiB, then a
// client asks for the details of its task with the most lines a details
// answer takes (tail=20000). The node stays within its limits in both
// steps, and the details answer is JSON of at most the details limit.
func TestDetailsOfHugeLog(t *testing.T) {
	tg := startTarget(t)

	at := tg.begin("a node script printing 5,000 lines of 64 KiB")
	tk, err := tg.node.Client.CreateTask(testcluster.Context(t, 10*time.Second), "AdHocScript",
		map[string]any{"ScriptBody": hugeLogScript, "Syntax": "Bash"})
	if err != nil {
		t.Fatal(err)
	}
	tg.waitSuccess(tk.Id, time.Minute)
	at.end()
	t.Logf("the task's log has %s", testcluster.MiB(tg.taskLogBytes(tk.Id)))

	at = tg.begin("the details of the huge log")
	start := time.Now()
	resp, err := tg.get("/api/tasks/" + tk.Id + "/details?tail=20000")
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)
	if err != nil {
		t.Logf("the details call failed after %v", took.Round(time.Millisecond))
		tg.alive()
		t.Fatalf("reading the details: %v", err)
	}
	at.end()
	t.Logf("the details answer has %s and took %v", testcluster.MiB(int64(len(body))), took.Round(time.Millisecond))
	// The answer's envelope (the task, its links) is small beside the limit.
	if len(body) > detailsLimit+64<<10 {
		t.Errorf("the details answer has %s, more than the %s of the details limit", testcluster.MiB(int64(len(body))), testcluster.MiB(detailsLimit))
	}
	var details struct{ ActivityLogs []json.RawMessage }
	if err := json.Unmarshal(body, &details); err != nil || len(details.ActivityLogs) == 0 {
		t.Errorf("the details answer is not the JSON of a task's details (%v)", err)
	}
}
