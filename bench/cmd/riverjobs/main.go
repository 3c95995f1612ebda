// Command riverjobs is the anchor of cuttle's task benchmarks: a River client
// (github.com/riverqueue/river) that works no-op jobs, as a cuttle node works
// Noop tasks.
//
//	riverjobs -db postgres://... -migrate                         # run River's migrations up, then exit
//	riverjobs -db postgres://... -id river-a -workers 20          # work jobs until SIGTERM or SIGINT
//	riverjobs -db postgres://... -id river-a -fetch-cooldown 2ms  # the same, fetching more eagerly
//
// A client works River's default queue with -workers workers (MaxWorkers),
// the ID given by -id, and River's default fetch settings (FetchCooldown
// 100 ms, FetchPollInterval 1 s) unless -fetch-cooldown or
// -fetch-poll-interval set them. The only job kind is "noop" (noopArgs, no
// fields), whose Work returns nil at once. It prints "started" once River's
// client has started. On SIGTERM or SIGINT it stops the client gracefully
// (client.Stop) and exits 0.
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

// noopArgs are the arguments of a no-op job. The benchmarks insert the same
// kind ("noop", arguments {}).
type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "riverjobs:", err)
		os.Exit(1)
	}
}

func run() error {
	db := flag.String("db", "", "PostgreSQL URL of the database (required)")
	id := flag.String("id", "", "River client ID (required unless -migrate)")
	workers := flag.Int("workers", 20, "MaxWorkers of the default queue: the most jobs the client works at once")
	cooldown := flag.Duration("fetch-cooldown", 0, "River's FetchCooldown (0: River's default, 100ms)")
	poll := flag.Duration("fetch-poll-interval", 0, "River's FetchPollInterval (0: River's default, 1s)")
	migrate := flag.Bool("migrate", false, "run River's migrations up and exit")
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
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

	ws := river.NewWorkers()
	river.AddWorker(ws, &noopWorker{})
	client, err := river.NewClient(driver, &river.Config{
		ID:                *id,
		Logger:            logger,
		FetchCooldown:     *cooldown,
		FetchPollInterval: *poll,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:           ws,
	})
	if err != nil {
		return err
	}
	if err := client.Start(context.Background()); err != nil {
		return err
	}
	fmt.Println("started")
	logger.Info("riverjobs: started", "id", *id, "workers", *workers, "fetch_cooldown", *cooldown, "fetch_poll_interval", *poll)

	<-ctx.Done()
	logger.Info("riverjobs: stopping", "id", *id)
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	logger.Info("riverjobs: stopped", "id", *id)
	return nil
}
