package testcluster

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(RunWithPostgres(m)) }

// pgTryConnect connects to url with a short deadline and runs one query.
func pgTryConnect(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func TestPostgresStopStart(t *testing.T) {
	if os.Getenv(EnvTestDatabaseURL) != "" {
		t.Log("external server: checking that Stop refuses")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Close(); err != nil {
			t.Error(err)
		}
	})
	url, err := pg.CreateDatabase(ctx, "stopstart")
	if err != nil {
		t.Fatal(err)
	}
	if err := pgTryConnect(ctx, url); err != nil {
		t.Fatalf("connect: %v", err)
	}
	if os.Getenv(EnvTestDatabaseURL) != "" {
		if err := pg.Stop(ctx); err == nil {
			t.Fatal("Stop of an external server succeeded")
		}
		pg.DropDatabase(ctx, "stopstart")
		return
	}
	if err := pg.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := pgTryConnect(ctx, url); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := pgTryConnect(ctx, url); err != nil {
		t.Fatalf("connect after Start: %v", err)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if err := pgTryConnect(ctx, url); err != nil {
		t.Fatalf("connect after Restart: %v", err)
	}
	dir := pg.dir
	if err := pg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left %s behind (%v)", dir, err)
	}
	if err := pgTryConnect(ctx, url); err == nil {
		t.Fatal("connected to a closed server")
	}
}

func TestSharedPostgresNewDatabase(t *testing.T) {
	pg := SharedPostgres(t)
	var urls []string
	for range 2 {
		urls = append(urls, pg.NewDatabase(t))
	}
	if urls[0] == urls[1] {
		t.Fatalf("NewDatabase returned %s twice", urls[0])
	}
	ctx := context.Background()
	for _, u := range urls {
		if err := pgTryConnect(ctx, u); err != nil {
			t.Fatalf("connect %s: %v", u, err)
		}
	}
	if pg != SharedPostgres(t) {
		t.Fatal("SharedPostgres returned another server")
	}
}

func TestNewDatabaseDroppedAtCleanup(t *testing.T) {
	pg := SharedPostgres(t)
	var url string
	t.Run("sub", func(t *testing.T) {
		url = pg.NewDatabase(t)
		if err := pgTryConnect(context.Background(), url); err != nil {
			t.Fatal(err)
		}
	})
	if err := pgTryConnect(context.Background(), url); err == nil {
		t.Fatalf("database %s still exists after its test ended", url)
	}
}
