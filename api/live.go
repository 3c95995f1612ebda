package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/live"
)

// liveHeartbeat is how often an idle event stream sends a comment, so
// that balancers and proxies keep it open.
const liveHeartbeat = 15 * time.Second

// handleLive streams live updates as server-sent events: `changed` with
// the id of a document, node, task or machine that changed (a task's id
// too when its log grew), and `resync` when anything may have changed.
// The portal reads again what it shows when an id it shows changes. Only
// ids are sent, never a document: what they name is read through the
// routes that check permissions.
func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) error {
	if s.live == nil {
		return cuttle.Errorf(cuttle.KindNotFound, "This node serves no live updates.")
	}
	sub := s.live.Subscribe()
	defer sub.Close()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // proxies pass each event at once
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(liveHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-heartbeat.C:
			fmt.Fprint(w, ": still here\n\n")
		case id := <-sub.C:
			if id == live.Resync {
				fmt.Fprint(w, "event: resync\ndata: \n\n")
			} else {
				fmt.Fprintf(w, "event: changed\ndata: %s\n\n", id)
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
