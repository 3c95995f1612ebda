package comms

import "sync"

// hub wakes the polls waiting for a machine's work and the followers
// waiting for a command's news on this node.
type hub struct {
	mu        sync.Mutex
	pollers   map[int64]map[chan struct{}]struct{} // by machine
	followers map[int64]map[chan struct{}]struct{} // by command
	done      chan struct{}                        // closed by close
}

func newHub() *hub {
	return &hub{pollers: map[int64]map[chan struct{}]struct{}{}, followers: map[int64]map[chan struct{}]struct{}{}, done: make(chan struct{})}
}

// wait registers a waiter for the keys of m; the channel receives a value
// after each wake (wakes that come while one is pending merge). Call the
// returned func to unregister.
func (h *hub) wait(m map[int64]map[chan struct{}]struct{}, keys ...int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	for _, k := range keys {
		if m[k] == nil {
			m[k] = map[chan struct{}]struct{}{}
		}
		m[k][ch] = struct{}{}
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		for _, k := range keys {
			delete(m[k], ch)
			if len(m[k]) == 0 {
				delete(m, k)
			}
		}
		h.mu.Unlock()
	}
}

func (h *hub) wake(m map[int64]map[chan struct{}]struct{}, key int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range m[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (h *hub) waitMachines(ids ...int64) (<-chan struct{}, func()) { return h.wait(h.pollers, ids...) }
func (h *hub) waitCommand(id int64) (<-chan struct{}, func())      { return h.wait(h.followers, id) }
func (h *hub) wakeMachine(id int64)                                { h.wake(h.pollers, id) }
func (h *hub) wakeCommand(id int64)                                { h.wake(h.followers, id) }

// wakeAll wakes every waiter: after a reconnect any notification may have
// been missed.
func (h *hub) wakeAll() {
	h.mu.Lock()
	var keys [2][]int64
	for k := range h.pollers {
		keys[0] = append(keys[0], k)
	}
	for k := range h.followers {
		keys[1] = append(keys[1], k)
	}
	h.mu.Unlock()
	for _, k := range keys[0] {
		h.wakeMachine(k)
	}
	for _, k := range keys[1] {
		h.wakeCommand(k)
	}
}

// hasPollers reports whether any poll waits on this node.
func (h *hub) hasPollers() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pollers) > 0
}

// close ends every wait: the node is stopping.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.done:
	default:
		close(h.done)
	}
}
