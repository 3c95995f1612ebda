package postgres_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/storetest"
	"github.com/cuttledeploy/cuttle/testcluster"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// TestUpgradeFrom4 migrates a database that a node of schema 4 wrote
// (before the document collections) and finds its environments, machines,
// users, API keys and id sequences intact.
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
	}
	for _, q := range fixture {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for user, key := range map[int]string{1: storetest.V4AdminKey, 2: storetest.V4ViewerKey} {
		if _, err := db.ExecContext(t.Context(),
			`INSERT INTO api_keys (digest, user_id, purpose) VALUES ($1, $2, 'first')`,
			cuttle.HashAPIKey(key), user); err != nil {
			t.Fatal(err)
		}
	}

	storetest.CheckUpgradeFrom4(t, openURL(t, url))
}
