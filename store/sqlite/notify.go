package sqlite

import (
	"context"
	"sync"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// ListenBuffer is how many notifications a listener may fall behind by. When a
// listener that far behind is sent another, its pending notifications are
// dropped and it receives one store.ChannelResync in their place.
const ListenBuffer = 256

// Notify publishes a notification to every Listen of this Store, at once and
// without blocking (see ListenBuffer). A database file serves one process, so
// no other process hears it.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if err := ctx.Err(); err != nil {
		return cuttle.Wrap(err, "publishing a notification")
	}
	s.notes.publish(store.Notification{Channel: channel, Payload: payload})
	return nil
}

// Listen delivers, in order, every notification published by Notify after
// Listen returned, until ctx ends or the Store closes; then it closes the
// channel. A listener that falls more than ListenBuffer behind receives
// store.ChannelResync in place of the notifications it missed (see
// ListenBuffer). Listen returns
// a KindUnavailable error after Close.
func (s *Store) Listen(ctx context.Context) (<-chan store.Notification, error) {
	l := &listener{wake: make(chan struct{}, 1)}
	if !s.notes.add(l) {
		return nil, cuttle.Errorf(cuttle.KindUnavailable, "The database is closed.")
	}
	out := make(chan store.Notification)
	go l.run(ctx, s.notes, out)
	return out, nil
}

// broker fans notifications out to the listeners of one Store.
type broker struct {
	mu        sync.Mutex
	listeners map[*listener]struct{}
	done      chan struct{} // closed by close
}

func newBroker() *broker {
	return &broker{listeners: map[*listener]struct{}{}, done: make(chan struct{})}
}

// add registers l, unless the broker is closed.
func (b *broker) add(l *listener) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.done:
		return false
	default:
	}
	b.listeners[l] = struct{}{}
	return true
}

func (b *broker) remove(l *listener) {
	b.mu.Lock()
	delete(b.listeners, l)
	b.mu.Unlock()
}

func (b *broker) publish(n store.Notification) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for l := range b.listeners {
		l.push(n)
	}
}

// close ends every listener; it may be called more than once.
func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.done:
	default:
		close(b.done)
	}
}

// listener is one Listen: a bounded queue that a goroutine drains into the
// channel Listen returned.
type listener struct {
	mu     sync.Mutex
	queue  []store.Notification
	resync bool          // the queue overflowed: deliver ChannelResync next
	wake   chan struct{} // capacity 1: the queue has something
}

// push queues n. When the queue is full it drops the queue and n, which a
// resync supersedes, and marks the listener for a resync. It never blocks.
func (l *listener) push(n store.Notification) {
	l.mu.Lock()
	if len(l.queue) < ListenBuffer {
		l.queue = append(l.queue, n)
	} else {
		l.queue, l.resync = nil, true
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// next takes the next notification to deliver, if any.
func (l *listener) next() (store.Notification, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.resync:
		l.resync = false
		return store.Notification{Channel: store.ChannelResync}, true
	case len(l.queue) > 0:
		n := l.queue[0]
		l.queue = l.queue[1:]
		return n, true
	}
	return store.Notification{}, false
}

// run delivers the queue to out until ctx ends or the broker closes, then
// unregisters l and closes out.
func (l *listener) run(ctx context.Context, b *broker, out chan<- store.Notification) {
	defer close(out)
	defer b.remove(l)
	for {
		n, ok := l.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-b.done:
				return
			case <-l.wake:
			}
			continue
		}
		select {
		case out <- n:
		case <-ctx.Done():
			return
		case <-b.done:
			return
		}
	}
}
