package postgres

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/store"
)

// TestMailboxOverflow checks that a slow consumer gets one ChannelResync in
// place of what overflowed, then the notifications that came after it.
func TestMailboxOverflow(t *testing.T) {
	mb := &mailbox{wake: make(chan struct{}, 1)}
	for i := range listenQueue + 10 {
		mb.put(store.Notification{Channel: store.ChannelNodes, Payload: strconv.Itoa(i)})
	}
	mb.put(store.Notification{Channel: store.ChannelLeader, Payload: "late"})
	want := []store.Notification{
		{Channel: store.ChannelResync},
		{Channel: store.ChannelNodes, Payload: strconv.Itoa(listenQueue)},
	}
	for _, w := range want {
		if got, ok := mb.take(); !ok || got != w {
			t.Fatalf("take = %+v, %v; want %+v", got, ok, w)
		}
	}
	var last store.Notification
	for {
		n, ok := mb.take()
		if !ok {
			break
		}
		if n.Channel == store.ChannelResync {
			t.Fatalf("a second resync")
		}
		last = n
	}
	if last.Payload != "late" {
		t.Fatalf("the last notification = %+v, want the late one", last)
	}
}

// TestMailboxResyncReplacesQueue checks that a resync makes what was queued
// before it redundant.
func TestMailboxResyncReplacesQueue(t *testing.T) {
	mb := &mailbox{wake: make(chan struct{}, 1)}
	mb.put(store.Notification{Channel: store.ChannelNodes, Payload: "1"})
	mb.put(store.Notification{Channel: store.ChannelResync})
	mb.put(store.Notification{Channel: store.ChannelNodes, Payload: "2"})
	for _, w := range []store.Notification{{Channel: store.ChannelResync}, {Channel: store.ChannelNodes, Payload: "2"}} {
		if got, ok := mb.take(); !ok || got != w {
			t.Fatalf("take = %+v, %v; want %+v", got, ok, w)
		}
	}
	if n, ok := mb.take(); ok {
		t.Fatalf("take = %+v, want nothing", n)
	}
}

// TestMailboxDeliver checks delivery to a channel and its closing when the
// context ends.
func TestMailboxDeliver(t *testing.T) {
	mb := &mailbox{wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan store.Notification)
	done := make(chan struct{})
	go func() {
		mb.deliver(ctx, out)
		close(done)
	}()
	for i := range 3 {
		want := store.Notification{Channel: store.ChannelSettings, Payload: strconv.Itoa(i)}
		mb.put(want)
		select {
		case got := <-out:
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("nothing delivered")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deliver did not return after the context ended")
	}
	if _, ok := <-out; ok {
		t.Fatal("out is still open")
	}
}
