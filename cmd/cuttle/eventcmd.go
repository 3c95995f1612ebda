package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// event is an entry of the audit log as the API answers it.
type event struct {
	Id, Category, UserId, Username, Message, Node, Address string
	RelatedDocumentIds                                     []string
	Occurred                                               time.Time
}

// runEvents: cuttle events [--user U] [--document ID] [--from T] [--to T]
// [--take N]: the audit log, newest first.
func runEvents(args []string, stdout, stderr io.Writer) error {
	ctx, cancel := commandContext()
	defer cancel()
	c := newClientCommand("events", "cuttle events [--user USERNAME|ID] [--document ID] [--from TIME] [--to TIME] [--take N] [flags]", stdout, stderr)
	user := c.fs.String("user", "", "only the changes of this user (a username or id)")
	document := c.fs.String("document", "", "only the changes regarding this document, such as Projects-7")
	from := c.fs.String("from", "", "only changes at or after this time (RFC 3339, such as 2026-12-07T10:00:00Z)")
	to := c.fs.String("to", "", "only changes before this time (RFC 3339)")
	take := c.fs.Int("take", 30, "at most this many events, newest first")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	q := url.Values{"take": {strconv.Itoa(*take)}}
	if *user != "" {
		u, err := c.client().Users().Find(ctx, *user)
		if err != nil {
			return err
		}
		q.Set("users", u.ID)
	}
	for param, v := range map[string]string{"regarding": *document, "from": *from, "to": *to} {
		if v != "" {
			q.Set(param, v)
		}
	}
	var page struct {
		TotalResults int
		Items        []event
	}
	if err := c.client().Do(ctx, http.MethodGet, "/api/events?"+q.Encode(), nil, &page); err != nil {
		return err
	}
	return c.print(page.Items, func(w io.Writer) {
		fmt.Fprintln(w, "OCCURRED\tUSER\tCATEGORY\tDOCUMENTS\tNODE\tMESSAGE")
		for _, e := range page.Items {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", when(&e.Occurred), e.Username, e.Category, dash(strings.Join(e.RelatedDocumentIds, ", ")), dash(e.Node), e.Message)
		}
		if page.TotalResults > len(page.Items) {
			fmt.Fprintf(w, "(%d of %d; --take for more)\n", len(page.Items), page.TotalResults)
		}
	})
}
