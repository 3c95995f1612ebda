// Package feed is the built-in package repository: package files in shared
// storage (blob) and one document per package version in the database
// (resources.Packages).
//
// An upload streams its file to a key of its own,
// packages/<PackageId>/<upload id>/<file name>, hashing it on the way, and
// only then writes the document in a unit of work. So:
//   - Concurrent uploads of one version (through any nodes) each write
//     their own file; the database's unique identity column picks the
//     outcome (FailIfExists: one 201, the others 409; IgnoreIfExists: one
//     201, the others 200; OverwriteExisting: each 201 in commit order),
//     and every upload whose file the document does not name deletes it
//     after its unit of work, so storage ends with the document's file
//     alone.
//   - A reader never sees a file change under it: an overwrite names a new
//     file and deletes the old one after its commit.
//   - A node that dies between the two steps leaves a file no document
//     names; re-indexing finds such orphans (Orphans) and removes them once
//     older than OrphanAge. A commit whose outcome is unknown (invariant 9)
//     keeps its file for the same reason: the document may name it.
package feed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/packagefile"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// OrphanAge is how old a file no document names must be before
// re-indexing removes it: far longer than an upload's last step, the unit
// of work that writes its document.
const OrphanAge = time.Hour

// Feed is the built-in repository of one cluster.
type Feed struct {
	Store  store.Store
	Files  blob.Store // shared storage, keys with their packages/ prefix
	Logger *slog.Logger
}

// Outcome is what an upload did.
type Outcome int

const (
	Created Outcome = iota // a new version, or one replaced (201)
	Ignored                // the version existed and was kept (200)
)

// Name is a package file's name read as the official client reads it.
type Name struct {
	PackageID, Version, Ext string
}

// ParseName reads a package file's name; KindInvalid with a sentence a
// user can act on if it is not one, or holds a folder.
func ParseName(fileName string) (Name, error) {
	if strings.ContainsAny(fileName, `/\`) {
		return Name{}, cuttle.Errorf(cuttle.KindInvalid, "The package file name %q holds a folder: send the file's name alone, such as app.1.0.0.zip.", fileName)
	}
	id, version, ext, err := packagefile.ParseFileName(fileName)
	if err != nil {
		return Name{}, cuttle.Errorf(cuttle.KindInvalid, "%s", err.Error())
	}
	return Name{PackageID: id, Version: version, Ext: ext}, nil
}

// Find returns the package version of identity (cuttle.PackageIdentity);
// KindNotFound if there is none.
func (f *Feed) Find(ctx context.Context, tx *collection.Tx, space, packageID, version string) (cuttle.Package, error) {
	ps, _, err := resources.Packages.List(ctx, tx, collection.Query{Space: space, Take: 1,
		Where: map[string]any{"identity": cuttle.PackageIdentity(packageID, version)}})
	if err != nil {
		return cuttle.Package{}, err
	}
	if len(ps) == 0 {
		return cuttle.Package{}, cuttle.Errorf(cuttle.KindNotFound, "There is no package %s version %s in the built-in feed.", packageID, version)
	}
	return ps[0], nil
}

// Upload stores the package file named fileName that body yields, as mode
// says for a version that exists. Before it reads body it answers, without
// reading it, a version that exists under FailIfExists (KindConflict) or
// IgnoreIfExists (Ignored). Errors: KindInvalid for a name that is not a
// package's or a body cut off (nothing is stored then), KindConflict.
func (f *Feed) Upload(ctx context.Context, space, fileName string, mode cuttle.OverwriteMode, body io.Reader) (cuttle.Package, Outcome, error) {
	name, err := ParseName(fileName)
	if err != nil {
		return cuttle.Package{}, 0, err
	}
	if mode != cuttle.OverwriteExisting {
		var existing cuttle.Package
		err := f.Store.Read(ctx, func(tx *collection.Tx) error {
			existing, err = f.Find(ctx, tx, space, name.PackageID, name.Version)
			return err
		})
		switch {
		case err == nil && mode == cuttle.IgnoreIfExists:
			return existing, Ignored, nil
		case err == nil:
			return cuttle.Package{}, 0, exists(existing)
		case !cuttle.IsKind(err, cuttle.KindNotFound):
			return cuttle.Package{}, 0, err
		}
	}
	key := blob.PackagesKey + name.PackageID + "/" + uploadID() + "/" + name.PackageID + "." + name.Version + name.Ext
	hashed := hashBeside(body)
	info, err := f.Files.Put(ctx, key, hashed)
	hashed.close()
	if err != nil {
		if berr := hashed.err(); berr != nil && ctx.Err() == nil {
			return cuttle.Package{}, 0, &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The upload was cut off before its end; nothing was stored.", Err: berr}
		}
		return cuttle.Package{}, 0, cuttle.Wrap(err, "storing the package file")
	}
	p := cuttle.Package{
		Resource:  cuttle.Resource{SpaceID: space},
		PackageId: name.PackageID, PackageVersion: name.Version, FileExtension: name.Ext,
		PackageSizeBytes: info.Size, Hash: hashed.wait(),
		Published: time.Now().UTC(), StorageKey: key,
	}
	var (
		outcome  = Created
		replaced string // the key of the file an overwrite replaced
		stored   cuttle.Package
	)
	err = f.Store.Update(ctx, func(tx *collection.Tx) error {
		outcome, replaced = Created, ""
		existing, err := f.Find(ctx, tx, space, name.PackageID, name.Version)
		switch {
		case cuttle.IsKind(err, cuttle.KindNotFound):
			stored = p
			return resources.Packages.Insert(ctx, tx, &stored)
		case err != nil:
			return err
		case mode == cuttle.FailIfExists:
			return exists(existing)
		case mode == cuttle.IgnoreIfExists:
			outcome, stored = Ignored, existing
			return nil
		}
		stored = p
		stored.Resource = existing.Resource
		replaced = existing.StorageKey
		return resources.Packages.Update(ctx, tx, &stored)
	})
	if cuttle.IsKind(err, cuttle.KindConflict) && mode != cuttle.FailIfExists {
		// Another upload of the version committed between Find and
		// Insert: read it again and decide as if it had come first.
		return f.decideAgain(ctx, space, name, mode, p, key)
	}
	if cuttle.IsKind(err, cuttle.KindConflict) {
		// The unit of work was refused: nothing names the file. The
		// feed's message, whichever check refused it.
		f.remove(key)
		return cuttle.Package{}, 0, exists(p)
	}
	switch {
	case err == nil && outcome == Ignored:
		f.remove(key)
	case err == nil:
		if replaced != "" {
			f.remove(replaced)
		}
	default:
		// The commit may have happened (invariant 9): keep the file,
		// which re-indexing removes if no document names it.
	}
	if err != nil {
		return cuttle.Package{}, 0, err
	}
	return stored, outcome, nil
}

// decideAgain finishes an upload whose insert lost to another upload of
// the same version.
func (f *Feed) decideAgain(ctx context.Context, space string, name Name, mode cuttle.OverwriteMode, p cuttle.Package, key string) (cuttle.Package, Outcome, error) {
	var (
		stored   cuttle.Package
		replaced string
	)
	err := f.Store.Update(ctx, func(tx *collection.Tx) error {
		existing, err := f.Find(ctx, tx, space, name.PackageID, name.Version)
		if err != nil {
			return err
		}
		if mode == cuttle.IgnoreIfExists {
			stored, replaced = existing, ""
			return nil
		}
		stored = p
		stored.Resource = existing.Resource
		replaced = existing.StorageKey
		return resources.Packages.Update(ctx, tx, &stored)
	})
	if err != nil {
		if cuttle.IsKind(err, cuttle.KindConflict) || cuttle.IsKind(err, cuttle.KindNotFound) {
			f.remove(key)
		}
		return cuttle.Package{}, 0, err
	}
	if mode == cuttle.IgnoreIfExists {
		f.remove(key)
		return stored, Ignored, nil
	}
	f.remove(replaced)
	return stored, Created, nil
}

func exists(p cuttle.Package) error {
	return cuttle.Errorf(cuttle.KindConflict, "The package %s version %s already exists in the built-in feed; upload it with overwriteMode=OverwriteExisting to replace it, or IgnoreIfExists.", p.PackageId, p.PackageVersion)
}

// remove deletes a file no document names, logging a failure (re-indexing
// removes it later).
func (f *Feed) remove(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.Files.Delete(ctx, key); err != nil {
		f.logger().Warn("a package file no document names could not be deleted; re-indexing will", "key", key, "err", err)
	}
}

func (f *Feed) logger() *slog.Logger {
	if f.Logger == nil {
		return slog.Default()
	}
	return f.Logger
}

// Delete removes a package version and its file. KindConflict while a
// release chose it (releases keep what they deploy).
func (f *Feed) Delete(ctx context.Context, space, packageID, version string) error {
	var key string
	err := f.Store.Update(ctx, func(tx *collection.Tx) error {
		p, err := f.Find(ctx, tx, space, packageID, version)
		if err != nil {
			return err
		}
		used, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: space, Take: 1,
			Where: map[string]any{"packages": cuttle.PackageIdentity(p.PackageId, p.PackageVersion)}})
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return cuttle.Errorf(cuttle.KindConflict, "The package %s version %s is used by the release %s (%s); delete the release first.", p.PackageId, p.PackageVersion, used[0].Version, used[0].ID)
		}
		key = p.StorageKey
		return resources.Packages.Delete(ctx, tx, p.ID)
	})
	if err != nil {
		return err
	}
	f.remove(key)
	return nil
}

// Open opens a package version's file.
func (f *Feed) Open(ctx context.Context, p cuttle.Package) (blob.File, error) {
	file, err := f.Files.Open(ctx, p.StorageKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cuttle.Errorf(cuttle.KindNotFound, "The file of package %s version %s is missing from shared storage; re-index the repository.", p.PackageId, p.PackageVersion)
	}
	return file, err
}

// uploadID returns a fresh random name for an upload's folder.
func uploadID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
