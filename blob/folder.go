package blob

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Folder is a Store in a folder of the file system: a local disk, or a
// network volume every node mounts. A key's parts are the folders and the
// name of its file under Root. Put writes a temporary file in the file's
// folder and renames it into place, so a file appears whole, and the
// rename is atomic on every file system cuttle supports (local, NFS, SMB).
type Folder struct {
	Root string
}

// writeBuffer is the size of Put's writes.
const writeBuffer = 1 << 20

// NewFolder returns the store of folder root, creating it (0750) if need be.
func NewFolder(root string) (*Folder, error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("creating the storage folder: %w", err)
	}
	return &Folder{Root: root}, nil
}

// Describe returns the folder's path.
func (f *Folder) Describe() string { return f.Root }

// Path returns the file key names in the folder.
func (f *Folder) Path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(f.Root, filepath.FromSlash(key)), nil
}

// Put writes r to a temporary file beside the key's file, syncs it and
// renames it into place.
func (f *Folder) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	name, err := f.Path(key)
	if err != nil {
		return Info{}, err
	}
	tmp, err := f.createTemp(filepath.Dir(name))
	if err != nil {
		return Info{}, err
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	// Writes of 1 MiB: a multipart upload's reader yields a few KiB a
	// read, and a write each would cost a system call per few KiB.
	// (struct{ io.Writer } hides the file's ReadFrom, which bufio would
	// hand an empty buffer's copy to, writing each read as it comes.)
	w := bufio.NewWriterSize(struct{ io.Writer }{tmp}, writeBuffer)
	n, err := io.Copy(w, ctxReader{ctx, r})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o640) // as Append's, readable by the cluster's group
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		f.prune(filepath.Dir(name))
		return Info{}, fmt.Errorf("storing %s: %w", key, err)
	}
	info, err := os.Stat(name)
	if err != nil {
		return Info{Key: key, Size: n}, nil
	}
	return Info{Key: key, Size: n, ModTime: info.ModTime()}, nil
}

// createTemp creates a temporary file in dir, creating dir: again once if
// a Delete removed the emptied folder in between.
func (f *Folder) createTemp(dir string) (*os.File, error) {
	var err error
	for range 3 {
		if err = os.MkdirAll(dir, 0o750); err != nil {
			continue
		}
		var tmp *os.File
		if tmp, err = os.CreateTemp(dir, tempPrefix+"*"); err == nil {
			return tmp, nil
		}
	}
	return nil, fmt.Errorf("creating a file in %s: %w", dir, err)
}

// folderFile is an open file of a Folder.
type folderFile struct {
	*os.File
	info Info
}

func (f folderFile) Info() Info { return f.info }

// Open opens the key's file.
func (f *Folder) Open(_ context.Context, key string) (File, error) {
	name, err := f.Path(key)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(name)
	if err != nil {
		return nil, notExistOrDir(err)
	}
	st, err := file.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return folderFile{File: file, info: Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}}, nil
}

// Stat describes the key's file.
func (f *Folder) Stat(_ context.Context, key string) (Info, error) {
	name, err := f.Path(key)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(name)
	if err == nil && !st.Mode().IsRegular() {
		err = &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	if err != nil {
		return Info{}, notExistOrDir(err)
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete removes the key's file, then each folder it leaves empty up to
// the root.
func (f *Folder) Delete(_ context.Context, key string) error {
	name, err := f.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(name); err != nil && !errors.Is(notExistOrDir(err), fs.ErrNotExist) {
		return err
	}
	f.prune(filepath.Dir(name))
	return nil
}

// notExistOrDir returns err, or fs.ErrNotExist (wrapped) when a part of the
// path is a file (ENOTDIR): no file has that key either way.
func notExistOrDir(err error) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", fs.ErrNotExist, err)
	}
	return err
}

// prune removes dir and each parent up to the root while they are empty.
func (f *Folder) prune(dir string) {
	root := filepath.Clean(f.Root)
	for ; dir != root && len(dir) > len(root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty, or gone
			return
		}
	}
}

// List walks the folder of prefix's last complete part and reports the
// files whose keys start with prefix, in key order. Temporary files are
// left out.
func (f *Folder) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	start := f.Root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(f.Root, filepath.FromSlash(prefix[:i]))
	}
	var found []Info
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile, or no such folder
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if strings.HasPrefix(d.Name(), tempPrefix) || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(f.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		found = append(found, Info{Key: key, Size: st.Size(), ModTime: st.ModTime()})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Key < found[j].Key })
	for _, info := range found {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Append opens the key's file for appending (0640), creating it and its
// folders.
func (f *Folder) Append(key string) (AppendFile, error) {
	name, err := f.Path(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		return nil, err
	}
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}
