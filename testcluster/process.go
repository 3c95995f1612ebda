package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is one child process of the harness (a node or an agent), its
// output going to a log file.
type process struct {
	name    string // for messages, such as "node node-a"
	logPath string
	env     []string // KEY=VALUE added to the test's environment (less its CUTTLE_ variables)

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	logStart int64 // the log's size when the process last started
}

// start starts the program with args (again, after it exited), killed if
// the test process dies.
func (p *process) start(program string, args ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if info, err := logf.Stat(); err == nil {
		p.logStart = info.Size()
	}
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(cleanEnv(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p.cmd, p.exited, p.exitErr = cmd, make(chan struct{}), nil
	exited := p.exited
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// Exited reports whether the process has exited.
func (p *process) Exited() bool {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ExitErr returns how the process exited (nil for status 0).
func (p *process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Pid returns the process id, 0 before it started.
func (p *process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Signal sends sig to the process.
func (p *process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return errors.New("not started")
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit and returns its exit error.
func (p *process) Wait(timeout time.Duration) error {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return p.ExitErr()
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %v", p.name, timeout)
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *process) Kill() {
	if p.Exited() {
		return
	}
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
}

// Terminate sends SIGTERM and waits for the exit, returning its error.
func (p *process) Terminate(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.Wait(timeout)
}

// Log returns everything the process wrote so far.
func (p *process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// logSinceStart returns what the process wrote to its log since it last
// started.
func (p *process) logSinceStart() string {
	p.mu.Lock()
	start := p.logStart
	p.mu.Unlock()
	if log := p.Log(); int64(len(log)) >= start {
		return log[start:]
	}
	return ""
}
