package portal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cuttledeploy/cuttle/portal"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// fakeAPI serves the portal and the few routes of the Nodes page: the
// signed-in user, their permissions, the nodes (counting the reads), and,
// when live, the event stream /api/live, whose events are sent by send.
type fakeAPI struct {
	mu        sync.Mutex
	name      string   // the one node's name
	perms     []string // the user's system permissions
	live      bool     // whether /api/live exists
	reads     int      // GETs of the nodes
	connected int      // event streams opened
	events    chan string
}

func (f *fakeAPI) set(do func(f *fakeAPI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	do(f)
}

func (f *fakeAPI) count() (reads, connected int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.connected
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	name, perms, live := f.name, f.perms, f.live
	f.mu.Unlock()
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	switch r.URL.Path {
	case "/api/users/me":
		answer(200, map[string]any{"Id": "Users-1", "Username": "tess", "DisplayName": "Tess"})
	case "/api/users/me/permissions":
		answer(200, map[string]any{"SystemPermissions": perms, "SpacePermissions": map[string]any{}})
	case "/api/octopusservernodes":
		f.set(func(f *fakeAPI) { f.reads++ })
		answer(200, map[string]any{"Items": []any{map[string]any{"Id": "OctopusServerNodes-1", "Name": name, "MaxConcurrentTasks": 5,
			"LastSeen": time.Now().UTC().Format(time.RFC3339), "Rank": "Leader"}}})
	case "/api/live":
		if !live {
			answer(404, map[string]any{"ErrorMessage": "There is no route GET /api/live."})
			return
		}
		f.set(func(f *fakeAPI) { f.connected++ })
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, ": hello\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case e := <-f.events:
				fmt.Fprint(w, e)
				w.(http.Flusher).Flush()
			}
		}
	default:
		answer(404, map[string]any{"ErrorMessage": "There is no route " + r.URL.Path + "."})
	}
}

// send sends events (each "name data") in one write.
func (f *fakeAPI) send(events ...string) {
	var b strings.Builder
	for _, e := range events {
		name, data, _ := strings.Cut(e, " ")
		fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, data)
	}
	f.events <- b.String()
}

// TestLiveUpdates: a page re-reads what it shows on a relevant "changed"
// event of /api/live (within 5 s: sooner than its polling), at most once
// for a burst of them, and on "resync"; while the stream is open it polls
// only slowly. Where /api/live does not
// exist (404), the page polls every 2 seconds. Controls the user has no
// permission for are not shown (the drain toggle needs ConfigureServer).
func TestLiveUpdates(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is missing (%v): run scripts/test, which installs Debian's chromium", err)
	}
	f := &fakeAPI{name: "one", perms: []string{}, live: true, events: make(chan string)}
	mux := http.NewServeMux()
	mux.Handle("/app/", portal.Handler())
	mux.Handle("/api/", f)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless)
	actx, cancel := chromedp.NewExecAllocator(testcluster.Context(t, 2*time.Minute), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	b := &browser{t: t, ctx: ctx}
	b.watchConsole()
	var noDrain bool
	b.do("opening the Nodes page",
		chromedp.Navigate(srv.URL+"/app/#/configuration/nodes"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="one"]`)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			noDrain, err = chromedp.Evaluate[bool](`document.querySelector('input[aria-label="Drain one"]') === null`)(ctx, tg)
			return err
		}),
	)
	if !noDrain {
		t.Errorf("the drain toggle shows to a user without ConfigureServer")
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		if _, c := f.count(); c == 0 {
			return fmt.Errorf("the page has not opened /api/live")
		}
		return nil
	})

	f.set(func(f *fakeAPI) { f.name = "two" })
	f.send("changed ServerTasks-9", "changed OctopusServerNodes-1")
	b.within(5*time.Second, "a changed node", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="two"]`)))

	before, _ := f.count()
	f.set(func(f *fakeAPI) { f.name = "three" })
	burst := make([]string, 20)
	for i := range burst {
		burst[i] = "changed OctopusServerNodes-1"
	}
	f.send(burst...)
	b.within(5*time.Second, "a burst of changes", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="three"]`)))
	// A window of 2.5 s: polling every 2 s would read again in it; the
	// stream's slow polling (10 s) does not.
	time.Sleep(2500 * time.Millisecond)
	if after, _ := f.count(); after-before > 3 {
		t.Errorf("the nodes were read %d times after a burst of 20 changes and 2.5 s; want at most 3 (refreshes are throttled, and the stream's polling is slow)", after-before)
	}

	f.set(func(f *fakeAPI) { f.name = "four" })
	f.send("resync x")
	b.within(5*time.Second, "a resync", chromedp.WaitVisible(chromedp.CSS(`tr[data-node="four"]`)))

	// Without /api/live, and with the permission: the toggle, and polling.
	f.set(func(f *fakeAPI) {
		f.live, f.perms, f.name = false, []string{"ConfigureServer"}, "five"
	})
	b.do("the page without /api/live",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="five"] input[aria-label="Drain five"]`)),
	)
	start, _ := f.count()
	testcluster.Eventually(t, 15*time.Second, func() error {
		if n, _ := f.count(); n < start+2 {
			return fmt.Errorf("the nodes were read %d times since the page loaded; want 2 more (polling every 2 s)", n-start)
		}
		return nil
	})
	b.checkConsole()
}
