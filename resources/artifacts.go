package resources

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Artifacts are the files tasks kept, one per storage key (a file sent
// again replaces its document's facts). Newest first.
var Artifacts = &collection.Def[cuttle.Artifact]{
	Table: "artifacts", Prefix: "Artifacts-", Noun: "artifact", Spaced: true,
	Columns: []collection.Column[cuttle.Artifact]{
		{Name: "server_task_id", Fold: true, Value: func(a *cuttle.Artifact) any { return a.ServerTaskId }},
		{Name: "storage_key", Unique: true, MaxLength: 1024, Value: func(a *cuttle.Artifact) any { return a.StorageKey }},
	},
	Order: "id DESC",
}

// KeepArtifact records an artifact stored under a.StorageKey: a new
// document, or the one of that key brought up to date.
func KeepArtifact(ctx context.Context, tx *collection.Tx, a *cuttle.Artifact) error {
	found, _, err := Artifacts.List(ctx, tx, collection.Query{Space: a.SpaceID, Take: 1, Where: map[string]any{"storage_key": a.StorageKey}})
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return Artifacts.Insert(ctx, tx, a)
	}
	a.Resource = found[0].Resource
	return Artifacts.Update(ctx, tx, a)
}
