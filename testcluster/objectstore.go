package testcluster

// This file is the throwaway object store of the test harness: a real
// S3-compatible server, versitygw, over a temporary folder.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	gobuild "go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cuttledeploy/cuttle/blob"
)

// VersityGWModule is what scripts/test installs when versitygw is missing.
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

const (
	// osStartTimeout bounds a start of versitygw (it answers within
	// about 30 ms, 100 ms on a cold cache).
	osStartTimeout = 20 * time.Second
	// osStopTimeout bounds a stop after SIGTERM before the server is killed.
	osStopTimeout = 10 * time.Second
	// osStartTries is how many ports StartObjectStore tries when another
	// process takes the one it picked first.
	osStartTries = 5
)

// ObjectStore is a real S3-compatible server for a test: versitygw
// (github.com/versity/versitygw) storing its buckets in a temporary
// folder, listening on a loopback port over plain HTTP, with one bucket.
type ObjectStore struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Bucket    string // an empty bucket of the test's own
	Dir       string // where versitygw keeps the buckets, one folder each
	process
}

// StartObjectStore starts versitygw for the test (a process of its own,
// with fresh credentials: it starts in tens of milliseconds), waits until
// it answers, and creates an empty bucket. A missing versitygw fails the
// test: it is never skipped. The server is stopped (SIGTERM, then SIGKILL)
// and its folder removed when the test ends; its log is printed if the
// test failed.
func StartObjectStore(tb testing.TB) *ObjectStore {
	tb.Helper()
	program, err := findVersityGW()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir() // removed after the server stops (cleanups run last first)
	o := &ObjectStore{
		AccessKey: "cuttle" + randomHex(tb, 8),
		SecretKey: randomHex(tb, 20),
		Bucket:    "cuttle-test",
		Dir:       filepath.Join(dir, "buckets"),
		process:   process{name: "versitygw", logPath: filepath.Join(dir, "versitygw.log")},
	}
	if err := os.Mkdir(o.Dir, 0o750); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		o.stop()
		if tb.Failed() {
			tb.Logf("versitygw's log:\n%s", tail(o.Log(), 40))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), osStartTimeout)
	defer cancel()
	var client *minio.Client
	for try := 1; ; try++ {
		port := FreePort(tb)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		o.Endpoint = "http://" + addr
		if err := o.start(program, "--access", o.AccessKey, "--secret", o.SecretKey, "--port", addr, "posix", o.Dir); err != nil {
			tb.Fatalf("starting versitygw: %v", err)
		}
		client, err = minio.New(addr, &minio.Options{
			Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
			MaxRetries:   1,
		})
		if err != nil {
			tb.Fatal(err)
		}
		if err = o.waitReady(ctx, addr, client); err == nil {
			break
		}
		o.stop()
		if try == osStartTries || ctx.Err() != nil {
			tb.Fatalf("versitygw on %s did not start: %v\n%s", addr, err, tail(o.logSinceStart(), 20))
		}
		// Most likely another process took the port: try another.
	}
	if err := client.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{}); err != nil {
		tb.Fatalf("creating the bucket %s in versitygw: %v", o.Bucket, err)
	}
	return o
}

// waitReady polls until the server answers a request signed with the
// store's credentials (so not another test's server that took the port),
// it exits, or ctx ends.
func (o *ObjectStore) waitReady(ctx context.Context, addr string, client *minio.Client) error {
	for {
		// A connection first: a request to a closed port takes the
		// client's back-off.
		var err error
		var conn net.Conn
		if conn, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = client.ListBuckets(attempt)
			cancel()
			if err == nil {
				return nil
			}
		}
		if o.Exited() {
			return fmt.Errorf("it exited (%v)", o.ExitErr())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop stops the server: SIGTERM, then SIGKILL if it has not exited in
// time.
func (o *ObjectStore) stop() {
	if o.Exited() {
		return
	}
	if o.Terminate(osStopTimeout) != nil {
		o.Kill()
	}
}

// URL returns the place of the bucket's prefix, s3://bucket/prefix (or
// s3://bucket for an empty prefix), for blob.NewS3 or blob.Config.
func (o *ObjectStore) URL(prefix string) string {
	if prefix == "" {
		return "s3://" + o.Bucket
	}
	return "s3://" + o.Bucket + "/" + prefix
}

// Settings returns the settings that reach the store.
func (o *ObjectStore) Settings() blob.S3Settings {
	return blob.S3Settings{Endpoint: o.Endpoint, AccessKey: o.AccessKey, SecretKey: o.SecretKey}
}

// findVersityGW returns the path of the versitygw program: on PATH, or
// where go install puts it (GOBIN, or the bin folder of GOPATH).
func findVersityGW() (string, error) {
	if path, err := exec.LookPath("versitygw"); err == nil {
		return path, nil
	}
	var dirs []string // where go install puts programs: GOBIN, else GOPATH's first bin
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(string(out), "\n")
		if gobin := strings.TrimSpace(lines[0]); gobin != "" {
			dirs = append(dirs, gobin)
		}
		if len(lines) > 1 {
			for _, dir := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(dir, "bin"))
			}
		}
	}
	dirs = append(dirs, filepath.Join(gobuild.Default.GOPATH, "bin"))
	for _, dir := range dirs {
		path := filepath.Join(dir, "versitygw")
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", errors.New("versitygw (a real S3-compatible server the tests run) is not installed: " +
		"found neither versitygw on PATH nor $(go env GOPATH)/bin/versitygw; run scripts/test, " +
		"which installs it, or go install " + VersityGWModule)
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}
