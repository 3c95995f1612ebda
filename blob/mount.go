package blob

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Config says where each kind of file lives. Each place is a folder or an
// object store URL, s3://bucket/prefix.
type Config struct {
	// Storage is the place of every kind without its own: the kinds go
	// under packages/, artifacts/ and tasklogs/ in it.
	Storage string
	// Packages, Artifacts and TaskLogs, if set, are the places of one kind.
	Packages, Artifacts, TaskLogs string
	// S3 are the settings of every s3:// place.
	S3 S3Settings
}

// Mounts is the Store of a cluster: one backend per kind of file, chosen
// by a key's first part, each given the rest of the key.
type Mounts struct {
	kinds []mount // in byte order of their prefixes
}

type mount struct {
	prefix string
	store  Store
}

// Open returns the stores cfg names, creating folders that do not exist.
func Open(ctx context.Context, cfg Config) (*Mounts, error) {
	if cfg.Storage == "" && (cfg.Packages == "" || cfg.Artifacts == "" || cfg.TaskLogs == "") {
		return nil, fmt.Errorf("shared storage has no place: give a folder or s3://bucket/prefix")
	}
	place := func(override, name string) string {
		if override != "" {
			return override
		}
		if IsS3URL(cfg.Storage) {
			return strings.TrimSuffix(cfg.Storage, "/") + "/" + name
		}
		return filepath.Join(cfg.Storage, name)
	}
	m := &Mounts{}
	for _, k := range []struct{ prefix, place string }{
		{ArtifactsKey, place(cfg.Artifacts, "artifacts")},
		{PackagesKey, place(cfg.Packages, "packages")},
		{TaskLogsKey, place(cfg.TaskLogs, "tasklogs")},
	} {
		var s Store
		var err error
		if IsS3URL(k.place) {
			s, err = NewS3(ctx, k.place, cfg.S3)
		} else {
			s, err = NewFolder(k.place)
		}
		if err != nil {
			return nil, fmt.Errorf("opening the storage of %s: %w", strings.TrimSuffix(k.prefix, "/"), err)
		}
		m.kinds = append(m.kinds, mount{prefix: k.prefix, store: s})
	}
	return m, nil
}

// IsS3URL reports whether place names an object store (s3://...).
func IsS3URL(place string) bool { return strings.HasPrefix(place, "s3://") }

// Describe lists each kind's place.
func (m *Mounts) Describe() string {
	var parts []string
	for _, k := range m.kinds {
		parts = append(parts, k.prefix+" in "+k.store.Describe())
	}
	return strings.Join(parts, ", ")
}

// Of returns the backend of a kind (PackagesKey, ArtifactsKey or
// TaskLogsKey), which takes keys without the kind's prefix.
func (m *Mounts) Of(kind string) Store {
	for _, k := range m.kinds {
		if k.prefix == kind {
			return k.store
		}
	}
	return nil
}

func (m *Mounts) route(key string) (Store, string, error) {
	if err := CheckKey(key); err != nil {
		return nil, "", err
	}
	for _, k := range m.kinds {
		if rel, ok := strings.CutPrefix(key, k.prefix); ok && rel != "" {
			return k.store, rel, nil
		}
	}
	return nil, "", fmt.Errorf("%w %q: it starts with none of %s, %s and %s", ErrBadKey, key, PackagesKey, ArtifactsKey, TaskLogsKey)
}

// Put stores a file.
func (m *Mounts) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	s, rel, err := m.route(key)
	if err != nil {
		return Info{}, err
	}
	info, err := s.Put(ctx, rel, r)
	info.Key = key
	return info, err
}

// mountedFile is a File whose Info carries its whole key.
type mountedFile struct {
	File
	key string
}

func (f mountedFile) Info() Info {
	info := f.File.Info()
	info.Key = f.key
	return info
}

// Open opens a file.
func (m *Mounts) Open(ctx context.Context, key string) (File, error) {
	s, rel, err := m.route(key)
	if err != nil {
		return nil, err
	}
	f, err := s.Open(ctx, rel)
	if err != nil {
		return nil, err
	}
	return mountedFile{File: f, key: key}, nil
}

// Stat describes a file.
func (m *Mounts) Stat(ctx context.Context, key string) (Info, error) {
	s, rel, err := m.route(key)
	if err != nil {
		return Info{}, err
	}
	info, err := s.Stat(ctx, rel)
	info.Key = key
	return info, err
}

// Delete removes a file.
func (m *Mounts) Delete(ctx context.Context, key string) error {
	s, rel, err := m.route(key)
	if err != nil {
		return err
	}
	return s.Delete(ctx, rel)
}

// List lists the files under prefix across the kinds it reaches.
func (m *Mounts) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	for _, k := range m.kinds {
		var rel string
		switch {
		case strings.HasPrefix(k.prefix, prefix):
			rel = ""
		case strings.HasPrefix(prefix, k.prefix):
			rel = prefix[len(k.prefix):]
		default:
			continue
		}
		err := k.store.List(ctx, rel, func(info Info) error {
			info.Key = k.prefix + info.Key
			return fn(info)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
