package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// Listener tuning.
const (
	// listenQueue is how many notifications a listener holds for a slow
	// consumer; past that it drops them all and delivers one ChannelResync.
	listenQueue = 256
	// listenPingInterval is how long a listener's connection may stay
	// silent before the listener pings it, to notice a connection lost
	// without a reset (a network partition).
	listenPingInterval = 5 * time.Second
	// listenBackoffMin and listenBackoffMax bound the wait between attempts
	// to reconnect a listener.
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = time.Second
)

// Notify publishes a notification with pg_notify to every listener of every
// node, when the statement commits (at once outside a transaction).
// PostgreSQL limits a payload to under 8000 bytes; a longer one is
// KindInternal.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
	return dbError(err, "sending a notification")
}

// Listen delivers the notifications of store.Channels until ctx ends or the
// store is closed, then closes the channel. It listens on a dedicated
// connection of its own, outside the pool; when Listen returns without an
// error it is subscribed, so every Notify that starts afterwards is delivered
// (or followed by a ChannelResync). KindUnavailable if that connection cannot
// be made.
//
// After a lost connection is restored (reconnecting with a backoff of up to
// one second) it delivers a notification on store.ChannelResync, since any
// number may have been missed. It never blocks on a slow consumer for long:
// past 256 undelivered notifications it drops them and delivers one
// ChannelResync instead. A silent connection is pinged every 5 s, so a
// connection lost without a reset is noticed too.
func (s *Store) Listen(ctx context.Context) (<-chan store.Notification, error) {
	if s.closing.Err() != nil {
		return nil, cuttle.Errorf(cuttle.KindUnavailable, "The store is closed.")
	}
	conn, err := s.listenConn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	out := make(chan store.Notification)
	mb := &mailbox{wake: make(chan struct{}, 1)}
	s.listeners.Add(2)
	go func() {
		defer s.listeners.Done()
		s.receive(ctx, conn, mb)
	}()
	go func() {
		defer s.listeners.Done()
		defer stop()
		defer cancel()
		mb.deliver(ctx, out)
	}()
	return out, nil
}

// listenConn connects and subscribes to store.Channels.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenConfig.Copy())
	if err != nil {
		return nil, dbError(err, "connecting to listen")
	}
	sql := ""
	for _, ch := range store.Channels {
		sql += "LISTEN " + pgx.Identifier{ch}.Sanitize() + ";"
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		closeConn(conn)
		return nil, dbError(err, "subscribing to notifications")
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}

// receive reads notifications from conn into mb until ctx ends, replacing
// the connection when it is lost.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, mb *mailbox) {
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			mb.put(store.Notification{Channel: n.Channel, Payload: n.Payload})
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
			// Silent for a while: make sure the connection still works.
			pctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return
			}
		}
		s.log.Warn("lost the notification connection; reconnecting", "error", err)
		closeConn(conn)
		conn = s.reconnect(ctx)
		if conn == nil {
			return
		}
		s.log.Info("notification connection restored")
		mb.put(store.Notification{Channel: store.ChannelResync})
	}
}

// reconnect makes a new listening connection, retrying with a jittered
// exponential backoff capped at listenBackoffMax, until it succeeds or ctx
// ends (then it returns nil).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	backoff := listenBackoffMin
	for {
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := s.listenConn(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// mailbox holds a listener's undelivered notifications. A resync makes every
// notification before it redundant, so it replaces them; an overflow is
// turned into a resync.
type mailbox struct {
	mu     sync.Mutex
	queue  []store.Notification
	resync bool          // deliver a ChannelResync before queue
	wake   chan struct{} // capacity 1: something was put
}

func (m *mailbox) put(n store.Notification) {
	m.mu.Lock()
	switch {
	case n.Channel == store.ChannelResync:
		clear(m.queue)
		m.queue = m.queue[:0]
		m.resync = true
	case len(m.queue) >= listenQueue:
		// Overflow: what is queued is replaced by a resync, after which n
		// still means something.
		clear(m.queue)
		m.queue = append(m.queue[:0], n)
		m.resync = true
	default:
		m.queue = append(m.queue, n)
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() (store.Notification, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.resync {
		m.resync = false
		return store.Notification{Channel: store.ChannelResync}, true
	}
	if len(m.queue) == 0 {
		return store.Notification{}, false
	}
	n := m.queue[0]
	m.queue[0] = store.Notification{}
	m.queue = m.queue[1:]
	return n, true
}

// deliver sends the mailbox's notifications to out until ctx ends, then
// closes out.
func (m *mailbox) deliver(ctx context.Context, out chan<- store.Notification) {
	defer close(out)
	for {
		n, ok := m.take()
		if !ok {
			select {
			case <-m.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case out <- n:
		case <-ctx.Done():
			return
		}
	}
}
