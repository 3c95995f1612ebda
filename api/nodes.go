package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/store"
)

// nodeResource is the OctopusServerNode resource.
type nodeResource struct {
	Id                  string
	Name                string
	MaxConcurrentTasks  int
	IsInMaintenanceMode bool
	IsOffline           bool
	LastSeen            *time.Time
	Rank                string
	RunningTaskCount    int
	Version             string
	Links               map[string]string
}

// nodeUpdateBody is what PUT accepts: the node resource, of which only
// MaxConcurrentTasks and IsInMaintenanceMode can change; the other fields are
// read-only and ignored, so a client may send back what it read.
type nodeUpdateBody struct {
	Id                  *string
	Name                *string
	MaxConcurrentTasks  *int
	IsInMaintenanceMode *bool
	IsOffline           *bool
	LastSeen            *time.Time
	Rank                *string
	RunningTaskCount    *int
	Version             *string
	Links               map[string]string
	LastModifiedBy      json.RawMessage
	LastModifiedOn      json.RawMessage
}

func nodeLinks(id string) map[string]string {
	return map[string]string{
		"Self":    "/api/octopusservernodes/" + id,
		"Details": "/api/octopusservernodes/" + id + "/details",
		"Node":    "/api/octopusservernodes/" + id,
	}
}

func toNodeResource(n cuttle.Node, leaderID int64) nodeResource {
	id := cuttle.FormatID(cuttle.NodeIDPrefix, n.ID)
	rank := cuttle.RankFollower
	if leaderID == n.ID && !n.IsOffline {
		rank = cuttle.RankLeader
	}
	var lastSeen *time.Time
	if !n.LastSeen.IsZero() {
		t := n.LastSeen.UTC()
		lastSeen = &t
	}
	return nodeResource{
		Id: id, Name: n.Name, MaxConcurrentTasks: n.MaxConcurrentTasks, IsInMaintenanceMode: n.IsInMaintenanceMode,
		IsOffline: n.IsOffline, LastSeen: lastSeen, Rank: rank, RunningTaskCount: n.RunningTaskCount,
		Version: n.Version, Links: nodeLinks(id),
	}
}

// leaderID returns the node holding an unexpired lease, or 0.
func (s *Server) leaderID(r *http.Request) (int64, error) {
	lease, now, err := s.store.Lease(r.Context())
	if err != nil || !lease.ExpiresAt.After(now) {
		return 0, err
	}
	return lease.NodeID, nil
}

func (s *Server) nodeResources(r *http.Request) ([]nodeResource, error) {
	nodes, err := s.store.Nodes(r.Context())
	if err != nil {
		return nil, err
	}
	leader, err := s.leaderID(r)
	if err != nil {
		return nil, err
	}
	out := make([]nodeResource, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, toNodeResource(n, leader))
	}
	return out, nil
}

func (s *Server) handleNodeList(w http.ResponseWriter, r *http.Request) error {
	all, err := s.nodeResources(r)
	if err != nil {
		return err
	}
	ids, err := idFilter(r, cuttle.NodeIDPrefix)
	if err != nil {
		return err
	}
	all = filterByID(all, ids, func(n nodeResource) string { return n.Id })
	return writePage(w, r, "OctopusServerNode", "/api/octopusservernodes", all)
}

func (s *Server) handleNodeAll(w http.ResponseWriter, r *http.Request) error {
	all, err := s.nodeResources(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, all)
	return nil
}

func (s *Server) handleNodeSummary(w http.ResponseWriter, r *http.Request) error {
	all, err := s.nodeResources(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{ Nodes []nodeResource }{all})
	return nil
}

func (s *Server) nodeResource(r *http.Request, id int64) (nodeResource, error) {
	n, err := s.store.Node(r.Context(), id)
	if err != nil {
		return nodeResource{}, err
	}
	leader, err := s.leaderID(r)
	if err != nil {
		return nodeResource{}, err
	}
	return toNodeResource(n, leader), nil
}

func (s *Server) handleNodeGet(w http.ResponseWriter, r *http.Request) error {
	id, err := cuttle.ParseID(cuttle.NodeIDPrefix, r.PathValue("id"))
	if err != nil {
		return err
	}
	res, err := s.nodeResource(r, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleNodeDetails(w http.ResponseWriter, r *http.Request) error {
	id, err := cuttle.ParseID(cuttle.NodeIDPrefix, r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := s.store.Node(r.Context(), id); err != nil {
		return err
	}
	running, _, err := s.store.Tasks(r.Context(), cuttle.TaskQuery{OwnerID: id, States: []cuttle.TaskState{cuttle.TaskExecuting, cuttle.TaskCancelling}})
	if err != nil {
		return err
	}
	items := make([]taskResource, 0, len(running))
	for _, t := range running {
		items = append(items, toTaskResource(t))
	}
	writeJSON(w, http.StatusOK, struct {
		Id           string
		RunningTasks []taskResource
	}{cuttle.FormatID(cuttle.NodeIDPrefix, id), items})
	return nil
}

func (s *Server) handleNodeUpdate(w http.ResponseWriter, r *http.Request) error {
	id, err := cuttle.ParseID(cuttle.NodeIDPrefix, r.PathValue("id"))
	if err != nil {
		return err
	}
	var body nodeUpdateBody
	if err := decodeJSON(w, r, &body); err != nil {
		return err
	}
	if body.Id != nil && *body.Id != "" {
		if bodyID, err := cuttle.ParseID(cuttle.NodeIDPrefix, *body.Id); err != nil || bodyID != id {
			return cuttle.Errorf(cuttle.KindInvalid, "The Id in the body (%s) is not the node of the route.", *body.Id)
		}
	}
	update := cuttle.NodeUpdate{MaxConcurrentTasks: body.MaxConcurrentTasks, IsInMaintenanceMode: body.IsInMaintenanceMode}
	if err := update.Validate(); err != nil {
		return err
	}
	if _, err := s.store.UpdateNode(r.Context(), id, update); err != nil {
		return err
	}
	s.nodeChanged(r, id)
	res, err := s.nodeResource(r, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// nodeChanged tells the node, wherever it runs, to apply its new settings
// now; this node applies them before the answer is sent.
func (s *Server) nodeChanged(r *http.Request, id int64) {
	if s.member.State().Node.ID == id {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.member.Sync(ctx); err != nil {
			s.log.Warn("applying this node's new settings is taking long; it applies them at its next check-in", "err", err)
		}
	}
	if err := s.store.Notify(r.Context(), store.ChannelNodes, cuttle.FormatID(cuttle.NodeIDPrefix, id)); err != nil {
		s.log.Warn("notifying the cluster of a node change failed; it applies at the next heartbeat", "err", err)
	}
}

func (s *Server) handleNodeDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := cuttle.ParseID(cuttle.NodeIDPrefix, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteNode(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// pingCache is the ping answer rendered for one membership snapshot.
type pingCache struct {
	state   *cluster.State
	leading bool
	body    []byte
}

// TermHeader, on a ping answer of a leader, carries the term it leads.
const TermHeader = "X-Cuttle-Leader-Term"

// handlePing answers the load balancer from memory: 200 online and not
// draining, 418 draining, 503 starting, stopping or without its database.
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) error {
	st := s.member.State()
	leading := st.Leading()
	c := s.ping.Load()
	if c == nil || c.state != st || c.leading != leading {
		node := st.Node
		node.IsOffline = st.Status != cluster.StatusServing
		leader := int64(0)
		if leading {
			leader = node.ID
		}
		body, err := json.Marshal(toNodeResource(node, leader))
		if err != nil {
			return err
		}
		c = &pingCache{state: st, leading: leading, body: body}
		s.ping.Store(c)
	}
	status := http.StatusOK
	switch {
	case !st.Healthy():
		status = http.StatusServiceUnavailable
	case st.Node.IsInMaintenanceMode:
		status = http.StatusTeapot
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if leading {
		h.Set(TermHeader, strconv.FormatInt(st.Term, 10))
	}
	w.WriteHeader(status)
	w.Write(c.body)
	return nil
}
