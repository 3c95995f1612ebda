package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle"
)

// CreateUser creates a user. Usernames are compared exactly (case-sensitively).
// KindConflict if the username is taken.
func (s *Store) CreateUser(ctx context.Context, username string, admin bool) (cuttle.User, error) {
	u := cuttle.User{Username: username, IsAdministrator: admin}
	err := s.pool.QueryRow(ctx, `INSERT INTO users (username, is_admin) VALUES ($1, $2) RETURNING id`, username, admin).Scan(&u.ID)
	if pgCode(err) == codeUniqueViolation {
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
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, dbError(err, "counting the users")
}

// UserByName returns the user of that exact name. KindNotFound if there is none.
func (s *Store) UserByName(ctx context.Context, username string) (cuttle.User, error) {
	var u cuttle.User
	err := s.pool.QueryRow(ctx, `SELECT id, username, is_admin FROM users WHERE username = $1`, username).
		Scan(&u.ID, &u.Username, &u.IsAdministrator)
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindNotFound, "There is no user named %q.", username)
	}
	if err != nil {
		return cuttle.User{}, dbError(err, "reading the user")
	}
	return u, nil
}

// AddAPIKey stores the digest of a key for the user; adding a digest that
// exists already does nothing, whichever user it belongs to. KindNotFound if
// there is no user userID.
func (s *Store) AddAPIKey(ctx context.Context, userID int64, purpose, digest string) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO api_keys (digest, user_id, purpose) VALUES ($1, $2, $3)
		ON CONFLICT (digest) DO NOTHING`, digest, userID, purpose)
	if pgCode(err) == codeForeignKeyViolation {
		return cuttle.Errorf(cuttle.KindNotFound, "There is no user with the id %q.", cuttle.FormatID(cuttle.UserIDPrefix, userID))
	}
	return dbError(err, "adding the API key")
}

// UserByAPIKey returns the user owning the key with that digest.
// KindUnauthorized if no key has that digest.
func (s *Store) UserByAPIKey(ctx context.Context, digest string) (cuttle.User, error) {
	var u cuttle.User
	err := s.pool.QueryRow(ctx, `
		SELECT u.id, u.username, u.is_admin
		FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.digest = $1`, digest).Scan(&u.ID, &u.Username, &u.IsAdministrator)
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not valid.")
	}
	if err != nil {
		return cuttle.User{}, dbError(err, "looking up the API key")
	}
	return u, nil
}
