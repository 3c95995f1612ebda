package housekeeping

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/feed"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
)

// reindex makes the package documents agree with the files in shared
// storage, which are the truth:
//   - a document whose file is missing is deleted (kept, with an error in
//     the log, while a release uses it);
//   - a document whose file's size differs gets the file's size and hash;
//   - a file no document names (an orphan: an upload whose node died
//     before its document, or a loser of concurrent uploads whose node
//     died before deleting it) is listed; once older than feed.OrphanAge
//     (so that no upload in flight is touched) it becomes the document of
//     its version if there is none, and is deleted otherwise.
func (h *keeper) reindex(ctx context.Context, x *tasks.Execution) error {
	term, err := h.term(ctx)
	if err != nil {
		return err
	}
	var docs []cuttle.Package
	err = h.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		docs, err = resources.PackageVersions(ctx, tx, resources.DefaultSpaceID, "")
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the feed: %w", err)
	}
	files := map[string]blob.Info{}
	if err := h.cfg.Files.List(ctx, blob.PackagesKey, func(info blob.Info) error {
		files[info.Key] = info
		return nil
	}); err != nil {
		return fmt.Errorf("listing the package files: %w", err)
	}
	x.Log.Logf(tasklog.Info, "Re-indexing %d package versions against %d files in shared storage (leader's term %d).", len(docs), len(files), term)
	byIdentity := map[string]bool{}
	for _, p := range docs {
		info, ok := files[p.StorageKey]
		delete(files, p.StorageKey)
		if ok {
			byIdentity[cuttle.PackageIdentity(p.PackageId, p.PackageVersion)] = true
		}
		switch {
		case !ok:
			if err := h.dropMissing(ctx, x, term, p); err != nil {
				return err
			}
		case info.Size != p.PackageSizeBytes:
			if err := h.rehash(ctx, x, term, p); err != nil {
				return err
			}
		}
	}
	orphans, adopted, removed := 0, 0, 0
	for key, info := range files {
		orphans++
		if since(info.ModTime) < feed.OrphanAge {
			x.Log.Logf(tasklog.Info, "Orphan %s (%s, %s old): left alone, it may be an upload in flight.", key, cuttle.FormatSize(info.Size), since(info.ModTime).Round(time.Second))
			continue
		}
		name, err := feed.ParseName(path.Base(key))
		if err != nil || byIdentity[cuttle.PackageIdentity(name.PackageID, name.Version)] {
			x.Log.Logf(tasklog.Info, "Orphan %s: another file is its version's, or its name is not a package's; deleting it.", key)
			h.deleteFiles(ctx, x, []string{key}, "orphaned package")
			removed++
			continue
		}
		if err := h.adopt(ctx, x, term, key, info, name); err != nil {
			return err
		}
		byIdentity[cuttle.PackageIdentity(name.PackageID, name.Version)] = true
		adopted++
	}
	x.Log.Logf(tasklog.Info, "Re-indexed: %d orphans found, %d made their version's file, %d deleted.", orphans, adopted, removed)
	return nil
}

// dropMissing deletes the document of a package whose file is gone,
// unless a release uses it. It decides on the document as it is, locked:
// an upload that replaced the file since the documents were read (its new
// document names a new file, and it deleted the old one) leaves it alone.
func (h *keeper) dropMissing(ctx context.Context, x *tasks.Execution, term int64, p cuttle.Package) error {
	used, replaced := false, false
	err := h.fenced(ctx, term, func(tx *collection.Tx) error {
		cur, err := resources.Packages.GetForUpdate(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		if cur.StorageKey != p.StorageKey {
			replaced = true
			return nil
		}
		if _, err := h.cfg.Files.Stat(ctx, p.StorageKey); !errors.Is(err, fs.ErrNotExist) {
			replaced = true // back, or storage cannot tell: not missing
			return nil
		}
		rs, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: p.SpaceID, Take: 1,
			Where: map[string]any{"packages": cuttle.PackageIdentity(p.PackageId, p.PackageVersion)}})
		if err != nil {
			return err
		}
		if used = len(rs) > 0; used {
			return nil
		}
		return resources.Packages.Delete(ctx, tx, p.ID)
	})
	switch {
	case err != nil && !cuttle.IsKind(err, cuttle.KindNotFound):
		return fmt.Errorf("dropping the document of %s %s: %w", p.PackageId, p.PackageVersion, err)
	case err != nil || replaced:
		// Deleted or replaced since the documents were read.
	case used:
		x.Log.Logf(tasklog.Error, "The file of %s %s (%s) is missing from shared storage, and releases use it: upload it again.", p.PackageId, p.PackageVersion, p.StorageKey)
	default:
		x.Log.Logf(tasklog.Warning, "The file of %s %s (%s) is missing from shared storage: its document is deleted.", p.PackageId, p.PackageVersion, p.StorageKey)
	}
	return nil
}

// hashOf returns the size and SHA-256 of a stored file.
func (h *keeper) hashOf(ctx context.Context, key string) (int64, string, error) {
	f, err := h.cfg.Files.Open(ctx, key)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, f)
	return n, hex.EncodeToString(sum.Sum(nil)), err
}

// rehash brings a document's size and hash up to its file's.
func (h *keeper) rehash(ctx context.Context, x *tasks.Execution, term int64, p cuttle.Package) error {
	size, sum, err := h.hashOf(ctx, p.StorageKey)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.StorageKey, err)
	}
	err = h.fenced(ctx, term, func(tx *collection.Tx) error {
		cur, err := resources.Packages.GetForUpdate(ctx, tx, p.ID)
		if err != nil || cur.StorageKey != p.StorageKey {
			return err // replaced meanwhile: the new upload's facts stand
		}
		cur.PackageSizeBytes, cur.Hash = size, sum
		return resources.Packages.Update(ctx, tx, &cur)
	})
	if err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
		return fmt.Errorf("updating %s %s: %w", p.PackageId, p.PackageVersion, err)
	}
	x.Log.Logf(tasklog.Warning, "%s %s: its document said %d bytes, its file has %d (SHA-256 %s); the document now says so.", p.PackageId, p.PackageVersion, p.PackageSizeBytes, size, sum)
	return nil
}

// adopt makes an orphan the file of its version, which has no document.
func (h *keeper) adopt(ctx context.Context, x *tasks.Execution, term int64, key string, info blob.Info, name feed.Name) error {
	size, sum, err := h.hashOf(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	p := cuttle.Package{Resource: cuttle.Resource{SpaceID: resources.DefaultSpaceID}, PackageId: name.PackageID, PackageVersion: name.Version,
		FileExtension: name.Ext, PackageSizeBytes: size, Hash: sum, Published: info.ModTime.UTC(), StorageKey: key}
	err = h.fenced(ctx, term, func(tx *collection.Tx) error { return resources.Packages.Insert(ctx, tx, &p) })
	if cuttle.IsKind(err, cuttle.KindConflict) {
		x.Log.Logf(tasklog.Info, "Orphan %s: its version was uploaded meanwhile; left for the next run.", key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording %s: %w", key, err)
	}
	x.Log.Logf(tasklog.Info, "Orphan %s is now the file of %s %s (%s, SHA-256 %s).", key, name.PackageID, name.Version, cuttle.FormatSize(size), sum)
	return nil
}
