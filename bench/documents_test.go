package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/server"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// documentCount is how many documents the list benchmarks hold.
const documentCount = 10000

// BenchmarkDocumentList measures GET of a page of 30 filtered by
// partialName, through the API of one in-process node, from 10,000
// environments, on each engine; and, as the anchor of the
// same run, GET of the ping (the cost of an HTTP round trip and the node's
// routing without the database) and of /api/users/me (the cost of
// authenticating a request). Each op is one request; the p50 and p99
// of the requests are reported in milliseconds.
func BenchmarkDocumentList(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run("engine="+engine, func(b *testing.B) {
			node, key := benchNode(b, engine)
			populate(b, node, func(ctx context.Context, tx *collection.Tx, i int) error {
				return resources.Environments.Insert(ctx, tx, &cuttle.Environment{Resource: cuttle.Resource{SpaceID: "Spaces-1"},
					Name: fmt.Sprintf("env-%05d", i), SortOrder: i, EnvironmentTags: []string{}, ExtensionSettings: []json.RawMessage{}})
			})
			base := "http://" + node.Addr()
			b.Run("list=environments-partialName-take30", func(b *testing.B) {
				timeRequests(b, key, func() string {
					// Three digits match ten of the 10,000 names: a page of ten.
					return fmt.Sprintf("%s/api/Spaces-1/environments?partialName=%03d&take=30", base, rand.IntN(1000))
				})
			})
			b.Run("list=environments-page-take30", func(b *testing.B) {
				timeRequests(b, key, func() string {
					return fmt.Sprintf("%s/api/Spaces-1/environments?skip=%d&take=30", base, rand.IntN(documentCount/30)*30)
				})
			})
			b.Run("anchor=users-me", func(b *testing.B) {
				timeRequests(b, key, func() string { return base + "/api/users/me" })
			})
			b.Run("anchor=ping", func(b *testing.B) {
				timeRequests(b, "", func() string { return base + "/api/octopusservernodes/ping" })
			})
		})
	}
}

// benchNode starts an in-process node on a fresh database of the engine
// and returns it with an administrator's API key.
func benchNode(b *testing.B, engine string) (*server.Node, string) {
	b.Helper()
	ctx := context.Background()
	key := cuttle.NewAPIKey()
	cfg := server.Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", PollingListen: "127.0.0.1:0", NodeName: "bench",
		AdminAPIKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard}
	if engine == "postgres" {
		cfg.DB = testcluster.SharedPostgres(b).NewDatabase(b)
	}
	node, err := server.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		node.Stop(stop)
	})
	return node, key
}

// populate inserts documentCount documents with insert, in units of work
// of 500, then has PostgreSQL gather the tables' statistics, as its
// autovacuum would within a minute of so many inserts.
func populate(b *testing.B, node *server.Node, insert func(ctx context.Context, tx *collection.Tx, i int) error) {
	b.Helper()
	ctx := context.Background()
	for start := 0; start < documentCount; start += 500 {
		err := node.Store().Update(ctx, func(tx *collection.Tx) error {
			for i := start; i < min(start+500, documentCount); i++ {
				if err := insert(ctx, tx, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	err := node.Store().Update(ctx, func(tx *collection.Tx) error {
		if tx.D.Name() != "postgres" {
			return nil
		}
		_, err := tx.Q.Exec(ctx, "ANALYZE")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// timeRequests GETs the URLs next returns, one per op, and reports the
// requests' p50 and p99.
func timeRequests(b *testing.B, key string, next func() string) {
	b.Helper()
	var took []time.Duration
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, next(), nil)
		if key != "" {
			req.Header.Set("X-Octopus-ApiKey", key)
		}
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v", req.URL, resp.StatusCode, err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	pct := func(p float64) float64 { return ms(took[min(len(took)-1, int(p*float64(len(took))))]) }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
}
