package cuttle

// ProjectGroup groups projects. Every space has a "Default Project Group".
type ProjectGroup struct {
	Resource
	Name              string   `json:"Name"`
	Slug              string   `json:"Slug"`
	Description       string   `json:"Description"`
	EnvironmentIds    []string `json:"EnvironmentIds"`
	RetentionPolicyId string   `json:"RetentionPolicyId,omitempty"`
}

// DefaultProjectGroupName is the name of the group a new space starts with.
const DefaultProjectGroupName = "Default Project Group"
