package deploy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// app is one target's tiny web application: it answers the version in its
// folder's file "version", and 503 while the file "down" exists (the
// deployment stops it, replaces the version, starts it again).
type app struct {
	dir  string
	addr string
}

func startApp(t *testing.T, dir string) *app {
	t.Helper()
	os.WriteFile(filepath.Join(dir, "version"), []byte("old\n"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat(filepath.Join(dir, "down")); err == nil {
			http.Error(w, "stopped for a deployment", http.StatusServiceUnavailable)
			return
		}
		b, _ := os.ReadFile(filepath.Join(dir, "version"))
		w.Write(b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &app{dir: dir, addr: ln.Addr().String()}
}

// version asks the application itself for its version.
func (a *app) version() string {
	resp, err := http.Get("http://" + a.addr)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// traffic sends requests through the balancer until stopped, counting the
// answers that are not 200.
type traffic struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	firstFailure string
	stop         chan struct{}
	done         sync.WaitGroup
}

func sendTraffic(url string, clients int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	for range clients {
		tr.done.Go(func() {
			hc := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				resp, err := hc.Get(url)
				tr.sent.Add(1)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s", resp.Status)
					}
				}
				if err != nil {
					tr.failed.Add(1)
					tr.mu.Lock()
					if tr.firstFailure == "" {
						tr.firstFailure = err.Error()
					}
					tr.mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return tr
}

func (tr *traffic) end() {
	close(tr.stop)
	tr.done.Wait()
}

// rotation samples which of the backend's servers are in rotation (not
// in maintenance, draining or down) until stopped, keeping the fewest.
type rotation struct {
	fewest, samples atomic.Int64
	stop            chan struct{}
	done            sync.WaitGroup
}

func sampleRotation(t *testing.T, h *testcluster.HAProxy, backend string) *rotation {
	r := &rotation{stop: make(chan struct{})}
	r.fewest.Store(1 << 30)
	r.done.Go(func() {
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			status, err := h.ServerStatus(backend)
			if err != nil {
				t.Errorf("sampling the rotation: %v", err)
				return
			}
			in := int64(0)
			for _, s := range status {
				if s == "UP" || s == "no check" {
					in++
				}
			}
			r.samples.Add(1)
			if in < r.fewest.Load() {
				r.fewest.Store(in)
			}
		}
	})
	return r
}

func (r *rotation) end() {
	close(r.stop)
	r.done.Wait()
}

// TestSeed003RollingBehindHAProxy is seed 003 end to end: four agents,
// each with a web application of its own behind a real HAProxy, and a
// rolling step whose actions on each target are a script on the server
// that takes the target out of HAProxy's rotation (through its runtime
// API) and waits for its requests to drain, the deployment of the new
// version on the agent (the application stops, its version changes, it
// starts), and a script on the server that puts the target back. A
// client sends requests through HAProxy for the whole deployment: none
// fails, at no sampled moment are fewer than 4 - window targets in
// rotation, and every target serves the new version at the end; with a
// window of 1 and of 2, on a cluster of three nodes.
func TestSeed003RollingBehindHAProxy(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5, 5)
	api := c.Nodes[0].Client
	apps := map[string]*app{}
	var servers strings.Builder
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("web-%d", i)
		dir := filepath.Join(t.TempDir())
		apps[name] = startApp(t, dir)
		fmt.Fprintf(&servers, "  server %s %s\n", name, apps[name].addr)
		testcluster.StartAgent(t, testcluster.AgentConfig{Name: name, Register: c.Nodes[i%3], AdminKey: c.AdminKey, Poll: pollAddrs(c)})
	}
	front := "127.0.0.1:" + strconv.Itoa(testcluster.FreePort(t))
	lb := testcluster.StartHAProxy(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s

frontend site
  bind %s
  default_backend app

backend app
  balance roundrobin
%s`, front, servers.String()))
	adminHost, adminPort, _ := net.SplitHostPort(lb.AdminAddr)
	// runtime sends one command to HAProxy's runtime API from Bash.
	runtime := fmt.Sprintf(`runtime() { exec 3<>/dev/tcp/%s/%s; echo "$1" >&3; cat <&3; exec 3<&-; }`, adminHost, adminPort)
	takeOut := runtime + `
runtime "set server app/#{Octopus.Machine.Name} state maint"
for i in $(seq 1 100); do  # wait until it serves no request
  cur=$(runtime "show stat" | awk -F, '$1 == "app" && $2 == "#{Octopus.Machine.Name}" { print $5 }')
  [ "$cur" = 0 ] && break
  sleep 0.05
done
echo "#{Octopus.Machine.Name} is out of the rotation"`
	putBack := runtime + `
runtime "set server app/#{Octopus.Machine.Name} state ready"
echo "#{Octopus.Machine.Name} is back in the rotation"`
	dirs := map[string]string{}
	for name, a := range apps {
		dirs[name] = a.dir
	}

	for _, window := range []int{1, 2} {
		t.Run(fmt.Sprintf("window %d", window), func(t *testing.T) {
			name := fmt.Sprintf("Site%d", window)
			var install strings.Builder
			install.WriteString("case #{Octopus.Machine.Name} in\n")
			for machine, dir := range dirs {
				fmt.Fprintf(&install, "  %s) D=%q ;;\n", machine, dir)
			}
			install.WriteString(`esac
touch "$D/down"    # stop the application
sleep 0.3
echo "#{Octopus.Project.Name} #{Octopus.Release.Number}" > "$D/version"
rm "$D/down"       # start it again
echo "deployed #{Octopus.Release.Number} on #{Octopus.Machine.Name}"`)
			project(t, api, name, step{"Name": "Roll", "Properties": map[string]string{
				"Octopus.Action.TargetRoles": "web", "Octopus.Action.MaxParallelism": strconv.Itoa(window)},
				"Actions": []any{script("Take out", takeOut, true), script("Deploy", install.String(), false), script("Put back", putBack, true)}})

			tr := sendTraffic("http://"+front, 4)
			rot := sampleRotation(t, lb, "app")
			started := time.Now()
			_, task := deployWith(t, api, name, nil)
			done := testcluster.WaitTask(t, api, task, 2*time.Minute, "Success", "Failed", "Canceled", "TimedOut")
			took := time.Since(started)
			time.Sleep(200 * time.Millisecond) // traffic after the last target is back
			tr.end()
			rot.end()
			log, _ := testcluster.TaskLog(testcluster.Context(t, 10*time.Second), api, task)
			if done.State != "Success" {
				t.Fatalf("the deployment ended %s (%s):\n%s", done.State, done.ErrorMessage, log)
			}
			t.Logf("window %d: deployed in %v; %d requests through HAProxy, %d failed; at least %d of 4 targets in rotation over %d samples",
				window, took.Round(time.Millisecond), tr.sent.Load(), tr.failed.Load(), rot.fewest.Load(), rot.samples.Load())
			if tr.failed.Load() > 0 || tr.sent.Load() < 100 {
				t.Errorf("%d of %d requests through HAProxy failed (the first: %s); want none of at least 100", tr.failed.Load(), tr.sent.Load(), tr.firstFailure)
			}
			if fewest := rot.fewest.Load(); fewest < int64(4-window) || fewest == 4 || rot.samples.Load() < 20 {
				t.Errorf("at least %d targets were in rotation over %d samples; want at least %d, and fewer than 4 while a target was out",
					fewest, rot.samples.Load(), 4-window)
			}
			for machine, a := range apps {
				if got, want := a.version(), name+" 1.0.0"; got != want {
					t.Errorf("%s serves %q, want %q", machine, got, want)
				}
			}
			status, err := lb.ServerStatus("app")
			for machine, s := range status {
				if s != "UP" && s != "no check" {
					t.Errorf("%s is %s in HAProxy after the deployment, want back in rotation (%v)", machine, s, err)
				}
			}
		})
	}
}
