package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Settings are the settings of an S3-compatible object store.
type S3Settings struct {
	// Endpoint is the store's address: a URL (https://host:port, or
	// http:// for a store without TLS) or host:port (HTTPS). Empty is AWS
	// S3 of Region.
	Endpoint string
	// Region is the bucket's region; empty is us-east-1.
	Region string
	// AccessKey and SecretKey are the credentials; empty takes them from
	// the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the
	// machine's role, as AWS's own tools do.
	AccessKey, SecretKey string
}

// PartSize is the size of each part of an object store's multipart upload:
// what a Put holds in memory, and a 160 GiB limit on a file (10,000 parts).
const PartSize = 16 << 20

// smallPut is the size up to which a Put reads the whole file first and
// stores it with one request (a single PUT is as atomic as a multipart
// upload); a larger file streams in parts of PartSize.
const smallPut = 1 << 20

// S3 is a Store in an S3-compatible object store: the files of the keys
// under a prefix of a bucket. Put stores a small file with one request and
// a larger one in a multipart upload it completes, so a file appears
// whole; a failed or cancelled Put aborts the upload. It is not an
// Appender.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string // "" or the store's prefix and "/"
	where  string // for Describe
}

// NewS3 returns the store of place, s3://bucket/prefix, after checking
// that the bucket exists.
func NewS3(ctx context.Context, place string, s S3Settings) (Store, error) {
	bucket, prefix, err := parseS3URL(place)
	if err != nil {
		return nil, err
	}
	host, secure, err := parseEndpoint(s.Endpoint)
	if err != nil {
		return nil, err
	}
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	var creds *credentials.Credentials
	switch {
	case s.AccessKey != "" && s.SecretKey != "":
		creds = credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")
	case s.AccessKey != "" || s.SecretKey != "":
		return nil, errors.New("the object store's settings give an access key without a secret key, or a secret key without an access key")
	default:
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	}
	lookup := minio.BucketLookupAuto
	if s.Endpoint != "" {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Region:       region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("the object store at %s: %w", host, err)
	}
	scheme := "https://"
	if !secure {
		scheme = "http://"
	}
	st := &S3{client: client, bucket: bucket, where: "s3://" + bucket + " at " + scheme + host}
	if prefix != "" {
		st.prefix = prefix + "/"
		st.where = "s3://" + bucket + "/" + prefix + " at " + scheme + host
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("checking the bucket %q at %s%s (region %s): %w", bucket, scheme, host, region, err)
	}
	if !ok {
		return nil, fmt.Errorf("the object store at %s%s has no bucket %q", scheme, host, bucket)
	}
	return st, nil
}

// parseS3URL splits s3://bucket/prefix; the prefix, if any, is a clean
// relative path without a trailing slash.
func parseS3URL(place string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(place, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an object store URL (s3://bucket/prefix)", place)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	if err := s3utils.CheckValidBucketName(bucket); err != nil {
		return "", "", fmt.Errorf("the object store URL %q: bucket %q: %w", place, bucket, err)
	}
	if prefix != "" {
		if err := CheckKey(prefix); err != nil {
			return "", "", fmt.Errorf("the object store URL %q: its prefix: %w", place, err)
		}
	}
	return bucket, prefix, nil
}

// parseEndpoint returns the host:port of an endpoint and whether it takes
// HTTPS.
func parseEndpoint(endpoint string) (host string, secure bool, err error) {
	if endpoint == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	bad := func(why string) error {
		shown := endpoint
		if u != nil {
			shown = u.Redacted() // never a password
		} else if at := strings.LastIndexByte(shown, '@'); at >= 0 {
			shown = shown[at+1:]
		}
		return fmt.Errorf("the object store endpoint %q: %s (want https://host:port, http://host:port or host:port)", shown, why)
	}
	switch {
	case err != nil:
		return "", false, bad("it is not a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return "", false, bad("the scheme is neither https nor http")
	case u.User != nil:
		return "", false, bad("it holds credentials, which belong in the access and secret keys")
	case u.Host == "":
		return "", false, bad("it names no host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", false, bad("it has a path")
	}
	return u.Host, u.Scheme == "https", nil
}

// Describe returns the store's URL and endpoint, never a credential.
func (s *S3) Describe() string { return s.where }

// object returns the name of key's object, or an error wrapping ErrBadKey
// if CheckKey refuses key or the object store would.
func (s *S3) object(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	name := s.prefix + key
	switch {
	case !utf8.ValidString(key):
		return "", fmt.Errorf("%w %q: an object store takes UTF-8 keys only", ErrBadKey, key)
	case strings.TrimSpace(key) == "":
		return "", fmt.Errorf("%w %q: it is blank", ErrBadKey, key)
	case len(name) > 1024:
		return "", fmt.Errorf("%w %q: with the store's prefix it is longer than the 1,024 bytes of an object name", ErrBadKey, key)
	}
	return name, nil
}

// notExist maps the object store's "no such key" to fs.ErrNotExist.
func notExist(op, key string, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return &fs.PathError{Op: op, Path: key, Err: fs.ErrNotExist}
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Put uploads what r yields. A file of at most 1 MiB goes in one request;
// a larger one in a multipart upload of parts of PartSize, which the
// object store shows only once it completes, and which is aborted on an
// error or when ctx ends.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	r = ctxReader{ctx, r}
	var head bytes.Buffer
	n, err := head.ReadFrom(io.LimitReader(r, smallPut+1))
	if err != nil {
		return Info{}, fmt.Errorf("storing %s: %w", key, err)
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    PartSize,
		// No MD5 of each part: it would cost another pass over it. The
		// content is guarded all the same: over plain HTTP each 64 KiB
		// chunk is signed as it streams (DisableContentSha256 stays
		// false), over HTTPS TLS guards it and it goes unsigned.
		SendContentMd5: false,
	}
	var up minio.UploadInfo
	if n <= smallPut {
		up, err = s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(head.Bytes()), n, opts)
	} else {
		up, err = s.client.PutObject(ctx, s.bucket, name, io.MultiReader(&head, r), -1, opts)
	}
	if err != nil {
		if cerr := context.Cause(ctx); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return Info{}, fmt.Errorf("storing %s: %w", key, err)
	}
	info := Info{Key: key, Size: up.Size, ModTime: up.LastModified}
	if info.ModTime.IsZero() {
		// A completed upload does not say when; the object says, unless
		// another Put replaced it meanwhile.
		info.ModTime = time.Now()
		if st, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); err == nil && st.ETag == up.ETag {
			info.ModTime = st.LastModified
		}
	}
	return info, nil
}

// s3File is an open object. Reads after the first are ranged requests
// that fail if the object was replaced since Open.
type s3File struct {
	obj  *minio.Object
	info Info
	pos  int64 // where Seek put the file, if beyond its end
	past bool  // pos is beyond the end: reads yield io.EOF
}

func (f *s3File) Info() Info { return f.info }

func (f *s3File) Read(p []byte) (int, error) {
	if f.past {
		return 0, io.EOF
	}
	return f.obj.Read(p)
}

// Seek moves as os.File's Seek does: beyond the end is allowed, and reads
// there yield io.EOF.
func (f *s3File) Seek(offset int64, whence int) (int64, error) {
	var cur int64
	if f.past {
		cur = f.pos
	} else if whence == io.SeekCurrent {
		var err error
		if cur, err = f.obj.Seek(0, io.SeekCurrent); err != nil {
			return 0, err
		}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += cur
	case io.SeekEnd:
		offset += f.info.Size
	default:
		return 0, fmt.Errorf("seek %s: invalid whence %d", f.info.Key, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek %s: negative position %d", f.info.Key, offset)
	}
	if offset > f.info.Size {
		f.pos, f.past = offset, true
		return offset, nil
	}
	f.past = false
	return f.obj.Seek(offset, io.SeekStart)
}

func (f *s3File) Close() error { return f.obj.Close() }

// Open opens the key's object with one request (its metadata); reading
// fetches the content, and stops when ctx ends.
func (s *S3) Open(ctx context.Context, key string) (File, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, notExist("open", key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, notExist("open", key, err)
	}
	return &s3File{obj: obj, info: Info{Key: key, Size: st.Size, ModTime: st.LastModified}}, nil
}

// Stat describes the key's object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, notExist("stat", key, err)
	}
	return Info{Key: key, Size: st.Size, ModTime: st.LastModified}, nil
}

// Delete removes the key's object.
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	err = s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// List lists the objects under the store's prefix and prefix, in the
// object store's order, byte order. Objects whose names are no keys (such
// as the "folder/" markers of some tools) are left out.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	fetchOwner := false
	opts := minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true, FetchOwner: &fetchOwner}
	last := ""
	for obj := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
		if obj.Err != nil {
			return fmt.Errorf("listing %q: %w", prefix, obj.Err)
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || !strings.HasPrefix(key, prefix) || CheckKey(key) != nil {
			continue
		}
		if key <= last {
			return fmt.Errorf("listing %q: the object store listed %q after %q, out of byte order", prefix, key, last)
		}
		last = key
		if err := fn(Info{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	// The listing ends silently when ctx does.
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("listing %q: %w", prefix, err)
	}
	return nil
}
