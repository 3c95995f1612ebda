package testcluster

// This file measures a node process for tests of its bounds (DESIGN.md,
// invariant 13): its resident memory and open files, read from /proc
// (Linux only), and the latency of its ping route.

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Memory is the resident memory of a process, in bytes.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the most resident since the start, or since ResetPeakMemory
}

// ReadMemory reads the resident memory of the process pid from
// /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	found := 0
	for line := range strings.Lines(string(b)) {
		// Lines such as "VmRSS:	   13560 kB".
		var dest *int64
		fields := strings.Fields(line)
		switch {
		case len(fields) != 3 || fields[2] != "kB":
			continue
		case fields[0] == "VmRSS:":
			dest = &m.RSS
		case fields[0] == "VmHWM:":
			dest = &m.Peak
		default:
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("/proc/%d/status: %q: %v", pid, line, err)
		}
		*dest = kb << 10
		found++
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("/proc/%d/status has no VmRSS and VmHWM (a zombie?)", pid)
	}
	return m, nil
}

// ResetPeakMemory sets the peak resident memory (VmHWM) of the process pid
// to its resident memory now, so that a later ReadMemory's Peak is the most
// resident since this call. It writes 5 to /proc/<pid>/clear_refs (Linux
// 4.0 and later).
func ResetPeakMemory(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// OpenFiles returns how many file descriptors (files, sockets, pipes) the
// process pid has open: the entries of /proc/<pid>/fd.
func OpenFiles(pid int) (int, error) {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(entries), err
}

// MiB renders a number of bytes in mebibytes, for messages.
func MiB(bytes int64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }

// SampleInterval is how often a Sampler reads its node's /proc entries.
const SampleInterval = 20 * time.Millisecond

// Sampler reads a node process's resident memory and open files every
// SampleInterval. It keeps the most open files seen since it started or
// since Reset, and kills the node when its resident memory passes a
// ceiling, so that a test of a node that lacks a bound fails instead of
// exhausting the machine. (The most resident memory is the kernel's
// VmHWM: see ReadMemory.)
type Sampler struct {
	n       *Node
	ceiling int64
	stop    chan struct{}
	done    chan struct{}

	mu     sync.Mutex
	files  int   // the most open files sampled
	killed int64 // the resident memory the node was killed at; 0 if it was not
}

// Sample starts sampling n, which must be running, until the test ends.
// Whenever its resident memory is above ceiling bytes, the node is killed.
func (n *Node) Sample(tb testing.TB, ceiling int64) *Sampler {
	s := &Sampler{n: n, ceiling: ceiling, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(n.Pid())
	tb.Cleanup(func() {
		close(s.stop)
		<-s.done
	})
	return s
}

func (s *Sampler) run(pid int) {
	defer close(s.done)
	tick := time.NewTicker(SampleInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		m, err := ReadMemory(pid)
		if err != nil {
			continue // exited, or between a kill and its reaping
		}
		files, _ := OpenFiles(pid)
		s.mu.Lock()
		s.files = max(s.files, files)
		kill := m.RSS > s.ceiling && s.killed == 0
		if kill {
			s.killed = m.RSS
		}
		s.mu.Unlock()
		if kill {
			s.n.Kill()
		}
	}
}

// Reset forgets the most open files sampled so far.
func (s *Sampler) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = 0
}

// MostOpenFiles returns the most open files sampled since the start or the
// last Reset.
func (s *Sampler) MostOpenFiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files
}

// Killed reports whether the sampler killed the node, and the resident
// memory it had then.
func (s *Sampler) Killed() (rss int64, killed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killed, s.killed != 0
}

// PingStats sums up the calls of a node's ping route over a span of time.
type PingStats struct {
	Samples  int           // calls that were answered 200
	Failures int           // calls that failed or were answered otherwise
	Failure  string        // the first failure
	P50, P99 time.Duration // of the answered calls
	Max      time.Duration
}

func (s PingStats) String() string {
	out := fmt.Sprintf("ping p50 %v, p99 %v, max %v over %d answers", s.P50.Round(100*time.Microsecond),
		s.P99.Round(100*time.Microsecond), s.Max.Round(100*time.Microsecond), s.Samples)
	if s.Failures > 0 {
		out += fmt.Sprintf("; %d failures, the first: %s", s.Failures, s.Failure)
	}
	return out
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// Pinger calls a node's ping route (GET /api/octopusservernodes/ping) every
// interval, or as soon as the previous answer came if it took longer, each
// time on a new connection as a load balancer's health check does, and
// records how long each answer took to its last byte. The calls come from
// a process of their own (testcluster/cmd/pingprobe, built once per test
// process): measured from a test's own process, they would also measure
// that process's scheduling while it attacks the node.
type Pinger struct {
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{} // closed when the probe's output has been read
	once  sync.Once

	mu        sync.Mutex
	latencies []time.Duration
	failures  int
	failure   string
}

// StartPinger starts calling n's ping route every interval until Stop; the
// calls stop when the test ends at the latest.
func StartPinger(tb testing.TB, n *Node, interval time.Duration) *Pinger {
	tb.Helper()
	probeOnce.Do(func() { probePath, probeErr = build("./testcluster/cmd/pingprobe", "pingprobe") })
	if probeErr != nil {
		tb.Fatal(probeErr)
	}
	cmd := exec.Command(probePath, "-url", n.URL+"/api/octopusservernodes/ping", "-interval", interval.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Pinger{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go p.read(stdout)
	tb.Cleanup(func() { p.Stop() })
	return p
}

// read records the probe's lines: nanoseconds, or "fail ...".
func (p *Pinger) read(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		ns, err := strconv.ParseInt(line, 10, 64)
		p.mu.Lock()
		if err != nil {
			if p.failures++; p.failures == 1 {
				p.failure = strings.TrimPrefix(line, "fail ")
			}
		} else {
			p.latencies = append(p.latencies, time.Duration(ns))
		}
		p.mu.Unlock()
	}
}

// Stop stops the calls, if they still run, and sums them up.
func (p *Pinger) Stop() PingStats {
	p.once.Do(func() {
		p.stdin.Close() // the probe ends after its call in flight
		<-p.done
		p.cmd.Wait()
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PingStats{Samples: len(p.latencies), Failures: p.failures, Failure: p.failure}
	if s.Samples == 0 {
		return s
	}
	sorted := slices.Clone(p.latencies)
	slices.Sort(sorted)
	// The nearest-rank percentile: the smallest latency at least q of the
	// answers did not exceed.
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(sorted)))) - 1
		return sorted[max(i, 0)]
	}
	s.P50, s.P99, s.Max = rank(0.50), rank(0.99), sorted[len(sorted)-1]
	return s
}
