package resources

import (
	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Events are the audit log, newest first: filtered by user, by the
// documents they regard, and by time (occurred, Unix milliseconds).
var Events = &collection.Def[cuttle.Event]{
	Table: "events", Prefix: "Events-", Noun: "event", Spaced: true,
	Columns: []collection.Column[cuttle.Event]{
		{Name: "user_id", Fold: true, Value: func(e *cuttle.Event) any { return e.UserId }},
		{Name: "related", Kind: collection.IDs, Value: func(e *cuttle.Event) any { return e.RelatedDocumentIds }},
		{Name: "occurred", Kind: collection.Int, Value: func(e *cuttle.Event) any { return e.Occurred.UnixMilli() }},
	},
	Order: "id DESC",
}
