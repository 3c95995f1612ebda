package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// The portal's tests of a cluster start nodes on the shared PostgreSQL.
func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

// TestPortalOnAClusterBehindHAProxy: a real headless Chromium drives the
// portal of three node processes (one PostgreSQL, one shared storage)
// through a real HAProxy that balances every request round-robin, with no
// stickiness, so that each page's requests, its event stream and its
// writes land on different nodes. A person who is an administrator signs
// in through the sign-in page; adds an environment, and a project whose
// process (made in the process editor) has a rolling step (a script on the
// targets of a role, one target at a time) and a manual intervention;
// adds a target by running the commands the "Add a target" page shows (the
// cluster's thumbprint, the balancer's URL) with the real cuttle binary,
// and sees it Healthy; creates a release and deploys it, sees the
// script's line arrive in the deployment's log on the page (the page is
// never reloaded), answers the manual intervention in place and sees the
// deployment succeed; then drains a node with its toggle on the Nodes
// page: its ping answers 418 and the Nodes page served by each of the
// three nodes (the same session: cookies are per host, not per port)
// shows it drained. Each page is captured, checked not to be blank, and
// written where the log says.
func TestPortalOnAClusterBehindHAProxy(t *testing.T) {
	t.Parallel()
	p := startClusterPortal(t)
	b := &browser{t: t, ctx: p.ctx}
	b.watchConsole()
	p.failed = b.checkConsole
	var err error
	if b.shots, err = os.MkdirTemp("", "cuttle-portal-cluster-screenshots-"); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots go to %s", b.shots)

	p.run("signing in through the balancer", p.signIn(b.shot("cluster-signin"))...)
	p.run("adding an environment", p.addEnvironment("Production")...)
	b.do("capturing the environments", b.shot("cluster-environments"))
	script := `echo "starting on $(hostname)"; sleep 3; echo "hello from $(hostname)"`
	p.run("adding a project with a rolling step and a manual intervention",
		p.addProject("Shop", script, "Check the shop, then proceed.", b.shot("cluster-process"))...)
	var process struct {
		Steps []struct {
			Name       string
			Properties map[string]string
			Actions    []struct{ ActionType string }
		}
	}
	var projects []struct{ Id, Name string }
	p.call(http.MethodGet, "/api/Spaces-1/projects/all", nil, &projects)
	if len(projects) != 1 || projects[0].Name != "Shop" {
		t.Fatalf("the projects are %+v; want Shop alone", projects)
	}
	p.call(http.MethodGet, "/api/Spaces-1/projects/"+projects[0].Id+"/deploymentprocesses", nil, &process)
	if len(process.Steps) != 2 || process.Steps[0].Properties["Octopus.Action.TargetRoles"] != "web" ||
		process.Steps[0].Properties["Octopus.Action.MaxParallelism"] != "1" || process.Steps[1].Actions[0].ActionType != "Octopus.Manual" {
		t.Fatalf("the process saved through the portal is not a rolling step (role web, window 1) and a manual intervention: %+v", process)
	}

	agent := p.addTarget(b.shot("cluster-targets"))
	host := agent.Config.Name

	p.run("creating a release", p.createRelease("Shop", "1.0.0", b.shot("cluster-release"))...)
	target := fmt.Sprintf(`li[data-activity=%q]`, host)
	var early bool
	p.run("deploying it and watching its log live",
		chromedp.Click(chromedp.CSS(`form[aria-label="Deploy this release"] button[type=submit]`)),
		waitText(`#view h2`, "Deploy release 1.0.0 to Production"),
		// A mark that a reload would lose.
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			early, err = chromedp.Evaluate[bool](`window.cuttleSameDocument = true; document.getElementById("view").textContent.includes("hello from")`)(ctx, tg)
			return err
		}),
		chromedp.WaitVisible(chromedp.CSS(target+` > details > summary`)),
		chromedp.Click(chromedp.CSS(target+` > details > summary`)),
		waitText(target+` > details pre.log`, "hello from "+host),
		b.shot("cluster-deployment-log"),
	)
	if early {
		t.Errorf("the script's line was on the deployment's page when it first showed: its arrival was not seen live")
	}
	same, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`window.cuttleSameDocument === true`))
	if err != nil || !same {
		t.Errorf("the page was reloaded while its log grew (%v)", err)
	}
	p.run("answering the manual intervention in place",
		clickButton("Take responsibility"),
		chromedp.WaitVisible(chromedp.CSS(`section.interruption textarea`)),
		chromedp.SendKeys(chromedp.CSS(`section.interruption textarea`), "The shop looks right."),
		b.shot("cluster-interruption"),
		chromedp.Click(chromedp.CSS(`section.interruption button[data-answer="Proceed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.status [data-state="Success"]`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-activity="Run a script"] > [data-state="Success"]`)),
		b.shot("cluster-deployment-success"),
	)

	// Drain node-b through the balancer.
	drained := p.c.Nodes[1]
	toggle := func(n *testcluster.Node) string { return fmt.Sprintf(`input[aria-label="Drain %s"]`, n.Config.Name) }
	p.run("draining a node from the Nodes page",
		chromedp.Click(chromedp.CSS(`header a[href="#/configuration/nodes"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-node="node-c"]`)),
		b.shot("cluster-nodes"),
		chromedp.Click(chromedp.CSS(toggle(drained))),
	)
	if err := drained.WaitPing(60*time.Second, http.StatusTeapot); err != nil {
		t.Fatalf("after the drain toggle: %v", err)
	}
	for _, n := range p.c.Nodes {
		p.run("the Nodes page served by "+n.Config.Name,
			chromedp.Navigate(n.URL+"/app/#/configuration/nodes"),
			chromedp.WaitVisible(chromedp.CSS(toggle(drained)+`:checked`)),
			b.shot("cluster-nodes-on-"+n.Config.Name),
		)
		others := []string{}
		for _, o := range p.c.Nodes {
			if o != drained {
				others = append(others, toggle(o)+`:checked`)
			}
		}
		b.do("the other nodes' toggles on "+n.Config.Name, absent(others...))
	}
	b.checkConsole()
}

// stepTimeout bounds each step of a person in the browser: generous, for
// a busy machine of two cores running three nodes, PostgreSQL, HAProxy,
// an agent and Chromium.
const stepTimeout = 90 * time.Second

// clusterPortal is three nodes (node-a, node-b, node-c: each runs up to
// five tasks; the leader checks the health of new targets every two
// seconds) behind HAProxy, a person who is an administrator, and a
// headless Chromium's tab, which talks to the balancer.
type clusterPortal struct {
	tb     testing.TB
	c      *testcluster.Cluster
	lb     *testcluster.Balanced
	ctx    context.Context // the browser's tab
	failed func()          // called before a step's failure ends the test
}

// The administrator who signs in.
const (
	adminName     = "ana"
	adminPassword = "portal password on a cluster"
)

// startClusterPortal starts the cluster, the balancer (with options added
// to its defaults, if any: testcluster.StartBalancedWith) and the
// browser, and creates the administrator through the API.
func startClusterPortal(tb testing.TB, haproxyOptions ...string) *clusterPortal {
	tb.Helper()
	if _, err := os.Stat(chromium); err != nil {
		tb.Fatalf("Chromium is missing (%v): run scripts/test, which installs Debian's chromium", err)
	}
	c := testcluster.StartFastCluster(tb, map[string]time.Duration{"HealthCheckIntervalSeconds": 2 * time.Second}, 5, 5, 5)
	var lb *testcluster.Balanced
	if len(haproxyOptions) > 0 {
		lb = testcluster.StartBalancedWith(tb, haproxyOptions, c.Nodes...)
	} else {
		lb = testcluster.StartBalanced(tb, c.Nodes...)
	}
	if _, err := testcluster.NewAdministrator(testcluster.Context(tb, 30*time.Second), c.Nodes[0], adminName, adminPassword); err != nil {
		tb.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Headless, chromedp.WindowSize(1100, 900))
	actx, cancel := chromedp.NewExecAllocator(testcluster.Context(tb, 15*time.Minute), opts...)
	tb.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(cancel)
	// The first run starts the browser, which lives as long as the context
	// of that run: this one, not a step's.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		tb.Fatalf("starting Chromium: %v", err)
	}
	return &clusterPortal{tb: tb, c: c, lb: lb, ctx: ctx}
}

// run runs a person's actions within stepTimeout, failing the test with
// what was being done.
func (p *clusterPortal) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	for i, a := range actions {
		if err := chromedp.Do(ctx, a); err != nil {
			if p.failed != nil {
				p.failed()
			}
			p.tb.Fatalf("%s: action %d of %d: %v\n%s", what, i+1, len(actions), err, p.state())
		}
	}
}

// state describes what the page shows: its address, its messages and
// the text of its view.
func (p *clusterPortal) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[location.href, "message: " + document.getElementById("message").textContent,
		"status: " + document.getElementById("status").textContent,
		"inputs: " + Array.from(document.querySelectorAll("#view input, #view textarea")).map(i => (i.name || i.type) + "=" + (i.type === "checkbox" ? i.checked : i.value)).join(", "),
		document.getElementById("view").innerText.slice(0, 3000)].join("\n")`))
	if err != nil {
		return fmt.Sprintf("(what the page shows cannot be read: %v)", err)
	}
	return "the page shows:\n" + s
}

// call calls the API of the first node with the cluster's admin key.
func (p *clusterPortal) call(method, path string, in, out any) {
	p.tb.Helper()
	if err := p.c.Nodes[0].Client.Do(testcluster.Context(p.tb, 30*time.Second), method, path, in, out); err != nil {
		p.tb.Fatalf("%s %s: %v", method, path, err)
	}
}

// signIn: the balancer's / leads to the sign-in page; the administrator
// signs in and sees the dashboard. then runs on the sign-in page.
func (p *clusterPortal) signIn(then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
	return append(append([]chromedp.Action[chromedp.Void]{
		chromedp.Navigate(p.lb.URL + "/"),
		chromedp.WaitVisible(chromedp.CSS(`form.signin`))}, then...),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), adminName),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), adminPassword),
		chromedp.Click(chromedp.CSS(`form.signin button[type=submit]`)),
		waitText(`#view h1`, "Dashboard"),
	)
}

// addEnvironment adds an environment on the Environments page.
func (p *clusterPortal) addEnvironment(name string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`header a[href="#/Spaces-1/infrastructure/environments"]`)),
		// The list's first rendering moves the form below it: a click
		// before it could miss the button.
		chromedp.WaitVisible(chromedp.CSS(`#view table tbody tr`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add an environment"] input[type=text]`), name),
		chromedp.Click(chromedp.CSS(`form[aria-label="Add an environment"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-environment=%q]`, name))),
	}
}

// addProject adds a project whose process, made in the process editor,
// is a rolling step "Run a script": script on the targets of the role
// web, one at a time; and, unless instructions is empty, a manual
// intervention with them. then runs once the process is saved.
func (p *clusterPortal) addProject(name, script, instructions string, then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
	actions := []chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`header a[href="#/Spaces-1/projects"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#view table tbody tr`)), // as for an environment
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Add a project"] input[type=text]`), name),
		chromedp.Click(chromedp.CSS(`form[aria-label="Add a project"] button[type=submit]`)),
		waitText(`#view`, "No steps yet"),
		clickButton("Add a script step"),
		chromedp.WaitVisible(chromedp.CSS(`[data-step="0"] textarea[name=scriptBody]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-step="0"] input[name=targetRoles]`), "web"),
		chromedp.SendKeys(chromedp.CSS(`[data-step="0"] input[name=window]`), "1"),
		chromedp.SendKeys(chromedp.CSS(`[data-step="0"] textarea[name=scriptBody]`), script),
	}
	if instructions != "" {
		actions = append(actions,
			clickButton("Add a manual intervention"),
			chromedp.SendKeys(chromedp.CSS(`[data-step="1"] textarea[name=instructions]`), instructions))
	}
	return append(append(actions, clickButton("Save"), waitText(`#status`, "Saved: version")), then...)
}

// addTarget opens the Deployment targets page and runs the commands its
// "Add a target" shows, with the real cuttle binary: the API key is the
// cluster's admin key (the page shows a placeholder), and the agent polls
// node-a's polling port (the page's commands poll the host of the
// balancer's URL on the default port; this balancer balances HTTP only).
// It waits until the page shows the target Healthy, then runs then.
func (p *clusterPortal) addTarget(then ...chromedp.Action[chromedp.Void]) *testcluster.Agent {
	p.tb.Helper()
	var commands string
	p.run("reading the commands that add a target",
		chromedp.Click(chromedp.CSS(`header a[href="#/Spaces-1/infrastructure/environments"]`)),
		chromedp.Click(chromedp.CSS(`nav.tabs a[href="#/Spaces-1/infrastructure/machines"]`)),
		waitText(`pre.log`, "--server-thumbprint"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			var err error
			commands, err = chromedp.TextContent(chromedp.CSS(`pre.log`))(ctx, tg)
			return err
		}),
	)
	var cluster struct{ CertificateThumbprint string }
	p.call(http.MethodGet, "/api/cluster", nil, &cluster)
	for _, want := range []string{"--server " + p.lb.URL + " ", "--server-thumbprint " + cluster.CertificateThumbprint, "API-..."} {
		if cluster.CertificateThumbprint == "" || !strings.Contains(commands, want) {
			p.tb.Fatalf("the page's commands lack %q:\n%s", want, commands)
		}
	}
	p.tb.Logf("the page's commands:\n%s", commands)
	agent := testcluster.AgentFromCommands(p.tb, strings.ReplaceAll(commands, "API-...", p.c.AdminKey),
		"CUTTLE_ADDRESS=127.0.0.1:"+strconv.Itoa(p.c.Nodes[0].PollingPort))
	p.run("waiting for the target to be healthy", append([]chromedp.Action[chromedp.Void]{
		waitText(fmt.Sprintf(`tr[data-machine=%q] td[data-label="Health"]`, agent.Config.Name), "Healthy"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-machine=%q]`, agent.Config.Name)))}, then...)...)
	return agent
}

// createRelease creates a release of the project from its Releases page,
// and shows it; then runs on the release's page.
func (p *clusterPortal) createRelease(project, version string, then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
	return append([]chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`header a[href="#/Spaces-1/projects"]`)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-project=%q] a`, project))),
		chromedp.Click(chromedp.CSS(`nav.tabs a[href$="/deployments/releases"]`)),
		chromedp.SendKeys(chromedp.CSS(`form[aria-label="Create a release"] input`), version),
		chromedp.Click(chromedp.CSS(`form[aria-label="Create a release"] button[type=submit]`)),
		waitText(`#view h2`, "Release "+version),
		chromedp.WaitVisible(chromedp.CSS(`form[aria-label="Deploy this release"] button[type=submit]`)),
	}, then...)
}
