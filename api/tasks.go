package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/deploy"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// taskResource is the ServerTask resource.
type taskResource struct {
	Id                         string
	SpaceId                    string
	Name                       string
	Description                string
	Arguments                  json.RawMessage
	State                      cuttle.TaskState
	Completed                  string `json:",omitempty"`
	QueueTime                  *time.Time
	QueueTimeExpiry            *time.Time
	StartTime                  *time.Time
	CompletedTime              *time.Time
	LastUpdatedTime            *time.Time
	ServerNode                 string
	ErrorMessage               string
	Duration                   string
	IsCompleted                bool
	FinishedSuccessfully       bool
	HasPendingInterruptions    bool
	HasWarningsOrErrors        bool
	CanRerun                   bool
	HasBeenPickedUpByProcessor bool
	Links                      map[string]string
}

// taskCreateBody is what POST /api/tasks accepts: Name, Arguments, and
// optionally Description, SpaceId and QueueTimeExpiry. The other resource
// fields are accepted so that a client may send a whole resource, and ignored.
type taskCreateBody struct {
	Name            string
	Description     string
	Arguments       json.RawMessage
	SpaceId         string
	QueueTimeExpiry *time.Time

	Id, State, Completed, ServerNode, ErrorMessage, Duration, LastModifiedBy *string
	QueueTime, StartTime, CompletedTime, LastUpdatedTime, LastModifiedOn     json.RawMessage
	IsCompleted, FinishedSuccessfully, HasPendingInterruptions               *bool
	HasWarningsOrErrors, CanRerun, HasBeenPickedUpByProcessor                *bool
	Links                                                                    map[string]string
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func toTaskResource(t cuttle.Task) taskResource {
	id := cuttle.FormatID(cuttle.TaskIDPrefix, t.ID)
	res := taskResource{
		Id: id, SpaceId: t.SpaceID, Name: t.Name, Description: t.Description, Arguments: t.Arguments, State: t.Shown(),
		QueueTime: timePtr(t.QueueTime), QueueTimeExpiry: timePtr(t.QueueTimeExpiry), StartTime: timePtr(t.StartTime),
		CompletedTime: timePtr(t.CompletedTime), LastUpdatedTime: timePtr(t.LastUpdatedTime), ServerNode: t.ServerNode,
		ErrorMessage: t.ErrorMessage, IsCompleted: t.State.Completed(), FinishedSuccessfully: t.State == cuttle.TaskSuccess,
		HasWarningsOrErrors: t.HasWarningsOrErrors, HasBeenPickedUpByProcessor: !t.StartTime.IsZero(), HasPendingInterruptions: t.Parked,
		Links: map[string]string{
			"Self":    "/api/tasks/" + id,
			"Details": "/api/tasks/" + id + "/details{?verbose,tail}",
			"Raw":     "/api/tasks/" + id + "/raw",
			"Cancel":  "/api/tasks/" + id + "/cancel",
		},
	}
	if len(res.Arguments) == 0 {
		res.Arguments = json.RawMessage(`{}`)
	}
	if !t.StartTime.IsZero() {
		end := t.CompletedTime
		if end.IsZero() {
			end = t.LastUpdatedTime
		}
		res.Duration = humanDuration(end.Sub(t.StartTime))
	}
	if res.IsCompleted {
		res.Completed = t.CompletedTime.UTC().Format(time.RFC1123)
	}
	return res
}

// humanDuration renders a duration the way the Octopus UI does: "3 seconds", "2 minutes".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "less than a second"
	case d < time.Minute:
		return plural(int(d/time.Second), "second")
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	default:
		return plural(int(d/time.Hour), "hour")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func (s *Server) taskRoutes() {
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("POST "+prefix+"/tasks", can("TaskCreate"), s.handleTaskCreate)
		s.handle("GET "+prefix+"/tasks", can("TaskView"), s.handleTaskList)
		s.handle("GET "+prefix+"/tasks/{id}", can("TaskView"), s.handleTaskGet)
		s.handle("GET "+prefix+"/tasks/{id}/details", can("TaskView"), s.handleTaskDetails)
		s.handle("GET "+prefix+"/tasks/{id}/raw", can("TaskView"), s.handleTaskRaw)
		s.handle("POST "+prefix+"/tasks/{id}/cancel", can("TaskCancel"), s.handleTaskCancel)
	}
	// The official Go client cancels at /api/spaces/{spaceId}/tasks/{id}/cancel.
	s.handle("POST /api/spaces/{spaceId}/tasks/{id}/cancel", can("TaskCancel"), s.handleTaskCancel)
	s.handle("GET /api/tasks/taskTypes", user, s.handleTaskTypes)
}

// space returns the space of a route: the default one, for space-less
// routes and those under /api/Spaces-1; KindNotFound for a route naming
// another space (only /api/spaces/{spaceId}/... does).
func space(r *http.Request) (string, error) {
	id := r.PathValue("spaceId")
	if id == "" || strings.EqualFold(id, DefaultSpaceID) {
		return DefaultSpaceID, nil
	}
	return "", cuttle.Errorf(cuttle.KindNotFound, "There is no space %q.", id)
}

func (s *Server) handleTaskCreate(w http.ResponseWriter, r *http.Request) error {
	spaceID, err := space(r)
	if err != nil {
		return err
	}
	var body taskCreateBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.SpaceId != "" && !strings.EqualFold(body.SpaceId, spaceID) {
		return cuttle.Errorf(cuttle.KindInvalid, "The task's SpaceId %q is not the space of the route (%s).", body.SpaceId, spaceID)
	}
	if body.Name == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A task needs a Name, such as AdHocScript.")
	}
	if len(body.Arguments) > 0 && body.Arguments[0] != '{' && string(body.Arguments) != "null" {
		return cuttle.Errorf(cuttle.KindInvalid, "Arguments must be a JSON object.")
	}
	nt := cuttle.NewTask{SpaceID: spaceID, Name: body.Name, Description: body.Description, Arguments: body.Arguments}
	if body.QueueTimeExpiry != nil {
		// The expiry becomes a timeout measured from the database's queue
		// time; the few milliseconds between the clocks do not matter here.
		nt.QueueTimeout = time.Until(*body.QueueTimeExpiry)
		if nt.QueueTimeout <= 0 {
			return cuttle.Errorf(cuttle.KindInvalid, "QueueTimeExpiry %s has already passed.", body.QueueTimeExpiry.UTC().Format(time.RFC3339))
		}
	}
	nt, err = s.kinds.Prepare(nt)
	if err != nil {
		return err
	}
	if err := allow(r, "TaskCreate", resources.Scope{}, nt.Name); err != nil {
		return err
	}
	t, err := s.store.CreateTask(r.Context(), nt)
	if err != nil {
		return err
	}
	if err := s.store.Notify(r.Context(), store.ChannelTasks, cuttle.FormatID(cuttle.TaskIDPrefix, t.ID)); err != nil {
		s.log.Warn("notifying a new task failed; nodes find it at their next heartbeat", "err", err)
	}
	writeJSON(w, http.StatusCreated, toTaskResource(t))
	return nil
}

// taskQuery reads the list filters: states, node, name, ids, active, skip, take.
func taskQuery(r *http.Request) (cuttle.TaskQuery, error) {
	var q cuttle.TaskQuery
	v := r.URL.Query()
	for _, st := range splitList(v.Get("states")) {
		state := cuttle.TaskState(st)
		if !state.Valid() {
			return q, cuttle.Errorf(cuttle.KindInvalid, "states holds %q, which is not a task state; the states are %v.", st, cuttle.TaskStates)
		}
		q.States = append(q.States, state)
	}
	if active := v.Get("active"); active == "true" && len(q.States) == 0 {
		q.States = []cuttle.TaskState{cuttle.TaskQueued, cuttle.TaskExecuting, cuttle.TaskCancelling}
	}
	q.NodeName, q.Name = v.Get("node"), v.Get("name")
	for _, s := range splitList(v.Get("ids")) {
		id, err := cuttle.ParseID(cuttle.TaskIDPrefix, s)
		if err != nil {
			return q, cuttle.Errorf(cuttle.KindInvalid, "ids holds %q, which is not a task id (ServerTasks-N).", s)
		}
		q.IDs = append(q.IDs, id)
	}
	var err error
	q.Skip, q.Take, err = pageParams(r)
	return q, err
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) handleTaskList(w http.ResponseWriter, r *http.Request) error {
	if _, err := space(r); err != nil {
		return err
	}
	q, err := taskQuery(r)
	if err != nil {
		return err
	}
	// A caller who may view some tasks only gets those: all are read,
	// and the page is cut from what is left.
	filtered := !callerOf(r).perms.Everywhere("TaskView")
	skip, take := q.Skip, q.Take
	if filtered {
		q.Skip, q.Take = 0, 0
	}
	tasks, total, err := s.store.Tasks(r.Context(), q)
	if err != nil {
		return err
	}
	if filtered {
		kept, err := visibleOnly(tasks, func(t *cuttle.Task) error { return s.taskAllows(r, "TaskView", *t) })
		if err != nil {
			return err
		}
		tasks, total = pageOf(kept, skip, take), len(kept)
	}
	items := make([]taskResource, 0, len(tasks))
	for _, t := range tasks {
		items = append(items, toTaskResource(t))
	}
	writeJSON(w, http.StatusOK, newPage("Task", "/api/tasks", items, total, skip, take))
	return nil
}

// taskAllows returns forbidden unless the caller has perm for t: in its
// deployment's scope for a deployment's task, anywhere unlimited for
// another.
func (s *Server) taskAllows(r *http.Request, perm string, t cuttle.Task) error {
	at := resources.Scope{}
	if t.Name == deploy.TaskName {
		var a deploy.Arguments
		if err := json.Unmarshal(t.Arguments, &a); err == nil && a.DeploymentId != "" {
			err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
				d, err := resources.Deployments.Get(r.Context(), tx, a.DeploymentId)
				if err != nil {
					return err
				}
				at, err = resources.DeploymentScope(r.Context(), tx, &d)
				return err
			})
			if err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
				return err
			}
		}
	}
	return allow(r, perm, at, cuttle.FormatID(cuttle.TaskIDPrefix, t.ID))
}

// task returns the task of the route's {id}, which the caller needs perm
// for (taskAllows).
func (s *Server) task(r *http.Request, perm string) (cuttle.Task, error) {
	if _, err := space(r); err != nil {
		return cuttle.Task{}, err
	}
	id, err := cuttle.ParseID(cuttle.TaskIDPrefix, r.PathValue("id"))
	if err != nil {
		return cuttle.Task{}, err
	}
	t, err := s.store.Task(r.Context(), id)
	if err != nil {
		return t, err
	}
	return t, s.taskAllows(r, perm, t)
}

func (s *Server) handleTaskGet(w http.ResponseWriter, r *http.Request) error {
	t, err := s.task(r, "TaskView")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTaskResource(t))
	return nil
}

func (s *Server) handleTaskCancel(w http.ResponseWriter, r *http.Request) error {
	t, err := s.task(r, "TaskCancel")
	if err != nil {
		return err
	}
	if t, err = s.store.CancelTask(r.Context(), t.ID); err != nil {
		return err
	}
	if t.State == cuttle.TaskCancelling {
		if err := s.store.Notify(r.Context(), store.ChannelCancel, cuttle.FormatID(cuttle.TaskIDPrefix, t.ID)); err != nil {
			s.log.Warn("notifying a cancellation failed; the owner sees it at its next heartbeat", "err", err)
		}
	}
	writeJSON(w, http.StatusOK, toTaskResource(t))
	return nil
}

func (s *Server) handleTaskTypes(w http.ResponseWriter, r *http.Request) error {
	type taskType struct{ Id, Name, Description string }
	var out []taskType
	for _, name := range s.kinds.Names() {
		out = append(out, taskType{Id: name, Name: name, Description: s.kinds[name].Description()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Details bounds: the newest defaultTail log lines, at most maxTail, and at
// most the node's DetailsBytes of their text.
const (
	defaultTail = 1000
	maxTail     = 20000
)

// activityElement is one element of a task's activity: the task, or a
// block of it (one target's lines, say). Its log elements are written one
// by one (writeActivity), never marshalled whole.
type activityElement struct {
	activityHead
	children []*activityElement
	lines    []numberedLine
}

// activityHead is what an activity element says of itself.
type activityHead struct {
	Id                 string
	Name               string
	Started            *time.Time
	Ended              *time.Time
	Status             string
	ShowAtSummaryLevel bool
}

type activityLogElement struct {
	OccurredAt  time.Time
	Category    tasklog.Category
	MessageText string
	Number      int
}

// activityStatus maps a task state to the status of its activity.
func activityStatus(s cuttle.TaskState) string {
	switch s {
	case cuttle.TaskQueued:
		return "Pending"
	case cuttle.TaskExecuting, cuttle.TaskCancelling:
		return "Running"
	case cuttle.TaskSuccess:
		return "Success"
	case cuttle.TaskCanceled:
		return "Canceled"
	default:
		return "Failed"
	}
}

// newestLines keeps the newest lines of a log read in order: at most max
// of them, and at most budget bytes of their text as JSON writes it (at
// least the newest line), so that a huge log is never held whole and an
// answer never grows past its bound, whatever the text needs escaped.
type newestLines struct {
	max, budget int
	lines       []numberedLine
	bytes       int
	read        int // lines seen
}

type numberedLine struct {
	tasklog.Line
	number int
	size   int // of the text as JSON
}

func (t *newestLines) add(l tasklog.Line) {
	t.read++
	if t.max == 0 {
		return
	}
	n := numberedLine{Line: l, number: t.read, size: jsonSize(l.Text)}
	t.lines = append(t.lines, n)
	t.bytes += n.size
	for len(t.lines) > t.max || (t.bytes > t.budget && len(t.lines) > 1) {
		t.bytes -= t.lines[0].size
		t.lines[0] = numberedLine{}
		t.lines = t.lines[1:]
	}
}

// jsonSize returns the bytes of s in a JSON string as encoding/json writes
// it without HTML escaping, quotes aside: most control characters take six
// bytes, a few of them and quotes and backslashes two, U+2028 and U+2029 six.
func jsonSize(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f' || c == '"' || c == '\\':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n + 3*(strings.Count(s, "\u2028")+strings.Count(s, "\u2029"))
}

// handleTaskDetails answers the task and the newest lines of its log
// (?tail=N, default 1000, at most 20,000, and at most the node's
// DetailsBytes of text), grouped by block, streamed as they are encoded.
// A deployment's activity is its tree of steps, targets and actions, each
// with its status and times, a target's lines under it.
func (s *Server) handleTaskDetails(w http.ResponseWriter, r *http.Request) error {
	t, err := s.task(r, "TaskView")
	if err != nil {
		return err
	}
	tail := defaultTail
	if v := r.URL.Query().Get("tail"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil || tail < 0 {
			return cuttle.Errorf(cuttle.KindInvalid, "tail must be a whole number of lines, at least 0.")
		}
		tail = min(tail, maxTail)
	}
	newest := &newestLines{max: tail, budget: s.limits.DetailsBytes}
	cur, err := s.logs.Read(t.ID, tasklog.Cursor{}, func(l tasklog.Line) error {
		newest.add(l)
		return nil
	})
	if err != nil {
		return err
	}
	id := cuttle.FormatID(cuttle.TaskIDPrefix, t.ID)
	root := &activityElement{activityHead: activityHead{Id: id, Name: t.Description, Started: timePtr(t.StartTime),
		Ended: timePtr(t.CompletedTime), Status: activityStatus(t.Shown()), ShowAtSummaryLevel: true}}
	blocks := map[string]*activityElement{}
	if t.Name == deploy.TaskName {
		steps, err := deploy.ActivityTree(t.Checkpoint)
		if err != nil {
			return err
		}
		for i, a := range steps {
			root.children = append(root.children, activityOf(a, fmt.Sprintf("%s/%d", id, i), blocks))
		}
	}
	for _, l := range newest.lines {
		el := root
		if l.Block != "" {
			if el = blocks[l.Block]; el == nil {
				el = &activityElement{activityHead: activityHead{Id: id + "/" + l.Block, Name: l.Block, Status: root.Status}}
				blocks[l.Block] = el
				root.children = append(root.children, el)
			}
		}
		el.lines = append(el.lines, l)
	}
	progress := 0
	if t.State.Completed() {
		progress = 100
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	field := func(name string, v any, last bool) {
		fmt.Fprintf(out, "%q:", name)
		enc.Encode(v)
		if !last {
			out.WriteByte(',')
		}
	}
	out.WriteString(`{`)
	field("Task", toTaskResource(t), false)
	out.WriteString(`"ActivityLogs":[`)
	writeActivity(out, enc, root)
	out.WriteString(`],`)
	field("PhysicalLogSize", cur.Offset, false)
	field("Progress", map[string]any{"ProgressPercentage": progress, "EstimatedTimeRemaining": ""}, false)
	field("Links", map[string]string{"Self": "/api/tasks/" + id + "/details"}, true)
	out.WriteString("}\n")
	out.Flush() // an error here is the client's going away: nothing left to answer
	return nil
}

// activityOf makes the element of a deployment's activity a, with id, and
// its children's (id/0, id/1, ...); a target's element takes its block's
// lines.
func activityOf(a deploy.Activity, id string, blocks map[string]*activityElement) *activityElement {
	el := &activityElement{activityHead: activityHead{Id: id, Name: a.Name, Started: a.Started, Ended: a.Ended, Status: a.Status,
		ShowAtSummaryLevel: true}}
	if a.Block != "" {
		blocks[a.Block] = el
	}
	for i, c := range a.Children {
		el.children = append(el.children, activityOf(c, fmt.Sprintf("%s/%d", id, i), blocks))
	}
	return el
}

// writeActivity writes el as JSON, its log elements one at a time.
func writeActivity(out *bufio.Writer, enc *json.Encoder, el *activityElement) {
	head, _ := json.Marshal(el.activityHead)
	out.Write(head[:len(head)-1]) // without its closing brace
	out.WriteString(`,"Children":[`)
	for i, c := range el.children {
		if i > 0 {
			out.WriteByte(',')
		}
		writeActivity(out, enc, c)
	}
	out.WriteString(`],"LogElements":[`)
	for i, l := range el.lines {
		if i > 0 {
			out.WriteByte(',')
		}
		enc.Encode(activityLogElement{OccurredAt: l.Time, Category: l.Category, MessageText: l.Text, Number: l.number})
	}
	out.WriteString(`]}`)
}

// followPoll is how often a following reader looks for new lines.
const followPoll = 100 * time.Millisecond

// handleTaskRaw streams a task's log as text, one line per log line:
// "<time>  <category>  <text>", the text of a block's line (one target's,
// say) after "[<block>] ". skip=N starts after the first N lines (400
// if the log of a completed task has fewer); follow=true keeps the answer
// open and streams new lines until the task completes.
func (s *Server) handleTaskRaw(w http.ResponseWriter, r *http.Request) error {
	t, err := s.task(r, "TaskView")
	if err != nil {
		return err
	}
	skip := 0
	if v := r.URL.Query().Get("skip"); v != "" {
		if skip, err = strconv.Atoi(v); err != nil || skip < 0 {
			return cuttle.Errorf(cuttle.KindInvalid, "skip must be a whole number of lines, at least 0.")
		}
	}
	follow := r.URL.Query().Get("follow") == "true"
	// Count first, so that a read past the end is refused before the answer begins.
	cur, err := s.logs.Read(t.ID, tasklog.Cursor{}, func(tasklog.Line) error { return nil })
	if err != nil {
		return err
	}
	if skip > cur.Line && (t.State.Completed() || !follow) {
		return cuttle.Errorf(cuttle.KindInvalid, "The log of %s has %d lines; skip=%d is past its end.", cuttle.FormatID(cuttle.TaskIDPrefix, t.ID), cur.Line, skip)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	flusher, _ := w.(http.Flusher)
	seen := 0
	cur = tasklog.Cursor{}
	for {
		completed := t.State.Completed() // observed before the read, so the read sees every line
		cur, err = s.logs.Read(t.ID, cur, func(l tasklog.Line) error {
			if seen++; seen <= skip {
				return nil
			}
			text := l.Text
			if l.Block != "" {
				text = "[" + l.Block + "] " + text
			}
			_, err := fmt.Fprintf(w, "%s  %-7s  %s\n", l.Time.UTC().Format("2006-01-02 15:04:05.000"), l.Category, text)
			return err
		})
		if err != nil {
			return nil // the client went away, or the log cannot be read: the answer has begun
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || completed {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(followPoll):
		}
		if t, err = s.store.Task(r.Context(), t.ID); err != nil {
			return nil
		}
	}
}
