package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/cuttledeploy/cuttle/store/storetest"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"
)

// TestUpgradeFrom4 migrates a database that a node of schema 4 wrote
// (before the document collections) and finds its environments, machines,
// users, API keys, agent commands and id sequences intact.
func TestUpgradeFrom4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cuttle.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 4); err != nil {
		t.Fatalf("migrating to schema 4: %v", err)
	}
	fixture := []string{
		`INSERT INTO environments (id, space_id, name, description, sort_order, use_guided_failure)
		 VALUES (1, 'Spaces-1', 'Production', 'live', 2, 1), (2, 'Spaces-1', 'Test', '', 1, 0),
		        (3, 'Spaces-1', 'Gone', '', 3, 0)`,
		`DELETE FROM environments WHERE id = 3`,
		`INSERT INTO machines (space_id, name, roles, environment_ids, style, uri, thumbprint)
		 VALUES ('Spaces-1', 'web-1', '["web"]', '[1,2]', 'TentacleActive', 'poll://web-1-sub/', 'AB12')`,
		`INSERT INTO users (id, username, is_admin, created_at)
		 VALUES (1, 'admin', 1, 1700000000000), (2, 'viewer', 0, 1700000000001), (3, 'gone', 0, 1700000000002)`,
		`DELETE FROM users WHERE id = 3`,
		`INSERT INTO commands (uid, machine_id, task_id, key, kind, state, created_at, output_seq, finished_at)
		 VALUES ('` + storetest.V4CommandUID + `', 1, 7, 'script', 'Script', 'Success', 1700000000000, 2, 1700000000001)`,
		`INSERT INTO command_output (command_id, seq, time, stream, text)
		 VALUES (1, 1, 1700000000000, 'stdout', 'hello'), (1, 2, 1700000000001, 'stderr', 'wörld')`,
	}
	for _, q := range fixture {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for user, key := range map[int]string{1: storetest.V4AdminKey, 2: storetest.V4ViewerKey} {
		if _, err := db.ExecContext(t.Context(),
			`INSERT INTO api_keys (digest, user_id, purpose, created_at) VALUES (?, ?, 'first', 1700000000000)`,
			storetest.V4KeyDigest(key), user); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	storetest.CheckUpgradeFrom4(t, open(t, path))
}
