// Package live turns the database's notifications into updates for
// browsers: a Hub fans out the id of every document, node, task or
// machine that changed to each subscriber (the API streams them as
// server-sent events, GET /api/live), and a LogNotifier tells every node
// that a task's log grew.
//
// Notifications are hints (store.Store): a subscriber that falls behind,
// or a node whose listening connection was lost, gets a resync, after
// which it reads again whatever it shows. Nothing here decides anything.
package live

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/cluster"
	"github.com/cuttledeploy/cuttle/store"
)

// Resync is the update that means "anything may have changed".
const Resync = ""

// subscriberQueue is how many updates a subscriber holds; past that its
// queue is dropped for one Resync.
const subscriberQueue = 64

// Hub fans out updates to subscribers. The zero value is not usable.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// NewHub returns a hub fed by the member's notifications: the ids of
// documents, nodes, tasks, task logs and machines that changed. Call it
// before the member starts.
func NewHub(m *cluster.Member) *Hub {
	h := &Hub{subs: map[*Subscription]struct{}{}}
	asIs := func(id string) { h.Publish(id) }
	for _, ch := range []string{store.ChannelDocuments, store.ChannelNodes, store.ChannelTasks, store.ChannelCancel, store.ChannelTaskLogs} {
		m.Handle(ch, asIs)
	}
	m.Handle(store.ChannelMachines, func(id string) {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			id = cuttle.FormatID(cuttle.MachineIDPrefix, n)
		}
		h.Publish(id)
	})
	// Leadership and settings change what the nodes' pages show.
	for _, ch := range []string{store.ChannelLeader, store.ChannelSettings} {
		m.Handle(ch, func(string) { h.Publish(cuttle.NodeIDPrefix) })
	}
	return h
}

// Subscription receives a hub's updates until it is closed.
type Subscription struct {
	hub *Hub
	// C delivers an id that changed, or Resync.
	C    chan string
	once sync.Once
}

// Subscribe returns a new subscription.
func (h *Hub) Subscribe() *Subscription {
	s := &Subscription{hub: h, C: make(chan string, subscriberQueue)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.hub.mu.Lock()
		delete(s.hub.subs, s)
		s.hub.mu.Unlock()
	})
}

// Publish delivers id (Resync: "", anything may have changed) to every
// subscriber without blocking: a subscriber whose queue is full loses it
// and what it held, for one Resync.
func (h *Hub) Publish(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.C <- id:
			continue
		default:
		}
		for len(s.C) > 0 {
			<-s.C
		}
		s.C <- Resync
	}
}

// LogNotifyInterval is how often at most a task's log growth is notified.
const LogNotifyInterval = 100 * time.Millisecond

// LogNotifier notifies store.ChannelTaskLogs with a task's id when its log
// grows: at once for the first write, then at most once per
// LogNotifyInterval while writes keep coming, the last write of a burst
// included. A notification that fails is logged at debug level: readers
// also poll.
type LogNotifier struct {
	store store.Store
	log   *slog.Logger
	mu    sync.Mutex
	tasks map[int64]*logBurst
}

type logBurst struct {
	pending bool // a write came since the last notification
}

// NewLogNotifier returns a notifier that publishes through st.
func NewLogNotifier(st store.Store, log *slog.Logger) *LogNotifier {
	return &LogNotifier{store: st, log: log, tasks: map[int64]*logBurst{}}
}

// Written takes a write to the log of taskID (tasklog.Store.Written). It
// never blocks.
func (n *LogNotifier) Written(taskID int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if b, ok := n.tasks[taskID]; ok {
		b.pending = true
		return
	}
	n.tasks[taskID] = &logBurst{}
	go n.notify(taskID)
}

// notify sends the notification of taskID, then one per interval while
// writes keep coming.
func (n *LogNotifier) notify(taskID int64) {
	id := cuttle.FormatID(cuttle.TaskIDPrefix, taskID)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.store.Notify(ctx, store.ChannelTaskLogs, id); err != nil {
			n.log.Debug("notifying a task log's growth failed; readers poll", "task", id, "err", err)
		}
		cancel()
		time.Sleep(LogNotifyInterval)
		n.mu.Lock()
		b := n.tasks[taskID]
		if !b.pending {
			delete(n.tasks, taskID)
			n.mu.Unlock()
			return
		}
		b.pending = false
		n.mu.Unlock()
	}
}
