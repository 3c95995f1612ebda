package testcluster

// This file is the throwaway PostgreSQL of the test harness. It is
// self-contained: other parts of the harness live in other files of the
// package.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvTestDatabaseURL names the environment variable that points the harness
// at an existing PostgreSQL server instead of a throwaway one, for example
// "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable". The role
// must be allowed to create and drop databases.
const EnvTestDatabaseURL = "CUTTLE_TEST_DATABASE_URL"

// Defaults of the throwaway server.
const (
	// pgStartTimeout bounds a start when the caller's context has no deadline.
	pgStartTimeout = 60 * time.Second
	// pgStopTimeout bounds a fast shutdown before the server is killed.
	pgStopTimeout = 30 * time.Second
	// pgPollInterval is how often readiness and exit are polled.
	pgPollInterval = 20 * time.Millisecond
	// pgStartTries is how many ports StartPostgres tries when another
	// process takes the one it picked first.
	pgStartTries = 5
	// pgDirPrefix starts the name of every harness temp directory.
	pgDirPrefix = "cuttle-pg-"
)

// Postgres is a PostgreSQL server for tests: a throwaway cluster the harness
// made with initdb and runs as its child process, or the server named by
// CUTTLE_TEST_DATABASE_URL. Its methods are safe for concurrent use.
//
// The throwaway server listens on 127.0.0.1 only, trusts every local
// connection, runs with fsync, synchronous_commit and full_page_writes off
// (fast, and useless after a crash of the machine), and allows 300
// connections. It dies with the test process even if that process is killed.
type Postgres struct {
	// external is the parsed CUTTLE_TEST_DATABASE_URL, or nil for a
	// harness-owned server.
	external *url.URL

	binDir  string
	dir     string // root temp dir; removed by Close
	dataDir string
	sockDir string
	logPath string
	port    int
	cred    *syscall.Credential // non-nil when running as root

	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{} // closed when proc has exited
	closed bool

	seq atomic.Int64 // database name counter
}

// StartPostgres starts a throwaway PostgreSQL server on a free loopback port,
// or connects to the one CUTTLE_TEST_DATABASE_URL names. The server is ready
// for connections when it returns. When the process runs as root, the server
// runs as the "postgres" user. It returns an error, never skips, when no
// PostgreSQL installation is found (looked up with pg_config --bindir, then
// in /usr/lib/postgresql/*/bin, highest version first, then on PATH). If ctx
// has no deadline the start is bounded by one minute. Close releases it.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	if raw := os.Getenv(EnvTestDatabaseURL); raw != "" {
		return connectExternal(ctx, raw)
	}
	ctx, cancel := withDefaultTimeout(ctx, pgStartTimeout)
	defer cancel()

	binDir, err := findPostgresBinDir()
	if err != nil {
		return nil, err
	}
	p := &Postgres{binDir: binDir}
	if os.Geteuid() == 0 {
		p.cred, err = postgresCredential()
		if err != nil {
			return nil, err
		}
	}
	reapStaleDirs()
	if err := p.makeDirs(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(p.dir)
		}
	}()
	if err := p.initdb(ctx); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		p.port, err = pickPort()
		if err != nil {
			return nil, err
		}
		if err := p.writeConfig(); err != nil {
			return nil, err
		}
		err = p.Start(ctx)
		if err == nil {
			break
		}
		if try < pgStartTries && errors.Is(err, errPortTaken) {
			continue
		}
		return nil, err
	}
	ok = true
	return p, nil
}

// connectExternal returns a Postgres for an existing server, checking that
// it answers.
func connectExternal(ctx context.Context, raw string) (*Postgres, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("testcluster: %s is not a postgres:// URL", EnvTestDatabaseURL)
	}
	p := &Postgres{external: u}
	ctx, cancel := withDefaultTimeout(ctx, pgStartTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("testcluster: connect to %s: %w", EnvTestDatabaseURL, err)
	}
	conn.Close(context.Background())
	return p, nil
}

// URL returns the URL of database dbname on the server, such as
// "postgres://postgres@127.0.0.1:PORT/dbname?sslmode=disable".
func (p *Postgres) URL(dbname string) string {
	if p.external != nil {
		u := *p.external
		u.Path = "/" + dbname
		u.RawPath = ""
		return u.String()
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, url.PathEscape(dbname))
}

// Port returns the server's TCP port on 127.0.0.1 (for a fault proxy in
// front of it), or 0 for an external server whose URL names none.
func (p *Postgres) Port() int {
	if p.external != nil {
		n, _ := strconv.Atoi(p.external.Port())
		return n
	}
	return p.port
}

// adminURL is the URL of the maintenance database.
func (p *Postgres) adminURL() string {
	if p.external != nil {
		return p.external.String()
	}
	return p.URL("postgres")
}

var validDBName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates an empty database and returns its URL. The name
// must be a lower-case SQL identifier of at most 63 characters.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if !validDBName.MatchString(name) {
		return "", fmt.Errorf("testcluster: invalid database name %q", name)
	}
	err := p.admin(ctx, func(conn *pgx.Conn) error {
		var version int
		if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
			return err
		}
		sql := "CREATE DATABASE " + name
		if version >= 150000 {
			// Copying the template's files is several times faster than
			// the default of logging its pages, with fsync off.
			sql += " STRATEGY FILE_COPY"
		}
		_, err := conn.Exec(ctx, sql)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("testcluster: create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// DropDatabase drops a database, closing its connections first. Dropping a
// database that does not exist is not an error.
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	if !validDBName.MatchString(name) {
		return fmt.Errorf("testcluster: invalid database name %q", name)
	}
	err := p.admin(ctx, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	})
	if err != nil {
		return fmt.Errorf("testcluster: drop database %s: %w", name, err)
	}
	return nil
}

// admin runs fn on a connection to the maintenance database.
func (p *Postgres) admin(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	ctx, cancel := withDefaultTimeout(ctx, pgStartTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.adminURL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// NewDatabase creates a uniquely named database for one test, returns its
// URL, and drops it when the test ends. It fails the test if the database
// cannot be created.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	// Unique across processes sharing one server (pid) and within this one
	// (seq); the test's name is only a hint for people reading the server.
	hint := strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), p.seq.Add(1), hint)
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "_")
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgStartTimeout)
	defer cancel()
	u, err := p.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgStopTimeout)
		defer cancel()
		if err := p.DropDatabase(ctx, name); err != nil && p.external != nil {
			// A harness-owned server is thrown away anyway (and may be
			// stopped by a fault test); only a shared one needs tidying.
			t.Errorf("%v", err)
		}
	})
	return u
}

var errExternal = errors.New("testcluster: stopping and starting PostgreSQL needs a harness-owned server, not " + EnvTestDatabaseURL)

// errPortTaken marks a start that failed because the port was in use.
var errPortTaken = errors.New("port in use")

// Stop shuts the server down the way "pg_ctl stop -m fast" does (SIGINT:
// connections are closed, the server exits cleanly) and waits until it has
// exited; past ctx's deadline (default 30 s) it kills it. Stopping a stopped
// server does nothing. It returns an error for a server the harness does not
// own.
func (p *Postgres) Stop(ctx context.Context) error {
	if p.external != nil {
		return errExternal
	}
	ctx, cancel := withDefaultTimeout(ctx, pgStopTimeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopLocked(ctx)
}

func (p *Postgres) stopLocked(ctx context.Context) error {
	if p.proc == nil {
		return nil
	}
	proc, exited := p.proc, p.exited
	p.proc, p.exited = nil, nil
	_ = proc.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
	}
	_ = proc.Process.Kill()
	<-exited
	return fmt.Errorf("testcluster: PostgreSQL did not stop in time and was killed: %w", ctx.Err())
}

// Start starts a stopped server again on the same port and waits until it
// accepts connections or ctx ends (default deadline one minute). Starting a
// running server does nothing. It returns an error for a server the harness
// does not own, or when the server cannot start; the error then carries the
// end of the server's log.
func (p *Postgres) Start(ctx context.Context) error {
	if p.external != nil {
		return errExternal
	}
	ctx, cancel := withDefaultTimeout(ctx, pgStartTimeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("testcluster: PostgreSQL server is closed")
	}
	if p.proc != nil {
		return nil
	}
	logf, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)
	cmd := exec.Command(filepath.Join(p.binDir, "postgres"), "-D", p.dataDir)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = pgEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: p.cred,
		Setpgid:    true, // terminal signals go to the test, which stops the server itself
		// If the test process dies without Close, the server dies too.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testcluster: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	if err := p.waitReady(ctx, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log := p.logSince(logStart)
		if strings.Contains(log, "could not bind") || strings.Contains(log, "ddress already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fmt.Errorf("testcluster: PostgreSQL on port %d did not start: %w\n%s", p.port, err, log)
	}
	p.proc, p.exited = cmd, exited
	return nil
}

// waitReady polls with a connection until the server answers, it exits, or
// ctx ends.
func (p *Postgres) waitReady(ctx context.Context, exited <-chan struct{}) error {
	tick := time.NewTicker(pgPollInterval)
	defer tick.Stop()
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(attempt, p.adminURL())
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// logSince returns the server log written after offset, at most its last 4 KiB.
func (p *Postgres) logSince(offset int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	b = b[offset:]
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(bytes.TrimSpace(b))
}

// Restart stops the server and starts it again on the same port.
func (p *Postgres) Restart(ctx context.Context) error {
	if p.external != nil {
		return errExternal
	}
	if err := p.Stop(ctx); err != nil {
		return err
	}
	return p.Start(ctx)
}

// Close stops a harness-owned server and removes its files. It does nothing
// for an external server, and nothing the second time.
func (p *Postgres) Close() error {
	if p.external != nil {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), pgStopTimeout)
	err := p.stopLocked(ctx)
	cancel()
	p.mu.Unlock()
	if rerr := os.RemoveAll(p.dir); err == nil && rerr != nil {
		err = fmt.Errorf("testcluster: %w", rerr)
	}
	return err
}

// makeDirs creates the server's temp directory, owned by the user the
// server runs as.
func (p *Postgres) makeDirs() error {
	base := os.TempDir()
	if p.cred != nil && !traversableByOthers(base) {
		base = "/tmp" // the postgres user could not reach a private TMPDIR
	}
	dir, err := os.MkdirTemp(base, pgDirPrefix)
	if err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	p.dir = dir
	p.dataDir = filepath.Join(dir, "data")
	p.sockDir = filepath.Join(dir, "s") // short: a socket path has at most 107 bytes
	p.logPath = filepath.Join(dir, "postgres.log")
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	if err := os.Mkdir(p.sockDir, 0o700); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	if p.cred != nil {
		for _, d := range []string{dir, p.sockDir} {
			if err := os.Chown(d, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				return fmt.Errorf("testcluster: %w", err)
			}
		}
	}
	return nil
}

func (p *Postgres) initdb(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, filepath.Join(p.binDir, "initdb"),
		"-D", p.dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	cmd.Env = pgEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testcluster: initdb: %w\n%s", err, bytes.TrimSpace(out))
	}
	return nil
}

// writeConfig writes the server's settings and access rules. Settings given
// last in postgresql.conf win, so they are appended to initdb's file; the
// port is written to its own included file so a retry can change it.
func (p *Postgres) writeConfig() error {
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(p.dataDir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	conf := filepath.Join(p.dataDir, "postgresql.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	const marker = "\n# cuttle test harness\n"
	if i := bytes.Index(b, []byte(marker)); i >= 0 {
		b = b[:i]
	}
	settings := fmt.Sprintf(`%s
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
max_connections = 300
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_connections = off
log_disconnections = off
`, marker, p.port, p.sockDir)
	if err := os.WriteFile(conf, append(b, settings...), 0o600); err != nil {
		return fmt.Errorf("testcluster: %w", err)
	}
	if p.cred != nil {
		for _, f := range []string{conf, filepath.Join(p.dataDir, "pg_hba.conf")} {
			if err := os.Chown(f, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				return fmt.Errorf("testcluster: %w", err)
			}
		}
	}
	return nil
}

// findPostgresBinDir returns the directory holding initdb and postgres.
func findPostgresBinDir() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	return "", errors.New("testcluster: PostgreSQL is not installed: found no initdb and postgres " +
		"(pg_config --bindir, /usr/lib/postgresql/*/bin, PATH); install it (Debian: apt-get install postgresql) " +
		"or set " + EnvTestDatabaseURL)
}

// postgresCredential returns the credential of the "postgres" user, which
// runs the server when the tests run as root (PostgreSQL refuses root).
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testcluster: running as root needs a \"postgres\" user to run PostgreSQL as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("testcluster: bad uid/gid of user postgres: %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// pgEnv is the environment of PostgreSQL's programs: the test's, without
// variables that would point them elsewhere.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LANG=C")
}

// pickPort returns a free port on 127.0.0.1, chosen at random below the
// kernel's ephemeral range when it can (so that no outgoing connection or
// ":0" listener of a parallel test takes it while the server is stopped).
func pickPort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	const floor = 15000
	if lo-floor >= 1000 {
		for range 50 {
			port := floor + rand.IntN(lo-floor)
			if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
				l.Close()
				return port, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testcluster: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// traversableByOthers reports whether every directory from dir up to the
// root lets other users through.
func traversableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// reapStaleDirs removes the temp directories of earlier test processes that
// died without Close. Their servers died with them (Pdeathsig); a directory
// whose owner or server still runs is left alone.
func reapStaleDirs() {
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dirs, _ := filepath.Glob(filepath.Join(base, pgDirPrefix+"*"))
		for _, dir := range dirs {
			if pidAlive(readPid(filepath.Join(dir, "owner.pid"))) ||
				pidAlive(readPid(filepath.Join(dir, "data", "postmaster.pid"))) {
				continue
			}
			fi, err := os.Stat(filepath.Join(dir, "owner.pid"))
			if err != nil || time.Since(fi.ModTime()) < time.Minute {
				continue // being created right now, or not ours
			}
			os.RemoveAll(dir)
		}
	}
}

// readPid returns the number on the first line of a pid file, or 0.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	n, _ := strconv.Atoi(strings.TrimSpace(line))
	return n
}

func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// The package's shared server, for RunWithPostgres and SharedPostgres.
var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	pg      *Postgres
	err     error
}

// RunWithPostgres is a package's TestMain body for tests that share one
// PostgreSQL server:
//
//	func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }
//
// It runs the tests, then stops the shared server (if a test started one
// with SharedPostgres) whether they passed or not, and returns m.Run's exit
// code, or 1 if the server could not be stopped cleanly. Each test binary
// has its own server, so `go test ./...` running packages in parallel gives
// each its own server and port. If the test process dies instead, the server
// dies with it.
func RunWithPostgres(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	pg := shared.pg
	shared.pg, shared.err = nil, errors.New("testcluster: the shared PostgreSQL server is closed")
	shared.mu.Unlock()
	if pg != nil {
		if err := pg.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// SharedPostgres returns the package's shared PostgreSQL server, starting it
// on first use (StartPostgres). It fails the test if the server cannot
// start, and if the package's TestMain does not call RunWithPostgres (which
// stops it). Tests should give themselves a database with NewDatabase and
// must not leave the server stopped.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatal("testcluster: SharedPostgres needs TestMain to call testcluster.RunWithPostgres")
	}
	if !shared.started {
		shared.started = true
		shared.pg, shared.err = StartPostgres(context.Background())
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.pg
}
