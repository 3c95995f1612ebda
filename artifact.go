package cuttle

import "time"

// Artifact is a file a task kept: one a script declared
// (new_octopusartifact) or a CollectFile task fetched. The file is in
// shared storage under StorageKey, artifacts/<task>/<source>/<name>.
type Artifact struct {
	Resource
	Filename     string `json:"Filename"`
	ServerTaskId string `json:"ServerTaskId"`
	// Source is where the file came from: a machine's id, or the node's
	// name for a script that ran on a node.
	Source           string    `json:"Source"`
	Created          time.Time `json:"Created"`
	LogCorrelationId string    `json:"LogCorrelationId"`
	Length           int64     `json:"Length"`
	StorageKey       string    `json:"StorageKey"`
}
