// Package blobtest is the conformance suite of blob.Store: every backend
// passes it.
package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/blob"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Run runs the suite; each subtest opens a fresh, empty store with open.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutReplaces", testPutReplaces},
		{"FailedPut", testFailedPut},
		{"CancelledPut", testCancelledPut},
		{"NotExist", testNotExist},
		{"Delete", testDelete},
		{"ListOrder", testListOrder},
		{"ListStops", testListStops},
		{"BadKeys", testBadKeys},
		{"SeekRange", testSeekRange},
		{"ConcurrentPuts", testConcurrentPuts},
		{"LargePut", testLargePut},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// Content returns n bytes of a pattern of seed: different seeds and
// offsets give different bytes, so a mixed or shifted file shows.
func Content(seed uint64, n int64) []byte {
	b, err := io.ReadAll(NewReader(seed, n))
	if err != nil {
		panic(err)
	}
	return b
}

// NewReader returns a reader of n bytes of Content(seed, n), generated as
// it is read: 64 KiB blocks of random bytes, each starting with its seed
// and number.
func NewReader(seed uint64, n int64) io.Reader { return &generator{seed: seed, n: n} }

const blockSize = 64 * kib

type generator struct {
	seed  uint64
	n     int64 // bytes left
	off   int64 // bytes read
	block []byte
}

func (g *generator) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if g.block == nil {
		g.block = make([]byte, blockSize)
		rng := rand.New(rand.NewPCG(g.seed, 0x5eed))
		for i := 0; i < blockSize; i += 8 {
			binary.LittleEndian.PutUint64(g.block[i:], rng.Uint64())
		}
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	done := 0
	for done < len(p) {
		i := int(g.off % blockSize)
		if i == 0 {
			binary.LittleEndian.PutUint64(g.block, g.seed)
			binary.LittleEndian.PutUint64(g.block[8:], uint64(g.off/blockSize))
		}
		c := copy(p[done:], g.block[i:])
		done += c
		g.off += int64(c)
	}
	g.n -= int64(done)
	return done, nil
}

// failingReader yields Content(seed) and fails with err after n bytes.
func failingReader(seed uint64, n int64, err error) io.Reader {
	return io.MultiReader(NewReader(seed, n), errReader{err})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancellingReader yields endless content and calls cancel once it has
// yielded after bytes, then keeps yielding: the store must stop reading.
type cancellingReader struct {
	r      io.Reader
	after  int64
	cancel func()
	read   int64
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.read >= c.after {
		c.cancel()
		if c.read > c.after+64*mib {
			return 0, errors.New("the store kept reading after its context was cancelled")
		}
	}
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

func put(t *testing.T, s blob.Store, key string, b []byte) blob.Info {
	t.Helper()
	info, err := s.Put(t.Context(), key, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(b)) {
		t.Fatalf("Put(%q) = %+v, want key %q and size %d", key, info, key, len(b))
	}
	checkTime(t, "Put("+key+")", info.ModTime)
	return info
}

func checkTime(t *testing.T, what string, mod time.Time) {
	t.Helper()
	if d := time.Since(mod); d < -time.Hour || d > time.Hour {
		t.Errorf("%s: modification time %v, not now", what, mod)
	}
}

// read returns the content of the key's file, checking that Open's Info
// and Stat agree with it.
func read(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	f, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if info := f.Info(); info.Key != key || info.Size != int64(len(b)) {
		t.Errorf("Open(%q).Info() = %+v; read %d bytes", key, info, len(b))
	}
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(b)) {
		t.Errorf("Stat(%q) = %+v; read %d bytes", key, info, len(b))
	}
	checkTime(t, "Stat("+key+")", info.ModTime)
	return b
}

func expect(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	if got := read(t, s, key); !bytes.Equal(got, want) {
		t.Errorf("%q holds %d bytes (%s), want %d bytes (%s)", key, len(got), head(got), len(want), head(want))
	}
}

func head(b []byte) string {
	if len(b) > 16 {
		b = b[:16]
	}
	return fmt.Sprintf("%x...", b)
}

func expectNotExist(t *testing.T, s blob.Store, key string) {
	t.Helper()
	if f, err := s.Open(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			f.Close()
		}
		t.Errorf("Open(%q) = %v, want an error wrapping fs.ErrNotExist", key, err)
	}
	if info, err := s.Stat(t.Context(), key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(%q) = %+v, %v, want an error wrapping fs.ErrNotExist", key, info, err)
	}
}

// list returns the infos List reports under prefix.
func list(t *testing.T, s blob.Store, prefix string) []blob.Info {
	t.Helper()
	var infos []blob.Info
	if err := s.List(t.Context(), prefix, func(info blob.Info) error {
		infos = append(infos, info)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return infos
}

func keys(infos []blob.Info) []string {
	var ks []string
	for _, info := range infos {
		ks = append(ks, info.Key)
	}
	return ks
}

func expectList(t *testing.T, s blob.Store, prefix string, want ...string) {
	t.Helper()
	if got := keys(list(t, s, prefix)); !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q, want %q", prefix, got, want)
	}
}

func testRoundTrip(t *testing.T, s blob.Store) {
	if s.Describe() == "" {
		t.Error("Describe() is empty")
	}
	sizes := []int64{0, 1, 100 * kib, mib - 1, mib, mib + 1, 3*mib + 17, 16*mib + 1}
	for i, size := range sizes {
		key := fmt.Sprintf("round/trip-%d.bin", size)
		b := Content(uint64(i), size)
		put(t, s, key, b)
		expect(t, s, key, b)
	}
	var want []string
	for _, size := range sizes {
		want = append(want, fmt.Sprintf("round/trip-%d.bin", size))
	}
	slices.Sort(want)
	infos := list(t, s, "round/")
	if got := keys(infos); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	for _, info := range infos {
		var size int64
		fmt.Sscanf(info.Key, "round/trip-%d.bin", &size)
		if info.Size != size {
			t.Errorf("List reports %+v, want size %d", info, size)
		}
		checkTime(t, "List", info.ModTime)
	}
	// A folder that holds files is not a file.
	put(t, s, "dir/sub/file", []byte("x"))
	expectNotExist(t, s, "dir")
	expectNotExist(t, s, "dir/sub")
}

func testPutReplaces(t *testing.T, s blob.Store) {
	big, small := Content(1, 3*mib), Content(2, 10)
	put(t, s, "r/key", big)
	put(t, s, "r/key", small)
	expect(t, s, "r/key", small)
	put(t, s, "r/key", big)
	expect(t, s, "r/key", big)
	expectList(t, s, "", "r/key")
}

var errBoom = errors.New("boom: the reader failed")

func testFailedPut(t *testing.T, s blob.Store) {
	old := Content(1, 200*kib)
	put(t, s, "f/old", old)
	for _, key := range []string{"f/old", "f/new"} {
		_, err := s.Put(t.Context(), key, failingReader(2, 3*mib, errBoom))
		if !errors.Is(err, errBoom) {
			t.Errorf("Put(%q) of a reader failing after 3 MiB = %v, want an error wrapping the reader's", key, err)
		}
	}
	expect(t, s, "f/old", old)
	expectNotExist(t, s, "f/new")
	expectList(t, s, "", "f/old")
	// A failure in the first bytes is no different.
	if _, err := s.Put(t.Context(), "f/new", failingReader(3, 10, errBoom)); !errors.Is(err, errBoom) {
		t.Errorf("Put of a reader failing after 10 bytes = %v, want an error wrapping the reader's", err)
	}
	expectNotExist(t, s, "f/new")
	expectList(t, s, "", "f/old")
}

func testCancelledPut(t *testing.T, s blob.Store) {
	old := Content(1, 200*kib)
	put(t, s, "c/old", old)
	for _, key := range []string{"c/old", "c/new"} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancellingReader{r: NewReader(2, 1<<40), after: 3 * mib, cancel: cancel}
		_, err := s.Put(ctx, key, r)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) cancelled after 3 MiB = %v, want an error wrapping context.Canceled", key, err)
		}
	}
	// A context cancelled before.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, key := range []string{"c/old", "c/new"} {
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("new"))); !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) with a cancelled context = %v, want an error wrapping context.Canceled", key, err)
		}
	}
	expect(t, s, "c/old", old)
	expectNotExist(t, s, "c/new")
	expectList(t, s, "", "c/old")
}

func testNotExist(t *testing.T, s blob.Store) {
	expectNotExist(t, s, "missing")
	expectNotExist(t, s, "no/such/folder/file.txt")
	put(t, s, "n/a", []byte("a"))
	expectNotExist(t, s, "n/b")
	expectNotExist(t, s, "n/A")
	expectNotExist(t, s, "n/a/b") // a part of the key is a file
	if err := s.Delete(t.Context(), "n/a/b"); err != nil {
		t.Errorf("Delete of a key under a file = %v, want nil", err)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := t.Context()
	if err := s.Delete(ctx, "d/missing"); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	put(t, s, "d/a/b/c", []byte("c"))
	put(t, s, "d/a/x", []byte("x"))
	if err := s.Delete(ctx, "d/a/b/c"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	expectNotExist(t, s, "d/a/b/c")
	expectList(t, s, "", "d/a/x")
	if err := s.Delete(ctx, "d/a/b/c"); err != nil {
		t.Errorf("Delete again = %v, want nil", err)
	}
	if err := s.Delete(ctx, "d/a/b"); err != nil {
		t.Errorf("Delete of a key naming a gone folder = %v, want nil", err)
	}
	// The folder of a deleted file takes files again.
	put(t, s, "d/a/b/d", []byte("d"))
	expect(t, s, "d/a/b/d", []byte("d"))
	expectList(t, s, "d/", "d/a/b/d", "d/a/x")
}

func testListOrder(t *testing.T, s blob.Store) {
	// Byte order differs from the order of a folder walk: '-' and '.'
	// sort before '/', which sorts before '0'.
	all := []string{
		"a/b.txt", "a/bc/d", "a/b/e", "a/c", "a-b", "a.b", "a0", "a/x",
		"b", "A", "z/y-1", "z/y.2", "z/y/3", "z/y0", "~tilde", "ü/x",
	}
	for i, key := range all {
		put(t, s, key, Content(uint64(i), int64(i)))
	}
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	infos := list(t, s, "")
	if got := keys(infos); !slices.Equal(got, sorted) {
		t.Errorf("List(\"\") = %q, want byte order %q", got, sorted)
	}
	for _, info := range infos {
		if want := int64(slices.Index(all, info.Key)); info.Size != want {
			t.Errorf("List reports %+v, want size %d", info, want)
		}
	}
	for prefix, want := range map[string][]string{
		"a/b":    {"a/b.txt", "a/b/e", "a/bc/d"},
		"a/b/":   {"a/b/e"},
		"a/":     {"a/b.txt", "a/b/e", "a/bc/d", "a/c", "a/x"},
		"a":      {"a-b", "a.b", "a/b.txt", "a/b/e", "a/bc/d", "a/c", "a/x", "a0"},
		"z/y":    {"z/y-1", "z/y.2", "z/y/3", "z/y0"},
		"z/y/":   {"z/y/3"},
		"b":      {"b"},
		"A":      {"A"},
		"nope":   nil,
		"nope/":  nil,
		"a/b/e":  {"a/b/e"},
		"a/b/ex": nil,
		"ü":      {"ü/x"},
	} {
		expectList(t, s, prefix, want...)
	}
	for _, prefix := range []string{"/a", "../a", "a//b", `a\b`, "a/../b", "./a", "a/./b", ".cuttle-upload-x/", "a\x00"} {
		err := s.List(t.Context(), prefix, func(blob.Info) error { return nil })
		if !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("List(%q) = %v, want an error wrapping ErrBadKey", prefix, err)
		}
	}
}

func testListStops(t *testing.T, s blob.Store) {
	for _, key := range []string{"s/1", "s/2", "s/3", "s/4"} {
		put(t, s, key, []byte(key))
	}
	errStop := errors.New("enough")
	var seen []string
	err := s.List(t.Context(), "s/", func(info blob.Info) error {
		seen = append(seen, info.Key)
		if len(seen) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || !slices.Equal(seen, []string{"s/1", "s/2"}) {
		t.Errorf("List stopped by fn = %v after %q, want fn's error after [s/1 s/2]", err, seen)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	seen = nil
	err = s.List(ctx, "s/", func(info blob.Info) error {
		seen = append(seen, info.Key)
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(seen) > 0 {
		t.Errorf("List with a cancelled context = %v after %q, want an error wrapping context.Canceled and no file", err, seen)
	}
}

func testBadKeys(t *testing.T, s blob.Store) {
	ctx := t.Context()
	bad := []string{
		"", ".", "..", "/abs", "/", "a/", "a//b", "../x", "a/../b", "a/..", "./a", "a/./b",
		`a\b`, `..\x`, "a/\x01b", "a\x00", "tab\there", "a\nb", "del\x7f",
		".cuttle-upload-x", "a/.cuttle-upload-123/b", "a/.cuttle-upload-",
		strings.Repeat("k", 1025),
	}
	for _, key := range bad {
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Put(%q) = %v, want an error wrapping ErrBadKey", key, err)
		}
		if f, err := s.Open(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			if err == nil {
				f.Close()
			}
			t.Errorf("Open(%q) = %v, want an error wrapping ErrBadKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Stat(%q) = %v, want an error wrapping ErrBadKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("Delete(%q) = %v, want an error wrapping ErrBadKey", key, err)
		}
	}
	expectList(t, s, "")
	// Near misses are keys.
	for _, key := range []string{"a..b", "..a", "a..", ".hidden", "a b", "cuttle-upload-x", "x.cuttle-upload-y", "ünï/cödé", longKey} {
		put(t, s, key, []byte(key))
		expect(t, s, key, []byte(key))
	}
}

// longKey is a key of 1,000 bytes in parts of 199 (a file name has at most
// 255 bytes on most file systems).
var longKey = strings.Repeat(strings.Repeat("k", 199)+"/", 5) + "end"

func testSeekRange(t *testing.T, s blob.Store) {
	const size = 5 * mib
	b := Content(7, size)
	put(t, s, "seek/file", b)
	f, err := s.Open(t.Context(), "seek/file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info := f.Info(); info.Size != size || info.Key != "seek/file" {
		t.Errorf("Info() = %+v, want size %d", info, size)
	}
	readAt := func(what string, off int64, whence int, wantPos int64, n int) {
		t.Helper()
		pos, err := f.Seek(off, whence)
		if err != nil || pos != wantPos {
			t.Fatalf("%s: Seek(%d, %d) = %d, %v, want %d", what, off, whence, pos, err, wantPos)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(f, got); err != nil {
			t.Fatalf("%s: reading %d bytes at %d: %v", what, n, pos, err)
		}
		if !bytes.Equal(got, b[pos:pos+int64(n)]) {
			t.Fatalf("%s: read %s at %d, want %s", what, head(got), pos, head(b[pos:]))
		}
	}
	readAt("middle", 2*mib+123, io.SeekStart, 2*mib+123, 1000)
	if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != 2*mib+1123 {
		t.Errorf("Seek(0, SeekCurrent) after reading = %d, %v, want %d", pos, err, 2*mib+1123)
	}
	readAt("forward", mib, io.SeekCurrent, 3*mib+1123, 64*kib)
	readAt("back", 10, io.SeekStart, 10, 100)
	readAt("end", -10, io.SeekEnd, size-10, 10)
	if n, err := f.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v, want 0, EOF", n, err)
	}
	readAt("after EOF", 4*mib, io.SeekStart, 4*mib, mib)
	if _, err := f.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1, SeekStart) succeeded")
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(rest, b[5*mib:]) {
		t.Errorf("ReadAll after a failed Seek = %d bytes, %v, want the rest", len(rest), err)
	}
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	const n = 8
	contents := make([][]byte, n)
	for i := range contents {
		// Both sides of 1 MiB, and several parts' worth of reads.
		contents[i] = Content(uint64(100+i), int64(400*kib+i*300*kib))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Put(t.Context(), "cc/key", bytes.NewReader(contents[i]))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	got := read(t, s, "cc/key")
	i := slices.IndexFunc(contents, func(c []byte) bool { return bytes.Equal(c, got) })
	if i < 0 {
		t.Fatalf("after concurrent Puts the file holds %d bytes (%s), none of the contents put", len(got), head(got))
	}
	infos := list(t, s, "cc/")
	if len(infos) != 1 || infos[0].Key != "cc/key" || infos[0].Size != int64(len(contents[i])) {
		t.Errorf("List(\"cc/\") = %+v, want cc/key of %d bytes alone", infos, len(contents[i]))
	}
	expectList(t, s, "", "cc/key")
}

func testLargePut(t *testing.T, s blob.Store) {
	const size = 64 * mib
	const ceiling = 48 * mib
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := base
	samples := 0
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			samples++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	started := time.Now()
	info, err := s.Put(t.Context(), "large/file", NewReader(64, size))
	took := time.Since(started)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size {
		t.Errorf("Put = %+v, want size %d", info, size)
	}
	growth := int64(peak) - int64(base)
	t.Logf("Put of 64 MiB took %v; Go heap in use grew by %.1f MiB at most (%d samples)", took.Round(time.Millisecond), float64(growth)/mib, samples)
	if growth > ceiling {
		t.Errorf("the Go heap in use grew by %.1f MiB during a Put of 64 MiB, more than %d MiB", float64(growth)/mib, ceiling/mib)
	}
	// Read it back against the generator, without holding it.
	f, err := s.Open(t.Context(), "large/file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := NewReader(64, size)
	got, exp := make([]byte, mib), make([]byte, mib)
	var off int64
	for {
		n, err := io.ReadFull(f, got)
		if n > 0 {
			if _, err := io.ReadFull(want, exp[:n]); err != nil {
				t.Fatalf("the file is longer than %d bytes", off)
			}
			if !bytes.Equal(got[:n], exp[:n]) {
				t.Fatalf("the file differs from what was put in the MiB at %d", off)
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if off != size {
		t.Errorf("read back %d bytes, want %d", off, size)
	}
}
