package resources

import (
	"context"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Credentials are the users' hashed passwords, one per user.
var Credentials = &collection.Def[cuttle.Credential]{
	Table: "credentials", Prefix: "Credentials-", Noun: "password",
	Columns: []collection.Column[cuttle.Credential]{
		{Name: "user_id", Unique: true, Refers: Users, Value: func(c *cuttle.Credential) any { return c.UserID }},
	},
}

// Sessions are the people signed in with a password.
var Sessions = &collection.Def[cuttle.Session]{
	Table: "sessions", Prefix: "Sessions-", Noun: "session",
	Columns: []collection.Column[cuttle.Session]{
		{Name: "user_id", Refers: Users, Value: func(s *cuttle.Session) any { return s.UserID }},
	},
}

// LoginFailureCounts are the failed sign-ins by user and by address.
var LoginFailureCounts = &collection.Def[cuttle.LoginFailures]{
	Table: "login_failures", Prefix: "LoginFailures-", Noun: "sign-in failure count",
	Columns: []collection.Column[cuttle.LoginFailures]{
		{Name: "key", Unique: true, MaxLength: 300, Value: func(f *cuttle.LoginFailures) any { return strings.ToLower(f.Key) }},
	},
}

// Credential returns a user's credential; KindNotFound if they have no
// password.
func Credential(ctx context.Context, tx *collection.Tx, userID string, lock bool) (cuttle.Credential, error) {
	cs, _, err := Credentials.List(ctx, tx, collection.Query{Take: 1, Where: map[string]any{"user_id": userID}})
	if err != nil {
		return cuttle.Credential{}, err
	}
	if len(cs) == 0 {
		return cuttle.Credential{}, cuttle.Errorf(cuttle.KindNotFound, "The user has no password.")
	}
	if lock {
		return Credentials.GetForUpdate(ctx, tx, cs[0].ID)
	}
	return cs[0], nil
}

// EndSessions deletes the sessions of a user: a sign-out everywhere, as a
// password change or the user's delete needs.
func EndSessions(ctx context.Context, tx *collection.Tx, userID string) error {
	ss, _, err := Sessions.List(ctx, tx, collection.Query{Take: -1, Where: map[string]any{"user_id": userID}})
	if err != nil {
		return err
	}
	for _, s := range ss {
		if err := Sessions.Delete(ctx, tx, s.ID); err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
			return err
		}
	}
	return nil
}

// LoginFailuresOf returns the count of key, zero when its window ended.
func LoginFailuresOf(ctx context.Context, tx *collection.Tx, key string, now time.Time) (cuttle.LoginFailures, error) {
	fs, _, err := LoginFailureCounts.List(ctx, tx, collection.Query{Take: 1, Where: map[string]any{"key": strings.ToLower(key)}})
	if err != nil || len(fs) == 0 {
		return cuttle.LoginFailures{Key: key, Since: now}, err
	}
	f := fs[0]
	if now.Sub(f.Since) >= cuttle.LoginFailureWindow {
		f.Count, f.Since = 0, now
	}
	return f, nil
}

// CountLoginFailure adds a failed sign-in to key's count.
func CountLoginFailure(ctx context.Context, tx *collection.Tx, key string, now time.Time) error {
	f, err := LoginFailuresOf(ctx, tx, key, now)
	if err != nil {
		return err
	}
	f.Count++
	if f.ID == "" {
		return LoginFailureCounts.Insert(ctx, tx, &f)
	}
	return LoginFailureCounts.Update(ctx, tx, &f)
}

// ClearLoginFailures forgets key's failed sign-ins.
func ClearLoginFailures(ctx context.Context, tx *collection.Tx, key string) error {
	fs, _, err := LoginFailureCounts.List(ctx, tx, collection.Query{Take: 1, Where: map[string]any{"key": strings.ToLower(key)}})
	if err != nil || len(fs) == 0 {
		return err
	}
	return LoginFailureCounts.Delete(ctx, tx, fs[0].ID)
}
