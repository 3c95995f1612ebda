package storetest

import (
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// packagesCase: one document per package version, ignoring case; lists
// by package id; a release's chosen versions are found by the packages
// column.
func packagesCase() collectionCase {
	return collectionCase{name: resources.Packages.Table, run: func(t *testing.T, s store.Store) {
		ctx := t.Context()
		initCluster(t, s)
		insert := func(id, version string) (cuttle.Package, error) {
			p := cuttle.Package{Resource: cuttle.Resource{SpaceID: space}, PackageId: id, PackageVersion: version, FileExtension: ".zip",
				Hash: "00", Published: time.Now().UTC(), StorageKey: "packages/" + id + "/u/" + id + "." + version + ".zip"}
			return p, update(t, s, func(tx *collection.Tx) error { return resources.Packages.Insert(ctx, tx, &p) })
		}
		first, err := insert("Acme.Web", "1.0.0")
		check(t, err, "a package version")
		_, err = insert("Acme.Web", "1.1.0")
		check(t, err, "another version")
		_, err = insert("Acme.Db", "1.0.0")
		check(t, err, "another package")
		_, err = insert("acme.web", "1.0.0")
		wantKind(t, err, cuttle.KindConflict, "a version that exists, its id in another case")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			ps, _, err := resources.Packages.List(ctx, tx, collection.Query{Space: space, Take: -1, Where: map[string]any{"package_id": "ACME.WEB"}})
			if len(ps) != 2 {
				t.Errorf("the versions of Acme.Web: %d, want 2", len(ps))
			}
			return err
		}), "listing by package id")

		p, channel := releasableProject(t, s, "Packaged")
		r := cuttle.Release{Resource: cuttle.Resource{SpaceID: space}, ProjectId: p.ID, ChannelId: channel, Version: "1.0.0"}
		check(t, update(t, s, func(tx *collection.Tx) error {
			if err := resources.PrepareRelease(ctx, tx, &r); err != nil {
				return err
			}
			r.SelectedPackages = []cuttle.SelectedPackage{{ActionName: "Deploy", Version: "1.0.0", PackageId: "Acme.Web"}}
			return resources.Releases.Insert(ctx, tx, &r)
		}), "a release of Acme.Web 1.0.0")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			for identity, want := range map[string]int{cuttle.PackageIdentity(first.PackageId, first.PackageVersion): 1, "acme.web.1.1.0": 0} {
				rs, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: space, Where: map[string]any{"packages": identity}})
				if err != nil {
					return err
				}
				if len(rs) != want {
					t.Errorf("releases using %s: %d, want %d", identity, len(rs), want)
				}
			}
			return nil
		}), "releases by package")
		check(t, update(t, s, func(tx *collection.Tx) error { return resources.Packages.Delete(ctx, tx, first.ID) }), "deleting a version")

		// Artifacts: one document per storage key.
		for _, length := range []int64{5, 7} {
			a := cuttle.Artifact{Resource: cuttle.Resource{SpaceID: space}, Filename: "log.txt", ServerTaskId: "ServerTasks-9",
				Source: "Machines-1", Created: time.Now().UTC(), Length: length, StorageKey: "artifacts/ServerTasks-9/Machines-1/log.txt"}
			check(t, update(t, s, func(tx *collection.Tx) error { return resources.KeepArtifact(ctx, tx, &a) }), "keeping an artifact")
		}
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			as, _, err := resources.Artifacts.List(ctx, tx, collection.Query{Space: space, Where: map[string]any{"server_task_id": "servertasks-9"}})
			if len(as) != 1 || as[0].Length != 7 {
				t.Errorf("the artifacts of a file stored twice: %+v, want one of length 7", as)
			}
			return err
		}), "listing artifacts")
	}}
}
