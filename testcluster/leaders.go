package testcluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
)

// LeaderWatch samples the ping of every node in rounds, in a fixed order,
// and records every proof that two nodes led at once.
//
// Samples of different nodes are not simultaneous, so one round seeing A and
// then B lead proves nothing: A may have resigned in between. A proof is a
// node X seen leading the same term in two consecutive rounds (so it led
// throughout, since a term is led in one stretch) while another node was
// seen leading between those two samples. Two nodes reporting the same term
// also count.
type LeaderWatch struct {
	c      *Cluster
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	rounds int
	single int // rounds in which exactly one node led
	errs   []string
}

type leaderSample struct {
	node    string
	leading bool
	term    int64
}

// WatchLeaders starts sampling. The test fails at its end if two leaders
// were seen; Stop ends the sampling earlier.
func (c *Cluster) WatchLeaders(tb testing.TB) *LeaderWatch {
	w := &LeaderWatch{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	tb.Cleanup(func() {
		w.Stop()
		for _, e := range w.Violations() {
			tb.Error(e)
		}
	})
	return w
}

// Stop ends the sampling.
func (w *LeaderWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Violations returns the proofs of two leaders found so far.
func (w *LeaderWatch) Violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errs...)
}

// Rounds returns how many rounds were sampled, and in how many exactly one node led.
func (w *LeaderWatch) Rounds() (rounds, singleLeader int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rounds, w.single
}

func (w *LeaderWatch) run() {
	defer close(w.done)
	hc := &http.Client{Timeout: 300 * time.Millisecond}
	var prev []leaderSample
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		var cur []leaderSample
		for _, n := range w.c.nodes() {
			cur = append(cur, sampleLeader(hc, n))
		}
		w.check(prev, cur)
		prev = cur
		time.Sleep(5 * time.Millisecond)
	}
}

func sampleLeader(hc *http.Client, n *Node) leaderSample {
	s := leaderSample{node: n.Config.Name}
	if n.Exited() {
		return s
	}
	resp, err := hc.Get(n.URL + "/api/octopusservernodes/ping")
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	var node client.Node
	if json.NewDecoder(resp.Body).Decode(&node) != nil {
		return s
	}
	s.leading = node.Rank == "Leader"
	s.term, _ = strconv.ParseInt(resp.Header.Get("X-Cuttle-Leader-Term"), 10, 64)
	return s
}

func (w *LeaderWatch) check(prev, cur []leaderSample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rounds++
	leaders := 0
	terms := map[int64]string{}
	for _, s := range cur {
		if !s.leading {
			continue
		}
		leaders++
		if other, ok := terms[s.term]; ok {
			w.errs = append(w.errs, fmt.Sprintf("nodes %s and %s both lead term %d", other, s.node, s.term))
		}
		terms[s.term] = s.node
	}
	if leaders == 1 {
		w.single++
	}
	if len(prev) != len(cur) {
		return // the set of nodes changed; compare from the next round on
	}
	for i := range cur {
		x0, x1 := prev[i], cur[i]
		if !x0.leading || !x1.leading || x0.term != x1.term {
			continue
		}
		// x led throughout [prev[i], cur[i]]: nobody sampled in between may lead.
		between := append(append([]leaderSample{}, prev[i+1:]...), cur[:i]...)
		for _, y := range between {
			if y.leading {
				w.errs = append(w.errs, fmt.Sprintf("node %s led term %d throughout while node %s led term %d", x1.node, x1.term, y.node, y.term))
			}
		}
	}
}

// nodes returns the cluster's nodes under its lock.
func (c *Cluster) nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.Nodes...)
}
