package api

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// The audit log: every change a person or a key makes through the API
// (a write that succeeded) becomes an event, written by the node that
// served it right after the change, in a unit of work of its own. A node
// that dies between the two loses the event (the change stands).

// audited reports whether requests of method change something.
func audited(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// recorder keeps a response's status and the start of its body (where a
// created document's Id is).
type recorder struct {
	http.ResponseWriter
	status int
	head   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if room := 4096 - r.head.Len(); room > 0 {
		r.head.Write(b[:min(room, len(b))])
	}
	return r.ResponseWriter.Write(b)
}

// Flush passes a flush on (followed logs stream).
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var (
	// documentID is an id in a path or an answer: Projects-7, ServerTasks-12.
	documentID = regexp.MustCompile(`^[A-Za-z]+-\d+$`)
	answerID   = regexp.MustCompile(`"Id":"([A-Za-z]+-\d+)"`)
)

// audit records the event of a write that succeeded.
func (s *Server) audit(r *http.Request, rec *recorder) {
	if rec.status >= 400 {
		return
	}
	who := me(r)
	category := map[string]string{http.MethodPost: "Created", http.MethodPut: "Modified", http.MethodDelete: "Deleted"}[r.Method]
	if category == "" {
		category = r.Method
	}
	related := []string{}
	for _, part := range bytes.Split([]byte(r.URL.Path), []byte("/")) {
		if documentID.Match(part) && string(part) != DefaultSpaceID {
			related = append(related, string(part))
		}
	}
	if m := answerID.FindSubmatch(rec.head.Bytes()); m != nil && !slices.Contains(related, string(m[1])) {
		related = append(related, string(m[1]))
	}
	s.recordEvent(r, cuttle.Event{Category: category, UserId: who.ID, Username: who.Username, RelatedDocumentIds: related,
		Message: fmt.Sprintf("%s %s %s (%d)", who.Username, r.Method, r.URL.Path, rec.status)})
}

// recordEvent stores an event, stamped with the time, the node and the
// client's address; a failure is logged.
func (s *Server) recordEvent(r *http.Request, e cuttle.Event) {
	e.SpaceID, e.Occurred = DefaultSpaceID, time.Now().UTC()
	if st := s.member.State(); st != nil {
		e.Node = st.Node.Name
	}
	e.Address, _, _ = net.SplitHostPort(r.RemoteAddr)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.store.Update(ctx, func(tx *collection.Tx) error { return resources.Events.Insert(ctx, tx, &e) }); err != nil {
		s.log.Warn("an event of the audit log could not be stored", "event", e.Message, "err", err)
	}
}

func (s *Server) eventRoutes() {
	s.links["Events"] = "/api/events{/id}{?skip,take,users,regarding,from,to}"
	for _, p := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+p+"/events", can("EventView"), s.handleEventList)
		s.handle("GET "+p+"/events/{id}", can("EventView"), s.handleEventGet)
	}
}

// handleEventList lists events, newest first: users (a user id),
// regarding (a document id), from and to (RFC 3339 times, to excluded).
func (s *Server) handleEventList(w http.ResponseWriter, r *http.Request) error {
	skip, take, err := pageParams(r)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	q := collection.Query{Space: DefaultSpaceID, Skip: skip, Take: max(take, 1), Where: map[string]any{}, AtLeast: map[string]int64{}, Below: map[string]int64{}}
	if u := v.Get("users"); u != "" {
		q.Where["user_id"] = u
	}
	if d := v.Get("regarding"); d != "" {
		q.Where["related"] = d
	}
	for _, b := range []struct {
		param string
		into  map[string]int64
	}{{"from", q.AtLeast}, {"to", q.Below}} {
		if t := v.Get(b.param); t != "" {
			at, err := time.Parse(time.RFC3339, t)
			if err != nil {
				return cuttle.Errorf(cuttle.KindInvalid, "%s must be a time such as 2026-12-07T10:00:00Z, not %.40q.", b.param, t)
			}
			b.into["occurred"] = at.UnixMilli()
		}
	}
	var (
		items []cuttle.Event
		total int
	)
	err = s.store.Read(r.Context(), func(tx *collection.Tx) error {
		items, total, err = resources.Events.List(r.Context(), tx, q)
		return err
	})
	if err != nil {
		return err
	}
	if take == 0 {
		items = nil
	}
	for i := range items {
		items[i].Links = map[string]string{"Self": "/api/events/" + items[i].ID}
	}
	if items == nil {
		items = []cuttle.Event{}
	}
	writeJSON(w, http.StatusOK, newPage("Event", "/api/events", items, total, skip, take))
	return nil
}

func (s *Server) handleEventGet(w http.ResponseWriter, r *http.Request) error {
	var e cuttle.Event
	err := s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		e, err = resources.Events.Get(r.Context(), tx, r.PathValue("id"))
		return err
	})
	if err != nil {
		return err
	}
	e.Links = map[string]string{"Self": "/api/events/" + e.ID}
	writeJSON(w, http.StatusOK, e)
	return nil
}
