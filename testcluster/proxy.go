package testcluster

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Balancer is a TCP load balancer on loopback, the stand-in for the one an
// operator puts in front of the nodes' polling ports: each new connection
// goes to the next backend in turn that accepts it, and bytes are copied
// as they are. Sever cuts every open connection, as a network fault would.
type Balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	// Bytes counts what went from the backends to the clients.
	Bytes atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// NewBalancer starts a balancer in front of the backends (host:port) and
// stops it when the test ends.
func NewBalancer(tb testing.TB, backends ...string) *Balancer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &Balancer{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}}
	go b.serve()
	tb.Cleanup(b.Close)
	return b
}

// Addr returns the balancer's host:port.
func (b *Balancer) Addr() string { return b.ln.Addr().String() }

// Close stops accepting and cuts every connection.
func (b *Balancer) Close() {
	b.ln.Close()
	b.Sever()
}

// Sever cuts every open connection; new ones are accepted as before.
func (b *Balancer) Sever() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
		delete(b.conns, c)
	}
}

func (b *Balancer) track(cs ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
}

func (b *Balancer) untrack(cs ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(b.conns, c)
	}
}

func (b *Balancer) serve() {
	for {
		client, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.relay(client)
	}
}

// dial connects to the next backend that accepts, trying each once.
func (b *Balancer) dial() (net.Conn, error) {
	start := b.next.Add(1)
	var errs []error
	for i := range len(b.backends) {
		addr := b.backends[(int(start)+i)%len(b.backends)]
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (b *Balancer) relay(client net.Conn) {
	server, err := b.dial()
	if err != nil {
		client.Close()
		return
	}
	b.track(client, server)
	defer b.untrack(client, server)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(server, client)
		done <- struct{}{}
	}()
	go func() {
		io.Copy(counter{client, &b.Bytes}, server)
		done <- struct{}{}
	}()
	<-done // either side closing ends both
}

// counter is a writer that counts what it writes.
type counter struct {
	w io.Writer
	n *atomic.Int64
}

func (c counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}
