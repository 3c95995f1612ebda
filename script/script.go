// Package script runs one script as a child process and streams its output
// as lines. Nodes use it for scripts that run on the server and agents for
// scripts that run on deployment targets.
//
// A script runs under a supervisor shell (bash) that leads a process group
// of its own: cancelling the script, its timeout, or the death of the
// process that started it (Pdeathsig) sends SIGTERM to the whole group, and
// whatever is left of the group KillGrace later is killed. When the script
// exits, whatever it left running in its group is killed at once (by Run;
// by the supervisor within KillGrace when the process that started it has
// died), so no process outlives the script that started it.
package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Stream names the pipe a line of output came from.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Line is one line of a script's output, without its line ending.
type Line struct {
	Stream Stream
	// Time is when the line was read.
	Time time.Time
	Text string
}

// MaxLineBytes bounds a line of output: a longer line is split into lines
// of at most this many bytes (at a UTF-8 character boundary).
const MaxLineBytes = 64 << 10

// KillGrace is how long a stopped script's process group has between
// SIGTERM and SIGKILL.
const KillGrace = 2 * time.Second

// drainTimeout bounds the wait for the output pipes to close once the
// script's process group is gone: a process that left the group (setsid)
// may hold them open.
const drainTimeout = time.Second

// supervisor is the shell that runs a script as its child, in the process
// group it leads. On SIGTERM (a cancel, or the parent's death through
// Pdeathsig) it passes SIGTERM to the whole group, waits until the script
// has exited or KillGrace has passed, and kills what is left of the group,
// itself included. The trap is set before the script starts, so there is
// no moment when the parent's death would be missed. When the script exits
// on its own, the supervisor stops what it left in the group (SIGTERM, and
// SIGKILL KillGrace later from a background killer) and exits with the
// script's code: Run kills the group at once too, but a parent that has
// died cannot, and a script may end (SIGPIPE, as its parent's pipes
// close) before the parent's Pdeathsig reaches the supervisor.
const supervisor = `trap 'trap "" TERM; kill -TERM -- -$$ 2>/dev/null; (sleep 2; kill -KILL -- -$$) & wait $script; kill -KILL -- -$$' TERM
"$@" &
script=$!
wait $script
code=$?
trap "" TERM
kill -TERM -- -$$ 2>/dev/null
(sleep 2; kill -KILL -- -$$) &
exit $code`

// Spec describes a script to run.
type Spec struct {
	// Shell is the interpreter, such as "bash", "sh" or "pwsh": a path, or
	// a name looked up on PATH.
	Shell string
	// Args come before the script's path on the interpreter's command
	// line, such as "-NoProfile", "-File" for pwsh; usually none.
	Args []string
	// Path is the script file.
	Path string
	// Dir is the working folder; empty means the current one.
	Dir string
	// Env is the script's whole environment, as KEY=VALUE entries: nothing
	// of this process's environment is passed unless it is here (see
	// CleanEnv).
	Env []string
	// Timeout stops the script after this long; 0 means no limit.
	Timeout time.Duration
}

// cleanVariables are the variables of this process's environment that
// CleanEnv keeps: what programs need to find each other, the user and
// the locale, and nothing of a node's settings or secrets.
var cleanVariables = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}

// CleanEnv returns the variables of this process's environment that a
// script may see: PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, TZ,
// TMPDIR, TERM and the LC_* locale variables. A node's settings
// (CUTTLE_MASTER_KEY, CUTTLE_DB, ...) are never among them.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(cleanVariables, name) || strings.HasPrefix(name, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// ErrShellNotFound is wrapped by the error of Run when the script's shell,
// or bash (the supervisor), is not installed.
var ErrShellNotFound = errors.New("shell not found")

// TimeoutError is the error of Run for a script stopped by its Timeout.
type TimeoutError struct {
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the script ran longer than its timeout of %v and was stopped", e.Timeout)
}

// Run runs the script and returns its exit code once it has exited and its
// output has been read; a non-zero exit code is not an error. output is
// called with the lines each read of a pipe completed (a last line without
// a line ending counts when the pipe closes), never concurrently.
//
// Run fails, with exit code -1, when the shell is missing (ErrShellNotFound)
// or cannot start; when ctx ends (the error is context.Cause(ctx)); and when
// the Timeout passes (a *TimeoutError). Either way the script's whole
// process group is gone when it returns.
func Run(ctx context.Context, spec Spec, output func([]Line)) (int, error) {
	supervisorPath, err := exec.LookPath("bash")
	if err != nil {
		return -1, fmt.Errorf("%w: bash, which supervises every script, is not installed (not found on the PATH)", ErrShellNotFound)
	}
	shell, err := exec.LookPath(spec.Shell)
	if err != nil {
		return -1, fmt.Errorf("%w: %s is not installed (not found on the PATH)", ErrShellNotFound, spec.Shell)
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, spec.Timeout, &TimeoutError{Timeout: spec.Timeout})
		defer cancel()
	}
	stdout, stdoutWriter, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer stdout.Close()
	stderr, stderrWriter, err := os.Pipe()
	if err != nil {
		stdoutWriter.Close()
		return -1, err
	}
	defer stderr.Close()

	args := append([]string{"-c", supervisor, "cuttle-script", shell}, spec.Args...)
	cmd := exec.CommandContext(ctx, supervisorPath, append(args, spec.Path)...)
	cmd.Dir = spec.Dir
	cmd.Env = append([]string{}, spec.Env...) // never nil: nil would inherit this process's
	// The pipes are files, so that Wait returns when the supervisor exits
	// rather than when every process holding them has.
	cmd.Stdout, cmd.Stderr = stdoutWriter, stderrWriter
	// A process group of its own, so that stopping reaches every process
	// the script starts; and SIGTERM to the supervisor when this process
	// dies, so that the group never outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = KillGrace + time.Second
	err = cmd.Start()
	stdoutWriter.Close()
	stderrWriter.Close()
	if err != nil {
		return -1, fmt.Errorf("starting %s: %w", spec.Shell, err)
	}

	lines := &splitter{output: output}
	drained := make(chan struct{})
	go func() {
		var readers sync.WaitGroup
		readers.Go(func() { lines.read(stdout, Stdout) })
		readers.Go(func() { lines.read(stderr, Stderr) })
		readers.Wait()
		close(drained)
	}()
	waitErr := cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the script left running in its group
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		stdout.Close() // unblocks the readers
		stderr.Close()
		<-drained
	}

	if ctx.Err() != nil {
		return -1, context.Cause(ctx)
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		return exit.ExitCode(), nil
	}
	if waitErr != nil {
		return -1, waitErr
	}
	return 0, nil
}

// splitter turns what the pipes carry into lines for one output function.
type splitter struct {
	mu     sync.Mutex // serialises output
	output func([]Line)
}

// read splits what r carries into lines until r ends.
func (s *splitter) read(r *os.File, stream Stream) {
	buf := make([]byte, 32<<10)
	var partial []byte
	var lines []Line
	for {
		n, err := r.Read(buf)
		now := time.Now()
		lines = lines[:0]
		for p := buf[:n]; len(p) > 0; {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				partial = append(partial, p...)
				break
			}
			partial = append(partial, p[:i]...)
			lines, partial = cutLines(lines, Line{Stream: stream, Time: now}, partial, true)
			p = p[i+1:]
		}
		// At the end, a last line without a line ending is complete.
		lines, partial = cutLines(lines, Line{Stream: stream, Time: now}, partial, err != nil && len(partial) > 0)
		if len(lines) > 0 {
			s.mu.Lock()
			s.output(lines)
			s.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// cutLines appends to lines the text of b as lines like line, each of at
// most MaxLineBytes. If b is a complete line it appends all of it (an
// empty line too) and returns b emptied; otherwise it keeps a last part of
// at most MaxLineBytes, moved to the start of b, as the partial line.
func cutLines(lines []Line, line Line, b []byte, complete bool) ([]Line, []byte) {
	rest := b
	for len(rest) > MaxLineBytes {
		cut := MaxLineBytes
		for i := cut; i > cut-utf8.UTFMax; i-- {
			if utf8.RuneStart(rest[i]) {
				cut = i
				break
			}
		}
		line.Text = string(rest[:cut])
		lines = append(lines, line)
		rest = rest[cut:]
	}
	if complete {
		line.Text = strings.TrimSuffix(string(rest), "\r")
		return append(lines, line), b[:0]
	}
	return lines, b[:copy(b, rest)]
}
