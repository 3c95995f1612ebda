package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/variables"
	"sigs.k8s.io/yaml"
)

// runRelease: cuttle release create --project P [--version V] [--channel C] [--notes N].
func runRelease(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageErr("cuttle release create --project P [--version V] [--channel C] [--notes N]")
	}
	ctx, cancel := commandContext()
	defer cancel()
	c := newClientCommand("release create", "cuttle release create --project P [--version V] [--channel C] [--notes N] [flags]", stdout, stderr)
	project := c.fs.String("project", "", "the project: a name, slug or id")
	version := c.fs.String("version", "", "the release's version (default: the next one by the project's versioning template)")
	channel := c.fs.String("channel", "", "the channel: a name or id (default: the project's default channel)")
	notes := c.fs.String("notes", "", "release notes")
	if _, err := c.parse(args[1:], 0); err != nil {
		return err
	}
	if *project == "" {
		return usageErr("--project is required")
	}
	var out struct{ ReleaseId, ReleaseVersion string }
	err := c.client().Do(ctx, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{
		"spaceId": "Spaces-1", "projectName": *project, "releaseVersion": *version, "channelName": *channel, "releaseNotes": *notes,
	}, &out)
	if err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "Release\t%s\nVersion\t%s\n", out.ReleaseId, out.ReleaseVersion)
	})
}

// runDeploy: cuttle deploy --project P --release V --environment E
// [--guided-failure] [--wait]. With --wait it prints the deployment's log
// as it runs, says how to answer when it waits for a person, and exits
// non-zero unless it succeeded.
func runDeploy(args []string, stdout, stderr io.Writer) error {
	ctx, cancel := commandContext()
	defer cancel()
	c := newClientCommand("deploy", "cuttle deploy --project P --release V --environment E [--guided-failure] [--wait] [flags]", stdout, stderr)
	project := c.fs.String("project", "", "the project: a name, slug or id")
	release := c.fs.String("release", "", "the release's version")
	var environments, machines, skip stringList
	c.fs.Var(&environments, "environment", "deploy to this environment: a name or id (repeat for more)")
	c.fs.Var(&machines, "machine", "deploy only to this target: a name or id (repeat for more)")
	c.fs.Var(&skip, "skip", "skip this step (repeat for more)")
	guided := c.fs.Bool("guided-failure", false, "when an action fails, wait for a person's guidance instead of failing (default: the project's, then the environment's)")
	wait := c.fs.Bool("wait", false, "follow the deployment to its end; exit 0 if it succeeded, 1 if it failed, 3 if it was canceled, 4 if it timed out")
	progress := c.fs.String("progress", "auto", "with --wait: live (steps and targets redrawn in place), plain (the log's lines), or auto (live on a terminal)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	live := false
	switch *progress {
	case "live":
		live = true
	case "auto":
		live = isTerminal(c.stdout) && c.output == "table"
	case "plain":
	default:
		return usageErr("--progress must be auto, live or plain")
	}
	if *project == "" || *release == "" || len(environments) == 0 {
		return usageErr("--project, --release and --environment are required")
	}
	body := map[string]any{"spaceId": "Spaces-1", "projectName": *project, "releaseVersion": *release,
		"environmentNames": []string(environments), "specificMachineNames": []string(machines), "skipStepNames": []string(skip)}
	guidedSet := false
	c.fs.Visit(func(f *flag.Flag) { guidedSet = guidedSet || f.Name == "guided-failure" })
	if guidedSet {
		body["useGuidedFailure"] = *guided
	}
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	cl := c.client()
	if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1", body, &out); err != nil {
		return err
	}
	if !*wait {
		return c.print(out, func(w io.Writer) {
			fmt.Fprintln(w, "DEPLOYMENT\tTASK")
			for _, d := range out.DeploymentServerTasks {
				fmt.Fprintf(w, "%s\t%s\n", d.DeploymentId, d.ServerTaskId)
			}
		})
	}
	worst := ""
	for _, d := range out.DeploymentServerTasks {
		fmt.Fprintf(stderr, "deploying: %s (task %s)\n", d.DeploymentId, d.ServerTaskId)
		t, err := c.followDeployment(ctx, cl, d.DeploymentId, d.ServerTaskId, stderr, live)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "%s ended %s%s\n", d.DeploymentId, t.State, suffix(t.ErrorMessage))
		if t.State != "Success" && live {
			fmt.Fprintf(stderr, "its log: cuttle task log %s\n", d.ServerTaskId)
		}
		if endStatus[t.State] > endStatus[worst] {
			worst = t.State
		}
	}
	if worst != "" && worst != "Success" {
		return exitError{code: endStatus[worst], err: fmt.Errorf("a deployment ended %s", worst)}
	}
	return nil
}

// endStatus is deploy --wait's exit status for how a deployment ended;
// with several, the highest.
var endStatus = map[string]int{"Success": 0, "Failed": 1, "Canceled": 3, "TimedOut": 4}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// followDeployment follows a deployment's task to its end and returns
// it: as the log's lines (plain), or as a live view of its steps and
// targets redrawn in place (live). Each time the deployment starts waiting
// for a person it says which interruption and how to answer it.
func (c *clientCommand) followDeployment(ctx context.Context, cl *client.Client, deployment, task string, stderr io.Writer, live bool) (client.Task, error) {
	logOut := c.stdout
	if c.output == "json" {
		logOut = stderr
	}
	ended := make(chan error, 1)
	var (
		mu   sync.Mutex
		note string
	)
	viewCtx, stopView := context.WithCancel(ctx)
	viewDone := make(chan struct{})
	if live {
		go func() {
			defer close(viewDone)
			liveView(viewCtx, cl, task, c.stdout, 500*time.Millisecond, func() string {
				mu.Lock()
				defer mu.Unlock()
				return note
			})
		}()
	} else {
		close(viewDone)
		go func() { ended <- cl.TaskLog(ctx, task, true, logOut) }()
	}
	defer func() { stopView(); <-viewDone }()
	told := map[string]bool{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-ended:
			if err != nil {
				return client.Task{}, err
			}
			return cl.Task(ctx, task)
		case <-ctx.Done():
			return client.Task{}, ctx.Err()
		case <-tick.C:
		}
		if live {
			if t, err := cl.Task(ctx, task); err == nil && t.IsCompleted {
				stopView()
				<-viewDone
				return t, nil
			}
		}
		pending, err := interruptionsOf(ctx, cl, deployment, true)
		if err != nil {
			continue // the next tick asks again
		}
		var waiting []string
		for _, in := range pending {
			what := "--result Proceed|Abort"
			if in.Type == cuttle.InterruptionGuidedFailure {
				what = "--guidance " + strings.Join(offered(in, "Guidance"), "|")
			}
			line := fmt.Sprintf("waiting for a person: %s (%s); answer with: cuttle interruption submit %s %s [--notes N]", in.Title, in.ID, in.ID, what)
			waiting = append(waiting, line)
			if !live && !told[in.ID] {
				told[in.ID] = true
				fmt.Fprintln(stderr, line)
			}
		}
		mu.Lock()
		note = strings.Join(waiting, "\n")
		mu.Unlock()
	}
}

// offered returns the values a form offers for an element.
func offered(in cuttle.Interruption, element string) []string {
	var out []string
	for _, e := range in.Form.Elements {
		if e.Name == element {
			for _, b := range e.Control.Buttons {
				out = append(out, b.Value)
			}
		}
	}
	return out
}

// interruptionsOf lists the interruptions regarding a deployment or task
// ("" for all), pending ones only if pending.
func interruptionsOf(ctx context.Context, cl *client.Client, regarding string, pending bool) ([]cuttle.Interruption, error) {
	q := url.Values{"take": {"1000"}}
	if regarding != "" {
		q.Set("regarding", regarding)
	}
	if pending {
		q.Set("pendingOnly", "true")
	}
	var page struct{ Items []cuttle.Interruption }
	err := cl.Do(ctx, http.MethodGet, "/api/Spaces-1/interruptions?"+q.Encode(), nil, &page)
	return page.Items, err
}

// runInterruption: cuttle interruption list|take|submit.
func runInterruption(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle interruption list|take|submit")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	switch sub {
	case "list":
		c := newClientCommand("interruption list", "cuttle interruption list [--deployment D] [--all] [flags]", stdout, stderr)
		regarding := c.fs.String("deployment", "", "only those of this deployment (or task) id")
		all := c.fs.Bool("all", false, "answered ones too")
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		list, err := interruptionsOf(ctx, c.client(), *regarding, !*all)
		if err != nil {
			return err
		}
		return c.print(list, func(w io.Writer) {
			fmt.Fprintln(w, "ID\tTYPE\tTITLE\tTASK\tPENDING\tRESPONSIBLE\tANSWERS")
			for _, in := range list {
				answers := offered(in, "Result")
				if in.Type == cuttle.InterruptionGuidedFailure {
					answers = offered(in, "Guidance")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\t%s\n", in.ID, in.Type, in.Title, in.TaskId, in.IsPending, dash(in.ResponsibleUserId), strings.Join(answers, "|"))
			}
		})
	case "take":
		c := newClientCommand("interruption take", "cuttle interruption take ID [flags]", stdout, stderr)
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		var u cuttle.User
		if err := c.client().Do(ctx, http.MethodPut, "/api/Spaces-1/interruptions/"+url.PathEscape(pos[0])+"/responsible", nil, &u); err != nil {
			return err
		}
		return c.print(u, func(w io.Writer) { fmt.Fprintf(w, "Responsible\t%s\n", u.Username) })
	case "submit":
		c := newClientCommand("interruption submit", "cuttle interruption submit ID (--result Proceed|Abort | --guidance Retry|Ignore|Exclude|Fail) [--notes N] [flags]", stdout, stderr)
		result := c.fs.String("result", "", "a manual intervention's answer: Proceed or Abort")
		guidance := c.fs.String("guidance", "", "a guided failure's answer: Retry, Ignore, Exclude or Fail")
		notes := c.fs.String("notes", "", "notes for the deployment's log")
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		if (*result == "") == (*guidance == "") {
			return usageErr("give --result or --guidance")
		}
		cl := c.client()
		path := "/api/Spaces-1/interruptions/" + url.PathEscape(pos[0])
		var in cuttle.Interruption
		if err := cl.Do(ctx, http.MethodGet, path, nil, &in); err != nil {
			return err
		}
		if !in.HasResponsibility { // take it first, as a person would
			if err := cl.Do(ctx, http.MethodPut, path+"/responsible", nil, nil); err != nil {
				return err
			}
		}
		if err := cl.Do(ctx, http.MethodPost, path+"/submit", map[string]string{"Result": *result, "Guidance": *guidance, "Notes": *notes}, &in); err != nil {
			return err
		}
		return c.print(in, func(w io.Writer) {
			fmt.Fprintf(w, "Interruption\t%s\nAnswer\t%s%s\n", in.ID, in.Form.Values["Result"], in.Form.Values["Guidance"])
		})
	default:
		return usageErr("unknown interruption command %q: use list, take or submit", sub)
	}
}

// runVariable: cuttle variable list|set|delete --project P. A sensitive
// value is read from standard input, never from the command line (where
// other users and shell histories see it).
func runVariable(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle variable list|set|delete --project P")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	c := newClientCommand("variable "+sub, "cuttle variable "+sub+" --project P [NAME [VALUE]] [flags]", stdout, stderr)
	project := c.fs.String("project", "", "the project: a name, slug or id")
	sensitive := c.fs.Bool("sensitive", false, "set: the value is sensitive; it is read from standard input")
	var environments stringList
	c.fs.Var(&environments, "environment", "set: scope the value to this environment id (repeat for more)")
	want := map[string]int{"list": 0, "delete": 1, "set": -1}[sub]
	if _, ok := map[string]bool{"list": true, "set": true, "delete": true}[sub]; !ok {
		return usageErr("unknown variable command %q: use list, set or delete", sub)
	}
	pos, err := c.parse(args, want)
	if err != nil {
		return err
	}
	if *project == "" {
		return usageErr("--project is required")
	}
	cl := c.client()
	path := "/api/Spaces-1/projects/" + url.PathEscape(*project) + "/variables"
	var set struct {
		Version   int
		Variables []variables.Variable
	}
	if err := cl.Do(ctx, http.MethodGet, path, nil, &set); err != nil {
		return err
	}
	switch sub {
	case "list":
		return c.print(set.Variables, func(w io.Writer) {
			fmt.Fprintln(w, "NAME\tVALUE\tSCOPE")
			for _, v := range set.Variables {
				value := "********"
				if !v.Sensitive() && v.Value != nil {
					value = *v.Value
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", v.Name, value, dash(strings.Join(v.Scope.Environment, ",")))
			}
		})
	case "set":
		if len(pos) < 1 || (!*sensitive && len(pos) != 2) || (*sensitive && len(pos) != 1) {
			return usageErr("cuttle variable set --project P NAME VALUE, or NAME --sensitive with the value on standard input")
		}
		value := ""
		if *sensitive {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			value = strings.TrimRight(line, "\r\n")
		} else {
			value = pos[1]
		}
		v := variables.Variable{Name: pos[0], Value: &value, Scope: variables.Scope{Environment: environments}}
		if *sensitive {
			v.Type = "Sensitive"
		}
		kept := set.Variables[:0]
		for _, old := range set.Variables {
			if !strings.EqualFold(old.Name, v.Name) || fmt.Sprint(old.Scope.Environment) != fmt.Sprint(v.Scope.Environment) {
				kept = append(kept, old)
			}
		}
		set.Variables = append(kept, v)
	case "delete":
		kept := set.Variables[:0]
		for _, old := range set.Variables {
			if !strings.EqualFold(old.Name, pos[0]) {
				kept = append(kept, old)
			}
		}
		if len(kept) == len(set.Variables) {
			return fmt.Errorf("the project has no variable %q", pos[0])
		}
		set.Variables = kept
	}
	if err := cl.Do(ctx, http.MethodPut, path, set, &set); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "the project's variables are at version %d\n", set.Version)
	return nil
}

// runProcess: cuttle process show --project P | edit --project P --file F.
// edit takes the process as JSON (as show --output json prints it), or as
// YAML in a file named .yaml or .yml; its
// Version must be the stored one, so that an edit never overwrites
// another's made meanwhile (409).
func runProcess(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("cuttle process show|edit --project P")
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	c := newClientCommand("process "+sub, "cuttle process "+sub+" --project P [--file F] [flags]", stdout, stderr)
	project := c.fs.String("project", "", "the project: a name, slug or id")
	file := c.fs.String("file", "", "edit: the process as JSON, or YAML in a .yaml or .yml file (- for JSON on standard input)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *project == "" {
		return usageErr("--project is required")
	}
	path := "/api/Spaces-1/projects/" + url.PathEscape(*project) + "/deploymentprocesses"
	var p cuttle.DeploymentProcess
	switch sub {
	case "show":
		if err := c.client().Do(ctx, http.MethodGet, path, nil, &p); err != nil {
			return err
		}
	case "edit":
		if *file == "" {
			return usageErr("--file is required")
		}
		var raw []byte
		var err error
		if *file == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(*file)
		}
		if err != nil {
			return err
		}
		if ext := strings.ToLower(filepath.Ext(*file)); ext == ".yaml" || ext == ".yml" {
			if raw, err = yaml.YAMLToJSON(raw); err != nil {
				return fmt.Errorf("%s is not a process in YAML: %v", *file, err)
			}
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(raw, &body); err != nil {
			return fmt.Errorf("%s is not a process in JSON (or YAML, named .yaml or .yml): %v", *file, err)
		}
		if _, ok := body["Version"]; !ok {
			return usageErr("the file has no Version: start from `cuttle process show --output json`, which has it")
		}
		if err := c.client().Do(ctx, http.MethodPut, path, body, &p); err != nil {
			return err
		}
	default:
		return usageErr("unknown process command %q: use show or edit", sub)
	}
	return c.print(p, func(w io.Writer) {
		fmt.Fprintf(w, "Process\t%s (version %d)\n", p.ID, p.Version)
		for i, s := range p.Steps {
			for j, a := range s.Actions {
				where := "targets " + dash(cuttle.Prop(s.Properties, cuttle.PropTargetRoles))
				if a.RunsOnServer() {
					where = "the server"
				}
				step := fmt.Sprintf("%d. %s", i+1, s.Name)
				if j > 0 {
					step = ""
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", step, a.Name, a.ActionType, where)
			}
		}
	})
}
