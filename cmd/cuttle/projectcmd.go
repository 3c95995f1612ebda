package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
)

// projectCommands: cuttle project list|show|delete|create. create takes the
// group and lifecycle by name or id (default: the Default Project Group and
// the Default Lifecycle).
var projectCommands = docCommands[cuttle.Project]{cmd: "project", noun: "project", ref: "NAME|ID",
	docs:  func(cl *client.Client, _ string) client.Documents[cuttle.Project] { return cl.Projects() },
	label: func(p *cuttle.Project) (string, string) { return p.ID, p.Name },
	table: func(w io.Writer, ps []cuttle.Project) {
		fmt.Fprintln(w, "NAME\tID\tSLUG\tGROUP\tLIFECYCLE\tDISABLED\tDESCRIPTION")
		for _, p := range ps {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%t\t%s\n", p.Name, p.ID, p.Slug, p.ProjectGroupId, p.LifecycleId, p.IsDisabled, dash(p.Description))
		}
	},
	more: []docCommand[cuttle.Project]{{name: "create", args: "NAME", nargs: 1,
		setup: func(c *clientCommand) func(context.Context, client.Documents[cuttle.Project], []string) (cuttle.Project, error) {
			group := c.fs.String("group", cuttle.DefaultProjectGroupName, "the project's group: a name or id")
			lifecycle := c.fs.String("lifecycle", cuttle.DefaultLifecycleName, "the project's lifecycle: a name or id")
			description := describeFlag(c, "project")
			return func(ctx context.Context, docs client.Documents[cuttle.Project], pos []string) (cuttle.Project, error) {
				cl := c.client()
				g, err := cl.ProjectGroups().Find(ctx, *group)
				if err != nil {
					return cuttle.Project{}, err
				}
				l, err := cl.Lifecycles().Find(ctx, *lifecycle)
				if err != nil {
					return cuttle.Project{}, err
				}
				return docs.Create(ctx, cuttle.Project{Name: pos[0], Description: *description, ProjectGroupId: g.ID, LifecycleId: l.ID})
			}
		}}},
}

// projectGroupCommands: cuttle project-group list|show|delete|create.
// Deleting a group that has projects is refused (409).
var projectGroupCommands = docCommands[cuttle.ProjectGroup]{cmd: "project-group", noun: "project group", ref: "NAME|ID",
	docs:  func(cl *client.Client, _ string) client.Documents[cuttle.ProjectGroup] { return cl.ProjectGroups() },
	label: func(g *cuttle.ProjectGroup) (string, string) { return g.ID, g.Name },
	table: func(w io.Writer, gs []cuttle.ProjectGroup) {
		fmt.Fprintln(w, "NAME\tID\tDESCRIPTION")
		for _, g := range gs {
			fmt.Fprintf(w, "%s\t%s\t%s\n", g.Name, g.ID, dash(g.Description))
		}
	},
	more: []docCommand[cuttle.ProjectGroup]{createNamed("project group", func(name, description string) cuttle.ProjectGroup {
		return cuttle.ProjectGroup{Name: name, Description: description}
	})},
}

// lifecycleCommands: cuttle lifecycle list|show|delete|create. create makes
// a lifecycle without phases that keeps every release.
var lifecycleCommands = docCommands[cuttle.Lifecycle]{cmd: "lifecycle", noun: "lifecycle", ref: "NAME|ID",
	docs:  func(cl *client.Client, _ string) client.Documents[cuttle.Lifecycle] { return cl.Lifecycles() },
	label: func(l *cuttle.Lifecycle) (string, string) { return l.ID, l.Name },
	table: func(w io.Writer, ls []cuttle.Lifecycle) {
		fmt.Fprintln(w, "NAME\tID\tPHASES\tDESCRIPTION")
		for _, l := range ls {
			var phases []string
			for _, p := range l.Phases {
				phases = append(phases, p.Name)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", l.Name, l.ID, dash(strings.Join(phases, ", ")), dash(l.Description))
		}
	},
	more: []docCommand[cuttle.Lifecycle]{createNamed("lifecycle", func(name, description string) cuttle.Lifecycle {
		return cuttle.Lifecycle{Name: name, Description: description}
	})},
}

// createNamed is the create NAME [--description D] of a collection whose
// documents need nothing else: doc makes the document to post.
func createNamed[T any](noun string, doc func(name, description string) T) docCommand[T] {
	return docCommand[T]{name: "create", args: "NAME", nargs: 1,
		setup: func(c *clientCommand) func(context.Context, client.Documents[T], []string) (T, error) {
			description := describeFlag(c, noun)
			return func(ctx context.Context, docs client.Documents[T], pos []string) (T, error) {
				return docs.Create(ctx, doc(pos[0], *description))
			}
		}}
}

// describeFlag adds --description (default none) of a noun to c.
func describeFlag(c *clientCommand, noun string) *string {
	return c.fs.String("description", "", "what the "+noun+" is for")
}
