package testcluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// HAProxy is a real HAProxy (Debian's haproxy package; scripts/test
// installs it) run by a test in the foreground, with its runtime API on a
// loopback TCP port (AdminAddr) at admin level.
type HAProxy struct {
	AdminAddr string
	process
}

// StartHAProxy runs HAProxy with a global section that opens the runtime
// API, followed by config (defaults, frontends, backends); it waits until
// the runtime API answers. A missing haproxy fails the test: it is never
// skipped. The process is killed when the test ends; its log is printed if
// the test failed.
func StartHAProxy(tb testing.TB, config string) *HAProxy {
	tb.Helper()
	program, err := exec.LookPath("haproxy")
	if err != nil {
		if program, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			tb.Fatal("haproxy is not installed: scripts/test installs Debian's haproxy package")
		}
	}
	dir := tb.TempDir()
	h := &HAProxy{AdminAddr: "127.0.0.1:" + strconv.Itoa(FreePort(tb)), process: process{name: "haproxy", logPath: filepath.Join(dir, "haproxy.log")}}
	full := fmt.Sprintf("global\n  stats socket ipv4@%s level admin\n  maxconn 4000\n\n%s\n", h.AdminAddr, config)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		h.Kill()
		if tb.Failed() {
			tb.Logf("haproxy's configuration:\n%s\nits log:\n%s", full, tail(h.Log(), 40))
		}
	})
	if err := h.start(program, "-db", "-f", path); err != nil {
		tb.Fatal(err)
	}
	Eventually(tb, 10*time.Second, func() error {
		if h.Exited() {
			tb.Fatalf("haproxy exited: %v\n%s", h.ExitErr(), h.Log())
		}
		_, err := h.Command("show info")
		return err
	})
	return h
}

// Command runs one command of the runtime API and returns its answer.
func (h *HAProxy) Command(cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", h.AdminAddr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// ServerStatus returns the status of each server of a backend as `show
// stat` says it (UP, "no check", MAINT, DRAIN, DOWN, ...), by name.
func (h *HAProxy) ServerStatus(backend string) (map[string]string, error) {
	out, err := h.Command("show stat")
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var columns []string
	status := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") {
			columns = strings.Split(strings.TrimPrefix(line, "# "), ",")
			continue
		}
		fields := strings.Split(line, ",")
		if len(columns) == 0 || len(fields) < len(columns) || fields[0] != backend || fields[1] == "BACKEND" || fields[1] == "FRONTEND" {
			continue
		}
		for i, c := range columns {
			if c == "status" {
				status[fields[1]] = fields[i]
			}
		}
	}
	if len(status) == 0 {
		return nil, fmt.Errorf("show stat names no server of the backend %s:\n%s", backend, out)
	}
	return status, nil
}
