package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/store"
)

// receive waits for a notification on ch that is not a resync, and fails the
// test if ch closes or none comes within waitTimeout.
func receive(t *testing.T, ch <-chan store.Notification, what string) store.Notification {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case n, ok := <-ch:
			if !ok {
				t.Fatalf("%s: the listen channel closed", what)
			}
			if n.Channel == store.ChannelResync {
				continue // a reconnect: allowed at any time
			}
			return n
		case <-timeout:
			t.Fatalf("%s: no notification within %v", what, waitTimeout)
		}
	}
}

// waitClosed waits for ch to close, discarding what it still delivers.
func waitClosed(t *testing.T, ch <-chan store.Notification, what string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("%s: the listen channel did not close within %v", what, waitTimeout)
		}
	}
}

func testNotifyListen(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch1, err := s.Listen(ctx)
	check(t, err, "Listen")
	ch2, err := s.Listen(ctx)
	check(t, err, "Listen")

	sent := []store.Notification{
		{Channel: store.ChannelNodes, Payload: "7"},
		{Channel: store.ChannelSettings, Payload: ""},
		{Channel: store.ChannelLeader, Payload: "term 3"},
	}
	for _, n := range sent {
		check(t, s.Notify(t.Context(), n.Channel, n.Payload), "Notify")
	}
	// Each listener gets every notification; the contract does not promise
	// their order.
	for i, ch := range []<-chan store.Notification{ch1, ch2} {
		want := map[store.Notification]int{}
		for _, n := range sent {
			want[n]++
		}
		for range sent {
			got := receive(t, ch, "Listen")
			if want[got] == 0 {
				t.Errorf("listener %d received %+v, which was not sent (or twice)", i+1, got)
			}
			want[got]--
		}
	}

	cancel()
	waitClosed(t, ch1, "after its context ended")
	waitClosed(t, ch2, "after its context ended")
}

func testListenClose(t *testing.T, s store.Store) {
	// Ending one listener leaves the others listening.
	ctx1, cancel1 := context.WithCancel(t.Context())
	ch1, err := s.Listen(ctx1)
	check(t, err, "Listen")
	ch2, err := s.Listen(t.Context())
	check(t, err, "Listen")
	cancel1()
	waitClosed(t, ch1, "after its context ended")

	check(t, s.Notify(t.Context(), store.ChannelNodes, "1"), "Notify")
	if got := receive(t, ch2, "Listen"); got.Channel != store.ChannelNodes || got.Payload != "1" {
		t.Errorf("received %+v, want %s 1", got, store.ChannelNodes)
	}

	// A listener whose context has already ended closes at once.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	ch3, err := s.Listen(done)
	if err == nil {
		waitClosed(t, ch3, "Listen with an ended context")
	}
}
