package sqlite

import (
	"context"
	"database/sql"
	"errors"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cuttledeploy/cuttle"
)

// CreateUser creates a user. Usernames are compared exactly (case-sensitively).
// KindConflict if the username is taken.
func (s *Store) CreateUser(ctx context.Context, username string, admin bool) (cuttle.User, error) {
	u := cuttle.User{Username: username, IsAdministrator: admin}
	err := s.db.QueryRowContext(ctx, `
		INSERT INTO users (username, is_admin, created_at) VALUES (?, ?, `+nowMS+`)
		RETURNING id`, username, admin).Scan(&u.ID)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindConflict, "The username %q is taken.", username)
	}
	if err != nil {
		return cuttle.User{}, dbError(err, "creating the user")
	}
	return u, nil
}

// UserCount returns the number of users.
func (s *Store) UserCount(ctx context.Context) (int, error) {
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, dbError(err, "counting the users")
}

// UserByName returns the user of that exact name. KindNotFound if there is none.
func (s *Store) UserByName(ctx context.Context, username string) (cuttle.User, error) {
	var u cuttle.User
	err := s.rdb.QueryRowContext(ctx, `SELECT id, username, is_admin FROM users WHERE username = ?`, username).
		Scan(&u.ID, &u.Username, &u.IsAdministrator)
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindNotFound, "There is no user named %q.", username)
	}
	return u, dbError(err, "reading the user")
}

// AddAPIKey stores the digest of a key for the user; adding a digest that
// exists already does nothing, whichever user it belongs to. KindNotFound if
// there is no user userID.
func (s *Store) AddAPIKey(ctx context.Context, userID int64, purpose, digest string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO api_keys (digest, user_id, purpose, created_at) VALUES (?, ?, ?, `+nowMS+`)
		ON CONFLICT (digest) DO NOTHING`, digest, userID, purpose)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no user with the id %q.", cuttle.FormatID(cuttle.UserIDPrefix, userID))
	}
	return dbError(err, "adding the API key")
}

// UserByAPIKey returns the user owning the key with that digest.
// KindUnauthorized if no key has that digest.
func (s *Store) UserByAPIKey(ctx context.Context, digest string) (cuttle.User, error) {
	var u cuttle.User
	err := s.rdb.QueryRowContext(ctx, `
		SELECT u.id, u.username, u.is_admin
		FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.digest = ?`, digest).Scan(&u.ID, &u.Username, &u.IsAdministrator)
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not valid.")
	}
	return u, dbError(err, "looking up the API key")
}
