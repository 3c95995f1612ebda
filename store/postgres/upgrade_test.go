package postgres_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/storetest"
	"github.com/cuttledeploy/cuttle/testcluster"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// TestUpgradeFrom4 migrates a database that a node of schema 4 wrote
// (before the document collections) and finds its environments, machines,
// users, API keys, agent commands and id sequences intact.
func TestUpgradeFrom4(t *testing.T) {
	url := testcluster.SharedPostgres(t).NewDatabase(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 4); err != nil {
		t.Fatalf("migrating to schema 4: %v", err)
	}
	// Rows are inserted without ids, as schema 4 did, so that the
	// sequences move.
	fixture := []string{
		`INSERT INTO environments (space_id, name, description, sort_order, use_guided_failure)
		 VALUES ('Spaces-1', 'Production', 'live', 2, true), ('Spaces-1', 'Test', '', 1, false),
		        ('Spaces-1', 'Gone', '', 3, false)`,
		`DELETE FROM environments WHERE id = 3`,
		`INSERT INTO machines (space_id, name, roles, environment_ids, style, uri, thumbprint)
		 VALUES ('Spaces-1', 'web-1', '{web}', '{1,2}', 'TentacleActive', 'poll://web-1-sub/', 'AB12')`,
		`INSERT INTO users (username, is_admin) VALUES ('admin', true), ('viewer', false), ('gone', false)`,
		`DELETE FROM users WHERE id = 3`,
		`INSERT INTO commands (uid, machine_id, task_id, key, kind, state, created_at, output_seq, finished_at)
		 VALUES ('` + storetest.V4CommandUID + `', 1, 7, 'script', 'Script', 'Success', now(), 2, now())`,
		`INSERT INTO command_output (command_id, seq, time, stream, text)
		 VALUES (1, 1, now(), 'stdout', 'hello'), (1, 2, now(), 'stderr', 'wörld')`,
	}
	for _, q := range fixture {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for user, key := range map[int]string{1: storetest.V4AdminKey, 2: storetest.V4ViewerKey} {
		if _, err := db.ExecContext(t.Context(),
			`INSERT INTO api_keys (digest, user_id, purpose) VALUES ($1, $2, 'first')`,
			storetest.V4KeyDigest(key), user); err != nil {
			t.Fatal(err)
		}
	}

	storetest.CheckUpgradeFrom4(t, openURL(t, url))
}

// TestWithoutTrigrams: a node whose database user may not create the
// pg_trgm extension (no CREATE privilege on the database) still opens the
// store, and searches by partial name still find what they should, by
// reading every row.
func TestWithoutTrigrams(t *testing.T) {
	ctx := t.Context()
	role := fmt.Sprintf("limited_%d", os.Getpid())
	admin := testcluster.SharedPostgres(t).NewDatabase(t)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"DROP ROLE IF EXISTS " + role,
		"CREATE ROLE " + role + " LOGIN",
		"GRANT ALL ON SCHEMA public TO " + role,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err == nil {
			db.Exec("DROP OWNED BY " + role)
			db.Close()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	s := openURL(t, u.String())

	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')`).Scan(&exists); err != nil || exists {
		t.Fatalf("pg_trgm exists: %v, %v; want the limited user unable to create it", exists, err)
	}
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(s.Update(ctx, func(tx *collection.Tx) error {
		for _, name := range []string{"Web-100", "Web-200", "db-100"} {
			if err := resources.Environments.Insert(ctx, tx, &cuttle.Environment{Resource: cuttle.Resource{SpaceID: "Spaces-1"}, Name: name}); err != nil {
				return err
			}
		}
		return nil
	}))
	check(s.Read(ctx, func(tx *collection.Tx) error {
		envs, n, err := resources.Environments.List(ctx, tx, collection.Query{Space: "Spaces-1", PartialName: "WEB-"})
		if err == nil && (n != 2 || len(envs) != 2) {
			t.Errorf("partialName WEB- found %d: %+v; want Web-100 and Web-200", n, envs)
		}
		return err
	}))
}
