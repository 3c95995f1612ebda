package netguard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve serves h on a loopback listener passed through wrap, and returns
// its address.
func serve(t *testing.T, h http.Handler, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(wrap(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// closedByPeer waits up to d for the server to close c: a read that ends
// in EOF or a reset. Anything the server sent first is read past.
func closedByPeer(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if err == nil || !IsTimeout(err) {
		return nil // EOF (Copy's nil) or a reset
	}
	return fmt.Errorf("the connection is still open after %v", d)
}

func TestLimitClosesConnectionsOverTheBound(t *testing.T) {
	var refused atomic.Int32
	addr := serve(t, http.NotFoundHandler(), func(ln net.Listener) net.Listener {
		return Limit(ln, 2, func(string) { refused.Add(1) })
	})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	// Both are served.
	for _, c := range []net.Conn{a, b} {
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a connection within the bound: %v, %v", resp, err)
		}
	}
	third := dial()
	if err := closedByPeer(third, 5*time.Second); err != nil {
		t.Fatalf("the third connection: %v", err)
	}
	if refused.Load() != 1 {
		t.Errorf("refused called %d times, want 1", refused.Load())
	}
	// A closed connection gives its place back.
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial()
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection is served after one of the two closed")
		}
		time.Sleep(10 * time.Millisecond) // the server has not seen the close yet
	}
}

// slowPost sends a POST that announces 100000 bytes of body and sends one.
func slowPost(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx")
	return c
}

func TestBodyTimeoutEndsAStalledBody(t *testing.T) {
	const d = 300 * time.Millisecond
	readErr := make(chan error, 1)
	addr := serve(t, BodyTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
		http.Error(w, "cut off", http.StatusBadRequest)
	}), d), func(ln net.Listener) net.Listener { return ln })
	c := slowPost(t, addr)
	select {
	case err := <-readErr:
		if !IsTimeout(err) {
			t.Errorf("the handler's read ended with %v; want a timeout", err)
		}
	case <-time.After(20 * d):
		t.Fatalf("the handler still reads a body that sent nothing for %v", 20*d)
	}
	if err := closedByPeer(c, 5*time.Second); err != nil {
		t.Error(err)
	}
}

func TestBodyTimeoutEndsABodyNobodyReads(t *testing.T) {
	const d = 300 * time.Millisecond
	addr := serve(t, BodyTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you?", http.StatusUnauthorized)
	}), d), func(ln net.Listener) net.Listener { return ln })
	c := slowPost(t, addr)
	c.SetReadDeadline(time.Now().Add(20 * d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the answer to an unread body: %v, %v; want 401 within %v", resp, err, 20*d)
	}
	if err := closedByPeer(c, 5*time.Second); err != nil {
		t.Error(err)
	}
}

// A body that keeps moving goes through however long it takes, and an
// answer that comes long after the body's end is not cut.
func TestBodyTimeoutMovesWithTheData(t *testing.T) {
	const d = 300 * time.Millisecond
	addr := serve(t, BodyTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select { // a long poll after the body
		case <-time.After(3 * d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "%d", n)
	}), d), func(ln net.Listener) net.Listener { return ln })
	pr, pw := io.Pipe()
	go func() {
		for range 8 { // 8 pieces, a third of d apart: longer than d in all
			pw.Write([]byte(strings.Repeat("x", 1000)))
			time.Sleep(d / 3)
		}
		pw.Close()
	}()
	resp, err := http.Post("http://"+addr+"/upload", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "8000" {
		t.Errorf("a moving body: %d %q; want 200 8000", resp.StatusCode, body)
	}
}

// A refusal answers at once and closes the connection, without waiting
// for the body.
func TestRefuseClosesAtOnce(t *testing.T) {
	const d = time.Minute
	addr := serve(t, BodyTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Refuse(w)
		http.Error(w, "who are you?", http.StatusUnauthorized)
	}), d), func(ln net.Listener) net.Listener { return ln })
	c := slowPost(t, addr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the refusal: %v, %v", resp, err)
	}
	if err := closedByPeer(c, 10*time.Second); err != nil {
		t.Error(err)
	}
}

func TestIsTimeout(t *testing.T) {
	if IsTimeout(errors.New("x")) || IsTimeout(io.EOF) {
		t.Error("IsTimeout of a plain error")
	}
}
