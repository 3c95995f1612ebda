package comms

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

// Cache lifetimes: a machine found is trusted for a while, longer than a
// poll waits; a thumbprint or subscription id not found is refused without
// asking the database again for a while, so that an unknown agent knocking
// again and again costs no reads. Every change of a machine clears the
// cache, by notification, so an agent that has just registered through any
// node connects at once; the lifetimes bound the wait when a notification
// is lost. maxEntries bounds the cache against a flood of unknown
// certificates.
const (
	machineTTL = 5 * time.Minute
	missingTTL = 10 * time.Second
	maxEntries = 100_000
)

// machineCache looks machines up by the keys agent traffic names them by:
// their certificate's thumbprint and their subscription id.
type machineCache struct {
	store store.Store
	log   *slog.Logger

	mu      sync.Mutex
	entries map[string]cacheEntry // "t:" + thumbprint, "s:" + subscription id
}

type cacheEntry struct {
	machines []cuttle.Machine
	until    time.Time
}

func newMachineCache(st store.Store, log *slog.Logger) *machineCache {
	return &machineCache{store: st, log: log, entries: map[string]cacheEntry{}}
}

// invalidate forgets everything: a machine changed somewhere.
func (mc *machineCache) invalidate() {
	mc.mu.Lock()
	mc.entries = map[string]cacheEntry{}
	mc.mu.Unlock()
}

// lookup returns the machines of q, cached under key. When the database
// cannot answer it returns what it knew, if anything, and otherwise a
// KindUnavailable error: an agent must then try again, never take a
// refusal.
func (mc *machineCache) lookup(ctx context.Context, key string, q cuttle.MachineQuery) ([]cuttle.Machine, error) {
	now := time.Now()
	mc.mu.Lock()
	e, ok := mc.entries[key]
	mc.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.machines, nil
	}
	ms, err := mc.store.Machines(ctx, q)
	if err != nil {
		if ok {
			return e.machines, nil // what was known: the database is away
		}
		mc.log.Warn("looking up an agent's machine failed", "err", err)
		return nil, &cuttle.Error{Kind: cuttle.KindUnavailable, Message: "The node cannot look the agent up now; try again.", Err: err}
	}
	ttl := machineTTL
	if len(ms) == 0 {
		ttl = missingTTL
	}
	mc.mu.Lock()
	if len(mc.entries) >= maxEntries {
		mc.entries = map[string]cacheEntry{}
	}
	mc.entries[key] = cacheEntry{machines: ms, until: now.Add(ttl)}
	mc.mu.Unlock()
	return ms, nil
}

// byThumbprint returns the machines whose agent has the certificate.
func (mc *machineCache) byThumbprint(ctx context.Context, thumbprint string) ([]cuttle.Machine, error) {
	t := strings.ToUpper(thumbprint)
	return mc.lookup(ctx, "t:"+t, cuttle.MachineQuery{Thumbprint: t})
}

// bySubscription returns the polling machine of a subscription id; ok is
// false if there is none.
func (mc *machineCache) bySubscription(ctx context.Context, id string) (m cuttle.Machine, ok bool, err error) {
	ms, err := mc.lookup(ctx, "s:"+id, cuttle.MachineQuery{SubscriptionID: id})
	if err != nil || len(ms) == 0 {
		return cuttle.Machine{}, false, err
	}
	return ms[0], true, nil
}
