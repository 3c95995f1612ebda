package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// chromium is Debian's Chromium, which scripts/test installs.
const chromium = "/usr/bin/chromium"

// TestPortalInABrowser: a real headless Chromium opens a node's /, is
// led to the portal's sign-in, signs in, sees the Nodes page, drains the
// node with its toggle (the node's ping answers 418), sees the cluster
// overview's servers table, and signs out. Each
// page is captured; the screenshots are checked not to be blank and
// written where the log says.
func TestPortalInABrowser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is missing (%v): run scripts/test, which installs Debian's chromium", err)
	}
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	// A person (the first-start administrator is a service account).
	var me struct{ Id string }
	if err := n.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodPost, "/api/users",
		map[string]any{"Username": "ana", "IsActive": true}, &me); err != nil {
		t.Fatal(err)
	}
	var admins struct{ Items []map[string]any }
	if err := n.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodGet, "/api/teams?name="+url.QueryEscape(cuttle.AdministratorsTeam), nil, &admins); err != nil || len(admins.Items) != 1 {
		t.Fatalf("the administrators team: %+v, %v", admins, err)
	}
	team := admins.Items[0]
	team["MemberUserIds"] = append(team["MemberUserIds"].([]any), me.Id)
	if err := n.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodPut, "/api/teams/"+team["Id"].(string), team, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodPut, "/api/users/"+me.Id+"/password",
		map[string]string{"Password": "portal password"}, nil); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Headless, chromedp.WindowSize(1000, 700))
	actx, cancel := chromedp.NewExecAllocator(testcluster.Context(t, 2*time.Minute), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Kept after the test, to be looked at.
	shots, err := os.MkdirTemp("", "cuttle-portal-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			b, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return err
			}
			path := filepath.Join(shots, name+".png")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return err
			}
			if blank(t, b) {
				t.Errorf("the screenshot %s is blank", path)
			}
			t.Logf("screenshot of %s: %s", name, path)
			return nil
		})
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(n.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
		shot("signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "ana"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "portal password"),
		chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="solo"]`)),
		shot("nodes"),
		chromedp.Click(chromedp.CSS(`input[aria-label="Drain solo"]`)),
	)
	if err != nil {
		t.Fatalf("signing in and opening the Nodes page: %v", err)
	}
	if err := n.WaitPing(10*time.Second, 418); err != nil {
		t.Fatalf("after the drain toggle: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`input[aria-label="Drain solo"]:checked`)), // the page refreshed from the node
		shot("drained"),
		chromedp.Click(chromedp.CSS(`a[href="#/configuration/cluster"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="solo"]`)),
		shot("cluster"),
	)
	if err != nil {
		t.Fatalf("after draining: %v", err)
	}
	// A task's log, followed live on its page. (The node drains: it takes no
	// new task; undrain it first.)
	var node []struct{ Id string }
	if err := n.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodGet, "/api/octopusservernodes/all", nil, &node); err != nil || len(node) != 1 {
		t.Fatalf("the node: %v %v", node, err)
	}
	drain := false
	if _, err := n.Client.UpdateNode(testcluster.Context(t, 10*time.Second), node[0].Id, nil, &drain); err != nil {
		t.Fatal(err)
	}
	var cluster struct{ CertificateThumbprint string }
	if err := n.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodGet, "/api/cluster", nil, &cluster); err != nil || cluster.CertificateThumbprint == "" {
		t.Fatalf("the cluster: %+v %v", cluster, err)
	}
	tk, err := n.Client.CreateTask(testcluster.Context(t, 10*time.Second), "AdHocScript", map[string]any{
		"ScriptBody": "echo first line; sleep 2; echo second line", "Syntax": "Bash"})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="#/tasks"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-task="`+tk.Id+`"]`)),
		chromedp.Click(chromedp.CSS(`a[href="#/tasks/`+tk.Id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.log`)),
		waitText(`pre.log`, "second line"), // arrives live, two seconds after the first
		shot("task"),
		chromedp.Click(chromedp.CSS(`a[href="#/infrastructure/machines"]`)),
		waitText(`pre.log`, "--server-thumbprint "+cluster.CertificateThumbprint),
		shot("targets"),
		chromedp.Click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
	)
	if err != nil {
		t.Fatalf("the task's page: %v", err)
	}
}

// waitText waits until the element's text contains want.
func waitText(selector, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			text, err := chromedp.Text(chromedp.CSS(selector))(ctx, tg)
			if err == nil && strings.Contains(text, want) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s never showed %q (last: %q, %v)", selector, want, text, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

// blank reports whether a PNG screenshot is one color.
func blank(t *testing.T, b []byte) bool {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Errorf("a screenshot is not a PNG: %v", err)
		return true
	}
	r := img.Bounds()
	first := img.At(r.Min.X, r.Min.Y)
	for y := r.Min.Y; y < r.Max.Y; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			if img.At(x, y) != first {
				return false
			}
		}
	}
	return true
}
