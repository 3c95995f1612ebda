package script

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// output collects what a script prints and hands out its lines as they
// come.
type output struct {
	mu    sync.Mutex
	lines []Line
	each  chan Line
}

func newOutput() *output { return &output{each: make(chan Line, 1000)} }

func (o *output) add(lines []Line) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range lines {
		o.lines = append(o.lines, l)
		select {
		case o.each <- l:
		default:
		}
	}
}

func (o *output) texts(stream Stream) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, l := range o.lines {
		if l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

// pid waits for the next line of output and reads it as a process id.
func (o *output) pid(t *testing.T) int {
	t.Helper()
	select {
	case l := <-o.each:
		pid, err := strconv.Atoi(l.Text)
		if err != nil {
			t.Fatalf("want a pid, the script printed %q", l.Text)
		}
		return pid
	case <-time.After(5 * time.Second):
		t.Fatal("the script printed no pid")
		return 0
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// alive reports whether the process pid runs: it exists and is not a
// zombie (a killed process whose parent died waits for init to reap it).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// waitGone waits until the process pid no longer runs.
func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutputLinesAndExitCode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := strings.Repeat("é", MaxLineBytes/2+100) // two bytes a character
	path := writeScript(t, `echo "one $GREETING"
echo err >&2
echo
printf 'crlf\r\n'
pwd
echo "`+long+`"
printf 'no newline'
exit 3`)
	out := newOutput()
	code, err := Run(context.Background(), Spec{Shell: "bash", Path: path, Dir: dir, Env: []string{"GREETING=hello"}}, out.add)
	if err != nil || code != 3 {
		t.Fatalf("Run: %d, %v; want exit code 3", code, err)
	}
	got := out.texts(Stdout)
	if len(got) != 7 {
		t.Fatalf("stdout lines: %q", got)
	}
	want := []string{"one hello", "", "crlf", dir}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("line %d: %q, want %q", i, got[i], w)
		}
	}
	if len(got[4]) > MaxLineBytes || got[4]+got[5] != long {
		t.Errorf("a long line splits into %d + %d bytes; want at most %d each, together the line", len(got[4]), len(got[5]), MaxLineBytes)
	}
	if got[6] != "no newline" {
		t.Errorf("last line %q", got[6])
	}
	if e := out.texts(Stderr); len(e) != 1 || e[0] != "err" {
		t.Errorf("stderr lines: %q", e)
	}
}

func TestMissingShell(t *testing.T) {
	t.Parallel()
	_, err := Run(context.Background(), Spec{Shell: "no-such-shell-cuttle", Path: writeScript(t, "true")}, func([]Line) {})
	if !errors.Is(err, ErrShellNotFound) || !strings.Contains(err.Error(), "no-such-shell-cuttle") {
		t.Fatalf("Run with a missing shell: %v; want ErrShellNotFound naming it", err)
	}
}

func TestTimeoutStopsTheProcessGroup(t *testing.T) {
	t.Parallel()
	out := newOutput()
	start := time.Now()
	code, err := Run(context.Background(), Spec{Shell: "bash", Timeout: 300 * time.Millisecond,
		Path: writeScript(t, "sleep 300 &\necho $!\nwait")}, out.add)
	var timeout *TimeoutError
	if !errors.As(err, &timeout) || code != -1 || !strings.Contains(err.Error(), "300ms") {
		t.Fatalf("Run: %d, %v; want a TimeoutError naming the timeout", code, err)
	}
	if took := time.Since(start); took > KillGrace+time.Second {
		t.Errorf("Run took %v", took)
	}
	waitGone(t, out.pid(t), time.Second)
}

func TestCancelStopsTheProcessGroup(t *testing.T) {
	t.Parallel()
	out := newOutput()
	stopped := errors.New("stopped by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		// The script ignores SIGTERM, so only the SIGKILL after the grace ends it.
		_, err := Run(ctx, Spec{Shell: "bash", Path: writeScript(t, "trap '' TERM\nsleep 300 &\necho $!\nwait")}, out.add)
		done <- err
	}()
	pid := out.pid(t)
	cancel(stopped)
	select {
	case err := <-done:
		if !errors.Is(err, stopped) {
			t.Fatalf("Run: %v; want the cause of the cancel", err)
		}
	case <-time.After(KillGrace + 3*time.Second):
		t.Fatal("Run did not return after the cancel")
	}
	waitGone(t, pid, time.Second)
}

func TestExitKillsWhatTheScriptLeft(t *testing.T) {
	t.Parallel()
	out := newOutput()
	start := time.Now()
	// The background sleep keeps standard output open.
	code, err := Run(context.Background(), Spec{Shell: "sh", Path: writeScript(t, "sleep 300 &\necho $!")}, out.add)
	if err != nil || code != 0 {
		t.Fatalf("Run: %d, %v", code, err)
	}
	if took := time.Since(start); took > drainTimeout {
		t.Errorf("Run took %v: it waited for the pipes of a process it should have killed", took)
	}
	waitGone(t, out.pid(t), time.Second)
}

func TestEscapedProcessDoesNotHoldRunForever(t *testing.T) {
	t.Parallel()
	out := newOutput()
	start := time.Now()
	// setsid leaves the process group; the escaped sleep holds the pipes.
	code, err := Run(context.Background(), Spec{Shell: "bash", Path: writeScript(t, "setsid sleep 30 &\necho $!")}, out.add)
	pid := out.pid(t)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if err != nil || code != 0 {
		t.Fatalf("Run: %d, %v", code, err)
	}
	if took := time.Since(start); took > drainTimeout+time.Second {
		t.Errorf("Run took %v; want about %v", took, drainTimeout)
	}
}

// TestCleanEnv: a script sees only the environment it is given; CleanEnv
// keeps what programs need and none of a node's settings.
func TestCleanEnv(t *testing.T) {
	t.Setenv("CUTTLE_MASTER_KEY", "secret-master-key")
	t.Setenv("LC_TIME", "C.UTF-8")
	path := writeScript(t, "env")
	for _, c := range []struct {
		env        []string
		want, none []string
	}{
		{CleanEnv(), []string{"PATH=" + os.Getenv("PATH"), "LC_TIME=C.UTF-8"}, []string{"secret-master-key"}},
		{nil, nil, []string{"secret-master-key", "LC_TIME", "HOME="}},
	} {
		out := newOutput()
		if code, err := Run(context.Background(), Spec{Shell: "bash", Path: path, Env: c.env}, out.add); err != nil || code != 0 {
			t.Fatalf("Run: %d, %v", code, err)
		}
		env := out.texts(Stdout)
		for _, w := range c.want {
			if !slices.Contains(env, w) {
				t.Errorf("with %d variables given, the script's environment lacks %s:\n%s", len(c.env), w, strings.Join(env, "\n"))
			}
		}
		for _, kv := range env {
			for _, n := range c.none {
				if strings.Contains(kv, n) {
					t.Errorf("with %d variables given, the script saw %s", len(c.env), kv)
				}
			}
		}
	}
}

// TestSupervisorStopsWhatTheScriptLeft: when the script exits, its
// supervisor stops what the script left in its group by itself (SIGTERM,
// then SIGKILL after KillGrace), and exits with the script's exit code. Run
// kills the group too, but a node that has died does not: a script killed
// by SIGPIPE as its node died, before the node's Pdeathsig reached the
// supervisor, left its background processes running.
func TestSupervisorStopsWhatTheScriptLeft(t *testing.T) {
	t.Parallel()
	pids := filepath.Join(t.TempDir(), "pids")
	path := writeScript(t, "sleep 300 &\necho $! > "+pids+"\n(trap '' TERM; exec sleep 300) &\necho $! >> "+pids+"\nexit 5")
	// The supervisor alone, as it runs once the process that started it is gone.
	cmd := exec.Command("bash", "-c", supervisor, "cuttle-script", "bash", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Fatalf("the supervisor exited with %v; want the script's exit code 5", err)
	}
	b, err := os.ReadFile(pids)
	fields := strings.Fields(string(b))
	if err != nil || len(fields) != 2 {
		t.Fatalf("pids: %q, %v", b, err)
	}
	obedient, _ := strconv.Atoi(fields[0])
	deaf, _ := strconv.Atoi(fields[1])
	defer syscall.Kill(deaf, syscall.SIGKILL)
	defer syscall.Kill(obedient, syscall.SIGKILL)
	waitGone(t, obedient, time.Second)
	waitGone(t, deaf, KillGrace+time.Second)
}
