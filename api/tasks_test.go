package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
)

type taskDoc struct {
	Id, Name, State, ServerNode, ErrorMessage, Description string
	IsCompleted, FinishedSuccessfully                      bool
	StartTime                                              *time.Time
	Links                                                  map[string]string
}

// queue posts a task and returns the created resource.
func (e *env) queue(t *testing.T, body string) taskDoc {
	t.Helper()
	status, b := e.do("POST", "/api/tasks", e.adminKey, body)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/tasks %s: %d %s", body, status, b)
	}
	var doc taskDoc
	json.Unmarshal(b, &doc)
	return doc
}

func (e *env) waitTask(t *testing.T, id string, states ...string) taskDoc {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, b := e.do("GET", "/api/tasks/"+id, e.adminKey, "")
		var doc taskDoc
		json.Unmarshal(b, &doc)
		for _, s := range states {
			if doc.State == s {
				return doc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s is %s, want one of %v", id, doc.State, states)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTaskLifecycleThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	doc := e.queue(t, `{"Name":"AdHocScript","Arguments":{"ScriptBody":"echo one; echo two","Syntax":"Bash"}}`)
	if doc.Id == "" || doc.Links["Details"] == "" || doc.Description == "" {
		t.Fatalf("created task: %+v", doc)
	}
	done := e.waitTask(t, doc.Id, "Success", "Failed")
	if done.State != "Success" || !done.IsCompleted || !done.FinishedSuccessfully || done.ServerNode != "node-1" {
		t.Fatalf("finished task: %+v", done)
	}
	status, raw := e.do("GET", "/api/tasks/"+doc.Id+"/raw", e.adminKey, "")
	if status != 200 || !strings.Contains(string(raw), "Info     one\n") || !strings.Contains(string(raw), "two") {
		t.Errorf("raw log: %d %s", status, raw)
	}
	status, raw = e.do("GET", "/api/tasks/"+doc.Id+"/raw?skip=2", e.adminKey, "")
	if status != 200 || strings.Contains(string(raw), "one") || !strings.Contains(string(raw), "two") {
		t.Errorf("raw log after skipping two lines: %d %s", status, raw)
	}
	var details struct {
		Task         taskDoc
		ActivityLogs []struct {
			Status      string
			LogElements []struct {
				MessageText string
				Number      int
			}
		}
	}
	_, b := e.do("GET", "/api/tasks/"+doc.Id+"/details?tail=2", e.adminKey, "")
	if err := json.Unmarshal(b, &details); err != nil || len(details.ActivityLogs) != 1 || details.ActivityLogs[0].Status != "Success" {
		t.Fatalf("details: %s", b)
	}
	if els := details.ActivityLogs[0].LogElements; len(els) != 2 || els[0].MessageText != "one" || els[0].Number != 2 {
		t.Errorf("details' last two log elements: %+v", els)
	}
	var page struct {
		TotalResults int
		Items        []taskDoc
	}
	_, b = e.do("GET", "/api/tasks?states=Success&name=AdHocScript&ids="+doc.Id, e.adminKey, "")
	if json.Unmarshal(b, &page); page.TotalResults != 1 || page.Items[0].Id != doc.Id {
		t.Errorf("filtered list: %s", b)
	}
	_, b = e.do("GET", "/api/Spaces-1/tasks/"+doc.Id, e.adminKey, "")
	if json.Unmarshal(b, &done); done.Id != doc.Id {
		t.Errorf("space-scoped get: %s", b)
	}
}

func TestCancelQueuedAndRunningTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	running := e.queue(t, `{"Name":"AdHocScript","Arguments":{"ScriptBody":"sleep 60","Syntax":"Bash"}}`)
	e.waitTask(t, running.Id, "Executing")
	status, b := e.do("POST", "/api/spaces/Spaces-1/tasks/"+running.Id+"/cancel", e.adminKey, "")
	if status != 200 {
		t.Fatalf("cancel: %d %s", status, b)
	}
	start := time.Now()
	e.waitTask(t, running.Id, "Canceled")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cancelling took %v", took)
	}
	// A task that can never start (cap 0) is cancelled at once.
	e.do("PUT", "/api/octopusservernodes/OctopusServerNodes-1", e.adminKey, `{"MaxConcurrentTasks":0}`)
	time.Sleep(50 * time.Millisecond)
	queued := e.queue(t, `{"Name":"Noop","Arguments":{}}`)
	status, b = e.do("POST", "/api/tasks/"+queued.Id+"/cancel", e.adminKey, "")
	var doc taskDoc
	if json.Unmarshal(b, &doc); status != 200 || doc.State != "Canceled" {
		t.Fatalf("cancel of a queued task: %d %s", status, b)
	}
}

func TestTaskBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	finished := e.queue(t, `{"Name":"Noop","Arguments":{}}`)
	e.waitTask(t, finished.Id, "Success")
	// Tasks users queued: the leader queues its scheduled jobs when it
	// starts leading, maybe in the middle of this test.
	queuedByUsers := func() int {
		t.Helper()
		_, body := e.do("GET", "/api/tasks?take=1000", e.adminKey, "")
		var page struct{ Items []struct{ Name string } }
		json.Unmarshal(body, &page)
		n := 0
		for _, tk := range page.Items {
			if !slices.Contains(cuttle.Jobs, tk.Name) {
				n++
			}
		}
		return n
	}
	before := queuedByUsers()
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"unknown task name", "POST", "/api/tasks", `{"Name":"Deploy","Arguments":{}}`, 400},
		{"system task", "POST", "/api/tasks", `{"Name":"Retention","Arguments":{}}`, 400},
		{"no name", "POST", "/api/tasks", `{"Arguments":{}}`, 400},
		{"missing arguments", "POST", "/api/tasks", `{"Name":"AdHocScript"}`, 400},
		{"missing script", "POST", "/api/tasks", `{"Name":"AdHocScript","Arguments":{"Syntax":"Bash"}}`, 400},
		{"wrong syntax", "POST", "/api/tasks", `{"Name":"AdHocScript","Arguments":{"ScriptBody":"true","Syntax":"Perl"}}`, 400},
		{"arguments not an object", "POST", "/api/tasks", `{"Name":"AdHocScript","Arguments":"echo"}`, 400},
		{"unknown argument", "POST", "/api/tasks", `{"Name":"AdHocScript","Arguments":{"ScriptBody":"true","Syntax":"Bash","Shell":"zsh"}}`, 400},
		{"unknown field", "POST", "/api/tasks", `{"Name":"Noop","Arguments":{},"Priority":1}`, 400},
		{"expiry passed", "POST", "/api/tasks", `{"Name":"Noop","Arguments":{},"QueueTimeExpiry":"2001-01-01T00:00:00Z"}`, 400},
		{"other space", "POST", "/api/tasks", `{"Name":"Noop","Arguments":{},"SpaceId":"Spaces-9"}`, 400},
		{"not JSON", "POST", "/api/tasks", `run it`, 400},
		{"cancel finished", "POST", "/api/tasks/" + finished.Id + "/cancel", ``, 409},
		{"cancel unknown", "POST", "/api/tasks/ServerTasks-999/cancel", ``, 404},
		{"get unknown", "GET", "/api/tasks/ServerTasks-999", ``, 404},
		{"malformed id", "GET", "/api/tasks/Tasks-1", ``, 404},
		{"log past its end", "GET", "/api/tasks/" + finished.Id + "/raw?skip=5", ``, 400},
		{"bad skip", "GET", "/api/tasks/" + finished.Id + "/raw?skip=-1", ``, 400},
		{"bad tail", "GET", "/api/tasks/" + finished.Id + "/details?tail=x", ``, 400},
		{"bad state filter", "GET", "/api/tasks?states=Done", ``, 400},
		{"bad ids filter", "GET", "/api/tasks?ids=Machines-1", ``, 400},
		{"no key", "GET", "/api/tasks", ``, 401},
	}
	for _, c := range cases {
		key := e.adminKey
		if c.want == 401 {
			key = ""
		}
		status, body := e.do(c.method, c.path, key, c.body)
		wantError(t, c.name, status, body, c.want)
	}
	if status, _ := e.do("POST", "/api/tasks", e.userKey, `{"Name":"Noop","Arguments":{}}`); status != 403 {
		t.Errorf("a non-administrator queuing a task: %d, want 403", status)
	}
	if after := queuedByUsers(); after != before {
		t.Errorf("bad input queued tasks: %d before, %d after", before, after)
	}
}

// TestTaskDetailsAreBounded: a details answer carries at most the node's
// DetailsBytes of log text, the newest lines, with "<" unescaped.
func TestTaskDetailsAreBounded(t *testing.T) {
	t.Parallel()
	e := newLimitedEnv(t, cuttle.Limits{DetailsBytes: 64 << 10})
	doc := e.queue(t, `{"Name":"AdHocScript","Arguments":{"ScriptBody":"for i in $(seq 1 100); do printf '%04d' $i; head -c 4000 /dev/zero | tr '\\0' '<'; echo; done","Syntax":"Bash"}}`)
	if done := e.waitTask(t, doc.Id, "Success", "Failed"); done.State != "Success" {
		t.Fatalf("the script: %+v", done)
	}
	status, body := e.do("GET", "/api/tasks/"+doc.Id+"/details?tail=20000", e.adminKey, "")
	var details struct {
		ActivityLogs []struct {
			LogElements []struct {
				MessageText string
				Number      int
			}
		}
	}
	if err := json.Unmarshal(body, &details); status != 200 || err != nil || len(details.ActivityLogs) != 1 {
		t.Fatalf("details: %d, %v", status, err)
	}
	els := details.ActivityLogs[0].LogElements
	text := 0
	for _, el := range els {
		text += len(el.MessageText)
	}
	last := els[len(els)-1]
	if text > 64<<10 || len(els) < 10 || !strings.HasPrefix(last.MessageText, "0100<") || last.Number != 101 {
		t.Errorf("%d log elements of %d bytes, the last %q... number %d; want the newest lines within 64 KiB, ending with line 100 of the script",
			len(els), text, last.MessageText[:8], last.Number)
	}
	if len(body) > 80<<10 || strings.Contains(string(body), `\u003c`) {
		t.Errorf("the answer has %d bytes (escaped < in it: %v); want under 80 KiB, unescaped", len(body), strings.Contains(string(body), `\u003c`))
	}
}

// TestUnauthenticatedSlowBodyIsRefusedAtOnce: a POST without a key that
// announces a body it never sends is answered 401 at once and its
// connection closed: nothing of it is read.
func TestUnauthenticatedSlowBodyIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /api/Spaces-1/environments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the answer: %v, %v; want 401", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := r.ReadByte(); err == nil {
		t.Error("the connection is still open after the refusal")
	}
}
