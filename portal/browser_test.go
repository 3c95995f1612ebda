package portal_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// chromium is Debian's Chromium, which scripts/test installs.
const chromium = "/usr/bin/chromium"

// TestPortalInABrowser: a real headless Chromium opens a node's /, is led
// to the portal's sign-in, signs in and lands on the dashboard, and then
// goes through every page as a person would: the Nodes page (drains the
// node with its toggle: the node's ping answers 418), the cluster overview,
// users (adds one, sets their password), teams (adds one of viewers, with a
// member and a role), roles and a role's permissions, audit, a new API key
// (shown once), environments (adds one), deployment targets, projects (adds
// one), the process editor (a script step that runs on the server),
// variables (one plain, one sensitive: masked once saved), releases
// (creates one), a deployment followed live to Success, a second release
// whose manual intervention is answered in place, a third whose guided
// failure is too (Ignore), the dashboard showing it, channels, the library
// (uploads a package, with its versions), a task's log followed live, the
// links the official CLI prints and the older hashes, the dashboard in a
// narrow window. Then the viewer signs in and sees no control they may not
// use. Each page is captured; the screenshots are checked not to be blank
// and written where the log says, and every control is checked to have a
// label. An exception of the page's script, or
// anything the content security policy refused, fails the test.
func TestPortalInABrowser(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Chromium is missing (%v): run scripts/test, which installs Debian's chromium", err)
	}
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	call := func(method, path string, in, out any) {
		t.Helper()
		if err := n.Client.Do(testcluster.Context(t, 20*time.Second), method, path, in, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	// A person (the first-start administrator is a service account), made
	// an administrator: a member of the administrators team.
	var me struct{ Id string }
	call(http.MethodPost, "/api/users", map[string]any{"Username": "ana", "DisplayName": "Ana", "IsActive": true}, &me)
	call(http.MethodPut, "/api/users/"+me.Id+"/password", map[string]string{"Password": "portal password"}, nil)
	var teams []map[string]any
	call(http.MethodGet, "/api/teams/all", nil, &teams)
	admins := slices.IndexFunc(teams, func(tm map[string]any) bool { return tm["Name"] == cuttle.AdministratorsTeam })
	if admins < 0 {
		t.Fatalf("no team %q among %v", cuttle.AdministratorsTeam, teams)
	}
	team := teams[admins]
	team["MemberUserIds"] = append(team["MemberUserIds"].([]any), me.Id)
	call(http.MethodPut, "/api/teams/"+team["Id"].(string), team, nil)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Headless, chromedp.WindowSize(1100, 900))
	actx, cancel := chromedp.NewExecAllocator(testcluster.Context(t, 3*time.Minute), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	b := &browser{t: t, ctx: ctx}
	b.watchConsole()
	// Kept after the test, to be looked at.
	var err error
	if b.shots, err = os.MkdirTemp("", "cuttle-portal-screenshots-"); err != nil {
		t.Fatal(err)
	}

	b.do("signing in",
		chromedp.Navigate(n.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
		b.shot("signin"),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "ana"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "portal password"),
		click(chromedp.CSS(`form.signin button[type=submit]`)),
		waitText(`#view h1`, "Dashboard"),
		waitText(`#view`, "No projects yet"),
	)
	b.do("opening the Nodes page",
		click(chromedp.CSS(`header a[href="#/configuration/nodes"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="solo"]`)),
		b.shot("nodes"),
		click(chromedp.CSS(`input[aria-label="Drain solo"]`)),
	)
	if err := n.WaitPing(20*time.Second, 418); err != nil {
		t.Fatalf("after the drain toggle: %v", err)
	}
	b.do("the cluster overview",
		chromedp.WaitVisible(chromedp.CSS(`input[aria-label="Drain solo"]:checked`)), // the page refreshed from the node
		b.shot("drained"),
		click(chromedp.CSS(`nav.tabs a[href="#/configuration/cluster"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-server="solo"]`)),
		b.shot("cluster"),
	)
	// The node drains: it takes no new task; undrain it.
	var nodes []struct{ Id string }
	call(http.MethodGet, "/api/octopusservernodes/all", nil, &nodes)
	drain := false
	if _, err := n.Client.UpdateNode(testcluster.Context(t, 10*time.Second), nodes[0].Id, nil, &drain); err != nil {
		t.Fatal(err)
	}

	b.do("users, teams, roles and audit",
		click(chromedp.CSS(`nav.tabs a[href="#/configuration/users"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="ana"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add a user"] input[type=text]`), "bo"),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add a user"] input[type=email]`), "bo@example.test"),
		click(chromedp.CSS(`form[aria-label="Add a user"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="bo"]`)),
		b.shot("users"),
		click(chromedp.CSS(`tr[data-user="bo"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`form[aria-label="Edit bo"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Set the password of bo"] input[type=password]`), "bo's password"),
		click(chromedp.CSS(`form[aria-label="Set the password of bo"] button[type=submit]`)),
		waitText(`#status`, "The password is set"),
		b.shot("user"),
		click(chromedp.CSS(`nav.tabs a[href="#/configuration/teams"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-team="`+cuttle.AdministratorsTeam+`"]`)),
		b.shot("teams"),
		click(chromedp.CSS(`tr[data-team="`+cuttle.AdministratorsTeam+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-member="ana"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-role="System administrator"]`)),
		b.shot("team"),
		// A team of viewers, bo its member.
		click(chromedp.CSS(`nav.tabs a[href="#/configuration/teams"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add a team"] input[type=text]`), "Viewers"),
		click(chromedp.CSS(`form[aria-label="Add a team"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[aria-label="Add a member"]`)),
		choose(`form[aria-label="Add a member"] select`, "bo"),
		click(chromedp.CSS(`form[aria-label="Add a member"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-member="bo"]`)),
		choose(`form[aria-label="Give the team a role"] select`, "Project viewer"),
		click(chromedp.CSS(`form[aria-label="Give the team a role"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-role="Project viewer"]`)),
		b.shot("team-viewers"),
		click(chromedp.CSS(`nav.tabs a[href="#/configuration/roles"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-role="Project deployer"]`)),
		b.shot("roles"),
		click(chromedp.CSS(`tr[data-role="Project deployer"] a`)),
		waitText(`#view`, "DeploymentCreate"),
		b.shot("role"),
		click(chromedp.CSS(`nav.tabs a[href="#/configuration/audit"]`)),
		waitText(`#view table`, "POST /api/users"),
		b.shot("audit"),
	)
	b.do("an API key",
		click(chromedp.CSS(`#me`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add an API key"] input`), "portal test"),
		click(chromedp.CSS(`form[aria-label="Add an API key"] button[type=submit]`)),
		waitText(`output.secret`, "API-"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="portal test"]`)),
		b.shot("apikeys"),
	)
	b.do("environments and targets",
		click(chromedp.CSS(`header a[href="#/Spaces-1/infrastructure/environments"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add an environment"] input[type=text]`), "Staging"),
		click(chromedp.CSS(`form[aria-label="Add an environment"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-environment="Staging"]`)),
		b.shot("environments"),
		click(chromedp.CSS(`nav.tabs a[href="#/Spaces-1/infrastructure/machines"]`)),
		waitText(`pre.log`, "--environment Staging"),
		b.shot("targets"),
	)
	b.do("a project with a script step",
		click(chromedp.CSS(`header a[href="#/Spaces-1/projects"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add a project"] input[type=text]`), "Hello"),
		click(chromedp.CSS(`form[aria-label="Add a project"] button[type=submit]`)),
		waitText(`#view`, "No steps yet"),
		clickButton("Add a script step"),
		chromedp.WaitVisible(chromedp.CSS(`[data-step="0"] textarea[name=scriptBody]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-step="0"] textarea[name=scriptBody]`), `echo "#{Greeting} from the portal"`),
		click(chromedp.CSS(`[data-step="0"] input[name=runOnServer]`)),
		clickButton("Save"),
		waitText(`#status`, "Saved: version"),
		b.shot("process"),
	)
	b.do("variables",
		click(chromedp.CSS(`nav.tabs a[href$="/variables"]`)),
		waitText(`#view`, "No variables yet"),
		clickButton("Add a variable"),
		chromedp.SendKeys(chromedp.CSS(`[data-variable="0"] input[aria-label^="Name"]`), "Greeting"),
		chromedp.SendKeys(chromedp.CSS(`[data-variable="0"] input[aria-label^="Value"]`), "Hello"),
		clickButton("Add a variable"),
		chromedp.SendKeys(chromedp.CSS(`[data-variable="1"] input[aria-label^="Name"]`), "Password"),
		click(chromedp.CSS(`[data-variable="1"] input[type=checkbox]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-variable="1"] input[type=password]`), "s3cret value"),
		clickButton("Save"),
		waitText(`#status`, "Saved: version"),
		waitText(`tr[data-name="Password"]`, "set, hidden"),
		b.shot("variables"),
	)
	var secret string
	b.do("reading the sensitive value's input", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Value(chromedp.CSS(`tr[data-name="Password"] input[type=password]`))(ctx, tg)
		secret = v
		return err
	}))
	if secret != "" {
		t.Errorf("the sensitive variable's input shows %q once saved; want it empty (masked)", secret)
	}
	b.do("a release deployed to Success",
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/releases"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create a release"] input`), "1.0.0"),
		click(chromedp.CSS(`form[aria-label="Create a release"] button[type=submit]`)),
		waitText(`#view h2`, "Release 1.0.0"),
		b.shot("release"),
		click(chromedp.CSS(`form[aria-label="Deploy this release"] button[type=submit]`)),
		waitText(`#view h2`, "Deploy release 1.0.0 to Staging"),
		chromedp.WaitVisible(chromedp.CSS(`p.status [data-state="Success"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-activity="Run a script"] > [data-state="Success"]`)),
		b.shot("deployment"),
		click(chromedp.CSS(`a[href^="#/Spaces-1/tasks/"]`)),
		waitText(`pre.log`, "Hello from the portal"),
	)
	b.do("a manual intervention answered in place",
		click(chromedp.CSS(`header a[href="#/Spaces-1/projects"]`)),
		click(chromedp.CSS(`tr[data-project="Hello"] a`)),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/process"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-step="0"]`)),
		clickButton("Add a manual intervention"),
		chromedp.SendKeys(chromedp.CSS(`[data-step="1"] textarea[name=instructions]`), "Check the greeting, then proceed."),
		clickButton("Save"),
		waitText(`#status`, "Saved: version"),
		b.shot("process-manual"),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/releases"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create a release"] input`), "1.0.1"),
		click(chromedp.CSS(`form[aria-label="Create a release"] button[type=submit]`)),
		waitText(`#view h2`, "Release 1.0.1"),
		click(chromedp.CSS(`form[aria-label="Deploy this release"] button[type=submit]`)),
		clickButton("Take responsibility"),
		chromedp.WaitVisible(chromedp.CSS(`section.interruption textarea`)),
		chromedp.SendKeys(chromedp.CSS(`section.interruption textarea`), "Looks right."),
		b.shot("interruption"),
		click(chromedp.CSS(`section.interruption button[data-answer="Proceed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.status [data-state="Success"]`)),
		b.shot("deployment-manual"),
	)
	b.do("a guided failure answered in place",
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/process"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-step="1"]`)),
		clickButton("Add a script step"),
		chromedp.SendKeys(chromedp.CSS(`[data-step="2"] textarea[name=scriptBody]`), `echo "this step fails"; exit 3`),
		click(chromedp.CSS(`[data-step="2"] input[name=runOnServer]`)),
		clickButton("Save"),
		waitText(`#status`, "Saved: version"),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/releases"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create a release"] input`), "1.0.2"),
		click(chromedp.CSS(`form[aria-label="Create a release"] button[type=submit]`)),
		waitText(`#view h2`, "Release 1.0.2"),
		choose(`form[aria-label="Deploy this release"] select:not([required])`, "on"),
		click(chromedp.CSS(`form[aria-label="Deploy this release"] button[type=submit]`)),
		clickButton("Take responsibility"),
		click(chromedp.CSS(`section.interruption button[data-answer="Proceed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`section.interruption[data-interruption="GuidedFailure"]`)),
		clickButton("Take responsibility"),
		chromedp.WaitVisible(chromedp.CSS(`section.interruption button[data-answer="Ignore"]`)),
		b.shot("guided-failure"),
		click(chromedp.CSS(`section.interruption button[data-answer="Ignore"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.status [data-state="Success"]`)),
		b.shot("deployment-guided"),
	)
	b.do("the dashboard and the projects",
		click(chromedp.CSS(`header a[href="#/Spaces-1/dashboard"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-project="Hello"] td[data-environment="Staging"] [data-state="Success"]`)),
		waitText(`tr[data-project="Hello"] td[data-environment="Staging"]`, "1.0.2"),
		b.shot("dashboard"),
		click(chromedp.CSS(`header a[href="#/Spaces-1/projects"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-project="Hello"]`)),
		b.shot("projects"),
		click(chromedp.CSS(`tr[data-project="Hello"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-environment="Staging"] [data-state="Success"]`)),
		b.shot("project"),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/channels"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-channel="Default"]`)),
		b.shot("channels"),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/releases"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-release="1.0.2"]`)),
		b.shot("releases"),
	)
	pkg := filepath.Join(t.TempDir(), "hello.1.0.0.zip")
	writeZip(t, pkg)
	b.do("the library",
		click(chromedp.CSS(`header a[href="#/Spaces-1/library/packages"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[aria-label="Upload a package"]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`input[type=file]`), []string{pkg}),
		click(chromedp.CSS(`form[aria-label="Upload a package"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-package="hello"]`)),
		waitText(`form[aria-label="Upload a package"] .percent`, "100%"),
		b.shot("library"),
		click(chromedp.CSS(`tr[data-package="hello"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-version="1.0.0"]`)),
		b.shot("package"),
	)
	// A task's log, followed live on its page.
	tk, err := n.Client.CreateTask(testcluster.Context(t, 10*time.Second), "AdHocScript", map[string]any{
		"ScriptBody": "echo first line; sleep 2; echo second line", "Syntax": "Bash"})
	if err != nil {
		t.Fatal(err)
	}
	b.do("a task's page",
		click(chromedp.CSS(`header a[href="#/Spaces-1/tasks"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-task="`+tk.Id+`"]`)),
		b.shot("tasks"),
		click(chromedp.CSS(`a[href="#/Spaces-1/tasks/`+tk.Id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.log`)),
		waitText(`pre.log`, "second line"), // arrives live, two seconds after the first
		b.shot("task"),
	)
	b.do("the links the official CLI prints, and the older hashes",
		chromedp.Navigate(n.URL+"/app/#/Spaces-1/projects/Projects-1"),
		waitText(`#view h1`, "Hello"),
		chromedp.Navigate(n.URL+"/app/#/Spaces-1/releases/Releases-1"),
		waitText(`#view h2`, "Release 1.0.0"),
		chromedp.Navigate(n.URL+"/app/#/Spaces-1/deployments/Deployments-1"),
		waitText(`#view h2`, "Deploy release 1.0.0 to Staging"),
		chromedp.Navigate(n.URL+"/app/#/tasks/"+tk.Id),
		waitText(`pre.log`, "second line"),
		chromedp.Navigate(n.URL+"/app/#/infrastructure/machines"),
		waitText(`pre.log`, "--environment Staging"),
	)
	b.do("a narrow window, and signing out",
		click(chromedp.CSS(`header a[href="#/Spaces-1/dashboard"]`)),
		chromedp.EmulateViewport(420, 900),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-project="Hello"] td[data-environment="Staging"] [data-state="Success"]`)),
		b.shot("dashboard-narrow"),
		chromedp.EmulateViewport(1100, 900),
		click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
	)
	// bo, a viewer (and no administrator: taken out of that team if the
	// server put them in it), sees the project, and no control they may not
	// use.
	var people []struct{ Id, Username string }
	call(http.MethodGet, "/api/users/all", nil, &people)
	bo := people[slices.IndexFunc(people, func(u struct{ Id, Username string }) bool { return u.Username == "bo" })].Id
	call(http.MethodGet, "/api/teams/"+team["Id"].(string), nil, &team)
	team["MemberUserIds"] = slices.DeleteFunc(team["MemberUserIds"].([]any), func(m any) bool { return m == bo })
	call(http.MethodPut, "/api/teams/"+team["Id"].(string), team, nil)
	b.do("a viewer's pages",
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), "bo"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "bo's password"),
		click(chromedp.CSS(`form.signin button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-project="Hello"] td[data-environment="Staging"] [data-state="Success"]`)),
		click(chromedp.CSS(`header a[href="#/Spaces-1/projects"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-project="Hello"]`)),
		absent(`form[aria-label="Add a project"]`),
		click(chromedp.CSS(`tr[data-project="Hello"] a`)),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/process"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-step="1"] textarea[name=instructions]`)),
		absent(`.toolbar button`, `fieldset:not([disabled]) > [data-step]`),
		click(chromedp.CSS(`nav.tabs a[href$="/deployments/releases"]`)),
		click(chromedp.CSS(`tr[data-release="1.0.1"] a`)),
		waitText(`#view h2`, "Release 1.0.1"),
		absent(`form[aria-label="Deploy this release"]`, `form[aria-label="Create a release"]`),
		b.shot("viewer-release"),
		click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`)),
	)
	b.checkConsole()
}

// browser drives the portal in a tab, capturing screenshots into shots
// and the page's console.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string

	mu      sync.Mutex
	refused []string // exceptions and what the content security policy refused
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.checkConsole()
		b.t.Fatalf("%s: %v", what, err)
	}
}

// within runs actions, failing the test unless they are done within d.
func (b *browser) within(d time.Duration, what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s, within %s: %v", what, d, err)
	}
}

// watchConsole keeps the page's uncaught exceptions and the refusals of
// its content security policy.
func (b *browser) watchConsole() {
	messages := chromedp.Console(b.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.refused = append(b.refused, m.String())
				b.mu.Unlock()
			}
		}
	}()
}

func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.refused {
		b.t.Errorf("the page's console: %s", m)
	}
	b.refused = nil
}

// shot captures the page as name.png, checked not to be blank, and checks
// that every control of the page has a label.
func (b *browser) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		img, err := chromedp.CaptureScreenshot()(ctx, tg)
		if err != nil {
			return err
		}
		path := filepath.Join(b.shots, name+".png")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			return err
		}
		if blank(b.t, img) {
			b.t.Errorf("the screenshot %s is blank", path)
		}
		b.t.Logf("screenshot of %s: %s", name, path)
		unlabelled, err := chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("input, select, textarea"))
			.filter(e => !e.closest("label") && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
			.map(e => e.outerHTML.slice(0, 100))`)(ctx, tg)
		if err != nil {
			return err
		}
		for _, u := range unlabelled {
			b.t.Errorf("a control of the page %s has no label: %s", name, u)
		}
		return nil
	})
}

// clickButton clicks the visible button whose text is text.
func clickButton(text string) chromedp.Action[chromedp.Void] {
	return click(chromedp.Search(`//button[normalize-space()="`+text+`"]`), chromedp.NodeVisible)
}

// click clicks what sel finds, and finds it again when a live refresh
// replaced it between the finding and the click (the page re-renders what
// changed, and a test does not know when).
func click[S chromedp.Selectable](sel S, opts ...chromedp.QueryOption) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		var err error
		for range 10 {
			if _, err = chromedp.Click(sel, opts...)(ctx, tg); err == nil || !strings.Contains(err.Error(), "Could not find node") {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
		return err
	})
}

// choose selects the option whose text is text.
func choose(selector, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := chromedp.WaitVisible(chromedp.CSS(selector))(ctx, tg); err != nil {
			return err
		}
		found, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
			const s = document.querySelector(%q);
			const o = Array.from(s.options).find(o => o.text === %q);
			if (o) { s.value = o.value; s.dispatchEvent(new Event("change")); }
			return !!o;
		})()`, selector, text))(ctx, tg)
		if err == nil && !found {
			err = fmt.Errorf("%s has no option %q", selector, text)
		}
		return err
	})
}

// absent fails when an element matches one of the selectors.
func absent(selectors ...string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, sel := range selectors {
			there, err := chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) !== null`, sel))(ctx, tg)
			if err != nil {
				return err
			}
			if there {
				return fmt.Errorf("the page shows %s", sel)
			}
		}
		return nil
	})
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

// writeZip writes a small zip file at path.
func writeZip(t *testing.T, path string) {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, err := z.Create("hello.sh")
	if err == nil {
		_, err = w.Write([]byte("echo hello\n"))
	}
	if err == nil {
		err = z.Close()
	}
	if err == nil {
		err = os.WriteFile(path, buf.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
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
