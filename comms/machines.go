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

// Cache lifetimes: a machine found is trusted for a while (every change of
// a machine also clears the cache, by notification); a thumbprint or
// subscription id not found is asked again soon, so that an agent that has
// just registered through another node connects within seconds.
const (
	machineTTL = 30 * time.Second
	missingTTL = 2 * time.Second
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

func (mc *machineCache) lookup(ctx context.Context, key string, q cuttle.MachineQuery) []cuttle.Machine {
	now := time.Now()
	mc.mu.Lock()
	e, ok := mc.entries[key]
	mc.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.machines
	}
	ms, err := mc.store.Machines(ctx, q)
	if err != nil {
		mc.log.Warn("looking up an agent's machine failed", "err", err)
		return e.machines // what was known, if anything: the database is away
	}
	ttl := machineTTL
	if len(ms) == 0 {
		ttl = missingTTL
	}
	mc.mu.Lock()
	mc.entries[key] = cacheEntry{machines: ms, until: now.Add(ttl)}
	mc.mu.Unlock()
	return ms
}

// byThumbprint returns the machines whose agent has the certificate.
func (mc *machineCache) byThumbprint(ctx context.Context, thumbprint string) []cuttle.Machine {
	t := strings.ToUpper(thumbprint)
	return mc.lookup(ctx, "t:"+t, cuttle.MachineQuery{Thumbprint: t})
}

// bySubscription returns the polling machine of a subscription id, if any.
func (mc *machineCache) bySubscription(ctx context.Context, id string) (cuttle.Machine, bool) {
	ms := mc.lookup(ctx, "s:"+id, cuttle.MachineQuery{SubscriptionID: id})
	if len(ms) == 0 {
		return cuttle.Machine{}, false
	}
	return ms[0], true
}
