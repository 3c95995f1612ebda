package blob_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/blob/blobtest"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestCheckKey(t *testing.T) {
	for _, key := range []string{
		"a", "a/b", "packages/app/Upload-1/app.1.0.zip", "tasklogs/7/00000001.log",
		"a.b", "..a", "a..", "a/..b/c", ".hidden", "a b", "ünï/cödé", "a-b_c~d@e+f=g,h;i'j(k)l[m]n{o}p",
		"cuttle-upload-x", "x.cuttle-upload-y", "a/.cuttle-uploa", strings.Repeat("k", 1024),
	} {
		if err := blob.CheckKey(key); err != nil {
			t.Errorf("CheckKey(%q) = %v, want nil", key, err)
		}
	}
	for _, key := range []string{
		"", ".", "..", "/", "/abs", "/etc/passwd", "a/", "a//b", "//a", "../x", "a/../b", "a/..", "./a", "a/./b", "a/.",
		`a\b`, `..\x`, `C:\x`, "\\\\server\\share", "a/\x01b", "a\x00", "tab\there", "a\nb", "a\rb", "del\x7f",
		".cuttle-upload-x", "a/.cuttle-upload-123/b", "a/.cuttle-upload-", strings.Repeat("k", 1025),
	} {
		if err := blob.CheckKey(key); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("CheckKey(%q) = %v, want an error wrapping ErrBadKey", key, err)
		}
	}
}

// FuzzCheckKey checks that a key CheckKey accepts names a file inside the
// folder it is joined to.
func FuzzCheckKey(f *testing.F) {
	for _, seed := range []string{"packages/a", "artifacts/../x", "a/b/c", "a/.", "..", `a\..\b`, "a//b", "/a", ".cuttle-upload-1", "a\x00b"} {
		f.Add(seed)
	}
	root := filepath.FromSlash("/srv/cuttle/storage")
	f.Fuzz(func(t *testing.T, key string) {
		if blob.CheckKey(key) != nil {
			return
		}
		native := filepath.FromSlash(key)
		if !filepath.IsLocal(native) {
			t.Fatalf("CheckKey accepts %q, which is not a local path", key)
		}
		p := filepath.Join(root, native)
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." || !filepath.IsLocal(rel) || rel != native {
			t.Fatalf("CheckKey accepts %q, which joined to %s is %s, outside it or the folder itself", key, root, p)
		}
	})
}

func TestFolder(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := blob.NewFolder(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	s, err := blob.NewFolder(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := blob.Store(s).(blob.Appender); !ok {
		t.Error("a Folder is not an Appender")
	}
}

// newS3 opens the store of prefix in a fresh object store.
func newS3(t *testing.T, prefix string) (blob.Store, *testcluster.ObjectStore) {
	t.Helper()
	o := testcluster.StartObjectStore(t)
	s, err := blob.NewS3(t.Context(), o.URL(prefix), o.Settings())
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

func TestS3(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := newS3(t, "cluster/one")
		return s
	})
}

// TestS3Bucket runs the suite on a store of a whole bucket, without a prefix.
func TestS3Bucket(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, _ := newS3(t, "")
		return s
	})
}

// client returns a client of the object store, to look behind the Store.
func client(t *testing.T, o *testcluster.ObjectStore) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(o.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
		Region:       "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestS3AbortsUploads checks that a failed or cancelled Put leaves no
// unfinished multipart upload behind, once parts were uploaded.
func TestS3AbortsUploads(t *testing.T) {
	s, o := newS3(t, "p")
	c := client(t, o)
	// The check sees an unfinished upload.
	core := minio.Core{Client: c}
	id, err := core.NewMultipartUpload(t.Context(), o.Bucket, "control", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for u := range c.ListIncompleteUploads(t.Context(), o.Bucket, "", true) {
		seen = append(seen, u.Key)
	}
	if !slices.Equal(seen, []string{"control"}) {
		t.Fatalf("unfinished uploads: %q, want [control]", seen)
	}
	if err := core.AbortMultipartUpload(t.Context(), o.Bucket, "control", id); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	if _, err := s.Put(t.Context(), "failed", io.MultiReader(blobtest.NewReader(1, 20<<20), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("Put of a reader failing after 20 MiB = %v, want its error", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &slowReader{r: blobtest.NewReader(2, 1<<40), after: 20 << 20, cancel: cancel}
	if _, err := s.Put(ctx, "cancelled", r); !errors.Is(err, context.Canceled) {
		t.Errorf("Put cancelled after 20 MiB = %v, want context.Canceled", err)
	}
	// Cancelled from elsewhere 20 ms after the first part was read, while
	// it is most likely on its way (after the upload began, in any case).
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	r = &slowReader{r: blobtest.NewReader(3, 1<<40), after: blob.PartSize, cancel: func() { time.AfterFunc(20*time.Millisecond, cancel) }}
	if _, err := s.Put(ctx, "cancelled-in-flight", r); !errors.Is(err, context.Canceled) {
		t.Errorf("Put cancelled while uploading = %v, want context.Canceled", err)
	}
	for u := range c.ListIncompleteUploads(t.Context(), o.Bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("an unfinished upload is left: %+v", u)
	}
	for obj := range c.ListObjects(t.Context(), o.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("the bucket holds %q (%v)", obj.Key, obj.Err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// slowReader yields endless content and calls cancel once it yielded
// after bytes.
type slowReader struct {
	r      io.Reader
	after  int64
	cancel func()
	read   int64
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.read >= s.after && s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	return n, err
}

// TestS3Place checks the URLs and settings NewS3 takes, refuses, and what
// it says.
func TestS3Place(t *testing.T) {
	s, o := newS3(t, "")
	ctx := t.Context()
	if _, ok := s.(blob.Appender); ok {
		t.Error("an object store is an Appender")
	}
	if d, want := s.Describe(), "s3://"+o.Bucket+" at "+o.Endpoint; d != want {
		t.Errorf("Describe() = %q, want %q", d, want)
	}
	p, err := blob.NewS3(ctx, o.URL("a/b")+"/", o.Settings())
	if err != nil {
		t.Fatal(err)
	}
	if d, want := p.Describe(), "s3://"+o.Bucket+"/a/b at "+o.Endpoint; d != want {
		t.Errorf("Describe() = %q, want %q", d, want)
	}
	// A prefix ends at a part: a/b does not see a/bc.
	pc, err := blob.NewS3(ctx, o.URL("a/bc"), o.Settings())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []blob.Store{p, pc} {
		if _, err := st.Put(ctx, "k", strings.NewReader(st.Describe())); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	s.List(ctx, "", func(info blob.Info) error { all = append(all, info.Key); return nil })
	if want := []string{"a/b/k", "a/bc/k"}; !slices.Equal(all, want) {
		t.Errorf("the bucket lists %q, want %q", all, want)
	}
	var under []string
	p.List(ctx, "", func(info blob.Info) error { under = append(under, info.Key); return nil })
	if want := []string{"k"}; !slices.Equal(under, want) {
		t.Errorf("the store of prefix a/b lists %q, want %q", under, want)
	}
	// versitygw keeps an object as a file of the bucket's folder.
	if b, err := os.ReadFile(filepath.Join(o.Dir, o.Bucket, "a", "b", "k")); err != nil || string(b) != p.Describe() {
		t.Errorf("a/b/k in versitygw's folder: %q, %v", b, err)
	}

	settings := o.Settings()
	for _, place := range []string{"s3://", "s3:///x", "s3://Bad_Bucket!/x", "s3://b/../x", "s3://b/a//c", "/srv/x", "s3://b/.cuttle-upload-1"} {
		if _, err := blob.NewS3(ctx, place, settings); err == nil {
			t.Errorf("NewS3(%q) succeeded", place)
		}
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = blob.NewS3(short, "s3://no-such-bucket/x", settings)
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") || !strings.Contains(err.Error(), o.Endpoint) {
		t.Errorf("NewS3 of a missing bucket = %v, want an error naming the bucket and the endpoint", err)
	}
	wrong := settings
	wrong.SecretKey = "wrong-secret-" + o.SecretKey
	_, err = blob.NewS3(short, o.URL(""), wrong)
	if err == nil || strings.Contains(err.Error(), o.SecretKey) || !strings.Contains(err.Error(), o.Bucket) {
		t.Errorf("NewS3 with a wrong secret = %v, want an error naming the bucket, not the secret", err)
	}
	for _, endpoint := range []string{"ftp://host:1", "http://user:pass@host:1", "http://host:1/path", "http://", "http://host:1?x=1"} {
		bad := settings
		bad.Endpoint = endpoint
		_, err := blob.NewS3(short, o.URL(""), bad)
		if err == nil || strings.Contains(err.Error(), "pass@") {
			t.Errorf("NewS3 with endpoint %q = %v, want an error without credentials", endpoint, err)
		}
	}
	half := settings
	half.SecretKey = ""
	if _, err := blob.NewS3(short, o.URL(""), half); err == nil {
		t.Error("NewS3 with an access key and no secret key succeeded")
	}
	// Without keys, the environment's.
	t.Setenv("AWS_ACCESS_KEY_ID", o.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", o.SecretKey)
	env := settings
	env.AccessKey, env.SecretKey = "", ""
	if _, err := blob.NewS3(short, o.URL(""), env); err != nil {
		t.Errorf("NewS3 with the keys in the environment: %v", err)
	}
	// An object name is at most 1,024 bytes, prefix included.
	long, err := blob.NewS3(ctx, o.URL("long"), settings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := long.Put(ctx, strings.Repeat("k/", 510)+"kk", strings.NewReader("x")); !errors.Is(err, blob.ErrBadKey) {
		t.Errorf("Put of a key of 1,022 bytes under a prefix of 5 = %v, want ErrBadKey", err)
	}
	if _, err := long.Put(ctx, "bad\xffutf8", strings.NewReader("x")); !errors.Is(err, blob.ErrBadKey) {
		t.Errorf("Put of a key that is not UTF-8 = %v, want ErrBadKey", err)
	}
}

// TestMounts checks that Open routes each kind of key to its place.
func TestMounts(t *testing.T) {
	files := map[string]string{
		"packages/app/Upload-1/app.1.0.zip":        "zip",
		"artifacts/ServerTasks-7/Machines-2/a.txt": "artifact",
		"tasklogs/7/00000001.log":                  "log",
	}
	var keys []string
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	exercise := func(t *testing.T, m *blob.Mounts) {
		t.Helper()
		ctx := t.Context()
		for key, content := range files {
			info, err := m.Put(ctx, key, strings.NewReader(content))
			if err != nil || info.Key != key || info.Size != int64(len(content)) {
				t.Fatalf("Put(%q) = %+v, %v", key, info, err)
			}
			f, err := m.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil || string(b) != content || f.Info().Key != key {
				t.Errorf("Open(%q) read %q, %v, info %+v", key, b, err, f.Info())
			}
			if info, err := m.Stat(ctx, key); err != nil || info.Key != key || info.Size != int64(len(content)) {
				t.Errorf("Stat(%q) = %+v, %v", key, info, err)
			}
		}
		var listed []string
		if err := m.List(ctx, "", func(info blob.Info) error { listed = append(listed, info.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(listed, keys) {
			t.Errorf("List(\"\") = %q, want %q", listed, keys)
		}
		for prefix, want := range map[string][]string{
			"packages/":          {"packages/app/Upload-1/app.1.0.zip"},
			"pack":               {"packages/app/Upload-1/app.1.0.zip"},
			"artifacts/Server":   {"artifacts/ServerTasks-7/Machines-2/a.txt"},
			"tasklogs/7/":        {"tasklogs/7/00000001.log"},
			"tasklogs/8":         nil,
			"other":              nil,
			"packages/app/Up":    {"packages/app/Upload-1/app.1.0.zip"},
			"artifacts/ServerX/": nil,
		} {
			var got []string
			if err := m.List(ctx, prefix, func(info blob.Info) error { got = append(got, info.Key); return nil }); err != nil {
				t.Fatalf("List(%q): %v", prefix, err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("List(%q) = %q, want %q", prefix, got, want)
			}
		}
		for _, key := range []string{"other/x", "packages", "packages/", "Packages/x", "x", "/packages/x", "packages/../x", "tasklogs"} {
			if _, err := m.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("Put(%q) = %v, want ErrBadKey", key, err)
			}
			if _, err := m.Stat(ctx, key); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("Stat(%q) = %v, want ErrBadKey", key, err)
			}
			if f, err := m.Open(ctx, key); !errors.Is(err, blob.ErrBadKey) {
				if err == nil {
					f.Close()
				}
				t.Errorf("Open(%q) = %v, want ErrBadKey", key, err)
			}
			if err := m.Delete(ctx, key); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("Delete(%q) = %v, want ErrBadKey", key, err)
			}
		}
		if err := m.List(ctx, "/packages", func(blob.Info) error { return nil }); !errors.Is(err, blob.ErrBadKey) {
			t.Errorf("List(\"/packages\") = %v, want ErrBadKey", err)
		}
		if err := m.Delete(ctx, "tasklogs/7/00000001.log"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Stat(ctx, "tasklogs/7/00000001.log"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat after Delete = %v, want fs.ErrNotExist", err)
		}
		if _, err := m.Put(ctx, "tasklogs/7/00000001.log", strings.NewReader(files["tasklogs/7/00000001.log"])); err != nil {
			t.Fatal(err)
		}
	}
	expectFile := func(t *testing.T, path, content string) {
		t.Helper()
		if b, err := os.ReadFile(path); err != nil || string(b) != content {
			t.Errorf("%s holds %q, %v; want %q", path, b, err, content)
		}
	}
	expectNone := func(t *testing.T, path string) {
		t.Helper()
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists (%v)", path, err)
		}
	}

	t.Run("Folders", func(t *testing.T) {
		storage, artifacts := t.TempDir(), t.TempDir()
		m, err := blob.Open(t.Context(), blob.Config{Storage: storage, Artifacts: artifacts})
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, m)
		expectFile(t, filepath.Join(storage, "packages", "app", "Upload-1", "app.1.0.zip"), "zip")
		expectFile(t, filepath.Join(storage, "tasklogs", "7", "00000001.log"), "log")
		expectFile(t, filepath.Join(artifacts, "ServerTasks-7", "Machines-2", "a.txt"), "artifact")
		expectNone(t, filepath.Join(storage, "artifacts", "ServerTasks-7"))
		for _, kind := range []string{blob.PackagesKey, blob.ArtifactsKey, blob.TaskLogsKey} {
			if m.Of(kind) == nil {
				t.Errorf("Of(%q) = nil", kind)
			}
		}
		a, ok := m.Of(blob.TaskLogsKey).(blob.Appender)
		if !ok {
			t.Fatal("the folder of task logs is not an Appender")
		}
		f, err := a.Append("7/00000002.log")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(f, "appended")
		f.Close()
		expectFile(t, filepath.Join(storage, "tasklogs", "7", "00000002.log"), "appended")
		if !strings.Contains(m.Describe(), artifacts) || !strings.Contains(m.Describe(), storage) {
			t.Errorf("Describe() = %q, naming neither place", m.Describe())
		}
	})

	t.Run("ObjectStore", func(t *testing.T) {
		o := testcluster.StartObjectStore(t)
		artifacts := t.TempDir()
		m, err := blob.Open(t.Context(), blob.Config{Storage: o.URL("cluster"), Artifacts: artifacts, S3: o.Settings()})
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, m)
		under := filepath.Join(o.Dir, o.Bucket, "cluster")
		expectFile(t, filepath.Join(under, "packages", "app", "Upload-1", "app.1.0.zip"), "zip")
		expectFile(t, filepath.Join(under, "tasklogs", "7", "00000001.log"), "log")
		expectFile(t, filepath.Join(artifacts, "ServerTasks-7", "Machines-2", "a.txt"), "artifact")
		expectNone(t, filepath.Join(under, "artifacts"))
		raw, err := blob.NewS3(t.Context(), o.URL("cluster/packages"), o.Settings())
		if err != nil {
			t.Fatal(err)
		}
		if info, err := raw.Stat(t.Context(), "app/Upload-1/app.1.0.zip"); err != nil || info.Size != 3 {
			t.Errorf("the package in the object store: %+v, %v", info, err)
		}
		if _, ok := m.Of(blob.TaskLogsKey).(blob.Appender); ok {
			t.Error("the object store of task logs is an Appender")
		}
		if d := m.Describe(); strings.Contains(d, o.SecretKey) || !strings.Contains(d, "s3://"+o.Bucket+"/cluster/packages") {
			t.Errorf("Describe() = %q", d)
		}
	})

	t.Run("MissingBucket", func(t *testing.T) {
		o := testcluster.StartObjectStore(t)
		_, err := blob.Open(t.Context(), blob.Config{Storage: "s3://missing/cluster", S3: o.Settings()})
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Errorf("Open with a missing bucket = %v", err)
		}
	})
}
