package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle/client"
)

// activity is an element of a task's activity tree, as the details route
// answers it (a deployment's steps, their targets, each target's actions).
type activity struct {
	Name     string
	Status   string
	Started  *time.Time
	Ended    *time.Time
	Children []activity
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// statusMark is the mark of an activity's status in the live view.
func statusMark(status string) string {
	switch status {
	case "Success":
		return "✓"
	case "Failed":
		return "✗"
	case "Running":
		return "▶"
	case "Skipped":
		return "-"
	default:
		return "·"
	}
}

// renderActivity writes the steps of a deployment and their targets, one
// line each, with their status and how long they took (or have run, as
// of now); it returns how many lines it wrote.
func renderActivity(w io.Writer, steps []activity, now time.Time) int {
	lines := 0
	took := func(a activity) string {
		if a.Started == nil {
			return ""
		}
		end := now
		if a.Ended != nil {
			end = *a.Ended
		}
		return end.Sub(*a.Started).Round(100 * time.Millisecond).String()
	}
	for _, s := range steps {
		fmt.Fprintf(w, "  %s %-30s %-8s %s\n", statusMark(s.Status), s.Name, s.Status, took(s))
		lines++
		if len(s.Children) == 1 && s.Children[0].Name == "the server" {
			continue // a step on the server: its one target says nothing more
		}
		for _, t := range s.Children {
			fmt.Fprintf(w, "      %s %-26s %-8s %s\n", statusMark(t.Status), t.Name, t.Status, took(t))
			lines++
		}
	}
	return lines
}

// liveView redraws a deployment's steps and targets on a terminal every
// interval until ctx ends; it leaves the last view on the screen. note
// returns a line to show under the tree (how to answer an interruption),
// or "".
func liveView(ctx context.Context, cl *client.Client, task string, w io.Writer, interval time.Duration, note func() string) {
	drawn := 0
	draw := func(ctx context.Context) {
		var details struct {
			Task         client.Task
			ActivityLogs []activity
		}
		if err := cl.Do(ctx, http.MethodGet, "/api/tasks/"+url.PathEscape(task)+"/details?tail=0", nil, &details); err != nil {
			return // the next tick asks again
		}
		var b strings.Builder
		if drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA\x1b[J", drawn) // up over the last view, and clear it
		}
		fmt.Fprintf(&b, "%s: %s %s\n", task, details.Task.Description, details.Task.State)
		n := 1
		if len(details.ActivityLogs) == 1 {
			n += renderActivity(&b, details.ActivityLogs[0].Children, time.Now())
		}
		if lines := note(); lines != "" && !details.Task.IsCompleted {
			fmt.Fprintln(&b, lines)
			n += strings.Count(lines, "\n") + 1
		}
		io.WriteString(w, b.String())
		drawn = n
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		draw(ctx)
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			draw(last)
			return
		case <-tick.C:
		}
	}
}
