package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/certs"
)

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

// eventually waits until cond returns nil, checking it every few
// milliseconds, and fails the test with its last error after within.
func eventually(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for _, pid := range pids {
			if alive(pid) {
				return fmt.Errorf("process %d still runs", pid)
			}
		}
		return nil
	})
}

// pids reads the process ids a script printed, one a line.
func pids(t *testing.T, lines []agentapi.Line) []int {
	t.Helper()
	var out []int
	for _, l := range lines {
		pid, err := strconv.Atoi(l.Text)
		if err != nil {
			t.Fatalf("want a pid, got line %q", l.Text)
		}
		out = append(out, pid)
	}
	return out
}

func checkOrdered(t *testing.T, sc storedCommand) {
	t.Helper()
	for i, l := range sc.lines {
		if l.Seq != int64(i+1) {
			t.Fatalf("line %d has Seq %d", i+1, l.Seq)
		}
	}
	if sc.gaps != 0 {
		t.Errorf("%d reports did not follow the lines stored: one report at a time, in order, should never leave a gap", sc.gaps)
	}
}

func TestScriptRunsOnceWithItsOutputInOrder(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	const count = 2500
	cmd := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", WorkDir: "deploy/app", Env: map[string]string{"GREETING": "hello"},
		Body: fmt.Sprintf(`echo "$GREETING from $CUTTLE_COMMAND_ID in $PWD, work $CUTTLE_WORK"
echo ran >> "$CUTTLE_WORK/runs"
for i in $(seq 1 %d); do echo "line $i"; done
echo oops >&2
exit 3`, count)})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandFailed) || sc.exitCode != 3 || sc.err != "The script exited with code 3." {
		t.Errorf("outcome %s, exit code %d, error %q; want Failed, 3 and the exit code named", sc.state, sc.exitCode, sc.err)
	}
	checkOrdered(t, sc)
	if len(sc.lines) != count+2 {
		t.Fatalf("%d lines stored, want %d", len(sc.lines), count+2)
	}
	// The two streams are read apart: only the order within each counts.
	var stdout, stderr []string
	for _, l := range sc.lines {
		if l.Stream == "stderr" {
			stderr = append(stderr, l.Text)
		} else {
			stdout = append(stdout, l.Text)
		}
	}
	if want := fmt.Sprintf("hello from %s in %s, work %s", cmd.UID, filepath.Join(a.work, "deploy", "app"), a.work); stdout[0] != want {
		t.Errorf("first line %q, want %q", stdout[0], want)
	}
	for i, text := range stdout[1:] {
		if text != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("standard output line %d is %q", i+2, text)
		}
	}
	if len(stderr) != 1 || stderr[0] != "oops" {
		t.Errorf("standard error %q, want oops", stderr)
	}
	if sc.maxBatch > agentapi.MaxReportLines || sc.reports < 3 {
		t.Errorf("%d reports, the largest of %d lines; want batches of at most %d", sc.reports, sc.maxBatch, agentapi.MaxReportLines)
	}
	if runs, _ := os.ReadFile(filepath.Join(a.work, "runs")); string(runs) != "ran\n" {
		t.Errorf("the script ran %q", runs)
	}
}

func TestCommandHandedOutAgainIsReportedNotRun(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	cmd := scriptCommand(t, `echo ran >> "$CUTTLE_WORK/runs"; echo one; echo two`)
	check := func(what string) {
		t.Helper()
		sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
		checkOrdered(t, sc)
		if sc.state != string(cuttle.CommandSuccess) || len(sc.lines) != 2 || sc.lines[0].Text != "one" || sc.lines[1].Text != "two" {
			t.Fatalf("%s: %s with lines %+v; want Success with two lines", what, sc.state, sc.lines)
		}
	}
	cl.enqueue(cfg.SubscriptionId, cmd)
	check("first run")

	// The cluster lost what it stored and hands the command out again.
	cl.forget(cmd.UID)
	cl.enqueue(cfg.SubscriptionId, cmd)
	check("handed out again")

	// And again, to an agent started again on the same home.
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	cl.forget(cmd.UID)
	again := startAgent(t, cfg)
	cl.enqueue(cfg.SubscriptionId, cmd)
	check("handed out again after a restart")
	again.logs.waitFor(t, "it is not run again", time.Second)

	if runs, _ := os.ReadFile(filepath.Join(a.work, "runs")); string(runs) != "ran\n" {
		t.Errorf("the script ran %q; want once", runs)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	// A handout can go to a poll of the stopped agent that the node had
	// not yet seen end; the node hands the command out again then
	// (fakeRedeliverAfter), as comms does.
	if n := cl.handouts[cmd.UID] - cl.redeliveries[cmd.UID]; n != 3 {
		t.Errorf("handed out %d times from the queue (and %d times again), want 3", n, cl.redeliveries[cmd.UID])
	}
}

func TestReportsMoveToAnotherNodeWhenOneDies(t *testing.T) {
	t.Parallel()
	cl := newFakeCluster(t)
	first, second := startNode(t, cl, cl.id), startNode(t, cl, cl.id)
	cfg := configureAgent(t, cl, Polling, first, second)
	startAgent(t, cfg)
	const count = 60
	cmd := scriptCommand(t, fmt.Sprintf(`for i in $(seq 1 %d); do echo "line $i"; sleep 0.02; done`, count))
	cl.enqueue(cfg.SubscriptionId, cmd)
	cl.waitFor(t, 5*time.Second, "some lines", func() bool {
		sc := cl.stored[cmd.UID]
		return sc != nil && len(sc.lines) >= 10
	})
	cl.mu.Lock()
	dying := cl.lastNode
	cl.mu.Unlock()
	surviving := second
	if dying == second {
		surviving = first
	}
	dying.kill()

	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	checkOrdered(t, sc)
	if sc.state != string(cuttle.CommandSuccess) || len(sc.lines) != count {
		t.Fatalf("%s with %d lines; want Success with %d", sc.state, len(sc.lines), count)
	}
	for i, l := range sc.lines {
		if l.Text != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("line %d is %q", i+1, l.Text)
		}
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if got := cl.byNode[surviving][cmd.UID]; got != count {
		t.Errorf("the surviving node stored up to line %d; want the reports to move to it", got)
	}
}

func TestReportsResendWhatTheClusterLost(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	const count = 40
	cmd := scriptCommand(t, fmt.Sprintf(`for i in $(seq 1 %d); do echo "line $i"; sleep 0.02; done`, count))
	cl.enqueue(cfg.SubscriptionId, cmd)
	cl.waitFor(t, 5*time.Second, "some lines", func() bool {
		sc := cl.stored[cmd.UID]
		return sc != nil && len(sc.lines) >= 10
	})
	cl.keepLines(cmd.UID, 3)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.gaps == 0 {
		t.Error("no report was answered 409: the test did not make the agent resend")
	}
	for i, l := range sc.lines {
		if l.Seq != int64(i+1) || l.Text != fmt.Sprintf("line %d", i+1) {
			t.Fatalf("line %d is %+v", i+1, l)
		}
	}
	if sc.state != string(cuttle.CommandSuccess) || len(sc.lines) != count {
		t.Errorf("%s with %d lines; want Success with %d", sc.state, len(sc.lines), count)
	}
}

func TestCancelKillsTheWholeProcessTree(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	cmd := scriptCommand(t, `sleep 300 & echo $!
bash -c 'sleep 300 & echo $!; wait' &
wait`)
	cl.enqueue(cfg.SubscriptionId, cmd)
	cl.waitFor(t, 5*time.Second, "two pids", func() bool {
		sc := cl.stored[cmd.UID]
		return sc != nil && len(sc.lines) == 2
	})
	sc, _ := cl.command(cmd.UID)
	running := pids(t, sc.lines)
	for _, pid := range running {
		if !alive(pid) {
			t.Fatalf("process %d is not running before the cancel", pid)
		}
	}
	cl.cancel(cfg.SubscriptionId, cmd.UID)
	sc = cl.waitFinal(t, cmd.UID, 5*time.Second)
	if sc.state != string(cuttle.CommandCanceled) || sc.err != "the command was cancelled" {
		t.Errorf("%s %q; want Canceled", sc.state, sc.err)
	}
	waitGone(t, running)
}

func TestTimeoutStopsTheScript(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	cmd := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", TimeoutSeconds: 1, Body: "sleep 300 & echo $!\nwait"})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 6*time.Second)
	if sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, "timeout of 1s") {
		t.Errorf("%s %q; want Failed naming the timeout", sc.state, sc.err)
	}
	waitGone(t, pids(t, sc.lines))
}

func TestPathsOutsideTheWorkFolderAreRefused(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(a.work, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "missing"), filepath.Join(a.work, "dangling")); err != nil {
		t.Fatal(err)
	}
	const marker = `touch "$CUTTLE_WORK/ran"`
	sum := sha256.Sum256([]byte("x"))
	receive := func(path string) agentapi.ReceiveFile {
		return agentapi.ReceiveFile{Path: path, Size: 1, SHA256: hex.EncodeToString(sum[:])}
	}
	cases := []struct {
		path string
		cmd  agentapi.Command
	}{
		{outside, newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", Body: marker, WorkDir: outside})},
		{"../outside", newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", Body: marker, WorkDir: "../outside"})},
		{"a/../../b", newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", Body: marker, WorkDir: "a/../../b"})},
		{"escape/sub", newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", Body: marker, WorkDir: "escape/sub"})},
		{"dangling/sub", newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", Body: marker, WorkDir: "dangling/sub"})},
		{"escape/new.bin", newTestCommand(t, cuttle.CommandReceiveFile, receive("escape/new.bin"))},
		{"../new.bin", newTestCommand(t, cuttle.CommandReceiveFile, receive("../new.bin"))},
		{"escape/secret", newTestCommand(t, cuttle.CommandSendFile, agentapi.SendFile{Path: "escape/secret"})},
		{"/etc/passwd", newTestCommand(t, cuttle.CommandSendFile, agentapi.SendFile{Path: "/etc/passwd"})},
	}
	cl.mu.Lock()
	for _, c := range cases {
		cl.files[c.cmd.UID] = []byte("x")
	}
	cl.mu.Unlock()
	for _, c := range cases {
		cl.enqueue(cfg.SubscriptionId, c.cmd)
	}
	for _, c := range cases {
		sc := cl.waitFinal(t, c.cmd.UID, 5*time.Second)
		if sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, strconv.Quote(c.path)) || !strings.Contains(sc.err, a.work) {
			t.Errorf("%s %s: %s %q; want Failed naming the path and the work folder", c.cmd.Kind, c.path, sc.state, sc.err)
		}
	}
	if _, err := os.Stat(filepath.Join(a.work, "ran")); err == nil {
		t.Error("a script with a refused working folder ran")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("the folder outside holds %d entries; want only the secret", len(entries))
	}
	cl.mu.Lock()
	uploads := len(cl.uploads)
	cl.mu.Unlock()
	if uploads != 0 || cl.servedBytes.Load() != 0 {
		t.Errorf("%d uploads and %d bytes served; want none", uploads, cl.servedBytes.Load())
	}
	if n := a.logs.count("refused a command"); n != len(cases) {
		t.Errorf("%d refusals logged, want %d", n, len(cases))
	}
}

func TestReceiveFileResumesAndVerifies(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := make([]byte, 5<<20+123)
	rand.Read(content)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	cmd := newTestCommand(t, cuttle.CommandReceiveFile, agentapi.ReceiveFile{Path: "packages/app/app.bin", Size: int64(len(content)), SHA256: strings.ToUpper(digest)})
	cl.mu.Lock()
	cl.files[cmd.UID] = content
	cl.mu.Unlock()
	cl.cutAt.Store(2 << 20)
	cl.enqueue(cfg.SubscriptionId, cmd)

	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q", sc.state, sc.err)
	}
	var res agentapi.ReceiveFileResult
	if err := json.Unmarshal(sc.result, &res); err != nil || res.Size != int64(len(content)) || res.SHA256 != digest || res.Resumes < 1 {
		t.Errorf("result %+v, %v; want the size, digest and at least one resume", res, err)
	}
	if served := cl.servedBytes.Load(); served >= 2*int64(len(content)) || cl.ranges.Load() < 1 {
		t.Errorf("the node served %d bytes of %d with %d Range requests; want a resume, not a restart", served, len(content), cl.ranges.Load())
	}
	if got, err := os.ReadFile(filepath.Join(a.work, "packages", "app", "app.bin")); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the file received differs (%v)", err)
	}
	a.logs.waitFor(t, "resuming the transfer of packages/app/app.bin at byte ", time.Second)
	if !strings.Contains(fmt.Sprint(sc.lines), "resuming the transfer") {
		t.Errorf("the command's output does not tell of the resume: %+v", sc.lines)
	}

	other := sha256.Sum256([]byte("something else"))
	bad := newTestCommand(t, cuttle.CommandReceiveFile, agentapi.ReceiveFile{Path: "packages/bad.bin", Size: int64(len(content)), SHA256: hex.EncodeToString(other[:])})
	cl.mu.Lock()
	cl.files[bad.UID] = content
	cl.mu.Unlock()
	cl.enqueue(cfg.SubscriptionId, bad)
	sc = cl.waitFinal(t, bad.UID, 10*time.Second)
	if sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, "SHA-256 "+digest) {
		t.Errorf("a wrong digest: %s %q; want Failed naming the digest received", sc.state, sc.err)
	}
	if _, err := os.Stat(filepath.Join(a.work, "packages", "bad.bin")); err == nil {
		t.Error("a file with the wrong digest was saved")
	}
	if _, err := os.Stat(filepath.Join(a.journal.commandDir(bad.UID), partialFile)); err == nil {
		t.Error("the partial file of a failed transfer is left")
	}
}

func TestSendFileUploadsWithItsDigest(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	content := bytes.Repeat([]byte("artifact "), 100000)
	if err := os.MkdirAll(filepath.Join(a.work, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.work, "out", "report.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := newTestCommand(t, cuttle.CommandSendFile, agentapi.SendFile{Path: "out/report.txt"})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	sum := sha256.Sum256(content)
	var res agentapi.FileResult
	if err := json.Unmarshal(sc.result, &res); err != nil || sc.state != string(cuttle.CommandSuccess) || res.Size != int64(len(content)) || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("%s %q, result %+v (%v)", sc.state, sc.err, res, err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !bytes.Equal(cl.uploads[cmd.UID], content) {
		t.Error("the upload differs from the file")
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	cmd := newTestCommand(t, cuttle.CommandHealth, agentapi.Health{})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 5*time.Second)
	var h agentapi.HealthResult
	if err := json.Unmarshal(sc.result, &h); err != nil || sc.state != string(cuttle.CommandSuccess) {
		t.Fatalf("%s %q %s", sc.state, sc.err, sc.result)
	}
	if h.Version != cuttle.Version || h.OS == "" || h.TotalDiskBytes == 0 || h.FreeDiskBytes > h.TotalDiskBytes || time.Since(h.Time).Abs() > time.Minute || h.Time.Location() != time.UTC {
		t.Errorf("health %+v", h)
	}
}

func TestScriptSyntaxes(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	sh := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Sh", Body: `echo "sh $0"`})
	pwsh := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "PowerShell", Body: `Write-Output "from pwsh"`})
	cobol := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Cobol", Body: "DISPLAY 'HI'."})
	for _, c := range []agentapi.Command{sh, pwsh, cobol} {
		cl.enqueue(cfg.SubscriptionId, c)
	}
	if sc := cl.waitFinal(t, sh.UID, 5*time.Second); sc.state != string(cuttle.CommandSuccess) || len(sc.lines) != 1 || !strings.HasPrefix(sc.lines[0].Text, "sh ") {
		t.Errorf("Sh: %s %q %+v", sc.state, sc.err, sc.lines)
	}
	sc := cl.waitFinal(t, pwsh.UID, 20*time.Second)
	if _, err := exec.LookPath("pwsh"); err != nil {
		if sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, "PowerShell scripts cannot run on this agent") || !strings.Contains(sc.err, "pwsh") {
			t.Errorf("PowerShell without pwsh: %s %q; want Failed saying pwsh is missing", sc.state, sc.err)
		}
	} else if sc.state != string(cuttle.CommandSuccess) || len(sc.lines) != 1 || sc.lines[0].Text != "from pwsh" {
		t.Errorf("PowerShell: %s %q %+v", sc.state, sc.err, sc.lines)
	}
	if sc := cl.waitFinal(t, cobol.UID, 5*time.Second); sc.state != string(cuttle.CommandFailed) || !strings.Contains(sc.err, `"Cobol" is not supported`) {
		t.Errorf("Cobol: %s %q", sc.state, sc.err)
	}
}

func TestUntrustedServerGetsNoPoll(t *testing.T) {
	t.Parallel()
	cl := newFakeCluster(t)
	impostor := newFakeCluster(t)
	n := startNode(t, cl, impostor.id) // serves cl's routes with another certificate
	cfg := configureAgent(t, cl, Polling, n)
	a := startAgent(t, cfg)
	want := fmt.Sprintf("server at %s presented certificate %s, which this agent does not trust (trusted: %s); run `cuttle agent poll-server` to trust it",
		n.srv.URL, impostor.id.Thumbprint, cl.id.Thumbprint)
	a.logs.waitFor(t, want, 5*time.Second)
	eventually(t, 5*time.Second, func() error {
		if h := n.handshakes.Load(); h < 5 {
			return fmt.Errorf("%d handshakes; want the agent to keep trying", h)
		}
		return nil
	})
	if p := n.polls.Load(); p != 0 {
		t.Errorf("the untrusted server got %d polls", p)
	}
	if c := a.logs.count("which this agent does not trust"); c != 1 {
		t.Errorf("the refusal was logged %d times; want once for the outage", c)
	}
}

func TestServerThatDoesNotKnowTheAgentIsLogged(t *testing.T) {
	t.Parallel()
	cl := newFakeCluster(t)
	n := startNode(t, cl, cl.id)
	cfg := configureAgent(t, cl, Polling, n)
	cl.mu.Lock()
	delete(cl.agents, cfg.Identity.Thumbprint)
	cl.mu.Unlock()
	a := startAgent(t, cfg)
	a.logs.waitFor(t, fmt.Sprintf("the server at %s refused this agent's certificate %s", n.srv.URL, cfg.Identity.Thumbprint), 5*time.Second)
	if p := n.polls.Load(); p != 0 {
		t.Errorf("the server answered %d polls of an agent it does not know", p)
	}
	// Once the cluster knows the agent, it polls, and says so.
	cl.trustAgent(cfg.Identity.Thumbprint)
	a.logs.waitFor(t, fmt.Sprintf("the server at %s answers again", n.srv.URL), 5*time.Second)
}

func TestListeningAgentPollsOverTheNodesSession(t *testing.T) {
	t.Parallel()
	cl := newFakeCluster(t)
	cfg := configureAgent(t, cl, Listening)
	a := startAgent(t, cfg)
	addr := a.listener.Addr().String()

	conn, err := tls.Dial("tcp", addr, certs.ClientConfig(cl.id, certs.Pin(cfg.Identity.Thumbprint)))
	if err != nil {
		t.Fatal(err)
	}
	session, err := yamux.Server(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: cl.newNode().handler(), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(session)
	t.Cleanup(func() {
		srv.Close()
		session.Close()
	})
	cmd := scriptCommand(t, "echo over the session")
	cl.enqueue("", cmd)
	sc := cl.waitFinal(t, cmd.UID, 5*time.Second)
	if sc.state != string(cuttle.CommandSuccess) || len(sc.lines) != 1 || sc.lines[0].Text != "over the session" {
		t.Errorf("%s %q %+v", sc.state, sc.err, sc.lines)
	}
	a.logs.waitFor(t, "a node connected", time.Second)

	stranger, err := certs.Generate("stranger")
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := tls.Dial("tcp", addr, certs.ClientConfig(stranger, certs.Pin(cfg.Identity.Thumbprint))); err == nil {
		conn.Read(make([]byte, 1)) // the agent's refusal arrives after the client's part of the handshake
		conn.Close()
	}
	a.logs.waitFor(t, fmt.Sprintf(": certificate %s is not a trusted server (trusted: %s)", stranger.Thumbprint, cl.id.Thumbprint), 5*time.Second)
	if !strings.Contains(a.logs.String(), "refused a connection from 127.0.0.1:") {
		t.Error("the refusal does not name the address")
	}

	// A node that expects another agent's certificate refuses this one.
	if _, err := tls.Dial("tcp", addr, certs.ClientConfig(cl.id, certs.Pin(stranger.Thumbprint))); err == nil {
		t.Error("the handshake with a node pinning another certificate succeeded")
	}
	a.logs.waitFor(t, fmt.Sprintf("refused this agent's certificate %s", cfg.Identity.Thumbprint), 5*time.Second)
}

func TestRestartFailsTheCommandThatWasRunning(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	// The journal as an agent that died while a script ran left it, the
	// last line torn; and two old commands, one of them past retention.
	j := journal{dir: filepath.Join(cfg.Home, commandsDir)}
	uid := newUID()
	out, err := j.create(record{UID: uid, Kind: "Script", State: cuttle.CommandRunning, StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(agentapi.Line{Seq: 1, Time: time.Now(), Stream: "stdout", Text: "before the crash"})
	out.Write(append(line, []byte("\n{\"Seq\":2,\"Te")...))
	out.Close()
	old, recent := newUID(), newUID()
	for uid, age := range map[string]time.Duration{old: JournalRetention + time.Hour, recent: time.Hour} {
		f, err := j.create(record{UID: uid, Kind: "Health", State: cuttle.CommandSuccess, Acknowledged: true, FinishedAt: time.Now().Add(-age)})
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	a := startAgent(t, cfg)
	sc := cl.waitFinal(t, uid, 5*time.Second)
	if sc.state != string(cuttle.CommandFailed) || sc.err != "the agent stopped while the command ran; it was not run again" {
		t.Errorf("%s %q", sc.state, sc.err)
	}
	if len(sc.lines) != 1 || sc.lines[0].Text != "before the crash" {
		t.Errorf("lines %+v; want the one complete line", sc.lines)
	}
	if _, err := os.Stat(j.commandDir(old)); err == nil {
		t.Error("a command past retention is still in the journal")
	}
	if _, err := os.Stat(j.commandDir(recent)); err != nil {
		t.Errorf("a recent command was pruned: %v", err)
	}
	eventually(t, 5*time.Second, func() error {
		rec, err := a.journal.load(uid)
		if err != nil || !rec.Acknowledged || rec.StoredSeq != 1 {
			return fmt.Errorf("journal %+v, %v; want the outcome acknowledged", rec, err)
		}
		return nil
	})
}

func TestStopLetsCommandsFinishWithinTheGrace(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	const grace = time.Second
	a := startAgent(t, cfg, func(a *Agent) { a.ShutdownGrace = grace })
	quick := scriptCommand(t, "echo started; sleep 0.3; echo finished")
	slow := scriptCommand(t, "sleep 300 & echo $!\nwait")
	cl.enqueue(cfg.SubscriptionId, quick)
	cl.enqueue(cfg.SubscriptionId, slow)
	cl.waitFor(t, 5*time.Second, "both commands to run", func() bool {
		q, s := cl.stored[quick.UID], cl.stored[slow.UID]
		return q != nil && s != nil && len(q.lines) == 1 && len(s.lines) == 1
	})
	stopped := time.Now()
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(stopped); took < grace || took > grace+5*time.Second {
		t.Errorf("Run returned %v after the stop; want the grace of %v and the kill", took, grace)
	}
	q, _ := cl.command(quick.UID)
	if q.state != string(cuttle.CommandSuccess) || len(q.lines) != 2 {
		t.Errorf("the quick command: %s with %d lines; want it finished within the grace", q.state, len(q.lines))
	}
	s, _ := cl.command(slow.UID)
	if s.state != string(cuttle.CommandFailed) || s.err != "the agent stopped before the command finished" {
		t.Errorf("the slow command: %s %q", s.state, s.err)
	}
	waitGone(t, pids(t, s.lines))
}

func TestRefusedReportsAreGivenUp(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	a := startAgent(t, cfg)
	cmd := scriptCommand(t, "echo hello")
	cl.mu.Lock()
	cl.refuse[cmd.UID] = true
	cl.mu.Unlock()
	cl.enqueue(cfg.SubscriptionId, cmd)
	a.logs.waitFor(t, "the cluster refused the command's report; no more are sent", 5*time.Second)
	eventually(t, 5*time.Second, func() error {
		rec, err := a.journal.load(cmd.UID)
		if err != nil || !rec.settled() || !strings.Contains(rec.Refused, "404") {
			return fmt.Errorf("journal %+v, %v; want the command ended and its refusal kept", rec, err)
		}
		return nil
	})
}

// TestOneAgentPerHome: a second agent on a home another one runs on
// refuses to start, and touches nothing of the first one's journal.
func TestOneAgentPerHome(t *testing.T) {
	t.Parallel()
	_, cfg := pollingHome(t)
	first := startAgent(t, cfg)
	// Run takes the home's lock in its own goroutine: the second agent
	// starts only once the first one holds it.
	first.logs.waitFor(t, "agent started", 10*time.Second)
	second, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = second.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "another cuttle agent runs on the home") {
		t.Errorf("a second agent on the home: %v, want a refusal", err)
	}
}

// TestAShortCommandIsReportedOnce: a command that ends within its first
// report's wait is reported once, its lines and outcome together; a longer
// one says first that it runs.
func TestAShortCommandIsReportedOnce(t *testing.T) {
	t.Parallel()
	cl, cfg := pollingHome(t)
	startAgent(t, cfg, func(a *Agent) { a.timing.firstReport = 5 * time.Second })
	short := scriptCommand(t, "echo one; echo two")
	cl.enqueue(cfg.SubscriptionId, short)
	if sc := cl.waitFinal(t, short.UID, 10*time.Second); sc.state != string(cuttle.CommandSuccess) || sc.reports != 1 || len(sc.lines) != 2 {
		t.Errorf("a short command: %s after %d report(s) with %d line(s); want Success in 1 report with 2 lines", sc.state, sc.reports, len(sc.lines))
	}

	cl2, cfg2 := pollingHome(t)
	startAgent(t, cfg2, func(a *Agent) { a.timing.firstReport = 50 * time.Millisecond })
	long := scriptCommand(t, "sleep 1; echo done")
	cl2.enqueue(cfg2.SubscriptionId, long)
	cl2.waitFor(t, 10*time.Second, "the first report of a long command", func() bool { return cl2.stored[long.UID] != nil })
	if sc, _ := cl2.command(long.UID); sc.state != string(cuttle.CommandRunning) {
		t.Errorf("a long command's first report: %s, want Running", sc.state)
	}
	if sc := cl2.waitFinal(t, long.UID, 10*time.Second); sc.state != string(cuttle.CommandSuccess) || sc.reports < 2 {
		t.Errorf("a long command: %s after %d report(s); want Success after at least 2", sc.state, sc.reports)
	}
}

// TestScriptsSeeNoAgentSettings: a target's script sees the agent's
// environment, which operators use to give scripts what the target needs,
// but none of the agent's own settings, which may hold an API key.
func TestScriptsSeeNoAgentSettings(t *testing.T) {
	t.Setenv("CUTTLE_API_KEY", "API-SECRETSECRETSECRETSECRET")
	t.Setenv("APP_PROXY", "proxy.example:3128")
	cl, cfg := pollingHome(t)
	startAgent(t, cfg)
	cmd := newTestCommand(t, cuttle.CommandScript, agentapi.Script{Syntax: "Bash", Body: "env"})
	cl.enqueue(cfg.SubscriptionId, cmd)
	sc := cl.waitFinal(t, cmd.UID, 10*time.Second)
	var env []string
	for _, l := range sc.lines {
		env = append(env, l.Text)
	}
	if !slices.Contains(env, "APP_PROXY=proxy.example:3128") || !slices.Contains(env, "CUTTLE_COMMAND_ID="+cmd.UID) {
		t.Errorf("the script's environment lacks the agent's APP_PROXY or its CUTTLE_COMMAND_ID:\n%s", strings.Join(env, "\n"))
	}
	for _, kv := range env {
		if strings.Contains(kv, "SECRETSECRET") {
			t.Errorf("the script saw the agent's setting %s", kv)
		}
	}
}
