package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// Status is where a node is in its life.
type Status int

const (
	StatusStarting Status = iota // not yet registered; ping answers 503
	StatusServing                // registered and checking in
	StatusStopping               // shutting down; ping answers 503
)

// State is an immutable snapshot of this node's membership. A new snapshot
// is published whenever anything in it changes or a check-in succeeds.
type State struct {
	Node     cuttle.Node // this node's row as last read
	Settings cuttle.ClusterSettings
	Status   Status
	// Term is the term this node led when the snapshot was taken; 0 if it
	// did not lead. Leading tells whether that term is still trusted.
	Term       int64
	trustUntil time.Time // monotonic: when this node stops trusting Term
	// healthyUntil is when, on this node's monotonic clock, the last
	// successful check-in stops vouching for the database connection.
	healthyUntil time.Time
	// checkedIn is when the last successful check-in started (monotonic).
	checkedIn time.Time
	// aliveSince is when the check-in started that began this node's
	// current unbroken run of Alive (monotonic).
	aliveSince time.Time
}

// Alive reports whether the rest of the cluster still counts this node
// online: it checked in less than five sixths of the stale timeout ago, on
// its own monotonic clock. The database marks it offline only after the
// whole stale timeout from a later moment (its last seen), so a node that
// stops its tasks when Alive turns false has stopped before any other node
// may take them over.
func (s *State) Alive() bool { return s.aliveAt(time.Now()) }

func (s *State) aliveAt(t time.Time) bool {
	return !s.checkedIn.IsZero() && t.Sub(s.checkedIn) < s.Settings.StaleTimeout-s.Settings.StaleTimeout/6
}

// AliveSince returns when (monotonic) the node's current unbroken run of
// Alive began: the start of the first check-in after the node was last not
// Alive. The cluster may have taken over work this node owned before then,
// so such ownership must be confirmed again in the database before it is
// acted on.
func (s *State) AliveSince() time.Time { return s.aliveSince }

// checkedInAt records a successful check-in that started at start.
func (s *State) checkedInAt(start time.Time, settings cuttle.ClusterSettings) {
	if !s.aliveAt(start) {
		s.aliveSince = start
	}
	s.Settings = settings
	s.healthyUntil, s.checkedIn = start.Add(settings.LeaseDuration()), start
}

// Healthy reports whether the node is serving and checked in with the
// database within the last lease duration.
func (s *State) Healthy() bool {
	return s.Status == StatusServing && time.Now().Before(s.healthyUntil)
}

// Leading reports whether the node leads now: it held Term and still trusts
// its lease. A node resumed after a long pause stops reporting itself leader
// at once, before it even learns that another node took over.
func (s *State) Leading() bool {
	return s.Term != 0 && time.Now().Before(s.trustUntil)
}

// Leadership is a term this node leads. Context is canceled when the node
// stops leading; leader-only work runs under it and carries Term into its
// writes so that the store can fence them.
type Leadership struct {
	Term    int64
	Context context.Context
}

// Config configures a Member.
type Config struct {
	Store        store.Store
	Registration cuttle.NodeRegistration
	Logger       *slog.Logger // default slog.Default()
}

// Member is this node's membership of the cluster. Create it with New, then
// Start it; Stop resigns leadership and marks the node offline.
type Member struct {
	store store.Store
	reg   cuttle.NodeRegistration
	log   *slog.Logger

	state    atomic.Pointer[State]
	wake     chan struct{}
	tickMu   sync.Mutex
	ticked   chan struct{}                     // closed and replaced after each tick
	handlers map[string][]func(payload string) // set before Start
	onLead   []func()                          // set before Start

	mu           sync.Mutex // guards the leadership fields below
	term         int64
	trustUntil   time.Time // monotonic
	leaderCtx    context.Context
	leaderCancel context.CancelFunc
	watchdog     *time.Timer
	// lapsed is the term whose trust window passed without a renewal: the
	// node no longer leads it, but renews it on its next tick if nobody took
	// the lease meanwhile, so that a slow renewal does not hand leadership
	// to another node.
	lapsed int64
	// renewedFor is the lease duration the last renewal asked for.
	renewedFor time.Duration

	cancel context.CancelFunc
	done   chan struct{}
	// Loop goroutine only, for logging transitions:
	dbDown   bool  // the last check-in failed
	seenTerm int64 // the lease term the last lost bid saw
}

// New returns a Member that is not started.
func New(cfg Config) *Member {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Member{store: cfg.Store, reg: cfg.Registration, log: log, wake: make(chan struct{}, 1), ticked: make(chan struct{})}
	m.state.Store(&State{Status: StatusStarting, Settings: cuttle.DefaultClusterSettings()})
	return m
}

// State returns the latest snapshot. It never blocks and never touches the database.
func (m *Member) State() *State { return m.state.Load() }

// Refresh asks the member to check in and re-evaluate leadership now rather
// than at the next heartbeat, for example after this node's settings changed.
func (m *Member) Refresh() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Handle registers fn to be called with the payload of every notification
// on channel, and with "" after a reconnect (store.ChannelResync), when any
// notification may have been missed. Call it before Start. fn runs on the
// listening goroutine and must not block.
func (m *Member) Handle(channel string, fn func(payload string)) {
	if m.handlers == nil {
		m.handlers = map[string][]func(string){}
	}
	m.handlers[channel] = append(m.handlers[channel], fn)
}

// OnLeading registers fn to be called each time this node starts leading a
// term, once Leadership reports it, so that leader-only work can begin at
// once instead of at its next tick. Call it before Start. fn runs on the
// check-in goroutine and must not block.
func (m *Member) OnLeading(fn func()) { m.onLead = append(m.onLead, fn) }

// Sync checks in now and returns once the node has applied what it read,
// or ctx ends: after a change to this node's settings, the node has
// applied the change when Sync returns.
func (m *Member) Sync(ctx context.Context) error {
	m.tickMu.Lock()
	next := m.ticked
	m.tickMu.Unlock()
	m.Refresh()
	select {
	case <-next:
		// That tick may have begun before the call; wait for one more.
	case <-ctx.Done():
		return ctx.Err()
	}
	m.tickMu.Lock()
	next = m.ticked
	m.tickMu.Unlock()
	m.Refresh()
	select {
	case <-next:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leadership returns the term this node leads if it leads and still trusts
// its lease; ok is false otherwise.
func (m *Member) Leadership() (l Leadership, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == 0 || !time.Now().Before(m.trustUntil) {
		return Leadership{}, false
	}
	return Leadership{Term: m.term, Context: m.leaderCtx}, true
}

// Start registers the node and starts checking in. It fails if the
// registration fails (for example when the database cannot be reached).
func (m *Member) Start(ctx context.Context) error {
	start := time.Now()
	node, err := m.store.RegisterNode(ctx, m.reg)
	if err != nil {
		return err
	}
	settings, err := m.store.Settings(ctx)
	if err != nil {
		return err
	}
	m.publish(func(s *State) {
		s.Node, s.Status = node, StatusServing
		s.checkedInAt(start, settings)
	})
	m.log.Info("node registered", "node", node.Name, "id", cuttle.FormatID(cuttle.NodeIDPrefix, node.ID),
		"taskCap", node.MaxConcurrentTasks, "draining", node.IsInMaintenanceMode)

	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.done = make(chan struct{})
	go m.listen(loopCtx)
	go m.loop(loopCtx)
	return nil
}

// BeginStop starts a clean stop: ping answers 503 from now on and the node
// resigns leadership at once, but it keeps checking in, so that its tasks
// can finish, until Stop.
func (m *Member) BeginStop() {
	m.publish(func(s *State) { s.Status = StatusStopping })
	m.Refresh()
}

// Stop stops checking in, resigns leadership, and ends this incarnation of
// the node (offline at once), within ctx. It reports the first error met; the
// node is stopped either way. The store fences the end of the incarnation
// against check-ins and bids still in flight (see store.Store.SetOffline), so
// the node cannot come back online or lead once Stop has marked it offline.
func (m *Member) Stop(ctx context.Context) error {
	m.publish(func(s *State) { s.Status = StatusStopping })
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
	term := m.stepDown("node stopping")
	ref := m.State().Node.Ref()
	if ref.ID == 0 {
		return nil
	}
	resigned, err := m.store.SetOffline(ctx, ref)
	errs := []error{err}
	if resigned || term != 0 {
		errs = append(errs, m.store.Notify(ctx, store.ChannelLeader, "resigned"))
	}
	errs = append(errs, m.store.Notify(ctx, store.ChannelNodes, cuttle.FormatID(cuttle.NodeIDPrefix, ref.ID)))
	return errors.Join(errs...)
}

// listen turns notifications into wake-ups of the loop. It re-subscribes
// after a failure; the heartbeat covers anything missed meanwhile.
func (m *Member) listen(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := m.store.Listen(ctx)
		if err != nil {
			m.log.Debug("listening for notifications failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(m.State().Settings.HeartbeatFrequency):
			}
			continue
		}
		for n := range ch {
			for _, fn := range m.handlers[n.Channel] {
				fn(n.Payload)
			}
			if n.Channel == store.ChannelResync {
				for channel, fns := range m.handlers {
					if channel != store.ChannelResync {
						for _, fn := range fns {
							fn("")
						}
					}
				}
			}
			switch n.Channel {
			case store.ChannelLeader, store.ChannelSettings, store.ChannelResync:
				m.Refresh()
			case store.ChannelNodes:
				if n.Payload == cuttle.FormatID(cuttle.NodeIDPrefix, m.State().Node.ID) {
					m.Refresh()
				}
			}
		}
	}
}

func (m *Member) loop(ctx context.Context) {
	defer close(m.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.wake:
		}
		start := time.Now()
		m.tick(ctx)
		m.tickMu.Lock()
		close(m.ticked)
		m.ticked = make(chan struct{})
		m.tickMu.Unlock()
		// Ticks keep their rate however long one takes, so that a slow
		// database or a busy machine does not space renewals further apart.
		timer.Reset(max(0, m.State().Settings.HeartbeatFrequency-time.Since(start)))
	}
}

// tick renews the lease if this node leads, checks in, reloads the
// settings, and runs one step of the leadership state machine (see the
// package documentation).
func (m *Member) tick(ctx context.Context) {
	cur := m.State()
	opCtx, cancel := context.WithTimeout(ctx, max(cur.Settings.HeartbeatFrequency, time.Second))
	defer cancel()

	// The renewal comes first: of everything a tick does, the lease's trust
	// window is the tightest deadline.
	if cur.Status != StatusStopping {
		m.renew(opCtx, cur.Node.ID, cur.Settings.LeaseDuration())
	}
	start := time.Now()
	node, err := m.store.CheckIn(opCtx, cur.Node.Ref())
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		// Removed while it could not check in (for example stopped past the
		// stale timeout): register again under the same name.
		m.log.Warn("node was removed from the cluster; registering again")
		node, err = m.store.RegisterNode(opCtx, m.reg)
	}
	if err != nil {
		if !m.dbDown {
			if cuttle.IsKind(err, cuttle.KindConflict) {
				m.log.Error("check-in refused: another process registered this node's name since; this process can no longer serve as the node", "err", err)
			} else {
				m.log.Error("check-in failed", "err", err)
			}
			m.dbDown = true
		}
		return // a leader's trust lapses by itself; its watchdog cancels the leadership
	}
	if m.dbDown {
		m.log.Info("check-in succeeded again")
		m.dbDown = false
	}
	settings, err := m.store.Settings(opCtx)
	if err != nil {
		settings = cur.Settings
	}
	m.publish(func(s *State) {
		s.Node = node
		s.checkedInAt(start, settings)
	})
	m.lead(opCtx, node, settings)
}

// renew extends the lease of the term this node leads, or of the term whose
// trust lapsed if nobody took the lease since. A refusal ends the term: the
// node steps down and resigns, which clears the row if the refusal came from
// a drain (ResignLease changes nothing if the term moved on).
func (m *Member) renew(ctx context.Context, nodeID int64, d time.Duration) {
	m.mu.Lock()
	term := m.term
	if term == 0 {
		term = m.lapsed
	}
	m.renewedFor = d
	m.mu.Unlock()
	if term == 0 {
		return
	}
	start := time.Now()
	_, err := m.store.RenewLease(ctx, nodeID, term, d)
	switch {
	case err == nil:
		m.renewed(term, start, d)
	case cuttle.IsKind(err, cuttle.KindConflict):
		m.mu.Lock()
		if m.lapsed == term {
			m.lapsed = 0
		}
		m.mu.Unlock()
		m.stepDown("lease lost to another node, or this node is draining")
		if err := m.resign(ctx, term); err != nil {
			m.log.Warn("resigning leadership failed; the lease will lapse", "err", err)
		}
	default:
		m.log.Warn("renewing the leader lease failed", "term", term, "err", err)
	}
}

// renewed extends the trust in term after a renewal of it that started at
// start. If the trust had lapsed meanwhile (the renewal was slow, or came on
// the tick after the lapse), the node takes the term up again, provided the
// renewal is recent enough to trust: nobody else can have led that term,
// since the database kept it for this node.
func (m *Member) renewed(term int64, start time.Time, d time.Duration) {
	m.mu.Lock()
	lapsed := m.term == 0 && m.lapsed == term
	m.mu.Unlock()
	if !lapsed {
		m.trust(term, start, d)
	} else if time.Now().Before(start.Add(d - d/6)) {
		m.becomeLeader(term, start, d)
	}
}

// lead runs one step of the leadership state machine after a check-in: a
// leader that drains or stops resigns; a follower bids.
func (m *Member) lead(ctx context.Context, node cuttle.Node, settings cuttle.ClusterSettings) {
	m.mu.Lock()
	term := m.term
	m.mu.Unlock()

	stopping := m.State().Status == StatusStopping
	d := settings.LeaseDuration()
	if term != 0 {
		if node.IsInMaintenanceMode || stopping {
			m.stepDown("node draining or stopping")
			if err := m.resign(ctx, term); err != nil {
				m.log.Error("resigning leadership failed; the lease will lapse", "err", err)
			}
			return
		}
		m.mu.Lock()
		changed := m.renewedFor != d
		m.mu.Unlock()
		if changed {
			// The heartbeat changed: renew for the new lease now, or a longer
			// heartbeat would outlast the trust of the last renewal.
			m.renew(ctx, node.ID, d)
		}
		return
	}

	if node.IsInMaintenanceMode || node.IsOffline || stopping {
		return
	}
	start := time.Now()
	lease, won, err := m.store.BidLease(ctx, node.ID, d)
	if err != nil {
		m.log.Warn("bidding for the leader lease failed", "err", err)
		return
	}
	if won {
		m.becomeLeader(lease.Term, start, d)
	} else if lease.Term != m.seenTerm {
		m.log.Debug("bid lost; the lease is held", "leader", cuttle.FormatID(cuttle.NodeIDPrefix, lease.NodeID),
			"term", lease.Term, "expires", lease.ExpiresAt)
	}
	m.seenTerm = lease.Term
}

func (m *Member) becomeLeader(term int64, start time.Time, d time.Duration) {
	m.mu.Lock()
	m.term, m.lapsed, m.renewedFor = term, 0, d
	m.leaderCtx, m.leaderCancel = context.WithCancel(context.Background())
	m.mu.Unlock()
	m.trust(term, start, d)
	m.log.Info("leading the cluster", "term", term)
	for _, fn := range m.onLead {
		fn()
	}
}

// trust extends the trust window of term after a bid or renew that started at start.
func (m *Member) trust(term int64, start time.Time, d time.Duration) {
	until := start.Add(d - d/6)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term != term {
		return
	}
	m.trustUntil = until
	m.publish(func(s *State) { s.Term, s.trustUntil = term, until })
	if m.watchdog != nil {
		m.watchdog.Stop()
	}
	m.watchdog = time.AfterFunc(time.Until(until), func() {
		if m.stepDownTerm(term, "leader lease not renewed in time") {
			m.mu.Lock()
			m.lapsed = term
			m.mu.Unlock()
			m.Refresh() // renew it now, while the lease has not yet expired in the database
		}
	})
}

// stepDown stops leading, whatever the term, and returns the term it led (0 if none).
func (m *Member) stepDown(reason string) int64 {
	m.mu.Lock()
	term := m.term
	m.mu.Unlock()
	if term != 0 {
		m.stepDownTerm(term, reason)
	}
	return term
}

// stepDownTerm stops leading term and reports whether this node led it.
func (m *Member) stepDownTerm(term int64, reason string) bool {
	m.mu.Lock()
	if m.term != term {
		m.mu.Unlock()
		return false
	}
	m.term = 0
	m.lapsed = 0
	m.trustUntil = time.Time{}
	m.leaderCancel()
	if m.watchdog != nil {
		m.watchdog.Stop()
	}
	m.mu.Unlock()
	m.publish(func(s *State) { s.Term, s.trustUntil = 0, time.Time{} })
	m.log.Info("no longer leading the cluster", "term", term, "reason", reason)
	return true
}

// resign gives up the lease of term and tells the other nodes at once.
func (m *Member) resign(ctx context.Context, term int64) error {
	id := m.State().Node.ID
	if err := m.store.ResignLease(ctx, id, term); err != nil {
		return err
	}
	return m.store.Notify(ctx, store.ChannelLeader, "resigned")
}

// publish stores a new snapshot made by applying change to a copy of the current one.
func (m *Member) publish(change func(*State)) {
	for {
		old := m.state.Load()
		next := *old
		change(&next)
		if m.state.CompareAndSwap(old, &next) {
			return
		}
	}
}
