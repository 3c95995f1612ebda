// Package postgres is the PostgreSQL implementation of store.Store, the
// database of a cuttle cluster: every node of the cluster opens the same
// database.
//
// Open migrates the schema (embedded, numbered SQL files applied with goose
// under a PostgreSQL advisory lock, so nodes starting together migrate once)
// and keeps a pgx connection pool. Every time that decides liveness or a
// lease is the database's clock_timestamp() (not now(), which is the start of
// the transaction), compared in SQL. Notifications use LISTEN/NOTIFY on a
// dedicated connection per listener.
//
// Errors are *cuttle.Error. A database that cannot be reached (refused or
// timed-out connections, a server shutting down, a context that ended) gives
// KindUnavailable.
package postgres

import (
	"context"
	"embed"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultConnectTimeout bounds each attempt to connect to the database, so
// that a dead database gives KindUnavailable quickly instead of hanging.
const DefaultConnectTimeout = 2 * time.Second

// migrationLockID is the advisory lock that serializes migrations of nodes
// starting at once: "cuttle" in ASCII.
const migrationLockID = 0x637574746c65

// Store is a cuttle database on PostgreSQL. It implements store.Store; its
// methods are safe for concurrent use.
type Store struct {
	pool           *pgxpool.Pool
	listenConfig   *pgx.ConnConfig // for the dedicated connections of listeners
	connectTimeout time.Duration
	log            *slog.Logger

	closing   context.Context // ends at Close, stopping listeners
	close     context.CancelFunc
	listeners sync.WaitGroup
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*options)

// IdleInTransactionTimeout is how long a session may sit idle inside a
// transaction before PostgreSQL ends it (idle_in_transaction_session_timeout;
// a URL that sets it wins).
const IdleInTransactionTimeout = 5 * time.Second

type options struct {
	connectTimeout time.Duration
	maxConns       int32
	log            *slog.Logger
}

// WithConnectTimeout bounds each attempt to connect to the database. Default
// DefaultConnectTimeout (2 s); a connect_timeout in the URL takes precedence.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) { o.connectTimeout = d }
}

// WithMaxConns sets the most connections the pool opens. Default: the
// pool's, the greater of 4 and the number of CPUs, or pool_max_conns in the
// URL. Listeners use connections of their own, outside this number.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = int32(n) }
}

// WithLogger sets where the store logs migrations and listener reconnects.
// Default: nowhere.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value connection string) and migrates its schema to the latest
// version, waiting for another node's migration to finish first. It returns
// KindInvalid for a malformed url, KindUnavailable when the database cannot
// be reached, and KindInternal when a migration fails. Close releases the
// store.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{connectTimeout: DefaultConnectTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password from the parse error.
		return nil, &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The PostgreSQL connection URL is invalid.", Err: err}
	}
	if cfg.ConnConfig.ConnectTimeout == 0 && o.connectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = o.connectTimeout
	}
	// A connection that does not answer a ping in time is dead.
	cfg.PingTimeout = cfg.ConnConfig.ConnectTimeout
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "cuttle"
	}
	// A node paused (SIGSTOP, a frozen VM) or cut off in the middle of a
	// transaction must not hold its row locks, the leader lease's among
	// them, for long: the server ends such a session after
	// IdleInTransactionTimeout, so the other nodes can elect a leader in
	// about that time plus the lease (TestStoppedLeaderLearnsItLostItsTerm).
	// cuttle's transactions never wait between statements; one delayed
	// that long fails and is retried.
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.Itoa(int(IdleInTransactionTimeout.Milliseconds()))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError(err, "opening the database")
	}
	s := &Store{
		pool:           pool,
		listenConfig:   cfg.ConnConfig.Copy(),
		connectTimeout: cfg.ConnConfig.ConnectTimeout,
		log:            o.log,
	}
	if s.connectTimeout <= 0 {
		s.connectTimeout = DefaultConnectTimeout
	}
	s.closing, s.close = context.WithCancel(context.Background())
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.syncCollections(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations that the database lacks.
func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return cuttle.Wrap(err, "reading the migrations")
	}
	// Retry the advisory lock every second for up to five minutes (or until
	// ctx ends) while another node migrates.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return cuttle.Wrap(err, "preparing the migration lock")
	}
	// Migrations run on connections of their own, without the idle
	// timeout: a migration is run once, by one node under the lock, and a
	// node starved of CPU between two of its statements must not fail to
	// start (the lock only holds back other starting nodes).
	cfg := s.listenConfig.Copy()
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "0"
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log))
	if err != nil {
		return cuttle.Wrap(err, "preparing the migrations")
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return dbError(err, "migrating the database")
	}
	for _, r := range results {
		s.log.Info("database migrated", "migration", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Close stops the store's listeners (closing their channels) and closes its
// connections. It returns nil; closing twice does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.close()
		s.listeners.Wait()
		s.pool.Close()
	})
	return nil
}

// Now returns the database's clock, clock_timestamp(), in UTC.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return time.Time{}, dbError(err, "reading the database clock")
	}
	return now.UTC(), nil
}

// dbError turns err into a *cuttle.Error: an *cuttle.Error stays as it is, a
// database that cannot be reached gives KindUnavailable, anything else
// KindInternal with what (what was being done) as its message.
func dbError(err error, what string) error { return collection.Error(dialect{}, err, what) }

// unavailable reports whether err means the database could not be reached
// or could not serve, rather than that the request was wrong.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		for _, class := range []string{
			"08", // connection exception
			"53", // insufficient resources: too many connections, out of memory or disk
			"57", // operator intervention: shutting down, starting up, canceled
		} {
			if strings.HasPrefix(pgErr.Code, class) {
				return true
			}
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	// A pool closed while in use, and pgconn's closed-connection errors.
	msg := err.Error()
	return strings.Contains(msg, "closed pool") || strings.Contains(msg, "conn closed")
}

// pgCode returns the SQLSTATE of a server error, or "".
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// constraintOf returns the constraint (or unique index) a server error
// names, or "".
func constraintOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// SQLSTATE codes the store maps to kinds.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// interval is SQL for a bigint number of microseconds as an interval.
func interval(param string) string { return "(" + param + " * interval '1 microsecond')" }

// utc returns t in UTC, or the zero time for nil.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
