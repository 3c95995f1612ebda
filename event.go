package cuttle

import "time"

// Event is one change made through the API, for the audit log: who made
// it, to what, when, through which node.
type Event struct {
	Resource
	Category           string    `json:"Category"` // Created, Modified, Deleted, SignedIn, ...
	UserId             string    `json:"UserId"`
	Username           string    `json:"Username"`
	Occurred           time.Time `json:"Occurred"`
	Message            string    `json:"Message"`
	RelatedDocumentIds []string  `json:"RelatedDocumentIds"`
	Node               string    `json:"Node"`    // the node that served the change
	Address            string    `json:"Address"` // the client's
}
