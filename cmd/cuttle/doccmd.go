package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/cuttledeploy/cuttle/client"
)

// docCommands are the commands of one document collection: list, show and
// delete, which every collection has, and the collection's own (create,
// ...). Each prints the documents it reads or writes as a table, or with
// --output json as the API answered them.
type docCommands[T any] struct {
	cmd  string // the command, such as "project-group"
	noun string // a document, in messages, such as "project group"
	ref  string // how an argument names a document, such as "NAME|ID"
	// docs returns the collection; userID is the user --user names, for
	// the collections of a user (ofUser).
	docs func(cl *client.Client, userID string) client.Documents[T]
	// ofUser marks the collections of one user (API keys): each command
	// takes --user, a username or id, default me (the caller).
	ofUser bool
	// label returns a document's id and name, for delete's report.
	label func(doc *T) (id, name string)
	table func(w io.Writer, docs []T)
	more  []docCommand[T]
}

// docCommand is a command of a collection besides list, show and delete.
type docCommand[T any] struct {
	name, args string // such as "create" and "NAME"
	nargs      int    // how many positional arguments it takes
	// setup adds the command's flags to c and returns what runs it once
	// they are parsed: it returns the document to print.
	setup func(c *clientCommand) func(ctx context.Context, docs client.Documents[T], pos []string) (T, error)
}

func (f docCommands[T]) run(args []string, stdout, stderr io.Writer) error {
	subs := []string{"list", "show", "delete"}
	for _, m := range f.more {
		subs = append(subs, m.name)
	}
	if len(args) == 0 {
		return usageErr("cuttle %s %s", f.cmd, strings.Join(subs, "|"))
	}
	ctx, cancel := commandContext()
	defer cancel()
	sub, args := args[0], args[1:]
	user := ""
	command := func(synopsis string) *clientCommand {
		c := newClientCommand(f.cmd+" "+sub, "cuttle "+f.cmd+" "+sub+synopsis+" [flags]", stdout, stderr)
		if f.ofUser {
			c.fs.StringVar(&user, "user", "me", "the user whose "+f.noun+"s these are: a username or id (me: the caller)")
		}
		return c
	}
	collection := func(c *clientCommand) (client.Documents[T], error) {
		cl := c.client()
		if !f.ofUser || strings.EqualFold(user, "me") {
			return f.docs(cl, user), nil
		}
		u, err := cl.Users().Find(ctx, user)
		return f.docs(cl, u.ID), err
	}
	switch sub {
	case "list":
		c := command("")
		if _, err := c.parse(args, 0); err != nil {
			return err
		}
		docs, err := collection(c)
		if err != nil {
			return err
		}
		all, err := docs.List(ctx)
		if err != nil {
			return err
		}
		return c.print(all, func(w io.Writer) { f.table(w, all) })
	case "show", "delete":
		c := command(" " + f.ref)
		pos, err := c.parse(args, 1)
		if err != nil {
			return err
		}
		docs, err := collection(c)
		if err != nil {
			return err
		}
		doc, err := docs.Find(ctx, pos[0])
		if err != nil {
			return err
		}
		if sub == "show" {
			return c.print(doc, func(w io.Writer) { f.table(w, []T{doc}) })
		}
		id, name := f.label(&doc)
		if err := docs.Delete(ctx, id); err != nil {
			return err
		}
		return c.print(map[string]string{"Deleted": id, "Name": name}, func(w io.Writer) {
			fmt.Fprintf(w, "deleted %s %s (%s)\n", f.noun, name, id)
		})
	}
	for _, m := range f.more {
		if m.name != sub {
			continue
		}
		c := command(" " + m.args)
		runCmd := m.setup(c)
		pos, err := c.parse(args, m.nargs)
		if err != nil {
			return err
		}
		docs, err := collection(c)
		if err != nil {
			return err
		}
		doc, err := runCmd(ctx, docs, pos)
		if err != nil {
			return err
		}
		return c.print(doc, func(w io.Writer) { f.table(w, []T{doc}) })
	}
	return usageErr("unknown %s command %q: use %s", f.cmd, sub, strings.Join(subs, ", "))
}
