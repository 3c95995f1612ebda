// Package sqlite implements store.Store on an embedded SQLite database, the
// store of a one-node cuttle installation. It uses modernc.org/sqlite, a
// pure-Go SQLite, so cuttle builds without cgo.
//
// # Connections
//
// A Store opens the database file twice: one pool of exactly one connection
// does every write, so writes never contend inside the process and every
// transaction begins IMMEDIATE (it takes the write lock at BEGIN, so a
// read-then-write transaction never fails half-way with SQLITE_BUSY); a second
// pool of query-only connections serves plain reads. The database runs in WAL
// mode, where readers never block the writer nor the writer the readers, and
// every read statement sees every transaction committed before it began.
//
// # Time
//
// Times are stored as integer Unix milliseconds computed in SQL from the
// database clock, julianday('now'), which SQLite keeps to the millisecond and
// holds fixed within one statement. Every liveness and lease comparison is made
// in SQL against that clock (DESIGN.md invariant 7). Durations (settings,
// lease lengths) are stored in milliseconds; finer parts are rounded up.
//
// # Notifications
//
// SQLite serves one process, so Notify and Listen are an in-process broadcast
// between the listeners of one Store; see Listen.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

//go:embed migrations/*.sql
var migrations embed.FS

// BusyTimeout is how long a statement waits for a lock held by another
// process on the same database file before it fails with a KindUnavailable
// error.
const BusyTimeout = 5 * time.Second

// nowMS is the database clock in Unix milliseconds. SQLite evaluates 'now'
// once per statement, so every use of it in one statement agrees.
const nowMS = `CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)`

// staleMS is the cluster's stale timeout in milliseconds. Before InitCluster
// has run it is the default, which a query carries as the :default_stale
// parameter (see defaultStale).
const staleMS = `COALESCE((SELECT stale_timeout_ms FROM cluster WHERE id = 1), :default_stale)`

// defaultStale is the :default_stale parameter of every query that uses staleMS.
var defaultStale = sql.Named("default_stale", cuttle.DefaultStaleTimeout.Milliseconds())

// offline returns the SQL condition under which the node row aliased t is
// offline: it stopped cleanly, never checked in, or has not checked in for the
// stale timeout. The query must carry defaultStale.
func offline(t string) string {
	return "(" + t + ".stopped <> 0 OR " + t + ".last_seen IS NULL OR " + t + ".last_seen <= " + nowMS + " - " + staleMS + ")"
}

// Store is a cuttle database in one SQLite file. It implements store.Store and
// is safe for concurrent use. The zero value is not usable: call Open.
type Store struct {
	db    *sql.DB // the writer: one connection, IMMEDIATE transactions
	rdb   *sql.DB // readers: query-only connections
	notes *broker
}

var _ store.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file if it does not
// exist, and brings its schema up to date by running the embedded migrations
// that have not run yet. It sets WAL journaling, synchronous=NORMAL, foreign
// keys and a busy timeout of BusyTimeout on every connection.
//
// Open fails with a KindInvalid error for an empty path, and a KindInternal
// one when the file cannot be opened or migrated. Only one process should
// use a database file at a time: notifications do not cross processes.
//
// The file and its journals are readable by their owner only: a file that
// exists with wider permissions is narrowed to 0600.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, cuttle.Errorf(cuttle.KindInvalid, "The SQLite database needs a file path.")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, cuttle.Wrap(err, "finding the database file")
	}
	if err := private(abs); err != nil {
		return nil, cuttle.Wrap(err, "creating the database file")
	}

	db, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, cuttle.Wrap(err, "opening the database")
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	if err := syncCollections(ctx, db); err != nil {
		db.Close()
		return nil, err
	}

	// The readers open after the migrations, so the file is in WAL mode and
	// holds the whole schema before any of them looks at it.
	rdb, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		db.Close()
		return nil, cuttle.Wrap(err, "opening the database")
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	if err := rdb.PingContext(ctx); err != nil {
		rdb.Close()
		db.Close()
		return nil, dbError(err, "opening the database")
	}
	return &Store{db: db, rdb: rdb, notes: newBroker()}, nil
}

// dsn returns the modernc.org/sqlite data source name of the file at abs. The
// _pragma parameters apply to every connection the pool opens.
func dsn(abs string, readOnly bool) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows path: file:///C:/...
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		// journal_mode is persistent: the writer sets it before any
		// reader opens.
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// migrate runs the embedded migrations that have not run yet.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return cuttle.Wrap(err, "reading the migrations")
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return cuttle.Wrap(err, "preparing the migrations")
	}
	if _, err := p.Up(ctx); err != nil {
		return dbError(err, "migrating the database")
	}
	return nil
}

// Close ends every Listen and closes the database. It waits for statements
// in progress.
func (s *Store) Close() error {
	s.notes.close()
	return errors.Join(s.rdb.Close(), s.db.Close())
}

// Now returns the database clock, to the millisecond, in UTC.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var ms int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT `+nowMS).Scan(&ms); err != nil {
		return time.Time{}, dbError(err, "reading the database clock")
	}
	return msTime(ms), nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it if fn
// returns nil.
func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dbError(err, what)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return dbError(err, what)
	}
	if err := tx.Commit(); err != nil {
		return dbError(err, what)
	}
	return nil
}

// dbError turns err into a *cuttle.Error (see collection.Error): a busy or
// locked database, or an ended context, is KindUnavailable.
func dbError(err error, what string) error { return collection.Error(dialect{}, err, what) }

// isConstraint reports whether err is the SQLite constraint violation code,
// an extended result code such as SQLITE_CONSTRAINT_UNIQUE.
func isConstraint(err error, code int) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == code
}

// msTime returns the time of Unix milliseconds ms, in UTC.
func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// nullTime returns msTime of ms, or the zero time for NULL.
func nullTime(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return msTime(ms.Int64)
}

// durationMS returns d in whole milliseconds, rounded up.
func durationMS(d time.Duration) int64 {
	ms := d.Milliseconds()
	if time.Duration(ms)*time.Millisecond < d {
		ms++
	}
	return ms
}

// private creates the database file if it is missing, readable and
// writable by its owner only, and narrows the permissions of an existing
// one and of its journals (-wal, -shm) to that. SQLite gives the journals
// it creates the mode of the database file.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(name, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}
