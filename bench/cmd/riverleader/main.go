// Command riverleader is the anchor of cuttle's leader-election benchmarks: a
// River client (github.com/riverqueue/river) that takes part in River's
// leader election with its default settings and does nothing else.
//
//	riverleader -db postgres://... -migrate       # run River's migrations up, then exit
//	riverleader -db postgres://... -id river-a    # run a client until SIGTERM or SIGINT
//
// A client works one queue (so that River starts its elector) with the ID
// given by -id, which is what River writes to river_leader.leader_id while
// it leads. It prints "started" once River's client has started. On SIGTERM
// or SIGINT it stops the client gracefully (client.Stop, which resigns
// leadership) and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// noopArgs is the only job kind the client knows; no job is ever inserted.
type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "riverleader:", err)
		os.Exit(1)
	}
}

func run() error {
	db := flag.String("db", "", "PostgreSQL URL of the database (required)")
	id := flag.String("id", "", "River client ID, written to river_leader.leader_id while this client leads (required unless -migrate)")
	migrate := flag.Bool("migrate", false, "run River's migrations up and exit")
	logLevel := flag.String("log-level", "debug", "debug, info, warn or error")
	flag.Parse()
	if *db == "" {
		return errors.New("-db is required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	pool, err := pgxpool.New(ctx, *db)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)

	if *migrate {
		m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: logger})
		if err != nil {
			return err
		}
		res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		if err != nil {
			return fmt.Errorf("migrating: %w", err)
		}
		fmt.Printf("migrated: %d versions\n", len(res.Versions))
		return nil
	}
	if *id == "" {
		return errors.New("-id is required")
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{})
	client, err := river.NewClient(driver, &river.Config{
		ID:      *id,
		Logger:  logger,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
		Workers: workers,
	})
	if err != nil {
		return err
	}
	if err := client.Start(context.Background()); err != nil {
		return err
	}
	fmt.Println("started")

	<-ctx.Done()
	logger.Info("riverleader: stopping", "id", *id)
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	logger.Info("riverleader: stopped", "id", *id)
	return nil
}
