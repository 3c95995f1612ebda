package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/script"
)

// DefaultShutdownGrace is how long a stopping agent lets running commands
// finish and report.
const DefaultShutdownGrace = 30 * time.Second

// MaxRunningCommands bounds the commands an agent runs at once; more wait
// for a slot.
const MaxRunningCommands = 64

// maxReportBytes is the most output one report carries, in bytes of its
// journal's JSON (at least one line): far inside agentapi.MaxReportBody,
// whatever a line holds.
const maxReportBytes = 256 << 10

// timing holds the delays of an agent, which tests shorten.
type timing struct {
	// backoffFirst and backoffLast bound the delay between retries of a
	// failing request.
	backoffFirst, backoffLast time.Duration
	// reportLinger is how long a report waits for more lines of a
	// running command's output before it is sent.
	reportLinger time.Duration
	// firstReport is how long a command's first report waits for the
	// command to end, to carry its outcome too.
	firstReport time.Duration
	// reportTimeout bounds one report request.
	reportTimeout time.Duration
	// stall is how long a file transfer may move no byte before it is
	// cut and resumed.
	stall time.Duration
	// finalReports is how long a stopping agent tries to report the
	// commands it stopped, after the grace.
	finalReports time.Duration
	// prune is how often the journal is pruned.
	prune time.Duration
}

var defaultTiming = timing{
	backoffFirst:  time.Second,
	backoffLast:   10 * time.Second,
	reportLinger:  5 * time.Millisecond,
	firstReport:   20 * time.Millisecond,
	reportTimeout: 30 * time.Second,
	stall:         time.Minute,
	finalReports:  5 * time.Second,
	prune:         time.Hour,
}

// Causes of the end of a command's context.
var (
	errCanceled     = errors.New("the command was cancelled")
	errAgentStopped = errors.New("the agent stopped before the command finished")
)

// Agent runs the commands the cluster's nodes hand it (see the package
// doc). Many agents may run in one process, each with its own home.
type Agent struct {
	// ShutdownGrace is how long Run lets running commands finish and
	// report once its context ends; zero means DefaultShutdownGrace.
	ShutdownGrace time.Duration

	cfg     Config
	log     *slog.Logger
	journal journal
	work    string // the work folder, its symbolic links resolved
	links   *linkSet
	slots   chan struct{}
	timing  timing
	now     func() time.Time

	// packages is the cache of package files (see deployPackage).
	packages string
	// inUse holds the cache files and folders of the running
	// DeployPackage commands, which PrunePackages leaves alone.
	inUse inUse

	// execCtx is the parent of every command's context; it ends, with
	// errAgentStopped, once the grace has passed.
	execCtx  context.Context
	stopExec context.CancelCauseFunc
	// linkCtx bounds the links and the reports; it ends when Run returns.
	linkCtx  context.Context
	stopLink context.CancelFunc

	background sync.WaitGroup // every goroutine Run waits for

	mu       sync.Mutex
	listener net.Listener
	commands map[string]*command // being run or reported
	stopping bool                // no command is accepted
	forgot   chan struct{}       // receives when a command leaves commands
}

// New returns an agent for cfg (see Load and Configure) that logs to
// logger (slog.Default() if nil). It creates the home's journal and work
// folders if they are missing, and fails if it cannot, or if cfg has no
// certificate or is otherwise invalid.
func New(cfg Config, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if len(cfg.Identity.TLS.Certificate) == 0 {
		return nil, errors.New("the agent's configuration has no certificate (use Load or Configure)")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.PollConnections == 0 {
		cfg.PollConnections = DefaultPollConnections
	}
	if cfg.Mode == Listening && cfg.ListenAddress == "" {
		cfg.ListenAddress = DefaultListenAddress
	}
	for _, dir := range []string{commandsDir, workDir, packagesDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Home, dir), 0o700); err != nil {
			return nil, err
		}
	}
	work, err := filepath.Abs(filepath.Join(cfg.Home, workDir))
	if err == nil {
		work, err = filepath.EvalSymlinks(work)
	}
	if err != nil {
		return nil, fmt.Errorf("finding the work folder: %w", err)
	}
	a := &Agent{
		cfg:      cfg,
		log:      logger,
		journal:  journal{dir: filepath.Join(cfg.Home, commandsDir)},
		work:     work,
		packages: filepath.Join(cfg.Home, packagesDir),
		links:    newLinkSet(),
		slots:    make(chan struct{}, MaxRunningCommands),
		timing:   defaultTiming,
		now:      time.Now,
		commands: map[string]*command{},
		forgot:   make(chan struct{}, 1),
	}
	a.execCtx, a.stopExec = context.WithCancelCause(context.Background())
	a.linkCtx, a.stopLink = context.WithCancel(context.Background())
	return a, nil
}

// Run runs the agent until ctx ends. It first settles the journal: a
// command that was running when the agent last stopped is marked Failed
// (it is not run again), outcomes not yet acknowledged are reported again,
// and old commands are pruned. A polling agent then polls each trusted
// server with an address; a listening one accepts the trusted servers'
// nodes (see Listen).
//
// When ctx ends, the agent stops polling and lets running commands finish
// and report for ShutdownGrace; then it stops the remaining ones, reports
// them Failed (trying for a few seconds) and returns nil. Run fails at once
// if another agent runs on the same home, the journal cannot be read or
// the listen address cannot be bound. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	unlock, err := lockHome(a.cfg.Home)
	if err != nil {
		return err
	}
	defer unlock()
	defer a.stopLink()
	defer a.stopExec(errAgentStopped)
	var servers []*link
	switch a.cfg.Mode {
	case Listening:
		if _, err := a.Listen(); err != nil {
			return err
		}
	case Polling:
		for _, ts := range a.cfg.TrustedServers {
			if ts.CommunicationStyle == cuttle.Polling {
				l := a.newServerLink(ts)
				a.links.add(l)
				servers = append(servers, l)
			}
		}
	}
	// The journal is settled before any poll, which could hand out again
	// a command it holds.
	if err := a.recoverJournal(); err != nil {
		a.closeListener()
		return err
	}
	switch a.cfg.Mode {
	case Polling:
		for _, l := range servers {
			for range a.cfg.PollConnections {
				a.background.Go(func() { a.poll(ctx, l) })
			}
		}
		if len(servers) == 0 {
			a.log.Warn("this polling agent trusts no server to poll; add one with `cuttle agent register` or `cuttle agent poll-server`")
		}
		a.log.Info("agent started", "name", a.cfg.Name, "mode", a.cfg.Mode, "servers", len(servers), "thumbprint", a.cfg.Identity.Thumbprint, "version", cuttle.Version)
	case Listening:
		a.background.Go(func() { a.serve(ctx, a.linkCtx, a.listener) })
		a.log.Info("agent started", "name", a.cfg.Name, "mode", a.cfg.Mode, "listen", a.listener.Addr().String(), "thumbprint", a.cfg.Identity.Thumbprint, "version", cuttle.Version)
	}
	a.background.Go(func() { a.pruneEvery(ctx) })

	<-ctx.Done()
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	grace := a.ShutdownGrace
	if grace <= 0 {
		grace = DefaultShutdownGrace
	}
	if n := a.activeCommands(); n > 0 {
		a.log.Info("stopping: waiting for the running commands to finish and report", "commands", n, "grace", grace)
	}
	if !a.waitIdle(grace) {
		a.log.Warn("stopping: the grace has passed; stopping the commands still running", "commands", a.activeCommands())
		a.stopExec(errAgentStopped)
		if !a.waitIdle(script.KillGrace + a.timing.finalReports) {
			a.log.Warn("stopping: some outcomes could not be reported; they will be after the next start", "commands", a.activeCommands())
		}
	}
	a.closeListener()
	a.stopLink()
	a.background.Wait()
	a.log.Info("agent stopped")
	return nil
}

func (a *Agent) closeListener() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener != nil {
		a.listener.Close()
	}
}

func (a *Agent) activeCommands() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.commands)
}

// waitIdle waits until no command is being run or reported, or for d; it
// reports whether none is.
func (a *Agent) waitIdle(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for a.activeCommands() > 0 {
		select {
		case <-a.forgot:
		case <-deadline.C:
			return a.activeCommands() == 0
		}
	}
	return true
}

// accept takes a command a node handed out over the link from. A UID the
// agent runs or reports already is reported again, at once; a UID of the
// journal is reported, not run; a new one is journaled and run.
func (a *Agent) accept(cmd agentapi.Command, from *link) {
	if !uidPattern.MatchString(cmd.UID) {
		a.log.Error("a node handed out a command whose UID this agent cannot journal; it is ignored", "uid", cmd.UID, "kind", cmd.Kind, "from", from.name)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.commands[cmd.UID]; ok {
		c.nudge()
		return
	}
	if a.stopping {
		a.log.Info("the agent is stopping: a command handed out now is left to the cluster", "command", cmd.UID, "kind", cmd.Kind)
		return
	}
	c := newCommand(cmd, from, a.journal.commandDir(cmd.UID))
	a.commands[cmd.UID] = c
	a.background.Go(func() { a.handle(c) })
}

// cancel stops the command uid if the agent runs it.
func (a *Agent) cancel(uid string) {
	a.mu.Lock()
	c := a.commands[uid]
	a.mu.Unlock()
	if c != nil {
		c.cancel()
	}
}

// forget drops c from the commands being run or reported, and reports
// true. With unlessHandedOut (its reporter is done), it keeps c if it was
// handed out again since the reporter last looked, and reports false:
// accept nudges under a.mu, so a command is either nudged or forgotten.
func (a *Agent) forget(c *command, unlessHandedOut bool) bool {
	a.mu.Lock()
	if unlessHandedOut {
		select {
		case <-c.nudged:
			a.mu.Unlock()
			return false
		default:
		}
	}
	delete(a.commands, c.uid)
	a.mu.Unlock()
	c.close()
	notify(a.forgot)
	return true
}

// handle runs a command new to the journal and has it reported, or has
// one the journal has reported.
func (a *Agent) handle(c *command) {
	log := a.log.With("command", c.uid, "kind", c.kind)
	rec, err := a.journal.load(c.uid)
	switch {
	case err == nil:
		log.Info("a node handed out a command this agent ran already; it is not run again, its outcome is reported again", "state", rec.State)
		// The cluster lost what it acknowledged, or never stored it.
		rec.Acknowledged, rec.Refused = false, ""
		if err := c.reopen(rec, log); err != nil {
			log.Error("the journal of the command cannot be read; it is not reported", "err", err)
			a.forget(c, false)
			return
		}
		a.report(c)
		return
	case !errors.Is(err, fs.ErrNotExist):
		log.Error("the journal cannot tell whether this command ran, so it is not run", "err", err)
		a.forget(c, false)
		return
	}

	started := true
	select {
	case a.slots <- struct{}{}:
	case <-a.execCtx.Done():
		started = false
	}
	rec = record{UID: c.uid, Kind: c.kind, State: cuttle.CommandRunning, StartedAt: a.now().UTC()}
	if !started {
		rec.State, rec.Error, rec.FinishedAt = cuttle.CommandFailed, "the agent stopped before the command started; it was not run", rec.StartedAt
	}
	out, err := a.journal.create(rec)
	if err != nil {
		if started {
			<-a.slots
		}
		log.Error("the command cannot be journaled, so it is not run", "err", err)
		a.forget(c, false)
		return
	}
	c.begin(rec, out, log)
	a.background.Go(func() { a.report(c) })
	if started {
		ctx, stop := c.start(a.execCtx)
		o := a.execute(ctx, c)
		stop()
		<-a.slots
		if err := c.finish(a.journal, o, a.now()); err != nil {
			log.Error("the outcome of the command cannot be journaled", "err", err)
		}
		log.Info("command ended", "state", o.State, "error", o.Error)
	}
}

// recoverJournal settles the journal as the agent starts (see Run).
func (a *Agent) recoverJournal() error {
	a.prune() // first: what it keeps is then all there is to report
	uids, err := a.journal.uids()
	if err != nil {
		return fmt.Errorf("reading the journal: %w", err)
	}
	for _, uid := range uids {
		rec, err := a.journal.load(uid)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Created, but its state never written: the work never began.
			a.journal.remove(uid)
			continue
		case err != nil:
			a.log.Error("a command's journal is damaged; it is left alone", "command", uid, "err", err)
			continue
		}
		if rec.State == cuttle.CommandRunning {
			rec.State, rec.Error, rec.FinishedAt = cuttle.CommandFailed, "the agent stopped while the command ran; it was not run again", a.now().UTC()
			rec.ExitCode = -1
			if err := a.journal.save(rec); err != nil {
				return fmt.Errorf("marking command %s failed: %w", uid, err)
			}
			a.log.Warn("a command was running when the agent stopped; it is marked failed and not run again", "command", uid, "kind", rec.Kind)
		}
		if rec.settled() {
			continue
		}
		c := newCommand(agentapi.Command{UID: uid, Kind: rec.Kind}, nil, a.journal.commandDir(uid))
		log := a.log.With("command", uid, "kind", rec.Kind)
		if err := c.reopen(rec, log); err != nil {
			a.log.Error("a command's output cannot be read; it is not reported", "command", uid, "err", err)
			continue
		}
		a.mu.Lock()
		a.commands[uid] = c
		a.mu.Unlock()
		a.background.Go(func() { a.report(c) })
	}
	return nil
}

// pruneEvery prunes the journal until ctx ends.
func (a *Agent) pruneEvery(ctx context.Context) {
	t := time.NewTicker(a.timing.prune)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.prune()
		}
	}
}

// prune removes the commands that ended and were acknowledged more than
// JournalRetention ago.
func (a *Agent) prune() {
	uids, err := a.journal.uids()
	if err != nil {
		a.log.Warn("pruning the journal failed", "err", err)
		return
	}
	for _, uid := range uids {
		rec, err := a.journal.load(uid)
		if err != nil || !rec.settled() || a.now().Sub(rec.FinishedAt) < JournalRetention {
			continue
		}
		a.mu.Lock()
		_, active := a.commands[uid]
		if !active {
			err = a.journal.remove(uid)
		}
		a.mu.Unlock()
		if err != nil {
			a.log.Warn("pruning a command from the journal failed", "command", uid, "err", err)
		}
	}
}

// lockFile is the file of the home that the running agent holds locked.
const lockFile = "agent.lock"

// lockHome takes the home's lock, so that two agents never share one
// journal (each would take the other's running commands for ones a dead
// agent left). The lock goes with the process, however it ends.
func lockHome(home string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(home, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the agent's home: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another cuttle agent runs on the home %s; stop it first, or give this one a home of its own (--home)", home)
		}
		return nil, fmt.Errorf("locking the agent's home: %w", err)
	}
	return func() { f.Close() }, nil
}
