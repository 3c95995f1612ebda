package live

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/store"
)

// TestHubDropsForAResync: a subscriber gets every update in order while it
// keeps up; one that falls behind gets a Resync in place of what it
// missed, and the others are not held up.
func TestHubDropsForAResync(t *testing.T) {
	h := &Hub{subs: map[*Subscription]struct{}{}}
	fast, slow := h.Subscribe(), h.Subscribe()
	defer fast.Close()
	h.Publish("Projects-1")
	if got := <-fast.C; got != "Projects-1" {
		t.Fatalf("got %q", got)
	}
	for range subscriberQueue + 5 {
		h.Publish("Projects-2")
		<-fast.C
	}
	var got []string
	for len(slow.C) > 0 {
		got = append(got, <-slow.C)
	}
	if !slices.Contains(got, Resync) || len(got) > subscriberQueue {
		t.Fatalf("the slow subscriber got %d updates: %q; want a Resync among them", len(got), got)
	}
	slow.Close()
	h.Publish("Projects-3") // a closed subscription receives nothing
	if len(slow.C) != 0 {
		t.Fatal("a closed subscription received an update")
	}
}

// notes counts the notifications a LogNotifier sends.
type notes struct {
	store.Store
	mu  sync.Mutex
	got []time.Time
}

func (n *notes) Notify(ctx context.Context, channel, payload string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if channel == store.ChannelTaskLogs && payload == "ServerTasks-7" {
		n.got = append(n.got, time.Now())
	}
	return nil
}

func (n *notes) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.got)
}

// TestLogNotifierCoalesces: the first write is notified at once; a burst
// of writes makes one notification per interval, and its last write is
// notified too.
func TestLogNotifierCoalesces(t *testing.T) {
	st := &notes{}
	n := NewLogNotifier(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	n.Written(7)
	for st.count() == 0 {
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(start); d > time.Second { // at once; a busy machine may take a while to run it
		t.Errorf("the first write was notified after %s", d)
	}
	burst := time.Now()
	var last time.Time // just before the burst's last write
	for time.Since(burst) < 5*LogNotifyInterval {
		last = time.Now()
		n.Written(7)
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(10 * LogNotifyInterval)
	for {
		st.mu.Lock()
		done := st.got[len(st.got)-1].After(last)
		st.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the burst's last write was not notified")
		}
		time.Sleep(time.Millisecond)
	}
	if c := st.count(); c < 2 || c > 8 { // the first, at most one per interval after it, the last
		t.Errorf("%d notifications for a burst of 5 intervals; want at most one per interval", c)
	}
	time.Sleep(3 * LogNotifyInterval)
	n.mu.Lock()
	left := len(n.tasks)
	n.mu.Unlock()
	if left != 0 {
		t.Errorf("the notifier still tracks %d tasks after their bursts ended", left)
	}
}
