package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// dialect is SQLite's collection.Dialect.
type dialect struct{}

func (dialect) Name() string       { return "sqlite" }
func (dialect) IDColumn() string   { return "INTEGER PRIMARY KEY AUTOINCREMENT" }
func (dialect) DocType() string    { return "TEXT" }
func (dialect) ShareLock() string  { return "" } // one writer: transactions are serialized
func (dialect) UpdateLock() string { return "" }

// SearchIndex: SQLite has no index for LIKE '%text%'; a search reads
// every row.
func (dialect) SearchIndex(table, column string) string { return "" }

func (dialect) Type(k collection.Kind) string {
	switch k {
	case collection.Int, collection.Bool:
		return "INTEGER"
	default:
		return "TEXT"
	}
}

func (dialect) HasColumn(ctx context.Context, q collection.Querier, table, column string) (bool, error) {
	return collection.Exists(ctx, q, `SELECT 1 FROM pragma_table_info(?) WHERE name = ?`, table, column)
}

func (dialect) UniqueViolation(err error) (string, bool) {
	var se *sqlite.Error
	switch {
	case errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return "id_pkey", true
	case errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return se.Error(), true // "UNIQUE constraint failed: table.space_id, table.name"
	}
	return "", false
}

func (dialect) Unavailable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return errors.Is(err, sql.ErrConnDone)
}

// sqlQuerier is a *sql.DB or a *sql.Tx.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// docQuerier adapts database/sql to collection.Querier.
type docQuerier struct{ q sqlQuerier }

func (q docQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return rowsAffected(q.q.ExecContext(ctx, query, args...))
}

func (q docQuerier) Query(ctx context.Context, query string, args ...any) (collection.Rows, error) {
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// syncCollections creates what the declared collections need.
func syncCollections(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return dbError(err, "creating the collections' tables")
	}
	defer tx.Rollback()
	utx := collection.NewTx(docQuerier{tx}, dialect{})
	if err := collection.Sync(ctx, utx, resources.All); err != nil {
		return dbError(err, "creating the collections' tables")
	}
	if err := resources.Seed(ctx, utx); err != nil {
		return dbError(err, "creating the default documents")
	}
	return dbError(tx.Commit(), "creating the collections' tables")
}

// Read runs fn over the readers' pool, for reads that need no transaction.
// Notifications fn queues are dropped.
func (s *Store) Read(ctx context.Context, fn func(tx *collection.Tx) error) error {
	return fn(collection.NewTx(docQuerier{s.rdb}, dialect{}))
}

// Update runs fn as one unit of work: an IMMEDIATE transaction that commits
// if fn returns nil, after which the notifications it queued are published
// (DESIGN.md invariant 10).
func (s *Store) Update(ctx context.Context, fn func(tx *collection.Tx) error) error {
	var notes []collection.Note
	err := s.inTx(ctx, "writing", func(tx *sql.Tx) error {
		ctx := collection.NewTx(docQuerier{tx}, dialect{})
		if err := fn(ctx); err != nil {
			return err
		}
		notes = ctx.Notes()
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range notes {
		s.Notify(ctx, n.Channel, n.Payload) // in-process: it fails only once the store is closed
	}
	return nil
}
