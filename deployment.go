package cuttle

import "time"

// Deployment is a release deployed to an environment, run by a Deploy
// task. JSON names are Octopus's.
type Deployment struct {
	Resource
	Name                     string     `json:"Name"`
	ReleaseId                string     `json:"ReleaseId"`
	EnvironmentId            string     `json:"EnvironmentId"`
	ProjectId                string     `json:"ProjectId"`
	ChannelId                string     `json:"ChannelId"`
	TenantId                 string     `json:"TenantId,omitempty"`
	TaskId                   string     `json:"TaskId"`
	DeploymentProcessId      string     `json:"DeploymentProcessId"`
	ManifestVariableSetId    string     `json:"ManifestVariableSetId"`
	Comments                 string     `json:"Comments"`
	UseGuidedFailure         bool       `json:"UseGuidedFailure"`
	ForcePackageDownload     bool       `json:"ForcePackageDownload"`
	ForcePackageRedeployment bool       `json:"ForcePackageRedeployment"`
	SkipActions              []string   `json:"SkipActions"`
	SpecificMachineIds       []string   `json:"SpecificMachineIds"`
	ExcludedMachineIds       []string   `json:"ExcludedMachineIds"`
	DeployedToMachineIds     []string   `json:"DeployedToMachineIds"`
	FailureEncountered       bool       `json:"FailureEncountered"`
	Created                  time.Time  `json:"Created"`
	QueueTime                *time.Time `json:"QueueTime"`
	QueueTimeExpiry          *time.Time `json:"QueueTimeExpiry"`
	DeployedBy               string     `json:"DeployedBy"`
	DeployedById             string     `json:"DeployedById"`
	// FormValues are the values of prompted variables and deployment-time
	// variables, by name; they override the release's variables.
	FormValues map[string]string `json:"FormValues"`
	// Secrets are FormValues of sensitive variables, sealed with the
	// master key (never answered); their FormValues entries are empty.
	Secrets map[string]string `json:"Secrets,omitempty"`
	// State is how the deployment ended, as its task wrote it when it did
	// (Success, Failed, Canceled); "" while it has not. The lifecycle's
	// progression reads it.
	State TaskState `json:"State,omitempty"`
}

// DeploymentKey is the concurrency key of a deployment's task: one
// deployment of a project to an environment runs at a time.
func DeploymentKey(projectID, environmentID string) string { return projectID + "/" + environmentID }

// Interruption is a deployment waiting for a person: a manual
// intervention, or an action that failed under guided failure. JSON names
// are Octopus's.
type Interruption struct {
	Resource
	Title string `json:"Title"`
	// Type is InterruptionManual or InterruptionGuidedFailure.
	Type               string    `json:"Type"`
	Created            time.Time `json:"Created"`
	IsPending          bool      `json:"IsPending"`
	Form               Form      `json:"Form"`
	RelatedDocumentIds []string  `json:"RelatedDocumentIds"`
	ResponsibleTeamIds []string  `json:"ResponsibleTeamIds"`
	ResponsibleUserId  string    `json:"ResponsibleUserId,omitempty"`
	TaskId             string    `json:"TaskId"`
	// CorrelationId names what waits: the step, action and target of the
	// deployment, as the task's checkpoint knows it.
	CorrelationId               string `json:"CorrelationId"`
	IsLinkedToOtherInterruption bool   `json:"IsLinkedToOtherInterruption"`
	// CanTakeResponsibility and HasResponsibility are the caller's, set
	// for each answer.
	CanTakeResponsibility bool `json:"CanTakeResponsibility"`
	HasResponsibility     bool `json:"HasResponsibility"`
	// AnsweredBy is the username of who submitted it.
	AnsweredBy string `json:"AnsweredBy,omitempty"`
}

// Interruption types.
const (
	InterruptionManual        = "ManualIntervention"
	InterruptionGuidedFailure = "GuidedFailure"
)

// Form is an interruption's form: what it shows and asks, and, once
// submitted, the values.
type Form struct {
	Values   map[string]string `json:"Values"`
	Elements []FormElement     `json:"Elements"`
}

// FormElement is one element of a Form.
type FormElement struct {
	Name            string      `json:"Name"`
	Control         FormControl `json:"Control"`
	IsValueRequired bool        `json:"IsValueRequired"`
}

// FormControl is how an element shows: a paragraph of text, a text area,
// a group of submit buttons.
type FormControl struct {
	Type        string       `json:"Type"`
	Text        string       `json:"Text,omitempty"`
	Label       string       `json:"Label,omitempty"`
	Description string       `json:"Description,omitempty"`
	Buttons     []FormButton `json:"Buttons,omitempty"`
	Resolves    bool         `json:"Resolves,omitempty"`
}

// FormButton is a button of a SubmitButtonGroup.
type FormButton struct {
	Text                 string `json:"Text"`
	Value                string `json:"Value"`
	RequiresConfirmation bool   `json:"RequiresConfirmation"`
}

// Answers of interruptions: a manual intervention's Result, a guided
// failure's Guidance.
const (
	AnswerProceed = "Proceed"
	AnswerAbort   = "Abort"

	GuidanceFail    = "Fail"
	GuidanceRetry   = "Retry"
	GuidanceIgnore  = "Ignore"
	GuidanceExclude = "Exclude"
)

// ManualForm returns the form of a manual intervention with its
// instructions.
func ManualForm(instructions string) Form {
	return Form{Values: map[string]string{}, Elements: []FormElement{
		{Name: "Instructions", Control: FormControl{Type: "Paragraph", Text: instructions}},
		{Name: "Notes", Control: FormControl{Type: "TextArea", Label: "Notes"}},
		{Name: "Result", IsValueRequired: true, Control: FormControl{Type: "SubmitButtonGroup", Buttons: []FormButton{
			{Text: "Proceed", Value: AnswerProceed}, {Text: "Abort", Value: AnswerAbort, RequiresConfirmation: true}}}},
	}}
}

// GuidedFailureForm returns the form of a failed action under guided
// failure, offering the guidances given (GuidedFailureChoices).
func GuidedFailureForm(guidances []string) Form {
	var buttons []FormButton
	for _, g := range guidances {
		buttons = append(buttons, FormButton{Text: g, Value: g, RequiresConfirmation: g == GuidanceFail})
	}
	return Form{Values: map[string]string{}, Elements: []FormElement{
		{Name: "Notes", Control: FormControl{Type: "TextArea", Label: "Notes"}},
		{Name: "Guidance", IsValueRequired: true, Control: FormControl{Type: "SubmitButtonGroup", Buttons: buttons}},
	}}
}

// GuidedFailureChoices returns what guided failure offers for a failed
// action: Fail and Retry always; Ignore unless the action is required;
// Exclude for a real target (not the server) of an action not required.
func GuidedFailureChoices(required, onServer bool) []string {
	choices := []string{GuidanceFail, GuidanceRetry}
	if !required {
		choices = append(choices, GuidanceIgnore)
		if !onServer {
			choices = append(choices, GuidanceExclude)
		}
	}
	return choices
}

// Offers reports whether the form's submit group has the value v.
func (f Form) Offers(element, v string) bool {
	for _, e := range f.Elements {
		if e.Name == element {
			for _, b := range e.Control.Buttons {
				if b.Value == v {
					return true
				}
			}
		}
	}
	return false
}
