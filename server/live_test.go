package server_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLiveUpdatesFromAnotherNode: a browser's event stream on node b
// hears, within two seconds, of an environment created through node a and
// of a task queued through a.
func TestLiveUpdatesFromAnotherNode(t *testing.T) {
	t.Parallel()
	a, b, key := twoNodes(t)
	req, err := http.NewRequestWithContext(t.Context(), "GET", b+"/api/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Octopus-ApiKey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/live: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
		close(events)
	}()
	hear := func(what, id string) {
		t.Helper()
		deadline := time.After(2 * time.Second)
		for {
			select {
			case got, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended before %s (%s)", what, id)
				}
				if got == id {
					return
				}
			case <-deadline:
				t.Fatalf("node b's stream did not tell of %s (%s) within 2 s", what, id)
			}
		}
	}
	// Node b's listener subscribes to the database once the node has
	// started, a moment after it serves: until b's stream hears of a
	// change, make more.
	warm := time.Now().Add(10 * time.Second)
	for heard := false; !heard; {
		if time.Now().After(warm) {
			t.Fatal("node b's stream tells of no change in 10 s")
		}
		request(t, "POST", a+"/api/Spaces-1/projectgroups", key, `{"Name": "Warm `+time.Now().Format(time.RFC3339Nano)+`"}`)
		select {
		case _, heard = <-events:
		case <-time.After(200 * time.Millisecond):
		}
	}
	status, env := request(t, "POST", a+"/api/Spaces-1/environments", key, `{"Name": "Live"}`)
	if status != http.StatusCreated {
		t.Fatalf("creating an environment: %d %v", status, env)
	}
	hear("the environment", env["Id"].(string))
	status, task := request(t, "POST", a+"/api/tasks", key, `{"Name": "Wait", "Arguments": {"Seconds": 1}}`)
	if status != http.StatusCreated {
		t.Fatalf("queueing a task: %d %v", status, task)
	}
	hear("the task", task["Id"].(string))
}
