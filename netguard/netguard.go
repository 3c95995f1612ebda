// Package netguard bounds what one client can hold of a node's HTTP ports
// (DESIGN.md invariant 13): the connections one remote address keeps open,
// and the time a request body may send nothing.
//
// A plain http.Server.ReadTimeout would also bound these, but it ends every
// request that lasts, long polls and followed logs among them. Here a
// deadline is set only while a body is being read, and it moves each time
// data arrives, so an upload of any size goes through as long as it moves.
package netguard

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limit returns a listener whose Accept closes at once a connection from a
// remote IP address that already holds max open ones, and calls refused
// with that address (refused may be nil). max zero or less is no bound.
func Limit(ln net.Listener, max int, refused func(ip string)) net.Listener {
	if max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: max, refused: refused, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	max     int
	refused func(ip string)

	mu   sync.Mutex
	open map[string]int // by IP address
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		over := l.open[ip] >= l.max
		if !over {
			l.open[ip]++
		}
		l.mu.Unlock()
		if !over {
			return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
		}
		if l.refused != nil {
			l.refused(ip)
		}
		c.Close()
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// hostOf returns the IP address of addr, or addr whole if it has no port.
func hostOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// countedConn gives its place back to the listener when it is closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps the connection's own ReadFrom (sendfile on Linux) for
// answers served from files.
func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// BodyTimeout returns h with every request body read under a deadline of
// d that moves each time a read returns: a body that sends nothing for d
// fails the read (the handler sees a timeout error) and the connection is
// closed after the answer. The deadline is also set when the request
// arrives, so a handler that refuses a request without reading its body
// (a failed authentication, say) does not wait on it either. Once the body
// has been read to its end the deadline is cleared: a long poll or a
// followed log, which answer for long after, are not cut.
func BodyTimeout(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
			h.ServeHTTP(w, r) // a connection without deadlines (a test recorder)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, d: d}
		h.ServeHTTP(w, r)
	})
}

// Refuse makes the request's answer the last on its connection and gives
// up at once on the part of its body not read: for a handler that refuses
// a request (a failed authentication, a report for a command that is not
// the agent's) without reading what the client sends. Call it before
// writing the answer. Without it the server would read on, to keep the
// connection, up to 256 KiB of a body that may never come.
func Refuse(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now())
}

// deadlineBody moves its connection's read deadline on every read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// IsTimeout reports whether err is a read that BodyTimeout's deadline
// ended.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
