package resources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Users are the users; their name column is the username, unique ignoring
// case.
var Users = &collection.Def[cuttle.User]{
	Table: "users", Prefix: cuttle.UserIDPrefix, Noun: "user",
	Columns: []collection.Column[cuttle.User]{name(func(u *cuttle.User) string { return u.Username })},
	Order:   "name",
}

// APIKeys are the users' API keys, found by digest at every request.
var APIKeys = &collection.Def[cuttle.APIKey]{
	Table: "api_keys", Prefix: "APIKeys-", Noun: "API key",
	Columns: []collection.Column[cuttle.APIKey]{
		{Name: APIKeyDigest, Unique: true, Value: func(k *cuttle.APIKey) any { return k.Digest }},
		{Name: APIKeyUser, Refers: Users, Value: func(k *cuttle.APIKey) any { return k.UserID }},
	},
}

// Teams are the teams; member_user_ids refers to Users.
var Teams = &collection.Def[cuttle.Team]{
	Table: "teams", Prefix: "Teams-", Noun: "team",
	Columns: []collection.Column[cuttle.Team]{
		name(func(t *cuttle.Team) string { return t.Name }),
		{Name: TeamMembers, Kind: collection.IDs, Refers: Users, Value: func(t *cuttle.Team) any { return t.MemberUserIds }},
	},
	Order: "name",
}

// Columns that filters name.
const (
	APIKeyDigest = "digest"          // of APIKeys: the key's digest
	APIKeyUser   = "user_id"         // of APIKeys: the owner's id
	TeamMembers  = "member_user_ids" // of Teams: the members' ids
)

// seedTeams creates the built-in teams: Everyone (every user, implicitly:
// its members cannot change) and the administrators.
func seedTeams(ctx context.Context, tx *collection.Tx) error {
	builtIn := func(name, description string, members bool) *cuttle.Team {
		return &cuttle.Team{Name: name, Description: description, MemberUserIds: []string{}, ExternalSecurityGroups: []json.RawMessage{},
			CanChangeMembers: members, CanChangeRoles: true}
	}
	if err := seedNamed(ctx, tx, Teams, builtIn(cuttle.EveryoneTeam, "Every user, whether or not they are members of other teams.", false)); err != nil {
		return err
	}
	return seedNamed(ctx, tx, Teams, builtIn(cuttle.AdministratorsTeam, "The administrators: they may change everything.", true))
}

// CreateUser checks and stores a new user, and makes them a member of the
// administrators team if admin. KindConflict if the username is taken
// (ignoring case).
func CreateUser(ctx context.Context, tx *collection.Tx, u *cuttle.User, admin bool) error {
	if err := u.Check(); err != nil {
		return err
	}
	if err := Users.Insert(ctx, tx, u); err != nil {
		return err
	}
	if !admin {
		return nil
	}
	return MakeAdministrator(ctx, tx, u.ID)
}

// MakeAdministrator adds the user of id to the administrators team, if
// they are not a member yet.
func MakeAdministrator(ctx context.Context, tx *collection.Tx, id string) error {
	team, err := administrators(ctx, tx)
	if err != nil || slices.Contains(team.MemberUserIds, id) {
		return err
	}
	team.MemberUserIds = append(team.MemberUserIds, id)
	return Teams.Update(ctx, tx, &team)
}

// UserNamed returns the user of that username, ignoring case. KindNotFound
// if there is none.
func UserNamed(ctx context.Context, tx *collection.Tx, username string) (cuttle.User, error) {
	us, _, err := Users.List(ctx, tx, collection.Query{Name: username, Take: 1})
	if err != nil {
		return cuttle.User{}, err
	}
	if len(us) == 0 {
		return cuttle.User{}, cuttle.Errorf(cuttle.KindNotFound, "There is no user named %q.", username)
	}
	return us[0], nil
}

// administrators returns the administrators team, locked for the unit of
// work.
func administrators(ctx context.Context, tx *collection.Tx) (cuttle.Team, error) {
	ts, _, err := Teams.List(ctx, tx, collection.Query{Name: cuttle.AdministratorsTeam, Take: 1})
	if err != nil {
		return cuttle.Team{}, err
	}
	if len(ts) == 0 {
		return cuttle.Team{}, cuttle.Errorf(cuttle.KindInternal, "The %s team is missing.", cuttle.AdministratorsTeam)
	}
	return Teams.GetForUpdate(ctx, tx, ts[0].ID)
}

// IsAdministrator reports whether the user of id is a member of the
// administrators team.
func IsAdministrator(ctx context.Context, tx *collection.Tx, userID string) (bool, error) {
	_, n, err := Teams.List(ctx, tx, collection.Query{Name: cuttle.AdministratorsTeam, Take: 1,
		Where: map[string]any{TeamMembers: userID}})
	return n > 0, err
}

// DigestAPIKey returns the digest an API key is stored under:
// "hmac-sha256:" and the hex HMAC-SHA256 of the key under a key derived
// from the master key, so that a copy of the database alone lets no one
// test guesses of keys offline. A lookup by digest uses an index.
func DigestAPIKey(mk masterkey.Key, key string) string {
	return digestScheme + hex.EncodeToString(mk.MAC("api key", []byte(key)))
}

const digestScheme = "hmac-sha256:"

// legacyAPIKeyDigest is the digest earlier nodes stored: a bare SHA-256, which a copy of the database lets anyone test guesses
// against. Authenticate still finds such keys, and UpgradeAPIKey stores
// them again under DigestAPIKey.
func legacyAPIKeyDigest(key string) string {
	sum := sha256.Sum256([]byte("cuttle api key\x00" + key))
	return hex.EncodeToString(sum[:])
}

// AddAPIKey stores the digest of key for the user of userID and returns
// the stored key, or the key of that digest if one exists already (whoever
// owns it). KindInvalid if there is no such user.
func AddAPIKey(ctx context.Context, tx *collection.Tx, mk masterkey.Key, userID, purpose, key string) (cuttle.APIKey, error) {
	digest := DigestAPIKey(mk, key)
	ks, _, err := APIKeys.List(ctx, tx, collection.Query{Take: 1, Where: map[string]any{APIKeyDigest: digest}})
	if err != nil || len(ks) > 0 {
		return first(ks), err
	}
	k := cuttle.APIKey{UserID: userID, Purpose: strings.TrimSpace(purpose), Created: time.Now().UTC().Truncate(time.Millisecond),
		Digest: digest, Hint: cuttle.APIKeyHint(key)}
	return k, APIKeys.Insert(ctx, tx, &k)
}

// apiKeyOf returns the stored key of key, found by its digest or else by
// its legacy digest (legacy then true); ok is false if neither is stored.
func apiKeyOf(ctx context.Context, tx *collection.Tx, mk masterkey.Key, key string, lock bool) (k cuttle.APIKey, legacy, ok bool, err error) {
	for i, digest := range []string{DigestAPIKey(mk, key), legacyAPIKeyDigest(key)} {
		ks, _, err := APIKeys.List(ctx, tx, collection.Query{Take: 1, Where: map[string]any{APIKeyDigest: digest}})
		if err != nil || len(ks) > 0 {
			if err == nil && lock {
				ks[0], err = APIKeys.GetForUpdate(ctx, tx, ks[0].ID)
			}
			return first(ks), i == 1, err == nil, err
		}
	}
	return cuttle.APIKey{}, false, false, nil
}

func first[T any](ts []T) T {
	var zero T
	if len(ts) == 0 {
		return zero
	}
	return ts[0]
}

// Authenticate returns the active user who owns key, and whether the key is stored under its legacy digest (then the
// caller stores it again with UpgradeAPIKey, in a unit of work of its
// own). KindUnauthorized if no key has its digest or its user is
// inactive. It reads the database every time, so a deleted key or a
// deactivated user is refused at once on every node.
func Authenticate(ctx context.Context, tx *collection.Tx, mk masterkey.Key, key string) (_ cuttle.User, legacy bool, _ error) {
	k, legacy, ok, err := apiKeyOf(ctx, tx, mk, key, false)
	if err != nil {
		return cuttle.User{}, false, err
	}
	if !ok {
		return cuttle.User{}, false, cuttle.Errorf(cuttle.KindUnauthorized, "The API key is not known to this cluster.")
	}
	u, err := Users.Get(ctx, tx, k.UserID)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return cuttle.User{}, false, cuttle.Errorf(cuttle.KindUnauthorized, "The API key's user was deleted.")
	}
	if err != nil {
		return cuttle.User{}, false, err
	}
	if !u.IsActive {
		return cuttle.User{}, false, cuttle.Errorf(cuttle.KindUnauthorized, "The user %s is not active.", u.Username)
	}
	return u, legacy, nil
}

// UpgradeAPIKey stores key, if it is stored under its legacy digest, under
// DigestAPIKey instead. Nodes racing to upgrade one key are serialised by
// the key's lock: the later finds it upgraded and does nothing.
func UpgradeAPIKey(ctx context.Context, tx *collection.Tx, mk masterkey.Key, key string) error {
	k, legacy, ok, err := apiKeyOf(ctx, tx, mk, key, true)
	if err != nil || !ok || !legacy {
		return err
	}
	k.Digest = DigestAPIKey(mk, key)
	return APIKeys.Update(ctx, tx, &k)
}

// ReleaseUser prepares the delete of the user of id: it deletes their API
// keys, password and sessions and takes them out of their teams. KindConflict if they are the
// last active administrator.
func ReleaseUser(ctx context.Context, tx *collection.Tx, id string) error {
	if err := CheckAdministratorsLeft(ctx, tx, id); err != nil {
		return err
	}
	teams, _, err := Teams.List(ctx, tx, collection.Query{Take: -1, Where: map[string]any{TeamMembers: id}})
	if err != nil {
		return err
	}
	for _, t := range teams {
		t, err := Teams.GetForUpdate(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		t.MemberUserIds = slices.DeleteFunc(t.MemberUserIds, func(m string) bool { return strings.EqualFold(m, id) })
		if err := Teams.Update(ctx, tx, &t); err != nil {
			return err
		}
	}
	keys, _, err := APIKeys.List(ctx, tx, collection.Query{Take: -1, Where: map[string]any{APIKeyUser: id}})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := APIKeys.Delete(ctx, tx, k.ID); err != nil {
			return err
		}
	}
	if c, err := Credential(ctx, tx, id, false); err == nil {
		if err := Credentials.Delete(ctx, tx, c.ID); err != nil {
			return err
		}
	} else if !cuttle.IsKind(err, cuttle.KindNotFound) {
		return err
	}
	return EndSessions(ctx, tx, id)
}

// CheckAdministratorsLeft returns a KindConflict error if removing the
// user of id from the administrators would leave the team without an
// active member. It locks the team for the unit of work, so that two
// removals cannot each leave the other's last administrator.
func CheckAdministratorsLeft(ctx context.Context, tx *collection.Tx, id string) error {
	team, err := administrators(ctx, tx)
	if err != nil {
		return err
	}
	for _, m := range team.MemberUserIds {
		if strings.EqualFold(m, id) {
			continue
		}
		if u, err := Users.Get(ctx, tx, m); err == nil && u.IsActive {
			return nil
		} else if err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
			return err
		}
	}
	if !slices.ContainsFunc(team.MemberUserIds, func(m string) bool { return strings.EqualFold(m, id) }) {
		return nil // not an administrator: nothing changes
	}
	return cuttle.Errorf(cuttle.KindConflict, "%s is the last active member of %s: add another administrator first.", id, cuttle.AdministratorsTeam)
}
