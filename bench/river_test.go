package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// riverElectInterval is River's default ElectInterval: how often its leader
// re-elects itself (and followers try to be elected, plus up to 1 s jitter).
// Its lease (TTL) is ElectInterval + 10 s.
const riverElectInterval = 5 * time.Second

// riverProc is one riverleader process.
type riverProc struct {
	id, bin, db, logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	ready  chan struct{} // closed when it printed "started"
	exited chan struct{}
	err    error
}

// readyWriter appends to the log and closes ready on the line "started".
type readyWriter struct {
	f     *os.File
	ready chan struct{}
	once  sync.Once
	buf   []byte
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if bytes.Contains(w.buf, []byte("started\n")) {
		w.once.Do(func() { close(w.ready) })
		w.buf = nil
	} else if len(w.buf) > 64 {
		w.buf = w.buf[len(w.buf)-64:]
	}
	return w.f.Write(p)
}

func (p *riverProc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.ready, p.exited, p.err = make(chan struct{}), make(chan struct{}), nil
	cmd := exec.Command(p.bin, "-db", p.db, "-id", p.id)
	cmd.Stdout = &readyWriter{f: logf, ready: p.ready}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p.cmd = cmd
	exited := p.exited
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (p *riverProc) waitReady(timeout time.Duration) error {
	select {
	case <-p.ready:
		return nil
	case <-p.exited:
		return fmt.Errorf("riverleader %s exited before starting: %v", p.id, p.err)
	case <-time.After(timeout):
		return fmt.Errorf("riverleader %s did not start within %v", p.id, timeout)
	}
}

func (p *riverProc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// wait waits for the process to exit and returns how it exited.
func (p *riverProc) wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("riverleader %s did not exit within %v", p.id, timeout)
	}
}

func (p *riverProc) kill() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// riverCluster is three riverleader processes on one database.
type riverCluster struct {
	procs map[string]*riverProc
	conn  *pgx.Conn // polls river_leader
}

// newRiverCluster makes a fresh database of the shared PostgreSQL, runs
// River's migrations on it once, and starts three clients, river-a to river-c.
func newRiverCluster(b *testing.B) *riverCluster {
	b.Helper()
	bin := buildCommand(b, "riverleader")
	db := testcluster.SharedPostgres(b).NewDatabase(b)
	if out, err := exec.Command(bin, "-db", db, "-migrate", "-log-level", "warn").CombinedOutput(); err != nil {
		b.Fatalf("riverleader -migrate: %v\n%s", err, out)
	}
	dir := b.TempDir()
	rc := &riverCluster{procs: map[string]*riverProc{}}
	for _, name := range []string{"a", "b", "c"} {
		id := "river-" + name
		p := &riverProc{id: id, bin: bin, db: db, logPath: filepath.Join(dir, id+".log")}
		if err := p.start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			p.kill()
			log, _ := os.ReadFile(p.logPath)
			keepLog(b, id+".log", string(log))
			if b.Failed() {
				b.Logf("log of %s:\n%s", id, tailLines(string(log), 40))
			}
		})
		rc.procs[id] = p
	}
	for _, p := range rc.procs {
		if err := p.waitReady(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	rc.conn = conn
	return rc
}

// leader returns the client ID river_leader names and whether its lease is
// unexpired by the database's clock; id is "" when the table is empty.
func (rc *riverCluster) leader(ctx context.Context) (id string, live bool, err error) {
	err = rc.conn.QueryRow(ctx, `SELECT leader_id, expires_at > now() FROM river_leader`).Scan(&id, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return id, live, err
}

// waitLeader waits until river_leader names an unexpired leader.
func (rc *riverCluster) waitLeader(b *testing.B, timeout time.Duration) *riverProc {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		id, live, err := rc.leader(ctx)
		if err != nil {
			b.Fatalf("no River leader within %v: %v", timeout, err)
		}
		if p := rc.procs[id]; live && p != nil {
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOtherLeader polls river_leader every pollInterval until it names a
// client other than old, and returns it with the time the answer arrived.
func (rc *riverCluster) waitOtherLeader(old *riverProc, timeout time.Duration) (*riverProc, time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		id, _, err := rc.leader(ctx)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("no other River leader than %s within %v: %w", old.id, timeout, err)
		}
		if id != "" && id != old.id {
			return rc.procs[id], time.Now(), nil
		}
		time.Sleep(pollInterval)
	}
}

// BenchmarkRiverLeaderFailoverSIGKILL is the anchor of
// BenchmarkLeaderFailoverSIGKILL: three River clients with River's default
// election settings (ElectInterval 5 s plus up to 1 s jitter, TTL 15 s); the
// time from a SIGKILL of the leader to river_leader naming another client.
func BenchmarkRiverLeaderFailoverSIGKILL(b *testing.B) {
	benchmarkRiver(b, syscall.SIGKILL)
}

// BenchmarkRiverGracefulHandover is the anchor of BenchmarkDrainHandover: the
// time from a SIGTERM of the leader (on which riverleader calls client.Stop,
// which resigns and notifies) to river_leader naming another client.
func BenchmarkRiverGracefulHandover(b *testing.B) {
	benchmarkRiver(b, syscall.SIGTERM)
}

func benchmarkRiver(b *testing.B, sig syscall.Signal) {
	rc := newRiverCluster(b)
	var (
		s    samples
		runs runLog
	)
	run := 0
	for b.Loop() {
		run++
		for _, p := range rc.procs {
			if err := p.waitReady(30 * time.Second); err != nil {
				b.Fatal(err)
			}
		}
		leader := rc.waitLeader(b, 60*time.Second)
		randomPhase(riverElectInterval) // the leader re-elects itself every ElectInterval
		if id, live, err := rc.leader(context.Background()); err != nil || !live || id != leader.id {
			b.Fatalf("River's leader changed by itself: %q (live %v, err %v), was %s", id, live, err, leader.id)
		}
		t0 := time.Now()
		if err := leader.signal(sig); err != nil {
			b.Fatal(err)
		}
		next, t1, err := rc.waitOtherLeader(leader, 60*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		s = append(s, t1.Sub(t0))
		runs.add("run %d: %s to %s, %s leads after %.1f ms", run, sigName(sig), leader.id, next.id, ms(t1.Sub(t0)))
		if err := leader.wait(60 * time.Second); err != nil && sig != syscall.SIGKILL {
			b.Fatalf("%s after %s: %v", leader.id, sigName(sig), err)
		}
		// As for cuttle: restart at a random point of the election
		// interval, so that the restarted client's attempts are not in step
		// with the new leader's re-elections.
		randomPhase(riverElectInterval)
		if err := leader.start(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runs.flush(b)
	s.report(b)
}

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

func tailLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
